package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the harness started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// start runs bin with args, its output going to logPath.
func start(name, bin string, args []string, env []string, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: f, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to 10 s, then SIGKILL.
func (p *proc) stop() {
	if p == nil {
		return
	}
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.log.Close()
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, the process exits or the
// timeout passes.
func waitHTTP(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	var last string
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before %s answered; see %s", p.name, p.err, url, p.log.Name())
		}
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s not ready after %s (last: %s); see %s", p.name, url, timeout, last, p.log.Name())
}

// buildGateway builds ./cmd/refundgate into dir.
func buildGateway(ctx context.Context, root, dir string, log io.Writer) (string, error) {
	bin := filepath.Join(dir, "refundgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/refundgate")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	fmt.Fprintf(log, "building: go build -o %s ./cmd/refundgate\n", bin)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/refundgate: %w\n%s", err, out.String())
	}
	return bin, nil
}

// rssSampler reads the gateway's memory every second: VmRSS and its parts
// from /proc, its open file descriptors (listening socket, connections,
// the database files), and, from its /metrics, the Go heap in use and the
// goroutines. RSS alone cannot tell a leak from memory kept after a burst;
// the heap, the goroutines and the descriptors beside it can.
type rssSampler struct {
	mu      sync.Mutex
	samples []rssSample
	stopped chan struct{}
	cancel  context.CancelFunc
}

type rssSample struct {
	At    time.Time
	KB    int64
	Phase string
	// AnonKB and FileKB are RssAnon and RssFile+RssShmem (the mapped
	// files: the binary, SQLite's wal-index).
	AnonKB, FileKB int64
	FDs            int
	// HeapKB is go_memstats_heap_inuse_bytes, GoKB what the Go runtime holds
	// from the OS (go_memstats_sys_bytes less heap_released_bytes: heap,
	// stacks, runtime metadata), Goroutines go_goroutines; -1 when /metrics
	// did not answer. AnonKB − GoKB is then memory outside the Go runtime
	// (SQLite's page caches and allocations, through modernc's libc).
	HeapKB, GoKB, Goroutines int64
}

// parseStatus reads VmRSS and its parts from /proc/<pid>/status.
func parseStatus(status []byte) (rssSample, error) {
	f := statusFields(status)
	kb, ok := f["VmRSS"]
	if !ok {
		return rssSample{}, errors.New("no VmRSS line")
	}
	return rssSample{KB: kb, AnonKB: f["RssAnon"], FileKB: f["RssFile"] + f["RssShmem"]}, nil
}

// statusFields reads the "Name: N kB" lines of /proc/<pid>/status.
func statusFields(status []byte) map[string]int64 {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// sampleMemory reads one sample of pid; metricsURL may be empty.
func sampleMemory(pid int, metricsURL string) (rssSample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rssSample{}, err
	}
	x, err := parseStatus(b)
	if err != nil {
		return rssSample{}, err
	}
	x.At, x.HeapKB, x.GoKB, x.Goroutines = time.Now(), -1, -1, -1
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		x.FDs = len(fds)
	}
	if metricsURL != "" {
		m := parseMetrics(metricsText(metricsURL))
		if v, ok := m.value("go_memstats_heap_inuse_bytes"); ok {
			x.HeapKB = v / 1024
		}
		sys, ok1 := m.value("go_memstats_sys_bytes")
		released, ok2 := m.value("go_memstats_heap_released_bytes")
		if ok1 && ok2 {
			x.GoKB = (sys - released) / 1024
		}
		if v, ok := m.value("go_goroutines"); ok {
			x.Goroutines = v
		}
	}
	return x, nil
}

func newRSSSampler(pid int, metricsURL string, phase func() string) *rssSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &rssSampler{stopped: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if x, err := sampleMemory(pid, metricsURL); err == nil {
				x.Phase = phase()
				s.mu.Lock()
				s.samples = append(s.samples, x)
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() {
	if s == nil {
		return
	}
	s.cancel()
	<-s.stopped
}

func (s *rssSampler) snapshot() []rssSample {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rssSample(nil), s.samples...)
}

func (s *rssSampler) peakSince(t time.Time) int64 {
	var peak int64
	for _, x := range s.snapshot() {
		if !x.At.Before(t) && x.KB > peak {
			peak = x.KB
		}
	}
	return peak
}

// last returns the newest sample's KB.
func (s *rssSampler) last() int64 {
	ss := s.snapshot()
	if len(ss) == 0 {
		return 0
	}
	return ss[len(ss)-1].KB
}

func (s *rssSampler) report() RSSReport {
	ss := s.snapshot()
	if len(ss) == 0 {
		return RSSReport{}
	}
	r := RSSReport{StartKB: ss[0].KB, EndKB: ss[len(ss)-1].KB, Samples: len(ss)}
	for _, x := range ss {
		if x.KB > r.PeakKB {
			r.PeakKB = x.KB
		}
	}
	return r
}

// soakReport judges memory over a soak window: flat when the end RSS is
// within 20% of the RSS right after the warm-up. Curve has one sample a
// minute.
func soakReport(ss []rssSample, from time.Time, warmup time.Duration) (warm, end, peak int64, curve []rssSample) {
	var next time.Time
	for _, x := range ss {
		if x.At.Before(from) {
			continue
		}
		if warm == 0 && !x.At.Before(from.Add(warmup)) {
			warm = x.KB
		}
		if x.KB > peak {
			peak = x.KB
		}
		end = x.KB
		if next.IsZero() || !x.At.Before(next) {
			curve = append(curve, x)
			next = x.At.Add(time.Minute)
		}
	}
	if warm == 0 {
		warm = end
	}
	return warm, end, peak, curve
}

// logTail remembers how far the gateway log was read, to attribute new
// warn/error lines to the scenario that caused them.
type logTail struct {
	path   string
	offset int64
	counts map[string]*LogLine
}

// read collects warn and error lines written since the last call.
func (t *logTail) read() {
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			t.offset += int64(len(line))
			t.add(bytes.TrimSpace(line))
		}
		if err != nil {
			return
		}
	}
}

func (t *logTail) add(line []byte) {
	if len(line) == 0 {
		return
	}
	var m struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
	}
	if json.Unmarshal(line, &m) != nil {
		m.Level, m.Msg = "?", truncate(string(line), 120)
	}
	if m.Level == "debug" || m.Level == "info" {
		return
	}
	k := m.Level + "\x00" + m.Msg
	if t.counts == nil {
		t.counts = map[string]*LogLine{}
	}
	if l := t.counts[k]; l != nil {
		l.Count++
		return
	}
	t.counts[k] = &LogLine{Level: m.Level, Msg: m.Msg, Count: 1, First: string(line)}
}

func (t *logTail) lines() []LogLine {
	var out []LogLine
	for _, l := range t.counts {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return out
}

// cpuTimes returns the CPU seconds used so far by the gateway, the
// sandbox, the PostgreSQL server (its whole process tree, for the
// PostgreSQL store), the harness and the whole machine (all processes, from
// /proc/stat).
func (h *harness) cpuTimes() map[string]float64 {
	out := map[string]float64{}
	for name, p := range map[string]*proc{"gateway": h.gateway, "sandbox": h.sandbox} {
		if p == nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid())); err == nil {
			out[name] = procCPU(b)
		}
		if w, ok := runqWait(p.pid()); ok {
			out[name+"_runq"] = w
		}
	}
	// The PostgreSQL server's processes, when the store is PostgreSQL on
	// this machine.
	if h.store == "postgres" && h.pgServerPID > 0 {
		if v, ok := serverCPU(h.pgServerPID); ok {
			out["postgres"] = v
		}
	}
	// The harness itself: it streams the load tool's targets.
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		out["harness"] = procCPU(b)
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		out["machine"] = machineBusy(b)
	}
	return out
}

// runqWait returns the seconds pid's threads have spent runnable but
// waiting for a CPU (the second field of /proc/<pid>/task/<tid>/schedstat,
// summed over its live threads). Between two readings, divided by the
// time, it is how many threads were waiting on average: with the machine's
// two cores shared by the gateway, the sandbox and the load tool, this is
// where a request's time goes that no stage of the gateway accounts for.
// A thread that exits takes its count with it; the Go runtime keeps its
// threads.
func runqWait(pid int) (float64, bool) {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum float64
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if w, ok := schedstatWait(b); ok {
			sum += w
			n++
		}
	}
	return sum, n > 0
}

// schedstatWait reads the run-queue wait, in seconds, from a schedstat
// line: "<ns on CPU> <ns waiting> <timeslices>".
func schedstatWait(b []byte) (float64, bool) {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, false
	}
	ns, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return float64(ns) / 1e9, true
}

// clockTick is USER_HZ, 100 on every Linux that matters.
const clockTick = 100

// procCPU reads utime+stime (fields 14 and 15) of /proc/<pid>/stat, in
// seconds.
func procCPU(stat []byte) float64 {
	st, _ := parseStat(stat)
	return st.self
}

// procStat is what the harness reads from /proc/<pid>/stat.
type procStat struct {
	ppid int
	// self is utime+stime, children cutime+cstime (the children it has
	// waited for), in seconds.
	self, children float64
}

// parseStat reads /proc/<pid>/stat. The command name may hold spaces, so
// fields count from the ')'.
func parseStat(stat []byte) (procStat, bool) {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return procStat{}, false
	}
	num := func(i int) float64 {
		v, _ := strconv.ParseFloat(f[i], 64)
		return v
	}
	ppid, _ := strconv.Atoi(f[1])
	return procStat{ppid: ppid, self: (num(11) + num(12)) / clockTick, children: (num(13) + num(14)) / clockTick}, true
}

// machineBusy reads the non-idle CPU seconds of the "cpu" line of
// /proc/stat.
func machineBusy(stat []byte) float64 {
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += x
	}
	return busy / clockTick
}

// cpuShare turns two cpuTimes readings into cores used over d.
func cpuShare(a, b map[string]float64, d time.Duration) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		if d > 0 {
			out[k] = math.Round(100*(v-a[k])/d.Seconds()) / 100
		}
	}
	return out
}
