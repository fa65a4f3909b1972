// Command bench is refundgate's benchmark harness: `go run ./bench`.
//
// In one run on one machine it builds the gateway once and then, for each
// store of --stores in turn (SQLite, then PostgreSQL when its server
// answers), starts a fresh sandbox and a fresh gateway process on that store
// (a SQLite file in bench/out, or a PostgreSQL database of the run's own),
// makes a pool of Checkout.com sandbox payments, measures the disk's fsync
// rate, and drives load with vegeta's constant-rate attack (an open arrival
// model: new requests arrive at the set rate whatever the answers), one
// vegeta process per operation, fed its targets on stdin by the harness:
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
// samples the gateway's RSS every second, prints the numbers of every store
// (each labelled by store, side by side, and the budget judged on SQLite)
// and writes them to bench/out/results-<timestamp>.json and
// bench/out/latest.json.
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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
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
	maxConns    int
	out         string
	keep        bool
	fsyncFor    time.Duration
	wakeFor     time.Duration
	provider    *loadProvider
	webhooks    bool
	soakWarmup  time.Duration
	replayKeys  int
	readRefunds int
	bin         string
	tool        string
	wrkConns    int
	// stores are the stores to measure, in order; postgresDSN is the admin
	// DSN through which the run's PostgreSQL database is made.
	stores      []string
	postgresDSN string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of each measured scenario")
	fs.DurationVar(&o.step, "step", 10*time.Second, "length of each step of a max-rate search")
	fs.DurationVar(&o.pause, "pause", 3*time.Second, "rest between load runs, for the gateway to drain")
	fs.IntVar(&o.payments, "payments", 2000, "sandbox payments in the pool (Yoco: for the checks and cases before the load; each run makes its own)")
	fs.Int64Var(&o.value, "payment-value", 100000000, "captured amount of each payment, in the provider's minor units; refunds are 1 unit (Yoco: the whole checkout)")
	fs.BoolVar(&o.webhooks, "webhooks", false, "the sandbox sends the provider's refund webhooks to the gateway during the runs, 64 at a time")
	provider := fs.String("provider", "checkoutcom", "whose payments the refunds go to: checkoutcom (EUR charges), smartpay (JPY payments) or yoco (ZAR checkouts, one refund each, made before each run)")
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
	fs.IntVar(&o.maxConns, "max-connections", 0, "cap on each stream's connections to the gateway, like a client's pool (vegeta -max-connections); 0: unbounded, one per request in flight")
	fs.StringVar(&o.out, "out", "", "output directory (default <repo>/bench/out)")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's data directory (SQLite file) and the raw vegeta results afterwards")
	fs.DurationVar(&o.fsyncFor, "fsync-for", 10*time.Second, "length of the fsync probe (its stalls come seconds apart)")
	fs.DurationVar(&o.wakeFor, "wake-for", 3*time.Second, "length of the wake-up probe, 1 ms sleeps on the idle machine (0: none)")
	fs.IntVar(&o.replayKeys, "replay-keys", 10, "distinct keys the replay scenario replays")
	fs.IntVar(&o.readRefunds, "read-refunds", 200, "refunds created up front for GET /v1/refunds/{id}")
	fs.StringVar(&o.tool, "tool", "auto", "load generator: auto (vegeta, installed if missing, else wrk), vegeta or wrk")
	fs.IntVar(&o.wrkConns, "wrk-conns", 32, "connections of the wrk fallback (a closed loop)")
	fs.StringVar(&o.bin, "bin", "", "use this refundgate binary instead of building ./cmd/refundgate")
	stores := fs.String("stores", "sqlite,postgres", "comma-separated stores to measure, each in turn on a fresh gateway: sqlite, postgres (skipped, loudly, when its server does not answer)")
	fs.StringVar(&o.postgresDSN, "postgres-dsn", postgresDSNDefault(), "admin DSN of the PostgreSQL server; the run makes its own database through it (default $"+postgresDSNEnv+", else "+defaultPostgresDSN+")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.provider, err = providerNamed(*provider); err != nil {
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
	if o.maxConns < 0 {
		return nil, fmt.Errorf("--max-connections must be 0 (unbounded) or more")
	}
	if o.profile && o.duration < 20*time.Second {
		return nil, fmt.Errorf("--profile needs --duration ≥ 20s for the 15 s profile (got %s)", o.duration)
	}
	for _, s := range strings.Split(o.scenarios, ",") {
		if _, ok := knownScenarios[strings.TrimSpace(s)]; !ok && s != "" && s != "none" {
			return nil, fmt.Errorf("unknown scenario %q (known: create, half, replay, read, mixed)", s)
		}
	}
	for _, s := range strings.Split(*stores, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case s != "sqlite" && s != "postgres":
			return nil, fmt.Errorf("unknown store %q (known: sqlite, postgres)", s)
		case slices.Contains(o.stores, s):
			return nil, fmt.Errorf("store %q named twice in --stores", s)
		default:
			o.stores = append(o.stores, s)
		}
	}
	if len(o.stores) == 0 {
		return nil, fmt.Errorf("--stores names no store (known: sqlite, postgres)")
	}
	if slices.Contains(o.stores, "postgres") {
		if _, err := adminConfig(o.postgresDSN); err != nil {
			return nil, fmt.Errorf("--postgres-dsn: %w", err)
		}
		if strings.Contains(o.postgresDSN, "${") {
			return nil, fmt.Errorf("--postgres-dsn holds \"${\", which refundgate's config would expand as a variable")
		}
	}
	return o, nil
}

var knownScenarios = map[string]bool{"create": true, "half": true, "replay": true, "read": true, "mixed": true}

// harness is one run's state. The fields from store on are the current
// store's: each store has its own directory, sandbox, gateway, payment pool
// and results block.
type harness struct {
	opts       *options
	root       string
	outDir     string
	runDir     string
	runID      string
	vegeta     string
	wrk        string
	maxWorkers int
	// attacks counts the vegeta attacks started, for their source
	// addresses; it runs on across stores (TIME_WAIT outlives a gateway).
	attacks int
	bin     string
	// pgAdmin is the admin connection's config, pgInfo what the server
	// said when checked at the start (nil when unreachable or not chosen).
	pgAdmin *pgx.ConnConfig
	pgInfo  *PostgresInfo

	store    string
	cur      *StoreRun
	storeDir string
	// dataDir is the SQLite store's data directory.
	dataDir string
	// pgDB is the PostgreSQL store's database while it exists, pgStats
	// the harness's connection for pg_stat_wal, pgServerPID the server's
	// postmaster on this machine (0 if not).
	pgDB        string
	pgStats     *pgx.Conn
	pgServerPID int
	poolFile    string
	pool        *pool
	seq         int
	// settle, when set, completes the previous run's figures that are
	// read once the gateway is idle (the store's fsync counter).
	settle func()

	sandbox    *proc
	gateway    *proc
	sandboxURL string
	gatewayURL string
	apiKey     string
	// providerKey is the driven provider's sandbox test secret key.
	providerKey string
	// fresh are payments never refunded, made by freshPayments for a
	// provider whose payments take one refund each.
	fresh []string

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
		h.endStore()
		if h.res != nil && h.anyScenario() {
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

func (h *harness) close() { h.endStore() }

func (h *harness) anyScenario() bool {
	for _, sr := range h.res.Stores {
		if len(sr.Scenarios) > 0 {
			return true
		}
	}
	return false
}

// printf logs a line, prefixed with the time and the current store.
func (h *harness) printf(format string, a ...any) {
	prefix := "[" + time.Now().Format("15:04:05") + "] "
	if h.store != "" {
		prefix += h.store + ": "
	}
	fmt.Fprintf(h.log, prefix+format+"\n", a...)
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
	if err := os.MkdirAll(h.runDir, 0o755); err != nil {
		return err
	}
	h.res = &Results{RunID: h.runID, StartedAt: now, Commit: gitCommit(root), Machine: machine(h.runDir),
		Settings: Settings{Duration: h.opts.duration.String(), StepDuration: h.opts.step.String(), Payments: h.opts.payments,
			PaymentValue: h.opts.value, StartRate: h.opts.startRate, CeilingRate: h.opts.ceiling, SearchSteps: h.opts.bisections,
			Scenarios: h.opts.scenarios, MaxWorkers: h.opts.maxWorkers, MaxConns: h.opts.maxConns, Stores: strings.Join(h.opts.stores, ","),
			Provider: h.opts.provider.Name, Webhooks: h.opts.webhooks}}
	if h.opts.soak > 0 {
		h.res.Settings.Soak = h.opts.soak.String()
	}
	h.printf("run %s; output in %s; stores %s", h.runID, h.runDir, strings.Join(h.opts.stores, ", "))

	// Tools first: a missing load generator should fail before anything starts.
	if err := h.findTools(ctx); err != nil {
		return err
	}
	// PostgreSQL next: an unreachable server is said at the start, not
	// after SQLite's minutes.
	skipped := map[string]string{}
	if slices.Contains(h.opts.stores, "postgres") {
		if err := h.checkPostgresStore(ctx); err != nil {
			skipped["postgres"] = err.Error()
			if len(h.opts.stores) == 1 {
				return errors.New("nothing to measure: " + err.Error())
			}
		}
	}

	if h.opts.bin != "" {
		var err error
		if h.bin, err = filepath.Abs(h.opts.bin); err != nil {
			return err
		}
		h.printf("using the prebuilt %s (--bin)", h.bin)
	} else if h.bin, err = buildGateway(ctx, root, h.runDir, h.log); err != nil {
		return err
	}
	for _, st := range h.opts.stores {
		if why, ok := skipped[st]; ok {
			h.res.Stores = append(h.res.Stores, &StoreRun{Store: st, Skipped: why})
			continue
		}
		if err := h.runStore(ctx, st); err != nil {
			return err
		}
	}
	h.finish()
	return nil
}

// checkPostgresStore checks that the PostgreSQL server answers the admin
// DSN, and says so loudly when it does not: the run then measures the
// other stores only.
func (h *harness) checkPostgresStore(ctx context.Context) error {
	cfg, err := adminConfig(h.opts.postgresDSN)
	if err == nil {
		h.pgAdmin = cfg
		h.pgInfo, err = h.checkPostgres(ctx)
	}
	dsn := redactDSN(h.opts.postgresDSN)
	if err != nil {
		// pgx's error names every address tried, one a line.
		msg := fmt.Sprintf("PostgreSQL is unreachable at %s (%s)", dsn, strings.Join(strings.Fields(err.Error()), " "))
		bar := strings.Repeat("!", 78)
		h.printf("%s", bar)
		h.printf("!! %s", msg)
		h.printf("!! POSTGRESQL IS NOT MEASURED IN THIS RUN: set --postgres-dsn or $%s", postgresDSNEnv)
		h.printf("%s", bar)
		h.res.Notes = append(h.res.Notes, "POSTGRESQL NOT MEASURED: "+msg)
		return errors.New(msg)
	}
	p := h.pgInfo
	h.printf("PostgreSQL at %s: %s, %s", dsn, p.ServerVersion, p.settingsLine())
	if !p.Durable {
		h.printf("PostgreSQL at %s DOES NOT COMMIT DURABLY (fsync or synchronous_commit is off): its numbers are not durable commits", dsn)
		h.res.Notes = append(h.res.Notes, "PostgreSQL does not commit durably here (fsync or synchronous_commit off): its numbers are not comparable with SQLite's")
	}
	if p.Settings["autovacuum"] == "off" {
		// Seen on the development server: the run's tables are then never
		// analyzed, and plans made on the empty tables stay.
		h.printf("PostgreSQL at %s runs with autovacuum=off: the run's tables are never vacuumed or analyzed", dsn)
		h.res.Notes = append(h.res.Notes, "PostgreSQL runs with autovacuum=off: the run's tables are never vacuumed or analyzed (statement plans made while they were empty stay)")
	}
	if p.PostmasterPID == 0 {
		h.printf("PostgreSQL's server is not on this machine (or not visible in /proc): its CPU and the fsync rate of its disk are not measured")
	}
	return nil
}

// runStore measures one store: a fresh directory, fsync probe, sandbox,
// gateway and payment pool, then the scenarios and the soak.
func (h *harness) runStore(ctx context.Context, store string) error {
	h.store, h.seq, h.pool, h.settle = store, 0, nil, nil
	h.cur = &StoreRun{Store: store, Searches: map[string]*Search{}}
	h.res.Stores = append(h.res.Stores, h.cur)
	h.storeDir = filepath.Join(h.runDir, store)
	if err := os.MkdirAll(h.storeDir, 0o755); err != nil {
		return err
	}
	var dsn string
	fsyncDir := ""
	switch store {
	case "sqlite":
		h.dataDir = filepath.Join(h.storeDir, "data")
		if err := os.MkdirAll(h.dataDir, 0o755); err != nil {
			return err
		}
		dsn = filepath.Join(h.dataDir, "refundgate.db")
		h.cur.DSN = dsn
		fsyncDir = h.dataDir
	case "postgres":
		db := benchDatabase(h.runID)
		var err error
		if dsn, err = withDatabase(h.opts.postgresDSN, db); err != nil {
			return err
		}
		info := *h.pgInfo
		info.Database, info.Kept, info.GatewayPool = db, h.opts.keep, gatewayPool(dsn)
		h.cur.Postgres, h.cur.DSN = &info, redactDSN(dsn)
		h.pgServerPID = info.PostmasterPID
		fsyncDir, h.cur.FsyncNote = pgFsyncDir(&info, h.storeDir)
		if err := h.createDatabase(ctx, db); err != nil {
			return fmt.Errorf("CREATE DATABASE %s through %s: %w", db, redactDSN(h.opts.postgresDSN), err)
		}
		h.pgDB = db
		h.printf("created database %s (%s at the end)", db, map[bool]string{true: "kept with --keep", false: "dropped"}[h.opts.keep])
		if h.pgStats, err = h.pgConnect(ctx); err != nil {
			return fmt.Errorf("postgres stats connection: %w", err)
		}
	}
	if fsyncDir != "" {
		h.printf("fsync probe: 4 KiB append + fsync for %s in %s", h.opts.fsyncFor, fsyncDir)
		p, err := fsyncProbe(fsyncDir, h.opts.fsyncFor)
		if err != nil {
			return fmt.Errorf("fsync probe: %w", err)
		}
		h.cur.FsyncPerSec, h.cur.Fsync, h.cur.FsyncDir = p.PerSec, p, fsyncDir
		h.printf("fsync: %s", p)
	} else {
		h.printf("fsync probe: %s", h.cur.FsyncNote)
	}
	if h.opts.wakeFor > 0 {
		h.cur.Wake = wakeProbe(h.opts.wakeFor)
		h.printf("wake-up probe: %s", h.cur.Wake)
	}

	if err := h.startAll(ctx, store, dsn); err != nil {
		return err
	}
	if err := h.prepare(ctx); err != nil {
		return err
	}
	var err error
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
	if h.settle != nil {
		h.rest(ctx) // the last run's store fsyncs, read once idle
	}
	if h.opts.webhooks {
		h.cur.Webhooks = h.webhookStats(ctx)
	}
	h.endStore()
	return nil
}

// endStore completes the current store: its last figures, its RSS and log
// lines, then stops its gateway and sandbox and removes its data (the
// SQLite directory, the PostgreSQL database) unless --keep. It is safe to
// call again.
func (h *harness) endStore() {
	if h.cur == nil {
		return
	}
	sr := h.cur
	h.cur = nil
	if h.settle != nil && h.gateway != nil && !h.gateway.exited() {
		h.settle()
	}
	h.settle = nil
	if h.gwLog != nil {
		h.collectLog()
		sr.GatewayLog = h.gwLog.lines()
	}
	h.rss.stop()
	sr.RSS = h.rss.report()
	h.rss, h.gwLog = nil, nil
	h.gateway.stop()
	h.sandbox.stop()
	h.gateway, h.sandbox = nil, nil
	sr.derive()
	if h.pgStats != nil {
		h.pgStats.Close(context.Background())
		h.pgStats = nil
	}
	if h.dataDir != "" && !h.opts.keep {
		os.RemoveAll(h.dataDir)
	}
	h.dataDir = ""
	if h.pgDB != "" {
		if h.opts.keep {
			h.printf("kept database %s (--keep): psql '%s'", h.pgDB, sr.DSN)
		} else if err := h.dropDatabase(h.pgDB); err != nil {
			h.printf("DROP DATABASE %s failed (%v): drop it by hand", h.pgDB, err)
			sr.Notes = append(sr.Notes, fmt.Sprintf("DROP DATABASE %s failed: %v", h.pgDB, err))
		} else {
			h.printf("dropped database %s", h.pgDB)
		}
		h.pgDB = ""
	}
	h.pgServerPID = 0
	h.store = ""
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
	if h.opts.provider.Name != "checkoutcom" {
		return fmt.Errorf("--provider %s needs vegeta; the wrk fallback's script drives Checkout.com charges only", h.opts.provider.Name)
	}
	if h.wrk, err = findWrk(ctx, h.log); err != nil {
		return err
	}
	h.res.Tool = "wrk (" + h.wrk + ", closed loop, fallback)"
	h.printf("load generator: %s", h.res.Tool)
	return nil
}

// finish judges the budget, prints and writes the results.
func (h *harness) finish() {
	r := h.res
	r.Budget = r.budget()
	r.print(h.log)
	name, err := r.write(h.outDir)
	if err != nil {
		h.printf("writing results: %v", err)
		return
	}
	h.printf("results: %s and %s", name, filepath.Join(h.outDir, "latest.json"))
}
