package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// vegeta (MIT) is the load tool: its attack command keeps a constant
// arrival rate (an open model: new requests arrive at the set rate whatever
// the answers). It is a separate binary, not a dependency of refundgate's
// module, so its CPU is measured apart from the gateway's.
const (
	vegetaModule  = "github.com/tsenart/vegeta/v12"
	vegetaVersion = "v12.13.0"
	// requestTimeout is each request's timeout; an unanswered request
	// counts as status 0.
	requestTimeout = 10 * time.Second
)

// findVegeta returns a vegeta binary: the one on PATH, the bench-local one
// in binDir if it is the pinned version, or one it installs there with go
// install, run from a temporary directory so that vegeta never enters
// refundgate's go.mod. It says which on log.
func findVegeta(ctx context.Context, binDir string, log io.Writer) (string, error) {
	if p, err := exec.LookPath("vegeta"); err == nil {
		return p, nil
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return "", err
	}
	local := filepath.Join(abs, "vegeta")
	if _, err := os.Stat(local); err == nil {
		if v := modVersion(local); v == vegetaVersion {
			fmt.Fprintf(log, "vegeta is not on PATH: using %s (%s), installed by an earlier run\n", local, v)
			return local, nil
		}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "bench-vegeta-install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(log, "vegeta is not on PATH: installing it with GOBIN=%s go install %s@%s (run from %s, outside refundgate's module)\n", abs, vegetaModule, vegetaVersion, tmp)
	cmd := exec.CommandContext(ctx, "go", "install", vegetaModule+"@"+vegetaVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+abs)
	cmd.Dir = tmp
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w", vegetaModule, vegetaVersion, err)
	}
	return local, nil
}

// modVersion reads the main module's version from a Go binary's build
// information (go version -m): go install stamps it, while vegeta's own
// -version is empty for such a build.
func modVersion(bin string) string {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	return parseModVersion(out)
}

func parseModVersion(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" {
			return f[2]
		}
	}
	return ""
}

// attackArgs is the vegeta attack command line of one operation's stream.
// -lazy reads the targets as the harness streams them on stdin; -max-body 0
// keeps no response body in the results (status, latency and headers are
// all the harness reads); -laddr is the stream's own source address (see
// localAddr). conns > 0 caps the stream's connections (-max-connections),
// as a client's connection pool does; 0 leaves them unbounded (vegeta's
// default), one per request in flight.
func attackArgs(op string, rate int, d time.Duration, initial, max, conns int, laddr, output string) []string {
	args := []string{"attack",
		"-rate", strconv.Itoa(rate) + "/1s",
		"-duration", d.String(),
		"-timeout", requestTimeout.String(),
		"-workers", strconv.Itoa(initial),
		"-max-workers", strconv.Itoa(max),
		"-lazy", "-format", "json",
		"-max-body", "0",
		"-laddr", laddr,
		"-name", op,
		"-output", output,
	}
	if conns > 0 {
		args = append(args, "-max-connections", strconv.Itoa(conns))
	}
	return args
}

// localAddr is the source address of the n-th attack: 127.0.0.2 to
// 127.0.0.251 in turn. Each attack that falls behind opens up to
// --max-workers connections, and every one of them is left in TIME_WAIT for
// 60 s when vegeta exits. From a single source address, a search's few
// overloaded steps fill the 28,000 ephemeral ports towards the gateway, and
// connect() then spends whole seconds of kernel time hunting for a free
// port: the next steps collapse (vegeta at 1.4 cores, the gateway idle) for
// a reason that has nothing to do with the gateway. Each attack has a
// fresh address, so its ports are all free.
func localAddr(n int) string {
	return "127.0.0." + strconv.Itoa(2+n%250)
}

// attackRun is one running vegeta attack.
type attackRun struct {
	op      string
	rate    int
	cmd     *exec.Cmd
	results string
	log     string
	// fed is done when the feed has stopped: on a write error, once
	// vegeta has exited and the pipe is closed, or when a stream that
	// takes each payment once has used them all.
	fed sync.WaitGroup
	// gen makes the targets; once fed is done, its unused payments can go
	// back to the fresh ones.
	gen *targetGen
}

// runLoad runs one scenario: a vegeta attack per operation, all at once,
// each fed its targets by the harness, then reads every request's result.
func (h *harness) runLoad(ctx context.Context, spec loadSpec) (*Scenario, error) {
	h.seq++
	tag := fmt.Sprintf("%02d-%s-%d", h.seq, spec.Name, int(spec.Rate))
	dir := filepath.Join(h.storeDir, "load")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t := loadTargets{Gateway: h.gatewayURL, Sandbox: h.sandboxURL, APIKey: h.apiKey, ProviderKey: h.providerKey, Provider: h.opts.provider, Pool: h.pool}
	h.setPhase(spec.Name)
	h.markLog()
	cpu0 := h.cpuTimes()
	start := time.Now()
	var runs []*attackRun
	stopAll := func() {
		for _, a := range runs {
			_ = a.cmd.Process.Signal(syscall.SIGINT)
			_ = a.cmd.Wait()
			a.fed.Wait()
		}
	}
	for i, or := range spec.opRates() {
		if h.opts.provider.OnePerPayment && takesPayments(or.Op) {
			n := streamPayments(or.Rate, spec.Duration)
			if n > len(h.fresh) {
				stopAll()
				return nil, fmt.Errorf("%s: %d fresh payments for %s, %d needed (freshPayments was not called)", tag, len(h.fresh), or.Op, n)
			}
			t.Fresh, h.fresh = h.fresh[:n:n], h.fresh[n:]
		}
		gen, err := newTargetGen(or.Op, t, uint64(h.seq)<<8|uint64(i), h.runID+"-"+tag,
			fmt.Sprintf("bk%s%02d%c-", h.runID[len(h.runID)-6:], h.seq%100, 'a'+rune(i)))
		if err != nil {
			stopAll()
			return nil, err
		}
		a, err := startAttack(ctx, h.vegeta, dir, tag, or, spec.Duration, h.maxWorkers, h.opts.maxConns, localAddr(h.attacks), gen)
		h.attacks++
		if err != nil {
			stopAll()
			return nil, err
		}
		runs = append(runs, a)
	}
	var failed []string
	var vegetaCPU float64
	for _, a := range runs {
		err := a.cmd.Wait()
		a.fed.Wait()
		h.fresh = append(h.fresh, a.gen.unused()...)
		if ps := a.cmd.ProcessState; ps != nil {
			vegetaCPU += (ps.UserTime() + ps.SystemTime()).Seconds()
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("vegeta attack %s: %v (see %s)", a.op, err, a.log))
		}
	}
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if len(failed) > 0 {
		return nil, errors.New(strings.Join(failed, "; "))
	}
	for _, p := range []*proc{h.gateway, h.sandbox} {
		if p.exited() {
			why := fmt.Sprint(p.err)
			if p.err == nil {
				why = "exit status 0: another process sent it SIGTERM or SIGINT"
			}
			return nil, fmt.Errorf("the %s exited during %s (%s); see %s", p.name, tag, why, p.log.Name())
		}
	}
	cpu := cpuShare(cpu0, h.cpuTimes(), elapsed)
	cpu["vegeta"] = round2(vegetaCPU / elapsed.Seconds())
	cpu["loadgen"] = round2(cpu["vegeta"] + cpu["harness"])
	rssPeak := h.rss.peakSince(start)
	h.collectLog()

	var ops []*opRun
	var files []string
	for _, a := range runs {
		o := newOpRun(a.op, a.rate, spec.Duration)
		if err := readResults(ctx, h.vegeta, a.results, o); err != nil {
			return nil, fmt.Errorf("%s %s: %w", tag, a.op, err)
		}
		ops = append(ops, o)
		if h.opts.keep {
			files = append(files, a.results)
		} else {
			_ = os.Remove(a.results)
		}
	}
	s := scenarioOf(ops, spec.Duration)
	s.Name, s.Store, s.Rate, s.Target, s.ResultFiles = spec.Name, h.store, spec.Rate, spec.Target, files
	s.Elapsed = round2(elapsed.Seconds())
	s.RSSPeakKB = rssPeak
	s.CPU = cpu
	return s, nil
}

func round2(x float64) float64 { return math.Round(100*x) / 100 }

// startAttack starts vegeta attack for one operation's stream and feeds it
// targets on stdin until it exits.
func startAttack(ctx context.Context, bin, dir, tag string, or opRate, d time.Duration, maxCap, conns int, laddr string, gen *targetGen) (*attackRun, error) {
	initial, max := workers(float64(or.Rate), maxCap)
	a := &attackRun{op: or.Op, rate: or.Rate, gen: gen,
		results: filepath.Join(dir, tag+"-"+or.Op+".bin"),
		log:     filepath.Join(dir, tag+"-"+or.Op+".log")}
	args := attackArgs(or.Op, or.Rate, d, initial, max, conns, laddr, a.results)
	logf, err := os.Create(a.log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "vegeta %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	// On ^C, vegeta stops the attack and writes what it has.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 2 * requestTimeout
	cmd.Stdout, cmd.Stderr = logf, logf
	// A pipe of our own rather than StdinPipe, to make it large: vegeta
	// starts timing a request before it reads the request's target, so the
	// feed must always be ahead of it.
	pr, stdin, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	growPipe(stdin)
	cmd.Stdin = pr
	err = cmd.Start()
	logf.Close() // the child has its own copies
	pr.Close()
	if err != nil {
		stdin.Close()
		return nil, fmt.Errorf("start vegeta: %w", err)
	}
	a.cmd = cmd
	a.fed.Add(1)
	go func() {
		defer a.fed.Done()
		_ = feed(stdin, gen)
		stdin.Close()
	}()
	return a, nil
}

// feed writes targets to w until a write fails: vegeta reads them lazily,
// one a request, and the pipe closes when it exits. A stream whose
// payments are used up ends there (vegeta then stops sending, and the
// requests not sent count as dropped); freshPayments gives each stream
// more than it can send.
func feed(w io.Writer, gen *targetGen) error {
	bw := bufio.NewWriterSize(w, feedBuffer)
	line := make([]byte, 0, 1024)
	for {
		var ok bool
		if line, ok = gen.next(line[:0]); !ok {
			return bw.Flush()
		}
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
}

// feedBuffer is feed's buffer in front of the pipe.
const feedBuffer = 16 << 10

// readResults decodes a vegeta results file (gob) through vegeta encode
// --to json and adds every request's result to o.
func readResults(ctx context.Context, bin, file string, o *opRun) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return nil // no request was sent
	}
	cmd := exec.CommandContext(ctx, bin, "encode", "--to", "json", file)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	perr := parseResults(out, o)
	if perr != nil {
		_, _ = io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("vegeta encode --to json %s: %w: %s", file, err, stderr.String())
	}
	return perr
}

// parseResults reads vegeta's JSON results, one object a line.
func parseResults(r io.Reader, o *opRun) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	for n := 1; ; n++ {
		var res result
		if err := dec.Decode(&res); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("result %d: %w", n, err)
		}
		if res.Attack != "" && res.Attack != o.op {
			return fmt.Errorf("result %d is of attack %q, not %q", n, res.Attack, o.op)
		}
		o.add(&res)
	}
}
