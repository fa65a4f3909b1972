package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // served only when REFUNDGATE_PPROF_ADDR is set
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/refundgate/refundgate/api"
	"github.com/refundgate/refundgate/config"
	"github.com/refundgate/refundgate/gateway"
	"github.com/refundgate/refundgate/gateway/httpapi"
	"github.com/refundgate/refundgate/store"
	"github.com/refundgate/refundgate/store/postgres"
	"github.com/refundgate/refundgate/store/sqlite"

	_ "github.com/refundgate/refundgate/providers/checkoutcom"
	_ "github.com/refundgate/refundgate/providers/reference"
	_ "github.com/refundgate/refundgate/providers/smartpay"
	_ "github.com/refundgate/refundgate/providers/yoco"
)

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "refundgate.yaml", "configuration file")
	addr := fs.String("addr", "", "listen address (overrides server.addr)")
	sandboxMode := fs.Bool("sandbox", false, "run on an embedded SQLite file with the in-process sandbox providers")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP is caught for the whole life of serve, shutdown included: its
	// default action would end the process with requests in flight.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var sb *sandboxRun
	var cfg *config.Config
	var err error
	if *sandboxMode {
		sb, err = startSandbox(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "refundgate: sandbox: %v\n", err)
			return 1
		}
		defer sb.close()
		cfg = sb.cfg
	} else {
		cfg, err = config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "refundgate: %v\n", err)
			return 2
		}
	}
	if *addr != "" {
		cfg.Server.Addr = *addr
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "refundgate: %v\n", err)
		return 2
	}
	defer log.Sync()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := gateway.NewMetrics(reg)
	breakers := gateway.NewBreakers(gateway.LogStateChanges(log, metrics))
	snap, err := gateway.NewSnapshot(cfg, gateway.BuildOptions{Breakers: breakers})
	if err != nil {
		fmt.Fprintf(stderr, "refundgate: %v\n", err)
		return 2
	}
	writeWait, walSync := sqliteLatency()
	st, err := openStore(ctx, cfg.Store, sqlite.Options{WriteWait: writeWait, WALSync: walSync})
	if err != nil {
		log.Error("open store", zap.String("driver", cfg.Store.Driver), zap.Error(err))
		return 1
	}
	defer st.Close()
	if sq, ok := st.(*sqlite.Store); ok {
		registerSQLiteMetrics(reg, sq)
		reg.MustRegister(writeWait, walSync)
	}

	svc := gateway.New(snap, gateway.Options{Store: st, Logger: log, Metrics: metrics, RequestBudget: cfg.Server.RequestTimeout.D()})
	opts := httpapi.Options{Logger: log, BodyLimit: cfg.Server.BodyLimitBytes, Registry: reg, OpenAPI: api.OpenAPI,
		Ready: func(ctx context.Context) error { return st.Ping(ctx) }}
	if sb != nil {
		opts.SandboxPayment = sb.createPayment
	}
	app := httpapi.New(svc, opts)

	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		log.Error("listen", zap.String("addr", cfg.Server.Addr), zap.Error(err))
		return 1
	}
	if sb != nil {
		if err := sb.ready(ln.Addr().String(), stdout); err != nil {
			log.Error("sandbox", zap.Error(err))
			return 1
		}
	}
	log.Info("refundgate listening", zap.String("addr", ln.Addr().String()), zap.String("store", cfg.Store.Driver),
		zap.Int("merchants", len(cfg.Merchants)), zap.Int("providers", len(cfg.Providers)),
		zap.Int("procs", runtime.GOMAXPROCS(0)), zap.Int("gogc", gcPercent()))

	if pa := os.Getenv("REFUNDGATE_PPROF_ADDR"); pa != "" {
		// Profiling for the benchmark harness, on its own loopback address.
		go func() {
			log.Info("pprof listening", zap.String("addr", pa))
			srv := &http.Server{Addr: pa, ReadHeaderTimeout: 10 * time.Second}
			if err := srv.ListenAndServe(); err != nil {
				log.Warn("pprof", zap.Error(err))
			}
		}()
	}
	workers, stopWorkers := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RunReconciler(workers, time.Second)
	}()
	go reloadOnHUP(ctx, hup, *cfgPath, sb != nil, svc, breakers, log)

	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	select {
	case err := <-served:
		stopWorkers()
		<-done
		if err != nil {
			log.Error("serve", zap.Error(err))
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections; finishing requests in flight")
	if err := app.ShutdownWithTimeout(cfg.Server.ShutdownTimeout.D()); err != nil {
		log.Warn("shutdown", zap.Error(err))
	}
	stopWorkers()
	<-done
	log.Info("stopped")
	return 0
}

// reloadOnHUP swaps in a new snapshot on SIGHUP; a bad file is refused and
// the old one stays.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, path string, sandbox bool, svc *gateway.Service, breakers *gateway.Breakers, log *zap.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if sandbox {
			log.Warn("SIGHUP ignored: the sandbox configuration is built in")
			continue
		}
		cfg, err := config.Load(path)
		if err == nil {
			var snap *gateway.Snapshot
			if snap, err = gateway.NewSnapshot(cfg, gateway.BuildOptions{Breakers: breakers}); err == nil {
				svc.Swap(snap)
				log.Info("configuration reloaded", zap.String("file", path))
				continue
			}
		}
		log.Error("configuration reload refused; the previous one stays", zap.Error(err))
	}
}

// registerSQLiteMetrics exports the SQLite store's write path: how many
// ops share a commit and an fsync, checkpoints, and the WAL's size.
func registerSQLiteMetrics(reg prometheus.Registerer, s *sqlite.Store) {
	counter := func(name, help string, v func(sqlite.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(s.Stats())) })
	}
	reg.MustRegister(
		counter("refundgate_store_write_ops_total", "Write operations run by the SQLite writer.", func(st sqlite.Stats) int64 { return st.Ops }),
		counter("refundgate_store_inline_writes_total", "Write operations that found the SQLite write path idle and ran, committed and synced on their caller's goroutine.", func(st sqlite.Stats) int64 { return st.Inline }),
		counter("refundgate_store_commits_total", "Transactions the SQLite writer committed (ops per commit: the group-commit batch).", func(st sqlite.Stats) int64 { return st.Commits }),
		counter("refundgate_store_wal_syncs_total", "fdatasyncs of the SQLite WAL; each covers every commit before it.", func(st sqlite.Stats) int64 { return st.Syncs }),
		counter("refundgate_store_checkpoints_total", "Background checkpoints of the SQLite WAL.", func(st sqlite.Stats) int64 { return st.Checkpoints }),
		counter("refundgate_store_wal_restarts_total", "Times the SQLite writer started the WAL over from its beginning.", func(st sqlite.Stats) int64 { return st.Restarts }),
		counter("refundgate_store_checkpoint_failures_total", "SQLite checkpoints and WAL restarts that failed; the WAL grows until one succeeds.", func(st sqlite.Stats) int64 { return st.CheckpointFailures }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "refundgate_store_wal_restart_seconds_total",
			Help: "Time the SQLite writer spent restarting the WAL, during which no write could run."},
			func() float64 { return s.Stats().RestartTime.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "refundgate_store_wal_bytes", Help: "Size of the SQLite WAL file."},
			func() float64 { return float64(s.Stats().WALBytes) }),
	)
}

// sqliteLatency returns the SQLite store's latency histograms: each write
// from the call until it is on disk, and each fdatasync of the WAL.
func sqliteLatency() (writeWait, walSync prometheus.Histogram) {
	buckets := prometheus.ExponentialBuckets(0.0001, 2, 16) // 0.1 ms to 3.3 s
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "refundgate_store_write_wait_seconds", Buckets: buckets,
			Help: "SQLite store writes, from the call until the commit holding them is on disk (queue, commit, fdatasync)."}),
		prometheus.NewHistogram(prometheus.HistogramOpts{Name: "refundgate_store_wal_sync_seconds", Buckets: buckets,
			Help: "fdatasyncs of the SQLite WAL."})
}

func openStore(ctx context.Context, c config.Store, so sqlite.Options) (store.Store, error) {
	switch c.Driver {
	case "sqlite":
		return sqlite.OpenOptions(ctx, c.DSN, so)
	case "postgres":
		return postgres.Open(ctx, c.DSN)
	}
	return nil, errors.New("unknown store driver " + c.Driver)
}

func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(ec)
	if c.Format == "console" {
		enc = zapcore.NewConsoleEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}

func configCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "refundgate.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err == nil {
		_, err = gateway.NewSnapshot(cfg, gateway.BuildOptions{})
	}
	if err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d merchants, %d providers, %d routes)\n", *cfgPath, len(cfg.Merchants), len(cfg.Providers), len(cfg.Routes))
	return 0
}
