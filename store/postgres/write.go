package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

// inTx runs fn in a transaction and commits when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // A no-op after Commit.
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// errBound ends Create's transaction when the key was already bound.
var errBound = errors.New("postgres: key already bound")

// Create binds p.Key and inserts p.Refund after checking the payment's
// ledger row, which it holds locked until the commit: concurrent creates
// of one payment take turns, others run side by side.
func (s *Store) Create(ctx context.Context, p store.CreateParams) (*store.IdempotencyRecord, error) {
	r := p.Refund
	if r == nil {
		return nil, errors.New("postgres: create refund: nil refund")
	}
	args, err := refundArgs(r)
	if err != nil {
		return nil, fmt.Errorf("postgres: create refund %s: %w", r.ID, err)
	}
	var (
		existing *store.IdempotencyRecord
		amount   int64
	)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		limit := p.Limit
		if p.Payment != nil {
			// Kept unless facts are kept already; a refusal below rolls it
			// back with the rest. After a conflict the read sees the
			// facts the other transaction committed.
			if _, err := tx.Exec(ctx, putPaymentSQL, paymentArgs(p.Payment)...); err != nil {
				return fmt.Errorf("insert payment: %w", err)
			}
			const q = `SELECT captured - external_refunded FROM payments WHERE provider = $1 AND payment_id = $2`
			if err := tx.QueryRow(ctx, q, p.Payment.Provider, p.Payment.PaymentID).Scan(&limit); err != nil {
				return fmt.Errorf("payment: %w", err)
			}
		}
		// Creates the row if need be, and locks it either way.
		const lock = `INSERT INTO ledger (provider, payment_id, reserved) VALUES ($1, $2, 0)
			ON CONFLICT (provider, payment_id) DO UPDATE SET reserved = ledger.reserved
			RETURNING reserved`
		var reserved int64
		if err := tx.QueryRow(ctx, lock, r.Provider, r.PaymentID).Scan(&reserved); err != nil {
			return fmt.Errorf("lock ledger: %w", err)
		}
		const bind = `INSERT INTO idempotency_keys (` + keyCols + `)
			VALUES ($1, $2, $3, $4, NULL, NULL, $5) ON CONFLICT DO NOTHING`
		tag, err := tx.Exec(ctx, bind, p.Key.MerchantID, p.Key.Key, p.Key.RequestHash, r.ID, p.Key.CreatedAt)
		if err != nil {
			return fmt.Errorf("bind idempotency key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			const get = `SELECT ` + keyCols + ` FROM idempotency_keys WHERE merchant_id = $1 AND key = $2`
			existing, err = scanKey(tx.QueryRow(ctx, get, p.Key.MerchantID, p.Key.Key))
			if err != nil {
				return fmt.Errorf("idempotency key: %w", err)
			}
			return errBound
		}
		amount, err = store.Reserve(reserved, limit, r.Amount, p.TakeRest)
		if err != nil {
			return err
		}
		args[6] = amount
		if _, err := tx.Exec(ctx, insertRefundSQL, args...); err != nil {
			return fmt.Errorf("insert refund: %w", err)
		}
		if counts(r.Status) {
			if err := adjustLedger(ctx, tx, r.Provider, r.PaymentID, amount); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errBound) {
		return existing, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: create refund %s: %w", r.ID, err)
	}
	r.Amount = amount
	return nil, nil
}

// counts reports whether a refund in state st holds part of its payment's
// refundable amount.
func counts(st normalize.Status) bool {
	return st == normalize.StatusSucceeded || st == normalize.StatusPending || st == normalize.StatusRequiresApproval
}

// adjustLedger adds delta to a payment's reserved total.
func adjustLedger(ctx context.Context, tx pgx.Tx, provider, paymentID string, delta int64) error {
	const adjust = `UPDATE ledger SET reserved = reserved + $3 WHERE provider = $1 AND payment_id = $2`
	if _, err := tx.Exec(ctx, adjust, provider, paymentID, delta); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// UpdateRefund stores r's state if its row is still in state from. A refund
// in a terminal state keeps that state: from terminal and r.Status different
// is ErrStateChanged. The columns id, merchant_id, provider, provider_type,
// payment_id and created_at never change.
func (s *Store) UpdateRefund(ctx context.Context, r *normalize.Refund, from normalize.Status, answer *store.Answer) error {
	if from.Terminal() && r.Status != from {
		return fmt.Errorf("postgres: update refund %s: %w", r.ID, store.ErrStateChanged)
	}
	args, err := updateArgs(r, from)
	if err != nil {
		return fmt.Errorf("postgres: update refund %s: %w", r.ID, err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, updateRefundSQL, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var status string
			err := tx.QueryRow(ctx, `SELECT status FROM refunds WHERE id = $1`, r.ID).Scan(&status)
			if err != nil {
				return notFound(err)
			}
			return store.ErrStateChanged
		}
		if counts(from) && !counts(r.Status) {
			// A failed or canceled refund gives its amount back.
			if err := adjustLedger(ctx, tx, r.Provider, r.PaymentID, -r.Amount); err != nil {
				return err
			}
		}
		if answer == nil {
			return nil
		}
		body := answer.Body
		if body == nil {
			body = []byte{}
		}
		const set = `UPDATE idempotency_keys SET answer_status = $1, answer_body = $2
			WHERE refund_id = $3 AND answer_status IS NULL`
		_, err = tx.Exec(ctx, set, answer.Status, body, r.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: update refund %s: %w", r.ID, err)
	}
	return nil
}

// Discard deletes a refund and its idempotency record, and gives its amount
// back to the payment's ledger.
func (s *Store) Discard(ctx context.Context, refundID string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var (
			provider, payment, status string
			amount                    int64
		)
		const del = `DELETE FROM refunds WHERE id = $1 RETURNING provider, payment_id, amount, status`
		if err := tx.QueryRow(ctx, del, refundID).Scan(&provider, &payment, &amount, &status); err != nil {
			return notFound(err)
		}
		if counts(normalize.Status(status)) {
			if err := adjustLedger(ctx, tx, provider, payment, -amount); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE refund_id = $1`, refundID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: discard refund %s: %w", refundID, err)
	}
	return nil
}

// PutPayment keeps p unless facts of the payment are already kept.
func (s *Store) PutPayment(ctx context.Context, p *store.Payment) error {
	if _, err := s.pool.Exec(ctx, putPaymentSQL, paymentArgs(p)...); err != nil {
		return fmt.Errorf("postgres: put payment %s/%s: %w", p.Provider, p.PaymentID, err)
	}
	return nil
}

// MarkEvent records a provider's webhook event id; seen reports whether it
// was recorded before.
func (s *Store) MarkEvent(ctx context.Context, provider, eventID string, at time.Time) (bool, error) {
	const mark = `INSERT INTO webhook_events (provider, event_id, seen_at)
		VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	tag, err := s.pool.Exec(ctx, mark, provider, eventID, at)
	if err != nil {
		return false, fmt.Errorf("postgres: mark event %s/%s: %w", provider, eventID, err)
	}
	return tag.RowsAffected() == 0, nil
}

// PurgeIdempotency deletes idempotency records created before t whose
// refund is final, and returns how many it deleted.
func (s *Store) PurgeIdempotency(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys k WHERE k.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.id = k.refund_id
			AND r.status IN ('pending', 'requires_approval'))`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge idempotency: %w", err)
	}
	return tag.RowsAffected(), nil
}
