package gateway

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/refundgate/refundgate/providers"
)

type breakerSettings struct {
	failures uint32
	openFor  time.Duration
	halfOpen uint32
}

// breaker guards one provider account. Only infrastructure failures
// (transport, timeout, 5xx, 429) count; declines are the provider working.
type breaker struct {
	cb       *gobreaker.CircuitBreaker[any]
	settings breakerSettings
}

// StateChange is called when an account's breaker changes state. It runs
// under the breaker's lock: it must not call back into the breaker.
type StateChange func(account string, from, to gobreaker.State)

// Breakers holds one breaker per account across configuration reloads.
type Breakers struct {
	mu       sync.Mutex
	byName   map[string]*breaker
	onChange StateChange
}

// NewBreakers returns an empty set; onChange may be nil.
func NewBreakers(onChange StateChange) *Breakers {
	return &Breakers{byName: map[string]*breaker{}, onChange: onChange}
}

// get returns the account's breaker, reusing the previous one unless its
// settings changed.
func (b *Breakers) get(name string, s breakerSettings) *breaker {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.byName[name]; ok && old.settings == s {
		return old
	}
	if s.failures == 0 {
		s.failures = 5
	}
	if s.openFor <= 0 {
		s.openFor = 30 * time.Second
	}
	if s.halfOpen == 0 {
		s.halfOpen = 1
	}
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: s.halfOpen,
		Timeout:     s.openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.failures },
		IsSuccessful: func(err error) bool {
			return !providers.Infrastructure(err)
		},
	}
	if b.onChange != nil {
		st.OnStateChange = func(name string, from, to gobreaker.State) { b.onChange(name, from, to) }
	}
	br := &breaker{cb: gobreaker.NewCircuitBreaker[any](st), settings: s}
	b.byName[name] = br
	return br
}

// open reports whether the breaker refuses calls now.
func (b *breaker) open() bool { return b.cb.State() == gobreaker.StateOpen }

// retryAfter is the Retry-After, in whole seconds, for a refused call.
func (b *breaker) retryAfter() int {
	return int(math.Ceil(b.settings.openFor.Seconds()))
}

// rejected reports whether err is the breaker refusing the call.
func rejected(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// StateName is the API's word for a breaker state.
func StateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return "open"
	case gobreaker.StateHalfOpen:
		return "half_open"
	}
	return "closed"
}

// BreakerState returns the API's word for the account's breaker state.
func (a *Account) BreakerState() string { return StateName(a.breaker.cb.State()) }
