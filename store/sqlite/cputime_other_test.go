//go:build !unix

package sqlite_test

import (
	"testing"
	"time"
)

// cpuTime is not measured here: the CPU per refund reads 0.
func cpuTime(*testing.B) time.Duration { return 0 }
