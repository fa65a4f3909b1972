package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

//go:embed script.js
var k6Script []byte

// k6Version is the k6 the harness installs when none is on PATH.
const k6Version = "v1.8.1"

// findK6 returns a k6 binary: the one on PATH, the bench-local one, or one
// it installs into binDir with go install. An empty path and the error say
// the install failed.
func findK6(ctx context.Context, binDir string, log io.Writer) (string, error) {
	if p, err := exec.LookPath("k6"); err == nil {
		return p, nil
	}
	local := filepath.Join(binDir, "k6")
	if _, err := os.Stat(local); err == nil {
		return local, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "k6 is not on PATH: installing it with GOBIN=%s go install go.k6.io/k6@%s (a few minutes the first time)\n", abs, k6Version)
	cmd := exec.CommandContext(ctx, "go", "install", "go.k6.io/k6@"+k6Version)
	cmd.Env = append(os.Environ(), "GOBIN="+abs)
	cmd.Dir = os.TempDir() // outside the module: k6 is not a dependency of refundgate
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install go.k6.io/k6@%s: %w", k6Version, err)
	}
	return local, nil
}

// loadSpec is one k6 run.
type loadSpec struct {
	Name     string
	Rate     float64
	Duration time.Duration
	// Mix is the share of each operation; the shares sum to 1.
	Mix [][2]any
	// Target is "gateway" or "provider", for the report.
	Target string
}

// k6Config is what script.js reads from BENCH_CONFIG.
type k6Config struct {
	Gateway     string  `json:"gateway"`
	Sandbox     string  `json:"sandbox"`
	APIKey      string  `json:"api_key"`
	ProviderKey string  `json:"provider_key"`
	PoolFile    string  `json:"pool_file"`
	SummaryPath string  `json:"summary_path"`
	RunID       string  `json:"run_id"`
	Rate        int     `json:"rate"`
	Duration    string  `json:"duration"`
	PreVUs      int     `json:"pre_vus"`
	MaxVUs      int     `json:"max_vus"`
	Amount      int64   `json:"amount"`
	Currency    string  `json:"currency"`
	Timeout     string  `json:"timeout"`
	TrackPrefix string  `json:"track_prefix"`
	Mix         [][]any `json:"mix"`
}

// vus sizes the VU pool for an arrival rate: pre-allocated for 100 ms
// answers (allocating VUs mid-run is slow in k6 and shows up as dropped
// iterations), and up to 500 ms answers (Little's law) before the executor
// drops iterations.
func vus(rate float64, maxCap int) (pre, max int) {
	pre = int(math.Ceil(rate / 10))
	max = int(math.Ceil(rate / 2))
	if pre < 50 {
		pre = 50
	}
	if max < 200 {
		max = 200
	}
	if maxCap > 0 && max > maxCap {
		max = maxCap
	}
	if pre > max {
		pre = max
	}
	return pre, max
}

// runK6 runs one scenario and reads its summary.
func (h *harness) runK6(ctx context.Context, spec loadSpec) (*Scenario, error) {
	h.seq++
	tag := fmt.Sprintf("%02d-%s-%d", h.seq, spec.Name, int(spec.Rate))
	dir := filepath.Join(h.runDir, "k6")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	pre, max := vus(spec.Rate, h.maxVUs)
	cfg := k6Config{
		Gateway: h.gatewayURL, Sandbox: h.sandboxURL, APIKey: h.apiKey, ProviderKey: h.providerKey,
		PoolFile: h.poolFile, SummaryPath: filepath.Join(dir, tag+".summary.json"),
		RunID: h.runID + "-" + tag, Rate: int(math.Round(spec.Rate)), Duration: spec.Duration.String(),
		PreVUs: pre, MaxVUs: max, Amount: 1, Currency: "EUR", Timeout: "10s",
		TrackPrefix: fmt.Sprintf("bk%s%02d-", h.runID[len(h.runID)-6:], h.seq),
	}
	for _, m := range spec.Mix {
		cfg.Mix = append(cfg.Mix, []any{m[0], m[1]})
	}
	cfgFile := filepath.Join(dir, tag+".config.json")
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, tag+".log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	h.setPhase(spec.Name)
	h.markLog()
	cpu0 := h.cpuTimes()
	cmd := exec.CommandContext(ctx, h.k6, "run", "--quiet", "--no-color", "--no-usage-report", "--log-output=stderr", h.scriptFile)
	cmd.Env = append(os.Environ(), "BENCH_CONFIG="+cfgFile, "K6_NO_USAGE_REPORT=true")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	raw, err := os.ReadFile(cfg.SummaryPath)
	if err != nil {
		return nil, fmt.Errorf("k6 %s: no summary (%v; exit %v); see %s", tag, err, runErr, logFile.Name())
	}
	s, err := parseSummary(raw)
	if err != nil {
		return nil, fmt.Errorf("k6 %s: %w", tag, err)
	}
	s.Name, s.Rate, s.Target, s.Summary = spec.Name, spec.Rate, spec.Target, cfg.SummaryPath
	// Throughput is over the arrival window, not k6's whole run (which adds
	// the graceful stop).
	s.Duration = spec.Duration.Seconds()
	s.setThroughput()
	s.RSSPeakKB = h.rss.peakSince(start)
	s.CPU = cpuShare(cpu0, h.cpuTimes(), time.Since(start))
	if ps := cmd.ProcessState; ps != nil {
		s.CPU["k6"] = math.Round(100*(ps.UserTime()+ps.SystemTime()).Seconds()/time.Since(start).Seconds()) / 100
	}
	h.collectLog()
	return s, nil
}

// k6Summary is the part of k6's handleSummary data the harness reads.
type k6Summary struct {
	State struct {
		TestRunDurationMs float64 `json:"testRunDurationMs"`
	} `json:"state"`
	Metrics map[string]struct {
		Type   string             `json:"type"`
		Values map[string]float64 `json:"values"`
	} `json:"metrics"`
}

// parseSummary turns k6's summary into a Scenario: per-operation latency
// from lat_<op>, success from ok_<op>, wrong answers from status_<code>,
// and the executor's dropped iterations.
func parseSummary(raw []byte) (*Scenario, error) {
	var sum k6Summary
	if err := json.Unmarshal(raw, &sum); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	if sum.Metrics == nil {
		return nil, errors.New("summary has no metrics")
	}
	s := &Scenario{Ops: map[string]*OpStat{}, Unexpected: map[string]float64{}}
	// The run's whole duration; runK6 replaces it with the arrival window.
	s.Duration = sum.State.TestRunDurationMs / 1000
	val := func(name, key string) float64 { return sum.Metrics[name].Values[key] }
	s.Iterations = val("iterations", "count")
	s.Dropped = val("dropped_iterations", "count")
	var passes, total float64 // over all operations
	for name, m := range sum.Metrics {
		switch {
		case strings.HasPrefix(name, "lat_"):
			if m.Values["max"] == 0 && m.Values["avg"] == 0 {
				continue
			}
			o := s.op(strings.TrimPrefix(name, "lat_"))
			o.Avg, o.P50, o.P90, o.P99, o.P999, o.Max = m.Values["avg"], m.Values["p(50)"], m.Values["p(90)"], m.Values["p(99)"], m.Values["p(99.9)"], m.Values["max"]
		case strings.HasPrefix(name, "ok_"):
			n := m.Values["passes"] + m.Values["fails"]
			if n == 0 {
				continue
			}
			o := s.op(strings.TrimPrefix(name, "ok_"))
			o.Count = n
			o.OKRate = m.Values["passes"] / n
			passes += m.Values["passes"]
			total += n
		case strings.HasPrefix(name, "status_"):
			if c := m.Values["count"]; c > 0 {
				s.Unexpected[strings.TrimPrefix(name, "status_")] = c
			}
		}
	}
	for op, o := range s.Ops {
		if o.Count == 0 && o.Max == 0 {
			delete(s.Ops, op)
		}
	}
	if total > 0 {
		s.OKRate = passes / total
	}
	s.setThroughput()
	return s, nil
}

func (s *Scenario) op(name string) *OpStat {
	o := s.Ops[name]
	if o == nil {
		o = &OpStat{}
		s.Ops[name] = o
	}
	return o
}

// setThroughput computes the answered-as-expected rates over s.Duration.
func (s *Scenario) setThroughput() {
	if s.Duration <= 0 {
		return
	}
	s.Throughput = 0
	for _, o := range s.Ops {
		o.Throughput = o.Count * o.OKRate / s.Duration
		s.Throughput += o.Throughput
	}
}

// judge says whether a run kept up: at least 99% answered as expected and
// less than 1% of the iterations dropped.
func judge(s *Scenario) (bool, string) {
	started := s.Iterations + s.Dropped
	drop := 0.0
	if started > 0 {
		drop = s.Dropped / started
	}
	var why []string
	if s.OKRate < 0.99 {
		why = append(why, fmt.Sprintf("only %.2f%% answered as expected", 100*s.OKRate))
	}
	if drop >= 0.01 {
		why = append(why, fmt.Sprintf("%.2f%% iterations dropped", 100*drop))
	}
	if s.Iterations == 0 {
		why = append(why, "no iterations")
	}
	return len(why) == 0, strings.Join(why, "; ")
}

func droppedRatio(s *Scenario) float64 {
	if n := s.Iterations + s.Dropped; n > 0 {
		return s.Dropped / n
	}
	return 0
}
