package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refundgate/refundgate/config"
	"github.com/refundgate/refundgate/sandbox"
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
	x, err := parseStatus([]byte("Name:\trefundgate\nVmPeak:\t  900 kB\nVmRSS:\t   51234 kB\nRssAnon:\t   30000 kB\nRssFile:\t   21000 kB\nRssShmem:\t     234 kB\nThreads: 9\n"))
	if err != nil || x.KB != 51234 || x.AnonKB != 30000 || x.FileKB != 21234 {
		t.Fatalf("parseStatus = %+v, %v", x, err)
	}
	if _, err := parseStatus([]byte("Name: x\n")); err == nil {
		t.Error("no VmRSS accepted")
	}
	if x, err := sampleMemory(os.Getpid(), ""); err != nil || x.KB <= 0 {
		t.Errorf("sampleMemory(self) = %+v, %v", x, err)
	}
}

// TestSampleMemory reads this test process the way the soak reads the
// gateway: RSS and its parts from /proc, open descriptors, and the heap and
// goroutines from a real /metrics answer.
func TestSampleMemory(t *testing.T) {
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE go_goroutines gauge\ngo_goroutines 42\n# TYPE go_memstats_heap_inuse_bytes gauge\ngo_memstats_heap_inuse_bytes 8.388608e+06\n"+
			"# TYPE go_memstats_sys_bytes gauge\ngo_memstats_sys_bytes 2.097152e+07\n# TYPE go_memstats_heap_released_bytes gauge\ngo_memstats_heap_released_bytes 4.194304e+06\n")
	}))
	defer metrics.Close()
	x, err := sampleMemory(os.Getpid(), metrics.URL)
	if err != nil {
		t.Fatal(err)
	}
	if x.KB <= 0 || x.AnonKB <= 0 || x.FileKB <= 0 || x.AnonKB+x.FileKB > x.KB {
		t.Errorf("RSS %d KB = anon %d + files %d?", x.KB, x.AnonKB, x.FileKB)
	}
	if x.FDs < 3 {
		t.Errorf("%d open fds, want stdin/stdout/stderr at least", x.FDs)
	}
	if x.HeapKB != 8192 || x.GoKB != 16384 || x.Goroutines != 42 {
		t.Errorf("heap %d KB, Go runtime %d KB, %d goroutines; want 8192, 16384 (20 MiB less 4 released), 42", x.HeapKB, x.GoKB, x.Goroutines)
	}
	metrics.Close()
	if x, err := sampleMemory(os.Getpid(), metrics.URL); err != nil || x.HeapKB != -1 || x.GoKB != -1 || x.Goroutines != -1 {
		t.Errorf("without /metrics: %+v, %v; want -1 for heap and goroutines", x, err)
	}
	if got := mibs(outsideGo([]int64{30720, 30720, -1}, []int64{20480, -1, 20480})); got != "10.0 - -" {
		t.Errorf("outside Go: %q", got)
	}
	if got := mibs([]int64{1536, -1}) + " / " + ints([]int64{7, -1}); got != "1.5 - / 7 -" {
		t.Errorf("printed %q", got)
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
	y := configYAML("127.0.0.1:9999", "sqlite", "/tmp/x/refundgate.db", "http://127.0.0.1:8888", "rk_test_bench_0123456789", keys)
	pg := configYAML("127.0.0.1:9999", "postgres", "postgres://postgres@127.0.0.1:5432/refundgate_bench_x?sslmode=disable", "http://127.0.0.1:8888", "rk_test_bench_0123456789", keys)
	if want := `store: {driver: postgres, dsn: "postgres://postgres@127.0.0.1:5432/refundgate_bench_x?sslmode=disable"}`; !strings.Contains(pg, want) {
		t.Errorf("postgres config lacks %q:\n%s", want, pg)
	}
	if strings.Replace(pg, "driver: postgres, dsn: \"postgres://postgres@127.0.0.1:5432/refundgate_bench_x?sslmode=disable\"", "driver: sqlite, dsn: \"/tmp/x/refundgate.db\"", 1) != y {
		t.Errorf("the postgres config differs from the sqlite one beyond the store line:\n%s\n%s", pg, y)
	}
	for _, want := range []string{
		`server: {addr: "127.0.0.1:9999"}`,
		`store: {driver: sqlite, dsn: "/tmp/x/refundgate.db"}`,
		`log: {level: warn, format: json}`,
		`base_url: "http://127.0.0.1:8888/checkoutcom/v2", secret_key: "sk_test_x"`,
		`consecutive_failures: 1000000`,
		`payment_id_prefix: "charge_", provider: checkoutcom-sandbox`,
		`payment_id_prefix: "payment_", provider: smartpay-sandbox`,
		`base_url: "http://127.0.0.1:8888/yoco/api"`,
		`payment_id_prefix: "ch_", provider: yoco-sandbox`,
	} {
		if !strings.Contains(y, want) {
			t.Errorf("config lacks %q:\n%s", want, y)
		}
	}
	// The gateway takes it, with the sandbox's own keys.
	url, real := testSandbox(t)
	if _, err := config.Parse("refundgate.yaml", []byte(configYAML("127.0.0.1:9999", "sqlite", "/tmp/x/refundgate.db", url, "rk_test_bench_0123456789", real)), nil); err != nil {
		t.Errorf("the gateway refuses the bench config: %v", err)
	}
}

func TestFsyncProbe(t *testing.T) {
	p, err := fsyncProbe(t.TempDir(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if p.PerSec <= 0 || p.P50 <= 0 || p.P50 > p.P99 || p.P99 > p.P999 || p.P999 > p.Max {
		t.Errorf("probe = %+v: want a positive rate and ordered percentiles", *p)
	}
	if p.Stalls == 0 && p.StallMS != 0 || p.Stalls > 0 && p.StallMS < float64(p.Stalls)*ms(int64(stallAfter)) {
		t.Errorf("probe = %+v: stall time does not match the stall count", *p)
	}
	// Shorter than one fsync, or none asked for: it still measures one.
	for _, d := range []time.Duration{0, time.Nanosecond} {
		if p, err := fsyncProbe(t.TempDir(), d); err != nil || p.PerSec <= 0 || p.Max <= 0 || p.P50 != p.Max {
			t.Errorf("a %s probe = %+v, %v: want one fsync measured", d, p, err)
		}
	}
	if _, err := fsyncProbe(filepath.Join(t.TempDir(), "missing"), time.Millisecond); err == nil {
		t.Error("a probe in a missing directory succeeded")
	}
}

func TestWakeProbe(t *testing.T) {
	p := wakeProbe(100 * time.Millisecond)
	// A 1 ms sleep cannot take less than 1 ms, so 100 ms hold at most 100.
	if p.Sleeps < 10 || p.Sleeps > 100 {
		t.Errorf("probe = %+v: want 10-100 sleeps of 1 ms in 100 ms", *p)
	}
	if p.P50 < 0 || p.P50 > p.P99 || p.P99 > p.P999 || p.P999 > p.Max {
		t.Errorf("probe = %+v: want ordered percentiles", *p)
	}
	if p.Over5ms > 0 && p.Max <= 5 || p.Over5ms == 0 && p.Max > 5 {
		t.Errorf("probe = %+v: the count over 5 ms does not match the max", *p)
	}
	if p := wakeProbe(time.Nanosecond); p.Sleeps != 1 {
		t.Errorf("a probe shorter than one sleep = %+v, want one sleep", *p)
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
	if err != nil || o.tool != "vegeta" || o.maxWorkers != 800 || o.rate != 600 || o.provider.Name != "checkoutcom" {
		t.Errorf("parseFlags = %+v, %v", o, err)
	}
	if o, err = parseFlags([]string{"--provider", "smartpay", "--webhooks"}, &sb); err != nil || o.provider.Name != "smartpay" || o.provider.Currency != "JPY" || !o.webhooks {
		t.Errorf("--provider smartpay: %+v, %v", o, err)
	}
	if o, err = parseFlags([]string{"--provider", "yoco"}, &sb); err != nil || o.provider.Name != "yoco" || o.provider.Currency != "ZAR" || !o.provider.OnePerPayment {
		t.Errorf("--provider yoco: %+v, %v", o, err)
	}
	if _, err := parseFlags([]string{"--provider", "paypal"}, &sb); err == nil || !strings.Contains(err.Error(), "checkoutcom, smartpay, yoco") {
		t.Errorf("--provider paypal: %v, want an error naming the providers", err)
	}
}

func TestStoreFlags(t *testing.T) {
	var sb strings.Builder
	t.Setenv(postgresDSNEnv, "")
	o, err := parseFlags(nil, &sb)
	if err != nil || !slices.Equal(o.stores, []string{"sqlite", "postgres"}) || o.postgresDSN != defaultPostgresDSN {
		t.Fatalf("defaults: stores %q dsn %q, %v", o.stores, o.postgresDSN, err)
	}
	t.Setenv(postgresDSNEnv, "postgres://bench@db.internal:6543/x?sslmode=disable")
	if o, err = parseFlags(nil, &sb); err != nil || o.postgresDSN != "postgres://bench@db.internal:6543/x?sslmode=disable" {
		t.Errorf("$%s is not the default: %q, %v", postgresDSNEnv, o.postgresDSN, err)
	}
	o, err = parseFlags([]string{"--stores", " postgres , sqlite", "--postgres-dsn", "host=/run/postgresql user=postgres dbname=test"}, &sb)
	if err != nil || !slices.Equal(o.stores, []string{"postgres", "sqlite"}) || o.postgresDSN != "host=/run/postgresql user=postgres dbname=test" {
		t.Errorf("stores %q dsn %q, %v", o.stores, o.postgresDSN, err)
	}
	if o, err = parseFlags([]string{"--stores", "sqlite", "--postgres-dsn", "::not a dsn"}, &sb); err != nil || !slices.Equal(o.stores, []string{"sqlite"}) {
		t.Errorf("--stores sqlite judged the unused --postgres-dsn: %v", err)
	}
	for _, bad := range [][]string{
		{"--stores", "sqlite,mysql"},
		{"--stores", "sqlite,sqlite"},
		{"--stores", ","},
		{"--postgres-dsn", "::not a dsn"},
		{"--postgres-dsn", "postgres://u:${PW}@h/d"},
	} {
		if _, err := parseFlags(bad, &sb); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestBudget(t *testing.T) {
	sqlite := &StoreRun{Store: "sqlite", CreatedPerSec: 3500, ReplayedPerSec: 9000, Added: &Added{Rate: 1750, P99: 4.2},
		Scenarios: []*Scenario{{Name: "create-max", Rate: 3600, OKRate: 1, Pass: true}, {Name: "replay-max", Rate: 9000, OKRate: 1, Pass: true}}}
	postgres := &StoreRun{Store: "postgres", CreatedPerSec: 900, Added: &Added{Rate: 450, P99: 3},
		Scenarios: []*Scenario{{Name: "create-max", Rate: 900, OKRate: 1, Pass: true}}, Wake: &WakeProbe{P99: 2.5}}
	r := &Results{Stores: []*StoreRun{sqlite, postgres}}
	b := r.budget()
	if got := b[1].Measured; got != "4.20 ms at 1750/s" {
		t.Errorf("added latency measured %q, want no wake-up figure without a probe", got)
	}
	want := []string{"yes", "yes", "no", "not measured (run with --soak 10m)"}
	for i, w := range want {
		if b[i].Met != w {
			t.Errorf("budget[%d] %s met = %q, want %q", i, b[i].Name, b[i].Met, w)
		}
	}
	// PostgreSQL's figures stand beside SQLite's, not judged.
	if got := b[0].OtherStores["postgres"]; got != "900/s (offered 900/s, ok 100.00%) (would be no)" {
		t.Errorf("postgres beside created refunds/s: %q", got)
	}
	if got := b[1].OtherStores["postgres"]; got != "3.00 ms at 450/s (idle wake-ups late by p99 2.50 ms) (would be yes)" {
		t.Errorf("postgres beside added latency: %q", got)
	}
	if got := b[2].OtherStores["postgres"]; got != "-" {
		t.Errorf("postgres beside replays: %q", got)
	}
	// Without SQLite nothing is judged.
	r = &Results{Stores: []*StoreRun{{Store: "sqlite", Skipped: "x"}, postgres}}
	for _, x := range r.budget() {
		if !strings.HasPrefix(x.Met, "not measured (the budget is judged on SQLite") || x.Measured != "-" {
			t.Errorf("budget without SQLite: %+v", x)
		}
	}
}

func TestDerive(t *testing.T) {
	syncs := int64(2000)
	sr := &StoreRun{Store: "postgres", FsyncPerSec: 2000, Scenarios: []*Scenario{
		{Name: "create-max", Duration: 20, StoreSyncs: &syncs, Ops: map[string]*OpStat{"create": {Throughput: 1000}}},
		{Name: "create-half", Rate: 500, Ops: map[string]*OpStat{"create": {P50: 3, P99: 9, P999: 20}}},
		{Name: "provider-half", Rate: 500, Ops: map[string]*OpStat{"provider": {P50: 0.5, P99: 1, P999: 2}}},
	}}
	sr.derive()
	if sr.CreatedPerSec != 1000 || sr.RefundsPerFsync != 0.5 || sr.RefundsPerStoreSync != 10 {
		t.Errorf("created %v per fsync %v per store sync %v", sr.CreatedPerSec, sr.RefundsPerFsync, sr.RefundsPerStoreSync)
	}
	if a := sr.Added; a == nil || a.Rate != 500 || a.P50 != 2.5 || a.P99 != 8 || a.P999 != 18 {
		t.Errorf("added %+v", sr.Added)
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
	st, ok := parseStat(stat)
	if !ok || st.ppid != 1 || st.self != 3 || st.children != 0 {
		t.Errorf("parseStat = %+v, %v", st, ok)
	}
	st, ok = parseStat([]byte("77 (postgres) S 12 77 77 0 -1 4194560 100 0 0 0 100 20 300 80 20 0 1 0 100 1000 200"))
	if !ok || st.ppid != 12 || st.self != 1.2 || st.children != 3.8 {
		t.Errorf("parseStat(postmaster) = %+v, %v", st, ok)
	}
	if _, ok := parseStat([]byte("77 (x) S 1 2")); ok {
		t.Error("a short stat parsed")
	}
	// A process tree: this process and its live children.
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if tree, ok := serverCPU(os.Getpid()); !ok || tree < procCPU(b) {
		t.Errorf("serverCPU(self) = %v, %v; own CPU %v", tree, ok, procCPU(b))
	}
	if _, ok := serverCPU(1 << 30); ok {
		t.Error("serverCPU of no process")
	}
}

func TestIdle(t *testing.T) {
	for _, c := range []struct {
		prev, cur map[string]float64
		want      bool
	}{
		{map[string]float64{"gateway": 1}, map[string]float64{"gateway": 1.05}, true},
		{map[string]float64{"gateway": 1}, map[string]float64{"gateway": 1.3}, false},
		{map[string]float64{"gateway": 1, "postgres": 5}, map[string]float64{"gateway": 1.02, "postgres": 5.5}, false}, // the database still works
		{map[string]float64{"gateway": 1, "postgres": 5}, map[string]float64{"gateway": 1.02, "postgres": 5.03}, true},
	} {
		if got := idle(c.prev, c.cur); got != c.want {
			t.Errorf("idle(%v, %v) = %v", c.prev, c.cur, got)
		}
	}
}

func TestPromCounter(t *testing.T) {
	text := []byte("# HELP refundgate_store_wal_syncs_total fdatasyncs.\n# TYPE refundgate_store_wal_syncs_total counter\n" +
		"refundgate_store_wal_syncs_total_other 5\nrefundgate_store_wal_syncs_total 1.234567e+06\ngo_goroutines 12\n")
	if v, ok := promCounter(text, "refundgate_store_wal_syncs_total"); !ok || v != 1234567 {
		t.Errorf("promCounter = %v, %v", v, ok)
	}
	if _, ok := promCounter(text, "refundgate_store_commits_total"); ok {
		t.Error("a missing counter read")
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

func TestRunqWait(t *testing.T) {
	if w, ok := schedstatWait([]byte("7000000 2500000000 31\n")); !ok || w != 2.5 {
		t.Errorf("schedstatWait = %v, %v; want 2.5 s", w, ok)
	}
	if _, ok := schedstatWait([]byte("7000000\n")); ok {
		t.Error("a short schedstat parsed")
	}
	if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/schedstat"); err != nil {
		t.Skipf("no schedstat here: %v", err)
	}
	before, ok := runqWait(os.Getpid())
	if !ok {
		t.Fatal("runqWait found no thread of this process")
	}
	// More spinning threads than CPUs (and as many Ps, so the OS, not Go,
	// queues them): some of them must wait.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2*runtime.NumCPU() + 1))
	var wg sync.WaitGroup
	stop := time.Now().Add(300 * time.Millisecond)
	for range 2*runtime.NumCPU() + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for time.Now().Before(stop) {
			}
		}()
	}
	wg.Wait()
	after, _ := runqWait(os.Getpid())
	if after-before < 0.05 {
		t.Errorf("run-queue wait grew by %.3f s with %d threads spinning on %d CPUs for 300 ms", after-before, 2*runtime.NumCPU()+1, runtime.NumCPU())
	}
}

// Before a run of Yoco's one-refund checkouts, the harness makes enough
// fresh ones for every stream that refunds (and only those), real
// completed checkouts of the sandbox that each take one whole refund.
func TestFreshPayments(t *testing.T) {
	url, keys := testSandbox(t)
	ctx := context.Background()
	h := &harness{opts: &options{provider: loadProviders["yoco"], value: 2500}, sandboxURL: url, log: io.Discard}
	spec := loadSpec{Name: "mixed", Rate: 10, Duration: time.Second, Mix: mixMixed}
	if err := h.freshPayments(ctx, spec); err != nil {
		t.Fatal(err)
	}
	want := streamPayments(6, time.Second) // the create stream's 60% of 10/s; reads and replays take none
	if len(h.fresh) != want || want <= 7 {
		t.Fatalf("%d fresh payments, want %d", len(h.fresh), want)
	}
	if d := len(slices.Compact(slices.Sorted(slices.Values(h.fresh)))); d != want {
		t.Fatalf("%d distinct of %d fresh payments", d, want)
	}
	// Each with a key of its own, so that the second is not a replay.
	refund := func(id, key string) *answer {
		a, err := do("POST", url+"/yoco/api/checkouts/"+id+"/refund", map[string]string{
			"Authorization": "Bearer " + keys["yoco"].TestSecretKey, "Content-Type": "application/json", "Idempotency-Key": key + id}, `{}`)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, id := range []string{h.fresh[0], h.fresh[want-1]} {
		if a := refund(id, "first-"); a.status != http.StatusAccepted {
			t.Fatalf("refund of fresh %s: %d %s", id, a.status, a.body)
		}
		if a := refund(id, "second-"); a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "checkout_already_refunded") {
			t.Fatalf("second refund of %s: %d %s", id, a.status, a.body)
		}
	}
	if err := h.freshPayments(ctx, spec); err != nil || len(h.fresh) != want {
		t.Errorf("with enough fresh payments already: %d (%v), want %d", len(h.fresh), err, want)
	}
	cko := &harness{opts: &options{provider: loadProviders["checkoutcom"], value: 2500}, sandboxURL: url, log: io.Discard}
	if err := cko.freshPayments(ctx, spec); err != nil || cko.fresh != nil {
		t.Errorf("Checkout.com charges take many refunds, yet fresh payments were made: %d (%v)", len(cko.fresh), err)
	}
}

// testSandbox serves a sandbox over loopback HTTP for the test, and
// returns its URL and keys.
func testSandbox(t *testing.T) (string, sandboxKeys) {
	t.Helper()
	sb := sandbox.New(sandbox.Options{Seed: 5})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { srv.Close(); sb.Close() })
	var keys sandboxKeys
	if err := getJSON(srv.URL+"/_sandbox/keys", &keys); err != nil {
		t.Fatal(err)
	}
	return srv.URL, keys
}
