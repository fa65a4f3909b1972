package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestREADMEWalkthrough runs the README's curl walkthrough, as written,
// against `refundgate serve --sandbox` built from this tree.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, tool := range []string{"bash", "curl", "sed", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## Walkthrough")
	if !ok {
		t.Fatal("README has no Walkthrough section")
	}
	_, block, _ := strings.Cut(after, "```sh\n")
	block, _, _ = strings.Cut(block, "```")

	dir := t.TempDir()
	bin := filepath.Join(dir, "refundgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logs := &lockedBuffer{}
	srv := exec.Command(bin, "serve", "--sandbox", "--addr", addr)
	srv.Stdout, srv.Stderr = logs, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "merchant key: rk_test_sandbox") {
		t.Errorf("the start banner does not print the key:\n%s", logs.String())
	}

	script := strings.ReplaceAll(block, "127.0.0.1:8080", addr)
	out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s\n--- gateway log:\n%s", err, out, logs.String())
	}
	text := string(out)
	for _, want := range []string{
		`"refundable_amount":10000`,
		`"amount":4000,"currency":"EUR","status":"succeeded","provider_status":"Refunded"`,
		"Idempotent-Replayed: true",
		`"detail":"amount 7000 is more than the refundable 6000 EUR","code":"amount_exceeds_refundable"`,
		`"amount":6000,"currency":"EUR","status":"succeeded"`,
		`"provider":"yoco-sandbox"`,
		`"amount":1500,"currency":"JPY","status":"succeeded"`,
		`"reason":"duplicate"`,
		`"object":"list"`,
		`"name":"smartpay-sandbox","type":"smartpay"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("walkthrough output lacks %s\n%s", want, text)
		}
	}
	if strings.Count(text, `"provider_type":"yoco"`) != 1 || !strings.Contains(text, `"provider_type":"yoco","payment_id":"ch_`) {
		t.Errorf("the Yoco refund is missing:\n%s", text)
	}
	if !strings.Contains(text, `"provider":"yoco-sandbox","provider_type":"yoco"`) || strings.Contains(text, `"status":"pending","provider_status":"successful"`) {
		t.Errorf("the Yoco refund did not settle within the walkthrough's pause:\n%s", text)
	}
}
