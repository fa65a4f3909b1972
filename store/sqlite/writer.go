package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"

	"github.com/refundgate/refundgate/store"
)

// op is one queued write operation. run executes it inside the writer's
// transaction; it must only use tx and must do its checks before its first
// write, returning a plain error (no write done) when a check fails.
type op struct {
	ctx  context.Context
	run  func(tx *wtx) error
	err  error
	done chan struct{}
}

// wtx is the writer's open transaction.
type wtx struct {
	st   *writeStmts
	conn *sql.Conn
}

// bg is the context of the writer's own statements: one caller's
// cancellation must not interrupt the connection the others share.
var bg = context.Background()

// do queues run and waits for its result, which is only given once the
// transaction holding it committed (or failed). A caller whose ctx ends
// before its op is queued gets ctx.Err(); once queued, it waits for the
// commit, so the answer always says what is on disk.
func (s *Store) do(ctx context.Context, run func(tx *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{ctx: ctx, run: run, done: make(chan struct{})}
	select {
	case s.ops <- o:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-o.done
	return o.err
}

// writeLoop owns the write connection: it takes the first queued op, every
// op queued behind it up to maxBatch, and commits them together.
func (s *Store) writeLoop() {
	defer close(s.done)
	batch := make([]*op, 0, s.maxBatch)
	for {
		select {
		case <-s.closing:
			return
		case o := <-s.ops:
			batch = append(batch[:0], o)
		}
		// Let callers woken by the last commit queue up behind this op.
		runtime.Gosched()
	fill:
		for len(batch) < s.maxBatch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		s.commit(batch)
		for i, o := range batch {
			close(o.done)
			batch[i] = nil
		}
	}
}

// commit runs batch in one IMMEDIATE transaction. Each op runs under its own
// savepoint so a failing op leaves the others' writes in place; a lone op
// that fails rolls the transaction back instead.
func (s *Store) commit(batch []*op) {
	st := s.w
	tx := &wtx{st: st, conn: s.wconn}
	if _, err := st.begin.ExecContext(bg); err != nil {
		failAll(batch, fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	if len(batch) == 1 {
		o := batch[0]
		if o.err = o.ctx.Err(); o.err == nil {
			o.err = o.run(tx)
		}
		if o.err != nil {
			if _, err := st.rollback.ExecContext(bg); err != nil {
				o.err = errors.Join(o.err, fmt.Errorf("sqlite: rollback: %w", err))
			}
			return
		}
		s.finish(batch)
		return
	}
	// Optimistically, without savepoints: an op that fails its own check
	// has written nothing, so the others' writes stand. Only a real SQL
	// error part-way through an op makes the batch run again, each op under
	// its own savepoint.
	clean := true
	for _, o := range batch {
		if o.err = o.ctx.Err(); o.err != nil {
			continue
		}
		if o.err = o.run(tx); o.err != nil && !checkFailed(o.err) {
			clean = false
			break
		}
	}
	if clean {
		s.finish(batch)
		return
	}
	if _, err := st.rollback.ExecContext(bg); err != nil {
		failAll(batch, fmt.Errorf("sqlite: rollback: %w", err))
		return
	}
	if _, err := st.begin.ExecContext(bg); err != nil {
		failAll(batch, fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	s.withSavepoints(tx, batch)
}

// checkFailed reports whether err is an op refusing on its own check,
// before any write.
func checkFailed(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrStateChanged) ||
		errors.Is(err, store.ErrExceedsRefundable) || errors.Is(err, store.ErrFullyRefunded)
}

// withSavepoints runs each op of batch under its own savepoint, so one
// that fails leaves the others' writes in place, and commits.
func (s *Store) withSavepoints(tx *wtx, batch []*op) {
	st := s.w
	for _, o := range batch {
		if o.err = o.ctx.Err(); o.err != nil {
			continue
		}
		if _, err := st.savepoint.ExecContext(bg); err != nil {
			s.abort(batch, fmt.Errorf("sqlite: savepoint: %w", err))
			return
		}
		o.err = o.run(tx)
		if o.err != nil {
			if _, err := st.rollbackTo.ExecContext(bg); err != nil {
				s.abort(batch, fmt.Errorf("sqlite: rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := st.release.ExecContext(bg); err != nil {
			s.abort(batch, fmt.Errorf("sqlite: release savepoint: %w", err))
			return
		}
	}
	s.finish(batch)
}

// finish commits; if COMMIT fails nothing of the batch is kept and every op
// that had succeeded gets the error.
func (s *Store) finish(batch []*op) {
	if _, err := s.w.commit.ExecContext(bg); err != nil {
		_, _ = s.w.rollback.ExecContext(bg)
		err = fmt.Errorf("sqlite: commit: %w", err)
		for _, o := range batch {
			if o.err == nil {
				o.err = err
			}
		}
	}
}

// abort rolls the whole batch back after the transaction itself broke.
func (s *Store) abort(batch []*op, err error) {
	if _, rerr := s.w.rollback.ExecContext(bg); rerr != nil {
		err = errors.Join(err, fmt.Errorf("sqlite: rollback: %w", rerr))
	}
	failAll(batch, err)
}

func failAll(batch []*op, err error) {
	for _, o := range batch {
		o.err = err
	}
}

// writeStmts are the writer's statements, prepared on its connection.
type writeStmts struct {
	begin, commit, rollback           *sql.Stmt
	savepoint, release, rollbackTo    *sql.Stmt
	keyGet, keyInsert, answerSet      *sql.Stmt
	totals                            *sql.Stmt
	refundInsert, refundUpdate        *sql.Stmt
	refundStatus, refundDelete        *sql.Stmt
	keyDeleteByRefund                 *sql.Stmt
	paymentInsert, eventInsert, purge *sql.Stmt
	all                               []*sql.Stmt
}

func prepareWrite(ctx context.Context, c *sql.Conn) (*writeStmts, error) {
	st := &writeStmts{}
	list := []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.begin, "BEGIN IMMEDIATE"},
		{&st.commit, "COMMIT"},
		{&st.rollback, "ROLLBACK"},
		{&st.savepoint, "SAVEPOINT op"},
		{&st.release, "RELEASE op"},
		{&st.rollbackTo, "ROLLBACK TO op"},
		{&st.keyGet, `SELECT ` + keyCols + ` FROM idempotency_keys WHERE merchant_id = ? AND key = ?`},
		{&st.keyInsert, `INSERT INTO idempotency_keys (` + keyCols + `) VALUES (?, ?, ?, ?, NULL, NULL, ?)`},
		{&st.answerSet, `UPDATE idempotency_keys SET answer_status = ?, answer_body = ?
			WHERE refund_id = ? AND answer_status IS NULL`},
		{&st.totals, totalsSQL},
		{&st.refundInsert, `INSERT INTO refunds (` + refundCols + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.refundUpdate, updateRefundSQL},
		{&st.refundStatus, `SELECT status FROM refunds WHERE id = ?`},
		{&st.refundDelete, `DELETE FROM refunds WHERE id = ?`},
		{&st.keyDeleteByRefund, `DELETE FROM idempotency_keys WHERE refund_id = ?`},
		{&st.paymentInsert, `INSERT INTO payments (` + paymentCols + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.eventInsert, `INSERT INTO webhook_events (provider, event_id, seen_at)
			VALUES (?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.purge, `DELETE FROM idempotency_keys WHERE created_at < ?`},
	}
	for _, p := range list {
		stmt, err := c.PrepareContext(ctx, p.sql)
		if err != nil {
			_ = st.close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", p.sql, err)
		}
		*p.dst = stmt
		st.all = append(st.all, stmt)
	}
	return st, nil
}

func (st *writeStmts) close() error {
	var errs []error
	for _, s := range st.all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
