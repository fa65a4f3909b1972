package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ckoAuth(key string) map[string]string { return map[string]string{"Authorization": key} }

func TestCheckoutComRefundReproducesSeed(t *testing.T) {
	e := newEnv(t, Options{})
	k := e.sb.Keys().CheckoutCom
	charge := e.payment(ProviderCheckoutCom, 5000, "USD", false)
	// The seed's request, plus the metadata its response example shows.
	req := decodeMap(t, readTestdata(t, "checkoutcom_refund_request.json"))
	req["metadata"] = map[string]any{"product": "T-Shirt"}
	r := e.do("POST", "/checkoutcom/v2/charges/"+charge+"/refund", ckoAuth(k.TestSecretKey), req)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got, seed := r.json(t), decodeMap(t, readTestdata(t, "checkoutcom_refund_response.json"))
	if d := cmp.Diff(shape(seed), shape(got)); d != "" {
		t.Errorf("key set/types (-seed +got):\n%s", d)
	}
	id, _ := got["id"].(string)
	if !strings.HasPrefix(id, "charge_test_") || len(id) != len("charge_test_8C5A496E242M73BD0AE1") || id == charge {
		t.Errorf("id %q", id)
	}
	if got["originalId"] != charge {
		t.Errorf("originalId %v, want %s", got["originalId"], charge)
	}
	if _, err := time.Parse(time.RFC3339, got["created"].(string)); err != nil {
		t.Errorf("created: %v", err)
	}
	for _, f := range []string{"id", "originalId", "created"} {
		delete(got, f)
		delete(seed, f)
	}
	if d := cmp.Diff(seed, got); d != "" {
		t.Errorf("refund charge (-seed +got):\n%s", d)
	}
	// The seed's Java example sends value "100"; an integer works too.
	for _, v := range []any{"100", 100} {
		r := e.do("POST", "/checkoutcom/v2/charges/"+charge+"/refund", ckoAuth(k.TestSecretKey), map[string]any{"value": v})
		if r.status != 200 || r.json(t)["value"] != float64(100) {
			t.Errorf("value %#v: %d %s", v, r.status, r.body)
		}
	}
	// Absent value refunds the captured rest.
	r = e.do("POST", "/checkoutcom/v2/charges/"+charge+"/refund", ckoAuth(k.TestSecretKey), `{}`)
	if r.status != 200 || r.json(t)["value"] != float64(2800) {
		t.Errorf("rest: %d %s", r.status, r.body)
	}
}

func TestCheckoutComErrors(t *testing.T) {
	e := newEnv(t, Options{})
	k := e.sb.Keys().CheckoutCom
	charge := e.payment(ProviderCheckoutCom, 1000, "EUR", false)
	auth, ok := e.sb.CheckoutComAuthorizationID(charge)
	if !ok {
		t.Fatal("no authorization id")
	}
	full := e.payment(ProviderCheckoutCom, 1000, "EUR", false)
	if r := e.do("POST", "/checkoutcom/v2/charges/"+full+"/refund", ckoAuth(k.TestSecretKey), `{}`); r.status != 200 {
		t.Fatalf("setup: %d %s", r.status, r.body)
	}
	liveCharge := e.payment(ProviderCheckoutCom, 1000, "EUR", true)
	meta11 := map[string]string{}
	for i := range 11 {
		meta11[fmt.Sprint("k", i)] = "v"
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	test := ckoAuth(k.TestSecretKey)
	for _, tc := range []struct {
		name   string
		id     string
		hdr    map[string]string
		body   any
		status int
		code   string
		msgs   []string
	}{
		{"no key", charge, nil, `{}`, 401, "80001", []string{"80001"}},
		{"Bearer form", charge, map[string]string{"Authorization": "Bearer " + k.TestSecretKey}, `{}`, 401, "80001", []string{"80001"}},
		{"wrong key", charge, ckoAuth("sk_test_00000000-0000-0000-0000-000000000000"), `{}`, 401, "80001", []string{"80001"}},
		{"unknown charge", "charge_test_NOPE", test, `{}`, 404, "83014", []string{"83014"}},
		{"test key, live charge", liveCharge, test, `{}`, 404, "83014", []string{"83014"}},
		{"live key, test charge", charge, ckoAuth(k.LiveSecretKey), `{}`, 404, "83014", []string{"83014"}},
		{"trackId over 50", charge, test, map[string]any{"trackId": long(51)}, 400, "70000", []string{"70002"}},
		{"11 metadata pairs", charge, test, map[string]any{"metadata": meta11}, 400, "70000", []string{"70003"}},
		{"metadata value over 100", charge, test, map[string]any{"metadata": map[string]string{"k": long(101)}}, 400, "70000", []string{"70003"}},
		{"udf3 over 100", charge, test, map[string]any{"udf3": long(101)}, 400, "70000", []string{"70004"}},
		{"negative value", charge, test, map[string]any{"value": -1}, 400, "70000", []string{"70001"}},
		{"fractional value", charge, test, `{"value":10.5}`, 400, "70000", []string{"70001"}},
		{"non-numeric value", charge, test, map[string]any{"value": "abc"}, 400, "70000", []string{"70001"}},
		{"two problems", charge, test, map[string]any{"value": 0, "trackId": long(60)}, 400, "70000", []string{"70001", "70002"}},
		{"malformed JSON", charge, test, `{"value":`, 400, "70000", []string{"70006"}},
		{"over-refund", charge, test, map[string]any{"value": 1001}, 422, "83013", []string{"83013"}},
		{"already fully refunded", full, test, `{}`, 422, "83004", []string{"83004"}},
		{"authorization id instead of capture", auth, test, `{}`, 422, "83005", []string{"83005"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/checkoutcom/v2/charges/"+tc.id+"/refund", tc.hdr, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			var body ckoErrorJSON
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff([]string{"errorCode", "errorMessageCodes", "errors", "eventId", "message"}, sortedKeys(r.json(t))); d != "" {
				t.Errorf("error keys (-want +got):\n%s", d)
			}
			if body.ErrorCode != tc.code || body.EventID == "" || len(body.Errors) == 0 {
				t.Errorf("error body %s", r.body)
			}
			if tc.code == "70000" && body.Message != "Validation error" {
				t.Errorf("message %q", body.Message)
			}
			if d := cmp.Diff(tc.msgs, body.ErrorMessageCodes); d != "" {
				t.Errorf("errorMessageCodes (-want +got):\n%s", d)
			}
		})
	}
	if n := len(e.sb.Refunds(ProviderCheckoutCom, charge)); n != 0 {
		t.Errorf("%d refunds recorded by refused requests", n)
	}
}

func TestCheckoutComDoublePostRefundsTwice(t *testing.T) {
	e := newEnv(t, Options{})
	k := ckoAuth(e.sb.Keys().CheckoutCom.TestSecretKey)
	charge := e.payment(ProviderCheckoutCom, 1000, "USD", false)
	body := `{"value":300,"trackId":"ORDER-1"}`
	a := e.do("POST", "/checkoutcom/v2/charges/"+charge+"/refund", idem(k, "ignored"), body)
	b := e.do("POST", "/checkoutcom/v2/charges/"+charge+"/refund", idem(k, "ignored"), body)
	if a.status != 200 || b.status != 200 || b.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("%d %d %v", a.status, b.status, b.header)
	}
	if a.json(t)["id"] == b.json(t)["id"] {
		t.Error("the second POST returned the first refund")
	}
	var got []Refund
	for _, rf := range e.sb.Refunds(ProviderCheckoutCom, charge) {
		got = append(got, Refund{PaymentID: rf.PaymentID, Amount: rf.Amount, Currency: rf.Currency, TrackID: rf.TrackID, Status: rf.Status})
	}
	want := []Refund{
		{PaymentID: charge, Amount: 300, Currency: "USD", TrackID: "ORDER-1", Status: "Refunded"},
		{PaymentID: charge, Amount: 300, Currency: "USD", TrackID: "ORDER-1", Status: "Refunded"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("refunds (-want +got):\n%s", d)
	}
}

func TestCheckoutComLookups(t *testing.T) {
	e := newEnv(t, Options{})
	k := ckoAuth(e.sb.Keys().CheckoutCom.TestSecretKey)
	charge := e.payment(ProviderCheckoutCom, 1000, "USD", false)
	auth, _ := e.sb.CheckoutComAuthorizationID(charge)
	var refundIDs []string
	for i, v := range []int{100, 200} {
		r := e.do("POST", "/checkoutcom/v2/charges/"+charge+"/refund", k, map[string]any{"value": v, "trackId": fmt.Sprint("T", i)})
		refundIDs = append(refundIDs, r.json(t)["id"].(string))
	}
	g := e.do("GET", "/checkoutcom/v2/charges/"+charge, k, nil).json(t)
	wantG := map[string]any{"id": charge, "originalId": auth, "value": float64(1000), "status": "Captured", "responseCode": "10000", "refundedValue": float64(300), "refundableValue": float64(700)}
	for f, v := range wantG {
		if g[f] != v {
			t.Errorf("GET charge %s = %v, want %v", f, g[f], v)
		}
	}
	type item struct {
		ID, TrackID, Status, ResponseCode string
		Value                             int64
	}
	for _, from := range []string{charge, auth, refundIDs[0]} {
		r := e.do("GET", "/checkoutcom/v2/charges/"+from+"/history", k, nil)
		var h struct {
			Charges []struct {
				ID           string `json:"id"`
				TrackID      string `json:"trackId"`
				Status       string `json:"status"`
				ResponseCode string `json:"responseCode"`
				Value        int64  `json:"value"`
			} `json:"charges"`
		}
		if err := json.Unmarshal(r.body, &h); err != nil || r.status != 200 {
			t.Fatalf("history: %d %v %s", r.status, err, r.body)
		}
		var got []item
		for _, c := range h.Charges {
			got = append(got, item{c.ID, c.TrackID, c.Status, c.ResponseCode, c.Value})
		}
		want := []item{
			{refundIDs[1], "T1", "Refunded", "10000", 200},
			{refundIDs[0], "T0", "Refunded", "10000", 100},
			{charge, "", "Captured", "10000", 1000},
			{auth, "", "Authorised", "10000", 1000},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("history from %s (-want +got):\n%s", from, d)
		}
	}
	if r := e.do("GET", "/checkoutcom/v2/charges/charge_test_X/history", k, nil); r.status != 404 {
		t.Errorf("unknown history: %d", r.status)
	}
	if r := e.do("GET", "/checkoutcom/v2/charges/"+charge, nil, nil); r.status != 401 {
		t.Errorf("GET without key: %d", r.status)
	}
}

func TestCheckoutComWebhookSignature(t *testing.T) {
	h := newHook(t, 0)
	e := newEnv(t, Options{})
	e.sb.SetWebhookURL(ProviderCheckoutCom, h.srv.URL)
	keys := e.sb.Keys().CheckoutCom
	for _, live := range []bool{false, true} {
		key := keys.TestSecretKey
		if live {
			key = keys.LiveSecretKey
		}
		charge := e.payment(ProviderCheckoutCom, 1000, "USD", live)
		r := e.do("POST", "/checkoutcom/v2/charges/"+charge+"/refund", ckoAuth(key), `{"value":250,"trackId":"WH"}`)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		got := h.next(t)
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write(got.body)
		if want := hex.EncodeToString(mac.Sum(nil)); got.header.Get("CKO-Signature") != want {
			t.Errorf("live=%v CKO-Signature %q, want %q", live, got.header.Get("CKO-Signature"), want)
		}
		var ev struct {
			EventType string          `json:"eventType"`
			Message   json.RawMessage `json:"message"`
		}
		if err := json.Unmarshal(got.body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.EventType != "charge.refunded" {
			t.Errorf("eventType %q", ev.EventType)
		}
		if d := cmp.Diff(decodeMap(t, r.body), decodeMap(t, ev.Message)); d != "" {
			t.Errorf("message differs from the refund answer (-answer +message):\n%s", d)
		}
	}
}

// TestCheckoutComJavaExampleReplays replays the body of the seed's Java
// example (value as a string, metadata, products with decimal prices) and
// checks every field it set comes back on the refund charge.
func TestCheckoutComJavaExampleReplays(t *testing.T) {
	e := newEnv(t, Options{})
	k := e.sb.Keys().CheckoutCom
	charge := e.payment(ProviderCheckoutCom, 5000, "USD", false)
	body := `{"value":"100","trackId":"TRK12345","description":"Sample product",
	  "metadata":{"testKey":"value"},
	  "products":[{"description":"Tablet 2 gold limited","name":"Tablet 32gb cellular","price":90.0,
	    "quantity":1,"shippingCost":10.0,"sku":"1aab","trackingUrl":"https://www.tracker.com"}]}`
	r := e.do("POST", "/checkoutcom/v2/charges/"+charge+"/refund", ckoAuth(k.TestSecretKey), body)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := r.json(t)
	want := map[string]any{
		"value": float64(100), "currency": "USD", "trackId": "TRK12345", "description": "Sample product",
		"status": "Refunded", "responseCode": "10000", "responseMessage": "Approved", "liveMode": false,
		"originalId": charge, "metadata": map[string]any{"testKey": "value"},
		"products": []any{map[string]any{"description": "Tablet 2 gold limited", "name": "Tablet 32gb cellular",
			"price": float64(90), "quantity": float64(1), "shippingCost": float64(10), "sku": "1aab",
			"trackingUrl": "https://www.tracker.com", "image": nil}},
	}
	for f, v := range want {
		if d := cmp.Diff(v, got[f]); d != "" {
			t.Errorf("%s (-want +got):\n%s", f, d)
		}
	}
	seed := decodeMap(t, readTestdata(t, "checkoutcom_refund_response.json"))
	seed["metadata"] = got["metadata"] // another key than the response example's
	if d := cmp.Diff(shape(seed), shape(got)); d != "" {
		t.Errorf("key set/types (-seed +got):\n%s", d)
	}
	if re := idForm(seed["id"].(string)); !re.MatchString(got["id"].(string)) {
		t.Errorf("id %q does not match the seed's form %s", got["id"], re)
	}
}
