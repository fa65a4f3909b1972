package yoco

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/refundgate/refundgate/normalize"
)

// The Standard Webhooks headers Yoco signs with.
const (
	HeaderWebhookID        = standardwebhooks.HeaderWebhookID
	HeaderWebhookTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderWebhookSignature = standardwebhooks.HeaderWebhookSignature
)

// WebhookTolerance is how far a webhook's timestamp may be from now; Yoco
// asks for 3 minutes.
const WebhookTolerance = 3 * time.Minute

// Errors of Verify. They never carry the secret.
var (
	ErrNoWebhookSecret  = errors.New("yoco webhook: the account has no webhook secret")
	ErrBadWebhookSecret = errors.New("yoco webhook: the webhook secret is not a whsec_ base64 secret")
	ErrBadSignature     = errors.New("yoco webhook: signature missing or does not match")
	ErrBadTimestamp     = errors.New("yoco webhook: timestamp missing, malformed or outside the tolerance")
)

// Verify checks a webhook the Standard Webhooks way: webhook-signature
// holds "v1,<base64 HMAC-SHA256>" entries over webhook-id + "." +
// webhook-timestamp + "." + body, keyed with the base64 part of the
// account's whsec_ secret (compared in constant time by the library), and
// webhook-timestamp is within WebhookTolerance of now. The library's own
// timestamp check (5 minutes, real clock) is not used.
func (c *Client) Verify(header http.Header, body []byte, now time.Time) error {
	if c.webhookSecret == "" {
		return ErrNoWebhookSecret
	}
	wh, err := standardwebhooks.NewWebhook(c.webhookSecret)
	if err != nil {
		return ErrBadWebhookSecret
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(header.Get(HeaderWebhookTimestamp)), 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return ErrBadTimestamp
	}
	if err := wh.VerifyIgnoringTimestamp(body, header); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}

// wireEvent is a webhook event:
// {"id":"evt_…","type":"refund.succeeded","createdDate":"…","payload":{…}}.
type wireEvent struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	CreatedDate string          `json:"createdDate"`
	Payload     json.RawMessage `json:"payload"`
}

// wireEventRefund is a refund event's payload: {"id":"rfd_…","type":"refund",
// "amount":900,"currency":"ZAR","paymentId":"p_…","status":"succeeded",
// "mode":"live","metadata":{"checkoutId":"ch_…",…}}.
type wireEventRefund struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Amount    int64          `json:"amount"`
	Currency  string         `json:"currency"`
	PaymentID string         `json:"paymentId"`
	Status    string         `json:"status"`
	Mode      string         `json:"mode"`
	Metadata  map[string]any `json:"metadata"`
}

// The refund event types.
const (
	eventRefundSucceeded = "refund.succeeded"
	eventRefundFailed    = "refund.failed"
)

// Parse decodes a verified event. Its ID is the event id (webhook-id when
// the body has none), for the gateway's dedupe: Yoco redelivers. A refund
// event carries the refund id (payload.id), the checkout id the gateway
// refunds by (metadata.checkoutId) as PaymentID, the gateway's refund id
// from metadata when present, and the status the event type says; other
// events carry only ID and Type.
func (c *Client) Parse(header http.Header, body []byte) ([]normalize.WebhookEvent, error) {
	var w wireEvent
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("yoco webhook: unreadable body: %w", err)
	}
	ev := normalize.WebhookEvent{ID: w.ID, Type: w.Type}
	if ev.ID == "" {
		ev.ID = header.Get(HeaderWebhookID)
	}
	if ev.ID == "" {
		return nil, errors.New("yoco webhook: event has no id")
	}
	if w.Type != eventRefundSucceeded && w.Type != eventRefundFailed {
		return []normalize.WebhookEvent{ev}, nil
	}
	var r wireEventRefund
	if err := json.Unmarshal(w.Payload, &r); err != nil {
		return nil, fmt.Errorf("yoco webhook: unreadable refund payload: %w", err)
	}
	meta := func(k string) string {
		s, _ := r.Metadata[k].(string)
		return s
	}
	ev.ProviderRefundID = r.ID
	ev.PaymentID = meta("checkoutId")
	ev.RefundID = meta(metaRefundID)
	ev.ProviderStatus = r.Status
	ev.Amount = r.Amount
	ev.Currency = r.Currency
	ev.Status = normalize.StatusSucceeded
	if w.Type == eventRefundFailed {
		ev.Status = normalize.StatusFailed
		ev.Failure = failure(eventRefundFailed, "")
	}
	if ev.ProviderStatus == "" {
		ev.ProviderStatus = strings.TrimPrefix(w.Type, "refund.")
	}
	return []normalize.WebhookEvent{ev}, nil
}
