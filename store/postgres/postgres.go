// Package postgres implements store.Store on PostgreSQL with pgx v5.
//
// Create serialises the refunds of one payment with a transaction-scoped
// advisory lock on (provider, payment id), so the ledger check and the
// insert see every refund committed before; the idempotency key is bound
// with INSERT … ON CONFLICT DO NOTHING, which waits for a concurrent binder
// of the same key and then reads its record.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/refundgate/refundgate/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune a Store; the zero value is the default.
type Options struct {
	// Schema, when set, is created if missing and becomes every
	// connection's search_path, so the store's tables live in it.
	Schema string
	// MaxConns is the pool size; when zero, the DSN's pool_max_conns or
	// else 32.
	MaxConns int32
}

// Store is a store.Store on PostgreSQL. Its methods are safe for concurrent
// use.
type Store struct {
	pool *pgxpool.Pool
}

// DefaultMaxConns is the pool size unless Options or the DSN's
// pool_max_conns say otherwise.
const DefaultMaxConns = 32

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and applies the migrations it does not have yet.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenOptions(ctx, dsn, Options{})
}

// OpenSchema is Open with the store's tables in schema.
func OpenSchema(ctx context.Context, dsn, schema string) (*Store, error) {
	return OpenOptions(ctx, dsn, Options{Schema: schema})
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, dsn string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if o.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{o.Schema}.Sanitize()
	}
	switch {
	case o.MaxConns > 0:
		cfg.MaxConns = o.MaxConns
	case !strings.Contains(dsn, "pool_max_conns"):
		// pgxpool's default, max(4, CPUs), leaves PostgreSQL's group commit
		// nothing to group: every refund is two short transactions that
		// wait mostly for the WAL flush.
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := migrate(ctx, pool, o.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations in one transaction, under an advisory lock so stores
// opening at once apply each migration once.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	sort.Strings(names)
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // A no-op after Commit.
	lock := `SELECT pg_advisory_xact_lock(hashtextextended('refundgate:migrate:' || $1, 0))`
	if _, err := tx.Exec(ctx, lock, schema); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if schema != "" {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: migrate: create schema: %w", err)
		}
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version text NOT NULL PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`
	if _, err := tx.Exec(ctx, create); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		var applied bool
		q := `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`
		if err := tx.QueryRow(ctx, q, version).Scan(&applied); err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", version, err)
		}
		if applied {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", version, err)
		}
		// Simple protocol: a migration is many statements.
		if _, err := tx.Exec(ctx, string(body), pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", version, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", version, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: commit: %w", err)
	}
	return nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// notFound maps pgx.ErrNoRows to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

var _ store.Store = (*Store)(nil)
