package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

// defaultListLimit is the page size when ListQuery.Limit is not positive.
const defaultListLimit = 20

// GetRefund returns the merchant's refund; an empty merchantID matches any.
func (s *Store) GetRefund(ctx context.Context, merchantID, id string) (*normalize.Refund, error) {
	const q = `SELECT ` + refundCols + ` FROM refunds WHERE id = $1 AND ($2 = '' OR merchant_id = $2)`
	r, err := scanRefund(s.pool.QueryRow(ctx, q, id, merchantID))
	if err != nil {
		return nil, fmt.Errorf("postgres: get refund %s: %w", id, notFound(err))
	}
	return r, nil
}

// ListRefunds returns up to q.Limit of the merchant's refunds, newest (the
// greatest id) first, and whether more follow. StartingAfter is the id of
// the last refund of the previous page.
func (s *Store) ListRefunds(ctx context.Context, q store.ListQuery) ([]*normalize.Refund, bool, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	var (
		where = []string{"merchant_id = $1"}
		args  = []any{q.MerchantID}
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.PaymentID != "" {
		add("payment_id = $%d", q.PaymentID)
	}
	if q.Provider != "" {
		add("provider = $%d", q.Provider)
	}
	if q.Status != "" {
		add("status = $%d", string(q.Status))
	}
	if q.CreatedGTE != nil {
		add("created_at >= $%d", *q.CreatedGTE)
	}
	if q.CreatedLT != nil {
		add("created_at < $%d", *q.CreatedLT)
	}
	if q.StartingAfter != "" {
		add("id < $%d", q.StartingAfter)
	}
	args = append(args, limit+1)
	query := fmt.Sprintf(`SELECT %s FROM refunds WHERE %s ORDER BY id DESC LIMIT $%d`,
		refundCols, strings.Join(where, " AND "), len(args))
	out, err := s.collect(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: list refunds: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

func (s *Store) collect(ctx context.Context, query string, args ...any) ([]*normalize.Refund, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*normalize.Refund{}
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetIdempotency returns the merchant's record for key, or ErrNotFound.
func (s *Store) GetIdempotency(ctx context.Context, merchantID, key string) (*store.IdempotencyRecord, error) {
	const q = `SELECT ` + keyCols + ` FROM idempotency_keys WHERE merchant_id = $1 AND key = $2`
	k, err := scanKey(s.pool.QueryRow(ctx, q, merchantID, key))
	if err != nil {
		return nil, fmt.Errorf("postgres: get idempotency key: %w", notFound(err))
	}
	return k, nil
}

// FindByProviderRefund returns the refund with a provider refund id on an
// account, or ErrNotFound.
func (s *Store) FindByProviderRefund(ctx context.Context, provider, providerRefundID string) (*normalize.Refund, error) {
	const q = `SELECT ` + refundCols + ` FROM refunds
		WHERE provider = $1 AND provider_refund_id = $2 ORDER BY id LIMIT 1`
	r, err := scanRefund(s.pool.QueryRow(ctx, q, provider, providerRefundID))
	if err != nil {
		return nil, fmt.Errorf("postgres: find provider refund %s/%s: %w", provider, providerRefundID, notFound(err))
	}
	return r, nil
}

// DuePending returns up to limit pending refunds whose NextSyncAt is at or
// before now, oldest sync first.
func (s *Store) DuePending(ctx context.Context, now time.Time, limit int) ([]*normalize.Refund, error) {
	if limit <= 0 {
		return []*normalize.Refund{}, nil
	}
	const q = `SELECT ` + refundCols + ` FROM refunds
		WHERE status = 'pending' AND next_sync_at <= $1 ORDER BY next_sync_at, id LIMIT $2`
	out, err := s.collect(ctx, q, now, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: due pending: %w", err)
	}
	return out, nil
}

// Totals sums a payment's refunds by state.
func (s *Store) Totals(ctx context.Context, provider, paymentID string) (store.Totals, error) {
	var t store.Totals
	if err := s.pool.QueryRow(ctx, totalsSQL, provider, paymentID).Scan(&t.Succeeded, &t.Pending, &t.Held); err != nil {
		return store.Totals{}, fmt.Errorf("postgres: totals %s/%s: %w", provider, paymentID, err)
	}
	return t, nil
}

// GetPayment returns the kept facts of a payment, or ErrNotFound.
func (s *Store) GetPayment(ctx context.Context, provider, paymentID string) (*store.Payment, error) {
	const q = `SELECT ` + paymentCols + ` FROM payments WHERE provider = $1 AND payment_id = $2`
	p, err := scanPayment(s.pool.QueryRow(ctx, q, provider, paymentID))
	if err != nil {
		return nil, fmt.Errorf("postgres: get payment %s/%s: %w", provider, paymentID, notFound(err))
	}
	return p, nil
}
