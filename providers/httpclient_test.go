package providers

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHTTPClientCapsConnections sends a burst of 30 requests through a
// client capped at 3 connections: all are answered, over no more than 3
// connections, and those stay open for the next burst.
func TestHTTPClientCapsConnections(t *testing.T) {
	var opened, inFlight, peak atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		w.Write([]byte(`{}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	client := NewHTTPClient(Config{MaxConns: 3, Timeout: 5 * time.Second})
	burst := func() {
		var wg sync.WaitGroup
		for range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := Do(context.Background(), client, Call{Provider: "p", Op: "refund", Method: "GET", URL: srv.URL})
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("Do = %+v, %v", resp, err)
				}
			}()
		}
		wg.Wait()
	}
	burst()
	burst()
	if n := opened.Load(); n > 3 {
		t.Errorf("%d connections opened for two bursts of 30; want at most 3", n)
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak %d requests at the provider at once; want 2 or 3 (the cap)", p)
	}
}
