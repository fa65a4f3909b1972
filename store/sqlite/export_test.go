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
