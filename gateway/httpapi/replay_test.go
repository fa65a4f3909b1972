package httpapi_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
)

// TestReplayFromStore replays answered keys on a second gateway that shares
// the first one's store but has nothing cached (as after a restart), at a
// time when the request, made fresh, would be refused: the payment is fully
// refunded and its refund window has closed. The replay still answers the
// first answer, byte for byte, and nothing reaches a provider.
func TestReplayFromStore(t *testing.T) {
	clock := gatewaytest.NewClock()
	first := gatewaytest.Start(t, gatewaytest.Options{Policy: "{refund_window: 1h}", Now: clock.Now})
	pay := first.Payment(t, "checkoutcom", 10000, "EUR")
	type sent struct {
		key  string
		body map[string]any
		resp *gatewaytest.Response
	}
	var reqs []sent
	for _, body := range []map[string]any{
		{"payment_id": pay, "amount": 4000},
		{"payment_id": pay}, // the rest: 6000
	} {
		key := gatewaytest.NewKey()
		r := first.Do(t, gatewaytest.Request{Method: "POST", Path: "/v1/refunds", Key: gatewaytest.AcmeKey, Body: body,
			Header: map[string]string{"Idempotency-Key": key}})
		if r.Status != http.StatusCreated {
			t.Fatalf("refund %v: %d %s", body, r.Status, r.Body)
		}
		reqs = append(reqs, sent{key, body, r})
	}

	clock.Advance(2 * time.Hour)
	second := gatewaytest.Start(t, gatewaytest.Options{Policy: "{refund_window: 1h}", Now: clock.Now, Store: first.Store})
	// Made fresh, the same request is refused now.
	if r := second.Refund(t, map[string]any{"payment_id": pay}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("a new refund of the refunded payment: %d %s, want 422", r.Status, r.Body)
	}
	calls := second.ProviderCalls("")
	for _, q := range reqs {
		r := second.Do(t, gatewaytest.Request{Method: "POST", Path: "/v1/refunds", Key: gatewaytest.AcmeKey, Body: q.body,
			Header: map[string]string{"Idempotency-Key": q.key}})
		if r.Status != q.resp.Status || r.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r.Body, q.resp.Body) {
			t.Errorf("replay of %v on a gateway with a cold cache: %d replayed=%q %s\nwant %d %s",
				q.body, r.Status, r.Header.Get("Idempotent-Replayed"), r.Body, q.resp.Status, q.resp.Body)
		}
	}
	if n := second.ProviderCalls(""); n != calls {
		t.Errorf("replays made %d provider calls, want none", n-calls)
	}
}
