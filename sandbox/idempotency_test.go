package sandbox

import (
	"testing"
	"time"
)

// TestIdemStoreBoundKeepsInFlightKeys checks the bound on kept keys: past
// it the oldest answered keys are forgotten, but a key whose first request
// is still in flight is kept (a second request still gets 409), and it is
// swept once it expires.
func TestIdemStoreBoundKeepsInFlightKeys(t *testing.T) {
	clock := newFakeClock()
	st := newIdemStore(clock.Now)
	st.max = 2
	fp := fingerprint("POST", "/x", []byte(`{}`))
	inflight, s := st.begin("a", fp)
	if s != idemNew {
		t.Fatalf("a: %v", s)
	}
	for _, k := range []string{"b", "c", "d"} {
		rec, s := st.begin(k, fp)
		if s != idemNew {
			t.Fatalf("%s: %v", k, s)
		}
		st.finish(k, rec, 200, []byte(k))
	}
	if _, s := st.begin("a", fp); s != idemInFlight {
		t.Errorf("in-flight key after the bound: %v, want in flight", s)
	}
	st.finish("a", inflight, 200, []byte("a"))
	// e pushes the bound again: a (answered now) is the oldest and goes.
	if _, s := st.begin("e", fp); s != idemNew {
		t.Fatalf("e: %v", s)
	}
	if _, s := st.begin("a", fp); s != idemNew {
		t.Errorf("a after eviction: %v, want new", s)
	}
	clock.Advance(idempotencyTTL + time.Second)
	st.begin("f", fp)
	st.mu.Lock()
	n := len(st.m)
	st.mu.Unlock()
	if n != 1 {
		t.Errorf("%d keys kept after 24h, want 1 (f)", n)
	}
}
