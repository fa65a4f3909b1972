package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the service's Prometheus metrics.
type Metrics struct {
	calls        *prometheus.CounterVec
	BreakerState *prometheus.GaugeVec
}

// NewMetrics registers the service's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "refundgate_provider_calls_total", Help: "Provider calls by account, operation and outcome.",
		}, []string{"provider", "op", "outcome"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "refundgate_breaker_open", Help: "1 while the account's circuit breaker is open, 0.5 half open, 0 closed.",
		}, []string{"provider"}),
	}
	reg.MustRegister(m.calls, m.BreakerState)
	return m
}

func (m *Metrics) providerCall(provider, op string, err error) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(provider, op, ProviderOutcome(err)).Inc()
}
