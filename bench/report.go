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
	"unicode/utf8"
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
	FsyncPerSec float64 `json:"fsync_per_sec"`
	FsyncDir    string  `json:"fsync_dir,omitempty"`
	FsyncNote   string  `json:"fsync_note,omitempty"`

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
	Stores       string  `json:"stores"`
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
	CPU map[string]float64 `json:"cpu_cores,omitempty"`
	// StoreSyncs is the fsyncs the store itself counted from the start of
	// the run until the gateway was idle after it: SQLite's
	// refundgate_store_wal_syncs_total (from the gateway's /metrics) or
	// PostgreSQL's pg_stat_wal.wal_sync (server-wide). Absent when the
	// counter could not be read.
	StoreSyncs *int64 `json:"store_syncs,omitempty"`
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
		sr.Added = &Added{Rate: gw.Rate, P50: g.P50 - p.P50, P99: g.P99 - p.P99, P999: g.P999 - p.P999}
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
		out = append(out, Budget{Name: "p99 added latency at half the max rate", Target: "< 5 ms",
			Measured: fmt.Sprintf("%.2f ms at %.0f/s", sr.Added.P99, sr.Added.Rate), Met: yn(sr.Added.P99 < 5)})
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

// print writes the human summary: each store's section, the stores side
// by side, then the budget (judged on SQLite, the other stores beside it).
func (r *Results) print(w io.Writer) {
	fmt.Fprintf(w, "\n== refundgate benchmark %s (%s, commit %s)\n", r.RunID, r.Tool, r.Commit)
	fmt.Fprintf(w, "machine: %d CPU %s, %s RAM, %s, %s\n", r.Machine.NumCPU, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Kernel, r.Machine.GoVersion)
	for _, sr := range r.Stores {
		if sr.Skipped != "" {
			fmt.Fprintf(w, "\n== store %s: NOT MEASURED: %s\n", sr.Store, sr.Skipped)
			continue
		}
		sr.print(w)
	}
	if ms := r.measured(); len(ms) > 1 {
		fmt.Fprintf(w, "\n== stores side by side\n")
		printTable(w, sideBySide(ms))
	}
	fmt.Fprintf(w, "\nbudget (judged on %s", budgetStore)
	var others []string
	for _, sr := range r.measured() {
		if sr.Store != budgetStore {
			others = append(others, sr.Store)
		}
	}
	if len(others) > 0 {
		fmt.Fprintf(w, "; %s beside it, not judged", strings.Join(others, ", "))
	}
	fmt.Fprintf(w, "):\n")
	rows := [][]string{append([]string{"promise", "target", budgetStore, "met"}, others...)}
	for _, b := range r.Budget {
		row := []string{b.Name, b.Target, b.Measured, b.Met}
		for _, o := range others {
			row = append(row, b.OtherStores[o])
		}
		rows = append(rows, row)
	}
	printTable(w, rows)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// print writes one store's section.
func (sr *StoreRun) print(w io.Writer) {
	fmt.Fprintf(w, "\n== store %s: %s\n", sr.Store, sr.DSN)
	if p := sr.Postgres; p != nil {
		fmt.Fprintf(w, "postgres: %s, database %s (%s), %s; gateway pool %s\n", p.ServerVersion, p.Database,
			map[bool]string{true: "kept", false: "dropped at the end"}[p.Kept], p.settingsLine(), p.GatewayPool)
		if !p.Durable {
			fmt.Fprintf(w, "postgres: NOT DURABLE COMMITS (fsync or synchronous_commit is off): these numbers are not comparable with SQLite's\n")
		}
	}
	if sr.FsyncPerSec > 0 {
		fmt.Fprintf(w, "disk: %.0f fsync/s (4 KiB append + fsync in %s)", sr.FsyncPerSec, sr.FsyncDir)
		if sr.FsyncNote != "" {
			fmt.Fprintf(w, "; %s", sr.FsyncNote)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "disk: fsync rate not measured: %s\n", sr.FsyncNote)
	}
	for _, n := range sortedKeys(sr.Searches) {
		s := sr.Searches[n]
		fmt.Fprintf(w, "search %s: max %.0f/s\n", n, s.Max)
		for _, st := range s.Steps {
			fmt.Fprintf(w, "   %8.0f/s offered  %8.0f/s ok  ok %6.2f%%  dropped %5.2f%%  p99 %7.2f ms  cpu gw %.2f%s loadgen %.2f  %s %s\n",
				st.Rate, st.Throughput, 100*st.OKRate, 100*st.Dropped, st.P99ms, st.CPU["gateway"], dbCPU(st.CPU, " db "), st.CPU["loadgen"], map[bool]string{true: "pass", false: "FAIL"}[st.Pass], st.Why)
		}
	}
	fmt.Fprintf(w, "\n%-13s %-9s %9s %9s %8s %8s %9s %9s %9s %9s  %-29s %s\n", "scenario", "op", "offered/s", "ok/s", "ok%", "dropped", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "cpu gw/db/sb/loadgen/all", "unexpected")
	for _, s := range sr.Scenarios {
		for i, op := range sortedKeys(s.Ops) {
			o := s.Ops[op]
			name, unexp, cpu := "", "", ""
			offered := fmt.Sprintf("%.0f", o.Rate)
			if i == 0 {
				name = s.Name
				unexp = formatCounts(s.Unexpected)
				db := dbCPU(s.CPU, "")
				if db == "" {
					db = "-"
				}
				cpu = fmt.Sprintf("%.2f/%s/%.2f/%.2f/%.2f", s.CPU["gateway"], db, s.CPU["sandbox"], s.CPU["loadgen"], s.CPU["machine"])
			}
			if o.Rate == 0 { // the wrk fallback has no offered rate
				offered = "-"
			}
			fmt.Fprintf(w, "%-13s %-9s %9s %9.0f %7.2f%% %7.2f%% %9.2f %9.2f %9.2f %9.2f  %-29s %s\n",
				name, op, offered, o.Throughput, 100*o.OKRate, 100*o.DroppedRatio, o.P50, o.P99, o.P999, o.Max, cpu, unexp)
		}
		if len(s.Ops) > 1 {
			fmt.Fprintf(w, "%-13s %-9s %9.0f %9.0f %7.2f%% %7.2f%%\n", "", "(all)", s.Rate, s.Throughput, 100*s.OKRate, 100*droppedRatio(s))
		}
		for _, e := range sortedKeys(s.Errors) {
			fmt.Fprintf(w, "%-13s   no answer ×%d: %s\n", "", s.Errors[e], e)
		}
	}
	if sr.Added != nil {
		fmt.Fprintf(w, "\nadded latency (gateway − provider at %.0f/s): p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n", sr.Added.Rate, sr.Added.P50, sr.Added.P99, sr.Added.P999)
	}
	if sr.CreatedPerSec > 0 && sr.FsyncPerSec > 0 {
		fmt.Fprintf(w, "refunds per fsync: %.2f (%.0f created/s ÷ %.0f fsync/s)\n", sr.RefundsPerFsync, sr.CreatedPerSec, sr.FsyncPerSec)
	}
	if s := sr.scenario("create-max"); s != nil && s.StoreSyncs != nil {
		fmt.Fprintf(w, "refunds per store fsync in create-max: %.2f (%d fsyncs counted by the store, %s)\n", sr.RefundsPerStoreSync, *s.StoreSyncs, syncCounter(sr.Store))
	}
	fmt.Fprintf(w, "gateway RSS: start %s, peak %s, end %s (%d samples)\n", kb(sr.RSS.StartKB), kb(sr.RSS.PeakKB), kb(sr.RSS.EndKB), sr.RSS.Samples)
	if sr.Soak != nil {
		fmt.Fprintf(w, "soak %s at %.0f/s: RSS after warm-up %s, end %s, peak %s, ×%.2f → flat: %v\n", sr.Soak.Duration, sr.Soak.Rate,
			kb(sr.Soak.WarmupKB), kb(sr.Soak.EndKB), kb(sr.Soak.PeakKB), sr.Soak.GrowthRatio, sr.Soak.Flat)
	}
	if sr.Profile != nil {
		if sr.Profile.Err != "" {
			fmt.Fprintf(w, "profile: %s\n", sr.Profile.Err)
		} else {
			fmt.Fprintf(w, "profile: %s\n%s\n", sr.Profile.File, sr.Profile.Top)
		}
	}
	if len(sr.GatewayLog) > 0 {
		fmt.Fprintf(w, "gateway warn/error log lines:\n")
		for _, l := range sr.GatewayLog {
			fmt.Fprintf(w, "  %6d× %-5s %s  e.g. %s\n", l.Count, l.Level, l.Msg, truncate(l.First, 300))
		}
	}
	for _, n := range sr.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// dbCPU formats the database server's cores (the "postgres" entry), or ""
// when the store runs inside the gateway (SQLite) or was not measured.
func dbCPU(cpu map[string]float64, prefix string) string {
	v, ok := cpu["postgres"]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s%.2f", prefix, v)
}

func syncCounter(store string) string {
	if store == "postgres" {
		return "pg_stat_wal.wal_sync, server-wide"
	}
	return "refundgate_store_wal_syncs_total"
}

// sideBySide is the table of every measured store's figures, one column a
// store: the fsync probe, each scenario's answers and latency, the derived
// figures.
func sideBySide(stores []*StoreRun) [][]string {
	head := []string{""}
	for _, sr := range stores {
		head = append(head, sr.Store)
	}
	rows := [][]string{head}
	row := func(label string, cell func(sr *StoreRun) string) {
		r := []string{label}
		for _, sr := range stores {
			r = append(r, cell(sr))
		}
		rows = append(rows, r)
	}
	row("fsync/s (probe)", func(sr *StoreRun) string {
		if sr.FsyncPerSec == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", sr.FsyncPerSec)
	})
	// Every scenario and operation any store ran, in the order first run.
	type key struct{ scen, op string }
	var keys []key
	seen := map[key]bool{}
	for _, sr := range stores {
		for _, s := range sr.Scenarios {
			for _, op := range sortedKeys(s.Ops) {
				if k := (key{s.Name, op}); !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
	}
	for _, k := range keys {
		label := k.scen
		if k.scen != k.op+"-max" && k.scen != k.op+"-half" && k.scen != k.op+"-soak" {
			label += ": " + k.op
		}
		row(label, func(sr *StoreRun) string {
			s := sr.scenario(k.scen)
			if s == nil || s.Ops[k.op] == nil {
				return "-"
			}
			o := s.Ops[k.op]
			c := fmt.Sprintf("%.0f/s ok of %.0f, p50 %.2f p99 %.2f ms", o.Throughput, o.Rate, o.P50, o.P99)
			if !s.Pass {
				c += " FAIL"
			}
			return c
		})
	}
	row("added latency p50 / p99", func(sr *StoreRun) string {
		if sr.Added == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f / %.2f ms at %.0f/s", sr.Added.P50, sr.Added.P99, sr.Added.Rate)
	})
	row("refunds per store fsync", func(sr *StoreRun) string {
		if sr.RefundsPerStoreSync == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f (create-max)", sr.RefundsPerStoreSync)
	})
	row("cpu at create-max gw/db", func(sr *StoreRun) string {
		s := sr.scenario("create-max")
		if s == nil {
			return "-"
		}
		db := dbCPU(s.CPU, "")
		if db == "" {
			db = "- (in the gateway)"
		}
		return fmt.Sprintf("%.2f / %s", s.CPU["gateway"], db)
	})
	row("gateway RSS peak", func(sr *StoreRun) string { return kb(sr.RSS.PeakKB) })
	return rows
}

// printTable writes rows as left-aligned columns; the first row is the
// header.
func printTable(w io.Writer, rows [][]string) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			if n := utf8.RuneCountInString(c); n > width[i] {
				width[i] = n
			}
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			b.WriteString("  ")
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
			}
		}
		fmt.Fprintln(w, b.String())
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
