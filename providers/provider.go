// Package providers defines the seam between the gateway and each payment
// provider: the Provider interface, its static Capabilities, the registry of
// adapter types, the typed provider Error and shared HTTP helpers.
//
// An adapter stays dumb: it maps, calls and classifies. It never retries,
// never logs secrets and never decides policy; the gateway owns retries,
// breakers, idempotency, persistence and policy.
package providers

import (
	"context"
	"net/http"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

// Provider is one configured provider account.
type Provider interface {
	// Capabilities is static and does no I/O.
	Capabilities() Capabilities
	// Refund sends one refund. A nil error means the provider accepted or
	// settled it (ProviderRefund.Status pending or succeeded) or declined it
	// definitely (failed, with Failure). Any error is classified by ErrorCode
	// and Outcome.
	Refund(ctx context.Context, req *normalize.RefundRequest) (*normalize.ProviderRefund, error)
	// Lookup asks the provider about a payment and, when ref names one, a
	// refund of it. A refund that is not found leaves ProviderState.Refund nil.
	Lookup(ctx context.Context, ref normalize.LookupRef) (*normalize.ProviderState, error)
	// ErrorCode classifies an error returned by this provider.
	ErrorCode(err error) normalize.Code
}

// WebhookVerifier is implemented by adapters that take provider webhooks.
type WebhookVerifier interface {
	// Verify checks the signature of a raw webhook body and its headers.
	Verify(header http.Header, body []byte, now time.Time) error
	// Parse decodes a verified body into normalised events.
	Parse(header http.Header, body []byte) ([]normalize.WebhookEvent, error)
}

// PaymentRef says what kind of provider object a refund names.
type PaymentRef string

// The reference styles.
const (
	RefCheckout PaymentRef = "checkout"
	RefCharge   PaymentRef = "charge"
	RefPayment  PaymentRef = "payment"
)

// Limits are the provider's field limits; zero means no limit.
type Limits struct {
	MetadataPairs    int
	MetadataKeyLen   int
	MetadataValueLen int
	DescriptionLen   int
	ReferenceLen     int
	LineItems        int
	// ReservedMetadata is how many metadata pairs the adapter itself adds
	// (for reconciliation) out of MetadataPairs.
	ReservedMetadata int
	// ReservedKeyPrefix, when set, is the prefix of the metadata keys the
	// adapter writes itself: a merchant key with it cannot be carried (it
	// would be overwritten, or would overwrite the reconciliation handle).
	ReservedKeyPrefix string
	// NoLineItems: the provider has no field for line items, so a refund
	// with any cannot be carried.
	NoLineItems bool
	// LineItemIDsOnly: the provider carries line item ids only, so a line
	// item with an amount or a quantity cannot be carried.
	LineItemIDsOnly bool
}

// Capabilities describe what a provider account can do.
type Capabilities struct {
	PaymentRef PaymentRef
	// Partial: amounts below the refundable rest are accepted.
	Partial bool
	// Multiple: more than one refund per payment.
	Multiple bool
	// Reasons the provider carries natively; others are mapped by the adapter.
	Reasons []normalize.Reason
	// Idempotent: the provider deduplicates resends by idempotency key, so
	// the gateway may resend an unknown outcome with the same key.
	Idempotent bool
	// RequiresCurrency: the provider needs the currency on every refund.
	RequiresCurrency bool
	// Livemode of the account's key.
	Livemode bool
	Limits   Limits
}

// Config is one provider account of the configuration, as handed to a
// Factory.
type Config struct {
	Name          string
	Type          string
	BaseURL       string
	SecretKey     string
	WebhookSecret string
	Timeout       time.Duration
	// MaxConns caps the client's connections to the provider (0: 256).
	MaxConns int
	// Options are the type-specific options, decoded by the adapter with
	// DecodeOptions so that unknown keys fail.
	Options map[string]any
	// HTTPClient, when set, replaces the default client (tests, sandbox).
	HTTPClient *http.Client
}
