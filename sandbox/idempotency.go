package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// idempotencyTTL is how long an idempotency key is kept (both Yoco and
// Smartpay keep keys 24 hours).
const idempotencyTTL = 24 * time.Hour

// maxIdemKeys bounds the keys kept, so long load tests do not exhaust
// memory: beyond it the oldest keys are forgotten before their 24 hours.
const maxIdemKeys = 1 << 20

type idemState int

const (
	idemNew idemState = iota
	idemInFlight
	idemReplay
	idemMismatch
)

type idemRecord struct {
	fp      [32]byte
	done    bool
	status  int
	body    []byte
	created time.Time
}

type idemEntry struct {
	key string
	rec *idemRecord
}

// idemStore keeps idempotency keys, scoped by provider and secret key, for
// idempotencyTTL by the sandbox clock. Expired keys are swept in insertion
// order, so each request costs amortised O(1).
type idemStore struct {
	mu    sync.Mutex
	now   func() time.Time
	max   int // keys kept at most, in flight aside
	m     map[string]*idemRecord
	order []idemEntry
	head  int
}

func newIdemStore(now func() time.Time) *idemStore {
	return &idemStore{now: now, max: maxIdemKeys, m: map[string]*idemRecord{}}
}

func (s *Sandbox) idem() *idemStore { return s.idemStore }

// begin looks key up. For idemNew the returned record is in flight and the
// caller must finish or release it; for idemReplay it holds the answer.
func (st *idemStore) begin(key string, fp [32]byte) (*idemRecord, idemState) {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweep(now)
	if rec, ok := st.m[key]; ok && now.Sub(rec.created) < idempotencyTTL {
		switch {
		case rec.fp != fp:
			return rec, idemMismatch
		case !rec.done:
			return rec, idemInFlight
		default:
			return rec, idemReplay
		}
	}
	rec := &idemRecord{fp: fp, created: now}
	st.m[key] = rec
	st.order = append(st.order, idemEntry{key: key, rec: rec})
	for len(st.order)-st.head > st.max {
		e := st.order[st.head]
		if st.m[e.key] == e.rec {
			if !e.rec.done {
				// Still in flight: keep it (and its place in the order,
				// so that it is swept once it expires).
				break
			}
			delete(st.m, e.key)
		}
		st.order[st.head] = idemEntry{}
		st.head++
	}
	return rec, idemNew
}

// sweep drops expired keys from the front of the insertion order.
func (st *idemStore) sweep(now time.Time) {
	for st.head < len(st.order) {
		e := st.order[st.head]
		if now.Sub(e.rec.created) < idempotencyTTL {
			break
		}
		if st.m[e.key] == e.rec {
			delete(st.m, e.key)
		}
		st.order[st.head] = idemEntry{}
		st.head++
	}
	if st.head > 1024 && st.head > len(st.order)/2 {
		st.order = append([]idemEntry(nil), st.order[st.head:]...)
		st.head = 0
	}
}

// finish binds key to an answer.
func (st *idemStore) finish(key string, rec *idemRecord, status int, body []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec.status, rec.body, rec.done = status, body, true
	_ = key
}

// release forgets key so it can be used again.
func (st *idemStore) release(key string, rec *idemRecord) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.m[key] == rec {
		delete(st.m, key)
	}
}

// fingerprint identifies a request's payload (method, path and body). A JSON
// body is canonicalised (keys sorted, whitespace dropped) first.
func fingerprint(method, path string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{' '})
	h.Write([]byte(path))
	h.Write([]byte{'\n'})
	trimmed := bytes.TrimSpace(body)
	var v any
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if len(trimmed) > 0 && dec.Decode(&v) == nil && !dec.More() {
		if b, err := json.Marshal(v); err == nil {
			trimmed = b
		}
	}
	h.Write(trimmed)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// idemConflictBody is the 409 body for a key whose first request is still in
// flight.
func idemConflictBody(provider string) []byte {
	if provider == ProviderSmartpay {
		return smartpayErrorBody(http.StatusConflict, "request.conflict",
			"A request with the same idempotency key is already being processed.", nil)
	}
	return yocoErrorBody("idempotency_conflict", "Conflict",
		"A request with the same idempotency key is already being processed.")
}

// idemMismatchBody is the 422 body for a key reused with another payload.
func idemMismatchBody(provider string) []byte {
	if provider == ProviderSmartpay {
		return smartpayErrorBody(http.StatusUnprocessableEntity, "idempotency-key.mismatch",
			"The request payload (method, path, parameters) does not match the original request.", nil)
	}
	return yocoErrorBody("idempotency_key_mismatch", "Unprocessable Entity",
		"The request payload (method, path, parameters) does not match the original request.")
}
