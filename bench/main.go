// Command bench is refundgate's benchmark harness: `go run ./bench`.
//
// In one run on one machine it builds the gateway, starts the sandbox
// providers and the gateway on a SQLite file in bench/out, makes a pool of
// Checkout.com sandbox payments, measures the disk's fsync rate, and drives
// load with vegeta's constant-rate attack (an open arrival model: new
// requests arrive at the set rate whatever the answers), one vegeta process
// per operation, fed its targets on stdin by the harness:
//
//   - create-max: POST /v1/refunds at the highest rate that passes (found
//     by a step search: ≥ 99% answered 201 and < 1% of the requests
//     dropped, i.e. not sent on time);
//   - create-half and provider-half: the same refunds at half that rate
//     through the gateway and straight at the sandbox provider, whose
//     difference is the latency the gateway adds;
//   - replay-max: the same few keys and bodies replayed (201 with
//     Idempotent-Replayed: true) at the highest passing rate;
//   - read-max: GET /v1/refunds/{id} and GET /v1/refunds?limit=20;
//   - mixed: 60% create, 20% get, 10% list, 10% replay at the create max.
//
// The harness computes every figure itself from vegeta's per-request
// results: exact p50/p99/p99.9, throughput (answered as expected per
// second) and dropped requests (rate × duration − requests sent). It
// samples the gateway's RSS every second, prints the numbers and writes
// them to bench/out/results-<timestamp>.json and bench/out/latest.json.
// `--soak 10m` then runs the half-max create load for that long and says
// whether memory stays flat. `--profile` takes a 15 s CPU profile of the
// gateway during create-max (it needs REFUNDGATE_PPROF_ADDR support in the
// gateway; see BENCHMARKS.md).
//
// `go test ./bench/...` tests the harness's pure parts only; it never runs
// the load.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	duration    time.Duration
	step        time.Duration
	pause       time.Duration
	payments    int
	value       int64
	startRate   float64
	ceiling     float64
	bisections  int
	scenarios   string
	rate        float64
	soak        time.Duration
	profile     bool
	pprofAddr   string
	maxWorkers  int
	out         string
	keep        bool
	fsyncFor    time.Duration
	soakWarmup  time.Duration
	replayKeys  int
	readRefunds int
	bin         string
	tool        string
	wrkConns    int
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of each measured scenario")
	fs.DurationVar(&o.step, "step", 10*time.Second, "length of each step of a max-rate search")
	fs.DurationVar(&o.pause, "pause", 3*time.Second, "rest between load runs, for the gateway to drain")
	fs.IntVar(&o.payments, "payments", 2000, "Checkout.com sandbox payments in the pool")
	fs.Int64Var(&o.value, "payment-value", 100000000, "captured amount of each payment (EUR cents); refunds are 1 cent")
	fs.Float64Var(&o.startRate, "start-rate", 500, "first rate (requests/s) of a max-rate search; it doubles until a step fails, then bisects")
	fs.Float64Var(&o.ceiling, "ceiling", 40000, "highest rate a search tries")
	fs.IntVar(&o.bisections, "bisect", 3, "bisection steps of a max-rate search after the first failure")
	fs.StringVar(&o.scenarios, "scenarios", "create,half,replay,read,mixed", "comma-separated scenarios to run")
	fs.Float64Var(&o.rate, "rate", 0, "skip the create search and use this as the max create rate")
	fs.DurationVar(&o.soak, "soak", 0, "after the scenarios, run the fixed-rate (half max) create scenario for this long, e.g. 10m, and judge memory (--scenarios none: the soak alone)")
	fs.DurationVar(&o.soakWarmup, "soak-warmup", time.Minute, "the soak's warm-up, after which RSS is the baseline")
	fs.BoolVar(&o.profile, "profile", false, "take a 15 s CPU profile of the gateway during create-max (needs REFUNDGATE_PPROF_ADDR support)")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "127.0.0.1:6060", "REFUNDGATE_PPROF_ADDR given to the gateway with --profile")
	fs.IntVar(&o.maxWorkers, "max-workers", 4000, "cap on the load tool's workers (requests in flight) per operation's stream")
	fs.StringVar(&o.out, "out", "", "output directory (default <repo>/bench/out)")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's data directory (SQLite file) and the raw vegeta results afterwards")
	fs.DurationVar(&o.fsyncFor, "fsync-for", 3*time.Second, "length of the fsync probe")
	fs.IntVar(&o.replayKeys, "replay-keys", 10, "distinct keys the replay scenario replays")
	fs.IntVar(&o.readRefunds, "read-refunds", 200, "refunds created up front for GET /v1/refunds/{id}")
	fs.StringVar(&o.tool, "tool", "auto", "load generator: auto (vegeta, installed if missing, else wrk), vegeta or wrk")
	fs.IntVar(&o.wrkConns, "wrk-conns", 32, "connections of the wrk fallback (a closed loop)")
	fs.StringVar(&o.bin, "bin", "", "use this refundgate binary instead of building ./cmd/refundgate")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.tool != "auto" && o.tool != "vegeta" && o.tool != "wrk" {
		return nil, fmt.Errorf("--tool must be auto, vegeta or wrk, not %q", o.tool)
	}
	if o.maxWorkers < 1 {
		return nil, fmt.Errorf("--max-workers must be at least 1")
	}
	if o.profile && o.duration < 20*time.Second {
		return nil, fmt.Errorf("--profile needs --duration ≥ 20s for the 15 s profile (got %s)", o.duration)
	}
	for _, s := range strings.Split(o.scenarios, ",") {
		if _, ok := knownScenarios[strings.TrimSpace(s)]; !ok && s != "" && s != "none" {
			return nil, fmt.Errorf("unknown scenario %q (known: create, half, replay, read, mixed)", s)
		}
	}
	return o, nil
}

var knownScenarios = map[string]bool{"create": true, "half": true, "replay": true, "read": true, "mixed": true}

// harness is one run's state.
type harness struct {
	opts       *options
	root       string
	outDir     string
	runDir     string
	dataDir    string
	runID      string
	vegeta     string
	wrk        string
	poolFile   string
	pool       *pool
	maxWorkers int
	seq        int
	// attacks counts the vegeta attacks started, for their source
	// addresses.
	attacks int

	bin        string
	sandbox    *proc
	gateway    *proc
	sandboxURL string
	gatewayURL string
	apiKey     string
	// providerKey is the Checkout.com sandbox test secret key.
	providerKey string
	payments    []string

	rss     *rssSampler
	phaseMu sync.Mutex
	phase   string
	gwLog   *logTail

	res *Results
	log io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	h := &harness{opts: o, log: stdout, maxWorkers: o.maxWorkers}
	defer h.close()
	if err := h.run(ctx); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		if h.res != nil && len(h.res.Scenarios) > 0 {
			h.finish()
		}
		return 1
	}
	return 0
}

func (h *harness) setPhase(p string) {
	h.phaseMu.Lock()
	h.phase = p
	h.phaseMu.Unlock()
}

func (h *harness) getPhase() string {
	h.phaseMu.Lock()
	defer h.phaseMu.Unlock()
	return h.phase
}

func (h *harness) markLog()    { h.gwLog.read() }
func (h *harness) collectLog() { h.gwLog.read() }

func (h *harness) close() {
	h.rss.stop()
	h.gateway.stop()
	h.sandbox.stop()
	if h.dataDir != "" && !h.opts.keep {
		os.RemoveAll(h.dataDir)
	}
}

func (h *harness) printf(format string, a ...any) {
	fmt.Fprintf(h.log, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func (h *harness) run(ctx context.Context) error {
	root, err := findRoot()
	if err != nil {
		return fmt.Errorf("run from inside the refundgate module: %w", err)
	}
	h.root = root
	h.outDir = h.opts.out
	if h.outDir == "" {
		h.outDir = filepath.Join(root, "bench", "out")
	}
	now := time.Now()
	var rb [3]byte
	_, _ = rand.Read(rb[:])
	h.runID = now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rb[:])
	h.runDir = filepath.Join(h.outDir, "run-"+h.runID)
	h.dataDir = filepath.Join(h.runDir, "data")
	if err := os.MkdirAll(h.dataDir, 0o755); err != nil {
		return err
	}
	h.res = &Results{RunID: h.runID, StartedAt: now, Commit: gitCommit(root), Machine: machine(h.dataDir), Searches: map[string]*Search{},
		Settings: Settings{Duration: h.opts.duration.String(), StepDuration: h.opts.step.String(), Payments: h.opts.payments,
			PaymentValue: h.opts.value, StartRate: h.opts.startRate, CeilingRate: h.opts.ceiling, SearchSteps: h.opts.bisections,
			Scenarios: h.opts.scenarios, MaxWorkers: h.opts.maxWorkers}}
	if h.opts.soak > 0 {
		h.res.Settings.Soak = h.opts.soak.String()
	}
	h.printf("run %s; output in %s", h.runID, h.runDir)

	// Tools first: a missing load generator should fail before anything starts.
	if err := h.findTools(ctx); err != nil {
		return err
	}

	h.printf("fsync probe: 4 KiB append + fsync for %s in %s", h.opts.fsyncFor, h.dataDir)
	if h.res.FsyncPerSec, err = fsyncRate(h.dataDir, h.opts.fsyncFor); err != nil {
		return fmt.Errorf("fsync probe: %w", err)
	}
	h.printf("fsync: %.0f/s", h.res.FsyncPerSec)

	if h.opts.bin != "" {
		if h.bin, err = filepath.Abs(h.opts.bin); err != nil {
			return err
		}
		h.printf("using the prebuilt %s (--bin)", h.bin)
	} else if h.bin, err = buildGateway(ctx, root, h.runDir, h.log); err != nil {
		return err
	}
	if err := h.startAll(ctx); err != nil {
		return err
	}
	if err := h.prepare(ctx); err != nil {
		return err
	}
	if h.wrk != "" {
		err = h.wrkScenarios(ctx)
	} else {
		err = h.scenarios(ctx)
	}
	if err == nil && h.opts.soak > 0 {
		err = h.soak(ctx)
	}
	if err != nil {
		return err
	}
	h.finish()
	return nil
}

// findTools picks the load generator: vegeta (installed into bench/out/bin
// when missing), else wrk.
func (h *harness) findTools(ctx context.Context) error {
	var err error
	if h.opts.tool != "wrk" {
		h.vegeta, err = findVegeta(ctx, filepath.Join(h.outDir, "bin"), h.log)
		if err == nil {
			v := modVersion(h.vegeta)
			if v == "" {
				v = "unknown version"
			}
			h.res.Tool = fmt.Sprintf("vegeta %s (%s)", v, h.vegeta)
			h.printf("load generator: %s", h.res.Tool)
			return nil
		}
		if h.opts.tool == "vegeta" {
			return err
		}
		h.printf("vegeta is unavailable (%v): FALLING BACK TO wrk, a closed-loop generator; the numbers are not comparable with vegeta's", err)
	}
	if h.opts.soak > 0 {
		return fmt.Errorf("--soak needs vegeta (an arrival rate); wrk cannot hold one")
	}
	if h.wrk, err = findWrk(ctx, h.log); err != nil {
		return err
	}
	h.res.Tool = "wrk (" + h.wrk + ", closed loop, fallback)"
	h.printf("load generator: %s", h.res.Tool)
	return nil
}

// finish computes the derived numbers, prints and writes the results.
func (h *harness) finish() {
	r := h.res
	h.collectLog()
	r.RSS = h.rss.report()
	r.GatewayLog = h.gwLog.lines()
	if s := r.scenario("create-max"); s != nil {
		if o := s.Ops["create"]; o != nil {
			r.CreatedPerSec = o.Throughput
		}
	}
	if r.CreatedPerSec > 0 && r.FsyncPerSec > 0 {
		r.RefundsPerFsync = r.CreatedPerSec / r.FsyncPerSec
	}
	if s := r.scenario("replay-max"); s != nil {
		if o := s.Ops["replay"]; o != nil {
			r.ReplayedPerSec = o.Throughput
		}
	}
	gw, pv := r.scenario("create-half"), r.scenario("provider-half")
	if gw != nil && pv != nil && gw.Ops["create"] != nil && pv.Ops["provider"] != nil {
		g, p := gw.Ops["create"], pv.Ops["provider"]
		r.Added = &Added{Rate: gw.Rate, P50: g.P50 - p.P50, P99: g.P99 - p.P99, P999: g.P999 - p.P999}
	}
	r.Budget = r.budget()
	r.print(h.log)
	name, err := r.write(h.outDir)
	if err != nil {
		h.printf("writing results: %v", err)
		return
	}
	h.printf("results: %s and %s", name, filepath.Join(h.outDir, "latest.json"))
}
