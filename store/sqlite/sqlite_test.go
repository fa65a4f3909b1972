package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
	"github.com/refundgate/refundgate/store/sqlite"
	"github.com/refundgate/refundgate/store/storetest"
)

func openFile(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

func TestPragmas(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	defer s.Close()
	ctx := context.Background()
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "busy_timeout": "5000", "foreign_keys": "1"}
	read := func(ctx context.Context, q string) (string, error) {
		var v string
		err := sqlite.ReadDB(s).QueryRowContext(ctx, q).Scan(&v)
		return v, err
	}
	for _, conn := range []struct {
		name  string
		query func(ctx context.Context, q string) (string, error)
	}{{"write", func(ctx context.Context, q string) (string, error) { return sqlite.WriteQuery(ctx, s, q) }}, {"read", read}} {
		for name, w := range want {
			got, err := conn.query(ctx, "PRAGMA "+name)
			if err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", conn.name, name, err)
			}
			if got != w {
				t.Errorf("%s connection: PRAGMA %s = %q, want %q", conn.name, name, got, w)
			}
		}
	}
	var qo string
	if err := sqlite.ReadDB(s).QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo); err != nil || qo != "1" {
		t.Errorf("read connection: PRAGMA query_only = %q, %v; want 1", qo, err)
	}
}

func TestMigrationsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refundgate.db")
	ctx := context.Background()
	for i := range 3 {
		s := openFile(t, path)
		var versions []string
		rows, err := sqlite.ReadDB(s).QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			versions = append(versions, v)
		}
		rows.Close()
		if len(versions) != 1 || versions[0] != "0001_init" {
			t.Errorf("open %d: schema_migrations = %v, want [0001_init]", i, versions)
		}
		r := refund(fmt.Sprint(i))
		if _, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); err != nil {
			t.Fatalf("open %d: Create: %v", i, err)
		}
		list, _, err := s.ListRefunds(ctx, store.ListQuery{MerchantID: "m1"})
		if err != nil || len(list) != i+1 {
			t.Errorf("open %d: %d refunds, %v; want %d", i, len(list), err, i+1)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

// TestDurability checks that every refund Create acknowledged, concurrently
// and so through batched commits, is in the file after it is reopened.
func TestDurability(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refundgate.db")
	ctx := context.Background()
	s := openFile(t, path)
	var (
		mu    sync.Mutex
		acked []*normalize.Refund
		wg    sync.WaitGroup
	)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				r := refund(fmt.Sprintf("%d-%d", g, i))
				if _, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				from := r.Status
				r.Status = normalize.StatusSucceeded
				if err := s.UpdateRefund(ctx, r, from, &store.Answer{Status: 201, Body: []byte(r.ID)}); err != nil {
					t.Errorf("UpdateRefund: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openFile(t, path)
	defer s.Close()
	if len(acked) != 800 {
		t.Fatalf("%d refunds acknowledged, want 800", len(acked))
	}
	for _, want := range acked {
		got, err := s.GetRefund(ctx, "m1", want.ID)
		if err != nil {
			t.Fatalf("GetRefund(%s) after reopen: %v", want.ID, err)
		}
		if got.Status != normalize.StatusSucceeded || got.Amount != want.Amount {
			t.Errorf("refund %s after reopen: %s %d, want succeeded %d", want.ID, got.Status, got.Amount, want.Amount)
		}
		rec, err := s.GetIdempotency(ctx, "m1", "key-"+want.ID)
		if err != nil || rec.Answer == nil || string(rec.Answer.Body) != want.ID {
			t.Errorf("idempotency record of %s after reopen: %+v, %v", want.ID, rec, err)
		}
	}
}

func TestClosed(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	r := refund("x")
	if _, err := s.Create(context.Background(), store.CreateParams{Refund: r, Key: key(r), Limit: 10}); err == nil {
		t.Fatal("Create on a closed store succeeded")
	}
}

func TestFileURI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refundgate.db")
	s := openFile(t, "file:"+path)
	r := refund("uri")
	if _, err := s.Create(context.Background(), store.CreateParams{Refund: r, Key: key(r), Limit: 10000}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openFile(t, path)
	defer s.Close()
	if _, err := s.GetRefund(context.Background(), "", r.ID); err != nil {
		t.Fatalf("GetRefund through the plain path: %v", err)
	}
}

// TestBatchIsolation queues creates that fail with an SQL error (a
// duplicate refund id) among ones that succeed: only the failing ones fail,
// and they leave nothing behind.
func TestBatchIsolation(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	defer s.Close()
	ctx := context.Background()
	dup := refund("dup")
	if _, err := s.Create(ctx, store.CreateParams{Refund: dup, Key: key(dup), Limit: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		good []*normalize.Refund
		bad  []store.IdempotencyRecord
	)
	for i := range 200 {
		wg.Go(func() {
			r := refund(fmt.Sprint(i))
			k := key(r)
			if i%5 == 0 {
				r.ID = dup.ID
				k.Key = fmt.Sprintf("bad-%d", i)
			}
			_, err := s.Create(ctx, store.CreateParams{Refund: r, Key: k, Limit: 1 << 40})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case i%5 == 0 && err == nil:
				t.Errorf("Create with a duplicate id succeeded")
			case i%5 == 0:
				bad = append(bad, k)
			case err != nil:
				t.Errorf("Create %d failed beside a failing op: %v", i, err)
			default:
				good = append(good, r)
			}
		})
	}
	wg.Wait()
	for _, r := range good {
		if _, err := s.GetRefund(ctx, "", r.ID); err != nil {
			t.Errorf("GetRefund(%s): %v", r.ID, err)
		}
	}
	for _, k := range bad {
		if _, err := s.GetIdempotency(ctx, k.MerchantID, k.Key); err == nil {
			t.Errorf("failed Create bound key %s", k.Key)
		}
	}
	if len(good) != 160 || len(bad) != 40 {
		t.Errorf("%d good and %d bad, want 160 and 40", len(good), len(bad))
	}
}
