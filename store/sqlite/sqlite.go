// Package sqlite implements store.Store on an embedded SQLite file with
// modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode, and a write is on disk when it is
// acknowledged. Writes go through one goroutine that owns the single write
// connection and commits every queued write operation in one transaction
// (group commit): many concurrent callers share one transaction and one
// fdatasync, and each still gets its own result. The fdatasync itself runs
// in a second goroutine, while the next batch gathers in the queue, and
// checkpoints in a third (see durable.go). A write that finds the writer
// and the syncer both idle runs, commits and syncs on its caller's
// goroutine instead. Reads use a separate pool of connections, which WAL
// lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // Registers the "sqlite" driver.

	"github.com/refundgate/refundgate/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrClosed is returned by methods of a closed Store.
var ErrClosed = errors.New("sqlite: store closed")

// Options tune a Store; the zero value is the default.
type Options struct {
	// MaxBatch is the most write operations committed in one transaction;
	// 256 when zero.
	MaxBatch int
	// ReadConns is the size of the read connection pool; 2*GOMAXPROCS, at
	// least 4, when zero.
	ReadConns int
	// WriteWait, when set, observes every write in seconds, from the call
	// until its commit is on disk: what a caller of a write waits for.
	WriteWait Observer
	// WALSync, when set, observes every fdatasync of the WAL in seconds.
	WALSync Observer
}

// Observer takes one measurement; a prometheus.Histogram is one.
type Observer interface{ Observe(float64) }

// Store is a store.Store on an SQLite file. Its methods are safe for
// concurrent use.
type Store struct {
	wdb   *sql.DB
	wconn *sql.Conn
	rdb   *sql.DB
	cdb   *sql.DB // the checkpointer's connection
	w     *writeStmts
	r     *readStmts
	wal   *os.File // nil for a database without a file

	maxBatch int
	// writeWait and walSync are Options' observers, never nil.
	writeWait, walSync Observer
	// queue holds the ops waiting for the writer (see writeLoop); wake
	// tells the writer there is one.
	queue    opQueue
	wake     chan struct{}
	closing  chan struct{}
	done     chan struct{}
	once     sync.Once
	closeErr error

	// wmu is held by whoever uses the write connection: the writer for a
	// batch, or a caller writing inline (see inline).
	wmu    sync.Mutex
	toSync chan synced
	// syncReady holds the one sync token: its holder (the syncer between
	// batches, the writer from taking a batch until it hands it over, or a
	// caller writing inline) is the only one that may commit and sync next.
	syncReady chan struct{}
	syncDone  chan struct{}
	brokenErr atomic.Pointer[error]
	// syncWAL makes the WAL durable; tests replace it.
	syncWAL func() error

	ckptKick chan struct{}
	ckptStop chan struct{}
	ckptDone chan struct{}
	// caughtUp says the last checkpoint pass found the WAL past the
	// restart threshold and left little for a restart to copy.
	caughtUp atomic.Bool
	// ckptMu is held by whichever of the checkpointer and the writer's
	// restart is copying frames, so that they never wait for each other
	// inside SQLite.
	ckptMu        sync.Mutex
	restartFrames int64 // walRestartFrames; tests lower it
	// shrinkEvery is how often the writer gives its idle page cache back
	// (see shrinkCache), lastShrink when it last did; only the holder of
	// wmu touches lastShrink.
	shrinkEvery time.Duration
	lastShrink  time.Time

	stats counters
	dur   durability
}

// counters are the writer's running totals, for Stats.
type counters struct {
	ops, inline, commits, syncs, checkpoints, restarts, checkpointFailures atomic.Int64
	restartNanos                                                           atomic.Int64
}

// Stats are running totals of the store's write path.
type Stats struct {
	// Ops is the number of write operations run, Commits the transactions
	// that held them: Ops/Commits is the mean group-commit batch.
	Ops, Commits int64
	// Inline counts the ops that found the write path idle and were run,
	// committed and synced on their caller's goroutine, each alone.
	Inline int64
	// Syncs counts the fdatasyncs of the WAL; each covers every commit
	// before it.
	Syncs int64
	// Checkpoints counts background checkpoints, Restarts the times the
	// writer started the WAL over from its beginning, CheckpointFailures
	// the checkpoints and restarts that failed (the WAL then grows until
	// one succeeds).
	Checkpoints, Restarts, CheckpointFailures int64
	// RestartTime is the time the writer spent restarting the WAL, during
	// which no write could run.
	RestartTime time.Duration
	// WALBytes is the size of the WAL file now.
	WALBytes int64
}

// Stats returns the running totals of the write path.
func (s *Store) Stats() Stats {
	st := Stats{Ops: s.stats.ops.Load(), Inline: s.stats.inline.Load(), Commits: s.stats.commits.Load(),
		Syncs: s.stats.syncs.Load(), Checkpoints: s.stats.checkpoints.Load(), Restarts: s.stats.restarts.Load(),
		CheckpointFailures: s.stats.checkpointFailures.Load(), RestartTime: time.Duration(s.stats.restartNanos.Load())}
	if s.wal != nil {
		if fi, err := s.wal.Stat(); err == nil {
			st.WALBytes = fi.Size()
		}
	}
	return st
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) Observe(float64) {}

func orNop(o Observer) Observer {
	if o == nil {
		return nopObserver{}
	}
	return o
}

// Open opens (creating it if needed) the SQLite database at dsn, a file path
// or a "file:" URI, and applies the migrations it does not have yet.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenOptions(ctx, dsn, Options{})
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, dsn string, o Options) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("sqlite: open: empty dsn")
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.ReadConns <= 0 {
		o.ReadConns = max(4, 2*runtime.GOMAXPROCS(0))
	}
	s := &Store{
		maxBatch:  o.MaxBatch,
		writeWait: orNop(o.WriteWait),
		walSync:   orNop(o.WALSync),
		wake:      make(chan struct{}, 1),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		toSync:    make(chan synced, 1),
		syncReady: make(chan struct{}, 1),
		syncDone:  make(chan struct{}),
		ckptKick:  make(chan struct{}, 1),
		ckptStop:  make(chan struct{}),
		ckptDone:  make(chan struct{}),
	}
	s.dur.waits = map[int64]chan struct{}{}
	s.restartFrames = walRestartFrames
	s.shrinkEvery, s.lastShrink = shrinkEvery, time.Now()
	if err := s.open(ctx, dsn, o); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.syncWAL = func() error {
		if s.wal == nil {
			return nil
		}
		return fdatasync(s.wal)
	}
	s.syncReady <- struct{}{} // the one sync token, free
	go s.writeLoop()
	go s.syncLoop()
	go s.checkpointLoop()
	return s, nil
}

func (s *Store) open(ctx context.Context, dsn string, o Options) error {
	var err error
	if s.wdb, err = openPool(dsn, connWrite, 1); err != nil {
		return err
	}
	s.wconn, err = s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if err := migrate(ctx, s.wconn); err != nil {
		return err
	}
	if s.wal, err = openWAL(ctx, s.wconn); err != nil {
		return err
	}
	if s.wal == nil {
		// Nothing to fdatasync: let COMMIT sync, as far as there is a disk.
		if _, err := s.wconn.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
			return fmt.Errorf("sqlite: open: %w", err)
		}
	}
	if s.w, err = prepareWrite(ctx, s.wconn); err != nil {
		return err
	}
	if s.rdb, err = openPool(dsn, connRead, o.ReadConns); err != nil {
		return err
	}
	if s.r, err = prepareRead(ctx, s.rdb); err != nil {
		return err
	}
	s.cdb, err = openPool(dsn, connCheckpoint, 1)
	return err
}

// openPool opens a pool of n connections of a kind, kept open for good.
func openPool(dsn string, kind connKind, n int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", connDSN(dsn, kind))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// busyTimeoutMS is how long a connection waits for a lock another holds.
const busyTimeoutMS = "5000"

// connKind says what a connection is for.
type connKind int

const (
	connWrite connKind = iota
	connRead
	connCheckpoint
)

// connDSN adds the connection pragmas to dsn. The writer commits without
// fsync and never checkpoints: the syncer and the checkpointer do that (see
// durable.go). Read connections are query_only, so nothing but the writer
// ever writes rows.
func connDSN(dsn string, kind connKind) string {
	sync := "FULL"
	if kind == connWrite {
		sync = "NORMAL"
	}
	params := []string{
		"_pragma=busy_timeout(" + busyTimeoutMS + ")",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(" + sync + ")",
		"_pragma=foreign_keys(ON)",
		"_txlock=immediate",
	}
	switch kind {
	case connWrite:
		params = append(params, "_pragma=wal_autocheckpoint(0)")
	case connRead:
		params = append(params, "_pragma=query_only(1)")
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + strings.Join(params, "&")
}

// migrate applies, in one IMMEDIATE transaction, the embedded migrations
// not yet recorded in schema_migrations.
func migrate(ctx context.Context, c *sql.Conn) (err error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	sort.Strings(names)
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = c.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL)`
	if _, err := c.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		var n int
		q := `SELECT count(*) FROM schema_migrations WHERE version = ?`
		if err := c.QueryRowContext(ctx, q, version).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", version, err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", version, err)
		}
		if _, err := c.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", version, err)
		}
		ins := `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`
		if _, err := c.ExecContext(ctx, ins, version, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", version, err)
		}
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("sqlite: migrate: commit: %w", err)
	}
	return nil
}

// Ping checks that the database answers a read and that its WAL can still
// be synced.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	if err := s.broken(); err != nil {
		return err
	}
	var one int
	if err := s.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close stops the writer, once the batch it is running (if any) is synced,
// and closes the database. The writes the writer has not taken by then,
// and later ones, fail with ErrClosed; every answer says what is on disk.
func (s *Store) Close() error {
	s.once.Do(func() {
		close(s.closing)
		<-s.done
		<-s.syncDone
		// A caller writing inline uses the connection, then holds the
		// token until its sync is done; the token is not given back.
		s.wmu.Lock()
		<-s.syncReady
		s.wmu.Unlock()
		close(s.ckptStop)
		<-s.ckptDone
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *Store) closeDBs() error {
	var errs []error
	if s.w != nil {
		errs = append(errs, s.w.close())
	}
	if s.r != nil {
		errs = append(errs, s.r.close())
	}
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.cdb != nil {
		errs = append(errs, s.cdb.Close())
	}
	if s.wal != nil {
		errs = append(errs, s.wal.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

var _ store.Store = (*Store)(nil)
