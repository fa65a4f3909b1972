package main

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
)

// The gateway's own latency histograms on its /metrics: a scenario's
// figures are the buckets' growth over its load window. The SQLite store
// times each write until it is on disk and each fdatasync of the WAL; the
// HTTP API each request, from the handler's start to its end; the service
// each provider call.
const (
	writeWaitMetric    = "refundgate_store_write_wait_seconds"
	walSyncMetric      = "refundgate_store_wal_sync_seconds"
	requestMetric      = "refundgate_http_request_seconds"
	providerCallMetric = "refundgate_provider_call_seconds"
)

// histKey names one histogram of /metrics: a family and the labels of the
// series summed into it.
type histKey struct {
	name   string
	labels map[string]string
}

// The histograms a scenario reads. The labelled ones have no series until
// their first observation: a reading before a scenario's first create or
// provider call lacks them, and counts as all zero (see growth).
var (
	writeWait    = histKey{name: writeWaitMetric}
	walSync      = histKey{name: walSyncMetric}
	createTime   = histKey{name: requestMetric, labels: map[string]string{"method": "POST", "route": "/v1/refunds"}}
	providerTime = histKey{name: providerCallMetric, labels: map[string]string{"op": "refund"}}
	histKeys     = []histKey{writeWait, walSync, createTime, providerTime}
)

// buckets is a histogram's cumulative counts by upper bound (seconds),
// +Inf included.
type buckets map[float64]uint64

// StoreLatency is what the store's histograms counted during one
// scenario's load: each write from the call until it was on disk, and each
// fdatasync of the WAL. Percentiles are bucket upper bounds (ms): "at most".
type StoreLatency struct {
	Writes       uint64  `json:"writes"`
	WriteWaitP50 upperMS `json:"write_wait_p50_ms"`
	WriteWaitP99 upperMS `json:"write_wait_p99_ms"`
	Syncs        uint64  `json:"wal_syncs"`
	WALSyncP50   upperMS `json:"wal_sync_p50_ms"`
	WALSyncP99   upperMS `json:"wal_sync_p99_ms"`
	// WALSyncStalls counts the fdatasyncs above the bucket that holds
	// stallAfter (51.2 ms with the gateway's buckets): the disk's stalls,
	// during which no write can be acknowledged.
	WALSyncStalls uint64 `json:"wal_sync_stalls"`
}

// GatewayLatency is what the gateway's own histograms counted during one
// scenario's load: each POST /v1/refunds (create or replay) from the
// handler's start to its end, and each provider refund call within them.
// Against the load tool's latency it splits the time spent outside the
// handler (sockets, the accept and run queues) from the time in it, and the
// time in it between the provider and the rest. Percentiles are bucket
// upper bounds (ms): "at most".
type GatewayLatency struct {
	Creates       uint64  `json:"create_requests"`
	CreateP50     upperMS `json:"create_p50_ms"`
	CreateP99     upperMS `json:"create_p99_ms"`
	ProviderCalls uint64  `json:"provider_calls"`
	ProviderP50   upperMS `json:"provider_p50_ms"`
	ProviderP99   upperMS `json:"provider_p99_ms"`
}

// upperMS is a bucket's upper bound in ms; +Inf (above the largest bucket)
// is written to JSON as null, which JSON has instead of infinity.
type upperMS float64

func (u upperMS) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(u), 0) || math.IsNaN(float64(u)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(u))
}

// parseHistograms reads histograms from a Prometheus text exposition, by
// family name.
func parseHistograms(text []byte, keys ...histKey) map[string]buckets {
	m := parseMetrics(text)
	if m == nil {
		return nil
	}
	out := map[string]buckets{}
	for _, k := range keys {
		if b, ok := m.histogram(k); ok {
			out[k.name] = b
		}
	}
	return out
}

// growth is after − before, bucket by bucket; a nil before is all zero.
func growth(before, after buckets) buckets {
	d := buckets{}
	for le, n := range after {
		d[le] = n - before[le]
	}
	return d
}

// bounds are the buckets' upper bounds, smallest first.
func (b buckets) bounds() []float64 {
	les := slices.Collect(maps.Keys(b))
	slices.Sort(les)
	return les
}

// quantile is the upper bound (ms) of the first bucket that holds the
// q-th of the observations; +Inf when only the last one does, 0 when there
// are none.
func (b buckets) quantile(q float64) upperMS {
	total := b[math.Inf(1)]
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	for _, le := range b.bounds() {
		if b[le] >= want {
			return upperMS(le * 1000)
		}
	}
	return upperMS(math.Inf(1))
}

// storeLatency is a scenario's StoreLatency from two readings of /metrics,
// or nil when either lacks the histograms (another store, an old gateway).
func storeLatency(before, after map[string]buckets) *StoreLatency {
	w0, ok1 := before[writeWaitMetric]
	w1, ok2 := after[writeWaitMetric]
	s0, ok3 := before[walSyncMetric]
	s1, ok4 := after[walSyncMetric]
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil
	}
	w, s := growth(w0, w1), growth(s0, s1)
	return &StoreLatency{Writes: w[math.Inf(1)], WriteWaitP50: w.quantile(0.5), WriteWaitP99: w.quantile(0.99),
		Syncs: s[math.Inf(1)], WALSyncP50: s.quantile(0.5), WALSyncP99: s.quantile(0.99), WALSyncStalls: s.above(stallAfter.Seconds())}
}

// gatewayLatency is a scenario's GatewayLatency from two readings of
// /metrics, or nil when the later one lacks the request histogram (an
// older gateway, or a scenario with no create).
func gatewayLatency(before, after map[string]buckets) *GatewayLatency {
	r1, ok := after[requestMetric]
	if !ok {
		return nil
	}
	r, p := growth(before[requestMetric], r1), growth(before[providerCallMetric], after[providerCallMetric])
	if r[math.Inf(1)] == 0 {
		return nil
	}
	return &GatewayLatency{Creates: r[math.Inf(1)], CreateP50: r.quantile(0.5), CreateP99: r.quantile(0.99),
		ProviderCalls: p[math.Inf(1)], ProviderP50: p.quantile(0.5), ProviderP99: p.quantile(0.99)}
}

// above counts the observations above the first bucket whose upper bound
// is at least v (seconds).
func (b buckets) above(v float64) uint64 {
	for _, le := range b.bounds() {
		if le >= v {
			return b[math.Inf(1)] - b[le]
		}
	}
	return 0
}

// histograms reads the gateway's latency histograms (the store's only on
// SQLite), or nil.
func (h *harness) histograms() map[string]buckets {
	text := metricsText(h.gatewayURL + "/metrics")
	if text == nil {
		return nil
	}
	return parseHistograms(text, histKeys...)
}
