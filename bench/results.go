package main

import (
	"fmt"
	"time"

	"github.com/refundgate/refundgate/sandbox"
)

// Results is everything one run measured; it is printed and written as
// JSON to bench/out/results-<timestamp>.json and bench/out/latest.json.
// Each store the run measured has its own block in Stores, with its own
// fsync probe, searches, scenarios and derived figures; the budget is
// judged on SQLite's block and shows the other stores' figures beside it.
type Results struct {
	RunID     string    `json:"run_id"`
	StartedAt time.Time `json:"started_at"`
	Commit    string    `json:"commit"`
	Machine   Machine   `json:"machine"`
	Tool      string    `json:"tool"`
	Settings  Settings  `json:"settings"`

	// Stores are the stores chosen with --stores, in the order they ran;
	// a store that could not be measured has only Skipped.
	Stores []*StoreRun `json:"stores"`

	// Budget is judged on SQLite (the budget names SQLite
	// synchronous=FULL); each promise lists the other stores' figures in
	// OtherStores, not judged.
	Budget []Budget `json:"budget"`
	Notes  []string `json:"notes,omitempty"`
}

// StoreRun is what one store measured: a fresh sandbox and a fresh gateway
// process on that store, the fsync probe, the searches and the scenarios.
type StoreRun struct {
	// Store is "sqlite" or "postgres".
	Store string `json:"store"`
	// Skipped says why a chosen store was not measured (PostgreSQL
	// unreachable); nothing else is set then.
	Skipped string `json:"skipped,omitempty"`
	// DSN is the gateway's store.dsn: the SQLite file, or the run's own
	// PostgreSQL database (password redacted).
	DSN      string        `json:"dsn,omitempty"`
	Postgres *PostgresInfo `json:"postgres,omitempty"`

	// FsyncPerSec is the raw rate of 4 KiB append + fsync in FsyncDir, on
	// the store's disk, measured right before the store's scenarios;
	// FsyncNote says why it was not measured, or where.
	FsyncPerSec float64     `json:"fsync_per_sec"`
	Fsync       *FsyncProbe `json:"fsync,omitempty"`
	FsyncDir    string      `json:"fsync_dir,omitempty"`
	FsyncNote   string      `json:"fsync_note,omitempty"`
	// Wake is the wake-up probe, run right after the fsync probe.
	Wake *WakeProbe `json:"wake,omitempty"`
	// Webhooks is what the sandbox's webhook sender did over the store's
	// runs (--webhooks), read once it had nothing left to send or gave up
	// waiting.
	Webhooks *sandbox.WebhookStats `json:"webhooks,omitempty"`

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
	// RefundsPerStoreSync is the refunds created in create-max divided by
	// the fsyncs the store itself counted over it (Scenario.StoreSyncs).
	RefundsPerStoreSync float64 `json:"refunds_per_store_sync,omitempty"`
	// Added is gateway − provider latency at the same rate (half the max).
	Added *Added `json:"added_latency,omitempty"`
	// MaxReplayRate is the highest offered replay rate that passed.
	MaxReplayRate float64 `json:"max_replay_rate"`
	// ReplayedPerSec is the replay throughput at MaxReplayRate.
	ReplayedPerSec float64 `json:"replayed_per_sec"`

	// RSS is this store's gateway process's resident memory.
	RSS     RSSReport `json:"rss"`
	Soak    *Soak     `json:"soak,omitempty"`
	Profile *Profile  `json:"profile,omitempty"`

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
	MaxConns     int     `json:"max_connections,omitempty"`
	Stores       string  `json:"stores"`
	// Provider is whose payments the refunds went to; Webhooks says the
	// sandbox sent its refund webhooks to the gateway meanwhile.
	Provider string `json:"provider"`
	Webhooks bool   `json:"webhooks,omitempty"`
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
	// Store is the gateway's store during the run: "sqlite" or "postgres"
	// (the provider-only runs too name the store run they belong to).
	Store string `json:"store"`
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
	// gateway_runq and sandbox_runq are not CPU used but the time their
	// threads were runnable and waiting for a CPU, also in cores (1.0 = one
	// thread waiting all the time; see runqWait).
	CPU map[string]float64 `json:"cpu_cores,omitempty"`
	// StoreSyncs is the fsyncs the store itself counted from the start of
	// the run until the gateway was idle after it: SQLite's
	// refundgate_store_wal_syncs_total (from the gateway's /metrics) or
	// PostgreSQL's pg_stat_wal.wal_sync (server-wide). Absent when the
	// counter could not be read.
	StoreSyncs *int64 `json:"store_syncs,omitempty"`
	// StoreLatency is the SQLite store's own latency during the load, from the
	// gateway's histograms.
	StoreLatency *StoreLatency `json:"store_latency,omitempty"`
	// GatewayLatency is the time the gateway's handlers and provider calls
	// took during the load, from its own histograms.
	GatewayLatency *GatewayLatency `json:"gateway_latency,omitempty"`
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
	// WindowP99 is the median, over the run's half-second windows (by send
	// time), of each window's p99; WorstWindowP99 is the largest of them.
	WindowP99      float64 `json:"window_p99_ms,omitempty"`
	WorstWindowP99 float64 `json:"worst_window_p99_ms,omitempty"`
	// ThirdsP99 is the p99 of the requests sent in the run's first, middle
	// and last third, in that order (see thirdsP99).
	ThirdsP99 []float64 `json:"p99_by_third_ms,omitempty"`
}

// Added is the gateway's own latency: gateway − provider at one rate.
type Added struct {
	Rate float64 `json:"rate"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	// WindowP99 is the gateway's WindowP99 less the provider's: the added
	// p99 between the disk's stalls. Not judged; the budget is the p99.
	WindowP99 float64 `json:"window_p99_ms"`
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
	// Curve is one RSS sample (KB) per minute; the curves below are taken
	// at the same moments.
	Curve []int64 `json:"rss_per_minute_kb"`
	// AnonCurve and FileCurve split RSS into anonymous memory and mapped
	// files (KB).
	AnonCurve []int64 `json:"rss_anon_per_minute_kb"`
	FileCurve []int64 `json:"rss_file_per_minute_kb"`
	// HeapCurve is the Go heap in use (KB), GoroutineCurve the goroutines,
	// FDCurve the open file descriptors (mostly connections): -1 where the
	// gateway's /metrics did not answer.
	HeapCurve []int64 `json:"heap_inuse_per_minute_kb"`
	// GoCurve is what the Go runtime holds (KB, see rssSample.GoKB).
	GoCurve        []int64 `json:"go_runtime_per_minute_kb"`
	GoroutineCurve []int64 `json:"goroutines_per_minute"`
	FDCurve        []int64 `json:"open_fds_per_minute"`
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
	// OtherStores is the same figure on each other store measured (by
	// store), shown beside the judged one and not judged itself.
	OtherStores map[string]string `json:"other_stores,omitempty"`
}

// LogLine is a distinct gateway log message and how often it appeared.
type LogLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Count int    `json:"count"`
	First string `json:"first"`
}

func (sr *StoreRun) scenario(name string) *Scenario {
	for _, s := range sr.Scenarios {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// store returns the block of one store, nil if it was not chosen.
func (r *Results) store(name string) *StoreRun {
	for _, sr := range r.Stores {
		if sr.Store == name {
			return sr
		}
	}
	return nil
}

// measured returns the stores that were measured (not skipped).
func (r *Results) measured() []*StoreRun {
	var out []*StoreRun
	for _, sr := range r.Stores {
		if sr.Skipped == "" {
			out = append(out, sr)
		}
	}
	return out
}

// derive computes the store's figures from its scenarios.
func (sr *StoreRun) derive() {
	if s := sr.scenario("create-max"); s != nil {
		if o := s.Ops["create"]; o != nil {
			sr.CreatedPerSec = o.Throughput
			if s.StoreSyncs != nil && *s.StoreSyncs > 0 {
				sr.RefundsPerStoreSync = o.Throughput * s.Duration / float64(*s.StoreSyncs)
			}
		}
	}
	if sr.CreatedPerSec > 0 && sr.FsyncPerSec > 0 {
		sr.RefundsPerFsync = sr.CreatedPerSec / sr.FsyncPerSec
	}
	if s := sr.scenario("replay-max"); s != nil {
		if o := s.Ops["replay"]; o != nil {
			sr.ReplayedPerSec = o.Throughput
		}
	}
	gw, pv := sr.scenario("create-half"), sr.scenario("provider-half")
	if gw != nil && pv != nil && gw.Ops["create"] != nil && pv.Ops["provider"] != nil {
		g, p := gw.Ops["create"], pv.Ops["provider"]
		sr.Added = &Added{Rate: gw.Rate, P50: g.P50 - p.P50, P99: g.P99 - p.P99, P999: g.P999 - p.P999,
			WindowP99: g.WindowP99 - p.WindowP99}
	}
}

// budgetStore is the store the budget is judged on.
const budgetStore = "sqlite"

// budget judges the promises of BENCHMARKS.md on SQLite's numbers, and
// puts every other measured store's figures beside them, not judged.
func (r *Results) budget() []Budget {
	judged := r.store(budgetStore)
	if judged != nil && judged.Skipped != "" {
		judged = nil
	}
	var out []Budget
	if judged != nil {
		out = judged.budget()
	} else {
		for _, b := range (&StoreRun{}).budget() {
			b.Measured, b.Met = "-", "not measured (the budget is judged on SQLite, which this run did not measure)"
			out = append(out, b)
		}
	}
	for _, sr := range r.measured() {
		if sr == judged {
			continue
		}
		for i, b := range sr.budget() {
			if out[i].OtherStores == nil {
				out[i].OtherStores = map[string]string{}
			}
			m := b.Measured
			if b.Met == "yes" || b.Met == "no" {
				m += " (would be " + b.Met + ")"
			}
			out[i].OtherStores[sr.Store] = m
		}
	}
	return out
}

// budget is the promises judged on this store's numbers.
func (sr *StoreRun) budget() []Budget {
	var out []Budget
	yn := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	if s := sr.scenario("create-max"); s != nil {
		out = append(out, Budget{Name: "created refunds/s", Target: "≥ 3,000 (aim 5,000)",
			Measured: fmt.Sprintf("%.0f/s (offered %.0f/s, ok %.2f%%)", sr.CreatedPerSec, s.Rate, 100*s.OKRate), Met: yn(sr.CreatedPerSec >= 3000 && s.Pass)})
	} else {
		out = append(out, Budget{Name: "created refunds/s", Target: "≥ 3,000 (aim 5,000)", Measured: "-", Met: "not measured"})
	}
	if sr.Added != nil {
		m := fmt.Sprintf("%.2f ms at %.0f/s", sr.Added.P99, sr.Added.Rate)
		if sr.Wake != nil {
			// The machine's own floor, beside the verdict it bounds.
			m += fmt.Sprintf(" (idle wake-ups late by p99 %.2f ms)", sr.Wake.P99)
		}
		out = append(out, Budget{Name: "p99 added latency at half the max rate", Target: "< 5 ms", Measured: m, Met: yn(sr.Added.P99 < 5)})
	} else {
		out = append(out, Budget{Name: "p99 added latency at half the max rate", Target: "< 5 ms", Measured: "-", Met: "not measured"})
	}
	if s := sr.scenario("replay-max"); s != nil {
		out = append(out, Budget{Name: "idempotent replays/s", Target: "≥ 10,000",
			Measured: fmt.Sprintf("%.0f/s (offered %.0f/s, ok %.2f%%)", sr.ReplayedPerSec, s.Rate, 100*s.OKRate), Met: yn(sr.ReplayedPerSec >= 10000 && s.Pass)})
	} else {
		out = append(out, Budget{Name: "idempotent replays/s", Target: "≥ 10,000", Measured: "-", Met: "not measured"})
	}
	if sr.Soak != nil {
		out = append(out, Budget{Name: "memory flat over 10 min", Target: "end RSS ≤ 1.2 × RSS after warm-up",
			Measured: fmt.Sprintf("%s at %.0f/s: %d → %d KB (×%.2f)", sr.Soak.Duration, sr.Soak.Rate, sr.Soak.WarmupKB, sr.Soak.EndKB, sr.Soak.GrowthRatio),
			Met:      map[bool]string{true: yn(sr.Soak.Flat), false: "not measured (soak shorter than 10m)"}[soakLongEnough(sr.Soak.Duration)]})
	} else {
		out = append(out, Budget{Name: "memory flat over 10 min", Target: "end RSS ≤ 1.2 × RSS after warm-up", Measured: "-", Met: "not measured (run with --soak 10m)"})
	}
	return out
}

func soakLongEnough(d string) bool {
	v, err := time.ParseDuration(d)
	return err == nil && v >= 10*time.Minute
}
