package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Fault modes. Latency delays every request of a provider's API; the others
// act on refund-creating POSTs only.
const (
	// FaultLatency adds LatencyMS to requests: with probability Rate, or to
	// every request when Rate is 0.
	FaultLatency = "latency"
	// FaultError500 answers 500 without applying the refund.
	FaultError500 = "error_500"
	// FaultHang holds the request without answering until the client gives
	// up (its context ends) or the sandbox closes; nothing is applied.
	FaultHang = "hang"
	// FaultApplyThen500 applies the refund, then answers 500.
	FaultApplyThen500 = "apply_then_500"
	// FaultApplyThenDrop applies the refund, then closes the connection
	// without answering.
	FaultApplyThenDrop = "apply_then_drop"
)

// faultOrder is the order in which refund faults are drawn; the first hit
// wins.
var faultOrder = []string{FaultError500, FaultHang, FaultApplyThen500, FaultApplyThenDrop}

// Fault is one fault setting of one provider. Rate is in [0,1]: 1 hits every
// refund-creating request, 0 none. LatencyMS, when positive, also sets the
// provider's added latency (applied to every request) whatever the mode.
type Fault struct {
	Provider  string  `json:"provider"`
	Mode      string  `json:"mode"`
	Rate      float64 `json:"rate"`
	LatencyMS int     `json:"latency_ms"`
}

type providerFaults struct {
	latencyMS   int
	latencyRate float64
	rates       map[string]float64
}

type faultTable struct {
	mu sync.RWMutex
	m  map[string]*providerFaults
}

func newFaultTable() *faultTable { return &faultTable{m: map[string]*providerFaults{}} }

func knownProvider(p string) bool {
	return p == ProviderYoco || p == ProviderCheckoutCom || p == ProviderSmartpay
}

// SetFault sets one fault of one provider, replacing an earlier setting of
// the same mode. Rate 0 for a refund mode removes that mode.
func (s *Sandbox) SetFault(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	t := s.faults
	t.mu.Lock()
	defer t.mu.Unlock()
	pf := t.m[f.Provider]
	if pf == nil {
		pf = &providerFaults{rates: map[string]float64{}}
		t.m[f.Provider] = pf
	}
	if f.LatencyMS > 0 || f.Mode == FaultLatency {
		pf.latencyMS = f.LatencyMS
		pf.latencyRate = 1
		if f.Mode == FaultLatency && f.Rate > 0 {
			pf.latencyRate = f.Rate
		}
	}
	if f.Mode != "" && f.Mode != FaultLatency {
		if f.Rate == 0 {
			delete(pf.rates, f.Mode)
		} else {
			pf.rates[f.Mode] = f.Rate
		}
	}
	return nil
}

func (f Fault) validate() error {
	if !knownProvider(f.Provider) {
		return fmt.Errorf("unknown provider %q", f.Provider)
	}
	if f.Rate < 0 || f.Rate > 1 || f.Rate != f.Rate {
		return errors.New("rate must be in [0,1]")
	}
	if f.LatencyMS < 0 {
		return errors.New("latency_ms must not be negative")
	}
	switch f.Mode {
	case "", FaultLatency, FaultError500, FaultHang, FaultApplyThen500, FaultApplyThenDrop:
	default:
		return fmt.Errorf("unknown mode %q (want latency, error_500, hang, apply_then_500 or apply_then_drop)", f.Mode)
	}
	if (f.Mode == "" || f.Mode == FaultLatency) && f.LatencyMS == 0 && f.Rate == 0 {
		return errors.New("latency needs latency_ms")
	}
	return nil
}

// ClearFaults removes the faults of one provider, or of all when provider is
// "".
func (s *Sandbox) ClearFaults(provider string) {
	t := s.faults
	t.mu.Lock()
	defer t.mu.Unlock()
	if provider == "" {
		clear(t.m)
		return
	}
	delete(t.m, provider)
}

// Faults returns the current fault settings, one per provider and mode.
func (s *Sandbox) Faults() []Fault {
	t := s.faults
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Fault
	for _, p := range []string{ProviderYoco, ProviderCheckoutCom, ProviderSmartpay} {
		pf := t.m[p]
		if pf == nil {
			continue
		}
		if pf.latencyMS > 0 {
			out = append(out, Fault{Provider: p, Mode: FaultLatency, Rate: pf.latencyRate, LatencyMS: pf.latencyMS})
		}
		for _, m := range faultOrder {
			if r, ok := pf.rates[m]; ok {
				out = append(out, Fault{Provider: p, Mode: m, Rate: r})
			}
		}
	}
	return out
}

// latency returns the delay to add to one request of provider.
func (s *Sandbox) latency(provider string) time.Duration {
	t := s.faults
	t.mu.RLock()
	pf := t.m[provider]
	var ms int
	var rate float64
	if pf != nil {
		ms, rate = pf.latencyMS, pf.latencyRate
	}
	t.mu.RUnlock()
	if ms <= 0 || !s.chance(rate) {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// pickFault draws the refund fault for one refund-creating request, "" for
// none.
func (s *Sandbox) pickFault(provider string) string {
	t := s.faults
	t.mu.RLock()
	pf := t.m[provider]
	if pf == nil || len(pf.rates) == 0 {
		t.mu.RUnlock()
		return ""
	}
	var rates [4]float64
	for i, m := range faultOrder {
		rates[i] = pf.rates[m]
	}
	t.mu.RUnlock()
	for i, m := range faultOrder {
		if s.chance(rates[i]) {
			return m
		}
	}
	return ""
}

// withLatency wraps a provider API handler with the provider's added latency.
func (s *Sandbox) withLatency(provider string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d := s.latency(provider); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		h(w, r)
	}
}

// outcome is the answer a refund-creating request computed.
type outcome struct {
	status int
	body   []byte
	// bind says whether an idempotency key binds to this answer: only
	// applied refunds bind; refusals release the key.
	bind bool
}

// refundCall describes one authenticated refund-creating POST.
type refundCall struct {
	provider string
	// idemScope is "" when the provider has no idempotency or the request
	// carries no key; otherwise it scopes the key (provider and secret key).
	idemScope string
	idemKey   string
	body      []byte
	// apply validates and applies the refund.
	apply func() outcome
	// serverError is the provider's 500 body.
	serverError []byte
}

// serveRefund runs a refund-creating request through faults and
// idempotency and writes the answer.
func (s *Sandbox) serveRefund(w http.ResponseWriter, r *http.Request, c refundCall) {
	fault := s.pickFault(c.provider)
	switch fault {
	case FaultError500:
		writeRaw(w, http.StatusInternalServerError, c.serverError)
		return
	case FaultHang:
		s.hanging.Add(1)
		defer s.hanging.Add(-1)
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
			writeRaw(w, http.StatusServiceUnavailable, c.serverError)
		}
		return
	}
	var out outcome
	if c.idemScope != "" {
		fp := fingerprint(r.Method, r.URL.Path, c.body)
		key := c.idemScope + "\x00" + c.idemKey
		rec, st := s.idem().begin(key, fp)
		switch st {
		case idemInFlight:
			writeRaw(w, http.StatusConflict, idemConflictBody(c.provider))
			return
		case idemMismatch:
			writeRaw(w, http.StatusUnprocessableEntity, idemMismatchBody(c.provider))
			return
		case idemReplay:
			w.Header().Set("Idempotent-Replayed", "true")
			writeRaw(w, rec.status, rec.body)
			return
		}
		s.runBeforeApply()
		out = c.apply()
		if out.bind {
			s.idem().finish(key, rec, out.status, out.body)
		} else {
			s.idem().release(key, rec)
		}
	} else {
		s.runBeforeApply()
		out = c.apply()
	}
	switch fault {
	case FaultApplyThen500:
		writeRaw(w, http.StatusInternalServerError, c.serverError)
		return
	case FaultApplyThenDrop:
		dropConnection(w)
		return
	}
	writeRaw(w, out.status, out.body)
}

// dropConnection closes the client connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// runBeforeApply runs the test hook set in beforeApply, if any.
func (s *Sandbox) runBeforeApply() {
	if h := s.beforeApply.Load(); h != nil {
		(*h)()
	}
}
