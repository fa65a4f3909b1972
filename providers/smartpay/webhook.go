package smartpay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

// The webhook headers Smartpay sends.
const (
	HeaderSignature      = "Smartpay-Signature"
	HeaderTimestamp      = "Smartpay-Signature-Timestamp"
	HeaderEventID        = "Smartpay-Event-Id"
	HeaderSubscriptionID = "Smartpay-Subscription-Id"
)

// WebhookTolerance is how far a webhook's timestamp may be from now.
const WebhookTolerance = 5 * time.Minute

// base62Alphabet is the alphabet of Smartpay signing secrets ('A' is 0).
const base62Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Errors of Verify. They never carry the secret.
var (
	ErrNoWebhookSecret = errors.New("smartpay webhook: the account has no webhook secret")
	ErrBadSignature    = errors.New("smartpay webhook: signature does not match")
	ErrBadTimestamp    = errors.New("smartpay webhook: timestamp missing, malformed or outside the tolerance")
)

// base62Decode decodes a signing secret as a big-endian base62 number over
// A-Z a-z 0-9, each leading 'A' giving a zero byte (as the base-x library
// Smartpay's SDKs use does). A character outside the alphabet is an error.
func base62Decode(s string) ([]byte, error) {
	n := new(big.Int)
	base := big.NewInt(62)
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base62Alphabet, s[i])
		if d < 0 {
			return nil, fmt.Errorf("smartpay webhook: the signing secret is not base62 (character %d)", i)
		}
		n.Mul(n, base)
		n.Add(n, big.NewInt(int64(d)))
	}
	zeros := len(s) - len(strings.TrimLeft(s, "A"))
	return append(make([]byte, zeros), n.Bytes()...), nil
}

// webhookTime reads Smartpay-Signature-Timestamp: unix milliseconds, as
// Smartpay stamps all its objects (and as the sandbox sends). A value too
// small to be milliseconds since 2001 is read as unix seconds.
func webhookTime(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	if n < 1e12 {
		return time.Unix(n, 0), true
	}
	return time.UnixMilli(n), true
}

// sign returns the hex HMAC-SHA256 of timestamp + "." + body.
func sign(key []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks Smartpay-Signature, the hex HMAC-SHA256 over timestamp +
// "." + raw body keyed with the base62-decoded signing secret, and that
// Smartpay-Signature-Timestamp is within WebhookTolerance of now.
func (c *Client) Verify(header http.Header, body []byte, now time.Time) error {
	if c.webhookSecret == "" {
		return ErrNoWebhookSecret
	}
	key, err := base62Decode(c.webhookSecret)
	if err != nil {
		return err
	}
	ts := header.Get(HeaderTimestamp)
	at, ok := webhookTime(ts)
	if !ok {
		return ErrBadTimestamp
	}
	if d := now.Sub(at); d > WebhookTolerance || d < -WebhookTolerance {
		return ErrBadTimestamp
	}
	want := sign(key, ts, body)
	for _, s := range strings.Split(header.Get(HeaderSignature), ",") {
		got, err := hex.DecodeString(strings.TrimSpace(s))
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// wireEvent is a webhook event body:
// {"id","object":"event","event":"refund.created","eventData":{"type":"refund","data":{…}},"createdAt","test"}.
type wireEvent struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Event     string `json:"event"`
	EventData struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	} `json:"eventData"`
	CreatedAt *int64 `json:"createdAt"`
	Test      *bool  `json:"test"`
}

// Parse decodes a verified event. Its ID is Smartpay-Event-Id (the body's
// id when the header is absent), for the gateway's dedupe. A refund event
// carries the refund's ids (the gateway's from metadata), status, amount
// and currency; other events carry only ID and Type.
func (c *Client) Parse(header http.Header, body []byte) ([]normalize.WebhookEvent, error) {
	var w wireEvent
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("smartpay webhook: unreadable body: %w", err)
	}
	ev := normalize.WebhookEvent{ID: header.Get(HeaderEventID), Type: w.Event}
	if ev.ID == "" {
		ev.ID = w.ID
	}
	if ev.ID == "" {
		return nil, errors.New("smartpay webhook: event has no id")
	}
	if w.EventData.Type != "refund" && !strings.HasPrefix(w.Event, "refund.") || len(w.EventData.Data) == 0 {
		return []normalize.WebhookEvent{ev}, nil
	}
	var r wireRefund
	if err := json.Unmarshal(w.EventData.Data, &r); err != nil {
		return nil, fmt.Errorf("smartpay webhook: unreadable refund: %w", err)
	}
	pr, err := r.normalize(r.Currency)
	if err != nil {
		return nil, fmt.Errorf("smartpay webhook: %w", err)
	}
	ev.RefundID = r.Metadata[metaRefundID]
	ev.ProviderRefundID = r.ID
	ev.PaymentID = r.Payment
	ev.Status = pr.Status
	ev.ProviderStatus = pr.ProviderStatus
	ev.Amount = pr.Amount
	ev.Currency = pr.Currency
	ev.Failure = pr.Failure
	return []normalize.WebhookEvent{ev}, nil
}
