package sandbox

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func yocoAuth(key string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + key}
}

func TestYocoRefundReproducesSeedResponse(t *testing.T) {
	e := newEnv(t, Options{})
	k := e.sb.Keys().Yoco
	for _, tc := range []struct {
		name string
		body any
	}{
		{"no body, as the seed's cURL", nil},
		{"metadata", `{"metadata":{"order":"1042"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := e.payment(ProviderYoco, 10000, "ZAR", true)
			r := e.do("POST", "/yoco/api/checkouts/"+ch+"/refund", yocoAuth(k.LiveSecretKey), tc.body)
			if r.status != http.StatusAccepted {
				t.Fatalf("status %d, want 202: %s", r.status, r.body)
			}
			got, seed := r.json(t), decodeMap(t, readTestdata(t, "yoco_refund_response.json"))
			if d := cmp.Diff(shape(seed), shape(got)); d != "" {
				t.Errorf("key set/types differ from the seed (-seed +got):\n%s", d)
			}
			// Ids have the seed's form: the same prefix, alphabet and length.
			for _, f := range []string{"id", "refundId"} {
				if re := idForm(seed[f].(string)); !re.MatchString(got[f].(string)) {
					t.Errorf("%s %q does not match the seed's form %s", f, got[f], re)
				}
			}
			if got["id"] != ch {
				t.Errorf("id %v, want the checkout %s", got["id"], ch)
			}
			// Field for field, the random ids aside.
			seed["id"], seed["refundId"] = got["id"], got["refundId"]
			if d := cmp.Diff(seed, got); d != "" {
				t.Errorf("answer (-seed +got):\n%s", d)
			}
			// Settle delay 0: final before the answer.
			c := e.do("GET", "/yoco/api/checkouts/"+ch, yocoAuth(k.LiveSecretKey), nil).json(t)
			if c["status"] != "refunded" || c["processingMode"] != "live" || c["refundedAmount"] != float64(10000) {
				t.Errorf("checkout after refund: %v", c)
			}
		})
	}
}

func TestYocoCheckoutObject(t *testing.T) {
	e := newEnv(t, Options{})
	k := e.sb.Keys().Yoco
	ch := e.payment(ProviderYoco, 900, "ZAR", false)
	c := e.do("GET", "/yoco/api/checkouts/"+ch, yocoAuth(k.TestSecretKey), nil)
	if c.status != 200 {
		t.Fatalf("status %d: %s", c.status, c.body)
	}
	m := c.json(t)
	want := map[string]any{"id": ch, "status": "completed", "amount": float64(900), "currency": "ZAR", "processingMode": "test", "refundedAmount": float64(0)}
	for f, v := range want {
		if m[f] != v {
			t.Errorf("%s = %v, want %v", f, m[f], v)
		}
	}
	if p, _ := m["paymentId"].(string); !strings.HasPrefix(p, "p_") {
		t.Errorf("paymentId %q", p)
	}
}

func TestYocoErrors(t *testing.T) {
	e := newEnv(t, Options{})
	k := e.sb.Keys().Yoco
	testCh := e.payment(ProviderYoco, 1000, "ZAR", false)
	done := e.payment(ProviderYoco, 1000, "ZAR", false)
	if r := e.do("POST", "/yoco/api/checkouts/"+done+"/refund", yocoAuth(k.TestSecretKey), nil); r.status != 202 {
		t.Fatalf("setup refund: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		body   string
		status int
		code   string
	}{
		{"missing key", "POST", "/yoco/api/checkouts/" + testCh + "/refund", nil, "", 403, "forbidden"},
		{"wrong key", "POST", "/yoco/api/checkouts/" + testCh + "/refund", yocoAuth("sk_test_nope"), "", 403, "forbidden"},
		{"key without Bearer", "POST", "/yoco/api/checkouts/" + testCh + "/refund", map[string]string{"Authorization": k.TestSecretKey}, "", 403, "forbidden"},
		{"missing key on GET", "GET", "/yoco/api/checkouts/" + testCh, nil, "", 403, "forbidden"},
		{"unknown checkout", "POST", "/yoco/api/checkouts/ch_unknown/refund", yocoAuth(k.TestSecretKey), "", 404, "checkout_not_found"},
		{"live key, test checkout", "POST", "/yoco/api/checkouts/" + testCh + "/refund", yocoAuth(k.LiveSecretKey), "", 404, "checkout_not_found"},
		{"live key GET test checkout", "GET", "/yoco/api/checkouts/" + testCh, yocoAuth(k.LiveSecretKey), "", 404, "checkout_not_found"},
		{"amount without partial refunds", "POST", "/yoco/api/checkouts/" + testCh + "/refund", yocoAuth(k.TestSecretKey), `{"amount":100}`, 400, "partial_refunds_not_enabled"},
		{"malformed JSON", "POST", "/yoco/api/checkouts/" + testCh + "/refund", yocoAuth(k.TestSecretKey), `{"metadata":`, 400, "invalid_request"},
		{"already refunded", "POST", "/yoco/api/checkouts/" + done + "/refund", yocoAuth(k.TestSecretKey), "", 400, "checkout_already_refunded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := e.do(tc.method, tc.path, tc.hdr, body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			m := r.json(t)
			if d := cmp.Diff([]string{"displayMessage", "errorCode", "errorMessage", "errorType"}, sortedKeys(m)); d != "" {
				t.Errorf("error body keys (-want +got):\n%s", d)
			}
			if m["errorCode"] != tc.code {
				t.Errorf("errorCode %v, want %s", m["errorCode"], tc.code)
			}
		})
	}
	if n := len(e.sb.Refunds(ProviderYoco, testCh)); n != 0 {
		t.Errorf("%d refunds recorded on refused requests", n)
	}
}

func TestYocoPartialRefunds(t *testing.T) {
	e := newEnv(t, Options{YocoPartialRefunds: true})
	k := yocoAuth(e.sb.Keys().Yoco.TestSecretKey)
	ch := e.payment(ProviderYoco, 1000, "ZAR", false)
	steps := []struct {
		body   string
		status int
		after  string
	}{
		{`{"amount":300}`, 202, "completed"},
		{`{"amount":800}`, 400, "completed"},
		{`{"amount":0}`, 400, "completed"},
		{`{"amount":"12"}`, 400, "completed"},
		{`{}`, 202, "refunded"},
		{`{"amount":1}`, 400, "refunded"},
	}
	for i, s := range steps {
		r := e.do("POST", "/yoco/api/checkouts/"+ch+"/refund", k, s.body)
		if r.status != s.status {
			t.Fatalf("step %d %s: status %d, want %d: %s", i, s.body, r.status, s.status, r.body)
		}
		if st := e.do("GET", "/yoco/api/checkouts/"+ch, k, nil).json(t)["status"]; st != s.after {
			t.Fatalf("step %d: checkout status %v, want %s", i, st, s.after)
		}
	}
	var amounts []int64
	for _, rf := range e.sb.Refunds(ProviderYoco, ch) {
		amounts = append(amounts, rf.Amount)
	}
	if d := cmp.Diff([]int64{300, 700}, amounts); d != "" {
		t.Errorf("refund amounts (-want +got):\n%s", d)
	}
}

func TestYocoAsyncSettlementAndReversal(t *testing.T) {
	e := newEnv(t, Options{YocoSettleDelay: 30 * time.Millisecond, YocoReversedRate: 1})
	k := yocoAuth(e.sb.Keys().Yoco.TestSecretKey)
	ch := e.payment(ProviderYoco, 500, "ZAR", false)
	if r := e.do("POST", "/yoco/api/checkouts/"+ch+"/refund", k, nil); r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	c := e.do("GET", "/yoco/api/checkouts/"+ch, k, nil).json(t)
	if c["status"] != "completed" {
		t.Errorf("status right after 202 = %v, want completed (not final yet)", c["status"])
	}
	// A second refund while the first settles is refused.
	if r := e.do("POST", "/yoco/api/checkouts/"+ch+"/refund", k, nil); r.status != 400 {
		t.Errorf("second refund: %d %s", r.status, r.body)
	}
	eventually(t, "checkout reversed", func() bool {
		return e.do("GET", "/yoco/api/checkouts/"+ch, k, nil).json(t)["status"] == "reversed"
	})
	rfs := e.sb.Refunds(ProviderYoco, ch)
	if len(rfs) != 1 || rfs[0].Status != "succeeded" || rfs[0].Amount != 500 {
		t.Errorf("refunds %+v", rfs)
	}
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func idem(h map[string]string, key string) map[string]string {
	out := map[string]string{"Idempotency-Key": key}
	for k, v := range h {
		out[k] = v
	}
	return out
}

func TestYocoIdempotency(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, Options{YocoPartialRefunds: true, Now: clock.Now})
	keys := e.sb.Keys().Yoco
	k := yocoAuth(keys.TestSecretKey)
	ch := e.payment(ProviderYoco, 1000, "ZAR", false)
	path := "/yoco/api/checkouts/" + ch + "/refund"

	first := e.do("POST", path, idem(k, "key-1"), `{"amount":100,"metadata":{"a":"1"}}`)
	if first.status != 202 || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.status, first.header, first.body)
	}
	// The same payload (whitespace and key order aside) replays.
	replay := e.do("POST", path, idem(k, "key-1"), `{ "metadata": {"a":"1"}, "amount": 100 }`)
	if replay.status != 202 || replay.header.Get("Idempotent-Replayed") != "true" || string(replay.body) != string(first.body) {
		t.Errorf("replay: %d %v %s, want 202 replayed %s", replay.status, replay.header, replay.body, first.body)
	}
	if mm := e.do("POST", path, idem(k, "key-1"), `{"amount":200}`); mm.status != 422 {
		t.Errorf("same key, other payload: %d %s, want 422", mm.status, mm.body)
	}
	if n := len(e.sb.Refunds(ProviderYoco, ch)); n != 1 {
		t.Fatalf("%d refunds, want 1", n)
	}
	// Keys are scoped per secret key: the live key does not see key-1.
	live := e.payment(ProviderYoco, 1000, "ZAR", true)
	if r := e.do("POST", "/yoco/api/checkouts/"+live+"/refund", idem(yocoAuth(keys.LiveSecretKey), "key-1"), `{"amount":100,"metadata":{"a":"1"}}`); r.status != 202 || r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("live key with the test key's idempotency key: %d %v", r.status, r.header)
	}
	// Refusals do not bind the key.
	if r := e.do("POST", path, idem(k, "key-2"), `{"amount":5000}`); r.status != 400 {
		t.Fatalf("over-refund: %d", r.status)
	}
	if r := e.do("POST", path, idem(k, "key-2"), `{"amount":50}`); r.status != 202 || r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("key reused after a refusal: %d %v", r.status, r.header)
	}
	// After 24 hours the key is forgotten.
	clock.Advance(24*time.Hour + time.Second)
	if r := e.do("POST", path, idem(k, "key-1"), `{"amount":200}`); r.status != 202 || r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("key-1 after 24h: %d %v %s", r.status, r.header, r.body)
	}
	if n := len(e.sb.Refunds(ProviderYoco, ch)); n != 3 {
		t.Errorf("%d refunds, want 3", n)
	}
}

func TestYocoIdempotencyInFlight(t *testing.T) {
	e := newEnv(t, Options{})
	k := idem(yocoAuth(e.sb.Keys().Yoco.TestSecretKey), "inflight")
	ch := e.payment(ProviderYoco, 1000, "ZAR", false)
	path := "/yoco/api/checkouts/" + ch + "/refund"
	entered, release := holdApply(e.sb)
	defer release()
	firstDone := make(chan resp, 1)
	go func() { firstDone <- e.do("POST", path, k, `{}`) }()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("first request never reached apply")
	}
	if r := e.do("POST", path, k, `{}`); r.status != 409 {
		t.Errorf("second request while the first is in flight: %d %s, want 409", r.status, r.body)
	}
	release()
	if r := <-firstDone; r.status != 202 {
		t.Errorf("first: %d %s", r.status, r.body)
	}
	if r := e.do("POST", path, k, `{}`); r.status != 202 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("after the first finished: %d %v", r.status, r.header)
	}
}

func TestYocoWebhookVerifiesWithStandardWebhooks(t *testing.T) {
	h := newHook(t, 0)
	e := newEnv(t, Options{YocoSettleDelay: 10 * time.Millisecond})
	e.sb.SetWebhookURL(ProviderYoco, h.srv.URL)
	keys := e.sb.Keys().Yoco
	ch := e.payment(ProviderYoco, 900, "ZAR", true)
	r := e.do("POST", "/yoco/api/checkouts/"+ch+"/refund", yocoAuth(keys.LiveSecretKey), `{"metadata":{"order":"1042"}}`)
	if r.status != 202 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got := h.next(t)
	wh, err := standardwebhooks.NewWebhook(keys.WebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(got.body, got.header); err != nil {
		t.Fatalf("standard-webhooks verification: %v", err)
	}
	if err := wh.Verify(append([]byte(nil), append(got.body, ' ')...), got.header); err == nil {
		t.Error("a tampered body verified")
	}
	ev, seed := decodeMap(t, got.body), decodeMap(t, readTestdata(t, "yoco_webhook_refund_succeeded.json"))
	wantShape := shape(seed)
	wantShape[".payload.metadata.order"] = "string"
	if d := cmp.Diff(wantShape, shape(ev)); d != "" {
		t.Errorf("event key set/types (-seed +got):\n%s", d)
	}
	var typed yocoEvent
	if err := json.Unmarshal(got.body, &typed); err != nil {
		t.Fatal(err)
	}
	refundID := decodeMap(t, r.body)["refundId"]
	want := yocoEventPayload{ID: refundID.(string), Type: "refund", Amount: 900, Currency: "ZAR", PaymentID: typed.Payload.PaymentID,
		Status: "succeeded", Mode: "live", Metadata: map[string]any{"checkoutId": ch, "order": "1042"}}
	if d := cmp.Diff(want, typed.Payload, cmp.AllowUnexported()); d != "" {
		t.Errorf("payload (-want +got):\n%s", d)
	}
	if typed.Type != "refund.succeeded" || !strings.HasPrefix(typed.ID, "evt_") || !strings.HasPrefix(typed.Payload.PaymentID, "p_") {
		t.Errorf("event %+v", typed)
	}
	if _, err := time.Parse(time.RFC3339, typed.CreatedDate); err != nil {
		t.Errorf("createdDate %q: %v", typed.CreatedDate, err)
	}
}

// idForm is the pattern of ids shaped like the example: its prefix up to
// the last '_', then as many letters and digits.
func idForm(example string) *regexp.Regexp {
	i := strings.LastIndexByte(example, '_') + 1
	return regexp.MustCompile("^" + regexp.QuoteMeta(example[:i]) + "[A-Za-z0-9]{" + strconv.Itoa(len(example)-i) + "}$")
}

func TestYocoCheckoutLifecycle(t *testing.T) {
	e := newEnv(t, Options{})
	k := yocoAuth(e.sb.Keys().Yoco.TestSecretKey)
	for _, tc := range []struct {
		status string
		refund int
		code   string
		after  string
	}{
		{YocoCheckoutCreated, 400, "checkout_not_completed", YocoCheckoutCreated},
		{YocoCheckoutStarted, 400, "checkout_not_completed", YocoCheckoutStarted},
		{YocoCheckoutProcessing, 400, "checkout_not_completed", YocoCheckoutProcessing},
		{YocoCheckoutCompleted, 202, "", YocoCheckoutRefunded},
	} {
		t.Run(tc.status, func(t *testing.T) {
			r := e.do("POST", "/_sandbox/payments", nil, map[string]any{"provider": "yoco", "amount": 700, "currency": "ZAR", "status": tc.status})
			if r.status != 201 {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			ch := r.json(t)["payment_id"].(string)
			if st := e.do("GET", "/yoco/api/checkouts/"+ch, k, nil).json(t)["status"]; st != tc.status {
				t.Errorf("status %v, want %s", st, tc.status)
			}
			rr := e.do("POST", "/yoco/api/checkouts/"+ch+"/refund", k, nil)
			if rr.status != tc.refund || (tc.code != "" && rr.json(t)["errorCode"] != tc.code) {
				t.Errorf("refund: %d %s, want %d %s", rr.status, rr.body, tc.refund, tc.code)
			}
			if st := e.do("GET", "/yoco/api/checkouts/"+ch, k, nil).json(t)["status"]; st != tc.after {
				t.Errorf("status after the refund %v, want %s", st, tc.after)
			}
		})
	}
	for _, bad := range []map[string]any{
		{"provider": "yoco", "amount": 700, "currency": "ZAR", "status": "refunded"},
		{"provider": "smartpay", "amount": 700, "currency": "JPY", "status": "completed"},
	} {
		if r := e.do("POST", "/_sandbox/payments", nil, bad); r.status != 400 {
			t.Errorf("%v: %d %s, want 400", bad, r.status, r.body)
		}
	}
}

func TestYocoLiveRefundsOnly(t *testing.T) {
	e := newEnv(t, Options{YocoLiveRefundsOnly: true})
	keys := e.sb.Keys().Yoco
	test := e.payment(ProviderYoco, 1000, "ZAR", false)
	r := e.do("POST", "/yoco/api/checkouts/"+test+"/refund", yocoAuth(keys.TestSecretKey), nil)
	if r.status != 400 || r.json(t)["errorCode"] != "live_checkout_required" {
		t.Errorf("test checkout: %d %s, want 400 live_checkout_required", r.status, r.body)
	}
	live := e.payment(ProviderYoco, 1000, "ZAR", true)
	if r := e.do("POST", "/yoco/api/checkouts/"+live+"/refund", yocoAuth(keys.LiveSecretKey), nil); r.status != 202 {
		t.Errorf("live checkout: %d %s", r.status, r.body)
	}
}

// TestYocoFailedRefund checks the other final state: 202 successful, then
// refund.failed (verified with the standard-webhooks library), the checkout
// still completed and its amount refundable again.
func TestYocoFailedRefund(t *testing.T) {
	h := newHook(t, 0)
	e := newEnv(t, Options{YocoFailedRate: 1, YocoSettleDelay: 10 * time.Millisecond})
	e.sb.SetWebhookURL(ProviderYoco, h.srv.URL)
	keys := e.sb.Keys().Yoco
	k := yocoAuth(keys.LiveSecretKey)
	ch := e.payment(ProviderYoco, 900, "ZAR", true)
	r := e.do("POST", "/yoco/api/checkouts/"+ch+"/refund", k, nil)
	if r.status != 202 || r.json(t)["status"] != "successful" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got := h.next(t)
	wh, err := standardwebhooks.NewWebhook(keys.WebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(got.body, got.header); err != nil {
		t.Fatalf("standard-webhooks verification: %v", err)
	}
	var ev yocoEvent
	if err := json.Unmarshal(got.body, &ev); err != nil {
		t.Fatal(err)
	}
	want := yocoEventPayload{ID: r.json(t)["refundId"].(string), Type: "refund", Amount: 900, Currency: "ZAR",
		PaymentID: ev.Payload.PaymentID, Status: "failed", Mode: "live", Metadata: map[string]any{"checkoutId": ch}}
	if ev.Type != "refund.failed" {
		t.Errorf("type %q, want refund.failed", ev.Type)
	}
	if d := cmp.Diff(want, ev.Payload); d != "" {
		t.Errorf("payload (-want +got):\n%s", d)
	}
	c := e.do("GET", "/yoco/api/checkouts/"+ch, k, nil).json(t)
	if c["status"] != "completed" || c["refundedAmount"] != float64(0) {
		t.Errorf("checkout after a failed refund: status %v refundedAmount %v", c["status"], c["refundedAmount"])
	}
	if rfs := e.sb.Refunds(ProviderYoco, ch); len(rfs) != 1 || rfs[0].Status != "failed" {
		t.Errorf("ground truth %+v", rfs)
	}
	if r := e.do("POST", "/yoco/api/checkouts/"+ch+"/refund", k, nil); r.status != 202 {
		t.Errorf("refund after a failed one: %d %s", r.status, r.body)
	}
}
