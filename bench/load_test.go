package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refundgate/refundgate/sandbox"
)

// Tests of the load tool's neutral half and of the vegeta glue that needs
// no vegeta: results parsing (on real vegeta output in testdata/vegeta),
// percentiles, dropped requests, the pass rule, targets and the command
// line.

func parseFile(t *testing.T, name, op string, rate int, d time.Duration) *opRun {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "vegeta", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := newOpRun(op, rate, d)
	if err := parseResults(f, o); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return o
}

func TestParseResultsSample(t *testing.T) {
	for _, c := range []struct {
		file, op string
		sent, ok int
		wrong    map[string]int
	}{
		{"create.json", "create", 5, 4, map[string]int{"401": 1}},
		{"replay.json", "replay", 6, 4, map[string]int{"201-not-replayed": 1, "422": 1}},
		{"get.json", "get", 3, 2, map[string]int{"404": 1}},
		{"list.json", "list", 2, 2, map[string]int{}},
		{"provider.json", "provider", 3, 3, map[string]int{}},
		{"refused.json", "get", 1, 0, map[string]int{"0": 1}},
	} {
		o := parseFile(t, c.file, c.op, 5, time.Second)
		if len(o.lat) != c.sent || o.ok != c.ok {
			t.Errorf("%s: sent %d ok %d, want %d and %d", c.file, len(o.lat), o.ok, c.sent, c.ok)
		}
		if len(o.wrong) != len(c.wrong) {
			t.Errorf("%s: wrong answers %v, want %v", c.file, o.wrong, c.wrong)
		}
		for k, v := range c.wrong {
			if o.wrong[k] != v {
				t.Errorf("%s: wrong[%s] = %d, want %d (all: %v)", c.file, k, o.wrong[k], v, o.wrong)
			}
		}
	}
	// The latencies are vegeta's, in ns, read exactly.
	o := parseFile(t, "create.json", "create", 5, time.Second)
	st := o.stat()
	if st.P50 != 4.988903 || st.P99 != 19.492015 || st.Max != 19.492015 || st.P999 != 19.492015 {
		t.Errorf("create latencies: %+v", st)
	}
	if st.Expected != 5 || st.Sent != 5 || st.Dropped != 0 || st.Throughput != 4 || st.OKRate != 0.8 {
		t.Errorf("create counts: %+v", st)
	}
	// Unanswered requests keep the load tool's error; a result without a
	// request (the targets ran out) is not a request sent.
	o = parseFile(t, "refused.json", "get", 2, time.Second)
	var refused, noReq bool
	for e := range o.errs {
		refused = refused || strings.Contains(e, "connection refused")
		noReq = noReq || strings.HasPrefix(e, "(no request) no targets to attack")
	}
	if !refused || !noReq {
		t.Errorf("errors %v, want connection refused and (no request)", o.errs)
	}
	if st := o.stat(); st.Sent != 1 || st.Dropped != 1 || st.DroppedRatio != 0.5 {
		t.Errorf("refused: %+v", st)
	}
	// Results of another operation's attack are refused.
	f, err := os.Open(filepath.Join("testdata", "vegeta", "create.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := parseResults(f, newOpRun("replay", 1, time.Second)); err == nil || !strings.Contains(err.Error(), `"create"`) {
		t.Errorf("create results parsed as replays: %v", err)
	}
	if err := parseResults(strings.NewReader(`{"code":201,`), newOpRun("create", 1, time.Second)); err == nil {
		t.Error("truncated results accepted")
	}
}

func TestAnsweredAsExpected(t *testing.T) {
	replayed := http.Header{"Idempotent-Replayed": {"true"}}
	for _, c := range []struct {
		op   string
		r    result
		want bool
	}{
		{"create", result{Code: 201}, true},
		{"create", result{Code: 200}, false},
		{"create", result{Code: 0}, false},
		{"replay", result{Code: 201, Headers: replayed}, true},
		{"replay", result{Code: 201}, false},
		{"replay", result{Code: 201, Headers: http.Header{"Idempotent-Replayed": {"false"}}}, false},
		{"replay", result{Code: 409, Headers: replayed}, false},
		{"get", result{Code: 200}, true},
		{"list", result{Code: 404}, false},
		{"provider", result{Code: 200}, true},
		{"provider", result{Code: 201}, true},
		{"provider", result{Code: 502}, false},
		{"bogus", result{Code: 200}, false},
	} {
		if got := answeredAsExpected(c.op, &c.r); got != c.want {
			t.Errorf("answeredAsExpected(%s, %d %v) = %v", c.op, c.r.Code, c.r.Headers, got)
		}
	}
}

func TestPercentile(t *testing.T) {
	var v []int64
	for i := int64(1000); i >= 1; i-- {
		v = append(v, i)
	}
	slices.Sort(v)
	for p, want := range map[float64]int64{50: 500, 90: 900, 99: 990, 99.9: 999, 100: 1000, 0: 1, 0.01: 1} {
		if got := percentile(v, p); got != want {
			t.Errorf("percentile(1..1000, %v) = %d, want %d", p, got, want)
		}
	}
	ten := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]int64{50: 5, 51: 6, 90: 9, 99: 10, 99.9: 10} {
		if got := percentile(ten, p); got != want {
			t.Errorf("percentile(1..10, %v) = %d, want %d", p, got, want)
		}
	}
	if percentile(nil, 50) != 0 || percentile([]int64{7}, 99.9) != 7 {
		t.Error("percentile of 0 or 1 values")
	}
}

func TestDropped(t *testing.T) {
	if got := expectedRequests(800, 10*time.Second); got != 8000 {
		t.Errorf("expectedRequests = %d", got)
	}
	if got := expectedRequests(3, 2500*time.Millisecond); got != 8 {
		t.Errorf("expectedRequests(3/s, 2.5s) = %d, want 8 (7.5 rounded)", got)
	}
	for _, c := range []struct{ exp, sent, want int }{{8000, 7999, 1}, {8000, 8000, 0}, {8000, 8001, 0}, {8000, 0, 8000}} {
		if got := dropped(c.exp, c.sent); got != c.want {
			t.Errorf("dropped(%d, %d) = %d, want %d", c.exp, c.sent, got, c.want)
		}
	}
	// 100/s for 2 s, but only 190 sent (the tool lagged): 10 dropped; 180
	// answered as expected: 90/s.
	o := newOpRun("create", 100, 2*time.Second)
	for i := 0; i < 190; i++ {
		code := 201
		if i%19 == 0 {
			code = 503
		}
		o.add(&result{Code: code, Latency: int64(i+1) * int64(time.Millisecond), Method: "POST", URL: "u"})
	}
	st := o.stat()
	if st.Expected != 200 || st.Sent != 190 || st.Dropped != 10 || st.DroppedRatio != 0.05 || st.Throughput != 90 {
		t.Errorf("stat = %+v", st)
	}
	if st.P50 != 95 || st.P99 != 189 || st.P999 != 190 || st.Max != 190 || st.Avg != 95.5 {
		t.Errorf("latencies = %+v", st)
	}
}

func TestScenarioOfAndJudge(t *testing.T) {
	mk := func(op string, rate, sent, bad int, code int) *opRun {
		o := newOpRun(op, rate, time.Second)
		for i := 0; i < sent; i++ {
			r := &result{Code: 200, Method: "GET", URL: "u", Latency: int64(time.Millisecond)}
			if op == "create" {
				r.Code = 201
			}
			if i < bad {
				r.Code = code
			}
			o.add(r)
		}
		return o
	}
	s := scenarioOf([]*opRun{mk("create", 600, 600, 3, 0), mk("get", 200, 195, 0, 0), mk("list", 100, 100, 2, 500)}, time.Second)
	if s.Expected != 900 || s.Sent != 895 || s.Dropped != 5 || s.Throughput != 890 {
		t.Errorf("scenario = %+v", s)
	}
	if math.Abs(s.OKRate-890.0/895) > 1e-12 || s.Unexpected["0"] != 3 || s.Unexpected["500"] != 2 {
		t.Errorf("ok %v unexpected %v", s.OKRate, s.Unexpected)
	}
	if s.Ops["get"].Dropped != 5 || s.Ops["create"].Dropped != 0 {
		t.Errorf("per-op dropped: get %d create %d", s.Ops["get"].Dropped, s.Ops["create"].Dropped)
	}
	if pass, why := judge(s); !pass {
		t.Errorf("judge failed: %s", why)
	}
	s = scenarioOf([]*opRun{mk("create", 100, 98, 2, 422)}, time.Second)
	if pass, why := judge(s); pass || !strings.Contains(why, "answered") || !strings.Contains(why, "dropped") {
		t.Errorf("judge = %v %q, want a failure naming both", pass, why)
	}
}

func TestJudge(t *testing.T) {
	ok := &Scenario{Expected: 1000, Sent: 991, Dropped: 9, OKRate: 0.995}
	if pass, why := judge(ok); !pass {
		t.Errorf("judge(%+v) failed: %s", ok, why)
	}
	for _, s := range []*Scenario{
		{Expected: 1000, Sent: 990, Dropped: 10, OKRate: 1},
		{Expected: 1000, Sent: 1000, OKRate: 0.98},
		{Expected: 1000},
		{},
	} {
		if pass, _ := judge(s); pass {
			t.Errorf("judge(%+v) passed", s)
		}
	}
}

func TestOpRates(t *testing.T) {
	got := loadSpec{Rate: 1300, Mix: mixMixed}.opRates()
	want := []opRate{{"create", 780}, {"get", 260}, {"list", 130}, {"replay", 130}}
	if !slices.Equal(got, want) {
		t.Errorf("opRates(1300 mixed) = %v, want %v", got, want)
	}
	got = loadSpec{Rate: 1, Mix: mixMixed}.opRates()
	want = []opRate{{"create", 1}, {"get", 1}, {"list", 1}, {"replay", 1}}
	if !slices.Equal(got, want) {
		t.Errorf("opRates(1 mixed) = %v, want %v (never below 1/s)", got, want)
	}
	if got := (loadSpec{Rate: 3500, Mix: mixRead}).opRates(); !slices.Equal(got, []opRate{{"get", 1750}, {"list", 1750}}) {
		t.Errorf("opRates(read) = %v", got)
	}
	for _, m := range [][]share{mixCreate, mixReplay, mixProvider, mixRead, mixMixed} {
		var sum float64
		for _, s := range m {
			sum += s.Frac
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("mix %v sums to %v", m, sum)
		}
	}
}

func TestWorkers(t *testing.T) {
	for _, c := range []struct {
		rate          float64
		cap           int
		wantIni, wMax int
	}{
		{100, 4000, 50, 200},
		{5000, 4000, 500, 2500},
		{40000, 4000, 4000, 4000},
		{40000, 500, 500, 500},
		{1, 10, 10, 10},
	} {
		ini, max := workers(c.rate, c.cap)
		if ini != c.wantIni || max != c.wMax {
			t.Errorf("workers(%v, %d) = %d, %d; want %d, %d", c.rate, c.cap, ini, max, c.wantIni, c.wMax)
		}
	}
}

func TestAttackArgs(t *testing.T) {
	got := strings.Join(attackArgs("create", 800, 10*time.Second, 80, 400, 0, "127.0.0.9", "/o/r.bin"), " ")
	want := "attack -rate 800/1s -duration 10s -timeout 10s -workers 80 -max-workers 400 -lazy -format json -max-body 0 -laddr 127.0.0.9 -name create -output /o/r.bin"
	if got != want {
		t.Errorf("attackArgs =\n %s\nwant\n %s", got, want)
	}
	if got := attackArgs("get", 5, 1500*time.Millisecond, 50, 200, 0, "127.0.0.2", "x"); got[4] != "1.5s" {
		t.Errorf("duration %q", got[4])
	}
	if got := strings.Join(attackArgs("create", 800, time.Second, 80, 400, 256, "127.0.0.9", "o"), " "); !strings.HasSuffix(got, " -output o -max-connections 256") {
		t.Errorf("with a connection cap: %s", got)
	}
	for n, want := range map[int]string{0: "127.0.0.2", 1: "127.0.0.3", 249: "127.0.0.251", 250: "127.0.0.2"} {
		if got := localAddr(n); got != want {
			t.Errorf("localAddr(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestParseModVersion(t *testing.T) {
	out := "/x/bench/out/bin/vegeta: go1.26.8\n\tpath\tgithub.com/tsenart/vegeta/v12\n\tmod\tgithub.com/tsenart/vegeta/v12\tv12.13.0\th1:J/Ui=\n\tdep\tgithub.com/beorn7/perks\tv1.0.1\th1:Vl=\n"
	if v := parseModVersion([]byte(out)); v != "v12.13.0" {
		t.Errorf("parseModVersion = %q", v)
	}
	if v := parseModVersion([]byte("not a go binary")); v != "" {
		t.Errorf("parseModVersion(junk) = %q", v)
	}
}

// target is what vegeta's JSON target format holds.
type target struct {
	Method string      `json:"method"`
	URL    string      `json:"url"`
	Body   []byte      `json:"body"`
	Header http.Header `json:"header"`
}

var testTargets = loadTargets{
	Gateway: "http://127.0.0.1:9000", Sandbox: "http://127.0.0.1:9001", APIKey: "rk_test_bench_abc", ProviderKey: "sk_test_\"quoted\"",
	Provider: loadProviders["checkoutcom"],
	Pool: &pool{
		Payments:  []string{"charge_test_A", "charge_test_B", "charge_test_C"},
		Replays:   []replayCase{{Key: "bench-replay-r-0", Body: `{"payment_id":"charge_test_A","amount":1,"currency":"EUR","reference":"bench"}`}, {Key: "bench-replay-r-1", Body: `{"x":"y"}`}},
		RefundIDs: []string{"rf_1", "rf_2"},
	},
}

// lines generates n targets of op and decodes each with encoding/json, as
// a check on the hand-built JSON.
func lines(t *testing.T, op string, n int) []target {
	t.Helper()
	return linesOf(t, testTargets, op, n)
}

func linesOf(t *testing.T, lt loadTargets, op string, n int) []target {
	t.Helper()
	g, err := newTargetGen(op, lt, 7, "20261201T000000Z-abcdef-03-create-800", "bkabcdef03a-")
	if err != nil {
		t.Fatal(err)
	}
	var out []target
	var b []byte
	for i := 0; i < n; i++ {
		var ok bool
		if b, ok = g.next(b[:0]); !ok {
			t.Fatalf("%s target %d: none left", op, i)
		}
		if bytes.Count(b, []byte("\n")) != 1 || b[len(b)-1] != '\n' {
			t.Fatalf("%s target %d is not one line: %q", op, i, b)
		}
		var tg target
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tg); err != nil {
			t.Fatalf("%s target %d: %v: %s", op, i, err, b)
		}
		out = append(out, tg)
	}
	return out
}

func TestTargets(t *testing.T) {
	keys := map[string]bool{}
	payments := map[string]bool{}
	for i, tg := range lines(t, "create", 300) {
		if tg.Method != "POST" || tg.URL != "http://127.0.0.1:9000/v1/refunds" || tg.Header.Get("Authorization") != "Bearer rk_test_bench_abc" ||
			tg.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("create %d: %+v", i, tg)
		}
		k := tg.Header.Get("Idempotency-Key")
		if keys[k] || !strings.HasSuffix(k, "-20261201T000000Z-abcdef-03-create-800") || len(k) > 255 {
			t.Fatalf("create %d: key %q (repeated or malformed)", i, k)
		}
		keys[k] = true
		var body struct {
			PaymentID string `json:"payment_id"`
			Amount    int64  `json:"amount"`
			Currency  string `json:"currency"`
			Reference string `json:"reference"`
		}
		if err := json.Unmarshal(tg.Body, &body); err != nil || body.Amount != 1 || body.Currency != "EUR" || body.Reference != "bench" ||
			!slices.Contains(testTargets.Pool.Payments, body.PaymentID) {
			t.Fatalf("create %d: body %s (%v)", i, tg.Body, err)
		}
		payments[body.PaymentID] = true
	}
	if len(payments) != 3 {
		t.Errorf("300 creates drew on %d of 3 payments", len(payments))
	}
	if k := lines(t, "create", 1)[0].Header.Get("Idempotency-Key"); k != "0-20261201T000000Z-abcdef-03-create-800" {
		t.Errorf("first key %q", k)
	}

	seen := map[string]bool{}
	for i, tg := range lines(t, "replay", 50) {
		k := tg.Header.Get("Idempotency-Key")
		var rc *replayCase
		for j := range testTargets.Pool.Replays {
			if testTargets.Pool.Replays[j].Key == k {
				rc = &testTargets.Pool.Replays[j]
			}
		}
		if rc == nil || string(tg.Body) != rc.Body || tg.Method != "POST" || tg.Header.Get("Authorization") != "Bearer rk_test_bench_abc" {
			t.Fatalf("replay %d: %+v", i, tg)
		}
		seen[k] = true
	}
	if len(seen) != 2 {
		t.Errorf("replays used %d of 2 keys", len(seen))
	}

	for i, tg := range lines(t, "get", 20) {
		id := strings.TrimPrefix(tg.URL, "http://127.0.0.1:9000/v1/refunds/")
		if tg.Method != "GET" || !slices.Contains(testTargets.Pool.RefundIDs, id) || tg.Body != nil || tg.Header.Get("Authorization") != "Bearer rk_test_bench_abc" {
			t.Fatalf("get %d: %+v", i, tg)
		}
	}
	if tg := lines(t, "list", 1)[0]; tg.Method != "GET" || tg.URL != "http://127.0.0.1:9000/v1/refunds?limit=20" {
		t.Errorf("list: %+v", tg)
	}

	tracks := map[string]bool{}
	for i, tg := range lines(t, "provider", 100) {
		p := strings.TrimSuffix(strings.TrimPrefix(tg.URL, "http://127.0.0.1:9001/checkoutcom/v2/charges/"), "/refund")
		if tg.Method != "POST" || !slices.Contains(testTargets.Pool.Payments, p) || tg.Header.Get("Authorization") != `sk_test_"quoted"` {
			t.Fatalf("provider %d: %+v", i, tg)
		}
		var body struct {
			Value   int64  `json:"value"`
			TrackID string `json:"trackId"`
		}
		if err := json.Unmarshal(tg.Body, &body); err != nil || body.Value != 1 || tracks[body.TrackID] || len(body.TrackID) > 50 ||
			!strings.HasPrefix(body.TrackID, "bkabcdef03a-") {
			t.Fatalf("provider %d: body %s (%v)", i, tg.Body, err)
		}
		tracks[body.TrackID] = true
	}

	if _, err := newTargetGen("bogus", testTargets, 1, "t", "p"); err == nil {
		t.Error("unknown operation accepted")
	}
	if _, err := newTargetGen("create", loadTargets{Provider: loadProviders["checkoutcom"], Pool: &pool{}}, 1, "t", "p"); err == nil {
		t.Error("create without payments accepted")
	}
}

// TestSmartpayTargets drives Smartpay's JPY payments: the gateway's body
// names the payment in yen, and the provider's own refund carries the
// payment, the reason Smartpay requires and a unique reference, with the
// secret key as Basic.
func TestSmartpayTargets(t *testing.T) {
	sp := testTargets
	sp.Provider = loadProviders["smartpay"]
	sp.Pool = &pool{Payments: []string{"payment_test_A", "payment_test_B"}}
	for i, tg := range linesOf(t, sp, "create", 20) {
		var body struct {
			PaymentID string `json:"payment_id"`
			Currency  string
			Amount    int64
		}
		if err := json.Unmarshal(tg.Body, &body); err != nil || body.Currency != "JPY" || body.Amount != 1 || !slices.Contains(sp.Pool.Payments, body.PaymentID) {
			t.Fatalf("create %d: body %s (%v)", i, tg.Body, err)
		}
	}
	refs := map[string]bool{}
	for i, tg := range linesOf(t, sp, "provider", 50) {
		var body struct {
			Payment, Currency, Reason, Reference string
			Amount                               int64
		}
		if err := json.Unmarshal(tg.Body, &body); err != nil || tg.Method != "POST" || tg.URL != "http://127.0.0.1:9001/smartpay/v1/refunds" ||
			tg.Header.Get("Authorization") != `Basic sk_test_"quoted"` || !slices.Contains(sp.Pool.Payments, body.Payment) ||
			body.Amount != 1 || body.Currency != "JPY" || body.Reason != "requested_by_customer" ||
			refs[body.Reference] || len(body.Reference) > 40 || !strings.HasPrefix(body.Reference, "bkabcdef03a-") {
			t.Fatalf("provider %d: %+v body %s (%v)", i, tg, tg.Body, err)
		}
		refs[body.Reference] = true
		if k := tg.Header.Get("Idempotency-Key"); k != body.Reference {
			t.Fatalf("provider %d: Idempotency-Key %q, want the reference %q as the gateway's adapter sends one", i, k, body.Reference)
		}
	}
}

// Yoco refunds whole checkouts: each create and each provider target takes
// the next of the stream's own fresh payments, once, and the stream ends
// when they are used up.
func TestYocoTargets(t *testing.T) {
	yt := testTargets
	yt.Provider = loadProviders["yoco"]
	yt.Pool = &pool{Payments: []string{"ch_used"}}
	yt.Fresh = []string{"ch_A", "ch_B", "ch_C"}
	for _, op := range []string{"create", "provider"} {
		g, err := newTargetGen(op, yt, 7, "tag", "bkabcdef03a-")
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for i, want := range yt.Fresh {
			b, ok := g.next(nil)
			var tg target
			if err := json.Unmarshal(b, &tg); !ok || err != nil {
				t.Fatalf("%s %d: %q, %v (%v)", op, i, b, ok, err)
			}
			k := tg.Header.Get("Idempotency-Key")
			if keys[k] || k == "" {
				t.Fatalf("%s %d: Idempotency-Key %q missing or repeated", op, i, k)
			}
			keys[k] = true
			if op == "create" {
				var body map[string]any
				if err := json.Unmarshal(tg.Body, &body); err != nil || body["payment_id"] != want || body["currency"] != "ZAR" || body["amount"] != nil {
					t.Fatalf("create %d: body %s (%v), want the whole of %s in ZAR", i, tg.Body, err, want)
				}
				continue
			}
			var body struct {
				Metadata map[string]string `json:"metadata"`
			}
			if err := json.Unmarshal(tg.Body, &body); err != nil || tg.URL != "http://127.0.0.1:9001/yoco/api/checkouts/"+want+"/refund" ||
				tg.Header.Get("Authorization") != `Bearer sk_test_"quoted"` || body.Metadata["refundgate_refund_id"] != k {
				t.Fatalf("provider %d: %+v body %s (%v)", i, tg, tg.Body, err)
			}
		}
		if b, ok := g.next([]byte("x")); ok || string(b) != "x" {
			t.Errorf("%s: a target after the fresh payments ran out: %q", op, b)
		}
		if u := g.unused(); len(u) != 0 {
			t.Errorf("%s: %v unused after every payment was taken", op, u)
		}
	}
	// What no target took goes back: never sent.
	g, err := newTargetGen("create", yt, 7, "tag", "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.next(nil); !ok {
		t.Fatal("no target")
	}
	if u := g.unused(); !slices.Equal(u, []string{"ch_B", "ch_C"}) {
		t.Errorf("unused after one target = %v, want ch_B, ch_C", u)
	}
	cg, err := newTargetGen("create", testTargets, 7, "tag", "p")
	if err != nil {
		t.Fatal(err)
	}
	cg.next(nil)
	if u := cg.unused(); u != nil {
		t.Errorf("a Checkout.com stream gave back %v: its payments take many refunds and stay in the pool", u)
	}
	yt.Fresh = nil
	if _, err := newTargetGen("create", yt, 7, "tag", "p"); err == nil {
		t.Error("a Yoco create stream without fresh payments was accepted")
	}
}

// A stream whose payments run out ends its feed cleanly: vegeta sees the
// end of its targets, and sends no refund of a payment twice.
func TestFeedEnds(t *testing.T) {
	yt := testTargets
	yt.Provider = loadProviders["yoco"]
	yt.Fresh = []string{"ch_A", "ch_B", "ch_C"}
	g, err := newTargetGen("create", yt, 1, "t", "p")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := feed(&out, g); err != nil {
		t.Fatalf("feed: %v", err)
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 3 {
		t.Errorf("feed wrote %d targets for 3 payments:\n%s", n, out.Bytes())
	}
}

func TestFeed(t *testing.T) {
	g, err := newTargetGen("get", testTargets, 1, "t", "p")
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- feed(w, g) }()
	// Read a few targets the way vegeta -lazy does, then go away.
	br := bufio.NewReader(r)
	for i := 0; i < 500; i++ {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var tg target
		if err := json.Unmarshal(line, &tg); err != nil || tg.Method != "GET" {
			t.Fatalf("line %d: %q (%v)", i, line, err)
		}
	}
	r.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("feed ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("feed did not stop when its reader closed")
	}
}

func TestResultsJSON(t *testing.T) {
	o := parseFile(t, "replay.json", "replay", 6, time.Second)
	s := scenarioOf([]*opRun{o}, time.Second)
	s.Name, s.Store, s.Rate, s.Target, s.CPU = "replay-max", "sqlite", 6, "gateway", map[string]float64{"gateway": 0.5, "loadgen": 0.25, "vegeta": 0.2, "harness": 0.05, "gateway_runq": 1.25, "sandbox_runq": 0.5}
	s.GatewayLatency = &GatewayLatency{Creates: 6, CreateP50: 1, CreateP99: 2.5, ProviderCalls: 0}
	s.Pass, _ = judge(s)
	pgs := scenarioOf([]*opRun{parseFile(t, "replay.json", "replay", 6, time.Second)}, time.Second)
	pgs.Name, pgs.Store, pgs.Rate, pgs.Target, pgs.CPU = "replay-max", "postgres", 6, "gateway", map[string]float64{"gateway": 0.4, "postgres": 0.3, "loadgen": 0.25}
	syncs := int64(42)
	pgs.StoreSyncs = &syncs
	sqlite := &StoreRun{Store: "sqlite", DSN: "/x/refundgate.db", FsyncPerSec: 5000, FsyncDir: "/x", Scenarios: []*Scenario{s},
		Wake:     &WakeProbe{Sleeps: 2600, P50: 0.16, P99: 1.78, P999: 5.79, Max: 15, Over5ms: 3},
		Webhooks: &sandbox.WebhookStats{Delivered: 12, Failed: 2, Duplicated: 1, Abandoned: 0, Pending: 0}}
	pg := &StoreRun{Store: "postgres", DSN: "postgres://postgres@127.0.0.1:5432/refundgate_bench_r?sslmode=disable", FsyncPerSec: 4000, FsyncDir: "/x/pg",
		Postgres:  &PostgresInfo{Database: "refundgate_bench_r", ServerVersion: "PostgreSQL 15.20", Settings: map[string]string{"fsync": "on", "synchronous_commit": "on"}, Durable: true},
		Scenarios: []*Scenario{pgs}}
	r := &Results{RunID: "r", StartedAt: time.Unix(0, 0), Tool: "vegeta v12.13.0", Stores: []*StoreRun{sqlite, pg}, Settings: Settings{Provider: "smartpay", Webhooks: true}}
	for _, sr := range r.Stores {
		sr.derive()
	}
	r.Budget = r.budget()
	var out strings.Builder
	r.print(&out)
	for _, want := range []string{"cpu gw/db/sb/loadgen/all", "== store sqlite: /x/refundgate.db", "== store postgres: postgres://", "PostgreSQL 15.20, database refundgate_bench_r",
		"refunds of: smartpay payments, with the sandbox's refund webhooks to the gateway", "webhooks to the gateway: 12 delivered, 2 failed attempts, 1 duplicated, 0 abandoned, 0 still pending", "replay-max", "0.50/-/0.00/0.25/", "wake-ups: 2600 sleeps of 1 ms woke late by p50 0.16 ms, p99 1.78 ms, p99.9 5.79 ms, max 15.0 ms; 3 over 5 ms", "run queue: gateway 1.25, sandbox 0.50 threads waiting", "in the gateway: 6 POST /v1/refunds, p50 ≤ 1 ms, p99 ≤ 2.5 ms; 0 provider refund calls", "0.40/0.30/0.00/0.25/", "201-not-replayed×1 422×1", "== stores side by side", "budget (judged on sqlite; postgres beside it, not judged)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	// The replays are each store's own figure, labelled by store, in the
	// side-by-side table and the budget.
	var side, budget string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "  replay-max ") {
			side = line
		}
		if strings.HasPrefix(line, "  idempotent replays/s") {
			budget = line
		}
	}
	if strings.Count(side, "/s ok of 6") != 2 || strings.Count(budget, "(offered 6/s") != 2 || !strings.Contains(budget, "(would be no)") {
		t.Errorf("side by side %q, budget %q", side, budget)
	}
	dir := t.TempDir()
	if _, err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"expected_requests": 6`, `"sent_requests": 6`, `"dropped_requests": 0`, `"loadgen": 0.25`, `"p99_9_ms"`,
		`"store": "sqlite"`, `"store": "postgres"`, `"postgres": 0.3`, `"store_syncs": 42`, `"gateway_runq": 1.25`, `"create_p99_ms": 2.5`, `"over_5ms": 3`, `"provider": "smartpay"`, `"webhooks": true`, `"delivered": 12`, `"database": "refundgate_bench_r"`, `"other_stores": {`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("results JSON lacks %s", want)
		}
	}
	for _, gone := range []string{"k6", "iterations", "vus"} {
		if bytes.Contains(bytes.ToLower(b), []byte(gone)) {
			t.Errorf("results JSON still says %q", gone)
		}
	}
	// The JSON reads back into the same shape.
	var back Results
	if err := json.Unmarshal(b, &back); err != nil || len(back.Stores) != 2 || back.Stores[1].Scenarios[0].Store != "postgres" || back.Stores[0].Scenarios[0].Ops["replay"].Sent != 6 {
		t.Errorf("results JSON reads back as %+v, %v", back, err)
	}
}

// TestThirdsP99: a run whose latency grows with time shows it in its
// thirds, by send time, wherever the slow requests sit in the input; a
// run too short to fill each third gets none.
func TestThirdsP99(t *testing.T) {
	start := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	o := newOpRun("create", 100, 3*time.Second)
	// Added last first, so that the input is not in send order.
	for i := 299; i >= 0; i-- {
		lat := time.Duration(1+i/100) * time.Millisecond // 1, 2, 3 ms by second
		o.add(&result{Code: 201, Timestamp: start.Add(time.Duration(i) * 10 * time.Millisecond), Latency: int64(lat), Method: "POST", URL: "u"})
	}
	st := o.stat()
	if want := []float64{1, 2, 3}; !reflect.DeepEqual(st.ThirdsP99, want) {
		t.Errorf("p99 by third = %v ms, want %v", st.ThirdsP99, want)
	}
	if s := thirds(&Scenario{Name: "create-half", Ops: map[string]*OpStat{"create": st}}); s != "1.00, 2.00, 3.00" {
		t.Errorf("report line %q", s)
	}
	if s := thirds(&Scenario{Name: "create-max", Ops: map[string]*OpStat{"create": st}}); s != "" {
		t.Errorf("create-max gets a thirds line %q; only the fixed-rate runs should", s)
	}
	short := newOpRun("create", 100, time.Second)
	for i := range 3*minWindow - 1 {
		short.add(&result{Code: 201, Timestamp: start.Add(time.Duration(i) * 10 * time.Millisecond), Latency: int64(time.Millisecond), Method: "POST", URL: "u"})
	}
	if got := short.stat().ThirdsP99; got != nil {
		t.Errorf("%d requests: p99 by third %v, want none", 3*minWindow-1, got)
	}
}

// A 300 ms stall in one half-second window sets the run's p99 but not the
// median window p99; the worst window shows it. The ragged last window
// (under minWindow requests) is left out.
func TestWindowP99(t *testing.T) {
	start := time.Date(2026, 12, 2, 17, 0, 0, 0, time.UTC)
	o := newOpRun("create", 200, 2*time.Second)
	for i := 0; i < 400; i++ {
		at := start.Add(time.Duration(i) * 5 * time.Millisecond) // 200/s: 100 in each window
		lat := 2 * time.Millisecond
		if i >= 100 && i < 120 { // the second window's first 100 ms wait out a stall
			lat = 300 * time.Millisecond
		}
		o.add(&result{Code: 201, Timestamp: at, Latency: int64(lat), Method: "POST", URL: "u"})
	}
	for i := 0; i < 3; i++ { // a straggler window of 3, all slow
		o.add(&result{Code: 201, Timestamp: start.Add(2*time.Second + time.Duration(i)*time.Millisecond), Latency: int64(time.Second), Method: "POST", URL: "u"})
	}
	st := o.stat()
	if st.P99 != 300 {
		t.Errorf("p99 = %v ms, want the stall's 300", st.P99)
	}
	if st.WindowP99 != 2 || st.WorstWindowP99 != 300 {
		t.Errorf("window p99 median %v ms, worst %v ms; want 2 and 300", st.WindowP99, st.WorstWindowP99)
	}
	if again := o.stat(); !reflect.DeepEqual(again, st) {
		t.Errorf("a second stat gives %+v, the first %+v", again, st)
	}
	// Stalls in the first three of four windows: their p99s are 300 ms, and
	// so is the median; a second stat must still pair each latency with its
	// own send time (sorting them in place moved every slow one to the end).
	o = newOpRun("create", 200, 2*time.Second)
	for i := 0; i < 400; i++ {
		lat := 2 * time.Millisecond
		if i < 300 && i%100 < 20 {
			lat = 300 * time.Millisecond
		}
		o.add(&result{Code: 201, Timestamp: start.Add(time.Duration(i) * 5 * time.Millisecond), Latency: int64(lat), Method: "POST", URL: "u"})
	}
	for n := 1; n <= 2; n++ {
		if st := o.stat(); st.WindowP99 != 300 {
			t.Errorf("stat %d: window p99 median %v ms, want 300", n, st.WindowP99)
		}
	}
	if m, w := windowP99(nil, nil, window); m != 0 || w != 0 {
		t.Errorf("no requests: %d, %d", m, w)
	}
}
