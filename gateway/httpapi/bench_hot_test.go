package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/refundgate/refundgate/config"
	"github.com/refundgate/refundgate/gateway"
	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/gateway/httpapi"
	"github.com/refundgate/refundgate/sandbox"
	"github.com/refundgate/refundgate/store/sqlite"
)

// The hot paths of the HTTP API, through the exported surface only, on a
// fiber app driven in process with app.Test (no TCP to the gateway): the
// POST /v1/refunds body decode + validation path, and, for profiling, the
// whole create, replay and get paths against the sandbox provider and a
// real SQLite file. Logging is off, as in production at warn level. Run with
//
//	go test -run '^$' -bench . -benchmem ./gateway/httpapi/
//	go test -run '^$' -bench 'Create/parallel' -cpuprofile cpu.out ./gateway/httpapi/ && go tool pprof -top cpu.out

type benchEnv struct {
	app *fiber.App
	sb  *sandbox.Sandbox
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	sb := sandbox.New(sandbox.Options{Seed: 1})
	srv := httptest.NewServer(sb.Handler())
	b.Cleanup(func() { srv.Close(); sb.Close() })
	yaml := gatewaytest.ConfigYAML(srv.URL, sb.Keys(), filepath.Join(b.TempDir(), "refundgate.db"),
		gatewaytest.Options{Breaker: "{consecutive_failures: 1000000, open_for: 1s, half_open_requests: 1}"})
	yaml = strings.Replace(yaml, "level: debug", "level: warn", 1)
	cfg, err := config.Parse("bench.yaml", []byte(yaml), nil)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := gateway.NewSnapshot(cfg, gateway.BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), cfg.Store.DSN)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	svc := gateway.New(snap, gateway.Options{Store: st})
	app := httpapi.New(svc, httpapi.Options{BodyLimit: 65536, OpenAPI: []byte("openapi: 3.1.0\n"),
		Ready: func(ctx context.Context) error { return st.Ping(ctx) }})
	return &benchEnv{app: app, sb: sb}
}

// call sends one request through the app and returns its status and the
// Idempotent-Replayed header.
func (e *benchEnv) call(b *testing.B, method, path, key, body string) (int, string, []byte) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("Authorization", "Bearer "+gatewaytest.AcmeKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := e.app.Test(req, -1)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), out
}

// fullBody is a realistic create body using every field.
func fullBody(payment, reason string) string {
	return fmt.Sprintf(`{"payment_id":%q,"amount":1,"currency":"EUR","reason":%q,"description":"Returned item: T-shirt, size M",`+
		`"reference":"ORDER-1042","metadata":{"order":"1042","customer":"cus_8812","channel":"web"},`+
		`"line_items":[{"id":"sku-tee-m","amount":1,"quantity":1}]}`, payment, reason)
}

// BenchmarkCreateDecodeValidate is POST /v1/refunds up to and including
// strict decoding and validation: the body is well-formed and complete but
// its reason is not in the list, so the answer is the 422 problem and
// nothing reaches the store or a provider.
func BenchmarkCreateDecodeValidate(b *testing.B) {
	e := newBenchEnv(b)
	body := fullBody("charge_test_X", "changed_my_mind")
	if st, _, out := e.call(b, "POST", "/v1/refunds", "k", body); st != http.StatusUnprocessableEntity || !strings.Contains(string(out), "validation_failed") {
		b.Fatalf("status %d: %s", st, out)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if st, _, _ := e.call(b, "POST", "/v1/refunds", "k", body); st != http.StatusUnprocessableEntity {
			b.Fatalf("status %d", st)
		}
	}
}

// BenchmarkCreate is the whole create path: decode, validate, bind the key
// and insert the refund (SQLite commit), call the Checkout.com sandbox over
// loopback, store the outcome (second commit), answer 201.
func BenchmarkCreate(b *testing.B) {
	e := newBenchEnv(b)
	pay, err := e.sb.CreatePayment(sandbox.ProviderCheckoutCom, 1_000_000_000, "EUR", false)
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	body := fullBody(pay, "requested_by_customer")
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if st, _, out := e.call(b, "POST", "/v1/refunds", fmt.Sprintf("bench-%d", n.Add(1)), body); st != http.StatusCreated {
				b.Fatalf("status %d: %s", st, out)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16) // 32 requests in flight on 2 cores: lets the group commit batch
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if st, _, out := e.call(b, "POST", "/v1/refunds", fmt.Sprintf("bench-%d", n.Add(1)), body); st != http.StatusCreated {
					b.Errorf("status %d: %s", st, out)
					return
				}
			}
		})
	})
}

// BenchmarkReplay is an idempotent replay: same key, same body, answered
// from the stored first answer with Idempotent-Replayed: true. In parallel,
// replays of one finished key must not meet each other in the gateway's
// in-flight lock (until 66abd34 they did, and 22% were answered 409
// idempotency_key_in_use); a 409 fails the benchmark.
func BenchmarkReplay(b *testing.B) {
	e := newBenchEnv(b)
	pay, err := e.sb.CreatePayment(sandbox.ProviderCheckoutCom, 1_000_000, "EUR", false)
	if err != nil {
		b.Fatal(err)
	}
	body := fullBody(pay, "requested_by_customer")
	if st, _, out := e.call(b, "POST", "/v1/refunds", "replay-me", body); st != http.StatusCreated {
		b.Fatalf("status %d: %s", st, out)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if st, rep, out := e.call(b, "POST", "/v1/refunds", "replay-me", body); st != http.StatusCreated || rep != "true" {
				b.Fatalf("status %d replayed %q: %s", st, rep, out)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if st, rep, out := e.call(b, "POST", "/v1/refunds", "replay-me", body); st != http.StatusCreated || rep != "true" {
					b.Errorf("status %d replayed %q: %s", st, rep, out)
					return
				}
			}
		})
	})
}

// BenchmarkGet is GET /v1/refunds/{id}.
func BenchmarkGet(b *testing.B) {
	e := newBenchEnv(b)
	pay, err := e.sb.CreatePayment(sandbox.ProviderCheckoutCom, 1_000_000, "EUR", false)
	if err != nil {
		b.Fatal(err)
	}
	st, _, out := e.call(b, "POST", "/v1/refunds", "get-me", fullBody(pay, "requested_by_customer"))
	if st != http.StatusCreated {
		b.Fatalf("status %d: %s", st, out)
	}
	_, rest, _ := strings.Cut(string(out), `"id":"`)
	id, _, _ := strings.Cut(rest, `"`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if st, _, out := e.call(b, "GET", "/v1/refunds/"+id, "", ""); st != http.StatusOK {
				b.Errorf("status %d: %s", st, out)
				return
			}
		}
	})
}
