package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

//go:embed wrk.lua
var wrkScript []byte

// findWrk returns wrk from PATH, installing Debian's package when it is
// missing and apt-get is there.
func findWrk(ctx context.Context, log io.Writer) (string, error) {
	if p, err := exec.LookPath("wrk"); err == nil {
		return p, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("wrk is not on PATH and there is no apt-get to install it")
	}
	fmt.Fprintln(log, "wrk is not on PATH: apt-get install -y wrk")
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "wrk")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apt-get install -y wrk: %w", err)
	}
	return exec.LookPath("wrk")
}

// luaPool writes the pool as a Lua chunk for wrk.lua.
func luaPool(p pool) []byte {
	var b bytes.Buffer
	q := func(s string) string { r, _ := json.Marshal(s); return string(r) } // JSON strings are Lua strings here: ASCII, \" escapes
	b.WriteString("return {\npayments = {")
	for _, id := range p.Payments {
		b.WriteString(q(id) + ",")
	}
	b.WriteString("},\nreplays = {")
	for _, r := range p.Replays {
		fmt.Fprintf(&b, "{key = %s, body = %s},", q(r.Key), q(r.Body))
	}
	b.WriteString("},\nrefund_ids = {")
	for _, id := range p.RefundIDs {
		b.WriteString(q(id) + ",")
	}
	b.WriteString("},\n}\n")
	return b.Bytes()
}

// wrkResult is the BENCH_RESULT line of wrk.lua's done().
type wrkResult struct {
	Requests     float64            `json:"requests"`
	DurationUS   float64            `json:"duration_us"`
	P50us        float64            `json:"p50_us"`
	P90us        float64            `json:"p90_us"`
	P99us        float64            `json:"p99_us"`
	P999us       float64            `json:"p999_us"`
	MaxUS        float64            `json:"max_us"`
	MeanUS       float64            `json:"mean_us"`
	SocketErrors float64            `json:"socket_errors"`
	Counts       map[string]float64 `json:"counts"`
}

// parseWrk reads the BENCH_RESULT line into a Scenario for one operation.
func parseWrk(out []byte, op string) (*Scenario, error) {
	i := bytes.LastIndex(out, []byte("BENCH_RESULT "))
	if i < 0 {
		return nil, fmt.Errorf("no BENCH_RESULT line in wrk's output")
	}
	line, _, _ := bytes.Cut(out[i+len("BENCH_RESULT "):], []byte("\n"))
	var r wrkResult
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("wrk result %q: %w", line, err)
	}
	n := int(r.Requests)
	s := &Scenario{Ops: map[string]*OpStat{}, Unexpected: map[string]float64{}, Expected: n, Sent: n, Duration: r.DurationUS / 1e6}
	o := s.op(op)
	o.Count, o.Expected, o.Sent = r.Requests, n, n
	if r.Requests > 0 {
		o.OKRate = r.Counts["ok"] / r.Requests
	}
	ms := func(us float64) float64 { return us / 1000 }
	o.Avg, o.P50, o.P90, o.P99, o.P999, o.Max = ms(r.MeanUS), ms(r.P50us), ms(r.P90us), ms(r.P99us), ms(r.P999us), ms(r.MaxUS)
	for k, v := range r.Counts {
		if k != "ok" {
			s.Unexpected[k] = v
		}
	}
	if r.SocketErrors > 0 {
		s.Unexpected["0"] += r.SocketErrors
	}
	s.OKRate = o.OKRate
	s.setThroughput()
	s.Rate = s.Throughput
	return s, nil
}

// runWrk runs one single-operation scenario with wrk at --wrk-conns
// connections (a closed loop: the offered rate is whatever the gateway
// answers).
func (h *harness) runWrk(ctx context.Context, name, op string, d time.Duration) (*Scenario, error) {
	h.seq++
	dir := filepath.Join(h.storeDir, "wrk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tag := fmt.Sprintf("%02d-%s", h.seq, name)
	target := h.gatewayURL
	if op == "provider" {
		target = h.sandboxURL
	}
	h.setPhase(name)
	cpu0 := h.cpuTimes()
	start := time.Now()
	conns := fmt.Sprint(h.opts.wrkConns)
	cmd := exec.CommandContext(ctx, h.wrk, "-t2", "-c"+conns, "-d"+fmt.Sprintf("%ds", int(d.Seconds())), "--latency", "--timeout", "10s",
		"-s", filepath.Join(h.storeDir, "wrk.lua"), target)
	cmd.Env = append(os.Environ(), "BENCH_POOL="+filepath.Join(h.storeDir, "pool.lua"), "BENCH_OP="+op, "BENCH_API_KEY="+h.apiKey,
		"BENCH_PROVIDER_KEY="+h.providerKey, "BENCH_RUN_ID="+h.runID+tag)
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(filepath.Join(dir, tag+".log"), out, 0o644)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("wrk %s: %w: %s", tag, err, truncate(string(out), 800))
	}
	s, err := parseWrk(out, op)
	if err != nil {
		return nil, err
	}
	s.Name, s.Store, s.Target = name, h.store, map[bool]string{true: "provider", false: "gateway"}[op == "provider"]
	s.RSSPeakKB = h.rss.peakSince(start)
	s.CPU = cpuShare(cpu0, h.cpuTimes(), time.Since(start))
	s.Pass, _ = judge(s)
	h.collectLog()
	h.cur.Scenarios = append(h.cur.Scenarios, s)
	h.printf("%s (wrk, %s connections): %.0f/s answered as expected (ok %.2f%%), p99 %.2f ms %s", name, conns, s.Throughput, 100*s.OKRate, s.Ops[op].P99, formatCounts(s.Unexpected))
	return s, nil
}

// wrkScenarios is the reduced suite of the wrk fallback: each operation
// alone at a fixed concurrency. wrk cannot hold an arrival rate, so there is
// no rate search, no half-rate run and no added-latency figure.
func (h *harness) wrkScenarios(ctx context.Context) error {
	h.cur.Notes = append(h.cur.Notes, fmt.Sprintf("vegeta unavailable: wrk fallback, closed loop at %d connections; "+
		"no arrival-rate search, no half-rate run, no added latency, no mixed scenario", h.opts.wrkConns))
	if err := os.WriteFile(filepath.Join(h.storeDir, "wrk.lua"), wrkScript, 0o644); err != nil {
		return err
	}
	for _, sc := range []struct{ scen, name, op string }{
		{"create", "create-max", "create"},
		{"half", "provider-max", "provider"},
		{"replay", "replay-max", "replay"},
		{"read", "get-max", "get"},
		{"read", "list-max", "list"},
	} {
		if !h.want(sc.scen) {
			continue
		}
		h.rest(ctx)
		s, err := h.runWrk(ctx, sc.name, sc.op, h.opts.duration)
		if err != nil {
			return err
		}
		if sc.name == "create-max" {
			h.cur.MaxCreateRate = s.Throughput
		}
		if sc.name == "replay-max" {
			h.cur.MaxReplayRate = s.Throughput
		}
	}
	return nil
}
