package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeProcs starts the real binary: serve runs with twice the Ps Go
// chose and a GC target of serveGOGC, unless GOMAXPROCS or GOGC is set,
// and says so in its start line.
func TestServeProcs(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" || os.Getenv("GOGC") != "" {
		t.Skip("GOMAXPROCS or GOGC is set for the tests; this test needs Go's own choice to compare with")
	}
	bin := buildRefundgate(t)
	for _, c := range []struct {
		env       string
		procs, gc int
	}{
		{"", 2 * runtime.GOMAXPROCS(0), serveGOGC},
		{"GOMAXPROCS=3", 3, serveGOGC},
		{"GOGC=150", 2 * runtime.GOMAXPROCS(0), 150},
	} {
		t.Run(fmt.Sprintf("%q", c.env), func(t *testing.T) {
			procs, gc := startProcs(t, bin, c.env)
			if procs != c.procs {
				t.Errorf("serve ran with %d Ps, want %d", procs, c.procs)
			}
			if gc != c.gc {
				t.Errorf("serve ran with GOGC %d, want %d", gc, c.gc)
			}
		})
	}
}

var (
	procsField = regexp.MustCompile(`"procs":\s*(\d+)`)
	gogcField  = regexp.MustCompile(`"gogc":\s*(\d+)`)
)

// startProcs starts `serve --sandbox` with env added and returns the procs
// and the gogc of its start line.
func startProcs(t *testing.T, bin, env string) (procs, gc int) {
	t.Helper()
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, "serve", "--sandbox", "--addr", freeAddr(t))
	cmd.Env = append(os.Environ(), "REFUNDGATE_SANDBOX_KEY=rk_test_procs")
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(logs.String(), "\n") {
			if !strings.Contains(line, "refundgate listening") {
				continue
			}
			m, g := procsField.FindStringSubmatch(line), gogcField.FindStringSubmatch(line)
			if m == nil || g == nil {
				t.Fatalf("the start line has no procs or gogc: %s", line)
			}
			procs, _ = strconv.Atoi(m[1])
			gc, _ = strconv.Atoi(g[1])
			return procs, gc
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no start line within 20 s:\n%s", logs.String())
	return 0, 0
}
