// Package gatewaytest starts a whole refundgate for tests: the sandbox
// providers on a real loopback server, a real SQLite file, the service and
// the HTTP API on a real listener. Nothing is mocked.
package gatewaytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/refundgate/refundgate/api"
	"github.com/refundgate/refundgate/config"
	"github.com/refundgate/refundgate/gateway"
	"github.com/refundgate/refundgate/gateway/httpapi"
	"github.com/refundgate/refundgate/sandbox"
	"github.com/refundgate/refundgate/store"
	"github.com/refundgate/refundgate/store/sqlite"

	// The adapters the sandbox accounts use.
	_ "github.com/refundgate/refundgate/providers/checkoutcom"
	_ "github.com/refundgate/refundgate/providers/smartpay"
	_ "github.com/refundgate/refundgate/providers/yoco"
)

// The merchants' API keys.
const (
	AcmeKey   = "rk_test_acme_0123456789abcdef"
	GlobexKey = "rk_test_globex_0123456789abcdef"
)

// Options shape one test gateway.
type Options struct {
	// Sandbox options; Seed and YocoSettleDelay are set when zero.
	Sandbox sandbox.Options
	// Policy is acme's policy as YAML flow, e.g. "{max_amount: 500000}".
	Policy string
	// Breaker is every account's breaker as YAML flow.
	Breaker string
	// Timeout is every account's timeout (default "2s").
	Timeout string
	// Store, when set, is used instead of a new SQLite file.
	Store store.Store
	// ExtraProviders returns YAML appended to the providers list.
	ExtraProviders func(sandboxURL string) string
	// Aliases adds accounts: each new name is a copy of an existing sandbox
	// account (same type, URL and keys), e.g. "checkoutcom-b":
	// "checkoutcom-sandbox". Add them to AcmeProviders to let acme use them.
	Aliases map[string]string
	// AcmeProviders are added to acme's account list.
	AcmeProviders []string
	// Now is the gateway's clock; nil is time.Now.
	Now func() time.Time
	// RequestBudget bounds the provider work of one request (default 30s).
	RequestBudget time.Duration
	// Routes are YAML route lines put before the usual routes.
	Routes []string
	// ProviderMiddleware, when set, wraps the sandbox's handler: a test can
	// hold or inspect the gateway's provider requests on the real server.
	ProviderMiddleware func(http.Handler) http.Handler
}

// Clock is a settable clock for Options.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at the current time.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Env is a running gateway.
type Env struct {
	URL        string
	Sandbox    *sandbox.Sandbox
	SandboxURL string
	Store      store.Store
	Service    *gateway.Service
	Config     *config.Config
	logs       *syncBuffer
	calls      *callLog
}

// callLog records every request the gateway made to the sandbox.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.calls = append(l.calls, r.Method+" "+r.URL.Path)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// ProviderCalls returns how many requests the gateway sent to the sandbox
// whose "METHOD /path" contains substr, whatever their outcome.
func (e *Env) ProviderCalls(substr string) int {
	e.calls.mu.Lock()
	defer e.calls.mu.Unlock()
	n := 0
	for _, c := range e.calls.calls {
		if strings.Contains(c, substr) {
			n++
		}
	}
	return n
}

// RefundPOSTs returns how many refund-creating requests the gateway sent
// to the sandbox, at any provider.
func (e *Env) RefundPOSTs() int {
	e.calls.mu.Lock()
	defer e.calls.mu.Unlock()
	n := 0
	for _, c := range e.calls.calls {
		if strings.HasPrefix(c, "POST ") && (strings.HasSuffix(c, "/refund") || strings.HasSuffix(c, "/refunds")) {
			n++
		}
	}
	return n
}

// LogLines returns the JSON log lines written so far whose msg is msg.
func (e *Env) LogLines(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(e.Logs(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logs returns every log line written so far.
func (e *Env) Logs() string { return e.logs.String() }

// ConfigYAML is the configuration a test gateway runs on.
func ConfigYAML(sandboxURL string, keys sandbox.Keys, dbPath string, o Options) string {
	timeout := o.Timeout
	if timeout == "" {
		timeout = "2s"
	}
	breaker := o.Breaker
	if breaker == "" {
		breaker = "{consecutive_failures: 5, open_for: 30s, half_open_requests: 1}"
	}
	policy := o.Policy
	if policy == "" {
		policy = "{}"
	}
	acme := append([]string{"yoco-sandbox", "checkoutcom-sandbox", "smartpay-sandbox"}, o.AcmeProviders...)
	var b strings.Builder
	fmt.Fprintf(&b, "server: {addr: \"127.0.0.1:0\"}\nstore: {driver: sqlite, dsn: %q}\nlog: {level: debug, format: json}\n", dbPath)
	fmt.Fprintf(&b, "merchants:\n  - id: acme\n    api_keys: [%q]\n    providers: [%s]\n    policy: %s\n", AcmeKey, strings.Join(acme, ", "), policy)
	fmt.Fprintf(&b, "  - id: globex\n    api_keys: [%q]\n    providers: [checkoutcom-sandbox]\n", GlobexKey)
	b.WriteString("providers:\n")
	accounts := []struct {
		name, typ, path string
		k               sandbox.ProviderKeys
	}{
		{"yoco-sandbox", "yoco", "/yoco/api", keys.Yoco},
		{"checkoutcom-sandbox", "checkoutcom", "/checkoutcom/v2", keys.CheckoutCom},
		{"smartpay-sandbox", "smartpay", "/smartpay/v1", keys.Smartpay},
	}
	for _, alias := range slices.Sorted(maps.Keys(o.Aliases)) {
		for _, a := range accounts[:3] {
			if a.name == o.Aliases[alias] {
				a.name = alias
				accounts = append(accounts, a)
			}
		}
	}
	for _, p := range accounts {
		fmt.Fprintf(&b, "  - {name: %s, type: %s, base_url: %q, secret_key: %q, webhook_secret: %q, timeout: %s, breaker: %s}\n",
			p.name, p.typ, sandboxURL+p.path, p.k.TestSecretKey, p.k.WebhookSecret, timeout, breaker)
	}
	if o.ExtraProviders != nil {
		b.WriteString(o.ExtraProviders(sandboxURL))
	}
	b.WriteString("routes:\n")
	for _, r := range o.Routes {
		b.WriteString("  - " + r + "\n")
	}
	b.WriteString("  - {merchant: acme, payment_id_prefix: \"ch_\", provider: yoco-sandbox}\n")
	b.WriteString("  - {payment_id_prefix: \"charge_\", provider: checkoutcom-sandbox}\n")
	b.WriteString("  - {merchant: acme, payment_id_prefix: \"payment_\", provider: smartpay-sandbox}\n")
	return b.String()
}

// Start runs a gateway for the test; everything stops at cleanup.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.Sandbox.Seed == 0 {
		o.Sandbox.Seed = 1
	}
	if o.Sandbox.YocoSettleDelay == 0 {
		o.Sandbox.YocoSettleDelay = time.Millisecond
	}
	sb := sandbox.New(o.Sandbox)
	calls := &callLog{}
	h := sb.Handler()
	if o.ProviderMiddleware != nil {
		h = o.ProviderMiddleware(h)
	}
	sbSrv := httptest.NewServer(calls.wrap(h))
	t.Cleanup(func() { sbSrv.Close(); sb.Close() })

	dir := t.TempDir()
	cfg, err := config.Parse("test.yaml", []byte(ConfigYAML(sbSrv.URL, sb.Keys(), filepath.Join(dir, "refundgate.db"), o)), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zap.DebugLevel))
	reg := prometheus.NewRegistry()
	metrics := gateway.NewMetrics(reg)
	snap, err := gateway.NewSnapshot(cfg, gateway.BuildOptions{Breakers: gateway.NewBreakers(gateway.LogStateChanges(log, metrics))})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	st := o.Store
	if st == nil {
		st, err = sqlite.Open(context.Background(), cfg.Store.DSN)
		if err != nil {
			t.Fatalf("sqlite: %v", err)
		}
		t.Cleanup(func() { st.Close() })
	}
	svc := gateway.New(snap, gateway.Options{Store: st, Logger: log, Now: o.Now, Metrics: metrics, RequestBudget: o.RequestBudget})
	app := httpapi.New(svc, httpapi.Options{Logger: log, BodyLimit: 65536, OpenAPI: api.OpenAPI, Registry: reg,
		Ready: func(ctx context.Context) error { return st.Ping(ctx) }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.ShutdownWithTimeout(5 * time.Second) })
	e := &Env{URL: "http://" + ln.Addr().String(), Sandbox: sb, SandboxURL: sbSrv.URL, Store: st, Service: svc, Config: cfg, logs: logs, calls: calls}
	for _, p := range []struct{ provider, account string }{
		{sandbox.ProviderYoco, "yoco-sandbox"}, {sandbox.ProviderCheckoutCom, "checkoutcom-sandbox"}, {sandbox.ProviderSmartpay, "smartpay-sandbox"},
	} {
		sb.SetWebhookURL(p.provider, e.URL+"/v1/webhooks/"+p.account)
	}
	return e
}

// NoWebhooks stops the sandbox's webhooks, so that only the gateway's own
// calls (sync, reconciler) can settle a refund.
func (e *Env) NoWebhooks() {
	for _, p := range []string{sandbox.ProviderYoco, sandbox.ProviderCheckoutCom, sandbox.ProviderSmartpay} {
		e.Sandbox.SetWebhookURL(p, "")
	}
}

// Payment makes a captured test-mode payment at a sandbox provider
// ("yoco", "checkoutcom" or "smartpay").
func (e *Env) Payment(t testing.TB, provider string, amount int64, currency string) string {
	t.Helper()
	id, err := e.Sandbox.CreatePayment(provider, amount, currency, false)
	if err != nil {
		t.Fatalf("sandbox payment: %v", err)
	}
	return id
}

// Response is an API answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// Str returns a string field of the JSON body.
func (r *Response) Str(t testing.TB, field string) string {
	t.Helper()
	s, _ := r.JSON(t)[field].(string)
	return s
}

// Request is one API call.
type Request struct {
	Method string
	Path   string
	Key    string
	// Body is sent as JSON unless it is a string or []byte, sent as is.
	Body   any
	Header map[string]string
}

// Do sends req and reads the answer.
func (e *Env) Do(t testing.TB, req Request) *Response {
	t.Helper()
	var body io.Reader
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	hr, err := http.NewRequest(req.Method, e.URL+req.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.Key != "" {
		hr.Header.Set("Authorization", "Bearer "+req.Key)
	}
	for k, v := range req.Header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// NewKey returns a fresh idempotency key.
func NewKey() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "key-" + hex.EncodeToString(b[:])
}

// Refund posts a refund for acme with a fresh key.
func (e *Env) Refund(t testing.TB, body map[string]any) *Response {
	t.Helper()
	return e.Do(t, Request{Method: "POST", Path: "/v1/refunds", Key: AcmeKey, Body: body, Header: map[string]string{"Idempotency-Key": NewKey()}})
}

// WaitStatus polls GET /v1/refunds/{id} until it has status, or fails.
func (e *Env) WaitStatus(t testing.TB, id, status string) *Response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.Do(t, Request{Method: "GET", Path: "/v1/refunds/" + id, Key: AcmeKey})
		if r.Status == 200 && r.Str(t, "status") == status {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("refund %s never became %s: %s", id, status, r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
