package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// env is a sandbox served by an httptest server.
type env struct {
	t   *testing.T
	sb  *Sandbox
	srv *httptest.Server
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	sb := New(opts)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		sb.Close()
	})
	return &env{t: t, sb: sb, srv: srv}
}

// resp is an answer read in full.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", r.status, err, r.body)
	}
	return m
}

// do sends one request; body may be a string, []byte or a value to marshal.
func (e *env) do(method, path string, hdr map[string]string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		rd = bytes.NewReader(mustJSON(b))
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) payment(provider string, amount int64, currency string, live bool) string {
	e.t.Helper()
	id, err := e.sb.CreatePayment(provider, amount, currency, live)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	return m
}

// shape maps every key path of a JSON value to its JSON type, so two bodies
// can be compared by key set and types.
func shape(v any) map[string]string {
	out := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			out[path] = "object"
			for k, c := range x {
				walk(path+"."+k, c)
			}
		case []any:
			out[path] = "array"
			for _, c := range x {
				walk(path+"[]", c)
			}
		case string:
			out[path] = "string"
		case float64:
			out[path] = "number"
		case bool:
			out[path] = "bool"
		case nil:
			out[path] = "null"
		}
	}
	walk("", v)
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hook is a webhook receiver recording what it receives.
type hook struct {
	srv  *httptest.Server
	got  chan received
	mu   sync.Mutex
	fail int // answer 500 to this many first deliveries
}

type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

func newHook(t *testing.T, failFirst int) *hook {
	h := &hook{got: make(chan received, 100), fail: failFirst}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		failing := h.fail > 0
		if failing {
			h.fail--
		}
		h.mu.Unlock()
		h.got <- received{header: r.Header.Clone(), body: b, at: time.Now()}
		if failing {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// next waits for the next delivery.
func (h *hook) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-h.got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook delivered within 5s")
	}
	return received{}
}

// none checks that no delivery arrives within d.
func (h *hook) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-h.got:
		t.Fatalf("unexpected webhook: %s", r.body)
	case <-time.After(d):
	}
}

// eventually waits until cond holds, failing after 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// holdApply makes refund applications block until the returned release is
// called; entered receives one value per blocked request.
func holdApply(sb *Sandbox) (entered chan struct{}, release func()) {
	entered = make(chan struct{}, 16)
	gate := make(chan struct{})
	f := func() {
		entered <- struct{}{}
		<-gate
	}
	sb.beforeApply.Store(&f)
	var once sync.Once
	return entered, func() {
		once.Do(func() {
			sb.beforeApply.Store(nil)
			close(gate)
		})
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
