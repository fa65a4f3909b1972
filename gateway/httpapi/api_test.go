package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

const acme = gatewaytest.AcmeKey

type req = gatewaytest.Request

func wantProblem(t *testing.T, r *gatewaytest.Response, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	m := r.JSON(t)
	if m["code"] != code {
		t.Fatalf("code = %v, want %s; body %s", m["code"], code, r.Body)
	}
	for _, f := range []string{"type", "title", "status", "detail", "request_id"} {
		if _, ok := m[f]; !ok {
			t.Errorf("problem has no %q: %s", f, r.Body)
		}
	}
	if id := r.Header.Get("X-Request-Id"); id == "" || m["request_id"] != id {
		t.Errorf("request_id %v, X-Request-Id %q: want both, equal", m["request_id"], id)
	}
	if m["status"] != float64(status) || m["title"] != http.StatusText(status) || !strings.HasPrefix(m["type"].(string), "https://") {
		t.Errorf("problem status/title/type = %v / %v / %v for HTTP %d", m["status"], m["title"], m["type"], status)
	}
	if d, _ := m["detail"].(string); d == "" {
		t.Errorf("problem has an empty detail: %s", r.Body)
	}
	return m
}

func TestYocoFullRefundSettlesByWebhook(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderYoco, 10000, "ZAR")
	r := e.Refund(t, map[string]any{"payment_id": pay, "reference": "ORDER-1042", "metadata": map[string]string{"order": "1042"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["status"] != "pending" || m["provider"] != "yoco-sandbox" || m["provider_type"] != "yoco" || m["amount"] != float64(10000) ||
		m["currency"] != "ZAR" || m["provider_status"] != "successful" || m["object"] != "refund" || m["reason"] != "requested_by_customer" {
		t.Fatalf("refund = %s", r.Body)
	}
	if !strings.HasPrefix(m["id"].(string), "rf_") || m["provider_refund_id"] == nil {
		t.Fatalf("ids = %v, %v", m["id"], m["provider_refund_id"])
	}
	got := e.WaitStatus(t, m["id"].(string), "succeeded")
	if ps := got.Str(t, "provider_status"); ps != "succeeded" && ps != "refunded" && ps != "reversed" {
		t.Errorf("provider_status = %q after the webhook", ps)
	}
	if refunds := e.Sandbox.Refunds(sandbox.ProviderYoco, pay); len(refunds) != 1 {
		t.Errorf("the provider holds %d refunds, want 1", len(refunds))
	}
	// Yoco refunds once: a second refund is refused before any request.
	again := e.Refund(t, map[string]any{"payment_id": pay})
	wantProblem(t, again, 422, "payment_fully_refunded")
}

func TestCheckoutComPartialTwiceThenOverRefund(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	for i := 0; i < 2; i++ {
		r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 4000, "currency": "EUR"})
		if r.Status != 201 || r.Str(t, "status") != "succeeded" {
			t.Fatalf("partial refund %d: %d %s", i, r.Status, r.Body)
		}
	}
	p := wantProblem(t, e.Refund(t, map[string]any{"payment_id": pay, "amount": 2001}), 422, "amount_exceeds_refundable")
	if p["param"] != "amount" {
		t.Errorf("param = %v, want amount", p["param"])
	}
	// Absent amount takes the rest.
	r := e.Refund(t, map[string]any{"payment_id": pay})
	if r.Status != 201 || r.JSON(t)["amount"] != float64(2000) {
		t.Fatalf("rest refund: %d %s", r.Status, r.Body)
	}
	wantProblem(t, e.Refund(t, map[string]any{"payment_id": pay, "amount": 1}), 422, "payment_fully_refunded")
	var sum int64
	for _, rf := range e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay) {
		sum += rf.Amount
	}
	if sum != 10000 {
		t.Errorf("provider refunded %d, want 10000", sum)
	}
	ref := e.Do(t, req{Method: "GET", Path: "/v1/payments/" + pay + "/refundable", Key: acme})
	m := ref.JSON(t)
	if ref.Status != 200 || m["refundable_amount"] != float64(0) || m["refunded_amount"] != float64(10000) || m["captured_amount"] != float64(10000) {
		t.Errorf("refundable = %d %s", ref.Status, ref.Body)
	}
}

func TestSmartpayJPYWithMappedReason(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderSmartpay, 5000, "JPY")
	r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 1500, "currency": "JPY", "reason": "duplicate", "reference": "R-1"})
	if r.Status != 201 || r.Str(t, "status") != "succeeded" || r.Str(t, "reason") != "duplicate" || r.Str(t, "currency") != "JPY" {
		t.Fatalf("smartpay refund: %d %s", r.Status, r.Body)
	}
	refunds := e.Sandbox.Refunds(sandbox.ProviderSmartpay, pay)
	if len(refunds) != 1 || refunds[0].Amount != 1500 {
		t.Fatalf("provider holds %+v, want one refund of 1500 yen", refunds)
	}
}

func TestIdempotentReplayAndReuse(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	body := fmt.Sprintf(`{"payment_id":%q,"amount":1000}`, pay)
	h := map[string]string{"Idempotency-Key": "order-1-refund"}
	first := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	second := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	if first.Status != 201 || second.Status != 201 || string(first.Body) != string(second.Body) {
		t.Fatalf("replay differs:\n%d %s\n%d %s", first.Status, first.Body, second.Status, second.Body)
	}
	if second.Header.Get("Idempotent-Replayed") != "true" || first.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("Idempotent-Replayed: first %q, second %q", first.Header.Get("Idempotent-Replayed"), second.Header.Get("Idempotent-Replayed"))
	}
	// The second answer was read back from the store and is now held in
	// memory: later replays are answered before the body is decoded, and
	// answer the same.
	third := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: h})
	if third.Status != 201 || string(third.Body) != string(first.Body) || third.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("third replay: %d %q %s", third.Status, third.Header.Get("Idempotent-Replayed"), third.Body)
	}
	// What is checked before the body is read still comes first, and a key
	// is bound to the body byte for byte, even for the same JSON.
	wantProblem(t, e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body,
		Header: map[string]string{"Idempotency-Key": "order-1-refund", "Content-Type": "text/plain"}}), 415, "unsupported_media_type")
	wantProblem(t, e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body + " ", Header: h}), 422, "idempotency_key_reused")
	other := fmt.Sprintf(`{"payment_id":%q,"amount":2000}`, pay)
	wantProblem(t, e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: other, Header: h}), 422, "idempotency_key_reused")
	// Keys are per merchant: globex may use the same key for its own refund.
	g := e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: gatewaytest.GlobexKey, Body: body, Header: h})
	if g.Status != 201 || g.Str(t, "id") == first.Str(t, "id") {
		t.Fatalf("globex with the same key: %d %s", g.Status, g.Body)
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 2 {
		t.Errorf("provider holds %d refunds, want 2 (one per merchant)", n)
	}
}

// TestFiftyConcurrentRequestsOneKey: 50 requests at once with one key and
// body create one refund and call the provider's refund API once; each of
// the others replays the first answer or gets 409; none gets a 5xx.
func TestFiftyConcurrentRequestsOneKey(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	body := fmt.Sprintf(`{"payment_id":%q,"amount":700}`, pay)
	var wg sync.WaitGroup
	answers := make([]*gatewaytest.Response, 50)
	start := make(chan struct{})
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i] = e.Do(t, req{Method: "POST", Path: "/v1/refunds", Key: acme, Body: body, Header: map[string]string{"Idempotency-Key": "same"}})
		}()
	}
	close(start)
	wg.Wait()
	var created []*gatewaytest.Response
	conflicts := 0
	for _, r := range answers {
		switch r.Status {
		case 201:
			created = append(created, r)
		case 409:
			wantProblem(t, r, 409, "idempotency_key_in_use")
			conflicts++
		default:
			t.Errorf("a concurrent request got %d, want 201 or 409: %s", r.Status, r.Body)
		}
	}
	if len(created) == 0 {
		t.Fatal("no request got the refund")
	}
	first := 0
	for _, r := range created {
		if r.Header.Get("Idempotent-Replayed") == "" {
			first++
		}
		if string(r.Body) != string(created[0].Body) {
			t.Errorf("201 answers differ:\n%s\n%s", r.Body, created[0].Body)
		}
	}
	if first != 1 {
		t.Errorf("%d answers are not marked Idempotent-Replayed, want exactly 1 (the first)", first)
	}
	t.Logf("%d created or replayed, %d got 409", len(created), conflicts)
	if n := e.RefundPOSTs(); n != 1 {
		t.Errorf("the gateway called the provider's refund API %d times, want once", n)
	}
	if n := len(e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay)); n != 1 {
		t.Fatalf("provider holds %d refunds, want exactly 1", n)
	}
	list := e.Do(t, req{Method: "GET", Path: "/v1/refunds?payment_id=" + pay, Key: acme})
	data := list.JSON(t)["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["id"] != created[0].Str(t, "id") {
		t.Errorf("the gateway stored %s, want the one refund %s", list.Body, created[0].Str(t, "id"))
	}
}

func TestConcurrentRefundsNeverExceedCaptured(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	pay := e.Payment(t, sandbox.ProviderCheckoutCom, 10000, "EUR")
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.Refund(t, map[string]any{"payment_id": pay, "amount": 700})
			mu.Lock()
			defer mu.Unlock()
			switch r.Status {
			case 201:
				created++
			case 422:
			default:
				t.Errorf("status %d: %s", r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	var sum int64
	for _, rf := range e.Sandbox.Refunds(sandbox.ProviderCheckoutCom, pay) {
		sum += rf.Amount
	}
	if created != 14 || sum != 9800 {
		t.Fatalf("created %d refunds totalling %d at the provider, want 14 and 9800", created, sum)
	}
}
