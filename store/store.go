// Package store defines where refundgate keeps refunds, idempotency records,
// payment facts and webhook event ids: the Store interface, shared by the
// SQLite and PostgreSQL implementations, which both pass the conformance
// suite in store/storetest.
//
// Every method is atomic. Create is phase 1 of the exactly-once flow (bind
// the key, check the ledger, insert the refund); UpdateRefund is phase 3
// (store the outcome and the answer replayed for the key).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/refundgate/refundgate/normalize"
)

// Errors a Store returns; implementations wrap their own causes.
var (
	// ErrNotFound: no such row (or not the merchant's).
	ErrNotFound = errors.New("store: not found")
	// ErrExceedsRefundable: the refund would take the payment's refunds
	// (succeeded, pending and held) over its limit.
	ErrExceedsRefundable = errors.New("store: amount exceeds the refundable rest")
	// ErrFullyRefunded: nothing is left to refund on the payment.
	ErrFullyRefunded = errors.New("store: payment fully refunded")
	// ErrStateChanged: the refund was not in the expected state.
	ErrStateChanged = errors.New("store: refund state changed")
)

// Answer is the HTTP answer kept for an idempotency key and replayed
// byte for byte.
type Answer struct {
	Status int
	Body   []byte
}

// IdempotencyRecord binds a merchant's idempotency key to one request and,
// once known, its answer.
type IdempotencyRecord struct {
	MerchantID string
	Key        string
	// RequestHash identifies method, path and body of the first request.
	RequestHash string
	RefundID    string
	// Answer is nil until phase 3 stored it.
	Answer    *Answer
	CreatedAt time.Time
}

// CreateParams is phase 1 of a refund.
type CreateParams struct {
	// Refund is the refund to insert, with ID, MerchantID, Provider,
	// PaymentID, Currency, Status (pending or requires_approval) and times
	// set. When TakeRest is set its Amount is filled in by Create.
	Refund *normalize.Refund
	// Key is the idempotency record to bind (MerchantID, Key, RequestHash,
	// CreatedAt); RefundID is set by Create.
	Key IdempotencyRecord
	// Limit is the most the payment's refunds may add up to: succeeded,
	// pending and requires_approval refunds of (Provider, PaymentID),
	// including this one, never exceed it.
	Limit int64
	// TakeRest makes the refund's amount the whole rest under Limit.
	TakeRest bool
	// Payment, when set, holds facts of the payment that the caller
	// learned from the provider and that are not kept yet: Create keeps
	// them in the same transaction (as PutPayment would), so that a
	// refund of a payment seen for the first time costs one durable write,
	// not two. If facts of the payment are kept already (another request
	// kept them first), those stay, and their Limit() applies instead of
	// Limit. A Create the ledger refuses keeps nothing; one that finds its
	// key bound may keep them or not.
	Payment *Payment
}

// Totals sums the refunds of one payment by state.
type Totals struct {
	Succeeded int64
	Pending   int64
	Held      int64
}

// Reserved is what counts against the refundable amount.
func (t Totals) Reserved() int64 { return t.Succeeded + t.Pending + t.Held }

// Payment is what the gateway learnt about a payment from its provider and
// keeps, so the captured amount is not asked for again.
type Payment struct {
	Provider  string
	PaymentID string
	Currency  string
	Captured  int64
	// ExternalRefunded is what was refunded outside refundgate before its
	// first refund of the payment.
	ExternalRefunded int64
	Livemode         bool
	CapturedAt       *time.Time
	FetchedAt        time.Time
}

// Limit is the most refundgate may refund on the payment.
func (p *Payment) Limit() int64 { return p.Captured - p.ExternalRefunded }

// ListQuery filters a merchant's refunds, newest first.
type ListQuery struct {
	MerchantID    string
	PaymentID     string
	Provider      string
	Status        normalize.Status
	CreatedGTE    *time.Time
	CreatedLT     *time.Time
	Limit         int
	StartingAfter string
}

// Store keeps refundgate's state. All methods are safe for concurrent use.
type Store interface {
	// Create binds p.Key and inserts p.Refund atomically, after checking the
	// payment's ledger against p.Limit. If the merchant's key is already
	// bound it inserts nothing and returns the existing record, whatever its
	// RequestHash: the caller compares. It returns
	// ErrExceedsRefundable or ErrFullyRefunded (wrapped with the Totals
	// available through errors.As on *LedgerError) when the ledger refuses.
	Create(ctx context.Context, p CreateParams) (existing *IdempotencyRecord, err error)
	// UpdateRefund stores r's new state if the row is still in state from,
	// else ErrStateChanged; a missing refund is ErrNotFound. A terminal row
	// may take new facts but never another status. The id, merchant,
	// provider, payment, amount, currency and creation time never change. A non-nil answer is
	// stored on the idempotency record bound to r, if that record has none
	// yet.
	UpdateRefund(ctx context.Context, r *normalize.Refund, from normalize.Status, answer *Answer) error
	// Discard deletes a refund that provably never reached its provider,
	// with its idempotency record, so the key is free again.
	Discard(ctx context.Context, refundID string) error
	// GetRefund returns the merchant's refund; an empty merchantID matches any.
	GetRefund(ctx context.Context, merchantID, id string) (*normalize.Refund, error)
	// ListRefunds returns up to q.Limit refunds (20 when not positive),
	// newest first, and whether more follow. The caller bounds q.Limit.
	ListRefunds(ctx context.Context, q ListQuery) ([]*normalize.Refund, bool, error)
	// GetIdempotency returns the merchant's record for key, or ErrNotFound.
	GetIdempotency(ctx context.Context, merchantID, key string) (*IdempotencyRecord, error)
	// FindByProviderRefund returns the refund with a provider refund id on
	// an account, or ErrNotFound.
	FindByProviderRefund(ctx context.Context, provider, providerRefundID string) (*normalize.Refund, error)
	// DuePending returns up to limit pending refunds whose NextSyncAt is at
	// or before now, oldest sync first.
	DuePending(ctx context.Context, now time.Time, limit int) ([]*normalize.Refund, error)
	// Totals sums a payment's refunds by state.
	Totals(ctx context.Context, provider, paymentID string) (Totals, error)
	// GetPayment returns the kept facts of a payment, or ErrNotFound.
	GetPayment(ctx context.Context, provider, paymentID string) (*Payment, error)
	// PutPayment keeps the facts of a payment; the first one kept wins.
	PutPayment(ctx context.Context, p *Payment) error
	// MarkEvent records a provider webhook event id and reports whether it
	// was seen before.
	MarkEvent(ctx context.Context, provider, eventID string, at time.Time) (seen bool, err error)
	// PurgeIdempotency deletes idempotency records created before t whose
	// refund is final (succeeded, failed or canceled); a pending or held
	// refund keeps its key, whatever its age.
	PurgeIdempotency(ctx context.Context, before time.Time) (int64, error)
	// Ping checks the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// LedgerError is a refusal of the ledger with what it saw: the payment's
// reserved total (succeeded, pending and held refunds) and its limit.
type LedgerError struct {
	Err      error
	Reserved int64
	Limit    int64
}

func (e *LedgerError) Error() string { return e.Err.Error() }

// Unwrap returns ErrExceedsRefundable or ErrFullyRefunded.
func (e *LedgerError) Unwrap() error { return e.Err }

// Reserve is the ledger's rule for phase 1, shared by the drivers: given a
// payment's reserved total and limit, it returns the refund's amount (its
// own, or with takeRest the whole rest under limit), or a *LedgerError
// wrapping ErrFullyRefunded or ErrExceedsRefundable.
func Reserve(reserved, limit, amount int64, takeRest bool) (int64, error) {
	rest := limit - reserved
	if rest <= 0 {
		return 0, &LedgerError{Err: ErrFullyRefunded, Reserved: reserved, Limit: limit}
	}
	if takeRest {
		return rest, nil
	}
	if amount > rest {
		return 0, &LedgerError{Err: ErrExceedsRefundable, Reserved: reserved, Limit: limit}
	}
	return amount, nil
}
