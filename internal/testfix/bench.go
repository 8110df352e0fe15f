package testfix

import (
	"os"
	"os/exec"
	"path/filepath"
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

// BenchMD5SumC is the package-drift yardstick: GNU `md5sum -c --quiet`
// over list ("md5  ./path" lines) run in root, size being the bytes the
// list covers. A mismatch (exit 1, the fixture's replaced curl) is what
// the yardstick expects; any other failure ends the benchmark.
func BenchMD5SumC(b *testing.B, root string, list []byte, size int64) {
	sums := filepath.Join(b.TempDir(), "md5sums")
	if err := os.WriteFile(sums, list, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	cpu := StartCPU(b)
	for b.Loop() {
		cmd := exec.Command("md5sum", "-c", "--quiet", sums)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
			b.Fatalf("md5sum: %v\n%s", err, out)
		}
	}
	cpu.Report(b)
}
