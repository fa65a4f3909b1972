package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestPragmas checks each connection's settings: WAL everywhere; the
// writer commits without fsync and never checkpoints (the syncer and the
// checkpointer do that); readers are query_only.
func TestPragmas(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	defer s.Close()
	ctx := context.Background()
	read := func(ctx context.Context, q string) (string, error) {
		var v string
		err := sqlite.ReadDB(s).QueryRowContext(ctx, q).Scan(&v)
		return v, err
	}
	common := map[string]string{"journal_mode": "wal", "busy_timeout": "5000", "foreign_keys": "1"}
	for _, conn := range []struct {
		name  string
		query func(ctx context.Context, q string) (string, error)
		want  map[string]string
	}{
		{"write", func(ctx context.Context, q string) (string, error) { return sqlite.WriteQuery(ctx, s, q) },
			map[string]string{"synchronous": "1", "wal_autocheckpoint": "0", "query_only": "0"}},
		{"read", read, map[string]string{"query_only": "1"}},
	} {
		for name, w := range common {
			conn.want[name] = w
		}
		for name, w := range conn.want {
			got, err := conn.query(ctx, "PRAGMA "+name)
			if err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", conn.name, name, err)
			}
			if got != w {
				t.Errorf("%s connection: PRAGMA %s = %q, want %q", conn.name, name, got, w)
			}
		}
	}
}

// TestAckWaitsForSync holds the WAL sync and checks that a committed
// Create does not return before the sync that covers it has finished.
func TestAckWaitsForSync(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	t.Cleanup(func() { s.Close() })
	started, free := holdSyncs(t, s)
	r := refund("held")
	done := make(chan error, 1)
	go func() {
		_, err := s.Create(context.Background(), store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40})
		done <- err
	}()
	<-started
	select {
	case err := <-done:
		t.Fatalf("Create returned (%v) while the WAL sync covering it was still running", err)
	default:
	}
	free()
	if err := <-done; err != nil {
		t.Fatalf("Create: %v", err)
	}
	if st := s.Stats(); st.Ops < 1 || st.Commits < 1 || st.Syncs < 1 {
		t.Errorf("Stats after one Create = %+v, want at least one op, commit and sync", st)
	}
}

// TestReadWaitsForSync holds the WAL sync after a Create committed: a read
// of the refund, which the read connection can already see, does not
// answer before the sync has made it durable.
func TestReadWaitsForSync(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	defer s.Close()
	ctx := context.Background()
	started, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // before Close, which waits for the held sync
	var hold atomic.Bool
	hold.Store(true)
	sqlite.WrapSyncWAL(s, func(real func() error) error {
		if hold.Load() {
			started <- struct{}{}
			<-release
		}
		return real()
	})
	r := refund("visible")
	created := make(chan error, 1)
	go func() {
		_, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40})
		created <- err
	}()
	<-started
	hold.Store(false)
	got := make(chan error, 1)
	go func() {
		_, err := s.GetRefund(ctx, "m1", r.ID)
		got <- err
	}()
	stillWaiting(t, "GetRefund of a commit not yet synced", got)
	free()
	if err := <-created; err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("GetRefund after the sync: %v", err)
	}
}

// TestSyncFailure makes the WAL sync fail: the write waiting for it fails,
// and the store refuses every write and Ping from then on, since what the
// failed sync should have kept may be gone.
func TestSyncFailure(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	defer s.Close()
	ctx := context.Background()
	sqlite.WrapSyncWAL(s, func(func() error) error { return errors.New("EIO from the disk") })
	r := refund("lost")
	if _, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); !errors.Is(err, sqlite.ErrBroken) {
		t.Fatalf("Create with a failing WAL sync: %v, want ErrBroken", err)
	}
	r2 := refund("after")
	if _, err := s.Create(ctx, store.CreateParams{Refund: r2, Key: key(r2), Limit: 1 << 40}); !errors.Is(err, sqlite.ErrBroken) {
		t.Errorf("Create after a failed sync: %v, want ErrBroken", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, sqlite.ErrBroken) {
		t.Errorf("Ping after a failed sync: %v, want ErrBroken", err)
	}
	// The refund may be in the WAL, unsynced: a read does not show it.
	if _, err := s.GetRefund(ctx, "m1", r.ID); !errors.Is(err, sqlite.ErrBroken) {
		t.Errorf("GetRefund after a failed sync: %v, want ErrBroken", err)
	}
}

// TestCheckpointer checks that the background checkpointer copies the WAL
// into the database file while the writer goes on.
func TestCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refundgate.db")
	s := openFile(t, path)
	defer s.Close()
	ctx := context.Background()
	for i := range 200 {
		r := refund(fmt.Sprint(i))
		if _, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); err != nil {
			t.Fatal(err)
		}
	}
	// The schema alone is a few pages; 200 refunds with keys are more.
	// Only a checkpoint writes the database file: the writer never does.
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= 64<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes 10 s after 200 refunds were committed; the WAL was not checkpointed", fi.Size())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Stats().Checkpoints == 0 {
		t.Error("Stats counts no checkpoint")
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
		if want := []string{"0001_init", "0002_ledger"}; !slices.Equal(versions, want) {
			t.Errorf("open %d: schema_migrations = %v, want %v", i, versions, want)
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

// TestWALRestarts writes refunds while others read them, with the restart
// threshold lowered to 256 frames: the writer keeps starting the WAL over
// (under steady reads SQLite alone never does, and the WAL grows without
// end). It writes until three restarts happened, at most 8000 refunds.
func TestWALRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refundgate.db")
	s := openFile(t, path)
	defer s.Close()
	sqlite.SetRestartFrames(s, 256)
	ctx := context.Background()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var last atomic.Pointer[string]
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if id := last.Load(); id != nil {
					if _, err := s.GetRefund(ctx, "m1", *id); err != nil {
						t.Errorf("GetRefund: %v", err)
						return
					}
				}
			}
		})
	}
	var (
		writers sync.WaitGroup
		n       atomic.Int64
	)
	for range 8 {
		writers.Go(func() {
			for s.Stats().Restarts < 3 && n.Add(1) <= 8000 {
				r := refund(storetest.NewID())
				if _, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				last.Store(&r.ID)
				from := r.Status
				r.Status = normalize.StatusSucceeded
				if err := s.UpdateRefund(ctx, r, from, &store.Answer{Status: 201, Body: make([]byte, 500)}); err != nil {
					t.Errorf("UpdateRefund: %v", err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	if st := s.Stats(); st.Restarts < 3 {
		t.Errorf("%d WAL restarts in %d refunds with a 256-frame threshold, want 3: %+v", st.Restarts, min(n.Load(), 8000), st)
	}
}

// TestLongReadDoesNotStallWrites holds a read transaction open on an old
// snapshot of the WAL for a second, the way a slow list or an export does,
// while refunds are written past the restart threshold. The restart cannot
// rewind the WAL under that reader; it must give up at once and try again
// later, not sleep in SQLite's busy handler with every write queued behind
// it (that stalled writes for as long as the reader lasted, up to the busy
// timeout of 5 s).
func TestLongReadDoesNotStallWrites(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	defer s.Close()
	sqlite.SetRestartFrames(s, 64)
	ctx := context.Background()
	write := func() time.Duration {
		start := time.Now()
		r := refund(storetest.NewID())
		if _, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		return time.Since(start)
	}
	for range 100 {
		write()
	}
	conn, err := sqlite.ReadDB(s).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM refunds").Scan(&n); err != nil {
		t.Fatal(err)
	}
	released := time.Now().Add(time.Second)
	readerDone := make(chan error, 1)
	go func() {
		time.Sleep(time.Until(released))
		_, err := conn.ExecContext(ctx, "COMMIT")
		readerDone <- err
	}()
	var slowest time.Duration
	var writes int
	for time.Now().Before(released) {
		slowest = max(slowest, write())
		writes++
	}
	t.Logf("%d writes under the reader, slowest %v; %+v", writes, slowest, s.Stats())
	if slowest > 250*time.Millisecond {
		t.Errorf("slowest of %d writes under a 1 s reader took %v, want < 250ms", writes, slowest)
	}
	// Once the reader is gone the WAL starts over again.
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	before := s.Stats().Restarts
	for deadline := time.Now().Add(5 * time.Second); s.Stats().Restarts == before && time.Now().Before(deadline); {
		write()
	}
	if st := s.Stats(); st.Restarts == before {
		t.Errorf("no WAL restart after the reader ended: %+v", st)
	}
}

// TestMigrateLedger opens a database written by the first schema, with
// answered, unanswered, failed and held refunds in it, and checks that the
// second migration keeps every answer and starts each payment's ledger
// from what its refunds hold.
func TestMigrateLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refundgate.db")
	ctx := context.Background()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	init, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		id, payment, status string
		amount              int64
		answer              string
	}{
		{"rf_1", "pay-1", "succeeded", 3000, `{"id":"rf_1"}`},
		{"rf_2", "pay-1", "pending", 2000, ""},
		{"rf_3", "pay-1", "failed", 5000, `{"code":"refund_declined"}`},
		{"rf_4", "pay-2", "requires_approval", 700, `{"id":"rf_4"}`},
	}
	stmts := []string{string(init),
		`CREATE TABLE schema_migrations (version TEXT NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES ('0001_init', 1)`}
	for _, r := range rows {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO refunds (id, merchant_id, provider, provider_type, payment_id, amount, currency,
			status, reason, created_at, updated_at, next_sync_at) VALUES ('%s', 'm1', 'acct-1', 'yoco', '%s', %d, 'ZAR', '%s', 'other', 1, 1, 1)`,
			r.id, r.payment, r.amount, r.status))
		status, body := "NULL", "NULL"
		if r.answer != "" {
			status, body = "201", "'"+r.answer+"'"
		}
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO idempotency_keys VALUES ('m1', 'key-%s', 'h', '%s', %s, %s, 1)`, r.id, r.id, status, body))
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := openFile(t, path)
	defer s.Close()
	for _, r := range rows {
		rec, err := s.GetIdempotency(ctx, "m1", "key-"+r.id)
		if err != nil {
			t.Fatalf("GetIdempotency(key-%s): %v", r.id, err)
		}
		switch {
		case r.answer == "" && rec.Answer != nil:
			t.Errorf("key-%s: answer %+v after the migration, want none", r.id, rec.Answer)
		case r.answer != "" && (rec.Answer == nil || string(rec.Answer.Body) != r.answer || rec.Answer.Status != 201):
			t.Errorf("key-%s: answer %+v after the migration, want 201 %s", r.id, rec.Answer, r.answer)
		}
	}
	// pay-1 holds 3000 succeeded + 2000 pending of 6000: 1000 is left.
	over := refund("over")
	over.PaymentID, over.Amount = "pay-1", 1001
	if _, err := s.Create(ctx, store.CreateParams{Refund: over, Key: key(over), Limit: 6000}); !errors.Is(err, store.ErrExceedsRefundable) {
		t.Errorf("Create of 1001 on pay-1 after the migration: %v, want ErrExceedsRefundable", err)
	}
	rest := refund("rest")
	rest.PaymentID = "pay-1"
	if _, err := s.Create(ctx, store.CreateParams{Refund: rest, Key: key(rest), Limit: 6000, TakeRest: true}); err != nil || rest.Amount != 1000 {
		t.Errorf("Create of the rest of pay-1 after the migration: amount %d, %v; want 1000", rest.Amount, err)
	}
	held := refund("held")
	held.PaymentID, held.Amount = "pay-2", 301
	if _, err := s.Create(ctx, store.CreateParams{Refund: held, Key: key(held), Limit: 1000}); !errors.Is(err, store.ErrExceedsRefundable) {
		t.Errorf("Create of 301 on pay-2 (700 held of 1000): %v, want ErrExceedsRefundable", err)
	}
	due, err := s.DuePending(ctx, time.Unix(10, 0), 10)
	if err != nil || len(due) != 1 || due[0].ID != "rf_2" {
		t.Errorf("DuePending after the migration = %v, %v; want rf_2", due, err)
	}
}

// TestWriterShrinksItsCache fills the writer's page cache with the pages of
// a few thousand refunds, then waits past the shrink interval: the next
// write leaves the cache small. With shrinking off, the same steps leave it
// full, so the test sees the difference the shrink makes.
func TestWriterShrinksItsCache(t *testing.T) {
	for _, every := range []time.Duration{0, 100 * time.Millisecond} {
		s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
		sqlite.SetShrinkEvery(s, every)
		ctx := context.Background()
		var writers sync.WaitGroup
		for range 32 {
			writers.Go(func() {
				for range 100 {
					r := refund(storetest.NewID())
					if _, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		writers.Wait()
		time.Sleep(150 * time.Millisecond)
		r := refund(storetest.NewID())
		if _, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); err != nil {
			t.Fatal(err)
		}
		kb, err := sqlite.WriterCacheKB(s)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case every == 0 && kb < 1000:
			t.Errorf("without shrinking the writer's cache holds %d KiB after 3,200 refunds; want it full (about 2,000 KiB), or the test shows nothing", kb)
		case every > 0 && kb > 400:
			t.Errorf("the writer's cache holds %d KiB after a shrink interval and a write; want a few pages", kb)
		}
		t.Logf("shrink every %s: writer's cache %d KiB", every, kb)
		s.Close()
	}
}
