package gateway

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

// TestBreakerStateChangesOutsideItsLock: the state-change callback runs
// after the call, outside gobreaker's lock (it may even read the breaker's
// state without deadlocking), once per change and in order; only
// infrastructure failures count, adapter refusals not at all.
func TestBreakerStateChangesOutsideItsLock(t *testing.T) {
	var br *breaker
	var got []string
	bs := NewBreakers(func(name string, from, to gobreaker.State) {
		// Under gobreaker's lock this would deadlock.
		got = append(got, fmt.Sprintf("%s:%s>%s(now %s)", name, StateName(from), StateName(to), StateName(br.cb.State())))
	})
	br = bs.get("acct", breakerSettings{failures: 2, openFor: time.Hour, halfOpen: 1})
	infra := &providers.Error{Outcome: providers.OutcomeUnknown, StatusCode: 503}
	declined := &providers.Error{Outcome: providers.OutcomeDeclined, StatusCode: 404}
	local := normalize.Errorf(normalize.CodeProviderLimitExceeded, "too many metadata pairs")
	call := func(err error) error {
		_, e := br.execute(func() (any, error) { return nil, err })
		return e
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		call(infra)
		call(declined) // a decline is a success: the count starts again
		call(infra)
		call(local) // not counted either way
		if s := br.state(); s != gobreaker.StateClosed {
			t.Errorf("state after infra, decline, infra, local refusal = %s, want closed", StateName(s))
		}
		call(infra)
		if !br.open() {
			t.Error("the breaker is not open after two infrastructure failures in a row")
		}
		if err := call(nil); !errors.Is(err, gobreaker.ErrOpenState) {
			t.Errorf("a call while open: %v, want ErrOpenState", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("deadlock: the state-change callback ran under the breaker's lock")
	}
	if want := "[acct:closed>open(now open)]"; fmt.Sprint(got) != want {
		t.Errorf("changes delivered = %v, want %s", got, want)
	}
}
