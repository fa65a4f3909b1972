package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

// defaultListLimit is the page size when ListQuery.Limit is not positive.
const defaultListLimit = 20

// readStmts are the read statements, prepared on the read pool.
type readStmts struct {
	refund, providerRefund, due *sql.Stmt
	key, totals, payment        *sql.Stmt
	all                         []*sql.Stmt
}

func prepareRead(ctx context.Context, db *sql.DB) (*readStmts, error) {
	st := &readStmts{}
	list := []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.refund, `SELECT ` + refundCols + ` FROM refunds WHERE id = ? AND (? = '' OR merchant_id = ?)`},
		{&st.providerRefund, `SELECT ` + refundCols + ` FROM refunds
			WHERE provider = ? AND provider_refund_id = ? ORDER BY id LIMIT 1`},
		{&st.due, `SELECT ` + refundCols + ` FROM refunds
			WHERE status = 'pending' AND next_sync_at <= ? ORDER BY next_sync_at, id LIMIT ?`},
		{&st.key, keySQL},
		{&st.totals, totalsSQL},
		{&st.payment, `SELECT ` + paymentCols + ` FROM payments WHERE provider = ? AND payment_id = ?`},
	}
	for _, p := range list {
		stmt, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			_ = st.close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", p.sql, err)
		}
		*p.dst = stmt
		st.all = append(st.all, stmt)
	}
	return st, nil
}

func (st *readStmts) close() error {
	var errs []error
	for _, s := range st.all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// Every read waits for settled before it answers, so that it never shows
// what is not yet on disk, rows or their absence (see durable.go). One
// exception: GetIdempotency finding no key answers at once, since its
// caller's next step is Create, a write ordered after any commit the read
// saw.

// settle waits for settled before a read answers with err (nil, or no
// rows); other errors answer at once.
func (s *Store) settle(ctx context.Context, err error) error {
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if serr := s.settled(ctx); serr != nil {
		return serr
	}
	return err
}

// notFound maps sql.ErrNoRows to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// GetRefund returns the merchant's refund; an empty merchantID matches any.
func (s *Store) GetRefund(ctx context.Context, merchantID, id string) (*normalize.Refund, error) {
	r, err := scanRefund(s.r.refund.QueryRowContext(ctx, id, merchantID, merchantID))
	err = s.settle(ctx, err)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get refund %s: %w", id, notFound(err))
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
		where = []string{"merchant_id = ?"}
		args  = []any{q.MerchantID}
	)
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if q.PaymentID != "" {
		add("payment_id = ?", q.PaymentID)
	}
	if q.Provider != "" {
		add("provider = ?", q.Provider)
	}
	if q.Status != "" {
		add("status = ?", string(q.Status))
	}
	if q.CreatedGTE != nil {
		add("created_at >= ?", micros(*q.CreatedGTE))
	}
	if q.CreatedLT != nil {
		add("created_at < ?", micros(*q.CreatedLT))
	}
	if q.StartingAfter != "" {
		add("id < ?", q.StartingAfter)
	}
	args = append(args, limit+1)
	query := `SELECT ` + refundCols + ` FROM refunds WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY id DESC LIMIT ?`
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: list refunds: %w", err)
	}
	out, err := collect(rows)
	err = s.settle(ctx, err)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: list refunds: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

func collect(rows *sql.Rows) ([]*normalize.Refund, error) {
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
	k, err := scanKey(s.r.key.QueryRowContext(ctx, merchantID, key))
	if err == nil {
		err = s.settled(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get idempotency key: %w", notFound(err))
	}
	return k, nil
}

// FindByProviderRefund returns the refund with a provider refund id on an
// account, or ErrNotFound.
func (s *Store) FindByProviderRefund(ctx context.Context, provider, providerRefundID string) (*normalize.Refund, error) {
	r, err := scanRefund(s.r.providerRefund.QueryRowContext(ctx, provider, providerRefundID))
	err = s.settle(ctx, err)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find provider refund %s/%s: %w", provider, providerRefundID, notFound(err))
	}
	return r, nil
}

// DuePending returns up to limit pending refunds whose NextSyncAt is at or
// before now, oldest sync first.
func (s *Store) DuePending(ctx context.Context, now time.Time, limit int) ([]*normalize.Refund, error) {
	if limit <= 0 {
		return []*normalize.Refund{}, nil
	}
	rows, err := s.r.due.QueryContext(ctx, micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: due pending: %w", err)
	}
	out, err := collect(rows)
	err = s.settle(ctx, err)
	if err != nil {
		return nil, fmt.Errorf("sqlite: due pending: %w", err)
	}
	return out, nil
}

// Totals sums a payment's refunds by state.
func (s *Store) Totals(ctx context.Context, provider, paymentID string) (store.Totals, error) {
	var t store.Totals
	err := s.r.totals.QueryRowContext(ctx, paymentID, provider).Scan(&t.Succeeded, &t.Pending, &t.Held)
	err = s.settle(ctx, err)
	if err != nil {
		return store.Totals{}, fmt.Errorf("sqlite: totals %s/%s: %w", provider, paymentID, err)
	}
	return t, nil
}

// GetPayment returns the kept facts of a payment, or ErrNotFound.
func (s *Store) GetPayment(ctx context.Context, provider, paymentID string) (*store.Payment, error) {
	p, err := scanPayment(s.r.payment.QueryRowContext(ctx, provider, paymentID))
	err = s.settle(ctx, err)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get payment %s/%s: %w", provider, paymentID, notFound(err))
	}
	return p, nil
}
