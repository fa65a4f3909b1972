// Package reference is the adapter for refundgate's in-memory reference
// provider (Server): a plain JSON refund API with partial refunds and
// idempotency keys. It is the model every real adapter follows and passes
// the providertest conformance suite.
package reference

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
const Type = "reference"

// metaRefundID is the metadata key that carries the gateway's refund id.
const metaRefundID = "refundgate_refund_id"

func init() { providers.Register(Type, New) }

// Client is one reference provider account.
type Client struct {
	name, base, key string
	http            *http.Client
	caps            providers.Capabilities
}

// New builds a Client from its configuration.
func New(cfg providers.Config) (providers.Provider, error) {
	var opts struct{}
	if err := providers.DecodeOptions(cfg.Options, &opts); err != nil {
		return nil, err
	}
	return &Client{
		name: cfg.Name, base: strings.TrimRight(cfg.BaseURL, "/"), key: cfg.SecretKey,
		http: providers.NewHTTPClient(cfg),
		caps: providers.Capabilities{
			PaymentRef: providers.RefPayment, Partial: true, Multiple: true,
			Reasons: normalize.Reasons, Idempotent: true,
			Limits: providers.Limits{MetadataPairs: 20, ReservedMetadata: 1, MetadataKeyLen: 40, MetadataValueLen: 500,
				ReservedKeyPrefix: "refundgate_"},
		},
	}, nil
}

// Capabilities returns the account's static capabilities.
func (c *Client) Capabilities() providers.Capabilities { return c.caps }

func (c *Client) call(op, method, path string, body any, idemKey string) providers.Call {
	h := http.Header{"Authorization": {"Bearer " + c.key}}
	if idemKey != "" {
		h.Set("Idempotency-Key", idemKey)
	}
	return providers.Call{Provider: c.name, Op: op, Method: method, URL: c.base + path, Header: h, Body: body, Secrets: []string{c.key}}
}

// Refund sends one refund with an idempotency key derived from its id.
func (c *Client) Refund(ctx context.Context, req *normalize.RefundRequest) (*normalize.ProviderRefund, error) {
	if err := providers.CheckRequest(Type, c.caps, req); err != nil {
		return nil, err
	}
	meta := map[string]string{metaRefundID: req.RefundID}
	for k, v := range req.Metadata {
		meta[k] = v
	}
	body := wireRefundRequest{Reason: string(req.Reason), Reference: req.Reference, Metadata: meta}
	if req.Amount > 0 {
		body.Amount = &req.Amount
	}
	call := c.call("refund", http.MethodPost, "/payments/"+url.PathEscape(req.PaymentID)+"/refunds", body, req.IdempotencyKey())
	resp, err := providers.Do(ctx, c.http, call)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, classify(resp, call)
	}
	var w wireRefund
	if err := json.Unmarshal(resp.Body, &w); err != nil || w.ID == "" {
		return nil, &providers.Error{Provider: c.name, Op: "refund", StatusCode: resp.StatusCode, Code: normalize.CodeProviderError,
			Outcome: providers.OutcomeUnknown, Body: providers.Excerpt(resp.Body), Cause: err}
	}
	return w.normalize(), nil
}

// Lookup reads the payment and finds the refund by provider id or by the
// gateway's refund id carried in metadata.
func (c *Client) Lookup(ctx context.Context, ref normalize.LookupRef) (*normalize.ProviderState, error) {
	call := c.call("lookup", http.MethodGet, "/payments/"+url.PathEscape(ref.PaymentID), nil, "")
	resp, err := providers.Do(ctx, c.http, call)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, classify(resp, call)
	}
	var p wirePayment
	if err := json.Unmarshal(resp.Body, &p); err != nil {
		return nil, &providers.Error{Provider: c.name, Op: "lookup", StatusCode: resp.StatusCode, Code: normalize.CodeProviderError,
			Outcome: providers.OutcomeUnknown, Body: providers.Excerpt(resp.Body), Cause: err}
	}
	st := &normalize.ProviderState{PaymentID: p.ID, Currency: p.Currency, CapturedAmount: p.Amount,
		RefundedAmount: p.Refunded, CapturedAt: &p.Created, PaymentStatus: "captured"}
	for _, r := range p.Refunds {
		if (ref.ProviderRefundID != "" && r.ID == ref.ProviderRefundID) || (ref.RefundID != "" && r.Metadata[metaRefundID] == ref.RefundID) {
			st.Refund = r.normalize()
		}
	}
	return st, nil
}

// ErrorCode classifies an error of this adapter.
func (c *Client) ErrorCode(err error) normalize.Code { return providers.DefaultErrorCode(err) }

var _ providers.Provider = (*Client)(nil)
