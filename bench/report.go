package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Results is everything one run measured; it is printed and written as
// JSON to bench/out/results-<timestamp>.json and bench/out/latest.json.
type Results struct {
	RunID     string    `json:"run_id"`
	StartedAt time.Time `json:"started_at"`
	Commit    string    `json:"commit"`
	Machine   Machine   `json:"machine"`
	Tool      string    `json:"tool"`
	Settings  Settings  `json:"settings"`

	// FsyncPerSec is the raw rate of 4 KiB append + fsync on the data
	// directory's disk.
	FsyncPerSec float64 `json:"fsync_per_sec"`

	// Searches are the step searches for a maximum rate, by scenario.
	Searches map[string]*Search `json:"searches,omitempty"`
	// Scenarios are the measured runs, in order.
	Scenarios []*Scenario `json:"scenarios"`

	// MaxCreateRate is the highest offered create rate that passed.
	MaxCreateRate float64 `json:"max_create_rate"`
	// CreatedPerSec is the 201 throughput of the max-rate create run.
	CreatedPerSec float64 `json:"created_per_sec"`
	// RefundsPerFsync is CreatedPerSec / FsyncPerSec: above 1 means the
	// store commits more than one refund per fsync (group commit).
	RefundsPerFsync float64 `json:"refunds_per_fsync"`
	// Added is gateway − provider latency at the same rate (half the max).
	Added *Added `json:"added_latency,omitempty"`
	// MaxReplayRate is the highest offered replay rate that passed.
	MaxReplayRate float64 `json:"max_replay_rate"`
	// ReplayedPerSec is the replay throughput at MaxReplayRate.
	ReplayedPerSec float64 `json:"replayed_per_sec"`

	RSS     RSSReport `json:"rss"`
	Soak    *Soak     `json:"soak,omitempty"`
	Profile *Profile  `json:"profile,omitempty"`
	Budget  []Budget  `json:"budget"`

	// GatewayLog holds distinct warn/error lines the gateway logged during
	// the load, with their counts.
	GatewayLog []LogLine `json:"gateway_log,omitempty"`
	Notes      []string  `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	NumCPU    int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	MemTotal  string `json:"mem_total"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	DataDir   string `json:"data_dir"`
}

// Settings are the flags the run used.
type Settings struct {
	Duration     string  `json:"duration"`
	StepDuration string  `json:"step_duration"`
	Payments     int     `json:"payments"`
	PaymentValue int64   `json:"payment_value"`
	StartRate    float64 `json:"start_rate"`
	CeilingRate  float64 `json:"ceiling_rate"`
	SearchSteps  int     `json:"search_bisections"`
	Scenarios    string  `json:"scenarios"`
	Soak         string  `json:"soak,omitempty"`
	MaxWorkers   int     `json:"max_workers"`
}

// Search is one step search for the highest passing rate.
type Search struct {
	Scenario string  `json:"scenario"`
	Steps    []*Step `json:"steps"`
	Max      float64 `json:"max_rate"`
}

// Step is one short constant-rate run of a search.
type Step struct {
	Rate       float64 `json:"rate"`
	Throughput float64 `json:"throughput"`
	OKRate     float64 `json:"ok_rate"`
	Dropped    float64 `json:"dropped_ratio"`
	P99ms      float64 `json:"p99_ms"`
	Pass       bool    `json:"pass"`
	Why        string  `json:"why,omitempty"`
	// CPU is as in Scenario.
	CPU map[string]float64 `json:"cpu_cores,omitempty"`
}

// Scenario is one measured load run.
type Scenario struct {
	Name string `json:"name"`
	// Target is "gateway" or "provider".
	Target string `json:"target"`
	// Rate is the offered arrival rate (requests/s), all operations.
	Rate float64 `json:"rate"`
	// Duration is the arrival window in seconds; Elapsed is the whole run,
	// including the wait for the last answers.
	Duration float64 `json:"duration_s"`
	Elapsed  float64 `json:"elapsed_s,omitempty"`
	// Expected is rate × duration; Sent is the requests actually sent; and
	// Dropped is the shortfall, the requests the load tool could not send
	// on time because all its workers were waiting for answers.
	Expected int `json:"expected_requests"`
	Sent     int `json:"sent_requests"`
	Dropped  int `json:"dropped_requests"`
	// Throughput is requests answered as expected per second.
	Throughput float64            `json:"throughput"`
	OKRate     float64            `json:"ok_rate"`
	Ops        map[string]*OpStat `json:"ops"`
	// Unexpected counts wrong answers by HTTP status (0 = no answer;
	// 201-not-replayed = a replay answered as a fresh create).
	Unexpected map[string]float64 `json:"unexpected,omitempty"`
	// Errors counts the load tool's error texts of unanswered requests.
	Errors    map[string]int `json:"errors,omitempty"`
	Pass      bool           `json:"pass"`
	RSSPeakKB int64          `json:"rss_peak_kb"`
	// CPU is each process's CPU use during the run, in cores (1.0 = one
	// core busy): gateway, sandbox, vegeta (its processes), harness (this
	// process, which streams the targets), loadgen (vegeta + harness), and
	// the whole machine (all processes, including anything else running).
	CPU map[string]float64 `json:"cpu_cores,omitempty"`
	// ResultFiles are the raw vegeta results, kept with --keep.
	ResultFiles []string `json:"result_files,omitempty"`
}

// OpStat is one operation's latency (ms) and counts within a scenario.
// Latency is over every request sent, answered or not; percentiles are
// nearest-rank over all of them.
type OpStat struct {
	// Rate is this operation's offered rate (requests/s).
	Rate         float64 `json:"rate,omitempty"`
	Expected     int     `json:"expected_requests,omitempty"`
	Sent         int     `json:"sent_requests,omitempty"`
	Dropped      int     `json:"dropped_requests"`
	DroppedRatio float64 `json:"dropped_ratio"`
	Count        float64 `json:"count"`
	Throughput   float64 `json:"throughput"`
	OKRate       float64 `json:"ok_rate"`
	Avg          float64 `json:"avg_ms"`
	P50          float64 `json:"p50_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	P999         float64 `json:"p99_9_ms"`
	Max          float64 `json:"max_ms"`
}

// Added is the gateway's own latency: gateway − provider at one rate.
type Added struct {
	Rate float64 `json:"rate"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
}

// RSSReport is the gateway's resident memory over the run.
type RSSReport struct {
	StartKB int64 `json:"start_kb"`
	PeakKB  int64 `json:"peak_kb"`
	EndKB   int64 `json:"end_kb"`
	Samples int   `json:"samples"`
}

// Soak is the long fixed-rate run.
type Soak struct {
	Rate        float64 `json:"rate"`
	Duration    string  `json:"duration"`
	WarmupKB    int64   `json:"rss_after_warmup_kb"`
	EndKB       int64   `json:"rss_end_kb"`
	PeakKB      int64   `json:"rss_peak_kb"`
	GrowthRatio float64 `json:"growth_ratio"`
	Flat        bool    `json:"flat"`
	// Curve is one RSS sample (KB) per minute.
	Curve []int64 `json:"rss_per_minute_kb"`
}

// Profile is the CPU profile taken during the max-rate run.
type Profile struct {
	File string `json:"file"`
	Top  string `json:"top"`
	Err  string `json:"error,omitempty"`
}

// Budget is one performance promise and whether this run kept it.
type Budget struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      string `json:"met"` // "yes", "no" or "not measured"
}

// LogLine is a distinct gateway log message and how often it appeared.
type LogLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Count int    `json:"count"`
	First string `json:"first"`
}

func (r *Results) scenario(name string) *Scenario {
	for _, s := range r.Scenarios {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// budget judges the promises of BENCHMARKS.md from this run's numbers.
func (r *Results) budget() []Budget {
	var out []Budget
	yn := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	if s := r.scenario("create-max"); s != nil {
		out = append(out, Budget{"created refunds/s", "≥ 3,000 (aim 5,000)",
			fmt.Sprintf("%.0f/s (offered %.0f/s, ok %.2f%%)", r.CreatedPerSec, s.Rate, 100*s.OKRate), yn(r.CreatedPerSec >= 3000 && s.Pass)})
	} else {
		out = append(out, Budget{"created refunds/s", "≥ 3,000 (aim 5,000)", "-", "not measured"})
	}
	if r.Added != nil {
		out = append(out, Budget{"p99 added latency at half the max rate", "< 5 ms",
			fmt.Sprintf("%.2f ms at %.0f/s", r.Added.P99, r.Added.Rate), yn(r.Added.P99 < 5)})
	} else {
		out = append(out, Budget{"p99 added latency at half the max rate", "< 5 ms", "-", "not measured"})
	}
	if s := r.scenario("replay-max"); s != nil {
		out = append(out, Budget{"idempotent replays/s", "≥ 10,000",
			fmt.Sprintf("%.0f/s (offered %.0f/s, ok %.2f%%)", r.ReplayedPerSec, s.Rate, 100*s.OKRate), yn(r.ReplayedPerSec >= 10000 && s.Pass)})
	} else {
		out = append(out, Budget{"idempotent replays/s", "≥ 10,000", "-", "not measured"})
	}
	if r.Soak != nil {
		out = append(out, Budget{"memory flat over 10 min", "end RSS ≤ 1.2 × RSS after warm-up",
			fmt.Sprintf("%s at %.0f/s: %d → %d KB (×%.2f)", r.Soak.Duration, r.Soak.Rate, r.Soak.WarmupKB, r.Soak.EndKB, r.Soak.GrowthRatio),
			map[bool]string{true: yn(r.Soak.Flat), false: "not measured (soak shorter than 10m)"}[soakLongEnough(r.Soak.Duration)]})
	} else {
		out = append(out, Budget{"memory flat over 10 min", "end RSS ≤ 1.2 × RSS after warm-up", "-", "not measured (run with --soak 10m)"})
	}
	return out
}

func soakLongEnough(d string) bool {
	v, err := time.ParseDuration(d)
	return err == nil && v >= 10*time.Minute
}

// print writes the human summary.
func (r *Results) print(w io.Writer) {
	fmt.Fprintf(w, "\n== refundgate benchmark %s (%s, commit %s)\n", r.RunID, r.Tool, r.Commit)
	fmt.Fprintf(w, "machine: %d CPU %s, %s RAM, %s, %s\n", r.Machine.NumCPU, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Kernel, r.Machine.GoVersion)
	fmt.Fprintf(w, "disk: %.0f fsync/s (4 KiB append + fsync in %s)\n", r.FsyncPerSec, r.Machine.DataDir)
	names := make([]string, 0, len(r.Searches))
	for n := range r.Searches {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := r.Searches[n]
		fmt.Fprintf(w, "search %s: max %.0f/s\n", n, s.Max)
		for _, st := range s.Steps {
			fmt.Fprintf(w, "   %8.0f/s offered  %8.0f/s ok  ok %6.2f%%  dropped %5.2f%%  p99 %7.2f ms  cpu gw %.2f loadgen %.2f  %s %s\n",
				st.Rate, st.Throughput, 100*st.OKRate, 100*st.Dropped, st.P99ms, st.CPU["gateway"], st.CPU["loadgen"], map[bool]string{true: "pass", false: "FAIL"}[st.Pass], st.Why)
		}
	}
	fmt.Fprintf(w, "\n%-13s %-9s %9s %9s %8s %8s %9s %9s %9s %9s  %-24s %s\n", "scenario", "op", "offered/s", "ok/s", "ok%", "dropped", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "cpu gw/sb/loadgen/all", "unexpected")
	for _, s := range r.Scenarios {
		for i, op := range sortedKeys(s.Ops) {
			o := s.Ops[op]
			name, unexp, cpu := "", "", ""
			offered := fmt.Sprintf("%.0f", o.Rate)
			if i == 0 {
				name = s.Name
				unexp = formatCounts(s.Unexpected)
				cpu = fmt.Sprintf("%.2f/%.2f/%.2f/%.2f", s.CPU["gateway"], s.CPU["sandbox"], s.CPU["loadgen"], s.CPU["machine"])
			}
			if o.Rate == 0 { // the wrk fallback has no offered rate
				offered = "-"
			}
			fmt.Fprintf(w, "%-13s %-9s %9s %9.0f %7.2f%% %7.2f%% %9.2f %9.2f %9.2f %9.2f  %-24s %s\n",
				name, op, offered, o.Throughput, 100*o.OKRate, 100*o.DroppedRatio, o.P50, o.P99, o.P999, o.Max, cpu, unexp)
		}
		if len(s.Ops) > 1 {
			fmt.Fprintf(w, "%-13s %-9s %9.0f %9.0f %7.2f%% %7.2f%%\n", "", "(all)", s.Rate, s.Throughput, 100*s.OKRate, 100*droppedRatio(s))
		}
		for _, e := range sortedKeys(s.Errors) {
			fmt.Fprintf(w, "%-13s   no answer ×%d: %s\n", "", s.Errors[e], e)
		}
	}
	if r.Added != nil {
		fmt.Fprintf(w, "\nadded latency (gateway − provider at %.0f/s): p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n", r.Added.Rate, r.Added.P50, r.Added.P99, r.Added.P999)
	}
	if r.CreatedPerSec > 0 && r.FsyncPerSec > 0 {
		fmt.Fprintf(w, "refunds per fsync: %.2f (%.0f created/s ÷ %.0f fsync/s)\n", r.RefundsPerFsync, r.CreatedPerSec, r.FsyncPerSec)
	}
	fmt.Fprintf(w, "gateway RSS: start %s, peak %s, end %s (%d samples)\n", kb(r.RSS.StartKB), kb(r.RSS.PeakKB), kb(r.RSS.EndKB), r.RSS.Samples)
	if r.Soak != nil {
		fmt.Fprintf(w, "soak %s at %.0f/s: RSS after warm-up %s, end %s, peak %s, ×%.2f → flat: %v\n", r.Soak.Duration, r.Soak.Rate,
			kb(r.Soak.WarmupKB), kb(r.Soak.EndKB), kb(r.Soak.PeakKB), r.Soak.GrowthRatio, r.Soak.Flat)
	}
	if r.Profile != nil {
		if r.Profile.Err != "" {
			fmt.Fprintf(w, "profile: %s\n", r.Profile.Err)
		} else {
			fmt.Fprintf(w, "profile: %s\n%s\n", r.Profile.File, r.Profile.Top)
		}
	}
	if len(r.GatewayLog) > 0 {
		fmt.Fprintf(w, "\ngateway warn/error log lines:\n")
		for _, l := range r.GatewayLog {
			fmt.Fprintf(w, "  %6d× %-5s %s  e.g. %s\n", l.Count, l.Level, l.Msg, truncate(l.First, 300))
		}
	}
	fmt.Fprintf(w, "\nbudget:\n")
	for _, b := range r.Budget {
		fmt.Fprintf(w, "  %-40s %-36s %-50s met: %s\n", b.Name, b.Target, b.Measured, b.Met)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func formatCounts(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%.0f", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func kb(v int64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(v)/1024)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// write stores the results as results-<timestamp>.json and latest.json.
func (r *Results) write(outDir string) (string, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	name := filepath.Join(outDir, "results-"+r.StartedAt.UTC().Format("20060102T150405Z")+".json")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return "", err
	}
	return name, os.WriteFile(filepath.Join(outDir, "latest.json"), b, 0o644)
}
