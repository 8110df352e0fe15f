package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deadnode/deadnode/forensics/host"
	"github.com/deadnode/deadnode/internal/testfix"
)

// hostBenchRoot is the host root the benchmarks read: the directory
// DEADNODE_BENCH_HOST names (e.g. the full shared host fixture extracted:
// zstd -dc node-host-a.tar.zst | tar --xattrs --xattrs-include='*'
// --numeric-owner -x -C DIR), else the trimmed test fixture.
func hostBenchRoot(b *testing.B) string {
	if d := os.Getenv("DEADNODE_BENCH_HOST"); d != "" {
		return d
	}
	return testfix.KubeHost(b)
}

// BenchmarkHostPackages is the whole command `deadnode --root DIR host
// packages -o json` in-process: the database read, every owned file hashed
// and compared, the system directories searched for unowned executables,
// the report written. Its bytes/s count the files BenchmarkHostMD5SumC
// checks.
func BenchmarkHostPackages(b *testing.B) {
	root := hostBenchRoot(b)
	_, size := hostMD5Sums(b, root)
	b.SetBytes(size)
	cpu := startCPU(b)
	for b.Loop() {
		if code := run([]string{"--root", root, "host", "packages", "-o", "json"}, io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
	cpu.report(b)
}

// BenchmarkHostMD5SumC is the yardstick of issue 13: GNU `md5sum -c` over
// the same files, the list made of the package database's digests of every
// file the command compares (its --all rows), run in the root.
func BenchmarkHostMD5SumC(b *testing.B) {
	root := hostBenchRoot(b)
	list, size := hostMD5Sums(b, root)
	sums := filepath.Join(b.TempDir(), "md5sums")
	if err := os.WriteFile(sums, list, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	cpu := startCPU(b)
	for b.Loop() {
		cmd := exec.Command("md5sum", "-c", "--quiet", sums)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		// exit 1: a file did not match (the fixture's curl)
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
			b.Fatalf("md5sum: %v\n%s", err, out)
		}
	}
	cpu.report(b)
}

// hostMD5Sums lists "md5  ./path" for every package file `host packages
// --all` compared by md5, and their total size.
func hostMD5Sums(b *testing.B, root string) ([]byte, int64) {
	b.Helper()
	var out bytes.Buffer
	if code := run([]string{"--root", root, "host", "packages", "--all", "-o", "jsonl"}, &out, io.Discard); code != 0 {
		b.Fatalf("host packages --all: exit %d", code)
	}
	var list bytes.Buffer
	var size int64
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c host.FileChange
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			b.Fatal(err)
		}
		if c.Package == nil || c.Type != "file" || c.DigestAlgo != host.AlgoMD5 || c.ExpectedDigest == "" {
			continue
		}
		list.WriteString(c.ExpectedDigest + "  ." + c.Path + "\n")
		size += c.Size
	}
	if list.Len() == 0 {
		b.Fatal("no md5-checked files")
	}
	return list.Bytes(), size
}

// cpuClock reports the CPU time (user and system, of the process and its
// waited-for children) a benchmark's loop used per op: on a shared
// machine it says more than the wall clock.
type cpuClock struct{ start time.Duration }

func startCPU(b *testing.B) cpuClock { return cpuClock{rusageTotal(b)} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(rusageTotal(b)-c.start)/float64(b.N), "cpu-ns/op")
}

func rusageTotal(b *testing.B) time.Duration {
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
