package providertest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Fault is what the Proxy does to the next requests it sees.
type Fault int

// The faults the Proxy injects.
const (
	FaultNone Fault = iota
	// Fault429 answers 429 with Retry-After: 1 without forwarding.
	Fault429
	// Fault500 answers 500 without forwarding.
	Fault500
	// FaultApplyThen500 forwards, then answers 500 in place of the answer.
	FaultApplyThen500
	// FaultMalformed forwards, then answers 200 with a truncated JSON body.
	FaultMalformed
	// FaultHang holds the request until the client gives up.
	FaultHang
	// FaultEchoAuth answers 401 with a body that echoes the request's
	// headers, as a careless provider might: the secret must not leak.
	FaultEchoAuth
)

// Proxy is an httptest server in front of a provider simulator that counts
// requests, records idempotency keys and injects faults.
type Proxy struct {
	*httptest.Server
	next    http.Handler
	closing chan struct{}
	once    sync.Once

	mu       sync.Mutex
	requests int
	posts    int
	keys     []string
	fault    Fault
}

// NewProxy starts a Proxy in front of next. Close it when done.
func NewProxy(next http.Handler) *Proxy {
	p := &Proxy{next: next, closing: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	return p
}

// Close releases hanging requests and stops the server.
func (p *Proxy) Close() {
	p.once.Do(func() { close(p.closing) })
	p.Server.Close()
}

// SetFault makes every following POST suffer f until reset with FaultNone.
func (p *Proxy) SetFault(f Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// Requests returns how many requests reached the proxy.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Posts returns how many POST requests reached the proxy.
func (p *Proxy) Posts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.posts
}

// IdempotencyKeys returns the Idempotency-Key header of every POST, in order.
func (p *Proxy) IdempotencyKeys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.keys...)
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests++
	fault := FaultNone
	if r.Method == http.MethodPost {
		p.posts++
		p.keys = append(p.keys, r.Header.Get("Idempotency-Key"))
		fault = p.fault
	}
	p.mu.Unlock()

	switch fault {
	case Fault429:
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"message":"rate limited"}`, http.StatusTooManyRequests)
		return
	case Fault500:
		http.Error(w, `{"message":"internal error"}`, http.StatusInternalServerError)
		return
	case FaultHang:
		// Reading the body lets the server notice the client hanging up.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-p.closing:
		}
		return
	case FaultEchoAuth:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		var b bytes.Buffer
		b.WriteString(`{"message":"bad credentials`)
		for k, vs := range r.Header {
			for _, v := range vs {
				b.WriteString(" " + k + "=" + v)
			}
		}
		b.WriteString(`","errorCode":"unauthorized","error_code":"unauthorized"}`)
		w.Write(b.Bytes())
		return
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	p.next.ServeHTTP(rec, r)
	switch fault {
	case FaultApplyThen500:
		http.Error(w, "upstream failure", http.StatusInternalServerError)
		return
	case FaultMalformed:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"id": "x", "status": `))
		return
	}
	for k, vs := range rec.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
}
