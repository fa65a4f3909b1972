package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
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
