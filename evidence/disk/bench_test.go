package disk_test

import (
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/evidence/disk"
	"github.com/deadnode/deadnode/internal/testfix"
)

// BenchmarkSequentialRead reads the first 48 MiB of the gpt-ext4 disk (the
// EFI partition and the ext4 root holding the node, where the data is) in
// 4 KiB reads, as a filesystem reader does, and in 1 MiB reads, from each
// form of the same disk; and the first 48 MiB of the gpt-xfs disk, raw and
// as streamOptimized VMDK. The files are in the page cache after the first
// iteration: this measures the format's cost, not the disk's.
func BenchmarkSequentialRead(b *testing.B) {
	dir := testfix.DiskImages(b)
	const span = 48 << 20
	for _, name := range []string{
		"gpt-ext4.raw", "gpt-ext4.qcow2", "gpt-ext4.v2.qcow2", "gpt-ext4.zlib.qcow2", "gpt-ext4.zstd.qcow2", "gpt-ext4.sparse.vmdk", "split/gpt-ext4.raw.001",
		"gpt-xfs.raw", "gpt-xfs.vmdk",
	} {
		for _, bs := range []int{4 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%dKiB", filepath.Base(name), bs>>10), func(b *testing.B) {
				img, err := disk.Open(filepath.Join(dir, name), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer img.Close()
				buf := make([]byte, bs)
				b.SetBytes(span)
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					for off := int64(0); off < span; off += int64(bs) {
						if _, err := img.ReadAt(buf, off); err != nil && err != io.EOF {
							b.Fatal(err)
						}
					}
				}
				// CPU time, besides wall time: this machine is shared, and CPU
				// seconds say what the format costs whatever else runs
				cpu := float64(cpuTime()-cpu0) / float64(b.N)
				b.ReportMetric(cpu, "cpu-ns/op")
				b.ReportMetric(float64(span)/cpu*1e3, "cpu-MB/s")
			})
		}
	}
}

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
