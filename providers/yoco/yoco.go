// Package yoco is the adapter for the Yoco Checkout API: full refunds of a
// checkout by its id, deduplicated by the Idempotency-Key header.
//
// A refund is POST {base}/checkouts/{checkoutId}/refund with
// "Authorization: Bearer <secret key>" and the Idempotency-Key derived from
// the gateway's refund id (the same key on every resend). Yoco's body has
// only metadata (and, on newer contracts, amount): it has no reason,
// reference or description field, so the gateway's refund id, reference,
// reason and description travel in the refund's metadata
// (refundgate_refund_id, refundgate_reference, refundgate_reason,
// refundgate_description) next to the merchant's own pairs. Merchant keys
// starting with refundgate_ are refused rather than overwritten, and line
// items, which Yoco cannot carry, are refused rather than dropped (422
// provider_limit_exceeded, before any request). The 202 answer
// ("successful") means accepted, never final: the final state comes from a
// refund.succeeded / refund.failed webhook or from the checkout's status
// (refunded or reversed).
//
// The seed documents support only full refunds. An account whose Yoco
// contract allows partial refunds (the newer API's "amount") sets the
// option partial_refunds: true.
package yoco

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// Type is the configuration type of this adapter.
const Type = "yoco"

// DefaultBaseURL is Yoco's live API base.
const DefaultBaseURL = "https://payments.yoco.com/api"

// The metadata keys the adapter adds to refunds; they count in
// Limits.ReservedMetadata, and a merchant key with their prefix is refused.
const (
	metaPrefix      = "refundgate_"
	metaRefundID    = metaPrefix + "refund_id"
	metaReference   = metaPrefix + "reference"
	metaReason      = metaPrefix + "reason"
	metaDescription = metaPrefix + "description"
)

// reservedMetadata is how many metadata pairs the adapter adds at most.
const reservedMetadata = 4

func init() { providers.Register(Type, New) }

// Options are the account's yoco-specific options.
type Options struct {
	// PartialRefunds says the account's Yoco contract accepts "amount" and
	// more than one refund per checkout. Off by default, as in the seeds.
	PartialRefunds bool `yaml:"partial_refunds"`
}

// Client is one Yoco account.
type Client struct {
	name, base, key string
	webhookSecret   string
	partial         bool
	http            *http.Client
	caps            providers.Capabilities
}

// New builds a Client from its configuration. Its only option is
// partial_refunds; any other key is an error.
func New(cfg providers.Config) (providers.Provider, error) {
	var opts Options
	if err := providers.DecodeOptions(cfg.Options, &opts); err != nil {
		return nil, err
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	return &Client{
		name: cfg.Name, base: base, key: cfg.SecretKey, webhookSecret: cfg.WebhookSecret,
		partial: opts.PartialRefunds,
		http:    providers.NewHTTPClient(cfg),
		caps: providers.Capabilities{
			PaymentRef: providers.RefCheckout,
			Partial:    opts.PartialRefunds, Multiple: opts.PartialRefunds,
			Reasons:    []normalize.Reason{},
			Idempotent: true,
			Livemode:   strings.HasPrefix(cfg.SecretKey, "sk_live_"),
			Limits:     providers.Limits{ReservedMetadata: reservedMetadata, ReservedKeyPrefix: metaPrefix, NoLineItems: true},
		},
	}, nil
}

// Capabilities returns the account's static capabilities.
func (c *Client) Capabilities() providers.Capabilities { return c.caps }

// ErrorCode classifies an error of this adapter.
func (c *Client) ErrorCode(err error) normalize.Code { return providers.DefaultErrorCode(err) }

func (c *Client) call(op, method, path string, body any, idemKey string) providers.Call {
	h := http.Header{"Authorization": {"Bearer " + c.key}}
	if idemKey != "" {
		h.Set("Idempotency-Key", idemKey)
	}
	return providers.Call{Provider: c.name, Op: op, Method: method, URL: c.base + path, Header: h, Body: body,
		Secrets: []string{c.key, c.webhookSecret}}
}

// keyMode says whether the account's key is live; ok is false when its
// prefix says neither test nor live.
func (c *Client) keyMode() (live, ok bool) {
	switch {
	case strings.HasPrefix(c.key, "sk_live_"):
		return true, true
	case strings.HasPrefix(c.key, "sk_test_"):
		return false, true
	}
	return false, false
}

func modeName(live bool) string {
	if live {
		return "live"
	}
	return "test"
}

// checkRequest refuses, before any request, what the account cannot
// carry. Checkout ids carry no mode, so the mode check compares the
// refund's own mode (set by the gateway from the account when the refund
// was created) with the key's: a key switched between modes must not send
// an old refund to the other mode's account.
func (c *Client) checkRequest(req *normalize.RefundRequest) error {
	if err := providers.CheckRequest(Type, c.caps, req); err != nil {
		return err
	}
	if live, ok := c.keyMode(); ok && live != req.Livemode {
		return normalize.FieldErr(normalize.CodeModeMismatch, "payment_id", "mode_mismatch",
			"the refund is a "+modeName(req.Livemode)+" refund but the yoco account uses a "+modeName(live)+" key")
	}
	if req.PaymentID == "" {
		return normalize.FieldErr(normalize.CodeValidationFailed, "payment_id", "required", "payment_id is required")
	}
	if req.Amount < 0 || req.Amount == 0 && !req.Full {
		return normalize.FieldErr(normalize.CodeValidationFailed, "amount", "invalid",
			"amount must be at least 1 unless the whole payment is refunded")
	}
	return nil
}

// Refund sends one refund with an idempotency key derived from its id. On
// a full-refund-only account no amount is sent: Yoco refunds the whole
// checkout. The answer is pending until a webhook or Lookup says more.
func (c *Client) Refund(ctx context.Context, req *normalize.RefundRequest) (*normalize.ProviderRefund, error) {
	if err := c.checkRequest(req); err != nil {
		return nil, err
	}
	body := buildRefundRequest(req, c.partial)
	call := c.call("refund", http.MethodPost, "/checkouts/"+url.PathEscape(req.PaymentID)+"/refund", body, req.IdempotencyKey())
	resp, err := providers.Do(ctx, c.http, call)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, classify(resp, call)
	}
	var w wireRefundResponse
	if err := json.Unmarshal(resp.Body, &w); err != nil || w.RefundID == "" {
		return nil, unreadable(resp, call, err)
	}
	pr := w.normalize(req)
	pr.Livemode = c.caps.Livemode
	return pr, nil
}

// Lookup reads GET {base}/checkouts/{id}: the checkout's amount, currency
// and status, and the refund named by ref. The refund is found in the
// refunds list the checkout may carry (the sandbox's extension; matched by
// provider refund id or by the gateway's id in metadata), which also shows
// a refund that was applied but is still settling. Without such a list the
// documented status decides: refunded or reversed means the refund
// succeeded; a completed checkout with a refund id Yoco already gave back
// (a 202 was seen) has a pending refund; otherwise the refund is not found.
func (c *Client) Lookup(ctx context.Context, ref normalize.LookupRef) (*normalize.ProviderState, error) {
	if ref.PaymentID == "" {
		return nil, normalize.FieldErr(normalize.CodeValidationFailed, "payment_id", "required", "payment_id is required")
	}
	call := c.call("lookup", http.MethodGet, "/checkouts/"+url.PathEscape(ref.PaymentID), nil, "")
	resp, err := providers.Do(ctx, c.http, call)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, classify(resp, call)
	}
	var w wireCheckout
	if err := json.Unmarshal(resp.Body, &w); err != nil {
		return nil, unreadable(resp, call, err)
	}
	live, _ := c.keyMode()
	return w.state(ref, live), nil
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

var (
	_ providers.Provider        = (*Client)(nil)
	_ providers.WebhookVerifier = (*Client)(nil)
)
