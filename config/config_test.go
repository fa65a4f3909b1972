package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

const file = "refundgate.yaml"

// envOf returns an env lookup over m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var fullEnv = map[string]string{
	"ACME_API_KEY":        "rk_live_acme_0123456789abcdef",
	"ACME_WEBHOOK_SECRET": "whsec_acme_0123456789",
	"YOCO_SECRET_KEY":     "sk_live_yoco_0123456789",
	"YOCO_WEBHOOK_SECRET": "whsec_yoco_0123456789",
	"CKO_SECRET_KEY":      "sk_cko_0123456789",
	"CKO_CHANNEL":         "pc_abc123",
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFull(t *testing.T) {
	got, err := Parse(file, readTestdata(t, "full.yaml"), envOf(fullEnv))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Config{
		Server: Server{Addr: "127.0.0.1:8080", BodyLimitBytes: 65536,
			ShutdownTimeout: Duration(15 * time.Second), RequestTimeout: Duration(30 * time.Second)},
		Store: Store{Driver: "sqlite", DSN: "refundgate.db"},
		Log:   Log{Level: "info", Format: "json"},
		Merchants: []Merchant{
			{
				ID:        "acme",
				APIKeys:   []string{"rk_live_acme_0123456789abcdef"},
				Providers: []string{"yoco-live", "cko-live", "smartpay-test"},
				Webhook:   &Webhook{URL: "https://acme.example/refunds", Secret: "whsec_acme_0123456789"},
				Policy:    Policy{MaxAmount: 500000, ApprovalAbove: 200000, RefundWindow: Duration(4320 * time.Hour)},
			},
			{
				ID:           "beta_shop",
				APIKeySHA256: []string{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
				Providers:    []string{"smartpay-test"},
			},
		},
		Providers: []Provider{
			{
				Name: "yoco-live", Type: "yoco", BaseURL: "https://payments.yoco.com/api",
				SecretKey: "sk_live_yoco_0123456789", WebhookSecret: "whsec_yoco_0123456789",
				Timeout: Duration(10 * time.Second), MaxConnections: 256,
				Options: map[string]any{"partial_refunds": false},
				Breaker: Breaker{ConsecutiveFailures: 5, OpenFor: Duration(30 * time.Second), HalfOpenRequests: 1},
			},
			{
				Name: "cko-live", Type: "checkoutcom", BaseURL: "https://api.checkout.com",
				SecretKey:      "sk_cko_0123456789",
				Timeout:        Duration(10 * time.Second), // default
				MaxConnections: 256,                        // default
				Options:        map[string]any{"processing_channel_id": "pc_abc123"},
				Breaker:        Breaker{ConsecutiveFailures: 5, OpenFor: Duration(30 * time.Second), HalfOpenRequests: 1},
			},
			{
				Name: "smartpay-test", Type: "smartpay", BaseURL: "http://127.0.0.1:9090/smartpay",
				SecretKey:      "sk_test_smartpay_0123456789",
				Timeout:        Duration(2500 * time.Millisecond),
				MaxConnections: 32,
				Breaker:        Breaker{ConsecutiveFailures: 3, OpenFor: Duration(30 * time.Second), HalfOpenRequests: 1},
			},
		},
		Routes: []Route{
			{Merchant: "acme", PaymentIDPrefix: "charge_", Provider: "cko-live"},
			{Merchant: "acme", Currency: "ZAR", Provider: "yoco-live"},
			{Provider: "smartpay-test"},
		},
		Path: file,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	for k, v := range fullEnv {
		t.Setenv(k, v)
	}
	path := filepath.Join("testdata", "full.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Path != path || c.Merchant("acme").APIKeys[0] != fullEnv["ACME_API_KEY"] {
		t.Errorf("Load: path %q, acme keys %q", c.Path, c.Merchant("acme").APIKeys)
	}

	_, err = Load(filepath.Join("testdata", "missing.yaml"))
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Rule != "read" {
		t.Errorf("Load(missing) = %v, want one read problem", err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse(file, readTestdata(t, "minimal.yaml"), envOf(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Config{
		Server: Server{Addr: DefaultAddr, BodyLimitBytes: 65536,
			ShutdownTimeout: Duration(15 * time.Second), RequestTimeout: Duration(30 * time.Second)},
		Store: Store{Driver: "sqlite", DSN: "refundgate.db"},
		Log:   Log{Level: "info", Format: "json"},
	}
	if diff := cmp.Diff(want.Server, c.Server); diff != "" {
		t.Errorf("server (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Store, c.Store); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Log, c.Log); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	wantP := Provider{Name: "yoco", Type: "yoco", BaseURL: "https://payments.yoco.com/api",
		SecretKey: "sk_test_yoco_0123456789", Timeout: Duration(10 * time.Second), MaxConnections: 256,
		Breaker: Breaker{ConsecutiveFailures: 5, OpenFor: Duration(30 * time.Second), HalfOpenRequests: 1}}
	if diff := cmp.Diff(wantP, c.Providers[0]); diff != "" {
		t.Errorf("provider (-want +got):\n%s", diff)
	}

	// An empty file is all defaults and valid.
	c, err = Parse(file, nil, envOf(nil))
	if err != nil {
		t.Fatalf("Parse(empty): %v", err)
	}
	if diff := cmp.Diff(want.Server, c.Server); diff != "" {
		t.Errorf("empty file server (-want +got):\n%s", diff)
	}

	// postgres gets no default dsn.
	_, err = Parse(file, []byte("store: {driver: postgres}\n"), envOf(nil))
	wantRules(t, err, fr{"store.dsn", "required"})
}

// base is a valid file the problem cases edit.
const base = `server: {addr: "127.0.0.1:8080", body_limit_bytes: 65536, shutdown_timeout: 15s, request_timeout: 30s}
store: {driver: sqlite, dsn: refundgate.db}
log: {level: info, format: json}
merchants:
  - id: acme
    api_keys: ["rk_test_acme_0123456789"]
    providers: [yoco, cko]
    webhook: {url: "https://acme.example/refunds", secret: "whsec_acme_0123456789"}
    policy: {max_amount: 500000, approval_above: 200000, refund_window: 720h}
  - id: beta
    api_key_sha256: ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
    providers: [cko]
providers:
  - name: yoco
    type: yoco
    base_url: https://payments.yoco.com/api
    secret_key: sk_test_yoco_0123456789
    timeout: 10s
    breaker: {consecutive_failures: 5, open_for: 30s, half_open_requests: 1}
  - name: cko
    type: checkoutcom
    base_url: https://api.checkout.com
    secret_key: sk_cko_0123456789
routes:
  - {merchant: acme, payment_id_prefix: "ch_", currency: ZAR, provider: yoco}
  - {provider: cko}
`

// edit applies old, new replacement pairs to base; a missing old is a bug in
// the test.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := base
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q not in base", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// fr is a problem's field and rule.
type fr struct{ Field, Rule string }

// wantRules checks err is a Problems with exactly these fields and rules, and
// that its text names the file and each field.
func wantRules(t *testing.T, err error, want ...fr) Problems {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error = %v, want Problems", err)
	}
	got := make([]fr, len(ps))
	for i, p := range ps {
		got[i] = fr{p.Field, p.Rule}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s\nfull text:\n%v", diff, err)
	}
	text := err.Error()
	for _, w := range want {
		prefix := file + ": "
		if w.Field != "" {
			prefix += w.Field + ": "
		}
		if !strings.Contains(text, prefix) {
			t.Errorf("error text lacks %q:\n%s", prefix, text)
		}
	}
	if n := strings.Count(text, "\n") + 1; n != len(ps) {
		t.Errorf("error text has %d lines for %d problems", n, len(ps))
	}
	return ps
}

func TestBaseIsValid(t *testing.T) {
	if _, err := Parse(file, []byte(base), envOf(nil)); err != nil {
		t.Fatalf("base: %v", err)
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name  string
		edits []string
		want  []fr
	}{
		// server
		{"addr without port", []string{`addr: "127.0.0.1:8080"`, `addr: "localhost"`}, []fr{{"server.addr", "hostport"}}},
		{"addr port too big", []string{`addr: "127.0.0.1:8080"`, `addr: "127.0.0.1:70000"`}, []fr{{"server.addr", "hostport"}}},
		{"body limit small", []string{`body_limit_bytes: 65536`, `body_limit_bytes: 1000`}, []fr{{"server.body_limit_bytes", "min"}}},
		{"body limit big", []string{`body_limit_bytes: 65536`, `body_limit_bytes: 10485761`}, []fr{{"server.body_limit_bytes", "max"}}},
		{"body limit not a number", []string{`body_limit_bytes: 65536`, `body_limit_bytes: lots`}, []fr{{"server.body_limit_bytes", "type"}}},
		{"shutdown negative", []string{`shutdown_timeout: 15s`, `shutdown_timeout: -1s`}, []fr{{"server.shutdown_timeout", "gt"}}},
		{"request timeout bad", []string{`request_timeout: 30s`, `request_timeout: ten`}, []fr{{"server.request_timeout", "duration"}}},
		{"server not a mapping", []string{`server: {addr: "127.0.0.1:8080", body_limit_bytes: 65536, shutdown_timeout: 15s, request_timeout: 30s}`, `server: [1, 2]`}, []fr{{"server", "type"}}},
		// store and log
		{"store driver", []string{`driver: sqlite`, `driver: mysql`}, []fr{{"store.driver", "oneof"}}},
		{"postgres without dsn", []string{`{driver: sqlite, dsn: refundgate.db}`, `{driver: postgres}`}, []fr{{"store.dsn", "required"}}},
		{"log level", []string{`level: info`, `level: loud`}, []fr{{"log.level", "oneof"}}},
		{"log format", []string{`format: json`, `format: text`}, []fr{{"log.format", "oneof"}}},
		// merchants
		{"merchant id missing", []string{`- id: beta`, `- id: ""`}, []fr{{"merchants[1].id", "required"}}},
		{"merchant id charset", []string{`- id: beta`, `- id: Beta Shop`}, []fr{{"merchants[1].id", "slug"}}},
		{"merchant id duplicate", []string{`- id: beta`, `- id: acme`}, []fr{{"merchants[1].id", "unique"}}},
		{"merchant without keys", []string{`    api_key_sha256: ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]`, `    api_keys: []`}, []fr{{"merchants[1].api_keys", "required"}}},
		{"api key short", []string{`"rk_test_acme_0123456789"`, `"rk_short"`}, []fr{{"merchants[0].api_keys[0]", "min"}}},
		{"api key repeated", []string{`["rk_test_acme_0123456789"]`, `["rk_test_acme_0123456789", "rk_test_acme_0123456789"]`}, []fr{{"merchants[0].api_keys", "unique"}}},
		{"api key sha256 not hex", []string{`9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08`, `9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08`}, []fr{{"merchants[1].api_key_sha256[0]", "sha256hex"}}},
		{"api key sha256 short", []string{`9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08`, `9f86d0`}, []fr{{"merchants[1].api_key_sha256[0]", "sha256hex"}}},
		{"api key shared", []string{`    api_key_sha256: ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]`, `    api_keys: ["rk_test_acme_0123456789"]`}, []fr{{"merchants[1].api_keys[0]", "unique"}}},
		{"api key shared as hash", []string{`9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08`, sha256hex("rk_test_acme_0123456789")}, []fr{{"merchants[1].api_key_sha256[0]", "unique"}}},
		{"api keys not a list", []string{`api_keys: ["rk_test_acme_0123456789"]`, `api_keys: "rk_test_acme_0123456789"`}, []fr{{"merchants[0].api_keys", "type"}}},
		{"merchant providers empty", []string{`providers: [cko]`, `providers: []`}, []fr{{"merchants[1].providers", "min"}}},
		{"merchant provider unknown", []string{`providers: [yoco, cko]`, `providers: [yoco, cko, stripe]`}, []fr{{"merchants[0].providers[2]", "exists"}}},
		{"merchant provider repeated", []string{`providers: [yoco, cko]`, `providers: [yoco, yoco, cko]`}, []fr{{"merchants[0].providers", "unique"}}},
		{"webhook url scheme", []string{`https://acme.example/refunds`, `ftp://acme.example/refunds`}, []fr{{"merchants[0].webhook.url", "httpurl"}}},
		{"webhook url relative", []string{`https://acme.example/refunds`, `/refunds`}, []fr{{"merchants[0].webhook.url", "httpurl"}}},
		{"webhook without secret", []string{`, secret: "whsec_acme_0123456789"}`, `}`}, []fr{{"merchants[0].webhook.secret", "required"}}},
		{"webhook without url", []string{`url: "https://acme.example/refunds", `, ``}, []fr{{"merchants[0].webhook.url", "required"}}},
		{"webhook secret short", []string{`whsec_acme_0123456789`, `whsec`}, []fr{{"merchants[0].webhook.secret", "min"}}},
		{"policy negative max", []string{`max_amount: 500000`, `max_amount: -1`}, []fr{{"merchants[0].policy.max_amount", "gte"}}},
		{"policy negative approval", []string{`approval_above: 200000`, `approval_above: -1`}, []fr{{"merchants[0].policy.approval_above", "gte"}}},
		{"policy approval above max", []string{`approval_above: 200000`, `approval_above: 600000`}, []fr{{"merchants[0].policy.approval_above", "ltefield"}}},
		{"policy negative window", []string{`refund_window: 720h`, `refund_window: -1h`}, []fr{{"merchants[0].policy.refund_window", "gte"}}},
		{"policy amount not integer", []string{`max_amount: 500000`, `max_amount: 12.5`}, []fr{{"merchants[0].policy.max_amount", "type"}}},
		// providers
		{"provider name missing", []string{`  - name: cko`, `  - name: ""`}, []fr{{"providers[1].name", "required"}, {"merchants[0].providers[1]", "exists"}, {"merchants[1].providers[0]", "exists"}, {"routes[1].provider", "exists"}}},
		{"provider name charset", []string{"  - name: cko\n", "  - name: CKO\n", "providers: [cko]", "providers: [CKO]", "{provider: cko}", "{provider: CKO}", "[yoco, cko]", "[yoco]"}, []fr{{"providers[1].name", "slug"}}},
		{"provider name duplicate", []string{"  - name: cko\n", "  - name: yoco\n", "providers: [cko]", "providers: [yoco]", "{provider: cko}", "{provider: yoco}", "[yoco, cko]", "[yoco]"}, []fr{{"providers[1].name", "unique"}}},
		{"provider type missing", []string{`type: checkoutcom`, `type: ""`}, []fr{{"providers[1].type", "required"}}},
		{"provider base_url missing", []string{`base_url: https://api.checkout.com`, `base_url: ""`}, []fr{{"providers[1].base_url", "required"}}},
		{"provider base_url relative", []string{`base_url: https://api.checkout.com`, `base_url: api.checkout.com`}, []fr{{"providers[1].base_url", "httpurl"}}},
		{"provider base_url scheme", []string{`base_url: https://api.checkout.com`, `base_url: ftp://api.checkout.com`}, []fr{{"providers[1].base_url", "httpurl"}}},
		{"provider secret_key missing", []string{`secret_key: sk_cko_0123456789`, ``}, []fr{{"providers[1].secret_key", "required"}}},
		{"provider secret_key short", []string{`secret_key: sk_cko_0123456789`, `secret_key: sk_1`}, []fr{{"providers[1].secret_key", "min"}}},
		{"provider webhook_secret short", []string{`secret_key: sk_cko_0123456789`, "secret_key: sk_cko_0123456789\n    webhook_secret: wh"}, []fr{{"providers[1].webhook_secret", "min"}}},
		{"provider connections too many", []string{`timeout: 10s`, "timeout: 10s\n    max_connections: 10001"}, []fr{{"providers[0].max_connections", "max"}}},
		{"provider connections negative", []string{`timeout: 10s`, "timeout: 10s\n    max_connections: -1"}, []fr{{"providers[0].max_connections", "min"}}},
		{"provider timeout big", []string{`timeout: 10s`, `timeout: 10m`}, []fr{{"providers[0].timeout", "max"}}},
		{"provider timeout small", []string{`timeout: 10s`, `timeout: 500us`}, []fr{{"providers[0].timeout", "min"}}},
		{"provider timeout negative", []string{`timeout: 10s`, `timeout: -1s`}, []fr{{"providers[0].timeout", "min"}}},
		{"provider timeout bad", []string{`timeout: 10s`, `timeout: ten`}, []fr{{"providers[0].timeout", "duration"}}},
		{"provider timeout unitless", []string{`timeout: 10s`, `timeout: 10`}, []fr{{"providers[0].timeout", "duration"}}},
		{"breaker failures negative", []string{`consecutive_failures: 5`, `consecutive_failures: -1`}, []fr{{"providers[0].breaker.consecutive_failures", "type"}}},
		{"breaker open_for negative", []string{`open_for: 30s`, `open_for: -5s`}, []fr{{"providers[0].breaker.open_for", "gt"}}},
		{"breaker half open negative", []string{`half_open_requests: 1`, `half_open_requests: -1`}, []fr{{"providers[0].breaker.half_open_requests", "type"}}},
		{"options not a mapping", []string{`secret_key: sk_cko_0123456789`, "secret_key: sk_cko_0123456789\n    options: [a]"}, []fr{{"providers[1].options", "type"}}},
		// routes
		{"route merchant unknown", []string{`{merchant: acme, payment_id_prefix`, `{merchant: nope, payment_id_prefix`}, []fr{{"routes[0].merchant", "exists"}}},
		{"route provider unknown", []string{`{provider: cko}`, `{provider: stripe}`}, []fr{{"routes[1].provider", "exists"}}},
		{"route provider missing", []string{`{provider: cko}`, `{payment_id_prefix: x}`}, []fr{{"routes[1].provider", "required"}}},
		{"route merchant may not use provider", []string{`{provider: cko}`, `{merchant: beta, provider: yoco}`}, []fr{{"routes[1].provider", "permitted"}}},
		{"route currency lowercase", []string{`currency: ZAR`, `currency: zar`}, []fr{{"routes[0].currency", "currency"}}},
		{"route currency unknown", []string{`currency: ZAR`, `currency: XYZ`}, []fr{{"routes[0].currency", "currency"}}},
		// decoding
		{"unknown top-level key", []string{`log: {level: info, format: json}`, "log: {level: info, format: json}\nlogging: {}"}, []fr{{"logging", "unknown_field"}}},
		{"unknown nested key", []string{`consecutive_failures: 5`, `consecutve_failures: 5`}, []fr{{"providers[0].breaker.consecutve_failures", "unknown_field"}}},
		{"unknown merchant key", []string{`    providers: [cko]`, "    providers: [cko]\n    apikeys: [x]"}, []fr{{"merchants[1].apikeys", "unknown_field"}}},
		{"unset variable", []string{`sk_cko_0123456789`, `${CKO_SECRET_KEY}`}, []fr{{"providers[1].secret_key", "env"}}},
		{"malformed variable", []string{`sk_cko_0123456789`, `${CKO SECRET}`}, []fr{{"providers[1].secret_key", "env"}}},
		{"syntax error", []string{`log: {level: info, format: json}`, `log: {level: info, format: json`}, []fr{{"", "syntax"}}},
		{"second document", []string{`routes:`, "---\nroutes:"}, []fr{{"", "syntax"}}},
		{"many problems at once", []string{`level: info`, `level: loud`, `timeout: 10s`, `timeout: ten`, `consecutive_failures: 5`, `consecutve_failures: 5`, `currency: ZAR`, `currency: zar`},
			[]fr{{"providers[0].timeout", "duration"}, {"providers[0].breaker.consecutve_failures", "unknown_field"}, {"log.level", "oneof"}, {"routes[0].currency", "currency"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(file, []byte(edit(t, tt.edits...)), envOf(nil))
			if c != nil {
				t.Errorf("Parse returned a Config along with problems")
			}
			wantRules(t, err, tt.want...)
		})
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestProblemText(t *testing.T) {
	_, err := Parse(file, []byte(edit(t, `timeout: 10s`, `timeout: ten`)), envOf(nil))
	want := `refundgate.yaml: providers[0].timeout: must be a duration like 10s (got "ten")`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}

	_, err = Parse(file, readTestdata(t, "unknown.yaml"), envOf(nil))
	ps := wantRules(t, err, fr{"logging", "unknown_field"}, fr{"providers[0].breaker.consecutve_failures", "unknown_field"})
	want = "refundgate.yaml: providers[0].breaker.consecutve_failures: " +
		`unknown field "consecutve_failures" at line 8 (did you mean "consecutive_failures"?)`
	if len(ps) == 2 && (ps[1].String() != want || ps[1].Line != 8) {
		t.Errorf("problem = %s (line %d), want %s", ps[1], ps[1].Line, want)
	}

	env := map[string]string{}
	for k, v := range fullEnv {
		if k != "YOCO_SECRET_KEY" {
			env[k] = v
		}
	}
	_, err = Parse(file, readTestdata(t, "full.yaml"), envOf(env))
	ps = wantRules(t, err, fr{"providers[0].secret_key", "env"})
	want = "refundgate.yaml: providers[0].secret_key: environment variable YOCO_SECRET_KEY is not set (line 18)"
	if len(ps) == 1 && ps[0].String() != want {
		t.Errorf("problem = %s, want %s", ps[0], want)
	}
}

func TestSecretsNeverInProblems(t *testing.T) {
	secrets := map[string]string{
		"SHORT_SECRET_KEY": "s3cr3t",                      // provider secret_key, too short
		"SHARED_KEY":       "rk_shared_TOPSECRET_4242",    // an api key two merchants share
		"SHORT_API_KEY":    "rk_tiny",                     // an api key too short
		"HOOK_SECRET":      "whsec_SHORT",                 // merchant webhook secret too short
		"PROVIDER_HOOK":    "wh7",                         // provider webhook_secret too short
		"DSN_PASSWORD":     "pg_PASSWORD_9911",            // inside a dsn
		"URL_CREDENTIAL":   "ftp://user:URLPASS77@x.test", // base_url with credentials, refused
	}
	doc := `store: {driver: postgres, dsn: "postgres://rg:${DSN_PASSWORD}@db/rg", bogus: "${DSN_PASSWORD}"}
merchants:
  - id: one
    api_keys: ["${SHARED_KEY}", "${SHORT_API_KEY}"]
    api_key_sha256: ["${SHORT_API_KEY}"]
    providers: [p]
    webhook: {url: "${URL_CREDENTIAL}", secret: "${HOOK_SECRET}"}
  - id: two
    api_keys: ["${SHARED_KEY}"]
    providers: [p]
providers:
  - name: p
    type: yoco
    base_url: ${URL_CREDENTIAL}
    secret_key: ${SHORT_SECRET_KEY}
    webhook_secret: ${PROVIDER_HOOK}
    options: {token: "${UNSET_TOKEN}"}
  - name: q
    type: yoco
    base_url: https://q.test
    secret_key: ["${SHORT_SECRET_KEY}"]
    timeout: ${SHORT_SECRET_KEY}
`
	_, err := Parse(file, []byte(doc), envOf(secrets))
	ps := wantRules(t, err,
		fr{"store.bogus", "unknown_field"},
		fr{"providers[0].options.token", "env"},
		fr{"providers[1].secret_key", "type"},
		fr{"providers[1].timeout", "duration"},
		fr{"merchants[0].api_keys[1]", "min"},
		fr{"merchants[0].api_key_sha256[0]", "sha256hex"},
		fr{"merchants[0].webhook.url", "httpurl"},
		fr{"merchants[0].webhook.secret", "min"},
		fr{"providers[0].base_url", "httpurl"},
		fr{"providers[0].secret_key", "min"},
		fr{"providers[0].webhook_secret", "min"},
		fr{"merchants[1].api_keys[0]", "unique"},
	)
	all := fmt.Sprintf("%v\n%#v", err, ps)
	for name, v := range secrets {
		if name == "SHORT_SECRET_KEY" {
			continue // also used as a timeout below, checked there
		}
		if strings.Contains(all, v) {
			t.Errorf("problems contain the value of %s:\n%s", name, all)
		}
	}
	// The timeout is not a secret field, so its bad value is shown; the same
	// value as secret_key is not shown anywhere else.
	if n := strings.Count(all, secrets["SHORT_SECRET_KEY"]); n > 2 {
		t.Errorf("secret_key value appears %d times, want only in the timeout problem:\n%s", n, all)
	}
	for _, p := range ps {
		if p.Field != "providers[1].timeout" && strings.Contains(p.String(), secrets["SHORT_SECRET_KEY"]) {
			t.Errorf("problem shows a secret: %s", p)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	env := envOf(map[string]string{
		"LIMIT":   "2048",
		"USER":    "rg",
		"KEY":     "0012345678",
		"NULLISH": "null",
		"TRICKY":  "a: b # not a comment\nsecond line",
		"QUOTED":  "4096",
		"CHANNEL": "pc_1",
	})
	doc := `# ${NOT_SET_BUT_IN_A_COMMENT} is ignored
server:
  body_limit_bytes: ${LIMIT}
store: {driver: postgres, dsn: "postgres://${USER}:pa$$w$rd@db/$USER"}
merchants:
  - id: acme
    api_keys: ["rk_test_acme_0123456789"]
    providers: [p]
    webhook: {url: "https://x.test/?a=${USER}", secret: "${TRICKY}"}
providers:
  - name: p
    type: yoco
    base_url: https://x.test
    secret_key: ${KEY}
    options:
      channel: ${CHANNEL}
      n: ${LIMIT}
      nested: [{x: "${USER}"}]
routes:
  - provider: p
    payment_id_prefix: ${NULLISH}
`
	c, err := Parse(file, []byte(doc), env)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := []any{c.Server.BodyLimitBytes, c.Store.DSN, c.Merchants[0].Webhook.URL, c.Merchants[0].Webhook.Secret, c.Providers[0].SecretKey, c.Routes[0].PaymentIDPrefix, c.Providers[0].Options}
	want := []any{2048, "postgres://rg:pa$$w$rd@db/$USER", "https://x.test/?a=rg", "a: b # not a comment\nsecond line", "0012345678", "null",
		map[string]any{"channel": "pc_1", "n": 2048, "nested": []any{map[string]any{"x": "rg"}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("expansion (-want +got):\n%s", diff)
	}

	// An unquoted reference inside a flow collection is a YAML error, with a hint.
	_, err = Parse(file, []byte("server: {body_limit_bytes: ${LIMIT}}\n"), env)
	wantRules(t, err, fr{"", "syntax"})
	if err == nil || !strings.Contains(err.Error(), "quote a variable") {
		t.Errorf("error lacks the quoting hint: %v", err)
	}

	// A quoted reference stays a string, so it does not fit an integer.
	_, err = Parse(file, []byte(`server: {body_limit_bytes: "${QUOTED}"}`), env)
	wantRules(t, err, fr{"server.body_limit_bytes", "type"})

	// Every unset variable is reported, not just the first.
	_, err = Parse(file, []byte("store: {dsn: \"${A}${B}\"}\nlog: {level: \"${C}\"}\n"), env)
	ps := wantRules(t, err, fr{"store.dsn", "env"}, fr{"store.dsn", "env"}, fr{"log.level", "env"})
	for i, name := range []string{"A", "B", "C"} {
		if i < len(ps) && !strings.Contains(ps[i].Message, "variable "+name+" ") {
			t.Errorf("problem %d = %s, want it to name %s", i, ps[i], name)
		}
	}
}

func TestAnchors(t *testing.T) {
	c, err := Parse(file, readTestdata(t, "anchors.yaml"), envOf(map[string]string{"SMARTPAY_KEY": "sk_smartpay_123456"}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, name := range []string{"smartpay-a", "smartpay-b"} {
		p := c.Provider(name)
		if p == nil || p.Type != "smartpay" || p.SecretKey != "sk_smartpay_123456" || p.Breaker.ConsecutiveFailures != 2 || p.Breaker.OpenFor.D() != 5*time.Second {
			t.Errorf("Provider(%q) = %+v", name, p)
		}
	}
	if got := c.Provider("smartpay-b").Timeout.D(); got != time.Second {
		t.Errorf("smartpay-b timeout = %v, want 1s", got)
	}
}

func TestValidateWithoutDefaults(t *testing.T) {
	c := &Config{Path: "built-in", Providers: []Provider{{Name: "p", Type: "yoco", BaseURL: "https://x.test", SecretKey: "sk_0123456789", Timeout: Duration(time.Second)}}}
	err := c.Validate()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Validate = %v", err)
	}
	var got []fr
	for _, p := range ps {
		got = append(got, fr{p.Field, p.Rule})
		if p.File != "built-in" {
			t.Errorf("problem file %q", p.File)
		}
	}
	want := []fr{
		{"server.addr", "required"}, {"server.body_limit_bytes", "min"}, {"server.shutdown_timeout", "gt"}, {"server.request_timeout", "gt"},
		{"store.driver", "required"}, {"store.dsn", "required"}, {"log.level", "required"}, {"log.format", "required"},
		{"providers[0].max_connections", "min"}, {"providers[0].breaker.consecutive_failures", "min"}, {"providers[0].breaker.open_for", "gt"}, {"providers[0].breaker.half_open_requests", "min"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("after ApplyDefaults: %v", err)
	}
}

func TestRoute(t *testing.T) {
	doc := `merchants:
  - {id: acme, api_keys: ["rk_test_acme_0123456789"], providers: [yoco, cko, smart]}
  - {id: beta, api_keys: ["rk_test_beta_0123456789"], providers: [smart, cko]}
  - {id: gamma, api_keys: ["rk_test_gamma_012345678"], providers: [yoco]}
providers:
  - {name: yoco, type: yoco, base_url: "https://y.test", secret_key: sk_0123456789}
  - {name: cko, type: checkoutcom, base_url: "https://c.test", secret_key: sk_0123456789}
  - {name: smart, type: smartpay, base_url: "https://s.test", secret_key: sk_0123456789}
routes:
  - {merchant: acme, payment_id_prefix: "ch_", currency: ZAR, provider: yoco}
  - {merchant: acme, payment_id_prefix: "ch_", provider: cko}
  - {payment_id_prefix: "pay_", provider: smart}
  - {currency: USD, provider: cko}
  - {merchant: beta, provider: cko}
`
	c, err := Parse(file, []byte(doc), envOf(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct {
		merchant, payment, currency string
		want                        string
		ok                          bool
	}{
		{"acme", "ch_1", "ZAR", "yoco", true},   // first route: all three match
		{"acme", "ch_1", "zar", "yoco", true},   // currency case does not matter
		{"acme", "ch_1", "EUR", "cko", true},    // currency differs: second route
		{"acme", "ch_1", "", "cko", true},       // empty currency matches only routes without one
		{"acme", "pay_1", "ZAR", "smart", true}, // route for any merchant
		{"acme", "xyz", "USD", "cko", true},     // any merchant, currency only
		{"acme", "xyz", "ZAR", "", false},       // nothing matches
		{"beta", "ch_1", "ZAR", "cko", true},    // acme's routes skipped; beta's own route
		{"beta", "pay_9", "", "smart", true},    // shared prefix route
		{"gamma", "pay_9", "", "", false},       // shared route names a provider gamma may not use
		{"gamma", "ch_1", "USD", "", false},     // likewise for cko
		{"nobody", "pay_1", "", "", false},      // unknown merchant
	}
	for _, tt := range tests {
		got, ok := c.Route(tt.merchant, tt.payment, tt.currency)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Route(%q, %q, %q) = %q, %v; want %q, %v", tt.merchant, tt.payment, tt.currency, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLookups(t *testing.T) {
	c, err := Parse(file, []byte(base), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Merchant("beta"); m == nil || m.ID != "beta" {
		t.Errorf("Merchant(beta) = %v", m)
	}
	if m := c.Merchant("nope"); m != nil {
		t.Errorf("Merchant(nope) = %v", m)
	}
	if p := c.Provider("cko"); p == nil || p.Type != "checkoutcom" {
		t.Errorf("Provider(cko) = %v", p)
	}
	if p := c.Provider("nope"); p != nil {
		t.Errorf("Provider(nope) = %v", p)
	}
	if !c.Merchant("acme").MayUse("cko") || c.Merchant("beta").MayUse("yoco") {
		t.Errorf("MayUse wrong")
	}
}

func TestKeyHashes(t *testing.T) {
	m := Merchant{
		APIKeys:      []string{"rk_test_one_0123456789", "rk_test_two_0123456789"},
		APIKeySHA256: []string{sha256hex("rk_test_three_0123456789")},
	}
	want := [][32]byte{
		sha256.Sum256([]byte("rk_test_one_0123456789")),
		sha256.Sum256([]byte("rk_test_two_0123456789")),
		sha256.Sum256([]byte("rk_test_three_0123456789")),
	}
	if diff := cmp.Diff(want, m.KeyHashes()); diff != "" {
		t.Errorf("KeyHashes (-want +got):\n%s", diff)
	}
	m = Merchant{APIKeySHA256: []string{"not hex"}}
	if got := m.KeyHashes(); len(got) != 0 {
		t.Errorf("KeyHashes with a bad digest = %x", got)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30s", 30 * time.Second, false},
		{"4320h", 4320 * time.Hour, false},
		{"1m30s", 90 * time.Second, false},
		{"2500ms", 2500 * time.Millisecond, false},
		{"0", 0, false},
		{`"10s"`, 10 * time.Second, false},
		{"ten", 0, true},
		{"10", 0, true},
		{"[10s]", 0, true},
		{"{a: 1}", 0, true},
	}
	for _, tt := range tests {
		var v struct {
			D Duration `yaml:"d"`
		}
		err := yaml.Unmarshal([]byte("d: "+tt.in), &v)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if v.D.D() != tt.want {
			t.Errorf("%s: got %v, want %v", tt.in, v.D.D(), tt.want)
		}
	}
	out, err := yaml.Marshal(struct {
		D Duration `yaml:"d"`
	}{Duration(90 * time.Second)})
	if err != nil || string(out) != "d: 1m30s\n" {
		t.Errorf("Marshal = %q, %v", out, err)
	}
	if s := Duration(4320 * time.Hour).String(); s != "4320h0m0s" {
		t.Errorf("String = %q", s)
	}
}
