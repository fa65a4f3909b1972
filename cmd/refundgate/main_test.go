package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	t.Setenv("ACME_API_KEY", "rk_live_acme_0123456789abcdef")
	t.Setenv("YOCO_SECRET_KEY", "sk_live_yoco_0123456789abcdef")
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"version", []string{"version"}, 0, "refundgate ", ""},
		{"no command", nil, 2, "", "usage:"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"config without check", []string{"config"}, 2, "", "usage:"},
		{"good config", []string{"config", "check", "--config", "testdata/good.yaml"}, 0, "testdata/good.yaml: ok (1 merchants, 3 providers, 3 routes)", ""},
		{"bad config", []string{"config", "check", "--config", "testdata/bad.yaml"}, 1, "providers[0].timeout", ""},
		{"missing config", []string{"config", "check", "--config", "testdata/none.yaml"}, 1, "testdata/none.yaml", ""},
		{"serve with a bad config", []string{"serve", "--config", "testdata/bad.yaml"}, 2, "", "providers[0].timeout"},
		{"bad flag", []string{"serve", "--nope"}, 2, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tt.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.err) {
				t.Errorf("stdout %q (want %q), stderr %q (want %q)", out.String(), tt.out, errb.String(), tt.err)
			}
			for _, secret := range []string{"sk_live_supersecretvalue_123456", "rk_live_0123456789abcdef", "sk_live_yoco_0123456789abcdef"} {
				if strings.Contains(out.String()+errb.String(), secret) {
					t.Errorf("a secret was printed: %s", out.String()+errb.String())
				}
			}
		})
	}
}
