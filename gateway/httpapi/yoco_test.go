package httpapi_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/providers/yoco"
	"github.com/refundgate/refundgate/sandbox"
)

// TestYocoWebhookByCheckoutID settles a Yoco refund from a webhook shaped
// as Yoco documents it: the refund id in the payload is not one refundgate
// knows (its answer never carried it) and the metadata names only the
// checkout. On a full-refund account a checkout has one refund, so that is
// the one settled.
func TestYocoWebhookByCheckoutID(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{})
	e.NoWebhooks()
	pay := e.Payment(t, sandbox.ProviderYoco, 2500, "ZAR")
	r := e.Refund(t, map[string]any{"payment_id": pay})
	if r.Status != http.StatusCreated || r.Str(t, "status") != "pending" {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	id := r.Str(t, "id")
	body := fmt.Sprintf(`{"id":"evt_doc_1","type":"refund.succeeded","createdDate":"2026-12-01T10:00:00Z","payload":{"id":"rfd_not_known_to_refundgate","type":"refund","amount":2500,"currency":"ZAR","paymentId":"p_1","status":"succeeded","mode":"test","metadata":{"checkoutId":%q}}}`, pay)
	wh, err := standardwebhooks.NewWebhook(e.Sandbox.Keys().Yoco.WebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign("evt_doc_1", now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	w := e.Do(t, gatewaytest.Request{Method: "POST", Path: "/v1/webhooks/yoco-sandbox", Body: body, Header: map[string]string{
		yoco.HeaderWebhookID: "evt_doc_1", yoco.HeaderWebhookTimestamp: strconv.FormatInt(now.Unix(), 10), yoco.HeaderWebhookSignature: sig}})
	if w.Status != http.StatusOK {
		t.Fatalf("webhook: %d %s", w.Status, w.Body)
	}
	got := e.Do(t, gatewaytest.Request{Method: "GET", Path: "/v1/refunds/" + id, Key: gatewaytest.AcmeKey})
	if s := got.Str(t, "status"); s != "succeeded" {
		t.Fatalf("refund after the checkout's webhook: %s, want succeeded: %s", s, got.Body)
	}
}

// TestYocoMalformedIsLoud: Yoco's 422 means refundgate sent one idempotency
// key with two payloads, a bug of ours. The refund stays pending (the first
// payload may have landed) and an error line says so.
func TestYocoMalformedIsLoud(t *testing.T) {
	e := gatewaytest.Start(t, gatewaytest.Options{ProviderMiddleware: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/yoco/") && strings.HasSuffix(r.URL.Path, "/refund") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				_, _ = w.Write([]byte(`{"errorType":"invalid_request_error","errorCode":"idempotency_key_reused","errorMessage":"Keys for idempotent requests can only be used with the same parameters they were first used with."}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	e.NoWebhooks()
	pay := e.Payment(t, sandbox.ProviderYoco, 2500, "ZAR")
	r := e.Refund(t, map[string]any{"payment_id": pay})
	if r.Status != http.StatusAccepted || r.Str(t, "status") != "pending" {
		t.Fatalf("refund answered 422 by Yoco: %d %s, want 202 pending", r.Status, r.Body)
	}
	lines := e.LogLines(t, "provider refused refundgate's own request as malformed: a refundgate bug")
	if len(lines) == 0 || lines[0]["level"] != "error" || lines[0]["refund_id"] != r.Str(t, "id") {
		t.Fatalf("no error line for Yoco's 422: %v\n%s", lines, e.Logs())
	}
}
