package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests cover the harness's own logic; none starts the gateway or
// vegeta. The load runs only through `go run ./bench`.

func TestRoundRate(t *testing.T) {
	for in, want := range map[float64]float64{3000: 3000, 3749: 3700, 750: 750, 1234: 1200, 0: 0, 48: 48} {
		if got := roundRate(in); got != want {
			t.Errorf("roundRate(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestStepDown(t *testing.T) {
	for _, c := range []struct{ rate, tput, want float64 }{
		{4000, 2521, 2400}, // far behind: 95% of what was answered
		{4000, 3900, 3400}, // nearly kept up: 85% of the rate
		{1500, 1479, 1300},
		{4000, 0, 3400}, // nothing answered: 85%
	} {
		if got := stepDown(c.rate, c.tput); got != c.want {
			t.Errorf("stepDown(%v, %v) = %v, want %v", c.rate, c.tput, got, c.want)
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
	if _, err := parseFlags([]string{"--tool", "k6"}, &sb); err == nil {
		t.Error("--tool k6 accepted")
	}
	if _, err := parseFlags([]string{"--max-workers", "0"}, &sb); err == nil {
		t.Error("--max-workers 0 accepted")
	}
	o, err := parseFlags([]string{"--soak", "10m"}, &sb)
	if err != nil || o.soak != 10*time.Minute || o.duration != 20*time.Second || o.tool != "auto" || o.maxWorkers != 4000 {
		t.Errorf("parseFlags = %+v, %v", o, err)
	}
	o, err = parseFlags([]string{"--tool", "vegeta", "--max-workers", "800", "--scenarios", "half,replay,read,mixed", "--rate", "600"}, &sb)
	if err != nil || o.tool != "vegeta" || o.maxWorkers != 800 || o.rate != 600 {
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
