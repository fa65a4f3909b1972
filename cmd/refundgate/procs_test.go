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
// chose, unless GOMAXPROCS is set, and says so in its start line.
func TestServeProcs(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set for the tests; this test needs Go's own choice to compare with")
	}
	bin := buildRefundgate(t)
	for _, c := range []struct {
		env  string
		want int
	}{
		{"", 2 * runtime.GOMAXPROCS(0)},
		{"GOMAXPROCS=3", 3},
	} {
		t.Run(fmt.Sprintf("%q", c.env), func(t *testing.T) {
			if got := startProcs(t, bin, c.env); got != c.want {
				t.Errorf("serve ran with %d Ps, want %d", got, c.want)
			}
		})
	}
}

var procsField = regexp.MustCompile(`"procs":\s*(\d+)`)

// startProcs starts `serve --sandbox` with env added and returns the procs
// of its start line.
func startProcs(t *testing.T, bin, env string) int {
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
			m := procsField.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("the start line has no procs: %s", line)
			}
			n, _ := strconv.Atoi(m[1])
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no start line within 20 s:\n%s", logs.String())
	return 0
}
