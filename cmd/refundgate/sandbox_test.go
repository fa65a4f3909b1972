package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSandboxCommandFlags checks `refundgate sandbox` the way a user runs
// it: bad flag values stop it with exit 2 and the rule, and good ones reach
// the running simulators (the keys and the faults it serves).
func TestSandboxCommandFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--yoco-failed-rate", "2"}, "yoco-failed-rate 2 is not in [0,1]"},
		{[]string{"--yoco-settle-delay", "-1s"}, "--yoco-settle-delay must not be negative"},
		{[]string{"--fault", "checkoutcom:explode:1"}, `--fault "checkoutcom:explode:1"`},
		{[]string{"--webhook-retry", "soon"}, "--webhook-retry"},
		{[]string{"--nope"}, "flag provided but not defined: -nope"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"sandbox"}, c.args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), c.err) {
			t.Errorf("sandbox %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errb.String(), c.err)
		}
	}
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	addr := freeAddr(t)
	const key = "sk_test_11111111-2222-3333-4444-555555555555"
	cmd := exec.Command(buildRefundgate(t), "sandbox", "--addr", addr, "--checkoutcom-test-key", key,
		"--fault", "checkoutcom:error_500:0.5", "--seed", "7")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sandbox output:\n%s", logs.String())
		}
	}()
	get := func(path string) map[string]any {
		var resp *http.Response
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if resp, err = http.Get("http://" + addr + path); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &v) != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return v
	}
	keys, _ := json.Marshal(get("/_sandbox/keys"))
	if !strings.Contains(string(keys), key) {
		t.Errorf("/_sandbox/keys = %s, want the Checkout.com test key given by flag", keys)
	}
	faults, _ := json.Marshal(get("/_sandbox/faults"))
	if !strings.Contains(string(faults), `"error_500"`) || !strings.Contains(string(faults), `"checkoutcom"`) || !strings.Contains(string(faults), `0.5`) {
		t.Errorf("/_sandbox/faults = %s, want checkoutcom error_500 at 0.5", faults)
	}
	if !strings.Contains(logs.String(), "sandbox providers on http://"+addr) {
		t.Errorf("the sandbox did not say where it listens: %q", logs.String())
	}
}
