package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file is the load tool's neutral half: what a run offers (the spec
// and its targets), and what the harness computes from the per-request
// results (percentiles, throughput, dropped requests, the pass rule).
// vegeta.go runs the load tool itself.

// share is one operation's part of a scenario's arrival rate.
type share struct {
	Op   string
	Frac float64
}

// The operation mixes.
var (
	mixCreate   = []share{{"create", 1}}
	mixReplay   = []share{{"replay", 1}}
	mixProvider = []share{{"provider", 1}}
	mixRead     = []share{{"get", 0.5}, {"list", 0.5}}
	mixMixed    = []share{{"create", 0.6}, {"get", 0.2}, {"list", 0.1}, {"replay", 0.1}}
)

// loadSpec is one load run.
type loadSpec struct {
	Name     string
	Rate     float64
	Duration time.Duration
	// Mix is the share of each operation; the shares sum to 1. Each
	// operation is its own constant-rate stream at Rate × share: a sum of
	// independent constant-rate streams is the same open mixture.
	Mix []share
	// Target is "gateway" or "provider", for the report.
	Target string
}

// opRate is one operation's stream of a spec: the load tool takes whole
// requests per second, so Rate × share is rounded, and never below 1/s.
type opRate struct {
	Op   string
	Rate int
}

func (s loadSpec) opRates() []opRate {
	out := make([]opRate, 0, len(s.Mix))
	for _, m := range s.Mix {
		r := int(math.Round(s.Rate * m.Frac))
		if r < 1 {
			r = 1
		}
		out = append(out, opRate{m.Op, r})
	}
	return out
}

// workers sizes the load tool's worker pool for an arrival rate: started
// up front for 100 ms answers, and at most enough for 500 ms answers
// (Little's law). Once every worker waits for an answer, the tool cannot
// send on time: it lags, and the requests it has not sent by the end of
// the run are the open model's dropped requests.
func workers(rate float64, maxCap int) (initial, max int) {
	initial = int(math.Ceil(rate / 10))
	max = int(math.Ceil(rate / 2))
	if initial < 50 {
		initial = 50
	}
	if max < 200 {
		max = 200
	}
	if maxCap > 0 && max > maxCap {
		max = maxCap
	}
	if initial > max {
		initial = max
	}
	return initial, max
}

// expectedRequests is what a constant rate sends over d: rate × d.
func expectedRequests(rate int, d time.Duration) int {
	return int(math.Round(float64(rate) * d.Seconds()))
}

// dropped is the shortfall of requests sent against rate × duration (never
// negative: the tool may send one more as the window closes).
func dropped(expected, sent int) int {
	if sent >= expected {
		return 0
	}
	return expected - sent
}

// ---- targets ----

// targetGen writes one operation's requests as the load tool's JSON
// targets, one a line: {"method","url","body" (base64),"header"}. Each
// create has its own Idempotency-Key (<n>-<run>-<step>) and a payment drawn
// at random from the pool; replays resend the pool's few keys and bodies;
// get reads a random one of the pool's refunds; provider sends the same
// refund straight to the sandbox provider with its secret key. For a
// provider whose payments take one refund each, create and provider take
// the stream's own fresh payments in order, each once, and end when they
// are used up.
type targetGen struct {
	op  string
	rng *rand.Rand
	n   uint64
	// once: the payments are taken in order, each once; used counts them.
	once bool
	used int

	// tag ends each create key and begins each provider trackId's suffix.
	tag string
	// trackPrefix begins each provider trackId (≤ 50 characters in all).
	trackPrefix string

	// Precomputed pieces, as JSON.
	createHead []byte   // `{"method":"POST","url":…,"body":"`
	createMid  []byte   // `","header":{…,"Idempotency-Key":["`
	bodies     []string // base64 create body per payment
	fixed      [][]byte // whole lines: replay, get, list
	provURLs   [][]byte // `{"method":"POST","url":"<the payment's refund URL>","body":"` per payment
	provMid    []byte   // `","header":{…}}`, or up to the Idempotency-Key's value
	provEnd    []byte   // after the Idempotency-Key's value, when there is one
	prov       *loadProvider
	payments   []string
	// ref and body are the provider target's scratch, reused per target.
	ref, body []byte
}

// loadTargets is what every generator needs.
type loadTargets struct {
	Gateway, Sandbox    string
	APIKey, ProviderKey string
	Provider            *loadProvider
	Pool                *pool
	// Fresh are the stream's own payments, never refunded, when the
	// provider's payments take one refund each (Provider.OnePerPayment).
	Fresh []string
}

// payments are the payments a create or provider stream refunds, and
// whether each is taken once, in order.
func (t loadTargets) payments() ([]string, bool) {
	if t.Provider.OnePerPayment {
		return t.Fresh, true
	}
	return t.Pool.Payments, false
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func newTargetGen(op string, t loadTargets, seed uint64, tag, trackPrefix string) (*targetGen, error) {
	g := &targetGen{op: op, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), tag: tag, trackPrefix: trackPrefix}
	auth := jsonString("Bearer " + t.APIKey)
	jsonHdr := `"Authorization":[` + auth + `],"Content-Type":["application/json"]`
	p := t.Pool
	switch op {
	case "create":
		payments, once := t.payments()
		if len(payments) == 0 {
			return nil, fmt.Errorf("create targets: no payments in the pool")
		}
		g.once, g.payments = once, payments
		g.createHead = []byte(`{"method":"POST","url":` + jsonString(t.Gateway+"/v1/refunds") + `,"body":"`)
		g.createMid = []byte(`","header":{` + jsonHdr + `,"Idempotency-Key":["`)
		for _, id := range payments {
			g.bodies = append(g.bodies, b64(t.Provider.createBody(id)))
		}
	case "replay":
		if len(p.Replays) == 0 {
			return nil, fmt.Errorf("replay targets: no replay cases in the pool")
		}
		for _, rc := range p.Replays {
			g.fixed = append(g.fixed, []byte(`{"method":"POST","url":`+jsonString(t.Gateway+"/v1/refunds")+`,"body":"`+b64(rc.Body)+
				`","header":{`+jsonHdr+`,"Idempotency-Key":[`+jsonString(rc.Key)+`]}}`+"\n"))
		}
	case "get":
		if len(p.RefundIDs) == 0 {
			return nil, fmt.Errorf("get targets: no refunds in the pool")
		}
		for _, id := range p.RefundIDs {
			g.fixed = append(g.fixed, []byte(`{"method":"GET","url":`+jsonString(t.Gateway+"/v1/refunds/"+id)+`,"header":{"Authorization":[`+auth+`]}}`+"\n"))
		}
	case "list":
		g.fixed = [][]byte{[]byte(`{"method":"GET","url":` + jsonString(t.Gateway+"/v1/refunds?limit=20") + `,"header":{"Authorization":[` + auth + `]}}` + "\n")}
	case "provider":
		payments, once := t.payments()
		if len(payments) == 0 {
			return nil, fmt.Errorf("provider targets: no payments in the pool")
		}
		g.once, g.payments = once, payments
		g.prov = t.Provider
		for _, id := range payments {
			g.provURLs = append(g.provURLs, []byte(`{"method":"POST","url":`+jsonString(t.Sandbox+t.Provider.RefundPath(id))+`,"body":"`))
		}
		g.provMid = []byte(`","header":{"Authorization":[` + jsonString(t.Provider.Auth(t.ProviderKey)) + `],"Content-Type":["application/json"]`)
		if t.Provider.IdempotencyKey {
			g.provMid = append(g.provMid, `,"Idempotency-Key":["`...)
			g.provEnd = []byte(`"]}}` + "\n")
		} else {
			g.provMid = append(g.provMid, "}}\n"...)
		}
	default:
		return nil, fmt.Errorf("unknown operation %q", op)
	}
	return g, nil
}

// next appends the next target line (with its newline) to b; ok is false,
// and nothing appended, once a stream that takes each payment once has
// used them all.
func (g *targetGen) next(b []byte) (_ []byte, ok bool) {
	n := g.n
	switch g.op {
	case "create":
		i, ok := g.pick(len(g.bodies))
		if !ok {
			return b, false
		}
		b = append(b, g.createHead...)
		b = append(b, g.bodies[i]...)
		b = append(b, g.createMid...)
		b = strconv.AppendUint(b, n, 10)
		b = append(b, '-')
		b = append(b, g.tag...)
		b = append(b, "\"]}}\n"...)
	case "provider":
		i, ok := g.pick(len(g.provURLs))
		if !ok {
			return b, false
		}
		b = append(b, g.provURLs[i]...)
		g.ref = strconv.AppendUint(append(g.ref[:0], g.trackPrefix...), n, 10)
		g.body = g.prov.AppendRefund(g.body[:0], g.payments[i], g.ref)
		b = base64.StdEncoding.AppendEncode(b, g.body)
		b = append(b, g.provMid...)
		if g.provEnd != nil {
			b = append(b, g.ref...)
			b = append(b, g.provEnd...)
		}
	default:
		b = append(b, g.fixed[g.rng.IntN(len(g.fixed))]...)
	}
	g.n++
	return b, true
}

// unused are the payments of a stream that takes each once that no target
// has taken: they were never sent, and another run can have them.
func (g *targetGen) unused() []string {
	if !g.once {
		return nil
	}
	return g.payments[g.used:]
}

// pick is the index of the next target's payment among n: at random, or
// the next unused one when each is taken once (ok false when none is left).
func (g *targetGen) pick(n int) (int, bool) {
	if !g.once {
		return g.rng.IntN(n), true
	}
	if g.used == n {
		return 0, false
	}
	g.used++
	return g.used - 1, true
}

// ---- results ----

// result is one request's outcome, as the load tool reports it.
type result struct {
	Code      int         `json:"code"`
	Timestamp time.Time   `json:"timestamp"`
	Latency   int64       `json:"latency"` // ns
	Error     string      `json:"error"`
	Attack    string      `json:"attack"`
	Method    string      `json:"method"`
	URL       string      `json:"url"`
	Headers   http.Header `json:"headers"`
}

// answeredAsExpected is the check of each operation: create 201; replay
// 201 with Idempotent-Replayed: true; get and list 200; the provider 200
// or 201, or 202 (Yoco accepts a refund with 202).
func answeredAsExpected(op string, r *result) bool {
	switch op {
	case "create":
		return r.Code == 201
	case "replay":
		return r.Code == 201 && r.Headers.Get("Idempotent-Replayed") == "true"
	case "get", "list":
		return r.Code == 200
	case "provider":
		return r.Code == 200 || r.Code == 201 || r.Code == 202
	}
	return false
}

// unexpectedKey names a wrong answer: its status (0 = no answer), or
// "201-not-replayed" for a replay answered as a fresh create.
func unexpectedKey(op string, r *result) string {
	if op == "replay" && r.Code == 201 {
		return "201-not-replayed"
	}
	return strconv.Itoa(r.Code)
}

// opRun gathers one operation's per-request results.
type opRun struct {
	op       string
	rate     int
	duration time.Duration
	lat      []int64 // ns, every request sent, answered or not
	at       []int64 // unix ns each of them was sent, in the order of lat
	ok       int
	wrong    map[string]int
	errs     map[string]int // the load tool's error text of requests with no answer
}

func newOpRun(op string, rate int, d time.Duration) *opRun {
	return &opRun{op: op, rate: rate, duration: d, wrong: map[string]int{}, errs: map[string]int{}}
}

func (o *opRun) add(r *result) {
	if r.Method == "" && r.URL == "" {
		// No request: vegeta could not read a target (the feed ended) and
		// stopped; the shortfall shows as dropped requests.
		o.errs["(no request) "+truncate(r.Error, 200)]++
		return
	}
	o.lat = append(o.lat, r.Latency)
	o.at = append(o.at, r.Timestamp.UnixNano())
	if answeredAsExpected(o.op, r) {
		o.ok++
		return
	}
	o.wrong[unexpectedKey(o.op, r)]++
	if r.Code == 0 {
		k := truncate(r.Error, 200)
		if _, seen := o.errs[k]; !seen && len(o.errs) >= 20 {
			k = "(other errors)"
		}
		o.errs[k]++
	}
}

// percentile is the nearest-rank percentile of sorted values: the
// smallest value with at least p% of the values at or below it. It is
// exact: always one of the measured values, never an interpolation.
func percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps float noise (99.9/100 × 1000 = 999.0000000000001)
	// from moving the rank up by one.
	rank := int(math.Ceil(p*float64(n)/100 - 1e-9))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// window is the length of the windows of OpStat.WindowP99.
const window = 500 * time.Millisecond

// windowP99 groups requests by when they were sent into windows of length
// w and returns the median and the largest of the windows' p99s (ns).
// Windows of fewer than minWindow requests (the run's ragged edges) are
// left out. The median is the latency between the disk's stalls: a stall
// of 300 ms sets a whole run's p99 but only its own windows.
func windowP99(at, lat []int64, w time.Duration) (median, worst int64) {
	if len(at) == 0 {
		return 0, 0
	}
	start := slices.Min(at)
	byWin := map[int64][]int64{}
	for i, t := range at {
		k := (t - start) / int64(w)
		byWin[k] = append(byWin[k], lat[i])
	}
	var p99s []int64
	for _, v := range byWin {
		if len(v) < minWindow {
			continue
		}
		slices.Sort(v)
		p99s = append(p99s, percentile(v, 99))
	}
	if len(p99s) == 0 {
		return 0, 0
	}
	slices.Sort(p99s)
	return percentile(p99s, 50), p99s[len(p99s)-1]
}

// minWindow is the fewest requests a window needs to count.
const minWindow = 20

// thirdsP99 splits the requests by send time into the run's first, middle
// and last third and returns each third's p99 (ns), or nil when a third
// would hold fewer than minWindow requests. At a fixed rate, a p99 that
// rises from third to third grows with the run itself: on SQLite it does
// as the database grows, at a flat CPU per refund (BENCHMARKS.md,
// 2026-12-04).
func thirdsP99(at, lat []int64) []int64 {
	if len(at) < 3*minWindow {
		return nil
	}
	start := slices.Min(at)
	span := slices.Max(at) - start + 1
	parts := make([][]int64, 3)
	for i, t := range at {
		k := min(3*(t-start)/span, 2)
		parts[k] = append(parts[k], lat[i])
	}
	out := make([]int64, 3)
	for k, v := range parts {
		if len(v) < minWindow {
			return nil
		}
		slices.Sort(v)
		out[k] = percentile(v, 99)
	}
	return out
}

// stat computes the operation's figures. It sorts a copy of the latencies,
// so that o.at still pairs with o.lat and stat may run again.
func (o *opRun) stat() *OpStat {
	wMedian, wWorst := windowP99(o.at, o.lat, window)
	lat := slices.Clone(o.lat)
	slices.Sort(lat)
	sent := len(lat)
	exp := expectedRequests(o.rate, o.duration)
	st := &OpStat{Rate: float64(o.rate), Expected: exp, Sent: sent, Dropped: dropped(exp, sent), Count: float64(sent)}
	if exp > 0 {
		st.DroppedRatio = float64(st.Dropped) / float64(exp)
	}
	if sent > 0 {
		st.OKRate = float64(o.ok) / float64(sent)
		var sum float64
		for _, v := range lat {
			sum += float64(v)
		}
		st.Avg = sum / float64(sent) / 1e6
		st.P50, st.P90, st.P99, st.P999 = ms(percentile(lat, 50)), ms(percentile(lat, 90)), ms(percentile(lat, 99)), ms(percentile(lat, 99.9))
		st.Max = ms(lat[sent-1])
		st.WindowP99, st.WorstWindowP99 = ms(wMedian), ms(wWorst)
		for _, v := range thirdsP99(o.at, o.lat) {
			st.ThirdsP99 = append(st.ThirdsP99, ms(v))
		}
	}
	if o.duration > 0 {
		st.Throughput = float64(o.ok) / o.duration.Seconds()
	}
	return st
}

// scenarioOf sums the operations into a Scenario.
func scenarioOf(runs []*opRun, d time.Duration) *Scenario {
	s := &Scenario{Ops: map[string]*OpStat{}, Unexpected: map[string]float64{}, Duration: d.Seconds()}
	var ok int
	for _, o := range runs {
		st := o.stat()
		s.Ops[o.op] = st
		s.Expected += st.Expected
		s.Sent += st.Sent
		s.Dropped += st.Dropped
		s.Throughput += st.Throughput
		ok += o.ok
		for k, v := range o.wrong {
			s.Unexpected[k] += float64(v)
		}
		for k, v := range o.errs {
			if s.Errors == nil {
				s.Errors = map[string]int{}
			}
			s.Errors[k] += v
		}
	}
	if s.Sent > 0 {
		s.OKRate = float64(ok) / float64(s.Sent)
	}
	return s
}

// judge says whether a run kept up: at least 99% answered as expected and
// less than 1% of the requests dropped (not sent on time).
func judge(s *Scenario) (bool, string) {
	drop := droppedRatio(s)
	var why []string
	if s.OKRate < 0.99 {
		why = append(why, fmt.Sprintf("only %.2f%% answered as expected", 100*s.OKRate))
	}
	if drop >= 0.01 {
		why = append(why, fmt.Sprintf("%.2f%% requests dropped", 100*drop))
	}
	if s.Sent == 0 {
		why = append(why, "no requests")
	}
	return len(why) == 0, strings.Join(why, "; ")
}

func droppedRatio(s *Scenario) float64 {
	if s.Expected > 0 {
		return float64(s.Dropped) / float64(s.Expected)
	}
	return 0
}

// setThroughput computes the answered-as-expected rates over s.Duration
// from each operation's count and ok rate (the wrk fallback's path).
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

func (s *Scenario) op(name string) *OpStat {
	o := s.Ops[name]
	if o == nil {
		o = &OpStat{}
		s.Ops[name] = o
	}
	return o
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
