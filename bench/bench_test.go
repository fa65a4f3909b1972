package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests cover the harness's pure parts; none starts the gateway or
// k6. The load runs only through `go run ./bench`.

func TestParseSummary(t *testing.T) {
	raw := []byte(`{"state":{"testRunDurationMs":21000},"metrics":{
	 "iterations":{"type":"counter","values":{"count":9900,"rate":470}},
	 "dropped_iterations":{"type":"counter","values":{"count":100,"rate":5}},
	 "lat_create":{"type":"trend","values":{"avg":2,"min":1,"med":1.5,"max":40,"p(50)":1.5,"p(90)":3,"p(99)":8,"p(99.9)":20}},
	 "lat_get":{"type":"trend","values":{"avg":0,"min":0,"med":0,"max":0,"p(50)":0,"p(90)":0,"p(99)":0,"p(99.9)":0}},
	 "ok_create":{"type":"rate","values":{"rate":0.99,"passes":9800,"fails":100}},
	 "ok_get":{"type":"rate","values":{"rate":0,"passes":0,"fails":0}},
	 "status_500":{"type":"counter","values":{"count":90,"rate":4}},
	 "status_0":{"type":"counter","values":{"count":9,"rate":0.4}},
	 "status_502":{"type":"counter","values":{"count":0,"rate":0}}}}`)
	s, err := parseSummary(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Ops) != 1 || s.Ops["create"] == nil {
		t.Fatalf("ops = %v, want only create", s.Ops)
	}
	c := s.Ops["create"]
	if c.P50 != 1.5 || c.P99 != 8 || c.P999 != 20 || c.Max != 40 || c.Count != 9900 {
		t.Errorf("create = %+v", c)
	}
	if s.Iterations != 9900 || s.Dropped != 100 {
		t.Errorf("iterations %v dropped %v", s.Iterations, s.Dropped)
	}
	if got := formatCounts(s.Unexpected); got != "0×9 500×90" {
		t.Errorf("unexpected = %q", got)
	}
	if s.OKRate > 0.98990 || s.OKRate < 0.98989 {
		t.Errorf("ok rate %v", s.OKRate)
	}
	s.Duration = 20
	s.setThroughput()
	if s.Throughput != 490 {
		t.Errorf("throughput %v, want 490", s.Throughput)
	}
	if pass, why := judge(s); pass || !strings.Contains(why, "answered") || !strings.Contains(why, "dropped") {
		t.Errorf("judge = %v %q, want a failure naming both", pass, why)
	}
	if _, err := parseSummary([]byte(`{}`)); err == nil {
		t.Error("empty summary accepted")
	}
}

func TestJudge(t *testing.T) {
	ok := &Scenario{Iterations: 1000, Dropped: 9, OKRate: 0.995}
	if pass, why := judge(ok); !pass {
		t.Errorf("judge(%+v) failed: %s", ok, why)
	}
	for _, s := range []*Scenario{
		{Iterations: 1000, Dropped: 11, OKRate: 1},
		{Iterations: 1000, OKRate: 0.98},
		{},
	} {
		if pass, _ := judge(s); pass {
			t.Errorf("judge(%+v) passed", s)
		}
	}
}

func TestVUs(t *testing.T) {
	for _, c := range []struct {
		rate          float64
		cap           int
		wantPre, wMax int
	}{
		{100, 4000, 50, 200},
		{5000, 4000, 500, 2500},
		{40000, 4000, 4000, 4000},
		{40000, 500, 500, 500},
	} {
		pre, max := vus(c.rate, c.cap)
		if pre != c.wantPre || max != c.wMax {
			t.Errorf("vus(%v, %d) = %d, %d; want %d, %d", c.rate, c.cap, pre, max, c.wantPre, c.wMax)
		}
	}
}

func TestRoundRate(t *testing.T) {
	for in, want := range map[float64]float64{3000: 3000, 3749: 3700, 750: 750, 1234: 1200, 0: 0, 48: 48} {
		if got := roundRate(in); got != want {
			t.Errorf("roundRate(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	kb, err := parseVmRSS([]byte("Name:\trefundgate\nVmPeak:\t  900 kB\nVmRSS:\t   51234 kB\nThreads: 9\n"))
	if err != nil || kb != 51234 {
		t.Fatalf("parseVmRSS = %d, %v", kb, err)
	}
	if _, err := parseVmRSS([]byte("Name: x\n")); err == nil {
		t.Error("no VmRSS accepted")
	}
	if kb, err := readRSS(os.Getpid()); err != nil || kb <= 0 {
		t.Errorf("readRSS(self) = %d, %v", kb, err)
	}
}

func TestSoakReport(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var ss []rssSample
	for i := 0; i <= 600; i++ {
		kb := int64(100000 + i*10)
		if i < 60 {
			kb = int64(50000 + i*800) // warm-up growth
		}
		ss = append(ss, rssSample{At: t0.Add(time.Duration(i) * time.Second), KB: kb})
	}
	warm, end, peak, curve := soakReport(ss, t0, time.Minute)
	if warm != 100600 || end != 106000 || peak != 106000 {
		t.Errorf("warm %d end %d peak %d", warm, end, peak)
	}
	if len(curve) != 11 {
		t.Errorf("curve has %d points, want 11 (one a minute)", len(curve))
	}
}

func TestConfigYAML(t *testing.T) {
	keys := sandboxKeys{}
	keys["checkoutcom"] = struct {
		TestSecretKey string `json:"test_secret_key"`
		LiveSecretKey string `json:"live_secret_key"`
		WebhookSecret string `json:"webhook_secret"`
	}{TestSecretKey: "sk_test_x", WebhookSecret: "sk_test_x"}
	y := configYAML("127.0.0.1:9999", "/tmp/x/refundgate.db", "http://127.0.0.1:8888", "rk_test_bench_0123456789", keys)
	for _, want := range []string{
		`server: {addr: "127.0.0.1:9999"}`,
		`store: {driver: sqlite, dsn: "/tmp/x/refundgate.db"}`,
		`log: {level: warn, format: json}`,
		`base_url: "http://127.0.0.1:8888/checkoutcom/v2", secret_key: "sk_test_x"`,
		`consecutive_failures: 1000000`,
		`payment_id_prefix: "charge_", provider: checkoutcom-sandbox`,
		`payment_id_prefix: "payment_", provider: smartpay-sandbox`,
	} {
		if !strings.Contains(y, want) {
			t.Errorf("config lacks %q:\n%s", want, y)
		}
	}
}

func TestFsyncRate(t *testing.T) {
	r, err := fsyncRate(t.TempDir(), 50*time.Millisecond)
	if err != nil || r <= 0 {
		t.Fatalf("fsyncRate = %v, %v", r, err)
	}
}

func TestLogTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gw.log")
	lines := `{"level":"warn","msg":"slow"}
{"level":"info","msg":"fine"}
{"level":"error","msg":"boom","error":"x"}
{"level":"warn","msg":"slow"}
`
	if err := os.WriteFile(p, []byte(lines+`{"level":"error","msg":"partial`), 0o644); err != nil {
		t.Fatal(err)
	}
	lt := &logTail{path: p}
	lt.read()
	got := lt.lines()
	if len(got) != 2 || got[0].Msg != "slow" || got[0].Count != 2 || got[1].Msg != "boom" {
		t.Fatalf("lines = %+v", got)
	}
	if lt.offset != int64(len(lines)) {
		t.Errorf("offset %d, want %d (a partial line waits)", lt.offset, len(lines))
	}
}

func TestFlags(t *testing.T) {
	var sb strings.Builder
	if _, err := parseFlags([]string{"--scenarios", "create,bogus"}, &sb); err == nil {
		t.Error("unknown scenario accepted")
	}
	if _, err := parseFlags([]string{"--profile", "--duration", "10s"}, &sb); err == nil {
		t.Error("--profile with a 10 s run accepted")
	}
	o, err := parseFlags([]string{"--soak", "10m"}, &sb)
	if err != nil || o.soak != 10*time.Minute || o.duration != 20*time.Second {
		t.Errorf("parseFlags = %+v, %v", o, err)
	}
}

func TestBudget(t *testing.T) {
	r := &Results{CreatedPerSec: 3500, ReplayedPerSec: 9000, Added: &Added{Rate: 1750, P99: 4.2},
		Scenarios: []*Scenario{{Name: "create-max", Rate: 3600, OKRate: 1, Pass: true}, {Name: "replay-max", Rate: 9000, OKRate: 1, Pass: true}}}
	b := r.budget()
	want := []string{"yes", "yes", "no", "not measured (run with --soak 10m)"}
	for i, w := range want {
		if b[i].Met != w {
			t.Errorf("budget[%d] %s met = %q, want %q", i, b[i].Name, b[i].Met, w)
		}
	}
}

func TestProcCPU(t *testing.T) {
	stat := []byte("1234 (refund gate) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200")
	if got := procCPU(stat); got != 3 {
		t.Errorf("procCPU = %v, want 3 (300 ticks)", got)
	}
	if got := machineBusy([]byte("cpu  100 0 100 5000 300 0 0 0 0 0\ncpu0 1 2 3\n")); got != 2 {
		t.Errorf("machineBusy = %v, want 2", got)
	}
	got := cpuShare(map[string]float64{"gateway": 1}, map[string]float64{"gateway": 4}, 2*time.Second)
	if got["gateway"] != 1.5 {
		t.Errorf("cpuShare = %v", got)
	}
}

func TestParseWrk(t *testing.T) {
	out := []byte("Running 20s test @ http://x\n  2 threads\n\nBENCH_RESULT {\"requests\":2000,\"duration_us\":20000000,\"p50_us\":1500,\"p90_us\":3000,\"p99_us\":9000,\"p999_us\":20000,\"max_us\":40000,\"mean_us\":2000.5,\"socket_errors\":2,\"counts\":{\"ok\":1990,\"409\":10}}\n")
	s, err := parseWrk(out, "replay")
	if err != nil {
		t.Fatal(err)
	}
	o := s.Ops["replay"]
	if o == nil || o.P99 != 9 || o.P50 != 1.5 || s.Throughput != 99.5 || s.Unexpected["409"] != 10 || s.Unexpected["0"] != 2 {
		t.Fatalf("scenario %+v op %+v", s, o)
	}
	if _, err := parseWrk([]byte("no result"), "create"); err == nil {
		t.Error("output without a result accepted")
	}
}

func TestLuaPool(t *testing.T) {
	got := string(luaPool(pool{Payments: []string{"charge_test_a"}, Replays: []replayCase{{Key: "k", Body: `{"a":"b"}`}}, RefundIDs: []string{"rf_1"}}))
	for _, want := range []string{`payments = {"charge_test_a",}`, `{key = "k", body = "{\"a\":\"b\"}"},`, `refund_ids = {"rf_1",}`} {
		if !strings.Contains(got, want) {
			t.Errorf("pool lacks %q:\n%s", want, got)
		}
	}
}
