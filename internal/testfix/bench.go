package testfix

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// HostBenchRoot is the host root the host benchmarks read: the directory
// DEADNODE_BENCH_HOST names (e.g. the full shared host fixture extracted:
// zstd -dc node-host-a.tar.zst | tar --xattrs --xattrs-include='*'
// --numeric-owner -x -C DIR), else the trimmed test fixture.
func HostBenchRoot(b *testing.B) string {
	if d := os.Getenv("DEADNODE_BENCH_HOST"); d != "" {
		return d
	}
	return KubeHost(b)
}

// CPUClock reports the CPU time (user and system, of the process and its
// waited-for children) a benchmark's loop used per op: on a shared
// machine it says more than the wall clock.
type CPUClock struct{ start time.Duration }

// StartCPU starts a CPUClock.
func StartCPU(b *testing.B) CPUClock { return CPUClock{cpuUsed(b)} }

// Report adds the CPU time per op since StartCPU as "cpu-ns/op".
func (c CPUClock) Report(b *testing.B) {
	b.ReportMetric(float64(cpuUsed(b)-c.start)/float64(b.N), "cpu-ns/op")
}

func cpuUsed(b *testing.B) time.Duration {
	var total time.Duration
	for _, who := range []int{unix.RUSAGE_SELF, unix.RUSAGE_CHILDREN} {
		var ru unix.Rusage
		if err := unix.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}
