package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// serveProcs sets GOMAXPROCS for serve: twice what Go chose from the CPUs,
// unless the operator set GOMAXPROCS, which Go has applied already.
//
// The gateway's store acks writes from one syncer goroutine after each
// fdatasync. Coming back from that syscall with no idle P, Go parks it in
// the global run queue behind the handlers, and every ack waits with it
// (BENCHMARKS.md, "Between the stalls: the scheduler"). With more Ps than
// cores a P is usually idle for it, and the OS decides when it runs. In
// interleaved runs on 2 cores, 4 Ps answered a higher create rate (4,500/s
// against 4,000/s, two rounds), lower p50 and p99 at 2,000 creates a second
// (three rounds), and the same replay rate. Setting it here turns off Go's
// own updates of GOMAXPROCS when a container's CPU limit changes; set
// GOMAXPROCS to keep them.
func serveProcs() int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n := 2 * runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(n)
	return n
}

// serveGOGC is the GC target serve runs with unless the operator set GOGC.
//
// The gateway's live heap is small (7–9 MiB over a 10-minute soak at 2,300
// creates a second), so at Go's default of 100 it collects many times a
// second. In five interleaved rounds of 20 s half-rate runs at 2,300/s on 2
// cores, 400 gave a lower p50, p99 and window p99 added in every round
// (window p99 mean 10.3 against 12.8 ms) with less CPU; right after a
// create-max search, two rounds showed no difference (BENCHMARKS.md,
// "2026-12-02, afternoon"). The heap may grow to five times the live heap;
// GOMEMLIMIT caps it where memory is tight.
const serveGOGC = 400

// serveGC sets the GC target for serve, unless GOGC is set, which Go has
// applied already.
func serveGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(serveGOGC)
}

// gcPercent is the GC target in force.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int(s[0].Value.Uint64())
}
