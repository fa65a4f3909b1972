package main

import (
	"bytes"
	"math"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsText is the body of GET url (the gateway's /metrics), or nil when
// it did not answer 200.
func metricsText(url string) []byte {
	a, err := do("GET", url, nil, "")
	if err != nil || a.status != http.StatusOK {
		return nil
	}
	return a.body
}

// metrics is a Prometheus text exposition, by family name.
type metrics map[string]*dto.MetricFamily

// parseMetrics reads a Prometheus text exposition; nil when it is not one.
func parseMetrics(text []byte) metrics {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil
	}
	return fams
}

// value is the one unlabelled sample of a counter, gauge or untyped metric.
func (m metrics) value(name string) (int64, bool) {
	f := m[name]
	if f == nil || len(f.GetMetric()) != 1 {
		return 0, false
	}
	x := f.GetMetric()[0]
	switch {
	case x.Counter != nil:
		return int64(x.GetCounter().GetValue()), true
	case x.Gauge != nil:
		return int64(x.GetGauge().GetValue()), true
	case x.Untyped != nil:
		return int64(x.GetUntyped().GetValue()), true
	}
	return 0, false
}

// histogram is the one unlabelled histogram name, as cumulative counts by
// upper bound, +Inf included.
func (m metrics) histogram(name string) (buckets, bool) {
	f := m[name]
	if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetHistogram() == nil {
		return nil, false
	}
	h := f.GetMetric()[0].GetHistogram()
	b := buckets{math.Inf(1): h.GetSampleCount()}
	for _, x := range h.GetBucket() {
		b[x.GetUpperBound()] = x.GetCumulativeCount()
	}
	return b, true
}

// promCounter reads an unlabelled sample of the Prometheus text format.
func promCounter(text []byte, name string) (int64, bool) {
	return parseMetrics(text).value(name)
}
