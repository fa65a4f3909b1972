// Package storetest is the conformance suite every store.Store passes, in
// the style of go-cloud's drivertest: one Run, table-driven subtests, whole
// values compared with cmp.Diff.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/oklog/ulid/v2"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

// Run runs the conformance suite against the stores open returns. open must
// return a fresh, empty store and register its cleanup on t. Every subtest
// opens its own store and runs in parallel with the others.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateInsertsRefundAndKey", testCreateInserts},
		{"CreateSameKeyReturnsExisting", testCreateSameKey},
		{"CreateKeyPerMerchant", testCreateKeyPerMerchant},
		{"CreateKeepsPayment", testCreateKeepsPayment},
		{"Ledger", testLedger},
		{"LedgerConcurrent", testLedgerConcurrent},
		{"SameKeyConcurrent", testSameKeyConcurrent},
		{"UpdateRefund", testUpdateRefund},
		{"UpdateRefundStateChanged", testUpdateStateChanged},
		{"TerminalStatesStay", testTerminalStatesStay},
		{"Discard", testDiscard},
		{"GetRefundScoped", testGetRefundScoped},
		{"ListRefunds", testListRefunds},
		{"ListRefundsPagination", testListPagination},
		{"GetIdempotency", testGetIdempotency},
		{"FindByProviderRefund", testFindByProviderRefund},
		{"DuePending", testDuePending},
		{"Totals", testTotals},
		{"Payments", testPayments},
		{"MarkEvent", testMarkEvent},
		{"PurgeIdempotency", testPurge},
		{"Ping", testPing},
		{"RoundTrip", testRoundTrip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// Base is the time the suite's records are made at. It carries
// nanoseconds on purpose: stores keep microseconds.
var Base = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

// CmpOptions compare times at microsecond precision, whatever their
// location, and errors with errors.Is.
var CmpOptions = []cmp.Option{
	cmpopts.EquateErrors(),
	cmp.Comparer(func(a, b time.Time) bool {
		return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
	}),
}

func diff(want, got any) string { return cmp.Diff(want, got, CmpOptions...) }

// NewID returns a fresh refund id, "rf_" and a ULID; ids made later sort
// after ids made earlier.
func NewID() string { return "rf_" + ulid.Make().String() }

func ptr[T any](v T) *T { return &v }

// refund returns a minimal refund of merchant m on payment pay with the
// account "acct-1".
func refund(m, pay string, amount int64, status normalize.Status) *normalize.Refund {
	return &normalize.Refund{
		ID:           NewID(),
		Object:       "refund",
		MerchantID:   m,
		Provider:     "acct-1",
		ProviderType: "yoco",
		PaymentID:    pay,
		Amount:       amount,
		Currency:     "ZAR",
		Status:       status,
		Reason:       normalize.ReasonRequestedByCustomer,
		CreatedAt:    Base,
		UpdatedAt:    Base,
	}
}

func key(m, k string) store.IdempotencyRecord {
	return store.IdempotencyRecord{MerchantID: m, Key: k, RequestHash: "hash-" + k, CreatedAt: Base}
}

// params is a create of r with a fresh key and the limit.
func params(r *normalize.Refund, limit int64) store.CreateParams {
	return store.CreateParams{Refund: r, Key: key(r.MerchantID, "key-"+r.ID), Limit: limit}
}

// mustCreate creates r under a fresh key and fails the test unless it was
// inserted.
func mustCreate(t *testing.T, s store.Store, r *normalize.Refund, limit int64) {
	t.Helper()
	existing, err := s.Create(context.Background(), params(r, limit))
	if err != nil {
		t.Fatalf("Create(%s): %v", r.ID, err)
	}
	if existing != nil {
		t.Fatalf("Create(%s): got existing record %+v, want insert", r.ID, existing)
	}
}

// moveTo updates r to status from its current one.
func moveTo(t *testing.T, s store.Store, r *normalize.Refund, status normalize.Status) {
	t.Helper()
	from := r.Status
	r.Status = status
	r.UpdatedAt = r.UpdatedAt.Add(time.Second)
	if err := s.UpdateRefund(context.Background(), r, from, nil); err != nil {
		t.Fatalf("UpdateRefund(%s, %s→%s): %v", r.ID, from, status, err)
	}
}

func mustGet(t *testing.T, s store.Store, id string) *normalize.Refund {
	t.Helper()
	got, err := s.GetRefund(context.Background(), "", id)
	if err != nil {
		t.Fatalf("GetRefund(%s): %v", id, err)
	}
	return got
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testTotals(t *testing.T, s store.Store) {
	ctx := context.Background()
	got, err := s.Totals(ctx, "acct-1", "nothing-here")
	if err != nil {
		t.Fatalf("Totals: %v", err)
	}
	if d := diff(store.Totals{}, got); d != "" {
		t.Fatalf("Totals of an unknown payment (-want +got):\n%s", d)
	}
	for _, st := range []normalize.Status{normalize.StatusPending, normalize.StatusPending, normalize.StatusRequiresApproval} {
		mustCreate(t, s, refund("m1", "pay-1", 100, st), 10000)
	}
	done := refund("m1", "pay-1", 1000, normalize.StatusPending)
	mustCreate(t, s, done, 10000)
	moveTo(t, s, done, normalize.StatusSucceeded)
	mustCreate(t, s, refund("m1", "pay-2", 7, normalize.StatusPending), 10000)
	got, err = s.Totals(ctx, "acct-1", "pay-1")
	if err != nil {
		t.Fatalf("Totals: %v", err)
	}
	if d := diff(store.Totals{Succeeded: 1000, Pending: 200, Held: 100}, got); d != "" {
		t.Fatalf("Totals (-want +got):\n%s", d)
	}
}

func testPayments(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.GetPayment(ctx, "acct-1", "pay-1")
	wantErr(t, "GetPayment of an unknown payment", err, store.ErrNotFound)
	payments := []*store.Payment{
		{Provider: "acct-1", PaymentID: "pay-1", Currency: "ZAR", Captured: 10000, ExternalRefunded: 250,
			Livemode: true, CapturedAt: ptr(Base.Add(-time.Hour)), FetchedAt: Base},
		{Provider: "acct-2", PaymentID: "pay-1", Currency: "JPY", Captured: 500, FetchedAt: Base},
	}
	for _, p := range payments {
		if err := s.PutPayment(ctx, p); err != nil {
			t.Fatalf("PutPayment(%s/%s): %v", p.Provider, p.PaymentID, err)
		}
	}
	later := *payments[0]
	later.Captured, later.Livemode, later.FetchedAt = 1, false, Base.Add(time.Hour)
	if err := s.PutPayment(ctx, &later); err != nil {
		t.Fatalf("PutPayment again: %v", err)
	}
	for _, want := range payments {
		got, err := s.GetPayment(ctx, want.Provider, want.PaymentID)
		if err != nil {
			t.Fatalf("GetPayment(%s/%s): %v", want.Provider, want.PaymentID, err)
		}
		if d := diff(want, got); d != "" {
			t.Errorf("GetPayment(%s/%s): the first kept must win (-want +got):\n%s", want.Provider, want.PaymentID, d)
		}
	}
}

func testMarkEvent(t *testing.T, s store.Store) {
	ctx := context.Background()
	steps := []struct {
		provider, id string
		want         bool
	}{
		{"acct-1", "evt-1", false},
		{"acct-1", "evt-1", true},
		{"acct-2", "evt-1", false},
		{"acct-1", "evt-2", false},
		{"acct-2", "evt-1", true},
	}
	for i, st := range steps {
		seen, err := s.MarkEvent(ctx, st.provider, st.id, Base)
		if err != nil {
			t.Fatalf("step %d: MarkEvent(%s, %s): %v", i, st.provider, st.id, err)
		}
		if seen != st.want {
			t.Errorf("step %d: MarkEvent(%s, %s) = %v, want %v", i, st.provider, st.id, seen, st.want)
		}
	}
}

// testPurge: keys older than the cut are deleted once their refund is
// final; a refund still pending (or held) keeps its key whatever its age,
// so a merchant's retry can never create a second refund for it.
func testPurge(t *testing.T, s store.Store) {
	ctx := context.Background()
	var (
		keys    []store.IdempotencyRecord
		refunds []*normalize.Refund
	)
	for i := range 4 {
		r := refund("m1", "pay-1", 10, normalize.StatusPending)
		p := params(r, 10000)
		p.Key.CreatedAt = Base.Add(time.Duration(i) * time.Hour)
		if _, err := s.Create(ctx, p); err != nil {
			t.Fatalf("Create: %v", err)
		}
		keys = append(keys, p.Key)
		refunds = append(refunds, r)
	}
	moveTo(t, s, refunds[0], normalize.StatusSucceeded)
	n, err := s.PurgeIdempotency(ctx, Base.Add(2*time.Hour))
	if err != nil {
		t.Fatalf("PurgeIdempotency: %v", err)
	}
	if n != 1 {
		t.Errorf("PurgeIdempotency deleted %d records, want 1 (the old key of the succeeded refund)", n)
	}
	for i, k := range keys {
		_, err := s.GetIdempotency(ctx, k.MerchantID, k.Key)
		if i == 0 {
			wantErr(t, "GetIdempotency of the purged key", err, store.ErrNotFound)
			continue
		}
		if err != nil {
			t.Errorf("GetIdempotency of kept key %d: %v", i, err)
		}
	}
	moveTo(t, s, refunds[1], normalize.StatusFailed)
	if n, err := s.PurgeIdempotency(ctx, Base.Add(2*time.Hour)); err != nil || n != 1 {
		t.Errorf("PurgeIdempotency after the pending refund failed = %d, %v; want 1, nil", n, err)
	}
	if n, err := s.PurgeIdempotency(ctx, Base.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("PurgeIdempotency again = %d, %v; want 0, nil", n, err)
	}
	got, err := s.Totals(ctx, "acct-1", "pay-1")
	if err != nil || got.Pending != 20 || got.Succeeded != 10 {
		t.Errorf("Totals after purge = %+v, %v; refunds must stay", got, err)
	}
}
