package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

// Create binds p.Key and inserts p.Refund after checking the payment's
// ledger, all in the writer's transaction, so no other write interleaves.
func (s *Store) Create(ctx context.Context, p store.CreateParams) (*store.IdempotencyRecord, error) {
	if p.Refund == nil {
		return nil, errors.New("sqlite: create refund: nil refund")
	}
	// The row's values are encoded here, not in the writer, which is the
	// one goroutine every write waits for.
	args, err := refundArgs(p.Refund)
	if err != nil {
		return nil, fmt.Errorf("sqlite: create refund %s: %w", p.Refund.ID, err)
	}
	var payArgs []any
	if p.Payment != nil {
		payArgs = paymentArgs(p.Payment)
	}
	var existing *store.IdempotencyRecord
	err = s.do(ctx, func(tx *wtx) error {
		var err error
		existing, err = tx.create(p, args, payArgs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: create refund %s: %w", p.Refund.ID, err)
	}
	return existing, nil
}

// create runs phase 1 in the writer's transaction; args are p.Refund's
// column values (refundArgs), the amount filled in here, and payArgs
// p.Payment's (paymentArgs), nil without one.
func (tx *wtx) create(p store.CreateParams, args, payArgs []any) (*store.IdempotencyRecord, error) {
	r := p.Refund
	limit, keep, err := tx.limit(p)
	if err != nil {
		return nil, err
	}
	var reserved int64
	err = tx.st.reserved.QueryRowContext(bg, r.Provider, r.PaymentID).Scan(&reserved)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	amount, lerr := store.Reserve(reserved, limit, r.Amount, p.TakeRest)
	if lerr != nil {
		// A bound key answers for itself, whatever the ledger says now.
		if k, err := tx.boundKey(p.Key); k != nil || err != nil {
			return k, err
		}
		return nil, lerr
	}
	// Every check is done: from here on it writes. The payment's facts are
	// kept even when the key turns out to be bound already: they are true.
	if keep {
		if _, err := tx.st.paymentInsert.ExecContext(bg, payArgs...); err != nil {
			return nil, fmt.Errorf("insert payment: %w", err)
		}
	}
	// Binding the key writes nothing when the key is bound already, and
	// then that record is the answer.
	res, err := tx.st.keyInsert.ExecContext(bg, p.Key.MerchantID, p.Key.Key, p.Key.RequestHash, r.ID, micros(p.Key.CreatedAt))
	if err != nil {
		return nil, fmt.Errorf("insert idempotency key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return nil, fmt.Errorf("insert idempotency key: %w", err)
		}
		return tx.boundKey(p.Key)
	}
	args[6] = amount
	if _, err := tx.st.refundInsert.ExecContext(bg, args...); err != nil {
		return nil, fmt.Errorf("insert refund: %w", err)
	}
	if counts(r.Status) {
		if _, err := tx.st.reserve.ExecContext(bg, r.Provider, r.PaymentID, amount); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	}
	r.Amount = amount
	return nil, nil
}

// limit is the payment's limit for p: p.Limit without p.Payment, else
// the kept facts' limit, or p.Payment's when none are kept yet, and then
// keep is set: p.Payment is to be kept.
func (tx *wtx) limit(p store.CreateParams) (limit int64, keep bool, err error) {
	if p.Payment == nil {
		return p.Limit, false, nil
	}
	err = tx.st.paymentLimit.QueryRowContext(bg, p.Payment.Provider, p.Payment.PaymentID).Scan(&limit)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return p.Payment.Limit(), true, nil
	case err != nil:
		return 0, false, fmt.Errorf("payment: %w", err)
	}
	return limit, false, nil
}

// boundKey returns the record already bound to k, or nil.
func (tx *wtx) boundKey(k store.IdempotencyRecord) (*store.IdempotencyRecord, error) {
	rec, err := scanKey(tx.st.keyGet.QueryRowContext(bg, k.MerchantID, k.Key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("idempotency key: %w", err)
	}
	return rec, nil
}

// UpdateRefund stores r's state, and answer if the refund has none yet, if
// its row is still in state from. A refund in a terminal state keeps that
// state: from terminal and r.Status different is ErrStateChanged. The
// columns id, merchant_id, provider, provider_type, payment_id, amount,
// currency and created_at never change. A refund that fails or is
// canceled gives its amount back to the payment's ledger.
func (s *Store) UpdateRefund(ctx context.Context, r *normalize.Refund, from normalize.Status, answer *store.Answer) error {
	if from.Terminal() && r.Status != from {
		return fmt.Errorf("sqlite: update refund %s: %w", r.ID, store.ErrStateChanged)
	}
	args, err := updateArgs(r, from, answer)
	if err != nil {
		return fmt.Errorf("sqlite: update refund %s: %w", r.ID, err)
	}
	release := counts(from) && !counts(r.Status)
	err = s.do(ctx, func(tx *wtx) error {
		res, err := tx.st.refundUpdate.ExecContext(bg, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var status string
			err := tx.st.refundStatus.QueryRowContext(bg, r.ID).Scan(&status)
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			if err != nil {
				return err
			}
			return store.ErrStateChanged
		}
		if !release {
			return nil
		}
		_, err = tx.st.unreserve.ExecContext(bg, r.Amount, r.Provider, r.PaymentID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: update refund %s: %w", r.ID, err)
	}
	return nil
}

// Discard deletes a refund and its idempotency record, and gives its amount
// back to the payment's ledger.
func (s *Store) Discard(ctx context.Context, refundID string) error {
	err := s.do(ctx, func(tx *wtx) error {
		var (
			provider, payment, status string
			amount                    int64
		)
		err := tx.st.refundDelete.QueryRowContext(bg, refundID).Scan(&provider, &payment, &amount, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if counts(normalize.Status(status)) {
			if _, err := tx.st.unreserve.ExecContext(bg, amount, provider, payment); err != nil {
				return err
			}
		}
		_, err = tx.st.keyDeleteByRefund.ExecContext(bg, refundID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: discard refund %s: %w", refundID, err)
	}
	return nil
}

// PutPayment keeps p unless facts of the payment are already kept.
func (s *Store) PutPayment(ctx context.Context, p *store.Payment) error {
	args := paymentArgs(p)
	err := s.do(ctx, func(tx *wtx) error {
		_, err := tx.st.paymentInsert.ExecContext(bg, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put payment %s/%s: %w", p.Provider, p.PaymentID, err)
	}
	return nil
}

// MarkEvent records a provider's webhook event id; seen reports whether it
// was recorded before.
func (s *Store) MarkEvent(ctx context.Context, provider, eventID string, at time.Time) (bool, error) {
	var seen bool
	err := s.do(ctx, func(tx *wtx) error {
		res, err := tx.st.eventInsert.ExecContext(bg, provider, eventID, micros(at))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		seen = n == 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: mark event %s/%s: %w", provider, eventID, err)
	}
	return seen, nil
}

// PurgeIdempotency deletes idempotency records created before t whose
// refund is final, and returns how many it deleted.
func (s *Store) PurgeIdempotency(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.do(ctx, func(tx *wtx) error {
		if _, err := tx.st.forgetAnswers.ExecContext(bg, micros(before)); err != nil {
			return err
		}
		res, err := tx.st.purge.ExecContext(bg, micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge idempotency: %w", err)
	}
	return n, nil
}
