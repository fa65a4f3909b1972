package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

func setFault(t *testing.T, e *gatewaytest.Env, provider, mode string) {
	t.Helper()
	if err := e.Sandbox.SetFault(sandbox.Fault{Provider: provider, Mode: mode, Rate: 1}); err != nil {
		t.Fatal(err)
	}
}

func breakerState(t *testing.T, e *gatewaytest.Env, account string) string {
	t.Helper()
	r := e.Do(t, req{Method: "GET", Path: "/v1/providers", Key: acme})
	for _, p := range r.JSON(t)["data"].([]any) {
		m := p.(map[string]any)
		if m["name"] == account {
			return m["breaker"].(map[string]any)["state"].(string)
		}
	}
	t.Fatalf("account %s not listed: %s", account, r.Body)
	return ""
}

// TestBreakerOpensFailsFastAndRecovers: a provider answering 500 opens the
// account's breaker after the configured failures; while open, requests are
// refused with 503 and Retry-After, nothing is stored or sent, and the key
// stays free; after open_for, the breaker lets a request through and closes.
func TestBreakerOpensFailsFastAndRecovers(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Breaker: "{consecutive_failures: 3, open_for: 400ms, half_open_requests: 1}"})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 100000, "EUR")
	// Learn the payment before the provider goes down.
	if r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 100}); r.Status != 201 {
		t.Fatalf("first refund: %d %s", r.Status, r.Body)
	}
	setFault(t, e, sandbox.ProviderCheckoutCom, sandbox.FaultError500)
	for i := 0; i < 3; i++ {
		r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 100})
		if r.Status != http.StatusAccepted || r.Str(t, "status") != "pending" {
			t.Fatalf("refund %d against a failing provider: %d %s, want 202 pending (outcome unknown)", i, r.Status, r.Body)
		}
	}
	if s := breakerState(t, e, "checkoutcom-sandbox"); s != "open" {
		t.Fatalf("breaker = %s after 3 failures, want open", s)
	}
	before := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay))
	h := map[string]string{"Idempotency-Key": "while-open"}
	body := map[string]any{"payment_id": pay, "amount": 100}
	r := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	p := wantProblem(t, r, 503, "provider_unavailable")
	if r.Header.Get("Retry-After") == "" || p["provider"] != "checkoutcom-sandbox" {
		t.Errorf("Retry-After %q, provider %v", r.Header.Get("Retry-After"), p["provider"])
	}
	list := e.Do(t, req{Method: "GET", Path: "/v1/refunds?payment_id=" + pay, Key: acme})
	if n := len(list.JSON(t)["data"].([]any)); n != 4 {
		t.Errorf("%d refunds stored, want 4: the refused one stored nothing", n)
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != before {
		t.Errorf("a request reached the provider while the breaker was open")
	}
	// Other accounts are unaffected.
	sp := e.Payment(t, sandbox.ProviderSmartpay, 1000, "JPY")
	if r := e.Refund(t, map[string]any{"payment_id": sp, "amount": 100}); r.Status != 201 {
		t.Fatalf("smartpay refund while checkoutcom is open: %d %s", r.Status, r.Body)
	}

	e.Sandbox.ClearFaults("")
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
		if r.Status == 201 {
			break
		}
		if r.Status != 503 || time.Now().After(deadline) {
			t.Fatalf("after the provider recovered: %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := breakerState(t, e, "checkoutcom-sandbox"); s != "closed" {
		t.Errorf("breaker = %s after a success in half-open, want closed", s)
	}
}

// TestUnknownOutcomesSettleExactlyOnce: the provider applies the refund and
// then answers 500 or drops the connection, or hangs past the timeout. The
// gateway answers 202 pending, never failed, and settling finds exactly one
// refund at the provider.
func TestUnknownOutcomesSettleExactlyOnce(t *testing.T) {
	cases := []struct {
		provider, currency, mode string
	}{
		{sandbox.ProviderCheckoutCom, "EUR", sandbox.FaultApplyThen500},
		{sandbox.ProviderCheckoutCom, "EUR", sandbox.FaultApplyThenDrop},
		{sandbox.ProviderCheckoutCom, "EUR", sandbox.FaultHang},
		{sandbox.ProviderSmartpay, "JPY", sandbox.FaultApplyThen500},
		{sandbox.ProviderSmartpay, "JPY", sandbox.FaultApplyThenDrop},
		{sandbox.ProviderSmartpay, "JPY", sandbox.FaultHang},
	}
	for _, tc := range cases {
		t.Run(tc.provider+"/"+tc.mode, func(t *testing.T) {
			clock := gatewaytest.NewClock()
			e := gatewaytest.Start(t, gatewaytest.Options{Timeout: "300ms", Now: clock.Now})
			e.NoWebhooks()
			pay := e.Payment(t, tc.provider, 10000, tc.currency)
			// Learn the payment first, so the fault hits the refund call.
			if r := e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme}); r.Status != 200 {
				t.Fatalf("refundable: %d %s", r.Status, r.Body)
			}
			setFault(t, e, tc.provider, tc.mode)
			h := map[string]string{"Idempotency-Key": "unknown-" + tc.mode}
			body := map[string]any{"payment_id": pay, "amount": 2500}
			r := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
			id := r.Str(t, "id")
			switch {
			case r.Status == http.StatusAccepted && r.Str(t, "status") == "pending":
			case tc.mode != sandbox.FaultHang && tc.provider == sandbox.ProviderSmartpay && r.Status == 201:
				// Smartpay deduplicates by our key: the gateway resent at
				// once and got the applied refund back.
			default:
				t.Fatalf("refund under %s: %d %s, want 202 pending", tc.mode, r.Status, r.Body)
			}
			e.Sandbox.ClearFaults("")
			// An operator's sync after the account's timeout has passed.
			clock.Advance(time.Second)
			s := e.Do(t, req{Method: "POST", Path: "/v1/refunds/" + id + "/sync", Key: acme})
			if s.Status != 200 || s.Str(t, "status") != "succeeded" {
				t.Fatalf("sync: %d %s, want succeeded", s.Status, s.Body)
			}
			got := e.Sandbox.Refunds(tc.provider, pay)
			if len(got) != 1 || got[0].Amount != 2500 {
				t.Fatalf("provider holds %+v, want exactly one refund of 2500", got)
			}
			// The merchant's retry under the same key sees the settled refund.
			again := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
			if again.Status != 201 || again.Str(t, "id") != id || again.Str(t, "status") != "succeeded" || again.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry under the same key: %d %s", again.Status, again.Body)
			}
			if n := len(e.Sandbox.Refunds(tc.provider, pay)); n != 1 {
				t.Fatalf("provider holds %d refunds after the retry, want 1", n)
			}
		})
	}
}

// TestReconcilerSettlesPendingRefunds: a refund left pending is settled by
// the reconciler on its own, without a sync call.
func TestReconcilerSettlesPendingRefunds(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Timeout: "300ms"})
	e.NoWebhooks()
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme})
	setFault(t, e, sandbox.ProviderCheckoutCom, sandbox.FaultApplyThen500)
	r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 1000})
	if r.Status != 202 {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	e.Sandbox.ClearFaults("")
	n, err := e.Service.ReconcileAt(t.Context(), time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Reconcile looked at %d refunds (err %v), want 1", n, err)
	}
	e.WaitStatus(t, r.Str(t, "id"), "succeeded")
	if got := e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay); len(got) != 1 {
		t.Fatalf("provider holds %d refunds, want 1", len(got))
	}
}
