// Package checkoutcom is the adapter for the Checkout.com legacy v2 charges
// API: partial and repeated refunds of a capture charge (charge_… live,
// charge_test_… test) up to the captured value.
//
// The v2 API has no idempotency key, so Capabilities.Idempotent is false.
// Every refund carries the gateway's refund id as trackId, and Lookup finds a
// refund by that trackId in GET /charges/{id}/history: the gateway settles an
// unknown outcome by looking, never by resending blind.
//
// The request maps the gateway's fields as follows: value = the amount in
// Checkout.com's unit for the currency (omitted for a full refund of an
// unknown amount, so that the provider refunds the captured rest), trackId =
// RefundID, description (at most 100 characters unless the account's
// description_max_length option says otherwise: the seed documents no
// limit), metadata (as given, at most 10 pairs, keys and values of at most
// 100 characters), udf1 = the merchant's reference (at most 100), udf2 = the
// reason (the API has no reason field) and products from the line items
// (id → sku, quantity, amount → price). A field over its limit, and a charge
// id of the other mode than the key (charge_test_… for a test key,
// charge_… for a live one), are refused before any request: 422
// provider_limit_exceeded naming the field and the limit, or mode_mismatch.
//
// A 2xx answer whose responseCode starts with 1 is a succeeded refund; any
// other responseCode (2xxxx soft decline, 3xxxx hard decline, 4xxxx risk) is
// a definite decline, returned as a ProviderRefund with Status failed and a
// refund_declined Failure and a nil error, as the Provider contract allows.
package checkoutcom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// Type is the configuration type of this adapter.
const Type = "checkoutcom"

// The provider's field limits (seed document and README).
const (
	trackIDLen       = 50
	udfLen           = 100
	metadataPairs    = 10
	metadataKeyLen   = 100
	metadataValueLen = 100
)

// DefaultDescriptionLen is the description limit of an account that does
// not set the option description_max_length. The refund seed documents no
// limit for description; 100 is the length Checkout.com documents for its
// other free-text fields (udf1…udf5), so it is the default, not a fact:
// an account whose contract says otherwise sets the option (0: no limit).
const DefaultDescriptionLen = 100

// Options are the account's checkoutcom-specific options.
type Options struct {
	// DescriptionMaxLength is the longest description the account's
	// Checkout.com contract takes; unset means DefaultDescriptionLen and 0
	// means no limit.
	DescriptionMaxLength *int `yaml:"description_max_length"`
}

// The id prefixes that carry the mode of a charge.
const (
	livePrefix = "charge_"
	testPrefix = "charge_test_"
	testKey    = "sk_test_"
)

func init() { providers.Register(Type, New) }

// Client is one Checkout.com v2 account.
type Client struct {
	name, base, key string
	// webhookKey signs webhooks: WebhookSecret when configured, else the
	// secret key (Checkout.com signs v2 webhooks with the secret key).
	webhookKey string
	live       bool
	http       *http.Client
	caps       providers.Capabilities
}

// New builds a Client from its configuration. Its only option is
// description_max_length; any other key is an error. The key's mode decides
// Livemode: a key starting with sk_test_ is a test key, any other
// (Checkout.com live keys are sk_…) is live.
func New(cfg providers.Config) (providers.Provider, error) {
	var opts Options
	if err := providers.DecodeOptions(cfg.Options, &opts); err != nil {
		return nil, err
	}
	descriptionLen := DefaultDescriptionLen
	if opts.DescriptionMaxLength != nil {
		if *opts.DescriptionMaxLength < 0 {
			return nil, errors.New("checkoutcom: options: description_max_length must be 0 (no limit) or more")
		}
		descriptionLen = *opts.DescriptionMaxLength
	}
	if cfg.SecretKey == "" {
		return nil, errors.New("checkoutcom: secret_key is required")
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("checkoutcom: base_url is required")
	}
	live := !strings.HasPrefix(cfg.SecretKey, testKey)
	wk := cfg.WebhookSecret
	if wk == "" {
		wk = cfg.SecretKey
	}
	return &Client{
		name: cfg.Name, base: strings.TrimRight(cfg.BaseURL, "/"), key: cfg.SecretKey, webhookKey: wk, live: live,
		http: providers.NewHTTPClient(cfg),
		caps: providers.Capabilities{
			PaymentRef: providers.RefCharge, Partial: true, Multiple: true,
			Reasons: []normalize.Reason{}, Idempotent: false, RequiresCurrency: false, Livemode: live,
			Limits: providers.Limits{
				MetadataPairs: metadataPairs, MetadataKeyLen: metadataKeyLen, MetadataValueLen: metadataValueLen,
				DescriptionLen: descriptionLen, ReferenceLen: udfLen,
			},
		},
	}, nil
}

// Capabilities returns the account's static capabilities.
func (c *Client) Capabilities() providers.Capabilities { return c.caps }

func (c *Client) call(op, method, path string, body any) providers.Call {
	h := http.Header{"Authorization": {c.key}}
	return providers.Call{Provider: c.name, Op: op, Method: method, URL: c.base + path, Header: h, Body: body,
		Secrets: c.secrets()}
}

func (c *Client) secrets() []string {
	if c.webhookKey != c.key {
		return []string{c.key, c.webhookKey}
	}
	return []string{c.key}
}

// checkMode refuses a charge id of the other mode than the account's key.
func (c *Client) checkMode(id string) error {
	test := strings.HasPrefix(id, testPrefix)
	live := !test && strings.HasPrefix(id, livePrefix)
	switch {
	case c.live && test:
		return normalize.FieldErr(normalize.CodeModeMismatch, "payment_id", "mode",
			"payment_id is a Checkout.com test charge (charge_test_…) but the account uses a live key")
	case !c.live && live:
		return normalize.FieldErr(normalize.CodeModeMismatch, "payment_id", "mode",
			"payment_id is a Checkout.com live charge but the account uses a test key (sk_test_…)")
	}
	return nil
}

// check refuses, before any request, what the v2 API cannot carry.
func (c *Client) check(req *normalize.RefundRequest) error {
	if err := c.checkMode(req.PaymentID); err != nil {
		return err
	}
	if err := providers.CheckRequest(Type, c.caps, req); err != nil {
		return err
	}
	if req.RefundID == "" {
		return normalize.Errorf(normalize.CodeInternal, "checkoutcom: a refund needs the gateway's refund id for trackId")
	}
	if n := utf8.RuneCountInString(req.RefundID); n > trackIDLen {
		return normalize.Errorf(normalize.CodeInternal, "checkoutcom: refund id of %d characters exceeds the %d of trackId", n, trackIDLen)
	}
	if utf8.RuneCountInString(string(req.Reason)) > udfLen {
		return normalize.FieldErr(normalize.CodeProviderLimitExceeded, "reason", "length",
			fmt.Sprintf("reason: %s allows at most %d for length", Type, udfLen))
	}
	if req.Amount < 0 || (req.Amount == 0 && !req.Full) {
		return normalize.FieldErr(normalize.CodeValidationFailed, "amount", "min", "amount must be at least 1")
	}
	return nil
}

// Refund sends one refund of the capture charge req.PaymentID. The v2 API
// has no idempotency: the caller must Lookup by RefundID (the trackId)
// before ever resending a refund whose outcome is unknown.
func (c *Client) Refund(ctx context.Context, req *normalize.RefundRequest) (*normalize.ProviderRefund, error) {
	if err := c.check(req); err != nil {
		return nil, err
	}
	body, err := refundBody(req)
	if err != nil {
		return nil, err
	}
	call := c.call("refund", http.MethodPost, "/charges/"+url.PathEscape(req.PaymentID)+"/refund", body)
	resp, err := providers.Do(ctx, c.http, call)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, classify(resp, call)
	}
	var w wireCharge
	if err := json.Unmarshal(resp.Body, &w); err != nil || w.ID == "" {
		return nil, unreadable(resp, call, err)
	}
	r, err := w.refund()
	if err != nil {
		return nil, unreadable(resp, call, err)
	}
	return r, nil
}

// Lookup reads the charge history of ref.PaymentID (refunds, then the
// capture, then the authorization) and finds the refund whose id is
// ref.ProviderRefundID or whose trackId is ref.RefundID. CapturedAmount is
// the capture's value and RefundedAmount the sum of the approved refunds.
// When the history holds no entry for the charge itself, the charge is read
// with GET /charges/{id}.
func (c *Client) Lookup(ctx context.Context, ref normalize.LookupRef) (*normalize.ProviderState, error) {
	if err := c.checkMode(ref.PaymentID); err != nil {
		return nil, err
	}
	path := "/charges/" + url.PathEscape(ref.PaymentID)
	call := c.call("lookup", http.MethodGet, path+"/history", nil)
	resp, err := providers.Do(ctx, c.http, call)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, classify(resp, call)
	}
	var h wireHistory
	if err := json.Unmarshal(resp.Body, &h); err != nil {
		return nil, unreadable(resp, call, err)
	}
	var capture *wireCharge
	for i := range h.Charges {
		if h.Charges[i].ID == ref.PaymentID {
			capture = &h.Charges[i]
			break
		}
	}
	if capture == nil {
		gcall := c.call("lookup", http.MethodGet, path, nil)
		gresp, err := providers.Do(ctx, c.http, gcall)
		if err != nil {
			return nil, err
		}
		if gresp.StatusCode != http.StatusOK {
			return nil, classify(gresp, gcall)
		}
		var w wireCharge
		if err := json.Unmarshal(gresp.Body, &w); err != nil || w.ID == "" {
			return nil, unreadable(gresp, gcall, err)
		}
		capture = &w
	}
	st, err := state(ref, capture, h.Charges)
	if err != nil {
		return nil, unreadable(resp, call, err)
	}
	return st, nil
}

// ErrorCode classifies an error of this adapter.
func (c *Client) ErrorCode(err error) normalize.Code { return providers.DefaultErrorCode(err) }

var (
	_ providers.Provider        = (*Client)(nil)
	_ providers.WebhookVerifier = (*Client)(nil)
)
