package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"time"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"
)

// WriteQuery runs a one-value query on the writer's connection.
func WriteQuery(ctx context.Context, s *Store, q string) (string, error) {
	var v string
	err := s.do(ctx, func(tx *wtx) error { return tx.conn.QueryRowContext(bg, q).Scan(&v) })
	return v, err
}

// Write runs f as a write op, inside the write path.
func Write(ctx context.Context, s *Store, f func()) error {
	return s.do(ctx, func(*wtx) error { f(); return nil })
}

// Queued is how many ops the write queue holds, abandoned ones included.
func Queued(s *Store) int {
	s.queue.mu.Lock()
	defer s.queue.mu.Unlock()
	return len(s.queue.ops)
}

// ReadDB exposes the read pool to tests.
func ReadDB(s *Store) *sql.DB { return s.rdb }

// WrapSyncWAL replaces the store's WAL sync with wrap, which gets the real
// one to call (or not).
func WrapSyncWAL(s *Store, wrap func(real func() error) error) {
	real := s.syncWAL
	s.syncWAL = func() error { return wrap(real) }
}

// ErrBroken is the sticky error of a store whose WAL sync failed.
var ErrBroken = errBroken

// SetRestartFrames sets the WAL length past which the writer restarts it;
// call it before the first write.
func SetRestartFrames(s *Store, n int64) { s.restartFrames = n }

// SetShrinkEvery sets how often the writer frees its idle page cache (0:
// never); call it before the first write.
func SetShrinkEvery(s *Store, d time.Duration) { s.shrinkEvery = d }

// WriterCacheKB is the memory (KiB) of the writer connection's page cache,
// from sqlite3_db_status(SQLITE_DBSTATUS_CACHE_USED).
func WriterCacheKB(s *Store) (int, error) {
	var kb int
	err := s.do(context.Background(), func(tx *wtx) error {
		return tx.conn.Raw(func(dc any) error {
			v := reflect.ValueOf(dc)
			if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct || !v.Elem().FieldByName("db").IsValid() {
				return fmt.Errorf("driver conn %T has no db handle", dc)
			}
			db := uintptr(v.Elem().FieldByName("db").Uint())
			tls := libc.NewTLS()
			defer tls.Close()
			p := tls.Alloc(16)
			defer tls.Free(16)
			if rc := lib.Xsqlite3_db_status(tls, db, lib.SQLITE_DBSTATUS_CACHE_USED, p, p+8, 0); rc != lib.SQLITE_OK {
				return fmt.Errorf("sqlite3_db_status: %d", rc)
			}
			kb = int(libc.AtomicLoadPInt32(p)) / 1024
			return nil
		})
	})
	return kb, err
}
