package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/refundgate/refundgate/store"
	"github.com/refundgate/refundgate/store/postgres"
	"github.com/refundgate/refundgate/store/storetest"
)

// dsnEnv names the database the tests use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const dsnEnv = "REFUNDGATE_TEST_POSTGRES_DSN"

func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skip("!!! " + dsnEnv + " is not set: PostgreSQL store tests SKIPPED !!!")
	}
	return dsn
}

// openSchema opens a store in a fresh schema, dropped at cleanup.
func openSchema(t *testing.T, dsn string) (*postgres.Store, string) {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "rg_test_" + hex.EncodeToString(b)
	t.Cleanup(func() { dropSchema(t, dsn, schema) })
	s, err := postgres.OpenOptions(context.Background(), dsn, postgres.Options{Schema: schema, MaxConns: 8})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, schema
}

func dropSchema(t *testing.T, dsn, schema string) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openSchema(t, dsn)
		return s
	})
}

// TestMigrationsConcurrent opens many stores on one schema at once: the
// advisory lock lets exactly one apply each migration.
func TestMigrationsConcurrent(t *testing.T) {
	dsn := testDSN(t)
	first, schema := openSchema(t, dsn)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s, err := postgres.OpenSchema(ctx, dsn, schema)
			if err != nil {
				t.Errorf("OpenSchema: %v", err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	var n, distinct int
	if err := postgres.Pool(first).QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 2 || distinct != 2 {
		t.Errorf("schema_migrations has %d rows of %d versions, want 2 of 2 (0001_init, 0002_ledger), each applied once", n, distinct)
	}
}

// TestMigrationsFreshSchemas opens stores on fresh schemas at once: each
// creates its own schema and tables.
func TestMigrationsFreshSchemas(t *testing.T) {
	dsn := testDSN(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, _ := openSchema(t, dsn)
			if err := s.Ping(context.Background()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
	wg.Wait()
}
