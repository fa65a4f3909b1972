package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/refundgate/refundgate/store/postgres"
)

// The PostgreSQL store's part of a run: the admin connection, the run's own
// database (created for the run, dropped at the end unless --keep), the
// server's settings, and the server's CPU and WAL fsyncs.

const (
	// postgresDSNEnv overrides defaultPostgresDSN as --postgres-dsn's
	// default.
	postgresDSNEnv     = "REFUNDGATE_BENCH_POSTGRES_DSN"
	defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

// postgresDSNDefault is --postgres-dsn's default: $REFUNDGATE_BENCH_POSTGRES_DSN,
// else the local development server.
func postgresDSNDefault() string {
	if v := os.Getenv(postgresDSNEnv); v != "" {
		return v
	}
	return defaultPostgresDSN
}

// PostgresInfo describes the server and database a PostgreSQL run used.
type PostgresInfo struct {
	// Database is the run's own database, created through the admin DSN.
	Database      string `json:"database"`
	Kept          bool   `json:"kept"`
	ServerVersion string `json:"server_version"`
	// Settings are the server's durability-relevant settings (those the
	// admin role may read).
	Settings map[string]string `json:"settings"`
	// Durable is fsync=on and a synchronous_commit that waits for the
	// local WAL flush: an acknowledged commit is on disk.
	Durable bool `json:"durable"`
	// PostmasterPID is the server's process on this machine, whose process
	// tree's CPU is the "postgres" entry of each run's cpu_cores; 0 when
	// the server is not on this machine.
	PostmasterPID int `json:"postmaster_pid,omitempty"`
	// GatewayPool is the gateway's pgxpool size for this DSN.
	GatewayPool string `json:"gateway_pool"`
}

// pgSettings are the settings recorded for a PostgreSQL run.
var pgSettings = []string{"fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "commit_delay",
	"shared_buffers", "max_connections", "autovacuum", "data_directory"}

func (p *PostgresInfo) settingsLine() string {
	var parts []string
	for _, k := range pgSettings {
		if v, ok := p.Settings[k]; ok && k != "data_directory" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// durable says whether commits with these settings are on disk when
// acknowledged.
func durable(settings map[string]string) bool {
	switch settings["synchronous_commit"] {
	case "on", "local", "remote_write", "remote_apply":
	default:
		return false
	}
	return settings["fsync"] == "on"
}

// adminConfig parses the admin DSN for the harness's own connection:
// pgxpool's pool_* options, which a plain connection would send to the
// server as settings, are dropped.
func adminConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	for k := range cfg.RuntimeParams {
		if strings.HasPrefix(k, "pool_") {
			delete(cfg.RuntimeParams, k)
		}
	}
	return cfg, nil
}

// benchDatabase is the run's database name: refundgate_bench_<run id>,
// lower case, with anything but letters and digits as '_'.
func benchDatabase(runID string) string {
	var b strings.Builder
	b.WriteString("refundgate_bench_")
	for _, r := range strings.ToLower(runID) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 63 { // NAMEDATALEN - 1
		s = s[:63]
	}
	return s
}

// withDatabase is dsn with its database replaced by db, in either DSN
// form: a postgres:// URL or key=value words (where the last dbname wins).
// db must be a plain identifier (benchDatabase's).
func withDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("postgres DSN is not a valid URL")
		}
		u.Path, u.RawPath = "/"+db, ""
		return u.String(), nil
	}
	return strings.TrimSpace(dsn) + " dbname=" + db, nil
}

var kvPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN hides the password of a DSN for printing.
func redactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			if q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
			}
			return u.Redacted()
		}
		return "(unparsable postgres URL)"
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// gatewayPool says how many connections the gateway's pgxpool opens for
// dsn: its pool_max_conns, else the store's default.
func gatewayPool(dsn string) string {
	if cfg, err := pgx.ParseConfig(dsn); err == nil {
		if v, ok := cfg.RuntimeParams["pool_max_conns"]; ok {
			return v + " connections (pool_max_conns)"
		}
	}
	return fmt.Sprintf("%d connections (the store's default)", postgres.DefaultMaxConns)
}

// isLocalHost says whether a pgconn host is this machine: a Unix socket
// directory or a loopback address.
func isLocalHost(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pgConnect opens a connection with the admin DSN, waiting at most 5 s.
func (h *harness) pgConnect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, h.pgAdmin.Copy())
}

// checkPostgres connects with the admin DSN and reads the server's version
// and settings and, for a server on this machine, its postmaster.
func (h *harness) checkPostgres(ctx context.Context) (*PostgresInfo, error) {
	conn, err := h.pgConnect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	info := &PostgresInfo{Settings: map[string]string{}}
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&info.ServerVersion); err != nil {
		return nil, err
	}
	info.ServerVersion = "PostgreSQL " + info.ServerVersion
	for _, k := range pgSettings {
		var v string
		// Some need a superuser or pg_read_all_settings; those are left out.
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", k).Scan(&v); err == nil {
			info.Settings[k] = v
		}
	}
	info.Durable = durable(info.Settings)
	if isLocalHost(h.pgAdmin.Host) {
		var backend int
		if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err == nil {
			info.PostmasterPID = postmasterOf(backend)
		}
	}
	return info, nil
}

// postmasterOf is the parent of a backend process if it is a postgres
// process on this machine, else 0.
func postmasterOf(backend int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", backend))
	if err != nil {
		return 0
	}
	st, ok := parseStat(b)
	if !ok || st.ppid <= 1 {
		return 0
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", st.ppid))
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
		return 0
	}
	return st.ppid
}

// createDatabase creates the run's database.
func (h *harness) createDatabase(ctx context.Context, db string) error {
	conn, err := h.pgConnect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	return err
}

// dropDatabase drops the run's database, ending any session left in it.
func (h *harness) dropDatabase(db string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := h.pgConnect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	q := "DROP DATABASE IF EXISTS " + pgx.Identifier{db}.Sanitize()
	if _, err = conn.Exec(ctx, q+" WITH (FORCE)"); err != nil {
		_, err = conn.Exec(ctx, q) // before PostgreSQL 13
	}
	return err
}

// pgWALSyncs reads pg_stat_wal.wal_sync (PostgreSQL 14+): the server's WAL
// fsyncs, server-wide.
func (h *harness) pgWALSyncs() (int64, bool) {
	if h.pgStats == nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	if err := h.pgStats.QueryRow(ctx, "SELECT wal_sync FROM pg_stat_wal").Scan(&n); err != nil {
		return 0, false
	}
	return n, true
}

// pgFsyncDir picks where the fsync probe measures PostgreSQL's disk: the
// store's own directory when it is on the filesystem of the server's data
// directory (the probe never writes into the server's files). It returns
// "" and why when the probe cannot measure that disk.
func pgFsyncDir(info *PostgresInfo, ownDir string) (dir, note string) {
	dataDir := info.Settings["data_directory"]
	switch {
	case info.PostmasterPID == 0:
		return "", "not measured: the PostgreSQL server is not on this machine"
	case dataDir == "":
		return "", "not measured: the admin role may not read data_directory"
	}
	a, errA := os.Stat(dataDir)
	b, errB := os.Stat(ownDir)
	if errA != nil || errB != nil {
		return "", fmt.Sprintf("not measured: cannot stat %s", dataDir)
	}
	sa, okA := a.Sys().(*syscall.Stat_t)
	sb, okB := b.Sys().(*syscall.Stat_t)
	if !okA || !okB || sa.Dev != sb.Dev {
		return "", fmt.Sprintf("not measured: PostgreSQL's data directory %s is on another filesystem than %s, and the probe does not write into the server's directories", dataDir, ownDir)
	}
	return ownDir, fmt.Sprintf("the filesystem of PostgreSQL's data directory %s", dataDir)
}

// serverCPU is the CPU seconds of a postmaster's process tree: its own,
// its reaped children's (ended backends), and every live child's.
func serverCPU(postmaster int) (float64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", postmaster))
	if err != nil {
		return 0, false
	}
	pm, ok := parseStat(b)
	if !ok {
		return 0, false
	}
	total := pm.self + pm.children
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return total, true
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile: its CPU is in the postmaster's children now
		}
		if st, ok := parseStat(b); ok && st.ppid == postmaster {
			total += st.self
		}
	}
	return total, true
}
