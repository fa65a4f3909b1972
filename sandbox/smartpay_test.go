package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func spAuth(key string) map[string]string { return map[string]string{"Authorization": "Basic " + key} }

func TestSmartpayCreateRefund(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, Options{Now: clock.Now})
	k := spAuth(e.sb.Keys().Smartpay.TestSecretKey)
	pay := e.payment(ProviderSmartpay, 1000, "JPY", false)
	r := e.do("POST", "/smartpay/v1/refunds", idem(k, "sp-1"), map[string]any{
		"payment": pay, "amount": 500, "currency": "JPY", "reason": "requested_by_customer",
		"reference": "ORDER-1042", "description": "Returned item", "lineItems": []string{"li_test_1"},
		"metadata": map[string]string{"order": "1042"},
	})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got, seed := r.json(t), decodeMap(t, readTestdata(t, "smartpay_refund_response.json"))
	if d := cmp.Diff(shape(seed), shape(got)); d != "" {
		t.Errorf("key set/types (-want +got):\n%s", d)
	}
	id, _ := got["id"].(string)
	if !strings.HasPrefix(id, "refund_test_") {
		t.Errorf("id %q", id)
	}
	ms := float64(clock.Now().UnixMilli())
	seed["id"], seed["payment"], seed["createdAt"], seed["updatedAt"] = id, pay, ms, ms
	if d := cmp.Diff(seed, got); d != "" {
		t.Errorf("refund (-want +got):\n%s", d)
	}
	// Amount defaults to the unrefunded rest; optional fields are null.
	r = e.do("POST", "/smartpay/v1/refunds", k, map[string]any{"payment": pay, "currency": "JPY", "reason": "fraudulent"})
	rest := r.json(t)
	if r.status != 200 || rest["amount"] != float64(500) || rest["reference"] != nil || rest["reason"] != "fraudulent" {
		t.Errorf("rest refund: %d %s", r.status, r.body)
	}
	// The lookups.
	if g := e.do("GET", "/smartpay/v1/refunds/"+id, k, nil); g.status != 200 || cmp.Diff(got, g.json(t)) != "" {
		t.Errorf("GET refund: %d %s", g.status, g.body)
	}
	p := e.do("GET", "/smartpay/v1/payments/"+pay, k, nil).json(t)
	if p["amount"] != float64(1000) || p["currency"] != "JPY" || p["refundedAmount"] != float64(1000) || len(p["refunds"].([]any)) != 2 || p["test"] != true {
		t.Errorf("GET payment: %v", p)
	}
}

func TestSmartpayErrors(t *testing.T) {
	e := newEnv(t, Options{})
	keys := e.sb.Keys().Smartpay
	test, live := spAuth(keys.TestSecretKey), spAuth(keys.LiveSecretKey)
	pay := e.payment(ProviderSmartpay, 1000, "JPY", false)
	livePay := e.payment(ProviderSmartpay, 1000, "JPY", true)
	full := e.payment(ProviderSmartpay, 100, "JPY", false)
	if r := e.do("POST", "/smartpay/v1/refunds", test, map[string]any{"payment": full, "currency": "JPY", "reason": "fraudulent"}); r.status != 200 {
		t.Fatalf("setup %d %s", r.status, r.body)
	}
	ok := func(extra map[string]any) map[string]any {
		b := map[string]any{"payment": pay, "currency": "JPY", "reason": "requested_by_customer", "amount": 100}
		for k, v := range extra {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	meta21 := map[string]string{}
	for i := range 21 {
		meta21[fmt.Sprint("k", i)] = "v"
	}
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		body   any
		status int
		code   string
		field  string // a detail must start with it
	}{
		{"no key", nil, ok(nil), 401, "unauthorized", ""},
		{"base64-encoded key", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(keys.TestSecretKey+":"))}, ok(nil), 401, "unauthorized", ""},
		{"Bearer key", map[string]string{"Authorization": "Bearer " + keys.TestSecretKey}, ok(nil), 401, "unauthorized", ""},
		{"unknown payment", test, ok(map[string]any{"payment": "payment_test_nope"}), 404, "payment.not-found", ""},
		{"test key, live payment", test, ok(map[string]any{"payment": livePay}), 404, "payment.not-found", ""},
		{"live key, test payment", live, ok(nil), 404, "payment.not-found", ""},
		{"over-refund", test, ok(map[string]any{"amount": 1001}), 403, "amount.insufficient", ""},
		{"already fully refunded", test, ok(map[string]any{"payment": full, "amount": nil}), 403, "amount.insufficient", ""},
		{"missing payment", test, ok(map[string]any{"payment": nil}), 400, "request.invalid", "payment"},
		{"missing currency", test, ok(map[string]any{"currency": nil}), 400, "request.invalid", "currency"},
		{"lowercase currency", test, ok(map[string]any{"currency": "jpy"}), 400, "request.invalid", "currency"},
		{"currency mismatch", test, ok(map[string]any{"currency": "USD"}), 400, "request.invalid", "currency"},
		{"missing reason", test, ok(map[string]any{"reason": nil}), 400, "request.invalid", "reason"},
		{"unknown reason", test, ok(map[string]any{"reason": "duplicate"}), 400, "request.invalid", "reason"},
		{"description over 80", test, ok(map[string]any{"description": strings.Repeat("d", 81)}), 400, "request.invalid", "description"},
		{"empty description", test, ok(map[string]any{"description": ""}), 400, "request.invalid", "description"},
		{"reference over 40", test, ok(map[string]any{"reference": strings.Repeat("r", 41)}), 400, "request.invalid", "reference"},
		{"21 metadata pairs", test, ok(map[string]any{"metadata": meta21}), 400, "request.invalid", "metadata"},
		{"negative amount", test, ok(map[string]any{"amount": -5}), 400, "request.invalid", "amount"},
		{"fractional amount", test, `{"payment":"` + pay + `","currency":"JPY","reason":"fraudulent","amount":1.5}`, 400, "request.invalid", "amount"},
		{"malformed JSON", test, `{"payment":`, 400, "request.invalid", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/smartpay/v1/refunds", tc.hdr, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			var body spErrorJSON
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff([]string{"details", "errorCode", "message", "statusCode"}, sortedKeys(r.json(t))); d != "" {
				t.Errorf("error keys (-want +got):\n%s", d)
			}
			if body.ErrorCode != tc.code || body.StatusCode != tc.status || body.Message == "" {
				t.Errorf("body %s", r.body)
			}
			if tc.field != "" {
				found := false
				for _, d := range body.Details {
					found = found || strings.HasPrefix(d, tc.field+" ")
				}
				if !found {
					t.Errorf("no detail names %s: %q", tc.field, body.Details)
				}
			}
		})
	}
	if n := len(e.sb.Refunds(ProviderSmartpay, pay)); n != 0 {
		t.Errorf("%d refunds recorded by refused requests", n)
	}
	for _, path := range []string{"/smartpay/v1/refunds/refund_test_nope", "/smartpay/v1/payments/" + livePay} {
		if r := e.do("GET", path, test, nil); r.status != 404 {
			t.Errorf("GET %s: %d", path, r.status)
		}
	}
}

func TestSmartpayIdempotency(t *testing.T) {
	e := newEnv(t, Options{})
	k := spAuth(e.sb.Keys().Smartpay.TestSecretKey)
	pay := e.payment(ProviderSmartpay, 1000, "JPY", false)
	body := map[string]any{"payment": pay, "amount": 100, "currency": "JPY", "reason": "requested_by_customer"}
	first := e.do("POST", "/smartpay/v1/refunds", idem(k, "k1"), body)
	again := e.do("POST", "/smartpay/v1/refunds", idem(k, "k1"), body)
	if first.status != 200 || again.status != 200 || again.header.Get("Idempotent-Replayed") != "true" || string(first.body) != string(again.body) {
		t.Errorf("replay: %d %d %v", first.status, again.status, again.header)
	}
	body["amount"] = 200
	if r := e.do("POST", "/smartpay/v1/refunds", idem(k, "k1"), body); r.status != 422 {
		t.Errorf("other payload: %d %s", r.status, r.body)
	}
	entered, release := holdApply(e.sb)
	defer release()
	done := make(chan resp, 1)
	go func() { done <- e.do("POST", "/smartpay/v1/refunds", idem(k, "k2"), body) }()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("request never reached apply")
	}
	if r := e.do("POST", "/smartpay/v1/refunds", idem(k, "k2"), body); r.status != 409 {
		t.Errorf("in flight: %d %s", r.status, r.body)
	}
	release()
	if r := <-done; r.status != 200 {
		t.Errorf("held request: %d", r.status)
	}
	rfs := e.sb.Refunds(ProviderSmartpay, pay)
	var got []string
	for _, rf := range rfs {
		got = append(got, rf.IdempotencyKey+"="+strconv.FormatInt(rf.Amount, 10))
	}
	if d := cmp.Diff([]string{"k1=100", "k2=200"}, got); d != "" {
		t.Errorf("refunds (-want +got):\n%s", d)
	}
}

func TestSmartpayListPagination(t *testing.T) {
	e := newEnv(t, Options{})
	k := spAuth(e.sb.Keys().Smartpay.TestSecretKey)
	a := e.payment(ProviderSmartpay, 1000, "JPY", false)
	b := e.payment(ProviderSmartpay, 1000, "JPY", false)
	var ids []string // oldest first
	for i := range 5 {
		p := a
		if i%2 == 1 {
			p = b
		}
		r := e.do("POST", "/smartpay/v1/refunds", k, map[string]any{"payment": p, "amount": 10, "currency": "JPY", "reason": "fraudulent"})
		ids = append(ids, r.json(t)["id"].(string))
	}
	type page struct {
		Object        string            `json:"object"`
		NextPageToken string            `json:"nextPageToken"`
		MaxResults    int               `json:"maxResults"`
		Results       int               `json:"results"`
		Data          []json.RawMessage `json:"data"`
	}
	walk := func(query string) []string {
		var out []string
		tok := ""
		for range 10 {
			q := query
			if tok != "" {
				q += "&pageToken=" + tok
			}
			r := e.do("GET", "/smartpay/v1/refunds?"+q, k, nil)
			var p page
			if err := json.Unmarshal(r.body, &p); err != nil || r.status != 200 || p.Object != "collection" || p.Results != len(p.Data) {
				t.Fatalf("list: %d %v %s", r.status, err, r.body)
			}
			for _, d := range p.Data {
				out = append(out, decodeMap(t, d)["id"].(string))
			}
			if tok = p.NextPageToken; tok == "" {
				return out
			}
		}
		t.Fatal("pagination does not end")
		return nil
	}
	if d := cmp.Diff([]string{ids[4], ids[3], ids[2], ids[1], ids[0]}, walk("maxResults=2")); d != "" {
		t.Errorf("all, newest first (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{ids[4], ids[2], ids[0]}, walk("maxResults=1&payment="+a)); d != "" {
		t.Errorf("payment filter (-want +got):\n%s", d)
	}
	for _, q := range []string{"maxResults=0", "maxResults=101", "pageToken=garbage"} {
		if r := e.do("GET", "/smartpay/v1/refunds?"+q, k, nil); r.status != 400 {
			t.Errorf("%s: %d", q, r.status)
		}
	}
	if r := e.do("GET", "/smartpay/v1/refunds", spAuth(e.sb.Keys().Smartpay.LiveSecretKey), nil); r.json(t)["results"] != float64(0) {
		t.Errorf("live key sees test refunds: %s", r.body)
	}
}

// testBase62 decodes a base62 string (alphabet A-Z a-z 0-9) via math/big;
// each leading 'A' is a zero byte.
func testBase62(s string) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	n := new(big.Int)
	for _, c := range s {
		n.Mul(n, big.NewInt(62))
		n.Add(n, big.NewInt(int64(strings.IndexRune(alphabet, c))))
	}
	zeros := len(s) - len(strings.TrimLeft(s, "A"))
	return append(make([]byte, zeros), n.Bytes()...)
}

func TestBase62Decode(t *testing.T) {
	for _, s := range []string{"", "A", "AAB", "B", "9", "BA", "gE8pXq2LzR7wV4nK9tY3bM6cJ1hF5sD0aU", "AAz9z9z9z9z9z9z9z9z9z9z9z9z9"} {
		if d := cmp.Diff(testBase62(s), base62Decode(s)); d != "" {
			t.Errorf("%q (-big +sandbox):\n%s", s, d)
		}
	}
}

func TestSmartpayWebhookSignature(t *testing.T) {
	h := newHook(t, 0)
	e := newEnv(t, Options{})
	e.sb.SetWebhookURL(ProviderSmartpay, h.srv.URL)
	keys := e.sb.Keys().Smartpay
	pay := e.payment(ProviderSmartpay, 1000, "JPY", false)
	r := e.do("POST", "/smartpay/v1/refunds", spAuth(keys.TestSecretKey), map[string]any{"payment": pay, "amount": 300, "currency": "JPY", "reason": "requested_by_customer"})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got := h.next(t)
	ts := got.header.Get("Smartpay-Signature-Timestamp")
	mac := hmac.New(sha256.New, testBase62(keys.WebhookSecret))
	mac.Write([]byte(ts + "." + string(got.body)))
	if want := hex.EncodeToString(mac.Sum(nil)); got.header.Get("Smartpay-Signature") != want {
		t.Errorf("Smartpay-Signature %q, want %q", got.header.Get("Smartpay-Signature"), want)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Minute {
		t.Errorf("timestamp %q is not now in unix ms", ts)
	}
	var ev struct {
		ID        string `json:"id"`
		Object    string `json:"object"`
		Event     string `json:"event"`
		EventData struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"eventData"`
		CreatedAt int64 `json:"createdAt"`
		Test      bool  `json:"test"`
	}
	if err := json.Unmarshal(got.body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Object != "event" || ev.Event != "refund.created" || ev.EventData.Type != "refund" || !ev.Test || !strings.HasPrefix(ev.ID, "evt_test_") || ev.CreatedAt == 0 {
		t.Errorf("event %s", got.body)
	}
	if got.header.Get("Smartpay-Event-Id") != ev.ID || !strings.HasPrefix(got.header.Get("Smartpay-Subscription-Id"), "whsub_") {
		t.Errorf("headers %v", got.header)
	}
	if d := cmp.Diff(decodeMap(t, r.body), decodeMap(t, ev.EventData.Data)); d != "" {
		t.Errorf("event data differs from the refund (-refund +event):\n%s", d)
	}
}
