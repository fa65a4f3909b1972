package main

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestStoreLatency reads the store's histograms the way the harness does:
// from a real /metrics answer, before and after a scenario's load, and
// takes the percentiles of what was observed in between.
func TestStoreLatency(t *testing.T) {
	reg := prometheus.NewRegistry()
	bounds := prometheus.ExponentialBuckets(0.0001, 2, 16)
	wait := prometheus.NewHistogram(prometheus.HistogramOpts{Name: writeWaitMetric, Buckets: bounds})
	sync := prometheus.NewHistogram(prometheus.HistogramOpts{Name: walSyncMetric, Buckets: bounds})
	reg.MustRegister(wait, sync, prometheus.NewCounter(prometheus.CounterOpts{Name: "refundgate_store_wal_syncs_total"}))
	read := metricsServer(t, reg, writeWait, walSync)
	// Before the load: slow writes that must not count.
	for range 50 {
		wait.Observe(2)
	}
	before := read()
	// The load: 98 writes of 0.15 ms and 2 of 5 ms; 10 fdatasyncs of 0.3 ms
	// and two stalls, of 60 ms and 400 ms (a sync of 51 ms is not one).
	for range 98 {
		wait.Observe(0.00015)
	}
	wait.Observe(0.005)
	wait.Observe(0.005)
	for range 97 {
		sync.Observe(0.0003)
	}
	sync.Observe(0.051)
	sync.Observe(0.06)
	sync.Observe(0.4)
	got := storeLatency(before, read())
	want := StoreLatency{Writes: 100, WriteWaitP50: 0.2, WriteWaitP99: 6.4, Syncs: 100, WALSyncP50: 0.4, WALSyncP99: 102.4, WALSyncStalls: 2}
	if got == nil || !near(got.WriteWaitP50, want.WriteWaitP50) || !near(got.WriteWaitP99, want.WriteWaitP99) ||
		!near(got.WALSyncP50, want.WALSyncP50) || !near(got.WALSyncP99, want.WALSyncP99) || got.Writes != want.Writes || got.Syncs != want.Syncs ||
		got.WALSyncStalls != want.WALSyncStalls {
		t.Fatalf("storeLatency = %+v, want %+v", got, want)
	}
	// A gateway without the histograms (PostgreSQL, an older build).
	if got := storeLatency(before, parseHistograms([]byte("refundgate_store_wal_syncs_total 3\n"), writeWait)); got != nil {
		t.Errorf("without histograms: %+v, want nil", got)
	}
	if q := (buckets{math.Inf(1): 0}).quantile(0.99); q != 0 {
		t.Errorf("quantile of nothing = %v, want 0", q)
	}
	if q := (buckets{0.001: 0, math.Inf(1): 3}).quantile(0.5); !math.IsInf(float64(q), 1) || bound(q) != "∞" {
		t.Errorf("quantile past the last bucket = %v (%s), want +Inf", q, bound(q))
	}
	// JSON has no infinity: the harness once lost a whole run's results to it.
	b, err := json.Marshal(StoreLatency{Writes: 3, WriteWaitP50: upperMS(math.Inf(1)), WriteWaitP99: 6.4})
	if err != nil || !strings.Contains(string(b), `"write_wait_p50_ms":null`) || !strings.Contains(string(b), `"write_wait_p99_ms":6.4`) {
		t.Errorf("StoreLatency as JSON = %s, %v; want null for +Inf and the number otherwise", b, err)
	}
}

// TestGatewayLatency reads the API's and the provider calls' histograms
// from a real /metrics answer: only POST /v1/refunds and refund calls
// count, summed over their series, and a series born during the load
// counts from zero.
func TestGatewayLatency(t *testing.T) {
	reg := prometheus.NewRegistry()
	req := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: requestMetric,
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"method", "route"})
	calls := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: providerCallMetric,
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17)}, []string{"provider", "op"})
	reg.MustRegister(req, calls)
	read := metricsServer(t, reg, histKeys...)
	// Before the load: slow creates and lookups that must not count, and
	// no refund call yet.
	for range 10 {
		req.WithLabelValues("POST", "/v1/refunds").Observe(2)
		calls.WithLabelValues("acct-a", "lookup").Observe(2)
	}
	before := read()
	if _, ok := before[providerCallMetric]; ok {
		t.Fatalf("before any refund call: %v, want no provider series matching op=refund", before[providerCallMetric])
	}
	// The load: 99 creates of 2 ms and one of 20 ms; reads that are not
	// creates; refund calls on two accounts, 98 of 0.3 ms and 2 of 5 ms.
	for range 99 {
		req.WithLabelValues("POST", "/v1/refunds").Observe(0.002)
	}
	req.WithLabelValues("POST", "/v1/refunds").Observe(0.02)
	for range 500 {
		req.WithLabelValues("GET", "/v1/refunds").Observe(5)
	}
	for i := range 98 {
		calls.WithLabelValues([]string{"acct-a", "acct-b"}[i%2], "refund").Observe(0.0003)
	}
	calls.WithLabelValues("acct-b", "refund").Observe(0.005)
	calls.WithLabelValues("acct-b", "refund").Observe(0.005)
	calls.WithLabelValues("acct-a", "lookup").Observe(3)
	got := gatewayLatency(before, read())
	want := GatewayLatency{Creates: 100, CreateP50: 2.5, CreateP99: 2.5, ProviderCalls: 100, ProviderP50: 0.4, ProviderP99: 6.4}
	if got == nil || *got != want {
		t.Fatalf("gatewayLatency = %+v, want %+v", got, want)
	}
	if got := gatewayLatency(before, before); got != nil {
		t.Errorf("with no create in between: %+v, want nil", got)
	}
}

// metricsServer serves reg's /metrics from a real HTTP server and returns
// a reading of its histograms keys, the harness's way.
func metricsServer(t *testing.T, reg *prometheus.Registry, keys ...histKey) func() map[string]buckets {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return func() map[string]buckets {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return parseHistograms(b, keys...)
	}
}

func near[F ~float64](a, b F) bool {
	return math.Abs(float64(a-b)) < 1e-9*math.Max(1, math.Abs(float64(b)))
}
