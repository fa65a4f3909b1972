package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestStoreMetrics runs the real binary on SQLite, makes one refund and
// reads /metrics: the store's write path is there, with the latency of
// each write until it is on disk and of each fdatasync of the WAL, and the
// provider call is timed.
func TestStoreMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	e := newSigEnv(t)
	e.gw.start(t)
	e.refundOK(t)
	a, err := e.gw.do(http.MethodGet, "/metrics", "", "", nil)
	if err != nil || a.status != http.StatusOK {
		t.Fatalf("GET /metrics: %v %v", a, err)
	}
	samples := map[string]float64{}
	for _, line := range strings.Split(string(a.body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				samples[f[0]] = v
			}
		}
	}
	// One refund is two writes (its intent, then its outcome and answer),
	// each after a sync of the WAL.
	for name, least := range map[string]float64{
		"refundgate_store_write_ops_total":                      2,
		"refundgate_store_write_wait_seconds_count":             2,
		"refundgate_store_write_wait_seconds_sum":               1e-6,
		`refundgate_store_write_wait_seconds_bucket{le="+Inf"}`: 2,
		"refundgate_store_wal_sync_seconds_count":               2,
		"refundgate_store_wal_restart_seconds_total":            0,
		"refundgate_store_inline_writes_total":                  0,
	} {
		v, ok := samples[name]
		if !ok || v < least {
			t.Errorf("%s = %v (present %v), want at least %v", name, v, ok, least)
		}
	}
	var calls float64
	for name, v := range samples {
		if strings.HasPrefix(name, "refundgate_provider_call_seconds_count{") && strings.Contains(name, `op="refund"`) {
			calls += v
		}
	}
	if calls != 1 {
		t.Errorf("refundgate_provider_call_seconds_count with op=\"refund\" = %v, want the one refund call", calls)
	}
}
