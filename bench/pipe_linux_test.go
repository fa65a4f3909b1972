package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	before := pipeSize(w)
	growPipe(w)
	after := pipeSize(w)
	want := 1 << 20
	if b, err := os.ReadFile("/proc/sys/fs/pipe-max-size"); err == nil {
		if max, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && max < want && os.Geteuid() != 0 {
			want = before // an unprivileged process cannot go past the maximum
		}
	}
	if after < want {
		t.Errorf("pipe size %d → %d, want at least %d", before, after, want)
	}
}
