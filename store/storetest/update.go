package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/store"
)

func testUpdateRefund(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := refund("m1", "pay-1", 500, normalize.StatusPending)
	p := params(r, 1000)
	if _, err := s.Create(ctx, p); err != nil {
		t.Fatalf("Create: %v", err)
	}
	// A pending refund after its first attempt, answered 202.
	r.Attempts = 1
	r.SentAt = ptr(Base.Add(time.Second))
	r.NextSyncAt = ptr(Base.Add(time.Minute))
	r.UpdatedAt = Base.Add(2 * time.Second)
	first := &store.Answer{Status: 202, Body: []byte(`{"id":"first"}`)}
	if err := s.UpdateRefund(ctx, r, normalize.StatusPending, first); err != nil {
		t.Fatalf("UpdateRefund pending→pending: %v", err)
	}
	// Settled later; the answer already kept stays.
	r.Status = normalize.StatusSucceeded
	r.ProviderRefundID = ptr("rfd_1")
	r.ProviderStatus = ptr("successful")
	r.NextSyncAt = nil
	r.UpdatedAt = Base.Add(time.Hour)
	second := &store.Answer{Status: 201, Body: []byte(`{"id":"second"}`)}
	if err := s.UpdateRefund(ctx, r, normalize.StatusPending, second); err != nil {
		t.Fatalf("UpdateRefund pending→succeeded: %v", err)
	}
	if d := diff(r, mustGet(t, s, r.ID)); d != "" {
		t.Errorf("GetRefund after UpdateRefund (-want +got):\n%s", d)
	}
	want := p.Key
	want.RefundID = r.ID
	want.Answer = first
	got, err := s.GetIdempotency(ctx, "m1", p.Key.Key)
	if err != nil {
		t.Fatalf("GetIdempotency: %v", err)
	}
	if d := diff(&want, got); d != "" {
		t.Errorf("GetIdempotency: the first answer must stay (-want +got):\n%s", d)
	}

	// An answer stored on a record that has none, with an empty body.
	r2 := refund("m1", "pay-1", 100, normalize.StatusRequiresApproval)
	p2 := params(r2, 1000)
	if _, err := s.Create(ctx, p2); err != nil {
		t.Fatalf("Create: %v", err)
	}
	r2.Status = normalize.StatusCanceled
	if err := s.UpdateRefund(ctx, r2, normalize.StatusRequiresApproval, &store.Answer{Status: 204, Body: []byte{}}); err != nil {
		t.Fatalf("UpdateRefund: %v", err)
	}
	got, err = s.GetIdempotency(ctx, "m1", p2.Key.Key)
	if err != nil {
		t.Fatalf("GetIdempotency: %v", err)
	}
	if d := diff(&store.Answer{Status: 204, Body: []byte{}}, got.Answer); d != "" {
		t.Errorf("GetIdempotency answer (-want +got):\n%s", d)
	}
}

func testUpdateStateChanged(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := refund("m1", "pay-1", 500, normalize.StatusRequiresApproval)
	p := params(r, 1000)
	if _, err := s.Create(ctx, p); err != nil {
		t.Fatalf("Create: %v", err)
	}
	stored := *r
	changed := *r
	changed.Status = normalize.StatusSucceeded
	changed.Attempts = 3
	err := s.UpdateRefund(ctx, &changed, normalize.StatusPending, &store.Answer{Status: 201, Body: []byte("x")})
	wantErr(t, "UpdateRefund from the wrong state", err, store.ErrStateChanged)
	if d := diff(&stored, mustGet(t, s, r.ID)); d != "" {
		t.Errorf("a refused update changed the refund (-want +got):\n%s", d)
	}
	rec, err := s.GetIdempotency(ctx, "m1", p.Key.Key)
	if err != nil || rec.Answer != nil {
		t.Errorf("a refused update stored an answer: %+v, %v", rec, err)
	}
	missing := refund("m1", "pay-1", 1, normalize.StatusPending)
	err = s.UpdateRefund(ctx, missing, normalize.StatusPending, nil)
	wantErr(t, "UpdateRefund of a missing refund", err, store.ErrNotFound)
}

func testTerminalStatesStay(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, terminal := range []normalize.Status{normalize.StatusSucceeded, normalize.StatusFailed, normalize.StatusCanceled} {
		t.Run(string(terminal), func(t *testing.T) {
			start := normalize.StatusPending
			if terminal == normalize.StatusCanceled {
				start = normalize.StatusRequiresApproval
			}
			r := refund("m1", "pay-"+string(terminal), 500, start)
			mustCreate(t, s, r, 1000)
			moveTo(t, s, r, terminal)
			stored := *r
			for _, next := range []normalize.Status{normalize.StatusPending, normalize.StatusSucceeded, normalize.StatusFailed, normalize.StatusCanceled} {
				if next == terminal {
					continue
				}
				c := *r
				c.Status = next
				for _, from := range []normalize.Status{start, terminal} {
					err := s.UpdateRefund(ctx, &c, from, nil)
					wantErr(t, "UpdateRefund "+string(from)+"→"+string(next), err, store.ErrStateChanged)
				}
			}
			if d := diff(&stored, mustGet(t, s, r.ID)); d != "" {
				t.Errorf("terminal refund changed (-want +got):\n%s", d)
			}
			// The same state with new facts is no transition.
			r.NeedsAttention = true
			r.ProviderStatus = ptr("reversed")
			if err := s.UpdateRefund(ctx, r, terminal, nil); err != nil {
				t.Fatalf("UpdateRefund %s→%s: %v", terminal, terminal, err)
			}
			if d := diff(r, mustGet(t, s, r.ID)); d != "" {
				t.Errorf("GetRefund (-want +got):\n%s", d)
			}
		})
	}
}

func testDiscard(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := refund("m1", "pay-1", 1000, normalize.StatusPending)
	p := params(r, 1000)
	if _, err := s.Create(ctx, p); err != nil {
		t.Fatalf("Create: %v", err)
	}
	keep := refund("m1", "pay-2", 10, normalize.StatusPending)
	mustCreate(t, s, keep, 1000)
	if err := s.Discard(ctx, r.ID); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	_, err := s.GetRefund(ctx, "", r.ID)
	wantErr(t, "GetRefund of a discarded refund", err, store.ErrNotFound)
	_, err = s.GetIdempotency(ctx, "m1", p.Key.Key)
	wantErr(t, "GetIdempotency of a discarded refund's key", err, store.ErrNotFound)
	wantErr(t, "Discard again", s.Discard(ctx, r.ID), store.ErrNotFound)
	mustGet(t, s, keep.ID)

	// The key binds again, and the ledger has room again.
	again := refund("m1", "pay-1", 1000, normalize.StatusPending)
	p.Refund = again
	existing, err := s.Create(ctx, p)
	if err != nil || existing != nil {
		t.Fatalf("Create with the freed key = %+v, %v; want nil, nil", existing, err)
	}
	rec, err := s.GetIdempotency(ctx, "m1", p.Key.Key)
	if err != nil || rec.RefundID != again.ID {
		t.Fatalf("GetIdempotency = %+v, %v; want refund %s", rec, err, again.ID)
	}
}
