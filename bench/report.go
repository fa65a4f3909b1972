package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// print writes the human summary: each store's section, the stores side
// by side, then the budget (judged on SQLite, the other stores beside it).
func (r *Results) print(w io.Writer) {
	fmt.Fprintf(w, "\n== refundgate benchmark %s (%s, commit %s)\n", r.RunID, r.Tool, r.Commit)
	fmt.Fprintf(w, "machine: %d CPU %s, %s RAM, %s, %s\n", r.Machine.NumCPU, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Kernel, r.Machine.GoVersion)
	if r.Settings.Provider != "" {
		fmt.Fprintf(w, "refunds of: %s payments", r.Settings.Provider)
		if r.Settings.Webhooks {
			fmt.Fprintf(w, ", with the sandbox's refund webhooks to the gateway")
		}
		fmt.Fprintln(w)
	}
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
		if sr.Fsync != nil {
			fmt.Fprintf(w, "disk: 4 KiB append + fsync in %s: %s", sr.FsyncDir, sr.Fsync)
		} else {
			fmt.Fprintf(w, "disk: %.0f fsync/s (4 KiB append + fsync in %s)", sr.FsyncPerSec, sr.FsyncDir)
		}
		if sr.FsyncNote != "" {
			fmt.Fprintf(w, "; %s", sr.FsyncNote)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "disk: fsync rate not measured: %s\n", sr.FsyncNote)
	}
	if sr.Wake != nil {
		fmt.Fprintf(w, "wake-ups: %s\n", sr.Wake)
	}
	if sr.Webhooks != nil {
		fmt.Fprintf(w, "webhooks to the gateway: %s\n", webhookLine(sr.Webhooks))
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
		if st := s.StoreLatency; st != nil && st.Writes > 0 {
			fmt.Fprintf(w, "%-13s   store: %d writes, on disk p50 ≤ %s ms, p99 ≤ %s ms; %d fdatasyncs, p50 ≤ %s ms, p99 ≤ %s ms, %d over %s\n", "",
				st.Writes, bound(st.WriteWaitP50), bound(st.WriteWaitP99), st.Syncs, bound(st.WALSyncP50), bound(st.WALSyncP99), st.WALSyncStalls, stallAfter)
		}
		if g := s.GatewayLatency; g != nil {
			fmt.Fprintf(w, "%-13s   in the gateway: %d POST /v1/refunds, p50 ≤ %s ms, p99 ≤ %s ms; %d provider refund calls, p50 ≤ %s ms, p99 ≤ %s ms\n", "",
				g.Creates, bound(g.CreateP50), bound(g.CreateP99), g.ProviderCalls, bound(g.ProviderP50), bound(g.ProviderP99))
		}
		if g, ok := s.CPU["gateway_runq"]; ok {
			fmt.Fprintf(w, "%-13s   run queue: gateway %.2f, sandbox %.2f threads waiting for a CPU on average\n", "", g, s.CPU["sandbox_runq"])
		}
		if t := thirds(s); t != "" {
			fmt.Fprintf(w, "%-13s   p99 by third of the run: %s ms (by send time; a rise is the run itself slowing, e.g. a growing database)\n", "", t)
		}
	}
	if sr.Added != nil {
		fmt.Fprintf(w, "\nadded latency (gateway − provider at %.0f/s): p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n", sr.Added.Rate, sr.Added.P50, sr.Added.P99, sr.Added.P999)
		fmt.Fprintf(w, "  window p99 added %.2f ms (the median of the %s windows' p99s: the run between its stalls; not judged)\n", sr.Added.WindowP99, window)
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
		fmt.Fprintf(w, "  once a minute: RSS MiB %s\n", mibs(sr.Soak.Curve))
		fmt.Fprintf(w, "                 anon MiB %s\n", mibs(sr.Soak.AnonCurve))
		fmt.Fprintf(w, "                 files MiB %s\n", mibs(sr.Soak.FileCurve))
		fmt.Fprintf(w, "                 Go heap in use MiB %s\n", mibs(sr.Soak.HeapCurve))
		fmt.Fprintf(w, "                 Go runtime MiB %s\n", mibs(sr.Soak.GoCurve))
		fmt.Fprintf(w, "                 anon outside Go MiB %s\n", mibs(outsideGo(sr.Soak.AnonCurve, sr.Soak.GoCurve)))
		fmt.Fprintf(w, "                 goroutines %s\n", ints(sr.Soak.GoroutineCurve))
		fmt.Fprintf(w, "                 open fds %s\n", ints(sr.Soak.FDCurve))
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

// mibs prints KB values as MiB with one decimal, "-" for unknown (< 0).
func mibs(v []int64) string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = "-"
		if x >= 0 {
			out[i] = fmt.Sprintf("%.1f", float64(x)/1024)
		}
	}
	return strings.Join(out, " ")
}

// outsideGo is anon − Go runtime, minute by minute: -1 where either is
// unknown.
func outsideGo(anon, goKB []int64) []int64 {
	out := make([]int64, len(anon))
	for i, a := range anon {
		out[i] = -1
		if i < len(goKB) && goKB[i] >= 0 && a >= 0 {
			out[i] = a - goKB[i]
		}
	}
	return out
}

// ints prints counts, "-" for unknown (< 0).
func ints(v []int64) string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = "-"
		if x >= 0 {
			out[i] = strconv.FormatInt(x, 10)
		}
	}
	return strings.Join(out, " ")
}

// bound prints a bucket's upper bound in ms.
func bound(ms upperMS) string {
	if math.IsInf(float64(ms), 1) {
		return "∞"
	}
	return strconv.FormatFloat(float64(ms), 'g', 4, 64)
}

// thirds formats the p99s by third of the run of a fixed-rate scenario's
// one operation (create-half, provider-half, create-soak), or "".
func thirds(s *Scenario) string {
	if len(s.Ops) != 1 || !strings.HasSuffix(s.Name, "-half") && s.Name != "create-soak" {
		return ""
	}
	for _, o := range s.Ops {
		if len(o.ThirdsP99) == 3 {
			return fmt.Sprintf("%.2f, %.2f, %.2f", o.ThirdsP99[0], o.ThirdsP99[1], o.ThirdsP99[2])
		}
	}
	return ""
}
