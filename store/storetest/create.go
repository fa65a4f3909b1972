package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

func testCreateInserts(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := refund("m1", "pay-1", 500, normalize.StatusPending)
	p := params(r, 1000)
	existing, err := s.Create(ctx, p)
	if err != nil || existing != nil {
		t.Fatalf("Create = %+v, %v; want nil, nil", existing, err)
	}
	if d := diff(r, mustGet(t, s, r.ID)); d != "" {
		t.Errorf("GetRefund after Create (-want +got):\n%s", d)
	}
	want := p.Key
	want.RefundID = r.ID
	got, err := s.GetIdempotency(ctx, "m1", p.Key.Key)
	if err != nil {
		t.Fatalf("GetIdempotency: %v", err)
	}
	if d := diff(&want, got); d != "" {
		t.Errorf("GetIdempotency after Create (-want +got):\n%s", d)
	}
}

func testCreateSameKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := refund("m1", "pay-1", 600, normalize.StatusPending)
	p := params(first, 1000)
	if _, err := s.Create(ctx, p); err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := p.Key
	want.RefundID = first.ID
	// The second would exceed the ledger: the key's record still wins.
	second := refund("m1", "pay-1", 600, normalize.StatusPending)
	p2 := p
	p2.Refund = second
	p2.Key.RequestHash = "another-body"
	existing, err := s.Create(ctx, p2)
	if err != nil {
		t.Fatalf("Create with a bound key: %v", err)
	}
	if d := diff(&want, existing); d != "" {
		t.Errorf("Create with a bound key: existing record (-want +got):\n%s", d)
	}
	_, err = s.GetRefund(ctx, "", second.ID)
	wantErr(t, "GetRefund of the refund of a replayed key", err, store.ErrNotFound)
	tot, err := s.Totals(ctx, "acct-1", "pay-1")
	if err != nil || tot.Pending != 600 {
		t.Errorf("Totals = %+v, %v; want 600 pending", tot, err)
	}
}

func testCreateKeyPerMerchant(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, m := range []string{"m1", "m2"} {
		r := refund(m, "pay-"+m, 100, normalize.StatusPending)
		p := params(r, 1000)
		p.Key.Key = "shared-key"
		existing, err := s.Create(ctx, p)
		if err != nil || existing != nil {
			t.Fatalf("Create for %s = %+v, %v; want nil, nil", m, existing, err)
		}
		got, err := s.GetIdempotency(ctx, m, "shared-key")
		if err != nil || got.RefundID != r.ID {
			t.Fatalf("GetIdempotency(%s) = %+v, %v; want refund %s", m, got, err, r.ID)
		}
	}
}

// ledgerSetup is the payment every ledger case starts from: 2000
// succeeded, 1000 pending, 3000 held, plus failed and canceled refunds the
// ledger does not count. 4000 of the limit of 10000 is left.
// testCreateKeepsPayment: facts given with a Create are kept with the
// refund, facts kept first win and set the limit, and a refused Create
// keeps none.
func testCreateKeepsPayment(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := &store.Payment{Provider: "acct-1", PaymentID: "pay-new", Currency: "ZAR", Captured: 1000,
		ExternalRefunded: 100, CapturedAt: ptr(Base.Add(-time.Hour)), FetchedAt: Base}
	p := params(refund("m1", "pay-new", 600, normalize.StatusPending), 0)
	p.Payment = first
	if existing, err := s.Create(ctx, p); err != nil || existing != nil {
		t.Fatalf("Create with the payment's facts = %+v, %v; want nil, nil", existing, err)
	}
	got, err := s.GetPayment(ctx, "acct-1", "pay-new")
	if err != nil {
		t.Fatalf("GetPayment after Create: %v", err)
	}
	if d := diff(first, got); d != "" {
		t.Errorf("GetPayment after Create (-want +got):\n%s", d)
	}
	// Other facts for the same payment, with room for 600 more: the kept
	// ones (900, of which 600 reserved) refuse it.
	other := *first
	other.Captured, other.ExternalRefunded = 5000, 0
	p2 := params(refund("m1", "pay-new", 600, normalize.StatusPending), 5000)
	p2.Payment = &other
	_, err = s.Create(ctx, p2)
	wantErr(t, "Create beyond the kept facts' limit", err, store.ErrExceedsRefundable)
	if got, err := s.GetPayment(ctx, "acct-1", "pay-new"); err != nil || got.Captured != 1000 {
		t.Errorf("GetPayment after a second Create = %+v, %v; want the first facts (captured 1000)", got, err)
	}
	// The rest (300) still fits under the kept facts.
	p3 := params(refund("m1", "pay-new", 300, normalize.StatusPending), 5000)
	p3.Payment = &other
	if _, err := s.Create(ctx, p3); err != nil {
		t.Errorf("Create of the rest under the kept facts: %v", err)
	}

	small := &store.Payment{Provider: "acct-1", PaymentID: "pay-small", Currency: "ZAR", Captured: 100, FetchedAt: Base}
	refused := params(refund("m1", "pay-small", 500, normalize.StatusPending), 0)
	refused.Payment = small
	_, err = s.Create(ctx, refused)
	wantErr(t, "Create over a new payment's captured amount", err, store.ErrExceedsRefundable)
	_, err = s.GetPayment(ctx, "acct-1", "pay-small")
	wantErr(t, "GetPayment after a refused Create", err, store.ErrNotFound)
	_, err = s.GetIdempotency(ctx, "m1", refused.Key.Key)
	wantErr(t, "GetIdempotency after a refused Create", err, store.ErrNotFound)
}

func ledgerSetup(t *testing.T, s store.Store) {
	t.Helper()
	const limit = 10000
	mustCreate(t, s, refund("m1", "pay-1", 1000, normalize.StatusPending), limit)
	mustCreate(t, s, refund("m1", "pay-1", 3000, normalize.StatusRequiresApproval), limit)
	done := refund("m1", "pay-1", 2000, normalize.StatusPending)
	mustCreate(t, s, done, limit)
	moveTo(t, s, done, normalize.StatusSucceeded)
	failed := refund("m1", "pay-1", 2500, normalize.StatusPending)
	mustCreate(t, s, failed, limit)
	moveTo(t, s, failed, normalize.StatusFailed)
	canceled := refund("m1", "pay-1", 1500, normalize.StatusRequiresApproval)
	mustCreate(t, s, canceled, limit)
	moveTo(t, s, canceled, normalize.StatusCanceled)
	// Other payments, and the same payment id on another account, are
	// other ledgers.
	mustCreate(t, s, refund("m1", "pay-2", 9000, normalize.StatusPending), limit)
	other := refund("m1", "pay-1", 9000, normalize.StatusPending)
	other.Provider = "acct-2"
	mustCreate(t, s, other, limit)
}

func testLedger(t *testing.T, s store.Store) {
	seen := store.Totals{Succeeded: 2000, Pending: 1000, Held: 3000}
	tests := []struct {
		name       string
		amount     int64
		limit      int64
		takeRest   bool
		status     normalize.Status
		wantErr    error
		wantAmount int64
	}{
		{name: "fits", amount: 4000, limit: 10000, wantAmount: 4000},
		{name: "held fits", amount: 1, limit: 10000, status: normalize.StatusRequiresApproval, wantAmount: 1},
		{name: "exceeds", amount: 4001, limit: 10000, wantErr: store.ErrExceedsRefundable},
		{name: "exceeds held", amount: 4001, limit: 10000, status: normalize.StatusRequiresApproval, wantErr: store.ErrExceedsRefundable},
		{name: "fully refunded", amount: 1, limit: 6000, wantErr: store.ErrFullyRefunded},
		{name: "over refunded", amount: 1, limit: 5000, wantErr: store.ErrFullyRefunded},
		{name: "take rest", limit: 10000, takeRest: true, wantAmount: 4000},
		{name: "take rest ignores amount", amount: 9999, limit: 10000, takeRest: true, wantAmount: 4000},
		{name: "take rest of nothing", limit: 6000, takeRest: true, wantErr: store.ErrFullyRefunded},
	}
	ctx := context.Background()
	// The cases run in turn on one ledger; a case that inserts discards its
	// refund again.
	ledgerSetup(t, s)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status := tc.status
			if status == "" {
				status = normalize.StatusPending
			}
			r := refund("m1", "pay-1", tc.amount, status)
			p := params(r, tc.limit)
			p.TakeRest = tc.takeRest
			existing, err := s.Create(ctx, p)
			if existing != nil {
				t.Fatalf("Create: got existing %+v", existing)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				if r.Amount != tc.wantAmount {
					t.Errorf("Create: refund amount %d, want %d", r.Amount, tc.wantAmount)
				}
				if got := mustGet(t, s, r.ID); got.Amount != tc.wantAmount {
					t.Errorf("GetRefund: amount %d, want %d", got.Amount, tc.wantAmount)
				}
				// Undo, so every case sees the same ledger.
				if err := s.Discard(ctx, r.ID); err != nil {
					t.Fatalf("Discard: %v", err)
				}
				return
			}
			wantErr(t, "Create", err, tc.wantErr)
			var le *store.LedgerError
			if !errors.As(err, &le) {
				t.Fatalf("Create: error %v is no *store.LedgerError", err)
			}
			want := &store.LedgerError{Err: tc.wantErr, Reserved: seen.Reserved(), Limit: tc.limit}
			if d := diff(*want, *le); d != "" {
				t.Errorf("LedgerError (-want +got):\n%s", d)
			}
			_, err = s.GetRefund(ctx, "", r.ID)
			wantErr(t, "GetRefund of a refused refund", err, store.ErrNotFound)
			_, err = s.GetIdempotency(ctx, "m1", p.Key.Key)
			wantErr(t, "GetIdempotency of a refused refund's key", err, store.ErrNotFound)
		})
	}
	got, err := s.Totals(ctx, "acct-1", "pay-1")
	if err != nil {
		t.Fatalf("Totals: %v", err)
	}
	if d := diff(seen, got); d != "" {
		t.Errorf("Totals after the cases (-want +got):\n%s", d)
	}
}

func testLedgerConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n, amount, limit = 50, 300, 10000
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, over int
		others   []error
	)
	for range n {
		wg.Go(func() {
			_, err := s.Create(ctx, params(refund("m1", "pay-1", amount, normalize.StatusPending), limit))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrExceedsRefundable):
				over++
			default:
				others = append(others, err)
			}
		})
	}
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("unexpected errors: %v", others)
	}
	if ok != 33 || over != 17 {
		t.Errorf("%d created and %d refused, want 33 and 17", ok, over)
	}
	got, err := s.Totals(ctx, "acct-1", "pay-1")
	if err != nil {
		t.Fatalf("Totals: %v", err)
	}
	if d := diff(store.Totals{Pending: 9900}, got); d != "" {
		t.Errorf("Totals (-want +got):\n%s", d)
	}
}

func testSameKeyConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		inserted []string
		replays  []*store.IdempotencyRecord
		errs     []error
	)
	for range n {
		wg.Go(func() {
			r := refund("m1", "pay-1", 100, normalize.StatusPending)
			p := params(r, 10000)
			p.Key.Key = "the-key"
			existing, err := s.Create(ctx, p)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case existing == nil:
				inserted = append(inserted, r.ID)
			default:
				replays = append(replays, existing)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if len(inserted) != 1 || len(replays) != n-1 {
		t.Fatalf("%d inserted and %d replayed, want 1 and %d", len(inserted), len(replays), n-1)
	}
	for _, rec := range replays {
		if rec.RefundID != inserted[0] {
			t.Errorf("replayed record names refund %s, want %s", rec.RefundID, inserted[0])
		}
	}
	list, _, err := s.ListRefunds(ctx, store.ListQuery{MerchantID: "m1", Limit: 100})
	if err != nil {
		t.Fatalf("ListRefunds: %v", err)
	}
	if len(list) != 1 || list[0].ID != inserted[0] {
		t.Errorf("ListRefunds found %d refunds, want only %s", len(list), inserted[0])
	}
}
