package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

// refundCols lists the refunds columns in the order refundArgs and
// scanRefund use.
const refundCols = `id, merchant_id, provider, provider_type, payment_id,
	provider_refund_id, amount, currency, status, provider_status, reason,
	description, reference, metadata, line_items, livemode, failure,
	needs_attention, attempts, next_sync_at, sent_at, created_at, updated_at`

const keyCols = `merchant_id, key, request_hash, refund_id, created_at`

// keySQL reads an idempotency record with the answer kept on its refund.
const keySQL = `SELECT k.merchant_id, k.key, k.request_hash, k.refund_id,
	r.answer_status, r.answer_body, k.created_at
	FROM idempotency_keys k LEFT JOIN refunds r ON r.id = k.refund_id
	WHERE k.merchant_id = ? AND k.key = ?`

const paymentCols = `provider, payment_id, currency, captured,
	external_refunded, livemode, captured_at, fetched_at`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// micros is a time as stored: integer unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// microsPtr is micros for an optional time; nil stays NULL.
func microsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// jsonOrNull encodes v as JSON text; a nil map, slice or pointer stays NULL.
func jsonOrNull[T any](v T, isNil bool) (any, error) {
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
		r.NeedsAttention, r.Attempts, microsPtr(r.NextSyncAt), microsPtr(r.SentAt),
		micros(r.CreatedAt), micros(r.UpdatedAt),
	}, nil
}

// updateArgs returns the values for updateRefundSQL; a nil answer keeps
// the one stored.
func updateArgs(r *normalize.Refund, from normalize.Status, answer *store.Answer) ([]any, error) {
	a, err := refundArgs(r)
	if err != nil {
		return nil, err
	}
	var status, body any
	if answer != nil {
		b := answer.Body
		if b == nil {
			b = []byte{}
		}
		status, body = answer.Status, b
	}
	// provider_refund_id, status .. reference, metadata .. sent_at, updated_at.
	out := append([]any{a[5]}, a[8:21]...)
	out = append(out, a[22], status, body, r.ID, string(from))
	return out, nil
}

// updateRefundSQL stores the mutable columns of a refund still in a state,
// and the answer for its idempotency key if it has none yet. The amount and
// currency are fixed by Create.
const updateRefundSQL = `UPDATE refunds SET
	provider_refund_id = ?, status = ?,
	provider_status = ?, reason = ?, description = ?, reference = ?,
	metadata = ?, line_items = ?, livemode = ?, failure = ?,
	needs_attention = ?, attempts = ?, next_sync_at = ?, sent_at = ?,
	updated_at = ?,
	answer_body = CASE WHEN answer_status IS NULL THEN ?17 ELSE answer_body END,
	answer_status = COALESCE(answer_status, ?16)
	WHERE id = ?18 AND status = ?19`

func scanRefund(sc scanner) (*normalize.Refund, error) {
	var (
		r                    normalize.Refund
		status, reason       string
		meta, items, failure sql.NullString
		nextSyncAt, sentAt   sql.NullInt64
		createdAt, updatedAt int64
	)
	err := sc.Scan(&r.ID, &r.MerchantID, &r.Provider, &r.ProviderType, &r.PaymentID,
		&r.ProviderRefundID, &r.Amount, &r.Currency, &status, &r.ProviderStatus, &reason,
		&r.Description, &r.Reference, &meta, &items, &r.Livemode, &failure,
		&r.NeedsAttention, &r.Attempts, &nextSyncAt, &sentAt, &createdAt, &updatedAt)
	if err != nil {
		return nil, err
	}
	r.Object = "refund"
	r.Status = normalize.Status(status)
	r.Reason = normalize.Reason(reason)
	if meta.Valid {
		if err := json.Unmarshal([]byte(meta.String), &r.Metadata); err != nil {
			return nil, fmt.Errorf("refund %s: metadata: %w", r.ID, err)
		}
	}
	if items.Valid {
		if err := json.Unmarshal([]byte(items.String), &r.LineItems); err != nil {
			return nil, fmt.Errorf("refund %s: line_items: %w", r.ID, err)
		}
		if r.LineItems == nil {
			r.LineItems = []normalize.LineItem{}
		}
	}
	if failure.Valid {
		if err := json.Unmarshal([]byte(failure.String), &r.Failure); err != nil {
			return nil, fmt.Errorf("refund %s: failure: %w", r.ID, err)
		}
	}
	r.NextSyncAt = fromNullMicros(nextSyncAt)
	r.SentAt = fromNullMicros(sentAt)
	r.CreatedAt = fromMicros(createdAt)
	r.UpdatedAt = fromMicros(updatedAt)
	return &r, nil
}

func scanKey(sc scanner) (*store.IdempotencyRecord, error) {
	var (
		k         store.IdempotencyRecord
		status    sql.NullInt64
		body      []byte
		createdAt int64
	)
	if err := sc.Scan(&k.MerchantID, &k.Key, &k.RequestHash, &k.RefundID, &status, &body, &createdAt); err != nil {
		return nil, err
	}
	if status.Valid {
		if body == nil {
			body = []byte{}
		}
		k.Answer = &store.Answer{Status: int(status.Int64), Body: body}
	}
	k.CreatedAt = fromMicros(createdAt)
	return &k, nil
}

func paymentArgs(p *store.Payment) []any {
	return []any{p.Provider, p.PaymentID, p.Currency, p.Captured,
		p.ExternalRefunded, p.Livemode, microsPtr(p.CapturedAt), micros(p.FetchedAt)}
}

func scanPayment(sc scanner) (*store.Payment, error) {
	var (
		p          store.Payment
		capturedAt sql.NullInt64
		fetchedAt  int64
	)
	err := sc.Scan(&p.Provider, &p.PaymentID, &p.Currency, &p.Captured,
		&p.ExternalRefunded, &p.Livemode, &capturedAt, &fetchedAt)
	if err != nil {
		return nil, err
	}
	p.CapturedAt = fromNullMicros(capturedAt)
	p.FetchedAt = fromMicros(fetchedAt)
	return &p, nil
}

// totalsSQL sums a payment's refunds by the states the ledger counts.
const totalsSQL = `SELECT
	COALESCE(SUM(CASE WHEN status = 'succeeded' THEN amount END), 0),
	COALESCE(SUM(CASE WHEN status = 'pending' THEN amount END), 0),
	COALESCE(SUM(CASE WHEN status = 'requires_approval' THEN amount END), 0)
	FROM refunds
	WHERE payment_id = ? AND provider = ?
	AND status IN ('succeeded', 'pending', 'requires_approval')`

// counts reports whether a refund in state st holds part of its payment's
// refundable amount.
func counts(st normalize.Status) bool {
	return st == normalize.StatusSucceeded || st == normalize.StatusPending || st == normalize.StatusRequiresApproval
}
