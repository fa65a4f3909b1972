// Package smartpay is the adapter for the Smartpay API v1: payment-object
// refunds with reasons, partial and repeated until the payment is fully
// refunded, deduplicated by the Idempotency-Key header.
//
// A refund is POST {base}/refunds with "Authorization: Basic <secret key>"
// (the raw key, not base64) and the Idempotency-Key derived from the
// gateway's refund id (the same key on every resend). The gateway's refund
// id travels in the refund's metadata (refundgate_refund_id) so that Lookup
// can find a refund whose answer was lost; the merchant's reference travels
// in reference. Reasons Smartpay does not know are mapped by the reasons
// table (wire.go), and the original reason is kept in metadata
// (refundgate_reason):
//
//	refundgate reason       Smartpay reason         metadata refundgate_reason
//	requested_by_customer   requested_by_customer   requested_by_customer
//	fraudulent              fraudulent              fraudulent
//	duplicate               requested_by_customer   duplicate
//	other                   requested_by_customer   other
//
// What Smartpay cannot carry is refused before any request with a 422
// provider_limit_exceeded naming the field and the limit: description over
// 80 and reference over 40 characters, more than 18 merchant metadata
// pairs (20 less the two reserved), a merchant metadata key starting with
// refundgate_, and a line item amount or quantity (Smartpay takes line item
// ids only). Amounts go through the currency's ISO 4217 exponent, never
// assuming cents: 1500 JPY is sent as 1500.
package smartpay

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// Type is the configuration type of this adapter.
const Type = "smartpay"

// DefaultBaseURL is Smartpay's live API base.
const DefaultBaseURL = "https://api.smartpay.co/v1"

// The metadata keys the adapter adds to every refund; they count in
// Limits.ReservedMetadata, and a merchant key with their prefix is refused.
const (
	metaPrefix   = "refundgate_"
	metaRefundID = metaPrefix + "refund_id"
	metaReason   = metaPrefix + "reason"
)

// listPageSize is the maxResults asked for when listing a payment's
// refunds, and maxListPages bounds how many pages Lookup reads.
const (
	listPageSize = 100
	maxListPages = 100
)

func init() { providers.Register(Type, New) }

// Client is one Smartpay account.
type Client struct {
	name, base, key string
	webhookSecret   string
	http            *http.Client
	caps            providers.Capabilities
}

// New builds a Client from its configuration. It takes no options.
func New(cfg providers.Config) (providers.Provider, error) {
	var opts struct{}
	if err := providers.DecodeOptions(cfg.Options, &opts); err != nil {
		return nil, err
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	return &Client{
		name: cfg.Name, base: base, key: cfg.SecretKey, webhookSecret: cfg.WebhookSecret,
		http: providers.NewHTTPClient(cfg),
		caps: providers.Capabilities{
			PaymentRef: providers.RefPayment, Partial: true, Multiple: true,
			Reasons:    []normalize.Reason{normalize.ReasonRequestedByCustomer, normalize.ReasonFraudulent},
			Idempotent: true, RequiresCurrency: true,
			Livemode: strings.HasPrefix(cfg.SecretKey, "sk_live_"),
			Limits: providers.Limits{
				MetadataPairs: 20, ReservedMetadata: 2, DescriptionLen: 80, ReferenceLen: 40,
				ReservedKeyPrefix: metaPrefix, LineItemIDsOnly: true,
			},
		},
	}, nil
}

// Capabilities returns the account's static capabilities.
func (c *Client) Capabilities() providers.Capabilities { return c.caps }

// ErrorCode classifies an error of this adapter.
func (c *Client) ErrorCode(err error) normalize.Code { return providers.DefaultErrorCode(err) }

func (c *Client) call(op, method, path string, body any, idemKey string) providers.Call {
	h := http.Header{"Authorization": {"Basic " + c.key}}
	if idemKey != "" {
		h.Set("Idempotency-Key", idemKey)
	}
	return providers.Call{Provider: c.name, Op: op, Method: method, URL: c.base + path, Header: h, Body: body,
		Secrets: c.secrets()}
}

func (c *Client) secrets() []string {
	return []string{c.key, c.webhookSecret}
}

// mode says whether an id or key is test or live, from its prefix; ok is
// false when the prefix says neither.
func mode(id string, prefixes ...string) (live, ok bool) {
	for _, p := range prefixes {
		if strings.HasPrefix(id, p+"_live_") {
			return true, true
		}
		if strings.HasPrefix(id, p+"_test_") {
			return false, true
		}
	}
	return false, false
}

// checkMode refuses a payment id whose mode disagrees with the key's,
// before any request: Smartpay would only answer payment.not-found.
func (c *Client) checkMode(paymentID string) error {
	keyLive, keyOK := mode(c.key, "sk")
	payLive, payOK := mode(paymentID, "payment")
	if !keyOK || !payOK || keyLive == payLive {
		return nil
	}
	modeName := func(live bool) string {
		if live {
			return "live"
		}
		return "test"
	}
	return &normalize.Error{Code: normalize.CodeModeMismatch, Param: "payment_id",
		Message: "payment_id is a " + modeName(payLive) + " payment but the smartpay account uses a " + modeName(keyLive) + " key",
		Fields: []normalize.FieldError{{Field: "payment_id", Code: "mode_mismatch",
			Message: "test objects need test keys and live objects live keys"}}}
}

// Refund sends one refund with an idempotency key derived from its id.
// When req.Currency is empty the payment is read first to learn it.
func (c *Client) Refund(ctx context.Context, req *normalize.RefundRequest) (*normalize.ProviderRefund, error) {
	if err := providers.CheckRequest(Type, c.caps, req); err != nil {
		return nil, err
	}
	if err := c.checkMode(req.PaymentID); err != nil {
		return nil, err
	}
	if req.PaymentID == "" {
		return nil, normalize.FieldErr(normalize.CodeValidationFailed, "payment_id", "required", "payment_id is required")
	}
	currency := req.Currency
	if currency == "" {
		p, err := c.payment(ctx, req.PaymentID)
		if err != nil {
			return nil, notSent(err)
		}
		currency = p.Currency
	}
	body, err := buildRefundRequest(req, currency)
	if err != nil {
		return nil, err
	}
	call := c.call("refund", http.MethodPost, "/refunds", body, req.IdempotencyKey())
	resp, err := providers.Do(ctx, c.http, call)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return nil, classify(resp, call)
	}
	var w wireRefund
	if err := json.Unmarshal(resp.Body, &w); err != nil || w.ID == "" {
		return nil, unreadable(resp, call, err)
	}
	pr, err := w.normalize(currency)
	if err != nil {
		return nil, unreadable(resp, call, err)
	}
	return pr, nil
}

// notSent marks an error met before the refund itself was sent (reading
// the payment to learn its currency): whatever it was, no refund left.
func notSent(err error) error {
	pe, ok := err.(*providers.Error)
	if !ok || pe.Outcome != providers.OutcomeUnknown {
		return err
	}
	cp := *pe
	cp.Outcome = providers.OutcomeNotSent
	return &cp
}

// unreadable is the error for a success answer that cannot be understood:
// the refund may have been applied.
func unreadable(resp *providers.Response, call providers.Call, cause error) *providers.Error {
	e := resp.HTTPError(call, normalize.CodeProviderError, providers.OutcomeUnknown, "", "unreadable answer")
	if cause != nil {
		e.Cause = scrubbedErr{msg: providers.Scrub(cause.Error(), call.Secrets...)}
	}
	return e
}

type scrubbedErr struct{ msg string }

func (e scrubbedErr) Error() string { return e.msg }

// payment reads GET /payments/{id}.
func (c *Client) payment(ctx context.Context, id string) (*paymentInfo, error) {
	call := c.call("lookup", http.MethodGet, "/payments/"+url.PathEscape(id), nil, "")
	resp, err := providers.Do(ctx, c.http, call)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, classify(resp, call)
	}
	var w wirePayment
	if err := json.Unmarshal(resp.Body, &w); err != nil {
		return nil, unreadable(resp, call, err)
	}
	p, err := w.info()
	if err != nil {
		return nil, unreadable(resp, call, err)
	}
	return p, nil
}

// refundByID reads GET /refunds/{id}; a refund Smartpay does not know is
// (nil, nil).
func (c *Client) refundByID(ctx context.Context, id string) (*wireRefund, error) {
	call := c.call("lookup", http.MethodGet, "/refunds/"+url.PathEscape(id), nil, "")
	resp, err := providers.Do(ctx, c.http, call)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		if e := parseError(resp.Body); e.ErrorCode == "refund.not-found" {
			return nil, nil
		}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, classify(resp, call)
	}
	var w wireRefund
	if err := json.Unmarshal(resp.Body, &w); err != nil || w.ID == "" {
		return nil, unreadable(resp, call, err)
	}
	return &w, nil
}

// listRefunds pages through GET /refunds?payment=… newest first, calling
// match on each refund until it returns true or the pages end.
func (c *Client) listRefunds(ctx context.Context, paymentID string, match func(*wireRefund) bool) error {
	token := ""
	seen := map[string]bool{}
	for range maxListPages {
		q := url.Values{"payment": {paymentID}, "maxResults": {strconv.Itoa(listPageSize)}}
		if token != "" {
			q.Set("pageToken", token)
		}
		call := c.call("lookup", http.MethodGet, "/refunds?"+q.Encode(), nil, "")
		resp, err := providers.Do(ctx, c.http, call)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return classify(resp, call)
		}
		var page wireCollection
		if err := json.Unmarshal(resp.Body, &page); err != nil {
			return unreadable(resp, call, err)
		}
		for i := range page.Data {
			if match(&page.Data[i]) {
				return nil
			}
		}
		if page.NextPageToken == "" || seen[page.NextPageToken] || len(page.Data) == 0 {
			return nil
		}
		seen[page.NextPageToken] = true
		token = page.NextPageToken
	}
	return nil
}

// Lookup reads the payment and finds the refund named by ref: by provider
// refund id (GET /refunds/{id}) or, when that id never came back, by the
// gateway's refund id carried in metadata, among the payment's refunds.
func (c *Client) Lookup(ctx context.Context, ref normalize.LookupRef) (*normalize.ProviderState, error) {
	if ref.PaymentID == "" {
		return nil, normalize.FieldErr(normalize.CodeValidationFailed, "payment_id", "required", "payment_id is required")
	}
	if err := c.checkMode(ref.PaymentID); err != nil {
		return nil, err
	}
	p, err := c.payment(ctx, ref.PaymentID)
	if err != nil {
		return nil, err
	}
	st := &normalize.ProviderState{
		PaymentID: p.ID, Currency: p.Currency, CapturedAmount: p.Amount, RefundedAmount: p.Refunded,
		Livemode: p.Live, CapturedAt: p.CreatedAt, PaymentStatus: p.Status,
	}
	if st.PaymentID == "" {
		st.PaymentID = ref.PaymentID
	}
	var found *wireRefund
	matches := func(w *wireRefund) bool {
		if w.Payment != "" && w.Payment != ref.PaymentID {
			return false
		}
		return (ref.ProviderRefundID != "" && w.ID == ref.ProviderRefundID) ||
			(ref.RefundID != "" && w.Metadata[metaRefundID] == ref.RefundID)
	}
	for i := range p.Refunds {
		if matches(&p.Refunds[i]) {
			found = &p.Refunds[i]
		}
	}
	if found == nil && ref.ProviderRefundID != "" {
		w, err := c.refundByID(ctx, ref.ProviderRefundID)
		if err != nil {
			return nil, err
		}
		if w != nil && matches(w) {
			found = w
		}
	}
	var refunded int64
	if (found == nil && ref.RefundID != "") || !p.RefundedKnown {
		var sumErr error
		err := c.listRefunds(ctx, ref.PaymentID, func(w *wireRefund) bool {
			if w.Status == "succeeded" {
				a, err := fromWire(w.Amount, w.currencyOr(p.Currency))
				if err != nil {
					sumErr = err
				}
				refunded += a
			}
			if found == nil && matches(w) {
				cp := *w
				found = &cp
			}
			return false
		})
		if err != nil {
			return nil, err
		}
		if !p.RefundedKnown && sumErr == nil {
			st.RefundedAmount = refunded
		}
	}
	if found != nil {
		r, err := found.normalize(p.Currency)
		if err != nil {
			return nil, &providers.Error{Provider: c.name, Op: "lookup", Code: normalize.CodeProviderError,
				Outcome: providers.OutcomeUnknown, Cause: err}
		}
		st.Refund = r
	}
	return st, nil
}

var (
	_ providers.Provider        = (*Client)(nil)
	_ providers.WebhookVerifier = (*Client)(nil)
)
