package host

import (
	"bytes"
	"context"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/testfix"
)

// BenchmarkPackages is `deadnode host packages` over a Debian root: every
// owned file hashed (md5) and compared, and /usr, /etc searched for
// unowned executables.
func BenchmarkPackages(b *testing.B) {
	root := testfix.HostBenchRoot(b)
	src, err := evidence.OpenDir(root)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	db, err := OpenPackageDB(context.Background(), src)
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, p := range db.order {
		if st, _ := lstat(src, p); st != nil && st.Mode.IsRegular() {
			size += st.Size
		}
	}
	b.SetBytes(size)
	cpu := testfix.StartCPU(b)
	for b.Loop() {
		// the database is read again each time: it is part of the work
		r, err := StreamPackages(context.Background(), src, PackageOptions{}, func(FileChange) {})
		if err != nil {
			b.Fatal(err)
		}
		if r.Checked == 0 {
			b.Fatal("nothing checked")
		}
	}
	cpu.Report(b)
}

// BenchmarkMD5SumC is the yardstick: GNU md5sum -c over the same files
// (those of the md5sums and conffiles that exist), run in the root.
func BenchmarkMD5SumC(b *testing.B) {
	root := testfix.HostBenchRoot(b)
	src, err := evidence.OpenDir(root)
	if err != nil {
		b.Fatal(err)
	}
	db, err := OpenPackageDB(context.Background(), src)
	if err != nil {
		b.Fatal(err)
	}
	var list bytes.Buffer
	var size int64
	for _, p := range db.order {
		if st, _ := lstat(src, p); st != nil && st.Mode.IsRegular() {
			list.WriteString(db.files[p].Digest + "  ." + p + "\n")
			size += st.Size
		}
	}
	src.Close()
	testfix.BenchMD5SumC(b, root, list.Bytes(), size)
}

// BenchmarkOpenPackageDB is the database part of BenchmarkPackages:
// status, every .list and .md5sums read, every path resolved.
func BenchmarkOpenPackageDB(b *testing.B) {
	src, err := evidence.OpenDir(testfix.HostBenchRoot(b))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	cpu := testfix.StartCPU(b)
	for b.Loop() {
		if _, err := OpenPackageDB(context.Background(), src); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Report(b)
}
