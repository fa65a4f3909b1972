package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

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
	// taken (by the writer, or by the queue's close to fail it) and
	// abandoned (by its caller, whose ctx ended first) are guarded by the
	// queue's mutex: only one happens.
	taken, abandoned bool
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
// transaction holding it committed and the WAL was synced (or it failed).
// A caller whose ctx ends before the writer takes its op gets ctx.Err()
// and the op is never run; once taken, the caller waits for the sync, so
// the answer always says what is on disk.
func (s *Store) do(ctx context.Context, run func(tx *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	o := &op{ctx: ctx, run: run, done: make(chan struct{})}
	if !s.inline(o) {
		if !s.queue.push(o) {
			return ErrClosed
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
		select {
		case <-o.done:
		case <-ctx.Done():
			if s.queue.abandon(o) {
				return ctx.Err()
			}
			<-o.done
		}
	}
	s.writeWait.Observe(time.Since(start).Seconds())
	return o.err
}

// opQueue is the writes waiting for the writer. Queuing never blocks: a
// caller queues its op and waits for it, and the writer takes all that
// waits at once.
type opQueue struct {
	mu     sync.Mutex
	ops    []*op
	closed bool
	// nAbandoned counts the abandoned ops still in ops: once they are
	// half of it, abandon drops them, so that callers giving up on a stuck
	// disk leave nothing behind.
	nAbandoned int
}

// push queues o, or reports false once the queue is closed.
func (q *opQueue) push(o *op) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.ops = append(q.ops, o)
	return true
}

// take removes and returns up to n of the oldest ops still wanted.
func (q *opQueue) take(n int) []*op {
	q.mu.Lock()
	defer q.mu.Unlock()
	var batch []*op
	i := 0
	for ; i < len(q.ops) && len(batch) < n; i++ {
		if o := q.ops[i]; o.abandoned {
			q.nAbandoned--
		} else {
			o.taken = true
			batch = append(batch, o)
		}
	}
	k := copy(q.ops, q.ops[i:])
	clear(q.ops[k:])
	q.ops = q.ops[:k]
	return batch
}

// abandon withdraws o, whose caller stopped waiting, unless the writer has
// taken it already; it reports whether o will never run.
func (q *opQueue) abandon(o *op) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if o.taken {
		return false
	}
	o.abandoned = true
	q.nAbandoned++
	if 2*q.nAbandoned > len(q.ops) {
		kept := q.ops[:0]
		for _, o := range q.ops {
			if !o.abandoned {
				kept = append(kept, o)
			}
		}
		clear(q.ops[len(kept):])
		q.ops, q.nAbandoned = kept, 0
	}
	return true
}

// close refuses every later push and fails what is still queued with err.
func (q *opQueue) close(err error) {
	q.mu.Lock()
	q.closed = true
	var left []*op
	for _, o := range q.ops {
		if !o.abandoned {
			o.taken = true
			left = append(left, o)
		}
	}
	q.ops, q.nAbandoned = nil, 0
	q.mu.Unlock()
	for _, o := range left {
		o.err = err
		close(o.done)
	}
}

// inline runs o on the caller's own goroutine, as a batch of one, when the
// write path is idle: no batch open (wmu is free) and no sync running (the
// sync token is there to take). It begins, runs, commits and syncs as the
// writer and the syncer would, and reports false, having done nothing,
// when the path is busy or the store is closing. Under load the path is
// rarely idle and ops queue for the writer as before, to share its
// commits; at light load every write would otherwise wake the writer, then
// the syncer, then its caller, each on a CPU of its own, for a batch of
// one.
func (s *Store) inline(o *op) bool {
	if !s.wmu.TryLock() {
		return false
	}
	select {
	case <-s.syncReady:
	default:
		s.wmu.Unlock()
		return false
	}
	select {
	case <-s.closing:
		s.syncReady <- struct{}{}
		s.wmu.Unlock()
		return false
	default:
	}
	defer crashOnPanic()
	s.stats.inline.Add(1)
	b := s.commit(s.begin(o))
	s.betweenTransactions()
	// The writer waits for the token before it opens the next batch.
	s.wmu.Unlock()
	s.syncBatch(b)
	s.syncReady <- struct{}{}
	return true
}

// crashOnPanic, deferred, turns a panic into one that nothing can recover.
// A write that panics inline holds the write connection, perhaps inside a
// transaction, and the sync token; the API recovers its handlers' panics,
// and the store would then wait for them forever. So such a panic ends the
// process, as it always did on the writer's goroutine.
func crashOnPanic() {
	if r := recover(); r != nil {
		msg := fmt.Sprintf("sqlite: panic in an inline write: %v\n\n%s", r, debug.Stack())
		go panic(msg)
		select {}
	}
}

// writeLoop owns the write connection. It waits for queued ops and for
// the sync token, then runs every op that is waiting (up to maxBatch) in
// one transaction, commits it and hands the batch to the syncer. The ops
// that arrive while the syncer makes a batch durable wait in the queue, and
// the writer runs them all together once the syncer is free: the slower the
// disk, the more ops share each commit and each fsync. The writer wakes
// once a batch, not once an op, and a caller queues without waiting for
// it, which saves 5-11% of the gateway's CPU at half load (BENCHMARKS.md,
// 2026-12-04, evening); the price is that a batch runs after the previous
// fsync instead of during it.
func (s *Store) writeLoop() {
	defer close(s.done)
	defer close(s.toSync)
	defer s.queue.close(ErrClosed)
	for {
		select {
		case <-s.closing:
			return
		case <-s.wake:
		}
		for {
			select {
			case <-s.closing:
				return
			case <-s.syncReady:
			}
			batch := s.queue.take(s.maxBatch)
			if len(batch) == 0 {
				// A caller writing inline got there first, the wake was
				// for ops already taken, or their callers all left.
				s.syncReady <- struct{}{}
				break
			}
			s.wmu.Lock()
			t := s.begin(batch[0])
			for _, o := range batch[1:] {
				t.run(o)
			}
			s.commitTo(t)
			s.betweenTransactions()
			s.wmu.Unlock()
		}
	}
}

// betweenTransactions is the upkeep the holder of wmu does after each
// commit, on either path: rewind the WAL when it is due, and give back the
// writer's idle page cache.
func (s *Store) betweenTransactions() {
	s.restartWAL()
	s.shrinkCache()
}

// shrinkEvery is how often the writer frees the unpinned pages of its page
// cache.
const shrinkEvery = 30 * time.Second

// shrinkCache frees, at most every shrinkEvery and between two
// transactions, the pages the writer's cache holds but no statement uses
// (PRAGMA shrink_memory). modernc's SQLite keeps one page-cache group for
// the whole process, and while the read pool runs now and then (the
// reconciler's query once a second is enough) the writer's cache grows past
// its cache_size: by SQLite's own counters, 2,470 to 3,703 KiB in 3
// minutes at 1,600 refunds a second (cache_size 2,000 KiB), and a 20-minute
// soak's memory outside Go grew the whole time. Shrinking keeps it within
// cache_size plus what 30 s adds; the cost is re-reading a few hundred
// pages from the OS's page cache afterwards.
func (s *Store) shrinkCache() {
	if s.shrinkEvery <= 0 || time.Since(s.lastShrink) < s.shrinkEvery {
		return
	}
	s.lastShrink = time.Now()
	// A failure only leaves the cache as it was.
	_, _ = s.wconn.ExecContext(bg, "PRAGMA shrink_memory")
}

// batchTx is the writer's open transaction and the ops run in it.
type batchTx struct {
	s     *Store
	tx    *wtx
	batch []*op
	// err, once set, fails every op of the batch: BEGIN or the
	// transaction itself broke.
	err error
	// savepoints is set once an op hit a real SQL error: the batch was
	// rolled back and runs again, each op under its own savepoint.
	savepoints bool
}

// begin opens a transaction and runs first in it.
func (s *Store) begin(first *op) *batchTx {
	t := &batchTx{s: s, tx: &wtx{st: s.w, conn: s.wconn}, batch: make([]*op, 0, 16)}
	if err := s.broken(); err != nil {
		t.err = err
	} else if _, err := s.w.begin.ExecContext(bg); err != nil {
		t.err = fmt.Errorf("sqlite: begin: %w", err)
	}
	t.run(first)
	return t
}

// run runs o in the open transaction. Optimistically without a savepoint:
// an op that fails its own check has written nothing, so the others'
// writes stand. Only a real SQL error part-way through an op rolls the
// batch back and runs it again with a savepoint per op.
func (t *batchTx) run(o *op) {
	t.batch = append(t.batch, o)
	if t.err != nil {
		o.err = t.err
		return
	}
	if t.savepoints {
		t.runSaved(o)
		return
	}
	if o.err = o.ctx.Err(); o.err != nil {
		return
	}
	if o.err = o.run(t.tx); o.err == nil || checkFailed(o.err) {
		return
	}
	st := t.s.w
	if _, err := st.rollback.ExecContext(bg); err != nil {
		t.fail(fmt.Errorf("sqlite: rollback: %w", err))
		return
	}
	if _, err := st.begin.ExecContext(bg); err != nil {
		t.fail(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	t.savepoints = true
	for _, o := range t.batch {
		t.runSaved(o)
		if t.err != nil {
			return
		}
	}
}

// runSaved runs o under its own savepoint, so that if it fails the
// others' writes stay in place.
func (t *batchTx) runSaved(o *op) {
	st := t.s.w
	if o.err = o.ctx.Err(); o.err != nil {
		return
	}
	if _, err := st.savepoint.ExecContext(bg); err != nil {
		t.abort(fmt.Errorf("sqlite: savepoint: %w", err))
		return
	}
	if o.err = o.run(t.tx); o.err != nil {
		if _, err := st.rollbackTo.ExecContext(bg); err != nil {
			t.abort(fmt.Errorf("sqlite: rollback to savepoint: %w", err))
			return
		}
	}
	if _, err := st.release.ExecContext(bg); err != nil {
		t.abort(fmt.Errorf("sqlite: release savepoint: %w", err))
	}
}

// abort rolls the transaction back after it broke and fails the batch.
func (t *batchTx) abort(err error) {
	if _, rerr := t.s.w.rollback.ExecContext(bg); rerr != nil {
		err = errors.Join(err, fmt.Errorf("sqlite: rollback: %w", rerr))
	}
	t.fail(err)
}

// fail fails every op of the batch, and those still to come, with err.
func (t *batchTx) fail(err error) {
	t.err = err
	for _, o := range t.batch {
		o.err = err
	}
}

// commitTo commits t and hands its batch to the syncer, which is free.
func (s *Store) commitTo(t *batchTx) { s.toSync <- s.commit(t) }

// commit commits t and returns its batch, to be synced. If COMMIT fails
// nothing of the batch is kept and every op that had succeeded gets the
// error.
func (s *Store) commit(t *batchTx) synced {
	var seq int64
	if t.err == nil {
		// Numbered before COMMIT: a read that can see this batch must
		// find its number (see settled).
		seq = s.dur.committed.Add(1)
		if _, err := s.w.commit.ExecContext(bg); err != nil {
			_, _ = s.w.rollback.ExecContext(bg)
			err = fmt.Errorf("sqlite: commit: %w", err)
			for _, o := range t.batch {
				if o.err == nil {
					o.err = err
				}
			}
		}
		s.stats.ops.Add(int64(len(t.batch)))
		s.stats.commits.Add(1)
		s.kickCheckpoint()
	}
	return synced{batch: t.batch, seq: seq}
}

// checkFailed reports whether err is an op refusing on its own check,
// before any write.
func checkFailed(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrStateChanged) ||
		errors.Is(err, store.ErrExceedsRefundable) || errors.Is(err, store.ErrFullyRefunded)
}

// writeStmts are the writer's statements, prepared on its connection.
type writeStmts struct {
	begin, commit, rollback        *sql.Stmt
	savepoint, release, rollbackTo *sql.Stmt
	keyGet, keyInsert              *sql.Stmt
	reserved, reserve, unreserve   *sql.Stmt
	refundInsert, refundUpdate     *sql.Stmt
	refundStatus, refundDelete     *sql.Stmt
	keyDeleteByRefund              *sql.Stmt
	paymentInsert, paymentLimit    *sql.Stmt
	eventInsert, purge             *sql.Stmt
	forgetAnswers, restart         *sql.Stmt
	all                            []*sql.Stmt
}

func prepareWrite(ctx context.Context, c *sql.Conn) (*writeStmts, error) {
	st := &writeStmts{}
	list := []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.begin, "BEGIN IMMEDIATE"},
		{&st.restart, "PRAGMA wal_checkpoint(RESTART)"},
		{&st.commit, "COMMIT"},
		{&st.rollback, "ROLLBACK"},
		{&st.savepoint, "SAVEPOINT op"},
		{&st.release, "RELEASE op"},
		{&st.rollbackTo, "ROLLBACK TO op"},
		{&st.keyGet, keySQL},
		{&st.keyInsert, `INSERT INTO idempotency_keys (` + keyCols + `) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.reserved, `SELECT reserved FROM ledger WHERE provider = ? AND payment_id = ?`},
		{&st.reserve, `INSERT INTO ledger (provider, payment_id, reserved) VALUES (?, ?, ?)
			ON CONFLICT (provider, payment_id) DO UPDATE SET reserved = reserved + excluded.reserved`},
		{&st.unreserve, `UPDATE ledger SET reserved = reserved - ? WHERE provider = ? AND payment_id = ?`},
		{&st.refundInsert, `INSERT INTO refunds (` + refundCols + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.refundUpdate, updateRefundSQL},
		{&st.refundStatus, `SELECT status FROM refunds WHERE id = ?`},
		{&st.refundDelete, `DELETE FROM refunds WHERE id = ? RETURNING provider, payment_id, amount, status`},
		{&st.keyDeleteByRefund, `DELETE FROM idempotency_keys WHERE refund_id = ?`},
		{&st.paymentInsert, `INSERT INTO payments (` + paymentCols + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.paymentLimit, `SELECT captured - external_refunded FROM payments WHERE provider = ? AND payment_id = ?`},
		{&st.eventInsert, `INSERT INTO webhook_events (provider, event_id, seen_at)
			VALUES (?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.forgetAnswers, `UPDATE refunds SET answer_status = NULL, answer_body = NULL
			WHERE id IN (SELECT refund_id FROM idempotency_keys WHERE created_at < ?)
			AND status NOT IN ('pending', 'requires_approval')`},
		{&st.purge, `DELETE FROM idempotency_keys WHERE created_at < ? AND NOT EXISTS (
			SELECT 1 FROM refunds r WHERE r.id = refund_id AND r.status IN ('pending', 'requires_approval'))`},
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
