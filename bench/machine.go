package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// FsyncProbe is what the disk did under the simplest durable workload: 4
// KiB appended and fsynced, one after another. PerSec is the ceiling of a
// store that commits with one fsync per transaction; the latencies (ms)
// show the disk's own tail, which no store on it can beat: a durable
// commit waits for the fsync it is in, and while one fsync stalls, every
// commit behind it waits too.
type FsyncProbe struct {
	PerSec float64 `json:"per_sec"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	Max    float64 `json:"max_ms"`
	// Stalls counts the fsyncs that took longer than stallAfter, StallMS
	// their total time.
	Stalls  int     `json:"stalls"`
	StallMS float64 `json:"stall_ms"`
}

// stallAfter is how long an fsync takes for the probe to call it a stall:
// ten times the p99 the budget allows a whole refund.
const stallAfter = 50 * time.Millisecond

// fsyncProbe appends 4 KiB and fsyncs it in a loop in dir for d, at least
// once.
func fsyncProbe(dir string, d time.Duration) (*FsyncProbe, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-*")
	if err != nil {
		return nil, err
	}
	name := f.Name()
	defer os.Remove(name)
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, 4096)
	var took []time.Duration
	p := &FsyncProbe{}
	start := time.Now()
	for len(took) == 0 || time.Since(start) < d {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		dt := time.Since(t)
		took = append(took, dt)
		if dt > stallAfter {
			p.Stalls++
			p.StallMS += ms(int64(dt))
		}
	}
	p.PerSec = float64(len(took)) / time.Since(start).Seconds()
	slices.Sort(took)
	p.P50, p.P99, p.P999, p.Max = probeQuantiles(took)
	return p, nil
}

// probeQuantiles is the p50, p99, p99.9 and max (ms) of a probe's sorted,
// non-empty timings.
func probeQuantiles(sorted []time.Duration) (p50, p99, p999, max float64) {
	at := func(q float64) float64 { return ms(int64(sorted[min(len(sorted)-1, int(q*float64(len(sorted))))])) }
	return at(0.5), at(0.99), at(0.999), ms(int64(sorted[len(sorted)-1]))
}

// WakeProbe is how late the machine wakes a sleeping thread: a 1 ms sleep,
// again and again, with nothing else of the run going on. A refund is
// handed between goroutines and threads about ten times on its way through
// the gateway, and each hand-off to a thread that sleeps waits like this
// at least; a machine whose idle wake-ups are late by milliseconds at the
// p99 puts that floor under every p99 measured on it (a VM's vCPU that
// its host has descheduled, for one).
type WakeProbe struct {
	Sleeps int     `json:"sleeps"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	Max    float64 `json:"max_ms"`
	// Over5ms counts the wake-ups later than 5 ms, the p99 the budget
	// allows a whole refund.
	Over5ms int `json:"over_5ms"`
}

// wakeProbe sleeps 1 ms in a loop for d, at least once, and measures each
// overshoot.
func wakeProbe(d time.Duration) *WakeProbe {
	var late []time.Duration
	for start := time.Now(); len(late) == 0 || time.Since(start) < d; {
		t := time.Now()
		time.Sleep(time.Millisecond)
		late = append(late, time.Since(t)-time.Millisecond)
	}
	slices.Sort(late)
	p := &WakeProbe{Sleeps: len(late)}
	p.P50, p.P99, p.P999, p.Max = probeQuantiles(late)
	p.Over5ms = len(late) - sort.Search(len(late), func(i int) bool { return late[i] > 5*time.Millisecond })
	return p
}

func (p *WakeProbe) String() string {
	return fmt.Sprintf("%d sleeps of 1 ms woke late by p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.1f ms; %d over 5 ms",
		p.Sleeps, p.P50, p.P99, p.P999, p.Max, p.Over5ms)
}

func machine(dataDir string) Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), DataDir: dataDir}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(b, "model name")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotal = procField(b, "MemTotal")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("df", "-hT", dataDir).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) >= 2 {
			m.DataDir += " (" + f[0] + ", " + f[1] + ")"
		}
	}
	return m
}

// procField returns the value of the first "key: value" line.
func procField(b []byte, key string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// findRoot walks up from the working directory to the refundgate module.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/refundgate/refundgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "+dirty"
	}
	return c
}

func (p *FsyncProbe) String() string {
	return fmt.Sprintf("%.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.1f ms; %d stalls over %s (%.0f ms in all)",
		p.PerSec, p.P50, p.P99, p.P999, p.Max, p.Stalls, stallAfter, p.StallMS)
}
