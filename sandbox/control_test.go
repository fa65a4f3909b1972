package sandbox

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestControlKeys(t *testing.T) {
	custom := &Keys{Yoco: ProviderKeys{TestSecretKey: "sk_test_custom"}, CheckoutCom: ProviderKeys{TestSecretKey: "sk_test_00000000-1111-2222-3333-444444444444"}}
	e := newEnv(t, Options{Keys: custom})
	var got Keys
	r := e.do("GET", "/_sandbox/keys", nil, nil)
	if err := jsonUnmarshal(r.body, &got); err != nil || r.status != 200 {
		t.Fatalf("%d %v", r.status, err)
	}
	want := DefaultKeys()
	want.Yoco.TestSecretKey = "sk_test_custom"
	// Checkout.com signs with its secret key: the webhook secret follows it.
	want.CheckoutCom.TestSecretKey = "sk_test_00000000-1111-2222-3333-444444444444"
	want.CheckoutCom.WebhookSecret = want.CheckoutCom.TestSecretKey
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("keys (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"checkoutcom", "smartpay", "yoco"}, sortedKeys(r.json(t))); d != "" {
		t.Errorf("keys JSON (-want +got):\n%s", d)
	}
	for _, k := range []string{want.Yoco.LiveSecretKey, want.Smartpay.LiveSecretKey} {
		if !strings.HasPrefix(k, "sk_live_") {
			t.Errorf("live key %q", k)
		}
	}
	if !strings.HasPrefix(want.Yoco.WebhookSecret, "whsec_") {
		t.Errorf("yoco webhook secret %q", want.Yoco.WebhookSecret)
	}
}

func TestControlPayments(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tc := range []struct {
		name   string
		body   string
		status int
		prefix string
	}{
		{"yoco", `{"provider":"yoco","amount":10000,"currency":"ZAR"}`, 201, "ch_"},
		{"checkoutcom test", `{"provider":"checkoutcom","amount":2000,"currency":"USD"}`, 201, "charge_test_"},
		{"checkoutcom live", `{"provider":"checkoutcom","amount":2000,"currency":"USD","mode":"live"}`, 201, "charge_"},
		{"smartpay test", `{"provider":"smartpay","amount":1000,"currency":"JPY","mode":"test"}`, 201, "payment_test_"},
		{"smartpay live", `{"provider":"smartpay","amount":1000,"currency":"JPY","mode":"live"}`, 201, "payment_live_"},
		{"smartpay outside JPY", `{"provider":"smartpay","amount":1000,"currency":"ZAR"}`, 400, ""},
		{"unknown provider", `{"provider":"stripe","amount":1,"currency":"USD"}`, 400, ""},
		{"zero amount", `{"provider":"yoco","amount":0,"currency":"ZAR"}`, 400, ""},
		{"fractional amount", `{"provider":"yoco","amount":1.5,"currency":"ZAR"}`, 400, ""},
		{"lowercase currency", `{"provider":"yoco","amount":1,"currency":"zar"}`, 400, ""},
		{"bad mode", `{"provider":"yoco","amount":1,"currency":"ZAR","mode":"prod"}`, 400, ""},
		{"unknown field", `{"provider":"yoco","amount":1,"currency":"ZAR","amt":1}`, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/_sandbox/payments", nil, tc.body)
			if r.status != tc.status {
				t.Fatalf("%d %s", r.status, r.body)
			}
			m := r.json(t)
			if tc.status != 201 {
				if m["error"] == "" {
					t.Errorf("no error message: %s", r.body)
				}
				return
			}
			id, _ := m["payment_id"].(string)
			if !strings.HasPrefix(id, tc.prefix) || (tc.prefix == "charge_" && strings.HasPrefix(id, "charge_test_")) {
				t.Errorf("payment_id %q, want prefix %s", id, tc.prefix)
			}
		})
	}
}

func TestControlFaultsWebhooksAndRefunds(t *testing.T) {
	h := newHook(t, 0)
	e := newEnv(t, Options{})
	if r := e.do("PUT", "/_sandbox/faults", nil, `{"provider":"checkoutcom","mode":"error_500","rate":1,"latency_ms":1}`); r.status != 200 {
		t.Fatalf("PUT faults: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/_sandbox/faults", nil, `{"provider":"nope","mode":"error_500","rate":1}`); r.status != 400 {
		t.Errorf("bad fault: %d", r.status)
	}
	ch := e.do("POST", "/_sandbox/payments", nil, `{"provider":"checkoutcom","amount":1000,"currency":"USD"}`).json(t)["payment_id"].(string)
	k := ckoAuth(e.sb.Keys().CheckoutCom.TestSecretKey)
	if r := e.do("POST", "/checkoutcom/v2/charges/"+ch+"/refund", k, `{"value":100}`); r.status != 500 {
		t.Errorf("with fault: %d", r.status)
	}
	if r := e.do("DELETE", "/_sandbox/faults?provider=checkoutcom", nil, nil); r.status != 204 {
		t.Errorf("DELETE: %d", r.status)
	}
	if r := e.do("PUT", "/_sandbox/webhooks", nil, `{"provider":"checkoutcom","url":"`+h.srv.URL+`"}`); r.status != 200 {
		t.Errorf("PUT webhooks: %d %s", r.status, r.body)
	}
	r := e.do("POST", "/checkoutcom/v2/charges/"+ch+"/refund", k, `{"value":100,"trackId":"T-1"}`)
	if r.status != 200 {
		t.Fatalf("after DELETE: %d %s", r.status, r.body)
	}
	h.next(t)
	var list refundList
	lr := e.do("GET", "/_sandbox/refunds?provider=checkoutcom&payment_id="+ch, nil, nil)
	if err := jsonUnmarshal(lr.body, &list); err != nil {
		t.Fatal(err)
	}
	want := []Refund{{ID: r.json(t)["id"].(string), PaymentID: ch, Amount: 100, Currency: "USD", TrackID: "T-1", Status: "Refunded"}}
	if d := cmp.Diff(want, list.Data); d != "" {
		t.Errorf("refunds (-want +got):\n%s", d)
	}
	all := e.do("GET", "/_sandbox/refunds?provider=checkoutcom", nil, nil)
	if err := jsonUnmarshal(all.body, &list); err != nil || len(list.Data) != 1 {
		t.Errorf("all refunds: %s", all.body)
	}
	if r := e.do("GET", "/_sandbox/refunds?provider=x", nil, nil); r.status != 400 {
		t.Errorf("unknown provider: %d", r.status)
	}
	if r := e.do("GET", "/_sandbox/refunds?provider=yoco&payment_id=ch_none", nil, nil); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"data":[]}` {
		t.Errorf("empty list: %d %s", r.status, r.body)
	}
}

// TestControlRefundsGroundTruth checks GET /_sandbox/refunds for the two
// idempotent providers: the record carries the Idempotency-Key, a replay
// adds nothing, and DELETE /_sandbox/faults without provider clears all.
func TestControlRefundsGroundTruth(t *testing.T) {
	e := newEnv(t, Options{})
	k := e.sb.Keys()
	for _, p := range []string{ProviderYoco, ProviderSmartpay} {
		if r := e.do("PUT", "/_sandbox/faults", nil, Fault{Provider: p, Mode: FaultApplyThen500, Rate: 1}); r.status != 200 {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
	}
	ch := e.payment(ProviderYoco, 1000, "ZAR", false)
	pay := e.payment(ProviderSmartpay, 1000, "JPY", false)
	reqs := []refundReq{
		{"/yoco/api/checkouts/" + ch + "/refund", idem(yocoAuth(k.Yoco.TestSecretKey), "y-1"), `{}`},
		{"/smartpay/v1/refunds", idem(spAuth(k.Smartpay.TestSecretKey), "s-1"), `{"payment":"` + pay + `","amount":400,"currency":"JPY","reason":"fraudulent"}`},
	}
	for _, r := range reqs {
		if a := e.do("POST", r.path, r.hdr, r.body); a.status != 500 {
			t.Fatalf("under apply_then_500: %d %s", a.status, a.body)
		}
	}
	if r := e.do("DELETE", "/_sandbox/faults", nil, nil); r.status != 204 {
		t.Fatalf("DELETE: %d", r.status)
	}
	if f := e.do("GET", "/_sandbox/faults", nil, nil); strings.TrimSpace(string(f.body)) != `{"data":[]}` {
		t.Errorf("faults after DELETE: %s", f.body)
	}
	var ids []string
	for _, r := range reqs {
		a := e.do("POST", r.path, r.hdr, r.body)
		if a.status >= 300 || a.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry: %d %v %s", a.status, a.header, a.body)
		}
		m := a.json(t)
		if id, ok := m["refundId"].(string); ok {
			ids = append(ids, id)
		} else {
			ids = append(ids, m["id"].(string))
		}
	}
	for i, tc := range []struct {
		provider, payment string
		want              Refund
	}{
		{ProviderYoco, ch, Refund{PaymentID: ch, Amount: 1000, Currency: "ZAR", IdempotencyKey: "y-1", Status: "succeeded"}},
		{ProviderSmartpay, pay, Refund{PaymentID: pay, Amount: 400, Currency: "JPY", IdempotencyKey: "s-1", Status: "succeeded"}},
	} {
		var list refundList
		if err := jsonUnmarshal(e.do("GET", "/_sandbox/refunds?provider="+tc.provider+"&payment_id="+tc.payment, nil, nil).body, &list); err != nil {
			t.Fatal(err)
		}
		tc.want.ID = ids[i]
		if d := cmp.Diff([]Refund{tc.want}, list.Data); d != "" {
			t.Errorf("%s refunds (-want +got):\n%s", tc.provider, d)
		}
	}
}
