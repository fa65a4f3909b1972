package httpapi_test

import (
	"testing"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
	"github.com/refundgate/refundgate/store/sqlite"
)

// The first refund of a payment keeps the payment's facts in its own
// phase-1 commit: two durable writes, not three, and one lookup at the
// provider for all the payment's refunds.
func TestFirstRefundOfAPaymentIsTwoWrites(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	e.NoWebhooks()
	st := e.Store.(*sqlite.Store)
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	before := st.Stats().Ops
	r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 4000, "currency": "EUR"})
	if r.Status != 201 || r.Str(t, "status") != "succeeded" {
		t.Fatalf("first refund: %d %s", r.Status, r.Body)
	}
	if n := st.Stats().Ops - before; n != 2 {
		t.Errorf("the first refund of a payment took %d store writes, want 2 (the refund with the payment's facts, then its outcome)", n)
	}
	if r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 4000}); r.Status != 201 {
		t.Fatalf("second refund: %d %s", r.Status, r.Body)
	}
	if n := e.ProviderCalls("GET /checkoutcom/v2/charges/"); n != 1 {
		t.Errorf("the gateway looked the payment up %d times, want 1", n)
	}
	wantProblem(t, e.Refund(t, map[string]any{"payment_id": pay, "amount": 2001}), 422, "amount_exceeds_refundable")
	ref := e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme}).JSON(t)
	if ref["captured_amount"] != float64(10000) || ref["refundable_amount"] != float64(2000) {
		t.Errorf("refundable after two refunds of 4000 from 10000: %v", ref)
	}
}

// A refused first refund still keeps what the lookup learned: the next
// request reads the store, not the provider.
func TestRefusedFirstRefundKeepsThePayment(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Policy: "{max_amount: 5000}"})
	e.NoWebhooks()
	for _, c := range []struct {
		name string
		body map[string]any
		code string
	}{
		// Refused by the ledger inside the store's Create.
		{"over the captured amount", map[string]any{"amount": 20000}, "amount_exceeds_refundable"},
		// Refused before Create, against the payment's facts.
		{"another currency", map[string]any{"amount": 100, "currency": "USD"}, "currency_mismatch"},
		// Refused by the merchant's policy.
		{"over the policy's maximum", map[string]any{"amount": 6000}, "policy_violation"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
			c.body["payment_id"] = pay
			wantProblem(t, e.Refund(t, c.body), 422, c.code)
			if r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 1000}); r.Status != 201 {
				t.Fatalf("refund after the refusal: %d %s", r.Status, r.Body)
			}
			if n := e.ProviderCalls("GET /checkoutcom/v2/charges/" + pay); n != 1 {
				t.Errorf("the gateway looked the payment up %d times, want 1", n)
			}
		})
	}
}
