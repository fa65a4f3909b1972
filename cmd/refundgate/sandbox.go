package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/refundgate/refundgate/config"
	"github.com/refundgate/refundgate/sandbox"
)

// sandboxAccounts maps the sandbox account names to the simulators.
var sandboxAccounts = []struct{ account, provider, typ, prefix, currency string }{
	{"yoco-sandbox", sandbox.ProviderYoco, "yoco", "ch_", "ZAR"},
	{"checkoutcom-sandbox", sandbox.ProviderCheckoutCom, "checkoutcom", "charge_", "EUR"},
	{"smartpay-sandbox", sandbox.ProviderSmartpay, "smartpay", "payment_", "JPY"},
}

// sandboxRun is `serve --sandbox`: the simulators on a loopback listener,
// a configuration pointing at them, and an embedded SQLite file.
type sandboxRun struct {
	sb     *sandbox.Sandbox
	srv    *http.Server
	dir    string
	key    string
	cfg    *config.Config
	seeded []string
}

func startSandbox(ctx context.Context) (*sandboxRun, error) {
	sb := sandbox.New(sandbox.Options{YocoSettleDelay: 200 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	dir, err := os.MkdirTemp("", "refundgate-sandbox-")
	if err != nil {
		return nil, err
	}
	key := os.Getenv("REFUNDGATE_SANDBOX_KEY")
	if key == "" {
		key = "rk_test_sandbox"
	}
	run := &sandboxRun{sb: sb, srv: srv, dir: dir, key: key}
	base := "http://" + ln.Addr().String()
	keys := sb.Keys()
	secrets := map[string]sandbox.ProviderKeys{sandbox.ProviderYoco: keys.Yoco, sandbox.ProviderCheckoutCom: keys.CheckoutCom, sandbox.ProviderSmartpay: keys.Smartpay}
	paths := map[string]string{sandbox.ProviderYoco: "/yoco/api", sandbox.ProviderCheckoutCom: "/checkoutcom/v2", sandbox.ProviderSmartpay: "/smartpay/v1"}
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	fmt.Fprintf(&b, "server: {addr: \"127.0.0.1:8080\"}\nstore: {driver: sqlite, dsn: %q}\nlog: {level: info, format: json}\n",
		filepath.Join(dir, "refundgate.db"))
	fmt.Fprintf(&b, "merchants:\n  - id: demo\n    api_key_sha256: [%q]\n    providers: [", hex.EncodeToString(sum[:]))
	for i, a := range sandboxAccounts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.account)
	}
	b.WriteString("]\nproviders:\n")
	for _, a := range sandboxAccounts {
		k := secrets[a.provider]
		fmt.Fprintf(&b, "  - {name: %s, type: %s, base_url: %q, secret_key: %q, webhook_secret: %q, timeout: 10s}\n",
			a.account, a.typ, base+paths[a.provider], k.TestSecretKey, k.WebhookSecret)
	}
	b.WriteString("routes:\n")
	for _, a := range sandboxAccounts {
		fmt.Fprintf(&b, "  - {merchant: demo, payment_id_prefix: %q, provider: %s}\n", a.prefix, a.account)
	}
	cfg, err := config.Parse("(sandbox)", []byte(b.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		run.close()
		return nil, err
	}
	run.cfg = cfg
	for _, a := range sandboxAccounts {
		for _, amount := range []int64{10000, 25000} {
			id, err := sb.CreatePayment(a.provider, amount, a.currency, false)
			if err != nil {
				run.close()
				return nil, err
			}
			run.seeded = append(run.seeded, fmt.Sprintf("  %-20s %-34s %6d %s", a.account, id, amount, a.currency))
		}
	}
	return run, nil
}

// ready points the simulators' webhooks at the gateway and prints how to
// use the sandbox.
func (r *sandboxRun) ready(gatewayAddr string, w io.Writer) error {
	for _, a := range sandboxAccounts {
		r.sb.SetWebhookURL(a.provider, "http://"+gatewayAddr+"/v1/webhooks/"+a.account)
	}
	fmt.Fprintf(w, "refundgate sandbox on http://%s\n  merchant key: %s\n  accounts: yoco-sandbox (full refunds, ZAR), checkoutcom-sandbox (partial, EUR), smartpay-sandbox (partial with reasons, JPY)\n  seeded payments:\n%s\n",
		gatewayAddr, r.key, strings.Join(r.seeded, "\n"))
	return nil
}

func (r *sandboxRun) createPayment(account string, amount int64, currency string) (string, error) {
	for _, a := range sandboxAccounts {
		if a.account == account {
			return r.sb.CreatePayment(a.provider, amount, currency, false)
		}
	}
	return "", fmt.Errorf("provider must be one of yoco-sandbox, checkoutcom-sandbox, smartpay-sandbox")
}

func (r *sandboxRun) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx)
	r.sb.Close()
	os.RemoveAll(r.dir)
}

// sandboxCmd is `refundgate sandbox`: the simulators alone.
func sandboxCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	options := sandbox.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts, err := options()
	if err != nil {
		fmt.Fprintf(stderr, "refundgate sandbox: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sb := sandbox.New(opts)
	defer sb.Close()
	fmt.Fprintf(stdout, "sandbox providers on http://%s: /yoco/api, /checkoutcom/v2, /smartpay/v1; control at /_sandbox\n", *addr)
	if err := sandbox.ListenAndServe(ctx, *addr, sb); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "refundgate sandbox: %v\n", err)
		return 1
	}
	return 0
}
