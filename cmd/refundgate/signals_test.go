package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/refundgate/refundgate/gateway/gatewaytest"
	"github.com/refundgate/refundgate/sandbox"
)

// The signal tests run the real binary on a configuration with two
// Checkout.com accounts on the same sandbox and key: checkoutcom-sandbox
// (the usual one) and checkoutcom-b. Routing decides which one a refund
// without `provider` lands on, and a SIGHUP'd file change moves it.

const sigAccountB = "checkoutcom-b"

// sigEnv is one sandbox, one configuration file and one gateway process.
type sigEnv struct {
	sb      *sandbox.Sandbox
	sbURL   string
	dir     string
	cfgPath string
	dbPath  string
	gw      *gatewayProc
	seq     atomic.Int64
}

func newSigEnv(t *testing.T) *sigEnv {
	t.Helper()
	bin := buildRefundgate(t)
	sb := sandbox.New(sandbox.Options{Seed: 1})
	sbSrv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { sbSrv.Close(); sb.Close() })
	dir := t.TempDir()
	e := &sigEnv{sb: sb, sbURL: sbSrv.URL, dir: dir,
		cfgPath: filepath.Join(dir, "refundgate.yaml"), dbPath: filepath.Join(dir, "refundgate.db")}
	e.write(t, e.configYAML(t, false))
	e.gw = &gatewayProc{bin: bin, cfg: e.cfgPath, addr: freeAddr(t), logs: &lockedBuffer{}}
	// Cleanups run last-in first-out: the process is killed first, then its
	// output is printed if the test failed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway output:\n%s", e.gw.logs.String())
		}
	})
	t.Cleanup(e.gw.stop)
	return e
}

// configYAML is the test configuration with checkoutcom-b added for acme.
// toB puts an acme route for "charge_" to checkoutcom-b before the generic
// "charge_" route to checkoutcom-sandbox.
func (e *sigEnv) configYAML(t *testing.T, toB bool) string {
	t.Helper()
	k := e.sb.Keys().CheckoutCom
	y := gatewaytest.ConfigYAML(e.sbURL, e.sb.Keys(), e.dbPath, gatewaytest.Options{
		Timeout: "3s",
		ExtraProviders: func(sandboxURL string) string {
			return fmt.Sprintf("  - {name: %s, type: checkoutcom, base_url: %q, secret_key: %q, webhook_secret: %q, timeout: 3s}\n",
				sigAccountB, sandboxURL+"/checkoutcom/v2", k.TestSecretKey, k.WebhookSecret)
		},
		AcmeProviders: []string{sigAccountB},
	})
	if !toB {
		return y
	}
	generic := "  - {payment_id_prefix: \"charge_\", provider: checkoutcom-sandbox}\n"
	if strings.Count(y, generic) != 1 {
		t.Fatalf("the generic charge_ route is not in the configuration as expected:\n%s", y)
	}
	return strings.Replace(y, generic,
		"  - {merchant: acme, payment_id_prefix: \"charge_\", provider: "+sigAccountB+"}\n"+generic, 1)
}

// write replaces the configuration file atomically, so that a reload never
// reads half a file.
func (e *sigEnv) write(t *testing.T, yaml string) {
	t.Helper()
	tmp := e.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfgPath); err != nil {
		t.Fatal(err)
	}
}

func (e *sigEnv) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if !e.gw.running() {
		t.Fatalf("cannot send %v: the gateway is not running (%s)", sig, e.gw.exitState)
	}
	if err := e.gw.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
}

// payment makes a fresh captured Checkout.com payment ("charge_test_…").
func (e *sigEnv) payment(t *testing.T) string {
	t.Helper()
	id, err := e.sb.CreatePayment(sandbox.ProviderCheckoutCom, 10000, "EUR", false)
	if err != nil {
		t.Fatalf("sandbox payment: %v", err)
	}
	if !strings.HasPrefix(id, "charge_") {
		t.Fatalf("Checkout.com payment id %q does not start with charge_", id)
	}
	return id
}

// refund posts a refund of 2500 without `provider` under a fresh key.
func (e *sigEnv) refund(paymentID string) (*apiAnswer, error) {
	key := fmt.Sprintf("sig-%d-%s", e.seq.Add(1), paymentID)
	return e.gw.post(key, fmt.Sprintf(`{"payment_id":%q,"amount":2500}`, paymentID))
}

// refundOK posts a refund on a fresh payment, wants 201 succeeded and
// returns the answer's provider.
func (e *sigEnv) refundOK(t *testing.T) (provider string, body map[string]any) {
	t.Helper()
	pay := e.payment(t)
	a, err := e.refund(pay)
	if err != nil {
		t.Fatalf("refund of %s: %v", pay, err)
	}
	m := a.json(t)
	if a.status != http.StatusCreated || m["status"] != "succeeded" {
		t.Fatalf("refund of %s: %d %s; want 201 succeeded", pay, a.status, a.body)
	}
	if rs := e.sb.Refunds(sandbox.ProviderCheckoutCom, pay); len(rs) != 1 || rs[0].Amount != 2500 {
		t.Fatalf("the sandbox holds %+v for %s, want one refund of 2500", rs, pay)
	}
	p, _ := m["provider"].(string)
	return p, m
}

// waitLog waits until the gateway's output holds more than n occurrences of
// s and returns the line of the (n+1)th.
func (e *sigEnv) waitLog(t *testing.T, s string, n int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var hits []string
		for _, line := range strings.Split(e.gw.logs.String(), "\n") {
			if strings.Contains(line, s) {
				hits = append(hits, line)
			}
		}
		if len(hits) > n {
			return hits[n]
		}
		if !e.gw.running() {
			t.Fatalf("the gateway exited (%s) while waiting for %q in its log", e.gw.exitState, s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q did not appear (again) in the gateway's log within %s", s, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitInFlight polls the gateway's list until the refund of paymentID is
// stored (the intent is committed before the provider call) and pending,
// while the request that creates it has not been answered.
func (e *sigEnv) waitInFlight(t *testing.T, paymentID string, answered <-chan sigResult) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case r := <-answered:
			t.Fatalf("the slow refund was answered before it was seen in flight: %s", r)
		default:
		}
		if list := e.gw.list(t, paymentID); len(list) == 1 {
			if list[0]["status"] != "pending" {
				t.Fatalf("the refund in flight is %v, want pending: %v", list[0]["status"], list[0])
			}
			return list[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refund of %s was not stored within 15 s", paymentID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type sigResult struct {
	a   *apiAnswer
	err error
	at  time.Time
}

func (r sigResult) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.a.status, r.a.body)
}

// startRefund posts a refund of paymentID in a goroutine.
func (e *sigEnv) startRefund(paymentID string) <-chan sigResult {
	c := make(chan sigResult, 1)
	go func() {
		a, err := e.refund(paymentID)
		c <- sigResult{a: a, err: err, at: time.Now()}
	}()
	return c
}

func awaitResult(t *testing.T, c <-chan sigResult, within time.Duration, what string) sigResult {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(within):
		t.Fatalf("%s was not answered within %s", what, within)
		return sigResult{}
	}
}

// logTime is the ts of one JSON log line.
func logTime(t *testing.T, line string) time.Time {
	t.Helper()
	var l struct {
		TS string `json:"ts"`
	}
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		t.Fatalf("log line %q is not JSON: %v", line, err)
	}
	ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
	if err != nil {
		t.Fatalf("log line %q: ts: %v", line, err)
	}
	return ts
}

// TestSIGHUPReloadSwitchesProvider changes a route in the file and sends
// SIGHUP: new refunds use the new route, the refund in flight finishes on
// the old snapshot, and bad files are refused with the old snapshot kept.
func TestSIGHUPReloadSwitchesProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	e := newSigEnv(t)
	e.gw.start(t)

	// Before: "charge_" goes to checkoutcom-sandbox.
	if p, m := e.refundOK(t); p != "checkoutcom-sandbox" {
		t.Fatalf("before the reload the refund went to %q, want checkoutcom-sandbox: %v", p, m)
	}

	// A slow refund is in flight (its intent stored, the provider call
	// running) when the reload lands.
	if err := e.sb.SetFault(sandbox.Fault{Provider: sandbox.ProviderCheckoutCom, Mode: sandbox.FaultLatency, Rate: 1, LatencyMS: 500}); err != nil {
		t.Fatal(err)
	}
	slowPay := e.payment(t)
	slow := e.startRefund(slowPay)
	inFlight := e.waitInFlight(t, slowPay, slow)
	if inFlight["provider"] != "checkoutcom-sandbox" {
		t.Fatalf("the refund in flight was routed to %v, want checkoutcom-sandbox", inFlight["provider"])
	}

	e.write(t, e.configYAML(t, true))
	e.signal(t, syscall.SIGHUP)
	reloaded := logTime(t, e.waitLog(t, "configuration reloaded", 0, 10*time.Second))

	r := awaitResult(t, slow, 20*time.Second, "the refund in flight during the reload")
	if r.err != nil {
		t.Fatalf("the refund in flight during the reload: %v", r.err)
	}
	if !r.at.After(reloaded) {
		t.Errorf("the slow refund was answered at %s, not after the reload at %s: it was not in flight during the reload",
			r.at.Format(time.RFC3339Nano), reloaded.Format(time.RFC3339Nano))
	}
	sm := r.a.json(t)
	if r.a.status != http.StatusCreated || sm["status"] != "succeeded" || sm["provider"] != "checkoutcom-sandbox" || sm["id"] != inFlight["id"] {
		t.Errorf("the refund in flight during the reload: %d %s; want 201 succeeded on checkoutcom-sandbox (its snapshot), id %v",
			r.a.status, r.a.body, inFlight["id"])
	}
	if rs := e.sb.Refunds(sandbox.ProviderCheckoutCom, slowPay); len(rs) != 1 || rs[0].TrackID != inFlight["id"] {
		t.Errorf("the sandbox holds %+v for the slow payment, want one refund tracked as %v", rs, inFlight["id"])
	}
	e.sb.ClearFaults(sandbox.ProviderCheckoutCom)

	// After: new refunds go to checkoutcom-b.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, m := e.refundOK(t)
		if p == sigAccountB {
			if m["provider_type"] != "checkoutcom" {
				t.Errorf("provider_type = %v, want checkoutcom", m["provider_type"])
			}
			break
		}
		if p != "checkoutcom-sandbox" {
			t.Fatalf("after the reload a refund went to %q", p)
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the reload refunds still go to %q, want %s", p, sigAccountB)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Bad files: each is refused and the snapshot with checkoutcom-b stays.
	// Each bad file would also route "charge_" back to checkoutcom-sandbox
	// if it were taken, half or whole.
	old := e.configYAML(t, false)
	bLine := fmt.Sprintf("name: %s, type: checkoutcom", sigAccountB)
	bad := []struct{ name, yaml string }{
		{"unknown key", old + "surprise: true\n"},
		{"bad value", strings.Replace(old, "timeout: 3s}\nroutes:", "timeout: ten}\nroutes:", 1)},
		{"route to an unknown account", strings.Replace(old, "provider: checkoutcom-sandbox}", "provider: checkoutcom-nowhere}", 1)},
		{"not YAML", "merchants: [\n"},
	}
	if !strings.Contains(bad[1].yaml, bLine) || !strings.Contains(bad[1].yaml, "timeout: ten}") {
		t.Fatalf("could not build the bad-value file:\n%s", bad[1].yaml)
	}
	for i, b := range bad {
		e.write(t, b.yaml)
		e.signal(t, syscall.SIGHUP)
		line := e.waitLog(t, "reload refused", i, 10*time.Second)
		t.Logf("%s: %s", b.name, line)
		if !e.gw.running() {
			t.Fatalf("%s: the gateway exited after the refused reload: %s", b.name, e.gw.exitState)
		}
		if p, m := e.refundOK(t); p != sigAccountB {
			t.Fatalf("%s: after the refused reload a refund went to %q, want %s (the old snapshot): %v", b.name, p, sigAccountB, m)
		}
		ready, err := e.gw.do(http.MethodGet, "/readyz", "", "", nil)
		if err != nil || ready.status != http.StatusOK {
			t.Fatalf("%s: /readyz after the refused reload: %v %v", b.name, ready, err)
		}
	}
	if n := strings.Count(e.gw.logs.String(), "configuration reloaded"); n != 1 {
		t.Errorf("the log says %d reloads happened, want 1 (the good one)", n)
	}
	if !e.gw.running() {
		t.Fatalf("the gateway is not running at the end: %s", e.gw.exitState)
	}
}

// TestSIGTERMDrainsInFlight sends SIGTERM while a refund is at the provider:
// the request is finished and answered, the process exits 0, and the
// refund is in the database on restart.
func TestSIGTERMDrainsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	e := newSigEnv(t)
	e.gw.start(t)

	if err := e.sb.SetFault(sandbox.Fault{Provider: sandbox.ProviderCheckoutCom, Mode: sandbox.FaultLatency, Rate: 1, LatencyMS: 700}); err != nil {
		t.Fatal(err)
	}
	pay := e.payment(t)
	slow := e.startRefund(pay)
	inFlight := e.waitInFlight(t, pay, slow)
	id, _ := inFlight["id"].(string)

	sent := time.Now()
	e.signal(t, syscall.SIGTERM)

	r := awaitResult(t, slow, 20*time.Second, "the refund in flight at SIGTERM")
	if r.err != nil {
		t.Fatalf("the refund in flight at SIGTERM was cut: %v", r.err)
	}
	m := r.a.json(t)
	if r.a.status != http.StatusCreated || m["status"] != "succeeded" || m["id"] != id {
		t.Errorf("the refund in flight at SIGTERM: %d %s; want 201 succeeded %s", r.a.status, r.a.body, id)
	}

	select {
	case <-e.gw.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway did not exit within 20 s of SIGTERM")
	}
	t.Logf("exited %s after SIGTERM: %s", time.Since(sent).Round(time.Millisecond), e.gw.exitState)
	if code := e.gw.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d (%s), want 0", code, e.gw.exitState)
	}
	logs := e.gw.logs.String()
	for _, s := range []string{"shutting down", `"stopped"`} {
		if !strings.Contains(logs, s) {
			t.Errorf("the log lacks %q", s)
		}
	}

	// Gone: new connections are refused.
	if c, err := net.DialTimeout("tcp", e.gw.addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection to %s was accepted after shutdown", e.gw.addr)
	}
	if rs := e.sb.Refunds(sandbox.ProviderCheckoutCom, pay); len(rs) != 1 || rs[0].TrackID != id {
		t.Errorf("the sandbox holds %+v, want one refund tracked as %s", rs, id)
	}

	// Nothing lost: the restarted gateway on the same database has it.
	e.sb.ClearFaults(sandbox.ProviderCheckoutCom)
	e.gw.start(t)
	got, err := e.gw.do(http.MethodGet, "/v1/refunds/"+id, gatewaytest.AcmeKey, "", nil)
	if err != nil {
		t.Fatalf("GET the refund after restart: %v", err)
	}
	gm := got.json(t)
	if got.status != http.StatusOK || gm["status"] != "succeeded" || jsonInt(gm["amount"]) != 2500 || gm["provider"] != "checkoutcom-sandbox" {
		t.Errorf("after restart the refund is %d %s; want 200 succeeded 2500 on checkoutcom-sandbox", got.status, got.body)
	}
	if list := e.gw.list(t, pay); len(list) != 1 {
		t.Errorf("after restart the gateway holds %d refunds of %s, want 1: %v", len(list), pay, list)
	}
	if rs := e.sb.Refunds(sandbox.ProviderCheckoutCom, pay); len(rs) != 1 {
		t.Errorf("after restart the sandbox holds %d refunds of %s, want 1: %+v", len(rs), pay, rs)
	}
	// And the restarted gateway takes new refunds.
	if p, _ := e.refundOK(t); p != "checkoutcom-sandbox" {
		t.Errorf("a refund after restart went to %q, want checkoutcom-sandbox", p)
	}
}

// TestSIGHUPDuringShutdownIsHarmless: a SIGHUP (say, from logrotate) that
// arrives while SIGTERM's drain runs neither kills the process nor cuts the
// request in flight.
func TestSIGHUPDuringShutdownIsHarmless(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	e := newSigEnv(t)
	e.gw.start(t)
	if err := e.sb.SetFault(sandbox.Fault{Provider: sandbox.ProviderCheckoutCom, Mode: sandbox.FaultLatency, Rate: 1, LatencyMS: 1500}); err != nil {
		t.Fatal(err)
	}
	pay := e.payment(t)
	slow := e.startRefund(pay)
	e.waitInFlight(t, pay, slow)
	e.signal(t, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(e.gw.logs.String(), "shutting down"); {
		if time.Now().After(deadline) {
			t.Fatal("no shutdown in the log")
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.signal(t, syscall.SIGHUP)
	r := awaitResult(t, slow, 20*time.Second, "the refund in flight")
	if r.err != nil || r.a.status != http.StatusCreated {
		t.Fatalf("the refund in flight at SIGTERM+SIGHUP: %v", r)
	}
	select {
	case <-e.gw.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway did not exit")
	}
	if code := e.gw.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code = %d (%s), want 0", code, e.gw.exitState)
	}
}
