package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

// post is POST /v1/refunds as acme under an Idempotency-Key.
func post(t *testing.T, e *gatewaytest.Env, key string, body any) *gatewaytest.Response {
	t.Helper()
	return e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: map[string]string{"Idempotency-Key": key}})
}

// TestRefusalsThatStoreNothingBindNoKey: a request refused before anything
// is stored (401, 400, 413, 415, a 422 of validation, ledger or policy, an
// unknown payment) binds nothing: the same key works once the cause is
// fixed, and makes exactly one refund.
func TestRefusalsThatStoreNothingBindNoKey(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Policy: "{max_amount: 50000}"})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 100000, "EUR")
	good := map[string]any{"payment_id": pay, "amount": 1000}
	refusals := []struct {
		name   string
		do     func(key string) *gatewaytest.Response
		status int
		code   string
	}{
		{"401", func(k string) *gatewaytest.Response {
			return e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: "rk_test_nobody_000000000000", Body: good, Header: map[string]string{"Idempotency-Key": k}})
		}, 401, "unauthenticated"},
		{"400 malformed", func(k string) *gatewaytest.Response { return post(t, e, k, `{"payment_id":`) }, 400, "malformed_json"},
		{"413", func(k string) *gatewaytest.Response {
			return post(t, e, k, `{"payment_id":"`+strings.Repeat("x", 70000)+`"}`)
		}, 413, "body_too_large"},
		{"415", func(k string) *gatewaytest.Response {
			return e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: "payment_id=" + pay,
				Header: map[string]string{"Idempotency-Key": k, "Content-Type": "text/plain"}})
		}, 415, "unsupported_media_type"},
		{"422 validation", func(k string) *gatewaytest.Response {
			return post(t, e, k, map[string]any{"payment_id": pay, "amount": 0})
		}, 422, "validation_failed"},
		{"422 ledger", func(k string) *gatewaytest.Response {
			return post(t, e, k, map[string]any{"payment_id": pay, "amount": 100001})
		}, 422, "amount_exceeds_refundable"},
		{"422 policy", func(k string) *gatewaytest.Response {
			return post(t, e, k, map[string]any{"payment_id": pay, "amount": 50001})
		}, 422, "policy_violation"},
		{"404 payment", func(k string) *gatewaytest.Response {
			return post(t, e, k, map[string]any{"payment_id": "charge_test_NOPE0000000000000000"})
		}, 404, "payment_not_found"},
	}
	for i, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			key := fmt.Sprintf("fix-and-retry-%d", i)
			wantProblem(t, r.do(key), r.status, r.code)
			if _, err := e.Store.GetIdempotency(t.Context(), "acme", key); err == nil {
				t.Fatalf("the refused request bound key %s", key)
			}
			ok := post(t, e, key, good)
			if ok.Status != 201 || ok.Header.Get("Idempotent-Replayed") != "" || ok.Str(t, "status") != "succeeded" {
				t.Fatalf("the fixed request under the same key: %d %s", ok.Status, ok.Body)
			}
		})
	}
	if got, want := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)), len(refusals); got != want {
		t.Errorf("the provider holds %d refunds, want %d (one per fixed request)", got, want)
	}
}

// TestStoredRefundsBindTheKey: a refund held for approval and a refund the
// provider refused are stored, so their key binds: the same request replays
// the first answer byte for byte, another body under it is refused.
func TestStoredRefundsBindTheKey(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{
		Policy:  "{approval_above: 5000}",
		Sandbox: sandbox.Options{YocoLiveRefundsOnly: true},
	})
	cko := e.Payment(t, sandbox.ProviderCheckoutCom, 100000, "EUR")
	yoco := e.Payment(t, sandbox.ProviderYoco, 2500, "ZAR")

	held := map[string]any{"payment_id": cko, "amount": 6000}
	first := post(t, e, "held", held)
	if first.Status != 202 || first.Str(t, "status") != "requires_approval" {
		t.Fatalf("held refund: %d %s", first.Status, first.Body)
	}
	again := post(t, e, "held", held)
	if again.Status != 202 || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay of a held refund: %d %s", again.Status, again.Body)
	}
	wantProblem(t, post(t, e, "held", map[string]any{"payment_id": cko, "amount": 100}), 422, "idempotency_key_reused")

	// The Yoco sandbox refuses test-mode refunds with 400: a definite
	// refusal, stored as failed and named in refund_id.
	declined := map[string]any{"payment_id": yoco}
	d := post(t, e, "declined", declined)
	p := wantProblem(t, d, 422, "refund_declined")
	id, _ := p["refund_id"].(string)
	if !strings.HasPrefix(id, "rf_") || p["provider"] != "yoco-sandbox" || p["provider_code"] != "live_checkout_required" {
		t.Fatalf("declined problem = %s", d.Body)
	}
	rf := e.Do(t, req{Method: "GET", Path: "/v1/refunds/" + id, Key: acme})
	failure, _ := rf.JSON(t)["failure"].(map[string]any)
	if rf.Str(t, "status") != "failed" || failure["code"] != "refund_declined" || failure["provider_code"] != "live_checkout_required" {
		t.Errorf("the declined refund = %s", rf.Body)
	}
	d2 := post(t, e, "declined", declined)
	if d2.Status != 422 || string(d2.Body) != string(d.Body) || d2.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay of a declined refund: %d %s", d2.Status, d2.Body)
	}
	wantProblem(t, post(t, e, "declined", map[string]any{"payment_id": yoco, "reason": "duplicate"}), 422, "idempotency_key_reused")
	if n := e.ProviderCalls("POST /yoco/api/checkouts/"); n != 1 {
		t.Errorf("the Yoco refund was sent %d times, want once (replays never reach the provider)", n)
	}
	// A failed refund holds nothing back.
	ref := e.Do(t, req{Method: "GET", Path: "/v1/payments/" + yoco + "/refundable", Key: acme})
	if ref.JSON(t)["refundable_amount"] != float64(2500) {
		t.Errorf("refundable after a declined refund: %s", ref.Body)
	}
}

// TestKeysKeptAtLeast72Hours: the store keeps a key for 72 hours and more
// (the purge takes only older ones), and the replay still answers then.
func TestKeysKeptAtLeast72Hours(t *testing.T) {
	clock := gatewaytest.NewClock()
	e := gatewaytest.Start(t, gatewaytest.Options{Now: clock.Now})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	body := map[string]any{"payment_id": pay, "amount": 1000}
	first := post(t, e, "kept", body)
	if first.Status != 201 {
		t.Fatalf("refund: %d %s", first.Status, first.Body)
	}
	clock.Advance(72*time.Hour + time.Minute)
	if _, err := e.Service.PurgeKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.GetIdempotency(t.Context(), "acme", "kept"); err != nil {
		t.Fatalf("the key is gone 72 hours later: %v", err)
	}
	again := post(t, e, "kept", body)
	if again.Status != 201 || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay 72 hours later: %d %s", again.Status, again.Body)
	}
	// The purge does take keys past the retention.
	clock.Advance(25 * time.Hour)
	if n, err := e.Service.PurgeKeys(t.Context()); err != nil || n != 1 {
		t.Fatalf("purge 97 hours later removed %d keys (err %v), want 1", n, err)
	}
	if _, err := e.Store.GetIdempotency(t.Context(), "acme", "kept"); err == nil {
		t.Error("the key is still stored 97 hours later")
	}
}

// TestRoutingAndMerchantAccounts: routes pick the account by merchant,
// payment id prefix and currency, first match wins; a named provider
// overrides them; a merchant reaches only its own accounts.
func TestRoutingAndMerchantAccounts(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{
		Aliases:       map[string]string{"checkoutcom-usd": "checkoutcom-sandbox"},
		AcmeProviders: []string{"checkoutcom-usd"},
		Routes: []string{
			`{merchant: acme, payment_id_prefix: "charge_", currency: USD, provider: checkoutcom-usd}`,
			`{payment_id_prefix: "ch_", provider: yoco-sandbox}`,
		},
	})
	usd := func() string { return e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "USD") }
	routed := func(key string, body map[string]any) string {
		t.Helper()
		r := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: key, Body: body, Header: map[string]string{"Idempotency-Key": gatewaytest.NewKey()}})
		if r.Status != 201 {
			t.Fatalf("refund %v: %d %s", body, r.Status, r.Body)
		}
		return r.Str(t, "provider")
	}
	for _, tc := range []struct {
		name string
		key  string
		body map[string]any
		want string
	}{
		{"currency route", acme, map[string]any{"payment_id": usd(), "amount": 100, "currency": "USD"}, "checkoutcom-usd"},
		{"no currency: the currency route does not match", acme, map[string]any{"payment_id": usd(), "amount": 100}, "checkoutcom-sandbox"},
		{"named provider wins over routes", acme, map[string]any{"payment_id": usd(), "amount": 100, "currency": "USD", "provider": "checkoutcom-sandbox"}, "checkoutcom-sandbox"},
		{"another merchant's route does not apply", gatewaytest.GlobexKey, map[string]any{"payment_id": usd(), "amount": 100, "currency": "USD"}, "checkoutcom-sandbox"},
		{"prefix route", acme, map[string]any{"payment_id": e.Payment(t, sandbox.ProviderSmartpay, 1000, "JPY"), "amount": 100}, "smartpay-sandbox"},
	} {
		if got := routed(tc.key, tc.body); got != tc.want {
			t.Errorf("%s: routed to %s, want %s", tc.name, got, tc.want)
		}
	}

	globex := func(body map[string]any) *gatewaytest.Response {
		return e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: gatewaytest.GlobexKey, Body: body, Header: map[string]string{"Idempotency-Key": gatewaytest.NewKey()}})
	}
	yoco := e.Payment(t, sandbox.ProviderYoco, 1000, "ZAR")
	// The only "ch_" routes lead to yoco-sandbox, which globex may not use.
	wantProblem(t, globex(map[string]any{"payment_id": yoco}), 422, "no_route")
	for _, name := range []string{"yoco-sandbox", "checkoutcom-usd", "no-such-account"} {
		p := wantProblem(t, globex(map[string]any{"payment_id": usd(), "provider": name}), 422, "unknown_provider")
		if p["param"] != "provider" {
			t.Errorf("unknown_provider param = %v", p["param"])
		}
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderYoco, yoco)); n != 0 {
		t.Errorf("a refused route made %d refunds", n)
	}
	// GET /v1/providers lists only the merchant's accounts.
	pr := e.Do(t, req{Method: "GET", Path: "/v1/providers", Key: gatewaytest.GlobexKey})
	if data := pr.JSON(t)["data"].([]any); len(data) != 1 || data[0].(map[string]any)["name"] != "checkoutcom-sandbox" {
		t.Errorf("globex's providers: %s", pr.Body)
	}
}

// TestCrossMerchantAccessIsNotFound: every endpoint on another merchant's
// refund answers 404 not_found (never 403) and changes nothing.
func TestCrossMerchantAccessIsNotFound(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Policy: "{approval_above: 5000}"})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 100000, "EUR")
	done := e.Refund(t, map[string]any{"payment_id": pay, "amount": 1000})
	held := e.Refund(t, map[string]any{"payment_id": pay, "amount": 6000})
	if done.Status != 201 || held.Status != 202 {
		t.Fatalf("setup: %d %s / %d %s", done.Status, done.Body, held.Status, held.Body)
	}
	g := gatewaytest.GlobexKey
	for _, id := range []string{done.Str(t, "id"), held.Str(t, "id")} {
		for _, r := range []req{
			{Method: "GET", Path: "/v1/refunds/" + id, Key: g},
			{Method: "POST", Path: "/v1/refunds/" + id + "/approve", Key: g},
			{Method: "POST", Path: "/v1/refunds/" + id + "/cancel", Key: g},
			{Method: "POST", Path: "/v1/refunds/" + id + "/sync", Key: g},
		} {
			wantProblem(t, e.Do(t, r), 404, "not_found")
		}
	}
	if got := e.Do(t, req{Method: "GET", Path: "/v1/refunds/" + held.Str(t, "id"), Key: acme}); got.Str(t, "status") != "requires_approval" {
		t.Errorf("globex's calls changed acme's held refund: %s", got.Body)
	}
	list := e.Do(t, req{Method: "GET", Path: "/v1/refunds?payment_id=" + pay, Key: g})
	if n := len(list.JSON(t)["data"].([]any)); n != 0 {
		t.Errorf("globex lists %d of acme's refunds", n)
	}
}

// TestBearerAuth: only "Authorization: Bearer <a merchant's key>" passes
// (the scheme in any case); anything else is 401 with WWW-Authenticate.
func TestBearerAuth(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic " + acme, acme, "Bearer " + acme + "x", "Bearer " + gatewaytest.AcmeKey[:len(gatewaytest.AcmeKey)-1]} {
		r := e.Do(t, req{Method: "GET", Path: "/v1/refunds", Header: map[string]string{"Authorization": h}})
		wantProblem(t, r, 401, "unauthenticated")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: WWW-Authenticate = %q", h, r.Header.Get("WWW-Authenticate"))
		}
	}
	for _, h := range []string{"Bearer " + acme, "bearer " + acme, "BEARER  " + acme} {
		if r := e.Do(t, req{Method: "GET", Path: "/v1/refunds", Header: map[string]string{"Authorization": h}}); r.Status != 200 {
			t.Errorf("Authorization %q: %d %s", h, r.Status, r.Body)
		}
	}
}

// TestProblemsNameTheFields: validation problems list every broken rule in
// errors[] with the field as the request spells it, param is the first,
// and strict JSON refuses what encoding/json alone would let through.
func TestProblemsNameTheFields(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	long := strings.Repeat("k", 41)
	tests := []struct {
		name   string
		body   string
		code   string
		fields []string
	}{
		{"two broken fields", fmt.Sprintf(`{"payment_id":%q,"amount":0,"reason":"because"}`, pay), "validation_failed", []string{"amount", "reason"}},
		{"line item without id", fmt.Sprintf(`{"payment_id":%q,"line_items":[{"amount":5}]}`, pay), "validation_failed", []string{"line_items[0].id"}},
		{"metadata key too long", fmt.Sprintf(`{"payment_id":%q,"metadata":{%q:"v"}}`, pay, long), "validation_failed", []string{"metadata[" + long + "]"}},
		{"wrong type", fmt.Sprintf(`{"payment_id":%q,"amount":"100"}`, pay), "validation_failed", []string{"amount"}},
		{"unknown field", fmt.Sprintf(`{"payment_id":%q,"amout":100}`, pay), "validation_failed", []string{"amout"}},
		{"field in another case", fmt.Sprintf(`{"payment_id":%q,"Amount":100}`, pay), "validation_failed", []string{"Amount"}},
		{"nested field in another case", fmt.Sprintf(`{"payment_id":%q,"line_items":[{"ID":"a"}]}`, pay), "validation_failed", []string{"line_items[0].ID"}},
		{"duplicate field", fmt.Sprintf(`{"payment_id":%q,"amount":100,"amount":9000}`, pay), "validation_failed", []string{"amount"}},
		{"duplicate metadata key", fmt.Sprintf(`{"payment_id":%q,"metadata":{"a":"1","a":"2"}}`, pay), "validation_failed", []string{"metadata.a"}},
		{"an array", `[]`, "malformed_json", nil},
		{"nested too deeply", fmt.Sprintf(`{"payment_id":%q,"metadata":{"a":%s1%s}}`, pay, strings.Repeat("[", 5000), strings.Repeat("]", 5000)), "malformed_json", nil},
		{"trailing data", fmt.Sprintf(`{"payment_id":%q} x`, pay), "malformed_json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := wantProblem(t, post(t, e, gatewaytest.NewKey(), tt.body), map[string]int{"validation_failed": 422, "malformed_json": 400}[tt.code], tt.code)
			if tt.fields == nil {
				return
			}
			if p["param"] != tt.fields[0] {
				t.Errorf("param = %v, want %s", p["param"], tt.fields[0])
			}
			errs, _ := p["errors"].([]any)
			var got []string
			for _, fe := range errs {
				m := fe.(map[string]any)
				got = append(got, m["field"].(string))
				if m["code"] == "" || m["message"] == "" {
					t.Errorf("error entry without code or message: %v", m)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.fields) {
				t.Errorf("errors[].field = %v, want %v", got, tt.fields)
			}
		})
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 0 {
		t.Errorf("refused bodies made %d refunds", n)
	}
	// A charset on the JSON media type is fine.
	r := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: fmt.Sprintf(`{"payment_id":%q,"amount":100}`, pay),
		Header: map[string]string{"Idempotency-Key": gatewaytest.NewKey(), "Content-Type": "application/json; charset=utf-8"}})
	if r.Status != 201 {
		t.Errorf("application/json; charset=utf-8: %d %s", r.Status, r.Body)
	}
}

// TestOneLogLinePerRequest: every request, answered or refused, even one
// refused while its body was read, writes exactly one log line with method,
// route, status, latency, request id and merchant id.
func TestOneLogLinePerRequest(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	type call struct {
		r                       req
		status                  int
		method, route, merchant string
	}
	calls := []call{
		{req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: map[string]any{"payment_id": pay, "amount": 100}}, 201, "POST", "/v1/refunds", "acme"},
		{req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: map[string]any{"payment_id": pay, "amount": 0}}, 422, "POST", "/v1/refunds", "acme"},
		{req{Method: "POST", Path: "/v1/refunds", Body: map[string]any{"payment_id": pay}}, 401, "POST", "/v1/refunds", ""},
		{req{Method: "GET", Path: "/v1/refunds/rf_nope", Key: gatewaytest.GlobexKey}, 404, "GET", "/v1/refunds/:id", "globex"},
		{req{Method: "GET", Path: "/v1/providers", Key: acme}, 200, "GET", "/v1/providers", "acme"},
		{req{Method: "GET", Path: "/healthz"}, 200, "GET", "/healthz", ""},
		{req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: `{"payment_id":"` + strings.Repeat("x", 70000) + `"}`}, 413, "POST", "/v1/refunds", "acme"},
	}
	for i, c := range calls {
		id := fmt.Sprintf("logline-%d", i)
		c.r.Header = map[string]string{"X-Request-Id": id, "Idempotency-Key": gatewaytest.NewKey()}
		if r := e.Do(t, c.r); r.Status != c.status || r.Header.Get("X-Request-Id") != id {
			t.Fatalf("%s %s: %d (X-Request-Id %q), want %d (%s)", c.method, c.r.Path, r.Status, r.Header.Get("X-Request-Id"), c.status, id)
		}
	}
	// A Content-Length over four times the limit is refused by the server
	// before any body is read, outside the middleware: the answer is still
	// a problem with the request id, and it is still logged.
	id := fmt.Sprintf("logline-%d", len(calls))
	calls = append(calls, call{req{Method: "POST", Path: "/v1/refunds"}, 413, "POST", "", ""})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/refunds HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nX-Request-Id: %s\r\nContent-Length: 300000\r\n\r\n", acme, id)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantProblem(t, &gatewaytest.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, 413, "body_too_large")
	if resp.Header.Get("X-Request-Id") != id {
		t.Errorf("X-Request-Id = %q, want %s", resp.Header.Get("X-Request-Id"), id)
	}
	lines := e.LogLines(t, "request")
	for i, c := range calls {
		id := fmt.Sprintf("logline-%d", i)
		var mine []map[string]any
		for _, l := range lines {
			if l["request_id"] == id {
				mine = append(mine, l)
			}
		}
		if len(mine) != 1 {
			t.Errorf("%s %s: %d log lines, want 1: %v", c.method, c.r.Path, len(mine), mine)
			continue
		}
		l := mine[0]
		lat, isNum := l["latency"].(float64)
		if l["method"] != c.method || l["route"] != c.route || l["status"] != float64(c.status) || l["merchant_id"] != c.merchant || !isNum || lat < 0 {
			t.Errorf("%s %s: log line %v, want method %s route %q status %d merchant %q and a latency", c.method, c.r.Path, l, c.method, c.route, c.status, c.merchant)
		}
	}
}

// TestSandboxPaymentsOnlyInSandboxMode: POST /sandbox/payments is 404 on a
// gateway that is not `serve --sandbox`.
func TestSandboxPaymentsOnlyInSandboxMode(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	r := e.Do(t, req{Method: "POST", Path: "/sandbox/payments", Body: map[string]any{"provider": "checkoutcom-sandbox", "amount": 100, "currency": "EUR"}})
	wantProblem(t, r, http.StatusNotFound, "not_found")
}

// TestProviderErrorWhenTheProviderCannotAnswer: a provider that does not
// answer in time while the gateway learns a payment is 502 provider_error,
// and nothing is stored.
func TestProviderErrorWhenTheProviderCannotAnswer(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Timeout: "200ms"})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	if err := e.Sandbox.SetFault(sandbox.Fault{Provider: sandbox.ProviderCheckoutCom, Mode: sandbox.FaultLatency, Rate: 1, LatencyMS: 1000}); err != nil {
		t.Fatal(err)
	}
	p := wantProblem(t, post(t, e, "slow", map[string]any{"payment_id": pay, "amount": 100}), 502, "provider_error")
	if p["provider"] != "checkoutcom-sandbox" {
		t.Errorf("provider = %v", p["provider"])
	}
	if _, err := e.Store.GetIdempotency(t.Context(), "acme", "slow"); err == nil {
		t.Error("the refused request bound its key")
	}
	e.Sandbox.ClearFaults("")
	if r := post(t, e, "slow", map[string]any{"payment_id": pay, "amount": 100}); r.Status != 201 {
		t.Errorf("the same key once the provider answers: %d %s", r.Status, r.Body)
	}
}
