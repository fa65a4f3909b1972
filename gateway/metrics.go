package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the service's Prometheus metrics.
type Metrics struct {
	calls        *prometheus.CounterVec
	callSeconds  *prometheus.HistogramVec
	BreakerState *prometheus.GaugeVec
}

// NewMetrics registers the service's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundgate_provider_calls_total", Help: "Provider calls by account, operation and outcome.",
		}, []string{"provider", "op", "outcome"}),
		callSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "refundgate_provider_call_seconds",
			Help: "Provider calls by account and operation, from the request until its answer was read; calls the breaker refused are not timed.",
			// 0.1 ms to 6.6 s, the store's buckets and one more.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17),
		}, []string{"provider", "op"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refundgate_breaker_open", Help: "1 while the account's circuit breaker is open, 0.5 half open, 0 closed.",
		}, []string{"provider"}),
	}
	reg.MustRegister(m.calls, m.callSeconds, m.BreakerState)
	return m
}

// providerCall counts one call and, when it reached the adapter (took > 0),
// times it.
func (m *Metrics) providerCall(provider, op string, err error, took time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(provider, op, ProviderOutcome(err)).Inc()
	if took > 0 {
		m.callSeconds.WithLabelValues(provider, op).Observe(took.Seconds())
	}
}

// timed runs call and sets *took to how long it ran.
func timed(took *time.Duration, call func() (any, error)) func() (any, error) {
	return func() (any, error) {
		start := time.Now()
		defer func() { *took = time.Since(start) }()
		return call()
	}
}
