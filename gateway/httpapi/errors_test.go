package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

// TestErrorCatalogue drives every error code the API can produce through
// the real gateway, and checks that a refused request changes nothing.
func TestErrorCatalogue(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{
		Policy: "{max_amount: 500000, approval_above: 200000}",
		ExtraProviders: func(url string) string {
			return `  - {name: yoco-badkey, type: yoco, base_url: "` + url + `/yoco/api", secret_key: "sk_test_wrong_key_0000000000", timeout: 2s}
`
		},
		AcmeProviders: []string{"yoco-badkey"},
	})
	yoco := e.Payment(t, sandbox.ProviderYoco, 10000, "ZAR")
	cko := e.Payment(t, sandbox.ProviderCheckoutCom, 900000, "EUR")
	live, err := e.Sandbox.CreatePayment(sandbox.ProviderCheckoutCom, 1000, "EUR", true)
	if err != nil {
		t.Fatal(err)
	}
	key := func() map[string]string { return map[string]string{"Idempotency-Key": gatewaytest.NewKey()} }
	post := func(body any, h map[string]string) *gatewaytest.Response {
		return e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	}
	meta11 := map[string]string{}
	for i := 0; i < 11; i++ {
		meta11[fmt.Sprintf("k%d", i)] = "v"
	}
	meta21 := map[string]string{}
	for i := 0; i < 21; i++ {
		meta21[fmt.Sprintf("k%d", i)] = "v"
	}
	tests := []struct {
		name   string
		do     func() *gatewaytest.Response
		status int
		code   string
		param  string
	}{
		{"malformed json", func() *gatewaytest.Response { return post(`{"payment_id":`, key()) }, 400, "malformed_json", ""},
		{"two json values", func() *gatewaytest.Response { return post(`{"payment_id":"x"} {}`, key()) }, 400, "malformed_json", ""},
		{"no idempotency key", func() *gatewaytest.Response { return post(map[string]any{"payment_id": cko}, nil) }, 400, "idempotency_key_required", "Idempotency-Key"},
		{"idempotency key too long", func() *gatewaytest.Response {
			return post(map[string]any{"payment_id": cko}, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)})
		}, 400, "idempotency_key_required", "Idempotency-Key"},
		{"no key", func() *gatewaytest.Response { return e.Do(t, req{Method: "GET", Path: "/v1/refunds"}) }, 401, "unauthenticated", ""},
		{"wrong key", func() *gatewaytest.Response {
			return e.Do(t, req{Method: "GET", Path: "/v1/refunds", Key: "rk_test_nobody_000000000000"})
		}, 401, "unauthenticated", ""},
		{"unknown refund", func() *gatewaytest.Response {
			return e.Do(t, req{Method: "GET", Path: "/v1/refunds/rf_nope", Key: acme})
		}, 404, "not_found", ""},
		{"unknown route", func() *gatewaytest.Response { return e.Do(t, req{Method: "GET", Path: "/v2/whatever", Key: acme}) }, 404, "not_found", ""},
		{"payment not found", func() *gatewaytest.Response {
			return post(map[string]any{"payment_id": "charge_test_NOPE0000000000000000"}, key())
		}, 404, "payment_not_found", "payment_id"},
		{"body too large", func() *gatewaytest.Response {
			return post(`{"payment_id":"`+strings.Repeat("x", 70000)+`"}`, key())
		}, 413, "body_too_large", ""},
		{"not json", func() *gatewaytest.Response {
			return e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: "payment_id=x",
				Header: map[string]string{"Idempotency-Key": "k1", "Content-Type": "application/x-www-form-urlencoded"}})
		}, 415, "unsupported_media_type", ""},
		{"unknown field", func() *gatewaytest.Response { return post(map[string]any{"payment_id": cko, "amout": 5}, key()) }, 422, "validation_failed", "amout"},
		{"payment id required", func() *gatewaytest.Response { return post(map[string]any{"amount": 5}, key()) }, 422, "validation_failed", "payment_id"},
		{"float amount", func() *gatewaytest.Response { return post(`{"payment_id":"`+cko+`","amount":10.5}`, key()) }, 422, "validation_failed", "amount"},
		{"zero amount", func() *gatewaytest.Response { return post(map[string]any{"payment_id": cko, "amount": 0}, key()) }, 422, "validation_failed", "amount"},
		{"lowercase currency", func() *gatewaytest.Response { return post(map[string]any{"payment_id": cko, "currency": "eur"}, key()) }, 422, "validation_failed", "currency"},
		{"unknown reason", func() *gatewaytest.Response {
			return post(map[string]any{"payment_id": cko, "reason": "because"}, key())
		}, 422, "validation_failed", "reason"},
		{"21 metadata pairs", func() *gatewaytest.Response {
			return post(map[string]any{"payment_id": cko, "metadata": meta21}, key())
		}, 422, "validation_failed", "metadata"},
		{"long reference", func() *gatewaytest.Response {
			return post(map[string]any{"payment_id": cko, "reference": strings.Repeat("r", 65)}, key())
		}, 422, "validation_failed", "reference"},
		{"no route", func() *gatewaytest.Response { return post(map[string]any{"payment_id": "unknown_123"}, key()) }, 422, "no_route", "provider"},
		{"unknown provider", func() *gatewaytest.Response {
			return post(map[string]any{"payment_id": cko, "provider": "stripe-live"}, key())
		}, 422, "unknown_provider", "provider"},
		{"partial on yoco", func() *gatewaytest.Response { return post(map[string]any{"payment_id": yoco, "amount": 500}, key()) }, 422, "partial_refund_unsupported", "amount"},
		{"over refund", func() *gatewaytest.Response { return post(map[string]any{"payment_id": cko, "amount": 900001}, key()) }, 422, "amount_exceeds_refundable", "amount"},
		{"currency mismatch", func() *gatewaytest.Response { return post(map[string]any{"payment_id": cko, "currency": "ZAR"}, key()) }, 422, "currency_mismatch", "currency"},
		{"live payment on a test account", func() *gatewaytest.Response { return post(map[string]any{"payment_id": live}, key()) }, 422, "mode_mismatch", "payment_id"},
		{"11 metadata pairs on checkoutcom", func() *gatewaytest.Response {
			return post(map[string]any{"payment_id": cko, "amount": 100, "metadata": meta11}, key())
		}, 422, "provider_limit_exceeded", "metadata"},
		{"provider refuses our key", func() *gatewaytest.Response {
			return post(map[string]any{"payment_id": yoco, "provider": "yoco-badkey"}, key())
		}, 502, "provider_auth_failed", ""},
		{"above max amount", func() *gatewaytest.Response { return post(map[string]any{"payment_id": cko, "amount": 500001}, key()) }, 422, "policy_violation", "amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := wantProblem(t, tt.do(), tt.status, tt.code)
			if tt.param != "" && p["param"] != tt.param {
				t.Errorf("param = %v, want %s", p["param"], tt.param)
			}
		})
	}
	// None of those changed anything.
	list := e.Do(t, req{Method: "GET", Path: "/v1/refunds", Key: acme})
	if n := len(list.JSON(t)["data"].([]any)); n != 0 {
		t.Errorf("refused requests stored %d refunds: %s", n, list.Body)
	}
	for _, p := range []struct{ provider, id string }{{sandbox.ProviderYoco, yoco}, {sandbox.ProviderCheckoutCom, cko}} {
		if n := len(e.Sandbox.Refunds(p.provider, p.id)); n != 0 {
			t.Errorf("refused requests made %d refunds at %s", n, p.provider)
		}
	}
}

func TestInvalidStateAndApproval(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Policy: "{approval_above: 5000}"})
	cko := e.Payment(t, sandbox.ProviderCheckoutCom, 20000, "EUR")
	small := e.Refund(t, map[string]any{"payment_id": cko, "amount": 1000})
	if small.Status != 201 {
		t.Fatalf("small refund: %d %s", small.Status, small.Body)
	}
	wantProblem(t, e.Do(t, req{Method: "POST", Path: "/v1/refunds/" + small.Str(t, "id") + "/approve", Key: acme}), 409, "invalid_state")

	held := e.Refund(t, map[string]any{"payment_id": cko, "amount": 6000})
	if held.Status != 202 || held.Str(t, "status") != "requires_approval" {
		t.Fatalf("held refund: %d %s", held.Status, held.Body)
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, cko)); n != 1 {
		t.Fatalf("a held refund reached the provider: %d refunds", n)
	}
	// Held refunds count against the refundable amount.
	wantProblem(t, e.Refund(t, map[string]any{"payment_id": cko, "amount": 13001}), 422, "amount_exceeds_refundable")
	ok := e.Do(t, req{Method: "POST", Path: "/v1/refunds/" + held.Str(t, "id") + "/approve", Key: acme})
	if ok.Status != 200 || ok.Str(t, "status") != "succeeded" {
		t.Fatalf("approve: %d %s", ok.Status, ok.Body)
	}
	held2 := e.Refund(t, map[string]any{"payment_id": cko, "amount": 6000})
	c := e.Do(t, req{Method: "POST", Path: "/v1/refunds/" + held2.Str(t, "id") + "/cancel", Key: acme})
	if c.Status != 200 || c.Str(t, "status") != "canceled" {
		t.Fatalf("cancel: %d %s", c.Status, c.Body)
	}
	wantProblem(t, e.Do(t, req{Method: "POST", Path: "/v1/refunds/" + held2.Str(t, "id") + "/cancel", Key: acme}), 409, "invalid_state")
	// Another merchant sees 404, never 403.
	wantProblem(t, e.Do(t, req{Method: "POST", Path: "/v1/refunds/" + held2.Str(t, "id") + "/cancel", Key: gatewaytest.GlobexKey}), 404, "not_found")
	wantProblem(t, e.Do(t, req{Method: "GET", Path: "/v1/refunds/" + small.Str(t, "id"), Key: gatewaytest.GlobexKey}), 404, "not_found")
}
