// Command refundgate is the refund gateway: `serve`, `sandbox`,
// `config check` and `version`. It only wires the parts together.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage:
  refundgate serve [--config F] [--addr A] [--sandbox]
  refundgate sandbox [--addr A]
  refundgate config check [--config F]
  refundgate version
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serveProcs()
		serveGC()
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit code: 0 ok, 1 runtime
// failure, 2 bad usage or configuration.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "sandbox":
		return sandboxCmd(args[1:], stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return configCheck(args[2:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "refundgate %s (%s)\n", version, buildInfo())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "refundgate: unknown command %q\n%s", args[0], usage)
	return 2
}

func buildInfo() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "no build info"
	}
	rev, dirty := "unknown", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	return fmt.Sprintf("%s, commit %s%s", bi.GoVersion, rev, dirty)
}
