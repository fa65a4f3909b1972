package sqlite

import (
	"context"
	"database/sql"
)

// WriteQuery runs a one-value query on the writer's connection.
func WriteQuery(ctx context.Context, s *Store, q string) (string, error) {
	var v string
	err := s.do(ctx, func(tx *wtx) error { return tx.conn.QueryRowContext(bg, q).Scan(&v) })
	return v, err
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
