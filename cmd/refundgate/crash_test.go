package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

// TestCrashRecovery kills the real gateway process with SIGKILL in the
// middle of a refund, at the two recovery points of DESIGN.md's "Exactly
// once, on purpose": (a) after the intent commit, before anything reached
// the provider, and (b) after the provider applied the refund, before the
// gateway stored the outcome. It restarts the process on the same
// configuration and SQLite file and checks that every refund is settled
// exactly once, at the provider and in the gateway, and that the merchant's
// retry under the same Idempotency-Key is answered with the settled refund.
//
// Checkout.com has no provider idempotency (the reconciler must find the
// refund by its trackId before any resend); Smartpay deduplicates by key.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and crashes the real binary; takes ~30 s")
	}
	bin := buildRefundgate(t)

	sb := sandbox.New(sandbox.Options{Seed: 1})
	sbSrv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sbSrv.Close(); sb.Close() })
	px := newCrashProxy(t, sbSrv.URL)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "refundgate.yaml")
	yaml := gatewaytest.ConfigYAML(px.URL, sb.Keys(), filepath.Join(dir, "refundgate.db"), gatewaytest.Options{Timeout: "1s"})
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := &gatewayProc{bin: bin, cfg: cfgPath, addr: freeAddr(t), logs: &lockedBuffer{}}
	t.Cleanup(gw.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway output:\n%s", gw.logs.String())
		}
	})
	gw.start(t)

	cases := []struct {
		name     string
		provider string
		currency string
		captured int64
		amount   int64
		stop     stopPoint
	}{
		{"checkoutcom/before_provider", sandbox.ProviderCheckoutCom, "EUR", 10000, 2500, stopBefore},
		{"checkoutcom/after_provider", sandbox.ProviderCheckoutCom, "EUR", 10000, 2500, stopAfter},
		{"smartpay/before_provider", sandbox.ProviderSmartpay, "JPY", 5000, 1500, stopBefore},
		{"smartpay/after_provider", sandbox.ProviderSmartpay, "JPY", 5000, 1500, stopAfter},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !gw.running() {
				t.Fatal("the gateway is not running (an earlier case failed)")
			}
			paymentID, err := sb.CreatePayment(c.provider, c.captured, c.currency, false)
			if err != nil {
				t.Fatalf("sandbox payment: %v", err)
			}
			key := fmt.Sprintf("crash-%d-%s", i, strings.ReplaceAll(c.name, "/", "-"))
			body := fmt.Sprintf(`{"payment_id":%q,"amount":%d}`, paymentID, c.amount)

			// The doomed request: the gateway dies while it runs.
			hit := px.arm(c.stop)
			doomed := make(chan string, 1)
			go func() {
				r, err := gw.post(key, body)
				if err != nil {
					doomed <- "error: " + err.Error()
					return
				}
				doomed <- fmt.Sprintf("answer %d %s", r.status, r.body)
			}()
			select {
			case <-hit:
			case <-time.After(15 * time.Second):
				t.Fatalf("the refund POST never reached the provider proxy; doomed request: %s", tryRecv(doomed))
			}
			gw.kill(t)
			select {
			case got := <-doomed:
				if !strings.HasPrefix(got, "error: ") {
					t.Errorf("the killed gateway answered the doomed request: %s", got)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the doomed request did not end after the gateway was killed")
			}

			// The crash happened where it was meant to.
			atProvider := sb.Refunds(c.provider, paymentID)
			want := map[stopPoint]int{stopBefore: 0, stopAfter: 1}[c.stop]
			if len(atProvider) != want {
				t.Fatalf("at the crash the provider holds %d refunds, want %d: %+v", len(atProvider), want, atProvider)
			}

			gw.start(t)
			// The intent was committed before the provider call: the refund
			// exists after the restart.
			if list := gw.list(t, paymentID); len(list) != 1 {
				t.Fatalf("after restart the gateway holds %d refunds for %s, want 1 (the committed intent): %v", len(list), paymentID, list)
			}

			settled := gw.waitSucceeded(t, paymentID, 30*time.Second)
			id, _ := settled["id"].(string)
			t.Logf("refund %s settled as %v", id, settled["status"])

			// Exactly once at the provider.
			atProvider = sb.Refunds(c.provider, paymentID)
			if len(atProvider) != 1 {
				t.Fatalf("the provider holds %d refunds for %s, want exactly 1: %+v", len(atProvider), paymentID, atProvider)
			}
			pr := atProvider[0]
			if pr.Amount != c.amount || pr.Currency != c.currency {
				t.Errorf("provider refund = %d %s, want %d %s", pr.Amount, pr.Currency, c.amount, c.currency)
			}
			if got, _ := settled["provider_refund_id"].(string); got != pr.ID {
				t.Errorf("gateway provider_refund_id = %q, provider's refund id = %q", got, pr.ID)
			}
			switch c.provider {
			case sandbox.ProviderCheckoutCom:
				if pr.TrackID != id {
					t.Errorf("Checkout.com trackId = %q, want the refund id %q", pr.TrackID, id)
				}
			case sandbox.ProviderSmartpay:
				if pr.IdempotencyKey == "" {
					t.Errorf("Smartpay refund was created without an idempotency key")
				}
			}

			// Exactly once in the gateway.
			list := gw.list(t, paymentID)
			if len(list) != 1 {
				t.Fatalf("the gateway holds %d refunds for %s, want 1: %v", len(list), paymentID, list)
			}
			if list[0]["id"] != id || list[0]["status"] != "succeeded" || jsonInt(list[0]["amount"]) != c.amount {
				t.Errorf("gateway refund = %v, want %s succeeded %d", list[0], id, c.amount)
			}

			// The merchant's retry gets the settled refund.
			again, err := gw.post(key, body)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			m := again.json(t)
			if again.status != http.StatusCreated || m["id"] != id || m["status"] != "succeeded" ||
				again.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("retry under the same key: %d Idempotent-Replayed=%q %s; want 201 replayed refund %s succeeded",
					again.status, again.header.Get("Idempotent-Replayed"), again.body, id)
			}
			if n := len(sb.Refunds(c.provider, paymentID)); n != 1 {
				t.Errorf("after the retry the provider holds %d refunds, want 1", n)
			}

			// A brand-new refund on another payment works after the restart.
			other, err := sb.CreatePayment(c.provider, c.captured, c.currency, false)
			if err != nil {
				t.Fatalf("sandbox payment: %v", err)
			}
			fresh, err := gw.post(key+"-fresh", fmt.Sprintf(`{"payment_id":%q,"amount":%d}`, other, c.amount))
			if err != nil {
				t.Fatalf("fresh refund: %v", err)
			}
			fm := fresh.json(t)
			if fresh.status != http.StatusCreated || fm["status"] != "succeeded" || fresh.header.Get("Idempotent-Replayed") != "" {
				t.Errorf("fresh refund after restart: %d %s; want 201 succeeded", fresh.status, fresh.body)
			}
			if rs := sb.Refunds(c.provider, other); len(rs) != 1 || rs[0].Amount != c.amount {
				t.Errorf("fresh refund at the provider: %+v, want one of %d", rs, c.amount)
			}
		})
	}

	// Through crashes, restarts and recovery, the process never logged a key.
	logs := gw.logs.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatalf("the gateway logged no requests:\n%s", logs)
	}
	k := sb.Keys()
	for _, secret := range []string{gatewaytest.AcmeKey, gatewaytest.GlobexKey, k.CheckoutCom.TestSecretKey, k.Smartpay.TestSecretKey,
		k.Yoco.TestSecretKey, k.CheckoutCom.WebhookSecret, k.Smartpay.WebhookSecret, k.Yoco.WebhookSecret} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("a secret appears in the gateway's output: %.12s…", secret)
		}
	}
}

// buildRefundgate builds this command into a temporary directory.
func buildRefundgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "refundgate")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func tryRecv(c <-chan string) string {
	select {
	case s := <-c:
		return s
	default:
		return "(still running)"
	}
}

func jsonInt(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// lockedBuffer collects a process's output; exec writes it from its own
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gatewayProc is the refundgate process under test, started and killed
// again and again on the same configuration, database and address.
type gatewayProc struct {
	bin, cfg  string
	addr      string
	logs      *lockedBuffer
	starts    int
	cmd       *exec.Cmd
	exited    chan struct{}
	exitState string
}

var apiClient = &http.Client{Timeout: 20 * time.Second}

// start runs the gateway and waits until /readyz answers 200.
func (g *gatewayProc) start(t *testing.T) {
	t.Helper()
	g.starts++
	fmt.Fprintf(g.logs, "=== start %d ===\n", g.starts)
	cmd := exec.Command(g.bin, "serve", "--config", g.cfg, "--addr", g.addr)
	cmd.Stdout, cmd.Stderr = g.logs, g.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	exited := make(chan struct{})
	g.cmd, g.exited = cmd, exited
	go func() {
		err := cmd.Wait()
		g.exitState = fmt.Sprint(err)
		close(exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("gateway exited before it was ready: %s", g.exitState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.addr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready on %s after 20 s (last: %v)", g.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gatewayProc) running() bool {
	if g.cmd == nil {
		return false
	}
	select {
	case <-g.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (g *gatewayProc) kill(t *testing.T) {
	t.Helper()
	if g.cmd == nil {
		return
	}
	if err := g.cmd.Process.Kill(); err != nil && g.running() {
		t.Fatalf("kill gateway: %v", err)
	}
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed gateway did not exit")
	}
	fmt.Fprintf(g.logs, "=== killed: %s ===\n", g.exitState)
}

// stop kills the process at cleanup, whatever state the test left it in.
func (g *gatewayProc) stop() {
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Kill()
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
	}
}

type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a *apiAnswer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d %q is not a JSON object: %v", a.status, a.body, err)
	}
	return m
}

func (g *gatewayProc) do(method, path, key string, body string, header map[string]string) (*apiAnswer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+g.addr+path, rd)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &apiAnswer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// post sends POST /v1/refunds for acme under an Idempotency-Key.
func (g *gatewayProc) post(idemKey, body string) (*apiAnswer, error) {
	return g.do(http.MethodPost, "/v1/refunds", gatewaytest.AcmeKey, body, map[string]string{"Idempotency-Key": idemKey})
}

// list returns acme's refunds of a payment.
func (g *gatewayProc) list(t *testing.T, paymentID string) []map[string]any {
	t.Helper()
	a, err := g.do(http.MethodGet, "/v1/refunds?payment_id="+paymentID, gatewaytest.AcmeKey, "", nil)
	if err != nil {
		t.Fatalf("list refunds: %v", err)
	}
	if a.status != http.StatusOK {
		t.Fatalf("list refunds: %d %s", a.status, a.body)
	}
	var l struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(a.body, &l); err != nil {
		t.Fatalf("list refunds: %v: %s", err, a.body)
	}
	return l.Data
}

// waitSucceeded polls the payment's refunds until one is succeeded.
func (g *gatewayProc) waitSucceeded(t *testing.T, paymentID string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		list := g.list(t, paymentID)
		for _, r := range list {
			if r["status"] == "succeeded" {
				return r
			}
			if r["status"] != "pending" {
				t.Fatalf("refund of %s settled as %v, want succeeded: %v", paymentID, r["status"], r)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refund of %s succeeded within %s: %v", paymentID, within, list)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopPoint is where the proxy holds a refund POST.
type stopPoint int

const (
	// stopBefore holds the POST without forwarding it: the intent is
	// committed, nothing reached the provider.
	stopBefore stopPoint = iota + 1
	// stopAfter forwards the POST (the provider applies the refund), then
	// holds the answer: the gateway never learns the outcome.
	stopAfter
)

// crashProxy sits between the gateway and the sandbox. Armed, it stops the
// next refund POST at a stopPoint, tells the test, and holds the request
// until the gateway's connection goes away. Everything else, and every
// request once disarmed, passes straight through.
type crashProxy struct {
	*httptest.Server
	target string
	client *http.Client
	done   chan struct{}

	mu   sync.Mutex
	stop stopPoint
	hit  chan struct{}
}

func newCrashProxy(t *testing.T, target string) *crashProxy {
	p := &crashProxy{target: target, client: &http.Client{Timeout: 10 * time.Second}, done: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		close(p.done) // release held requests, or Close would wait for them
		p.Server.Close()
	})
	return p
}

// arm makes the next refund POST stop at s; the channel is closed when it
// has.
func (p *crashProxy) arm(s stopPoint) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stop, p.hit = s, make(chan struct{})
	return p.hit
}

// take disarms the proxy if r is a refund POST and it was armed.
func (p *crashProxy) take(r *http.Request) (stopPoint, chan struct{}) {
	if r.Method != http.MethodPost || !(strings.HasSuffix(r.URL.Path, "/refund") || strings.HasSuffix(r.URL.Path, "/refunds")) {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, hit := p.stop, p.hit
	p.stop, p.hit = 0, nil
	return s, hit
}

func (p *crashProxy) serve(w http.ResponseWriter, r *http.Request) {
	stop, hit := p.take(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if stop == stopBefore {
		close(hit)
		p.hold(r)
		return
	}
	// The forward must finish even if the gateway dies meanwhile.
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	rbody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if stop == stopAfter {
		close(hit)
		p.hold(r)
		return
	}
	for k, vs := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rbody)
}

// hold blocks until the caller is gone (the gateway was killed) or the
// test ends, and never answers.
func (p *crashProxy) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.done:
	}
}
