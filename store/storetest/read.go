package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

func testGetRefundScoped(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := refund("m1", "pay-1", 100, normalize.StatusPending)
	mustCreate(t, s, r, 1000)
	tests := []struct {
		merchant, id string
		wantErr      error
	}{
		{"m1", r.ID, nil},
		{"", r.ID, nil},
		{"m2", r.ID, store.ErrNotFound},
		{"m1", NewID(), store.ErrNotFound},
		{"", NewID(), store.ErrNotFound},
	}
	for _, tc := range tests {
		got, err := s.GetRefund(ctx, tc.merchant, tc.id)
		if tc.wantErr != nil {
			wantErr(t, "GetRefund("+tc.merchant+")", err, tc.wantErr)
			continue
		}
		if err != nil {
			t.Fatalf("GetRefund(%q, %s): %v", tc.merchant, tc.id, err)
		}
		if d := diff(r, got); d != "" {
			t.Errorf("GetRefund(%q) (-want +got):\n%s", tc.merchant, d)
		}
	}
}

// listFixture stores, oldest first, refunds of m1 across payments,
// accounts and states, one minute apart, plus refunds of m2 in between.
func listFixture(t *testing.T, s store.Store) []*normalize.Refund {
	t.Helper()
	specs := []struct {
		pay, provider string
		status        normalize.Status
	}{
		{"pay-1", "acct-1", normalize.StatusPending},
		{"pay-1", "acct-1", normalize.StatusSucceeded},
		{"pay-2", "acct-1", normalize.StatusRequiresApproval},
		{"pay-2", "acct-2", normalize.StatusPending},
		{"pay-3", "acct-2", normalize.StatusFailed},
		{"pay-1", "acct-2", normalize.StatusSucceeded},
	}
	var m1 []*normalize.Refund
	for i, sp := range specs {
		start := normalize.StatusPending
		if sp.status == normalize.StatusRequiresApproval {
			start = sp.status
		}
		r := refund("m1", sp.pay, 100, start)
		r.Provider = sp.provider
		r.CreatedAt = Base.Add(time.Duration(i) * time.Minute)
		r.UpdatedAt = r.CreatedAt
		mustCreate(t, s, r, 100000)
		if sp.status != start {
			moveTo(t, s, r, sp.status)
		}
		m1 = append(m1, r)
		other := refund("m2", sp.pay, 100, normalize.StatusPending)
		other.Provider = sp.provider
		other.CreatedAt = r.CreatedAt
		mustCreate(t, s, other, 100000)
	}
	return m1
}

func testListRefunds(t *testing.T, s store.Store) {
	ctx := context.Background()
	rs := listFixture(t, s)
	ids := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, rs[i].ID)
		}
		return out
	}
	tests := []struct {
		name     string
		q        store.ListQuery
		want     []string
		wantMore bool
	}{
		{"all", store.ListQuery{}, ids(5, 4, 3, 2, 1, 0), false},
		{"payment", store.ListQuery{PaymentID: "pay-1"}, ids(5, 1, 0), false},
		{"provider", store.ListQuery{Provider: "acct-2"}, ids(5, 4, 3), false},
		{"payment and provider", store.ListQuery{PaymentID: "pay-1", Provider: "acct-1"}, ids(1, 0), false},
		{"status", store.ListQuery{Status: normalize.StatusSucceeded}, ids(5, 1), false},
		{"created_gte", store.ListQuery{CreatedGTE: ptr(Base.Add(3 * time.Minute))}, ids(5, 4, 3), false},
		{"created_lt", store.ListQuery{CreatedLT: ptr(Base.Add(2 * time.Minute))}, ids(1, 0), false},
		{"created range", store.ListQuery{CreatedGTE: ptr(Base.Add(time.Minute)), CreatedLT: ptr(Base.Add(4 * time.Minute))}, ids(3, 2, 1), false},
		{"limit", store.ListQuery{Limit: 2}, ids(5, 4), true},
		{"limit exact", store.ListQuery{Limit: 6}, ids(5, 4, 3, 2, 1, 0), false},
		{"starting_after", store.ListQuery{StartingAfter: rs[3].ID, Limit: 2}, ids(2, 1), true},
		{"starting_after last page", store.ListQuery{StartingAfter: rs[2].ID, Limit: 2}, ids(1, 0), false},
		{"filter and cursor", store.ListQuery{PaymentID: "pay-1", StartingAfter: rs[5].ID, Limit: 1}, ids(1), true},
		{"no match", store.ListQuery{Status: normalize.StatusCanceled}, ids(), false},
		{"unknown payment", store.ListQuery{PaymentID: "nope"}, ids(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.MerchantID = "m1"
			got, more, err := s.ListRefunds(ctx, tc.q)
			if err != nil {
				t.Fatalf("ListRefunds: %v", err)
			}
			gotIDs := []string{}
			for _, r := range got {
				gotIDs = append(gotIDs, r.ID)
				if r.MerchantID != "m1" {
					t.Errorf("ListRefunds returned refund %s of merchant %q", r.ID, r.MerchantID)
				}
			}
			if d := diff(tc.want, gotIDs); d != "" {
				t.Errorf("ListRefunds ids (-want +got):\n%s", d)
			}
			if more != tc.wantMore {
				t.Errorf("ListRefunds hasMore = %v, want %v", more, tc.wantMore)
			}
		})
	}
	got, _, err := s.ListRefunds(ctx, store.ListQuery{MerchantID: "m1", PaymentID: "pay-1", Provider: "acct-1"})
	if err != nil {
		t.Fatalf("ListRefunds: %v", err)
	}
	if d := diff([]*normalize.Refund{rs[1], rs[0]}, got); d != "" {
		t.Errorf("ListRefunds whole refunds (-want +got):\n%s", d)
	}
	got, more, err := s.ListRefunds(ctx, store.ListQuery{MerchantID: "m3"})
	if err != nil || len(got) != 0 || more {
		t.Errorf("ListRefunds of a merchant with none = %d refunds, %v, %v", len(got), more, err)
	}
}

func testListPagination(t *testing.T, s store.Store) {
	ctx := context.Background()
	var want []string
	for range 25 {
		r := refund("m1", "pay-1", 1, normalize.StatusPending)
		mustCreate(t, s, r, 1000)
		want = append([]string{r.ID}, want...)
		mustCreate(t, s, refund("m2", "pay-1", 1, normalize.StatusPending), 1000)
	}
	var got []string
	q := store.ListQuery{MerchantID: "m1", Limit: 7}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page, more, err := s.ListRefunds(ctx, q)
		if err != nil {
			t.Fatalf("ListRefunds: %v", err)
		}
		for _, r := range page {
			got = append(got, r.ID)
		}
		if !more {
			break
		}
		q.StartingAfter = page[len(page)-1].ID
	}
	if d := diff(want, got); d != "" {
		t.Errorf("paging through all refunds (-want +got):\n%s", d)
	}
	page, _, err := s.ListRefunds(ctx, store.ListQuery{MerchantID: "m1"})
	if err != nil || len(page) != 20 {
		t.Errorf("ListRefunds without a limit = %d refunds, %v; want the default 20", len(page), err)
	}
}

func testGetIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.GetIdempotency(ctx, "m1", "nope")
	wantErr(t, "GetIdempotency of an unknown key", err, store.ErrNotFound)
	r := refund("m1", "pay-1", 1, normalize.StatusPending)
	p := params(r, 1000)
	if _, err := s.Create(ctx, p); err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, err = s.GetIdempotency(ctx, "m2", p.Key.Key)
	wantErr(t, "GetIdempotency of another merchant's key", err, store.ErrNotFound)
}

func testFindByProviderRefund(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := refund("m1", "pay-1", 1, normalize.StatusPending)
	mustCreate(t, s, r, 1000)
	mustCreate(t, s, refund("m1", "pay-1", 1, normalize.StatusPending), 1000)
	r.ProviderRefundID = ptr("rfd_42")
	moveTo(t, s, r, normalize.StatusPending)
	got, err := s.FindByProviderRefund(ctx, "acct-1", "rfd_42")
	if err != nil {
		t.Fatalf("FindByProviderRefund: %v", err)
	}
	if d := diff(r, got); d != "" {
		t.Errorf("FindByProviderRefund (-want +got):\n%s", d)
	}
	_, err = s.FindByProviderRefund(ctx, "acct-2", "rfd_42")
	wantErr(t, "FindByProviderRefund on another account", err, store.ErrNotFound)
	_, err = s.FindByProviderRefund(ctx, "acct-1", "rfd_43")
	wantErr(t, "FindByProviderRefund of an unknown id", err, store.ErrNotFound)
}

func testDuePending(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := Base.Add(time.Hour)
	mk := func(status normalize.Status, next *time.Time) *normalize.Refund {
		start := normalize.StatusPending
		if status == normalize.StatusRequiresApproval {
			start = status
		}
		r := refund("m1", "pay-1", 1, start)
		mustCreate(t, s, r, 100000)
		r.NextSyncAt = next
		moveTo(t, s, r, status)
		return r
	}
	late := mk(normalize.StatusPending, ptr(now.Add(-time.Minute)))
	exact := mk(normalize.StatusPending, ptr(now))
	oldest := mk(normalize.StatusPending, ptr(now.Add(-time.Hour)))
	mk(normalize.StatusPending, ptr(now.Add(time.Microsecond)))
	mk(normalize.StatusPending, nil)
	mk(normalize.StatusSucceeded, ptr(now.Add(-2*time.Hour)))
	mk(normalize.StatusRequiresApproval, ptr(now.Add(-2*time.Hour)))
	tests := []struct {
		limit int
		want  []*normalize.Refund
	}{
		{10, []*normalize.Refund{oldest, late, exact}},
		{2, []*normalize.Refund{oldest, late}},
	}
	for _, tc := range tests {
		got, err := s.DuePending(ctx, now, tc.limit)
		if err != nil {
			t.Fatalf("DuePending: %v", err)
		}
		if d := diff(tc.want, got); d != "" {
			t.Errorf("DuePending(limit %d) (-want +got):\n%s", tc.limit, d)
		}
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	full := func() *normalize.Refund {
		r := refund("m1", "pay-1", 1234, normalize.StatusPending)
		r.ProviderType = "checkoutcom"
		r.ProviderRefundID = ptr("rfd_1")
		r.ProviderStatus = ptr("Pending")
		r.Reason = normalize.ReasonFraudulent
		r.Description = ptr("broken on arrival — ünïcode")
		r.Reference = ptr("ORDER-1042")
		r.Metadata = map[string]string{"order": "1042", "quote": `"x"`, "": "empty key"}
		r.LineItems = []normalize.LineItem{{ID: "sku-1", Amount: ptr(int64(1000)), Quantity: ptr(int64(2))}, {ID: "sku-2"}, {ID: "sku-3", Quantity: ptr(int64(0))}}
		r.Livemode = true
		r.NeedsAttention = true
		r.Attempts = 7
		r.NextSyncAt = ptr(Base.Add(time.Minute))
		r.SentAt = ptr(Base.Add(time.Second))
		r.CreatedAt = Base.In(time.FixedZone("SAST", 2*60*60))
		r.UpdatedAt = Base.Add(time.Nanosecond)
		return r
	}
	tests := []struct {
		name string
		r    *normalize.Refund
	}{
		{"minimal, nil everywhere", refund("m1", "pay-1", 1, normalize.StatusPending)},
		{"empty map and slice", func() *normalize.Refund {
			r := refund("m1", "pay-1", 1, normalize.StatusRequiresApproval)
			r.Metadata, r.LineItems = map[string]string{}, []normalize.LineItem{}
			r.Description, r.Reference = ptr(""), ptr("")
			return r
		}()},
		{"every field", full()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustCreate(t, s, tc.r, 100000)
			if d := diff(tc.r, mustGet(t, s, tc.r.ID)); d != "" {
				t.Errorf("after Create (-want +got):\n%s", d)
			}
		})
	}
	// Every mutable field changes in one update, set to unset and back.
	a, b := full(), refund("m1", "pay-1", 2, normalize.StatusPending)
	mustCreate(t, s, a, 100000)
	mustCreate(t, s, b, 100000)
	// The amount and currency are Create's and stay as they were.
	a2 := *b
	a2.ID, a2.Status = a.ID, normalize.StatusFailed
	a2.ProviderType = a.ProviderType
	a2.CreatedAt = a.CreatedAt
	a2.Failure = &normalize.Failure{Code: "refund_declined", Message: "declined", ProviderCode: "20051", ProviderMessage: "Insufficient funds"}
	b2 := full()
	b2.ID, b2.Status, b2.CreatedAt = b.ID, normalize.StatusSucceeded, b.CreatedAt
	b2.ProviderType = b.ProviderType
	for _, u := range []struct{ to, orig *normalize.Refund }{{&a2, a}, {b2, b}} {
		if err := s.UpdateRefund(ctx, u.to, normalize.StatusPending, nil); err != nil {
			t.Fatalf("UpdateRefund: %v", err)
		}
		want := *u.to
		want.Amount, want.Currency = u.orig.Amount, u.orig.Currency
		if d := diff(&want, mustGet(t, s, u.to.ID)); d != "" {
			t.Errorf("after UpdateRefund (-want +got):\n%s", d)
		}
	}
}
