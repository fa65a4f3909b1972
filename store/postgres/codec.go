package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

// refundCols lists the refunds columns in the order refundArgs and
// scanRefund use.
const refundCols = `id, merchant_id, provider, provider_type, payment_id,
	provider_refund_id, amount, currency, status, provider_status, reason,
	description, reference, metadata, line_items, livemode, failure,
	needs_attention, attempts, next_sync_at, sent_at, created_at, updated_at`

const keyCols = `merchant_id, key, request_hash, refund_id, answer_status,
	answer_body, created_at`

const paymentCols = `provider, payment_id, currency, captured,
	external_refunded, livemode, captured_at, fetched_at`

// putPaymentSQL keeps a payment's facts unless some are kept already.
const putPaymentSQL = `INSERT INTO payments (` + paymentCols + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`

const insertRefundSQL = `INSERT INTO refunds (` + refundCols + `) VALUES
	($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
	$17, $18, $19, $20, $21, $22, $23)`

// updateRefundSQL stores the mutable columns of a refund still in a state;
// the amount and currency are fixed by Create.
const updateRefundSQL = `UPDATE refunds SET
	provider_refund_id = $1, status = $2,
	provider_status = $3, reason = $4, description = $5, reference = $6,
	metadata = $7, line_items = $8, livemode = $9, failure = $10,
	needs_attention = $11, attempts = $12, next_sync_at = $13, sent_at = $14,
	updated_at = $15
	WHERE id = $16 AND status = $17`

// totalsSQL sums a payment's refunds by the states the ledger counts.
const totalsSQL = `SELECT
	COALESCE(SUM(amount) FILTER (WHERE status = 'succeeded'), 0)::bigint,
	COALESCE(SUM(amount) FILTER (WHERE status = 'pending'), 0)::bigint,
	COALESCE(SUM(amount) FILTER (WHERE status = 'requires_approval'), 0)::bigint
	FROM refunds
	WHERE provider = $1 AND payment_id = $2
	AND status IN ('succeeded', 'pending', 'requires_approval')`

// jsonOrNull encodes v as JSON text; isNil keeps it NULL.
func jsonOrNull(v any, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// refundArgs returns r's column values in refundCols order.
func refundArgs(r *normalize.Refund) ([]any, error) {
	meta, err := jsonOrNull(r.Metadata, r.Metadata == nil)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	items, err := jsonOrNull(r.LineItems, r.LineItems == nil)
	if err != nil {
		return nil, fmt.Errorf("line_items: %w", err)
	}
	failure, err := jsonOrNull(r.Failure, r.Failure == nil)
	if err != nil {
		return nil, fmt.Errorf("failure: %w", err)
	}
	return []any{
		r.ID, r.MerchantID, r.Provider, r.ProviderType, r.PaymentID,
		r.ProviderRefundID, r.Amount, r.Currency, string(r.Status), r.ProviderStatus, string(r.Reason),
		r.Description, r.Reference, meta, items, r.Livemode, failure,
		r.NeedsAttention, r.Attempts, r.NextSyncAt, r.SentAt, r.CreatedAt, r.UpdatedAt,
	}, nil
}

// updateArgs returns the values for updateRefundSQL.
func updateArgs(r *normalize.Refund, from normalize.Status) ([]any, error) {
	a, err := refundArgs(r)
	if err != nil {
		return nil, err
	}
	// provider_refund_id, status .. sent_at, updated_at.
	out := append([]any{a[5]}, a[8:21]...)
	return append(out, a[22], r.ID, string(from)), nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func scanRefund(row pgx.Row) (*normalize.Refund, error) {
	var (
		r                    normalize.Refund
		status, reason       string
		meta, items, failure []byte
	)
	err := row.Scan(&r.ID, &r.MerchantID, &r.Provider, &r.ProviderType, &r.PaymentID,
		&r.ProviderRefundID, &r.Amount, &r.Currency, &status, &r.ProviderStatus, &reason,
		&r.Description, &r.Reference, &meta, &items, &r.Livemode, &failure,
		&r.NeedsAttention, &r.Attempts, &r.NextSyncAt, &r.SentAt, &r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		return nil, err
	}
	r.Object = "refund"
	r.Status = normalize.Status(status)
	r.Reason = normalize.Reason(reason)
	if meta != nil {
		if err := json.Unmarshal(meta, &r.Metadata); err != nil {
			return nil, fmt.Errorf("refund %s: metadata: %w", r.ID, err)
		}
	}
	if items != nil {
		if err := json.Unmarshal(items, &r.LineItems); err != nil {
			return nil, fmt.Errorf("refund %s: line_items: %w", r.ID, err)
		}
		if r.LineItems == nil {
			r.LineItems = []normalize.LineItem{}
		}
	}
	if failure != nil {
		if err := json.Unmarshal(failure, &r.Failure); err != nil {
			return nil, fmt.Errorf("refund %s: failure: %w", r.ID, err)
		}
	}
	r.NextSyncAt = utcPtr(r.NextSyncAt)
	r.SentAt = utcPtr(r.SentAt)
	r.CreatedAt = r.CreatedAt.UTC()
	r.UpdatedAt = r.UpdatedAt.UTC()
	return &r, nil
}

func scanKey(row pgx.Row) (*store.IdempotencyRecord, error) {
	var (
		k      store.IdempotencyRecord
		status *int32
		body   []byte
	)
	if err := row.Scan(&k.MerchantID, &k.Key, &k.RequestHash, &k.RefundID, &status, &body, &k.CreatedAt); err != nil {
		return nil, err
	}
	if status != nil {
		if body == nil {
			body = []byte{}
		}
		k.Answer = &store.Answer{Status: int(*status), Body: body}
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return &k, nil
}

func paymentArgs(p *store.Payment) []any {
	return []any{p.Provider, p.PaymentID, p.Currency, p.Captured,
		p.ExternalRefunded, p.Livemode, p.CapturedAt, p.FetchedAt}
}

func scanPayment(row pgx.Row) (*store.Payment, error) {
	var p store.Payment
	err := row.Scan(&p.Provider, &p.PaymentID, &p.Currency, &p.Captured,
		&p.ExternalRefunded, &p.Livemode, &p.CapturedAt, &p.FetchedAt)
	if err != nil {
		return nil, err
	}
	p.CapturedAt = utcPtr(p.CapturedAt)
	p.FetchedAt = p.FetchedAt.UTC()
	return &p, nil
}
