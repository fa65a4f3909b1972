package main

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
)

// The SQLite store's own latency histograms on the gateway's /metrics: a
// scenario's figures are the buckets' growth over its load window.
const (
	writeWaitMetric = "refundgate_store_write_wait_seconds"
	walSyncMetric   = "refundgate_store_wal_sync_seconds"
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

// upperMS is a bucket's upper bound in ms; +Inf (above the largest bucket)
// is written to JSON as null, which JSON has instead of infinity.
type upperMS float64

func (u upperMS) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(u), 0) || math.IsNaN(float64(u)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(u))
}

// parseHistograms reads the named histograms from a Prometheus text
// exposition.
func parseHistograms(text []byte, names ...string) map[string]buckets {
	m := parseMetrics(text)
	if m == nil {
		return nil
	}
	out := map[string]buckets{}
	for _, name := range names {
		if b, ok := m.histogram(name); ok {
			out[name] = b
		}
	}
	return out
}

// growth is after − before, bucket by bucket.
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

// storeHistograms reads the SQLite store's histograms from the gateway, or
// nil.
func (h *harness) storeHistograms() map[string]buckets {
	if h.store != "sqlite" {
		return nil
	}
	text := metricsText(h.gatewayURL + "/metrics")
	if text == nil {
		return nil
	}
	return parseHistograms(text, writeWaitMetric, walSyncMetric)
}
