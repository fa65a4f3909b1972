package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
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

	steps := walkthroughSteps(t, block)
	script := strings.ReplaceAll(walkthroughScript(steps), "127.0.0.1:8080", addr)
	out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s\n--- gateway log:\n%s", err, out, logs.String())
	}
	outputs := splitSteps(t, string(out), len(steps))
	checked := 0
	for i, st := range steps {
		if st.want == "" {
			continue
		}
		checked++
		got := outputs[i]
		var statuses []string
		got = statusLine.ReplaceAllStringFunc(got, func(m string) string {
			statuses = append(statuses, statusLine.FindStringSubmatch(m)[1])
			return ""
		})
		if st.status != "" && (len(statuses) != 1 || statuses[0] != st.status) {
			t.Errorf("step %d (%s): HTTP status %v, the README says %s", i, st.first, statuses, st.status)
		}
		if !answerPattern(st.want).MatchString(got) {
			t.Errorf("step %d (%s): the answer does not match the README's\n  README: %s\n  got:    %s", i, st.first, st.want, got)
		}
	}
	// The README shows an answer for each of its API calls; if it stops
	// doing so, this test would check less without saying.
	if checked < 10 {
		t.Errorf("only %d answers found in the walkthrough, want at least 10", checked)
	}
}

// walkStep is one paragraph of the walkthrough: its commands and the
// answer shown under them.
type walkStep struct {
	first  string   // the first command line, to name the step
	cmds   []string // command lines as written
	status string   // the HTTP status shown, if any
	want   string   // the answer shown, "" if none
}

var (
	statusLine    = regexp.MustCompile(`\n?@@status (\d{3})(\n|$)`)
	leadingStatus = regexp.MustCompile(`^(\d{3}) `)
)

// walkthroughSteps splits the block into paragraphs (blank-line separated):
// leading # lines describe, command lines follow, # lines after them are
// the answer.
func walkthroughSteps(t *testing.T, block string) []walkStep {
	t.Helper()
	var steps []walkStep
	for _, para := range strings.Split(strings.TrimSpace(block), "\n\n") {
		var st walkStep
		var want []string
		for _, line := range strings.Split(para, "\n") {
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "#") {
				if len(st.cmds) > 0 {
					want = append(want, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
				}
				continue
			}
			if len(want) > 0 {
				t.Fatalf("walkthrough paragraph has a command after its answer:\n%s", para)
			}
			if st.first == "" {
				st.first = trimmed
			}
			st.cmds = append(st.cmds, line)
		}
		st.want = strings.Join(want, " ")
		if m := leadingStatus.FindStringSubmatch(st.want); m != nil {
			st.status, st.want = m[1], strings.TrimPrefix(st.want, m[0])
		}
		steps = append(steps, st)
	}
	return steps
}

// walkthroughScript is the block as written, with a marker before each
// paragraph and the HTTP status written after each top-level curl -s.
func walkthroughScript(steps []walkStep) string {
	var b strings.Builder
	for i, st := range steps {
		fmt.Fprintf(&b, "echo '@@step %d'\n", i)
		for _, c := range st.cmds {
			if rest, ok := strings.CutPrefix(c, "curl -s "); ok {
				c = `curl -s -w '\n@@status %{http_code}\n' ` + rest
			}
			b.WriteString(c + "\n")
		}
		b.WriteString("echo\n")
	}
	return b.String()
}

// splitSteps cuts the script's output at the step markers.
func splitSteps(t *testing.T, out string, n int) []string {
	t.Helper()
	parts := make([]string, n)
	for i := n - 1; i >= 0; i-- {
		marker := fmt.Sprintf("@@step %d\n", i)
		at := strings.LastIndex(out, marker)
		if at < 0 {
			t.Fatalf("step %d did not run:\n%s", i, out)
		}
		parts[i] = strings.TrimSpace(out[at+len(marker):])
		out = out[:at]
	}
	return parts
}

// answerPattern turns an answer as the README shows it into a pattern:
// "…" stands for anything, and white space (where the README wraps a line)
// for any or none.
func answerPattern(want string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?s)")
	space := false
	for _, r := range want {
		switch {
		case r == '…':
			b.WriteString(".*?")
			space = false
		case unicode.IsSpace(r):
			if !space {
				b.WriteString(`\s*`)
			}
			space = true
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
			space = false
		}
	}
	return regexp.MustCompile(b.String())
}
