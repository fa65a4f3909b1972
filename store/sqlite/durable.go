package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// How an acknowledged write reaches the disk.
//
// The writer connection runs with synchronous=NORMAL and no automatic
// checkpoints, so COMMIT only appends the batch's frames to the WAL file
// (page cache, no fsync) and the writer hands the batch on. The syncer
// goroutine makes each committed batch durable with one fdatasync of the
// WAL file, and only then wakes its callers: an answer still means the
// write is on disk. While the syncer works, the ops that arrive wait in the
// writer's queue; once the syncer is free the writer runs them all in one
// transaction, commits it and hands it over, so the slower the disk, the
// larger the batches (the flush stage of a group commit, as PostgreSQL's
// WAL writer and MySQL's binlog group commit do it). One sync token passes
// between them (syncReady): only its holder opens a batch, commits and
// syncs. When a write finds the writer idle and the token free, its caller
// takes both and does the work of the two goroutines itself, for a batch of
// one (see inline). SQLite's own guarantee for WAL mode with
// synchronous=NORMAL is that the database stays consistent after a power
// loss and only the last commits may roll back; the explicit fdatasync
// makes those the unacknowledged ones.
//
// Reads keep the same promise. A read connection can see a committed batch
// before its fdatasync has finished, so every read waits, before it answers,
// until all that was committed when the read ended is synced (see settled):
// as with synchronous=FULL, nothing that a power loss could take back is
// ever shown to a caller.
//
// A failed fdatasync is not retried: Linux may already have dropped the
// dirty pages, so a later success would prove nothing. The store fails
// every write and Ping from then on (PostgreSQL does the same and stops),
// and readiness reports it.
//
// Checkpoints (copying WAL frames into the database file, with its own
// fsyncs) run in a goroutine of their own on a separate connection, so the
// writer does not wait for them; it only rewinds the WAL once it has grown
// past 64 MiB and the checkpointer has caught up (see restartWAL).

// errBroken wraps the sticky error of a store whose WAL could not be synced.
var errBroken = errors.New("sqlite: store unusable after a failed fsync of the WAL; restart the gateway")

// synced is a committed batch waiting for the fdatasync that makes it
// durable; seq numbers the commits.
type synced struct {
	batch []*op
	seq   int64
}

// durability tracks which commits are synced, for reads that must not
// return what a power loss could take back.
type durability struct {
	committed, synced atomic.Int64
	mu                sync.Mutex
	// waits holds, by commit number, a channel closed once that commit is
	// synced: each read is woken once, by the sync it waits for.
	waits map[int64]chan struct{}
}

// settled waits until every commit made before it was called is synced, or
// the store broke, or ctx ended.
func (s *Store) settled(ctx context.Context) error {
	want := s.dur.committed.Load()
	if s.dur.synced.Load() >= want {
		return nil
	}
	s.dur.mu.Lock()
	if s.dur.synced.Load() >= want {
		s.dur.mu.Unlock()
		return nil
	}
	wake := s.dur.waits[want]
	if wake == nil {
		wake = make(chan struct{})
		s.dur.waits[want] = wake
	}
	s.dur.mu.Unlock()
	// A store that broke before this wait was registered wakes no one.
	if err := s.broken(); err != nil {
		return err
	}
	select {
	case <-wake:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.syncDone:
	}
	if err := s.broken(); err != nil {
		return err
	}
	if s.dur.synced.Load() < want {
		return ErrClosed
	}
	return nil
}

// markSynced records that commits up to seq are durable and wakes the reads
// waiting for them; upTo < 0 wakes every read (the store broke).
func (s *Store) markSynced(upTo int64) {
	if upTo >= 0 {
		s.dur.synced.Store(upTo)
	}
	s.dur.mu.Lock()
	for seq, wake := range s.dur.waits {
		if upTo < 0 || seq <= upTo {
			close(wake)
			delete(s.dur.waits, seq)
		}
	}
	s.dur.mu.Unlock()
}

// openWAL opens the WAL file of the writer's database for fdatasync, or
// returns nil when the database has no file (an in-memory database).
func openWAL(ctx context.Context, c *sql.Conn) (*os.File, error) {
	rows, err := c.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return nil, fmt.Errorf("sqlite: database_list: %w", err)
	}
	defer rows.Close()
	var file string
	for rows.Next() {
		var seq int
		var name, f string
		if err := rows.Scan(&seq, &name, &f); err != nil {
			return nil, fmt.Errorf("sqlite: database_list: %w", err)
		}
		if name == "main" {
			file = f
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: database_list: %w", err)
	}
	if file == "" {
		return nil, nil
	}
	f, err := os.OpenFile(file+"-wal", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open the WAL for syncing: %w", err)
	}
	return f, nil
}

// syncLoop makes committed batches durable and wakes their callers. It
// tells the writer when it is free (syncReady), and the writer hands it
// one batch at a time; so the writer's next commit waits for this fsync,
// and all that arrived meanwhile shares the next one.
func (s *Store) syncLoop() {
	defer close(s.syncDone)
	for b := range s.toSync {
		s.syncBatch(b)
		s.syncReady <- struct{}{}
	}
}

// syncBatch makes one committed batch durable with an fdatasync of the WAL
// and wakes its callers. Only the holder of the sync token calls it: the
// syncer, or a caller writing inline.
func (s *Store) syncBatch(b synced) {
	err := s.broken()
	if err == nil {
		start := time.Now()
		err = s.syncWAL()
		s.walSync.Observe(time.Since(start).Seconds())
		if err != nil {
			err = fmt.Errorf("%w: %w", errBroken, err)
			s.brokenErr.CompareAndSwap(nil, &err)
		}
		s.stats.syncs.Add(1)
	}
	switch {
	case err != nil:
		s.markSynced(-1)
	case b.seq > 0:
		s.markSynced(b.seq)
	}
	for _, o := range b.batch {
		if err != nil && o.err == nil {
			o.err = err
		}
		close(o.done)
	}
}

// broken returns the sticky error of a failed WAL sync, or nil.
func (s *Store) broken() error {
	if p := s.brokenErr.Load(); p != nil {
		return *p
	}
	return nil
}

// checkpointLoop copies the WAL into the database file in the background,
// at most every checkpointEvery, whenever the writer committed something,
// and tells the writer when to restart the WAL (see restartWAL). Once
// the WAL is past the restart threshold it runs again after every commit
// instead, until a pass had little left to copy; then it tells the writer
// that a restart now is cheap.
func (s *Store) checkpointLoop() {
	defer close(s.ckptDone)
	var lastFrames, lastCopied int64
	for {
		select {
		case <-s.ckptStop:
			return
		case <-s.ckptKick:
		}
		// PASSIVE never waits for readers or the writer; what it cannot
		// copy now it copies next time.
		var busy, frames, copied int64
		s.ckptMu.Lock()
		err := s.cdb.QueryRowContext(bg, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
		s.ckptMu.Unlock()
		s.stats.checkpoints.Add(1)
		if err != nil {
			s.stats.checkpointFailures.Add(1)
			s.caughtUp.Store(false)
		} else {
			// The frames this pass copied; after a restart the WAL's
			// counts start again from zero.
			n := copied
			if frames >= lastFrames && copied >= lastCopied {
				n = copied - lastCopied
			}
			lastFrames, lastCopied = frames, copied
			if frames >= s.restartFrames {
				s.caughtUp.Store(busy == 0 && n <= catchUpFrames)
				// Nothing new to copy means a reader holds the restart
				// back: no hurry then.
				if n > 0 {
					continue
				}
			}
		}
		select {
		case <-s.ckptStop:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// checkpointEvery bounds how often the checkpointer runs under load.
const checkpointEvery = 100 * time.Millisecond

// walRestartFrames is the WAL length (frames; 64 MiB of 4 KiB pages) past
// which the writer restarts the WAL.
const walRestartFrames = 16384

// catchUpFrames is the most frames (2 MiB) a checkpoint pass may have
// copied for the WAL to count as caught up: the frames committed during a
// pass that short are all a restart right after it still has to copy.
const catchUpFrames = 512

// restartWAL runs between two of the writer's transactions once the WAL
// has grown past walRestartFrames. The background checkpoints copy the
// frames, but SQLite can only start the WAL over from its beginning when a
// write transaction begins after everything was copied and no reader still
// uses the old frames; under steady load that moment never comes, the WAL
// grows without end, and every page read searches more of its index. A
// RESTART checkpoint on the writer's own connection copies what is left,
// fsyncs the database file, and makes the next transaction rewind the WAL,
// whose size stays, so later fdatasyncs write no metadata.
//
// The writer must never wait here: every write is queued behind it.
//   - It restarts only once the checkpointer has caught up (see
//     checkpointLoop), so what is left to copy is what was committed during
//     one short pass, not the 100 ms since the last one: on a long soak,
//     restarts that copied that backlog held the writer 20–90 ms, once a
//     second, and set the p99 of every write.
//   - It is skipped while the checkpointer is copying.
//   - It runs without a busy timeout: when a reader still uses old frames
//     it gives up at once, instead of sleeping in SQLite's busy handler for
//     as long as that reader lasts, and is tried again after the next pass.
func (s *Store) restartWAL() {
	if !s.caughtUp.Load() {
		return
	}
	if !s.ckptMu.TryLock() {
		return
	}
	defer s.ckptMu.Unlock()
	s.caughtUp.Store(false)
	start := time.Now()
	defer func() { s.stats.restartNanos.Add(int64(time.Since(start))) }()
	var busy, frames, copied int64
	err := s.busyTimeout("0")
	if err == nil {
		err = s.w.restart.QueryRowContext(bg).Scan(&busy, &frames, &copied)
		err = errors.Join(err, s.busyTimeout(busyTimeoutMS))
	}
	if err != nil {
		s.stats.checkpointFailures.Add(1)
		return
	}
	if busy == 0 {
		s.stats.restarts.Add(1)
	}
}

// busyTimeout sets the writer's busy timeout in milliseconds. The pragma
// acts when it is prepared, so it is never a prepared statement.
func (s *Store) busyTimeout(ms string) error {
	_, err := s.wconn.ExecContext(bg, "PRAGMA busy_timeout = "+ms)
	return err
}

// kickCheckpoint tells the checkpointer there is something to copy.
func (s *Store) kickCheckpoint() {
	select {
	case s.ckptKick <- struct{}{}:
	default:
	}
}
