package postgres

import "github.com/jackc/pgx/v5/pgxpool"

// Pool exposes the store's pool to tests.
func Pool(s *Store) *pgxpool.Pool { return s.pool }
