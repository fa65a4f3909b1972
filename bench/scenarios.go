package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func (h *harness) want(s string) bool {
	for _, x := range strings.Split(h.opts.scenarios, ",") {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// load makes the payments spec takes (freshPayments), rests, and runs it.
// announce, if set, is called after the rest, right before the load.
func (h *harness) load(ctx context.Context, spec loadSpec, announce func()) (*Scenario, error) {
	if err := h.freshPayments(ctx, spec); err != nil {
		return nil, err
	}
	h.rest(ctx)
	if announce != nil {
		announce()
	}
	return h.runLoad(ctx, spec)
}

// measure runs one scenario and keeps it in the results.
func (h *harness) measure(ctx context.Context, spec loadSpec) (*Scenario, error) {
	var (
		syncs0  int64
		syncsOK bool
		hist0   map[string]buckets
	)
	s, err := h.load(ctx, spec, func() {
		h.printf("%s: %.0f/s for %s against the %s", spec.Name, spec.Rate, spec.Duration, spec.Target)
		syncs0, syncsOK = h.storeSyncs()
		hist0 = h.histograms()
	})
	if err != nil {
		return nil, err
	}
	if hist0 != nil {
		hist := h.histograms()
		s.StoreLatency = storeLatency(hist0, hist)
		s.GatewayLatency = gatewayLatency(hist0, hist)
	}
	if syncsOK {
		// Read once the gateway is idle again (at the next rest or the
		// store's end): the store is still committing what vegeta gave up
		// waiting for, and PostgreSQL's statistics reach pg_stat_wal late.
		h.settle = func() {
			if v, ok := h.storeSyncs(); ok {
				d := v - syncs0
				s.StoreSyncs = &d
			}
		}
	}
	pass, why := judge(s)
	s.Pass = pass
	h.cur.Scenarios = append(h.cur.Scenarios, s)
	h.printf("%s: %.0f/s answered as expected (ok %.2f%%; sent %d of %d, dropped %.2f%%; cpu gateway %.2f%s loadgen %.2f machine %.2f) %s", spec.Name, s.Throughput,
		100*s.OKRate, s.Sent, s.Expected, 100*droppedRatio(s), s.CPU["gateway"], dbCPU(s.CPU, " postgres "), s.CPU["loadgen"], s.CPU["machine"], why)
	if len(s.Unexpected) > 0 {
		h.printf("%s: unexpected statuses %s; gateway log: %s", spec.Name, formatCounts(s.Unexpected), filepath.Join(h.storeDir, "gateway.log"))
	}
	return s, nil
}

// rest pauses between runs so that one run's backlog does not load the
// next: --pause, then until the gateway is idle (under 0.1 core for a
// second; it finishes requests whose callers the load tool already gave
// up on) and, for PostgreSQL on this machine, the database server too, at
// most 60 s. Then it settles the previous run's late figures.
func (h *harness) rest(ctx context.Context) {
	if h.seq == 0 {
		return
	}
	defer func() {
		if h.settle != nil && ctx.Err() == nil {
			h.settle()
		}
		h.settle = nil
	}()
	select {
	case <-ctx.Done():
		return
	case <-time.After(h.opts.pause):
	}
	deadline := time.Now().Add(60 * time.Second)
	prev := h.cpuTimes()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		cur := h.cpuTimes()
		if idle(prev, cur) {
			return
		}
		prev = cur
	}
	h.printf("the gateway or its database is still busy 60 s after the last run")
}

// idle says whether the gateway and the database server (when measured)
// each used under 0.1 core between two cpuTimes readings a second apart.
func idle(prev, cur map[string]float64) bool {
	for _, k := range []string{"gateway", "postgres"} {
		if _, ok := cur[k]; ok && cur[k]-prev[k] >= 0.1 {
			return false
		}
	}
	return true
}

// storeSyncs reads the store's own count of fsyncs: the gateway's
// refundgate_store_wal_syncs_total for SQLite, pg_stat_wal.wal_sync for
// PostgreSQL.
func (h *harness) storeSyncs() (int64, bool) {
	switch h.store {
	case "sqlite":
		return promCounter(metricsText(h.gatewayURL+"/metrics"), "refundgate_store_wal_syncs_total")
	case "postgres":
		return h.pgWALSyncs()
	}
	return 0, false
}

// search finds the highest passing rate for a mix: it doubles from the
// start rate until a step fails (or the ceiling passes), then bisects.
func (h *harness) search(ctx context.Context, name string, mix []share, startRate float64) (float64, error) {
	s := &Search{Scenario: name}
	h.cur.Searches[name] = s
	try := func(rate float64) (bool, error) {
		sc, err := h.load(ctx, loadSpec{Name: name + "-search", Rate: rate, Duration: h.opts.step, Mix: mix, Target: "gateway"}, nil)
		if err != nil {
			return false, err
		}
		pass, why := judge(sc)
		p99 := 0.0
		for _, o := range sc.Ops {
			p99 = math.Max(p99, o.P99)
		}
		s.Steps = append(s.Steps, &Step{Rate: rate, Throughput: sc.Throughput, OKRate: sc.OKRate, Dropped: droppedRatio(sc), P99ms: p99, Pass: pass, Why: why, CPU: sc.CPU})
		h.printf("search %s: %.0f/s offered → %.0f/s ok, p99 %.1f ms, cpu gateway %.2f%s loadgen %.2f machine %.2f: %s %s", name, rate, sc.Throughput, p99,
			sc.CPU["gateway"], dbCPU(sc.CPU, " postgres "), sc.CPU["loadgen"], sc.CPU["machine"], map[bool]string{true: "pass", false: "fail"}[pass], why)
		if len(sc.Unexpected) > 0 {
			h.printf("search %s: unexpected statuses %s", name, formatCounts(sc.Unexpected))
		}
		return pass, nil
	}
	var lo, hi float64
	rate := startRate
	for {
		pass, err := try(rate)
		if err != nil {
			return 0, err
		}
		if !pass {
			hi = rate
			break
		}
		lo = rate
		if rate >= h.opts.ceiling {
			break
		}
		rate = math.Min(rate*2, h.opts.ceiling)
	}
	// Even the start failed: halve until something passes.
	for r := startRate / 2; lo == 0 && r >= 25; r /= 2 {
		pass, err := try(r)
		if err != nil {
			return 0, err
		}
		if pass {
			lo = r
		} else {
			hi = r
		}
	}
	for i := 0; i < h.opts.bisections && lo > 0 && hi > lo && (hi-lo)/lo > 0.05; i++ {
		mid := roundRate((lo + hi) / 2)
		pass, err := try(mid)
		if err != nil {
			return 0, err
		}
		if pass {
			lo = mid
		} else {
			hi = mid
		}
	}
	s.Max = lo
	h.printf("search %s: max %.0f/s", name, lo)
	return lo, nil
}

// stepDown is the next create-max rate after a failed run at rate that
// answered throughput/s as expected: 85% of the rate, or 95% of what was
// answered if that is lower (a run that fell far behind says itself how
// much it could take).
func stepDown(rate, throughput float64) float64 {
	next := rate * 0.85
	if t := throughput * 0.95; t > 0 && t < next {
		next = t
	}
	return roundRate(next)
}

// roundRate rounds to a readable rate: 2 significant digits.
func roundRate(r float64) float64 {
	if r <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(r))-1)
	return math.Round(r/p) * p
}

func (h *harness) scenarios(ctx context.Context) error {
	o := h.opts
	max := o.rate
	if max == 0 && (h.want("create") || h.want("half") || h.want("mixed")) {
		var err error
		if max, err = h.search(ctx, "create", mixCreate, o.startRate); err != nil {
			return err
		}
	}
	h.cur.MaxCreateRate = max
	if max == 0 && (h.want("create") || h.want("half") || h.want("mixed")) {
		return fmt.Errorf("%s: no create rate passed, not even %.0f/s; see %s", h.store, 25.0, filepath.Join(h.storeDir, "gateway.log"))
	}
	if h.want("create") {
		var prof chan *Profile
		if o.profile {
			prof = make(chan *Profile, 1)
			go func() { prof <- h.takeProfile(ctx) }()
		}
		var after func()
		if prof != nil {
			after = func() { h.cur.Profile = <-prof }
		}
		var err error
		if max, err = h.maxRun(ctx, "create", max, mixCreate, after); err != nil {
			return err
		}
		h.cur.MaxCreateRate = max
	}
	if h.want("half") {
		if _, err := h.measure(ctx, loadSpec{Name: "create-half", Rate: roundRate(max / 2), Duration: o.duration, Mix: mixCreate, Target: "gateway"}); err != nil {
			return err
		}
		if _, err := h.measure(ctx, loadSpec{Name: "provider-half", Rate: roundRate(max / 2), Duration: o.duration, Mix: mixProvider, Target: "provider"}); err != nil {
			return err
		}
	}
	if h.want("replay") {
		rmax, err := h.search(ctx, "replay", mixReplay, math.Max(o.startRate, 1000))
		if err != nil {
			return err
		}
		if rmax > 0 {
			if rmax, err = h.maxRun(ctx, "replay", rmax, mixReplay, nil); err != nil {
				return err
			}
		}
		h.cur.MaxReplayRate = rmax
	}
	if h.want("read") {
		rmax, err := h.search(ctx, "read", mixRead, math.Max(o.startRate, 1000))
		if err != nil {
			return err
		}
		if rmax > 0 {
			if _, err := h.maxRun(ctx, "read", rmax, mixRead, nil); err != nil {
				return err
			}
		}
	}
	if h.want("mixed") {
		if _, err := h.measure(ctx, loadSpec{Name: "mixed", Rate: max, Duration: o.duration, Mix: mixMixed, Target: "gateway"}); err != nil {
			return err
		}
	}
	return nil
}

// maxRun runs <op>-max at the rate a search found, for the full duration.
// A short search step can pass where the full-length run does not (the
// queue builds up slowly), so it steps down until the full run passes too,
// at most twice, keeping each failed attempt in the results as <op>@<rate>.
// after, if set, runs once the first attempt is done. It returns the rate
// of the last attempt.
func (h *harness) maxRun(ctx context.Context, op string, rate float64, mix []share, after func()) (float64, error) {
	for attempt := 0; ; attempt++ {
		s, err := h.measure(ctx, loadSpec{Name: op + "-max", Rate: rate, Duration: h.opts.duration, Mix: mix, Target: "gateway"})
		if err != nil {
			return 0, err
		}
		if after != nil {
			after()
			after = nil
		}
		if s.Pass || attempt == 2 {
			return rate, nil
		}
		s.Name = fmt.Sprintf("%s@%.0f", op, rate)
		next := stepDown(rate, s.Throughput)
		h.cur.Notes = append(h.cur.Notes, fmt.Sprintf("%s-max at %.0f/s failed over %s (%s, %.0f/s answered); retried at %.0f/s", op, rate, h.opts.duration, why(s), s.Throughput, next))
		rate = next
	}
}

// soak runs the fixed-rate create load for --soak and judges memory.
func (h *harness) soak(ctx context.Context) error {
	max := h.cur.MaxCreateRate
	if max == 0 {
		max = h.opts.rate
	}
	if max == 0 {
		var err error
		if max, err = h.search(ctx, "create", mixCreate, h.opts.startRate); err != nil {
			return err
		}
		h.cur.MaxCreateRate = max
	}
	rate := roundRate(max / 2)
	from := time.Now()
	s, err := h.measure(ctx, loadSpec{Name: "create-soak", Rate: rate, Duration: h.opts.soak, Mix: mixCreate, Target: "gateway"})
	if err != nil {
		return err
	}
	warm, end, peak, curve := soakReport(h.rss.snapshot(), from, h.opts.soakWarmup)
	sk := &Soak{Rate: s.Rate, Duration: h.opts.soak.String(), WarmupKB: warm, EndKB: end, PeakKB: peak}
	for _, x := range curve {
		sk.Curve = append(sk.Curve, x.KB)
		sk.AnonCurve = append(sk.AnonCurve, x.AnonKB)
		sk.FileCurve = append(sk.FileCurve, x.FileKB)
		sk.HeapCurve = append(sk.HeapCurve, x.HeapKB)
		sk.GoCurve = append(sk.GoCurve, x.GoKB)
		sk.GoroutineCurve = append(sk.GoroutineCurve, x.Goroutines)
		sk.FDCurve = append(sk.FDCurve, int64(x.FDs))
	}
	if warm > 0 {
		sk.GrowthRatio = float64(end) / float64(warm)
	}
	sk.Flat = sk.GrowthRatio > 0 && sk.GrowthRatio <= 1.2
	h.cur.Soak = sk
	return nil
}

// takeProfile fetches a 15 s CPU profile from the gateway's pprof endpoint
// a few seconds into create-max and prints its top functions.
func (h *harness) takeProfile(ctx context.Context) *Profile {
	select {
	case <-ctx.Done():
		return &Profile{Err: ctx.Err().Error()}
	case <-time.After(h.opts.pause + 4*time.Second):
	}
	url := "http://" + h.opts.pprofAddr + "/debug/pprof/profile?seconds=15"
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		return &Profile{Err: fmt.Sprintf("no profile from %s: %v — the gateway does not serve pprof on REFUNDGATE_PPROF_ADDR yet (see BENCHMARKS.md)", url, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &Profile{Err: fmt.Sprintf("no profile from %s: status %d", url, resp.StatusCode)}
	}
	file := filepath.Join(h.outDir, "cpu-"+h.runID+"-"+h.store+".pprof")
	f, err := os.Create(file)
	if err != nil {
		return &Profile{Err: err.Error()}
	}
	_, err = io.Copy(f, resp.Body)
	f.Close()
	if err != nil {
		return &Profile{Err: err.Error()}
	}
	p := &Profile{File: file}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=30", h.bin, file).CombinedOutput()
	if err != nil {
		p.Err = fmt.Sprintf("go tool pprof: %v: %s", err, out)
	}
	p.Top = string(out)
	// Keep the binary beside the profile so that it can be read later.
	_ = copyFile(h.bin, filepath.Join(h.outDir, "refundgate-"+h.runID))
	return p
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func why(s *Scenario) string {
	_, w := judge(s)
	return w
}
