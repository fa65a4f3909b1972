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

// histogram is histogram k.name summed over its series that have all of
// k.labels (an unlabelled histogram's one series has them all), as
// cumulative counts by upper bound, +Inf included; false when no series has
// them. A histogram vector creates a series on its first observation, so
// "none" can also mean "nothing observed yet": see histKey.
func (m metrics) histogram(k histKey) (buckets, bool) {
	f := m[k.name]
	if f == nil {
		return nil, false
	}
	var b buckets
	for _, x := range f.GetMetric() {
		h := x.GetHistogram()
		if h == nil || !hasLabels(x, k.labels) {
			continue
		}
		if b == nil {
			b = buckets{}
		}
		b[math.Inf(1)] += h.GetSampleCount()
		for _, bk := range h.GetBucket() {
			if le := bk.GetUpperBound(); !math.IsInf(le, 1) { // +Inf is the sample count
				b[le] += bk.GetCumulativeCount()
			}
		}
	}
	return b, b != nil
}

func hasLabels(x *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range x.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// promCounter reads an unlabelled sample of the Prometheus text format.
func promCounter(text []byte, name string) (int64, bool) {
	return parseMetrics(text).value(name)
}
