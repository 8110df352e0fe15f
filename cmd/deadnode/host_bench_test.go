package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/deadnode/deadnode/forensics/host"
	"github.com/deadnode/deadnode/internal/testfix"
)

// BenchmarkHostPackages is the whole command `deadnode --root DIR host
// packages -o json` in-process: the database read, every owned file hashed
// and compared, the system directories searched for unowned executables,
// the report written. Its bytes/s count the files BenchmarkHostMD5SumC
// checks.
func BenchmarkHostPackages(b *testing.B) {
	root := testfix.HostBenchRoot(b)
	_, size := hostMD5Sums(b, root)
	b.SetBytes(size)
	cpu := testfix.StartCPU(b)
	for b.Loop() {
		if code := run([]string{"--root", root, "host", "packages", "-o", "json"}, io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
	cpu.Report(b)
}

// BenchmarkHostMD5SumC is the yardstick of issue 13: GNU `md5sum -c` over
// the same files, the list made of the package database's digests of every
// file the command compares (its --all rows), run in the root.
func BenchmarkHostMD5SumC(b *testing.B) {
	root := testfix.HostBenchRoot(b)
	list, size := hostMD5Sums(b, root)
	testfix.BenchMD5SumC(b, root, list, size)
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
