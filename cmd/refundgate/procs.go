package main

import (
	"os"
	"runtime"
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
