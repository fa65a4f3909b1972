package checkoutcom

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

// SignatureHeader carries the webhook signature: the hex HMAC-SHA256 of the
// raw body.
const SignatureHeader = "CKO-Signature"

// Webhook verification errors. They never carry a secret.
var (
	ErrNoSignature  = errors.New("checkoutcom webhook: missing CKO-Signature header")
	ErrBadSignature = errors.New("checkoutcom webhook: signature does not match")
)

// wireEvent is a v2 webhook: {"eventType":"charge.refunded","message":{…}}.
// Some deliveries also carry an event id; it is used for dedupe when present.
type wireEvent struct {
	ID        string     `json:"id"`
	EventType string     `json:"eventType"`
	Message   wireCharge `json:"message"`
}

// Verify checks CKO-Signature: the hex HMAC-SHA256 of the raw body keyed
// with the account's WebhookSecret, or its secret key when none is
// configured (Checkout.com signs v2 webhooks with the secret key, and so
// does the sandbox: with the secret key of the charge's mode). The scheme
// has no timestamp, so now is unused: replays are caught by event dedupe.
func (c *Client) Verify(header http.Header, body []byte, now time.Time) error {
	sig := strings.TrimSpace(header.Get(SignatureHeader))
	if sig == "" {
		return ErrNoSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return ErrBadSignature
	}
	m := hmac.New(sha256.New, []byte(c.webhookKey))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// Parse decodes a verified webhook body. A refund event (charge.refunded,
// or any event type naming a refund) gives RefundID = message.trackId,
// ProviderRefundID = message.id, PaymentID = message.originalId and a status
// from responseCode; other events carry only their type and charge id. The
// event ID is the body's id when present, else eventType + ":" + message.id,
// which is stable across redeliveries of one event.
func (c *Client) Parse(header http.Header, body []byte) ([]normalize.WebhookEvent, error) {
	var ev wireEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, errors.New("checkoutcom webhook: body is not a v2 event: " + err.Error())
	}
	if ev.EventType == "" || ev.Message.ID == "" {
		return nil, errors.New("checkoutcom webhook: event without eventType or message.id")
	}
	id := ev.ID
	if id == "" {
		id = ev.EventType + ":" + ev.Message.ID
	}
	out := normalize.WebhookEvent{ID: id, Type: ev.EventType}
	if !strings.Contains(strings.ToLower(ev.EventType), "refund") {
		out.PaymentID = ev.Message.ID
		return []normalize.WebhookEvent{out}, nil
	}
	r, err := ev.Message.refund()
	if err != nil {
		return nil, errors.New("checkoutcom webhook: " + err.Error())
	}
	out.RefundID = ev.Message.TrackID
	out.ProviderRefundID = r.ProviderRefundID
	out.PaymentID = ev.Message.OriginalID
	out.Status = r.Status
	out.ProviderStatus = r.ProviderStatus
	out.Amount = r.Amount
	out.Currency = r.Currency
	out.Failure = r.Failure
	return []normalize.WebhookEvent{out}, nil
}
