package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
	"github.com/refundgate/refundgate/store/sqlite"
)

// holdSyncs makes every WAL sync of s wait until release is called, and
// says on the returned channel when the first one starts. It releases them
// at the test's cleanup too, so s must be closed by a cleanup registered
// before it (cleanups run last first), not by a defer: Close waits for a
// held sync, and a test that fails before release would hang.
func holdSyncs(t *testing.T, s *sqlite.Store) (started <-chan struct{}, release func()) {
	t.Helper()
	st, rel := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(rel) }) }
	t.Cleanup(release)
	sqlite.WrapSyncWAL(s, func(real func() error) error {
		select {
		case st <- struct{}{}:
		default:
		}
		<-rel
		return real()
	})
	return st, release
}

// stillWaiting fails t if ch yields within 200 ms: what must still be
// waiting then.
func stillWaiting(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned (%v)", what, err)
	case <-time.After(200 * time.Millisecond):
	}
}

// createTo creates r in s and sends Create's error to done.
func createTo(ctx context.Context, s *sqlite.Store, r *normalize.Refund, done chan<- error) {
	_, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40})
	done <- err
}

// TestWritesDuringASyncShareOneCommit holds the sync of a write made on an
// idle store (which its caller commits and syncs itself): the writes that
// arrive meanwhile are not acknowledged before a sync of their own, and
// they all share the one commit that follows.
func TestWritesDuringASyncShareOneCommit(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	started, release := holdSyncs(t, s)
	first := make(chan error, 1)
	go createTo(ctx, s, refund("first"), first)
	<-started
	const n = 8
	rest := make(chan error, n)
	for i := range n {
		go createTo(ctx, s, refund("rest-"+string(rune('a'+i))), rest)
	}
	stillWaiting(t, "a write during the held sync", rest)
	stillWaiting(t, "the write whose sync is held", first)
	release()
	if err := <-first; err != nil {
		t.Fatalf("first Create: %v", err)
	}
	for range n {
		if err := <-rest; err != nil {
			t.Fatalf("Create during the held sync: %v", err)
		}
	}
	if st := s.Stats(); st.Ops != n+1 || st.Inline != 1 || st.Commits != 2 || st.Syncs != 2 {
		t.Errorf("Stats = %+v, want %d ops in 2 commits and 2 syncs: the first alone and inline, then the %d that waited together", st, n+1, n)
	}
}

// TestCloseWaitsForAnInlineWrite closes the store while a write's sync is
// held: Close waits for it, the write is acknowledged, and it is in the
// file when the store is opened again.
func TestCloseWaitsForAnInlineWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refundgate.db")
	s := openFile(t, path)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	started, release := holdSyncs(t, s)
	r := refund("closing")
	created := make(chan error, 1)
	go createTo(ctx, s, r, created)
	<-started
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	stillWaiting(t, "Close, while a write's sync is held,", closed)
	release()
	if err := <-created; err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := s.Stats(); st.Inline != 1 {
		t.Errorf("Stats = %+v, want the one write inline", st)
	}
	if _, err := s.Create(ctx, store.CreateParams{Refund: refund("after"), Key: key(refund("after")), Limit: 1 << 40}); err == nil {
		t.Error("Create after Close succeeded")
	}
	s2 := openFile(t, path)
	defer s2.Close()
	if _, err := s2.GetRefund(ctx, "m1", r.ID); err != nil {
		t.Errorf("the acknowledged refund after reopening: %v", err)
	}
}

// TestCloseFailsTheWritesStillQueued closes the store while a write's sync
// is held and more writes wait behind it: the held write is acknowledged
// and kept, the waiting ones fail with ErrClosed and none of them is in
// the file when it is opened again.
func TestCloseFailsTheWritesStillQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refundgate.db")
	s := openFile(t, path)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	started, release := holdSyncs(t, s)
	first := refund("held")
	held := make(chan error, 1)
	go createTo(ctx, s, first, held)
	<-started
	const n = 4
	var queued []*normalize.Refund
	waiting := make(chan error, n)
	for i := range n {
		r := refund(fmt.Sprintf("queued-%d", i))
		queued = append(queued, r)
		go createTo(ctx, s, r, waiting)
	}
	stillWaiting(t, "a write queued behind the held sync", waiting)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	stillWaiting(t, "Close, while a write's sync is held,", closed)
	release()
	if err := <-held; err != nil {
		t.Fatalf("the write whose sync was held: %v", err)
	}
	for range n {
		if err := <-waiting; !errors.Is(err, sqlite.ErrClosed) {
			t.Errorf("a write queued at Close: err = %v, want ErrClosed", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openFile(t, path)
	defer s2.Close()
	if _, err := s2.GetRefund(ctx, "m1", first.ID); err != nil {
		t.Errorf("the acknowledged refund after reopening: %v", err)
	}
	for _, r := range queued {
		if _, err := s2.GetRefund(ctx, "m1", r.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refund %s, failed with ErrClosed, after reopening: err = %v, want ErrNotFound", r.ID, err)
		}
	}
}

// TestAWriteWhoseCallerLeavesIsNotRun holds the sync of a write and queues
// another behind it, whose caller gives up: it gets its ctx's error at
// once, while the sync is still held, and the write is never made.
func TestAWriteWhoseCallerLeavesIsNotRun(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	started, release := holdSyncs(t, s)
	first, left := refund("held"), refund("left")
	held, leaving := make(chan error, 1), make(chan error, 1)
	go createTo(ctx, s, first, held)
	<-started
	cctx, cancel := context.WithCancel(ctx)
	go createTo(cctx, s, left, leaving)
	stillWaiting(t, "a write queued behind the held sync", leaving)
	cancel()
	select {
	case err := <-leaving:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the write whose caller left: err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write whose caller left still waits for the held sync")
	}
	release()
	if err := <-held; err != nil {
		t.Fatalf("the write whose sync was held: %v", err)
	}
	if _, err := s.GetRefund(ctx, "m1", first.ID); err != nil {
		t.Errorf("the acknowledged refund: %v", err)
	}
	if _, err := s.GetRefund(ctx, "m1", left.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refund whose caller left: err = %v, want ErrNotFound", err)
	}
	if st := s.Stats(); st.Ops != 1 {
		t.Errorf("Stats = %+v, want the one write that was not abandoned", st)
	}
}

// TestCallersLeavingAStuckDiskLeaveNothingQueued holds a sync, as a disk
// that stopped answering would, while a hundred writes queue behind it and
// their callers give up: their ops do not stay in the queue.
func TestCallersLeavingAStuckDiskLeaveNothingQueued(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "refundgate.db"))
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	started, release := holdSyncs(t, s)
	held := make(chan error, 1)
	go createTo(ctx, s, refund("held"), held)
	<-started
	const n = 100
	cctx, cancel := context.WithCancel(ctx)
	leaving := make(chan error, n)
	for i := range n {
		go createTo(cctx, s, refund(fmt.Sprintf("leaving-%d", i)), leaving)
	}
	for sqlite.Queued(s) < n {
		time.Sleep(time.Millisecond)
	}
	cancel()
	for range n {
		if err := <-leaving; !errors.Is(err, context.Canceled) {
			t.Fatalf("a write whose caller left: err = %v, want context.Canceled", err)
		}
	}
	if q := sqlite.Queued(s); q != 0 {
		t.Errorf("%d ops still queued after all %d callers left", q, n)
	}
	release()
	if err := <-held; err != nil {
		t.Fatalf("the write whose sync was held: %v", err)
	}
}

// TestPanicInAnInlineWriteEndsTheProcess runs a write that panics on an
// idle store, under a recover like the API's: the process still dies with
// the panic, instead of living on with the write path held for good.
func TestPanicInAnInlineWriteEndsTheProcess(t *testing.T) {
	if dir := os.Getenv("SQLITE_TEST_PANIC_DIR"); dir != "" {
		s := openFile(t, filepath.Join(dir, "refundgate.db"))
		func() {
			defer func() { _ = recover() }() // as fiber's recover middleware does
			_ = sqlite.Write(context.Background(), s, func() { panic("boom in a write") })
		}()
		fmt.Println("the process lived on after the panic")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanicInAnInlineWriteEndsTheProcess$")
	cmd.Env = append(os.Environ(), "SQLITE_TEST_PANIC_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("the process exited with %v, want a non-zero exit; output:\n%s", err, out)
	}
	for _, want := range []string{"panic: sqlite: panic in an inline write: boom in a write", "TestPanicInAnInlineWriteEndsTheProcess"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "lived on") {
		t.Errorf("the process went on after the panic:\n%s", out)
	}
}
