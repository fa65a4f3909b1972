package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
	"github.com/refundgate/refundgate/store/sqlite"
	"github.com/refundgate/refundgate/store/storetest"
)

// refund returns a pending refund of merchant m1 on its own payment.
func refund(pay string) *normalize.Refund {
	return &normalize.Refund{
		ID: storetest.NewID(), Object: "refund", MerchantID: "m1",
		Provider: "acct-1", ProviderType: "yoco", PaymentID: "pay-" + pay,
		Amount: 1000, Currency: "ZAR", Status: normalize.StatusPending,
		Reason:    normalize.ReasonRequestedByCustomer,
		Metadata:  map[string]string{"order": pay},
		CreatedAt: storetest.Base, UpdatedAt: storetest.Base,
	}
}

func key(r *normalize.Refund) store.IdempotencyRecord {
	return store.IdempotencyRecord{MerchantID: r.MerchantID, Key: "key-" + r.ID,
		RequestHash: "hash", CreatedAt: storetest.Base}
}

func benchStore(b *testing.B) store.Store {
	b.Helper()
	s := openFile(b, filepath.Join(b.TempDir(), "bench.db"))
	b.Cleanup(func() { s.Close() })
	return s
}

func create(b *testing.B, s store.Store, r *normalize.Refund) {
	if _, err := s.Create(context.Background(), store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCreate is phase 1 from one goroutine: every op is its own commit.
func BenchmarkCreate(b *testing.B) {
	s := benchStore(b)
	for b.Loop() {
		create(b, s, refund(storetest.NewID()))
	}
}

// BenchmarkCreateParallel is phase 1 from many goroutines: group commit
// shares each fsync between the ops queued together.
func BenchmarkCreateParallel(b *testing.B) {
	s := benchStore(b)
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			create(b, s, refund(storetest.NewID()))
		}
	})
}

// BenchmarkRefundParallel is one whole refund, Create then UpdateRefund
// with its answer, from many goroutines.
func BenchmarkRefundParallel(b *testing.B) {
	s := benchStore(b)
	b.SetParallelism(64)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := refund(storetest.NewID())
			create(b, s, r)
			r.Status = normalize.StatusSucceeded
			if err := s.UpdateRefund(ctx, r, normalize.StatusPending, &store.Answer{Status: 201, Body: []byte(`{}`)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRefundPaced is whole refunds (Create, then UpdateRefund with
// the answer) arriving at a fixed rate, each on a goroutine of its own: an
// open arrival model, like the harness's fixed-rate runs without HTTP, the
// provider and the load tool. At such rates batches are small, and the
// write path's hand-offs and per-commit costs weigh most. It reports the
// CPU the process used per refund, the p50 and p99 of a refund's two
// durable writes, the p99 of the fdatasyncs of the WAL beside them, and the
// ops per commit. Run it with a fixed count, e.g. -benchtime 10000x (5 s at
// 2,000/s).
func BenchmarkRefundPaced(b *testing.B) {
	for _, rate := range []int{500, 1000, 2000} {
		b.Run(fmt.Sprintf("%d/s", rate), func(b *testing.B) { refundPaced(b, rate) })
	}
}

func refundPaced(b *testing.B, rate int) {
	var syncs durations
	s, err := sqlite.OpenOptions(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{WALSync: &syncs})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	cpu0 := cpuTime(b)
	start := time.Now()
	for i := range b.N {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			r := refund(storetest.NewID())
			if _, err := s.Create(ctx, store.CreateParams{Refund: r, Key: key(r), Limit: 1 << 40}); err != nil {
				b.Error(err)
				return
			}
			r.Status = normalize.StatusSucceeded
			if err := s.UpdateRefund(ctx, r, normalize.StatusPending, &store.Answer{Status: 201, Body: []byte(`{}`)}); err != nil {
				b.Error(err)
			}
			lat[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	cpu := cpuTime(b) - cpu0
	slices.Sort(lat)
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/refund")
	b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[b.N*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(syncs.p99()*1000, "fdatasync-p99-ms")
	st := s.Stats()
	b.ReportMetric(float64(st.Ops)/float64(st.Commits), "ops/commit")
}

// durations is an Observer that keeps what it observes.
type durations struct {
	mu sync.Mutex
	v  []float64
}

func (d *durations) Observe(v float64) { d.mu.Lock(); d.v = append(d.v, v); d.mu.Unlock() }

func (d *durations) p99() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.v) == 0 {
		return 0
	}
	slices.Sort(d.v)
	return d.v[len(d.v)*99/100]
}

// BenchmarkUpdate is phase 3 from one goroutine.
func BenchmarkUpdate(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	r := refund("p")
	create(b, s, r)
	for b.Loop() {
		r.Attempts++
		if err := s.UpdateRefund(ctx, r, normalize.StatusPending, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetRefund reads one refund from many goroutines.
func BenchmarkGetRefund(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	r := refund("p")
	create(b, s, r)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetRefund(ctx, "m1", r.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
