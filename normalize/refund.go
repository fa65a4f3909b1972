package normalize

import "time"

// LineItem is one line of the original payment being refunded.
type LineItem struct {
	ID       string `json:"id"`
	Amount   *int64 `json:"amount,omitempty"`
	Quantity *int64 `json:"quantity,omitempty"`
}

// Failure says why a refund failed.
type Failure struct {
	Code            Code   `json:"code"`
	Message         string `json:"message"`
	ProviderCode    string `json:"provider_code"`
	ProviderMessage string `json:"provider_message"`
}

// Refund is the normalised refund the API answers with and the store keeps.
type Refund struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	MerchantID       string            `json:"-"`
	Provider         string            `json:"provider"`
	ProviderType     string            `json:"provider_type"`
	PaymentID        string            `json:"payment_id"`
	ProviderRefundID *string           `json:"provider_refund_id"`
	Amount           int64             `json:"amount"`
	Currency         string            `json:"currency"`
	Status           Status            `json:"status"`
	ProviderStatus   *string           `json:"provider_status"`
	Reason           Reason            `json:"reason"`
	Description      *string           `json:"description"`
	Reference        *string           `json:"reference"`
	Metadata         map[string]string `json:"metadata"`
	LineItems        []LineItem        `json:"line_items"`
	Livemode         bool              `json:"livemode"`
	Failure          *Failure          `json:"failure"`
	// NeedsAttention is set when the reconciler could not settle a pending
	// refund within its deadline; an operator must look at it.
	NeedsAttention bool      `json:"needs_attention"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`

	// Attempts counts provider calls made for this refund.
	Attempts int `json:"-"`
	// NextSyncAt is when the reconciler next looks at a pending refund.
	NextSyncAt *time.Time `json:"-"`
	// SentAt is set just before the first provider call; nil means the
	// refund provably never left.
	SentAt *time.Time `json:"-"`
}

// RefundRequest is what the gateway asks an adapter to send.
type RefundRequest struct {
	// RefundID is the gateway's id; adapters derive the provider
	// idempotency key or tracking id from it, identically on every resend.
	RefundID  string
	PaymentID string
	// Amount in the ISO minor unit of Currency. Zero is allowed only with
	// Full, when the amount is not known: the provider refunds the rest.
	Amount int64
	// Full says the refund takes the whole refundable rest of the payment,
	// so a full-refund-only provider may carry it.
	Full        bool
	Currency    string
	Reason      Reason
	Description string
	Reference   string
	Metadata    map[string]string
	LineItems   []LineItem
	Livemode    bool
}

// IdempotencyKey returns the provider idempotency key for the request: the
// same for every attempt of one refund.
func (r *RefundRequest) IdempotencyKey() string { return "refundgate-" + r.RefundID }

// ProviderRefund is the adapter's normalised answer about one refund.
type ProviderRefund struct {
	ProviderRefundID string
	// Status is pending, succeeded or failed.
	Status         Status
	ProviderStatus string
	Amount         int64
	Currency       string
	Livemode       bool
	Failure        *Failure
}

// LookupRef says what to look up: the payment, and the refund by whatever
// handle is known (provider refund id, or the gateway's refund id that the
// adapter placed in a track id, reference or metadata).
type LookupRef struct {
	PaymentID        string
	RefundID         string
	ProviderRefundID string
	Currency         string
	Amount           int64
}

// ProviderState is what a provider says about a payment and, when asked
// and found, one refund of it.
type ProviderState struct {
	PaymentID      string
	Currency       string
	CapturedAmount int64
	RefundedAmount int64
	Livemode       bool
	// CapturedAt is when the payment was made, if the provider says.
	CapturedAt *time.Time
	// PaymentStatus is the provider's own word for the payment.
	PaymentStatus string
	// Refund is the refund asked for by LookupRef, nil when not found.
	Refund *ProviderRefund
}

// WebhookEvent is a provider webhook, verified and normalised.
type WebhookEvent struct {
	// ID is the provider's event id, used to drop duplicates.
	ID   string
	Type string
	// Refund handles; any may be empty.
	RefundID         string
	ProviderRefundID string
	PaymentID        string
	// Status is succeeded, failed or pending; empty for events that carry
	// no refund state.
	Status         Status
	ProviderStatus string
	Amount         int64
	Currency       string
	Failure        *Failure
}
