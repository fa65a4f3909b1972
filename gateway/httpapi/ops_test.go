package httpapi_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

// TestKeyInUseWhileTheFirstRuns: a second request with the key of one
// still running gets 409 idempotency_key_in_use, and the provider sees one
// refund.
func TestKeyInUseWhileTheFirstRuns(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme})
	if err := e.Sandbox.SetFault(sandbox.Fault{Provider: sandbox.ProviderCheckoutCom, Mode: sandbox.FaultLatency, Rate: 1, LatencyMS: 400}); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"payment_id": pay, "amount": 500}
	h := map[string]string{"Idempotency-Key": "slow-one"}
	var wg sync.WaitGroup
	var first *gatewaytest.Response
	wg.Add(1)
	go func() {
		defer wg.Done()
		first = e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	}()
	// The key binds when the refund is stored, before the (slow) provider
	// call: from then on the first request is running.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := e.Store.GetIdempotency(t.Context(), "acme", "slow-one"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first request never bound its key")
		}
		time.Sleep(2 * time.Millisecond)
	}
	second := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	wantProblem(t, second, 409, "idempotency_key_in_use")
	wg.Wait()
	if first.Status != 201 {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 1 {
		t.Fatalf("provider holds %d refunds, want 1", n)
	}
}

// TestPendingTooLongNeedsAttention: a refund the reconciler cannot settle
// for 72 hours is flagged in the API and the logs.
func TestPendingTooLongNeedsAttention(t *testing.T) {
	clock := gatewaytest.NewClock()
	e := gatewaytest.Start(t, gatewaytest.Options{Timeout: "300ms", Now: clock.Now})
	e.NoWebhooks()
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme})
	if err := e.Sandbox.SetFault(sandbox.Fault{Provider: sandbox.ProviderCheckoutCom, Mode: sandbox.FaultHang, Rate: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 500})
	if r.Status != 202 {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	id := r.Str(t, "id")
	// The provider's lookups fail for three days: it stays pending.
	e.Sandbox.SetFault(sandbox.Fault{Provider: sandbox.ProviderCheckoutCom, Mode: sandbox.FaultLatency, Rate: 1, LatencyMS: 1000})
	clock.Advance(73 * time.Hour)
	if _, err := e.Service.ReconcileAt(t.Context(), clock.Now()); err != nil {
		t.Fatal(err)
	}
	got := e.Do(t, req{Method: "GET", Path: "/v1/refunds/" + id, Key: acme})
	if got.Str(t, "status") != "pending" || got.JSON(t)["needs_attention"] != true {
		t.Fatalf("after 73 hours: %s, want pending with needs_attention", got.Body)
	}
	if !strings.Contains(e.Logs(), "needs attention") || !strings.Contains(e.Logs(), id) {
		t.Error("the logs do not flag the refund")
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 0 {
		t.Errorf("provider holds %d refunds; an unproven refund was resent", n)
	}
}

func TestMetricsAndOpenAPI(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	e.Do(t, req{Method: "GET", Path: "/v1/refunds", Key: acme})
	m := e.Do(t, req{Method: "GET", Path: "/metrics"})
	if m.Status != 200 || !strings.Contains(string(m.Body), `refundgate_http_requests_total{method="GET",route="/v1/refunds",status="200"} 1`) {
		t.Errorf("metrics: %d\n%.2000s", m.Status, m.Body)
	}
	o := e.Do(t, req{Method: "GET", Path: "/openapi.yaml"})
	if o.Status != 200 || !strings.HasPrefix(string(o.Body), "openapi: 3.1.0") || !strings.Contains(string(o.Body), "/v1/refunds") {
		t.Errorf("openapi: %d %.200s", o.Status, o.Body)
	}
}
