package gateway

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/refundgate/refundgate/normalize"
	"github.com/refundgate/refundgate/providers"
)

type breakerSettings struct {
	failures uint32
	openFor  time.Duration
	halfOpen uint32
}

// breaker guards one provider account. Only infrastructure failures
// (transport, timeout, 5xx, 429) count; declines are the provider working,
// and a refusal of the adapter before any request, or a cancelled call,
// says nothing of the provider and is not counted at all.
//
// gobreaker calls OnStateChange under its own lock, so the breaker only
// queues the change there; whoever called into the breaker (execute, open,
// state) delivers it after the call, outside that lock.
type breaker struct {
	cb       *gobreaker.CircuitBreaker[any]
	settings breakerSettings
	onChange StateChange

	mu      sync.Mutex // guards pending
	pending []stateChange
	// deliver keeps deliveries in the order of the changes.
	deliver sync.Mutex
}

type stateChange struct {
	name     string
	from, to gobreaker.State
}

// StateChange is told when an account's breaker changed state. It is
// called outside the breaker's lock, by the goroutine whose call caused the
// change, after that call; it may log and set metrics, and should be quick.
type StateChange func(account string, from, to gobreaker.State)

// LogStateChanges is the usual StateChange: one warning log line per change
// and, when m is set, the refundgate_breaker_open gauge.
func LogStateChanges(log *zap.Logger, m *Metrics) StateChange {
	if log == nil {
		log = zap.NewNop()
	}
	return func(name string, from, to gobreaker.State) {
		log.Warn("circuit breaker changed state", zap.String("provider", name),
			zap.String("from", StateName(from)), zap.String("to", StateName(to)))
		if m != nil {
			v := map[gobreaker.State]float64{gobreaker.StateClosed: 0, gobreaker.StateHalfOpen: 0.5, gobreaker.StateOpen: 1}[to]
			m.BreakerState.WithLabelValues(name).Set(v)
		}
	}
}

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
	br := &breaker{settings: s, onChange: b.onChange}
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: s.halfOpen,
		Timeout:     s.openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= s.failures },
		IsSuccessful: func(err error) bool {
			return !providers.Infrastructure(err)
		},
		IsExcluded: notCounted,
		// Under gobreaker's lock: queue the change, nothing more.
		OnStateChange: func(name string, from, to gobreaker.State) {
			br.mu.Lock()
			br.pending = append(br.pending, stateChange{name, from, to})
			br.mu.Unlock()
		},
	}
	br.cb = gobreaker.NewCircuitBreaker[any](st)
	b.byName[name] = br
	return br
}

// notCounted says which errors tell the breaker nothing about the
// provider: a refusal of the adapter before any request, and a call the
// gateway itself cancelled.
func notCounted(err error) bool {
	var ne *normalize.Error
	var pe *providers.Error
	if errors.As(err, &ne) && !errors.As(err, &pe) {
		return true
	}
	return errors.Is(err, context.Canceled)
}

// execute runs f through the breaker and then reports any state change.
func (b *breaker) execute(f func() (any, error)) (any, error) {
	v, err := b.cb.Execute(f)
	b.flush()
	return v, err
}

// state is the breaker's state now (reading it may move open to half open).
func (b *breaker) state() gobreaker.State {
	st := b.cb.State()
	b.flush()
	return st
}

// flush delivers queued state changes, outside gobreaker's lock.
func (b *breaker) flush() {
	b.mu.Lock()
	none := len(b.pending) == 0
	b.mu.Unlock()
	if none {
		return
	}
	b.deliver.Lock()
	defer b.deliver.Unlock()
	b.mu.Lock()
	changes := b.pending
	b.pending = nil
	b.mu.Unlock()
	if b.onChange == nil {
		return
	}
	for _, c := range changes {
		b.onChange(c.name, c.from, c.to)
	}
}

// open reports whether the breaker refuses calls now.
func (b *breaker) open() bool { return b.state() == gobreaker.StateOpen }

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
func (a *Account) BreakerState() string { return StateName(a.breaker.state()) }
