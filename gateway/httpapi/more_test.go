package httpapi_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

func TestListNewestFirstWithCursorAndFilters(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 100000, "EUR")
	other := e.Payment(t, sandbox.ProviderCheckoutCom, 100000, "EUR")
	var ids []string
	for i := 0; i < 5; i++ {
		r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 100 + i})
		if r.Status != 201 {
			t.Fatalf("refund: %d %s", r.Status, r.Body)
		}
		ids = append(ids, r.Str(t, "id"))
	}
	e.Refund(t, map[string]any{"payment_id": other, "amount": 1})
	// globex's refunds never show in acme's list.
	g := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: gatewaytest.GlobexKey, Body: map[string]any{"payment_id": other, "amount": 1},
		Header: map[string]string{"Idempotency-Key": "g1"}})
	if g.Status != 201 {
		t.Fatalf("globex refund: %d %s", g.Status, g.Body)
	}

	var got []string
	cursor := ""
	for page := 0; ; page++ {
		path := "/v1/refunds?limit=2&payment_id=" + pay
		if cursor != "" {
			path += "&starting_after=" + cursor
		}
		r := e.Do(t, req{Method: "GET", Path: path, Key: acme})
		m := r.JSON(t)
		if r.Status != 200 || m["object"] != "list" {
			t.Fatalf("list: %d %s", r.Status, r.Body)
		}
		data := m["data"].([]any)
		for _, d := range data {
			got = append(got, d.(map[string]any)["id"].(string))
		}
		if m["has_more"] != true {
			break
		}
		cursor = got[len(got)-1]
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages = %v, want newest first %v", got, want)
	}
	all := e.Do(t, req{Method: "GET", Path: "/v1/refunds?limit=100", Key: acme}).JSON(t)["data"].([]any)
	if len(all) != 6 {
		t.Errorf("acme sees %d refunds, want 6 (none of globex's)", len(all))
	}
	for _, q := range []string{"status=succeeded", "provider=checkoutcom-sandbox", "created_gte=2000-01-01T00:00:00Z"} {
		if n := len(e.Do(t, req{Method: "GET", Path: "/v1/refunds?limit=100&" + q, Key: acme}).JSON(t)["data"].([]any)); n != 6 {
			t.Errorf("%s: %d refunds, want 6", q, n)
		}
	}
	for _, q := range []string{"status=failed", "provider=yoco-sandbox", "created_lt=2000-01-01T00:00:00Z"} {
		if n := len(e.Do(t, req{Method: "GET", Path: "/v1/refunds?" + q, Key: acme}).JSON(t)["data"].([]any)); n != 0 {
			t.Errorf("%s: %d refunds, want 0", q, n)
		}
	}
	for q, param := range map[string]string{"limit=0": "limit", "limit=101": "limit", "status=done": "status", "created_gte=yesterday": "created_gte"} {
		p := wantProblem(t, e.Do(t, req{Method: "GET", Path: "/v1/refunds?" + q, Key: acme}), 422, "validation_failed")
		if p["param"] != param {
			t.Errorf("%s: param %v, want %s", q, p["param"], param)
		}
	}
}

func TestProvidersListsTheMerchantsAccounts(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	r := e.Do(t, req{Method: "GET", Path: "/v1/providers", Key: gatewaytest.GlobexKey})
	data := r.JSON(t)["data"].([]any)
	if r.Status != 200 || len(data) != 1 {
		t.Fatalf("globex providers: %d %s", r.Status, r.Body)
	}
	p := data[0].(map[string]any)
	caps := p["capabilities"].(map[string]any)
	if p["name"] != "checkoutcom-sandbox" || p["type"] != "checkoutcom" || p["livemode"] != false || caps["partial"] != true ||
		caps["multiple"] != true || caps["idempotent"] != false || p["breaker"].(map[string]any)["state"] != "closed" {
		t.Errorf("provider = %s", r.Body)
	}
	r = e.Do(t, req{Method: "GET", Path: "/v1/providers", Key: acme})
	byName := map[string]map[string]any{}
	for _, d := range r.JSON(t)["data"].([]any) {
		m := d.(map[string]any)
		byName[m["name"].(string)] = m["capabilities"].(map[string]any)
	}
	if len(byName) != 3 || byName["yoco-sandbox"]["partial"] != false || byName["smartpay-sandbox"]["idempotent"] != true {
		t.Errorf("acme providers = %s", r.Body)
	}
	if rs := byName["smartpay-sandbox"]["reasons"].([]any); len(rs) != 2 {
		t.Errorf("smartpay reasons = %v, want requested_by_customer and fraudulent", rs)
	}
}

func TestRequestIDAndHealth(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	r := e.Do(t, req{Method: "GET", Path: "/healthz", Header: map[string]string{"X-Request-Id": "trace-abc.123"}})
	if r.Status != 200 || r.Header.Get("X-Request-Id") != "trace-abc.123" {
		t.Errorf("healthz: %d, X-Request-Id %q", r.Status, r.Header.Get("X-Request-Id"))
	}
	r = e.Do(t, req{Method: "GET", Path: "/readyz", Header: map[string]string{"X-Request-Id": "bad id with spaces\t"}})
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("X-Request-Id"), "req_") {
		t.Errorf("readyz: %d, X-Request-Id %q (an insane caller id must be replaced)", r.Status, r.Header.Get("X-Request-Id"))
	}
	e.Store.Close()
	wantProblem(t, e.Do(t, req{Method: "GET", Path: "/readyz"}), 503, "not_ready")
}

// TestWebhookSignaturesAndDuplicates: a forged webhook is refused with 401
// and changes nothing; a duplicate delivery is accepted and applied once.
func TestWebhookSignaturesAndDuplicates(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	e.NoWebhooks()
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme})
	if err := e.Sandbox.SetFault(sandbox.Fault{Provider: sandbox.ProviderCheckoutCom, Mode: sandbox.FaultApplyThen500, Rate: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 1000})
	if r.Status != 202 {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	id := r.Str(t, "id")
	body := fmt.Sprintf(`{"eventType":"charge.refunded","message":{"id":"charge_test_WH1","originalId":%q,"liveMode":false,"value":1000,"currency":"EUR","trackId":%q,"status":"Refunded","responseCode":"10000","responseMessage":"Approved"}}`, pay, id)
	secret := e.Sandbox.Keys().CheckoutCom.TestSecretKey
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	good := hex.EncodeToString(mac.Sum(nil))

	forged := e.Do(t, req{Method: "POST", Path: "/v1/webhooks/checkoutcom-sandbox", Body: body, Header: map[string]string{"CKO-Signature": strings.Repeat("0", 64)}})
	wantProblem(t, forged, 401, "unauthenticated")
	if s := e.Do(t, req{Method: "GET", Path: "/v1/refunds/" + id, Key: acme}).Str(t, "status"); s != "pending" {
		t.Fatalf("a forged webhook changed the refund to %s", s)
	}
	for i := 0; i < 2; i++ {
		w := e.Do(t, req{Method: "POST", Path: "/v1/webhooks/checkoutcom-sandbox", Body: body, Header: map[string]string{"CKO-Signature": good}})
		if w.Status != 200 {
			t.Fatalf("webhook delivery %d: %d %s", i, w.Status, w.Body)
		}
	}
	got := e.WaitStatus(t, id, "succeeded")
	if got.Str(t, "provider_refund_id") != "charge_test_WH1" {
		t.Errorf("provider_refund_id = %q", got.Str(t, "provider_refund_id"))
	}
	wantProblem(t, e.Do(t, req{Method: "POST", Path: "/v1/webhooks/nope", Body: body}), 404, "not_found")
}

// TestSecretsNeverLogged: provider keys, webhook secrets and merchant keys
// never reach a log line, whatever happens.
func TestSecretsNeverLogged(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{Timeout: "300ms"})
	keys := e.Sandbox.Keys()
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	e.Refund(t, map[string]any{"payment_id": pay, "amount": 100})
	e.Do(t, req{Method: "GET", Path: "/v1/refunds", Key: "rk_test_wrong_but_secret_value"})
	for _, mode := range []string{sandbox.FaultError500, sandbox.FaultApplyThenDrop, sandbox.FaultHang} {
		for _, p := range []string{sandbox.ProviderCheckoutCom, sandbox.ProviderSmartpay} {
			e.Sandbox.SetFault(sandbox.Fault{Provider: p, Mode: mode, Rate: 1})
		}
		e.Refund(t, map[string]any{"payment_id": pay, "amount": 100})
		sp := e.Payment(t, sandbox.ProviderSmartpay, 1000, "JPY")
		e.Refund(t, map[string]any{"payment_id": sp, "amount": 100})
		e.Sandbox.ClearFaults("")
	}
	logs := e.Logs()
	if !strings.Contains(logs, `"route":"/v1/refunds"`) || !strings.Contains(logs, `"merchant_id":"acme"`) {
		t.Fatalf("no request log lines: %s", logs)
	}
	for _, s := range []string{gatewaytest.AcmeKey, gatewaytest.GlobexKey, "rk_test_wrong_but_secret_value",
		keys.CheckoutCom.TestSecretKey, keys.Smartpay.TestSecretKey, keys.Yoco.TestSecretKey,
		keys.CheckoutCom.WebhookSecret, keys.Smartpay.WebhookSecret, keys.Yoco.WebhookSecret} {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a secret appears in the logs: %.12s…", s)
		}
	}
}
