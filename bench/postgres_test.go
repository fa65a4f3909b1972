package main

import (
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Tests of the PostgreSQL store's glue that need no server: the run's
// database name, the DSNs made from the admin DSN, redaction, the settings
// judged durable, and where the fsync probe measures.

func TestBenchDatabase(t *testing.T) {
	if got := benchDatabase("20261201T211914Z-6b6deb"); got != "refundgate_bench_20261201t211914z_6b6deb" {
		t.Errorf("benchDatabase = %q", got)
	}
	if got := benchDatabase(strings.Repeat("x", 80)); len(got) != 63 {
		t.Errorf("benchDatabase of a long id is %d bytes, want 63 (NAMEDATALEN - 1)", len(got))
	}
}

func TestWithDatabase(t *testing.T) {
	for _, c := range []struct{ admin, want string }{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/refundgate_bench_r1?sslmode=disable"},
		{"postgresql://u:p%40ss@db:6543?sslmode=require&pool_max_conns=16", "postgresql://u:p%40ss@db:6543/refundgate_bench_r1?sslmode=require&pool_max_conns=16"},
		{"host=/run/postgresql user=postgres dbname=test sslmode=disable", "host=/run/postgresql user=postgres dbname=test sslmode=disable dbname=refundgate_bench_r1"},
	} {
		got, err := withDatabase(c.admin, "refundgate_bench_r1")
		if err != nil || got != c.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", c.admin, got, err, c.want)
			continue
		}
		// pgx, which the gateway opens it with, reads the new database
		// and keeps everything else.
		cfg, err := pgx.ParseConfig(got)
		admin, _ := pgx.ParseConfig(c.admin)
		if err != nil || cfg.Database != "refundgate_bench_r1" || cfg.Host != admin.Host || cfg.User != admin.User || cfg.Password != admin.Password {
			t.Errorf("pgx reads %q as %+v, %v", got, cfg, err)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/test?sslmode=disable": "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		"postgres://rg:s3cret@db/rg":                              "postgres://rg:xxxxx@db/rg",
		"postgres://rg@db/rg?password=s3cret":                     "postgres://rg@db/rg?password=xxxxx",
		"host=db user=rg password='a b\\' c' dbname=rg":           "host=db user=rg password=xxxxx dbname=rg",
		"host=db password = s3cret dbname=rg":                     "host=db password = xxxxx dbname=rg",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAdminConfig(t *testing.T) {
	cfg, err := adminConfig("postgres://postgres@127.0.0.1:5432/test?sslmode=disable&pool_max_conns=16&application_name=bench")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.RuntimeParams["pool_max_conns"]; ok {
		t.Error("pool_max_conns would be sent to the server as a setting")
	}
	if cfg.RuntimeParams["application_name"] != "bench" || cfg.Database != "test" {
		t.Errorf("config %+v", cfg.RuntimeParams)
	}
	if got := gatewayPool("postgres://h/d?pool_max_conns=16"); got != "16 connections (pool_max_conns)" {
		t.Errorf("gatewayPool = %q", got)
	}
	if got := gatewayPool("postgres://h/d"); got != "32 connections (the store's default)" {
		t.Errorf("gatewayPool = %q", got)
	}
}

func TestDurable(t *testing.T) {
	for _, c := range []struct {
		fsync, sync string
		want        bool
	}{{"on", "on", true}, {"on", "local", true}, {"on", "remote_apply", true}, {"on", "off", false}, {"off", "on", false}, {"", "", false}} {
		if got := durable(map[string]string{"fsync": c.fsync, "synchronous_commit": c.sync}); got != c.want {
			t.Errorf("durable(fsync=%s synchronous_commit=%s) = %v", c.fsync, c.sync, got)
		}
	}
	p := &PostgresInfo{Settings: map[string]string{"fsync": "on", "synchronous_commit": "on", "data_directory": "/var/lib/pg"}}
	if got := p.settingsLine(); got != "fsync=on synchronous_commit=on" {
		t.Errorf("settingsLine = %q", got)
	}
}

func TestIsLocalHost(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "/run/postgresql": true, "db.internal": false, "10.0.0.5": false} {
		if got := isLocalHost(host); got != want {
			t.Errorf("isLocalHost(%q) = %v", host, got)
		}
	}
}

func TestPgFsyncDir(t *testing.T) {
	own, data := t.TempDir(), t.TempDir()
	local := &PostgresInfo{PostmasterPID: os.Getpid(), Settings: map[string]string{"data_directory": data}}
	if dir, note := pgFsyncDir(local, own); dir != own || !strings.Contains(note, data) {
		t.Errorf("same filesystem: %q, %q", dir, note)
	}
	for _, p := range []*PostgresInfo{
		{Settings: map[string]string{"data_directory": data}},       // remote server
		{PostmasterPID: os.Getpid(), Settings: map[string]string{}}, // data_directory not readable
		{PostmasterPID: os.Getpid(), Settings: map[string]string{"data_directory": "/nonexistent/pg"}},
	} {
		if dir, note := pgFsyncDir(p, own); dir != "" || !strings.HasPrefix(note, "not measured") {
			t.Errorf("pgFsyncDir(%+v) = %q, %q", p, dir, note)
		}
	}
}
