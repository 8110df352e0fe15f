package overlay

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// benchRoot holds the generated benchmark image, outside the repo and
// reused between runs (DEADNODE_BENCH_DIR overrides it).
func benchRoot() string {
	if d := os.Getenv("DEADNODE_BENCH_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "deadnode-overlay-bench-v1")
}

const benchLayerCount = 10

// benchLayers generates, once, an image of 100,000 files in 10 layers:
// 100 dirs shared by every layer with 100 files each per layer, each layer
// whiting out 10 files of the layer below in d00, an opaque d01 in the
// upper layer, and a symlink per dir and layer.
func benchLayers(b *testing.B) []string {
	root := benchRoot()
	var dirs []string
	for l := 0; l < benchLayerCount; l++ {
		dirs = append(dirs, filepath.Join(root, fmt.Sprintf("layer%d", l)))
	}
	if _, err := os.Stat(filepath.Join(root, ".complete")); err == nil {
		return dirs
	}
	b.Logf("generating 100,000 files in %s", root)
	os.RemoveAll(root)
	data := make([]byte, 64)
	for l, ld := range dirs {
		for d := 0; d < 100; d++ {
			dd := filepath.Join(ld, fmt.Sprintf("d%02d", d))
			if err := os.MkdirAll(dd, 0o755); err != nil {
				b.Fatal(err)
			}
			for f := 0; f < 100; f++ {
				copy(data, fmt.Sprintf("layer %d dir %d file %d\n", l, d, f))
				if err := os.WriteFile(filepath.Join(dd, fmt.Sprintf("L%d-f%03d", l, f)), data, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			os.Symlink(fmt.Sprintf("L%d-f000", l), filepath.Join(dd, fmt.Sprintf("L%d-link", l)))
		}
		if l+1 < benchLayerCount {
			for f := 0; f < 10; f++ {
				if err := unix.Mknod(filepath.Join(ld, "d00", fmt.Sprintf("L%d-f%03d", l+1, f)), unix.S_IFCHR, 0); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := unix.Setxattr(filepath.Join(dirs[0], "d01"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".complete"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dirs
}

// BenchmarkMergedWalk walks the merged 10-layer image with full metadata
// (the entries carry their lstat).
func BenchmarkMergedWalk(b *testing.B) {
	layers := dirLayers(b, benchLayers(b)...)
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		v, err := New(layers, nil)
		if err != nil {
			b.Fatal(err)
		}
		n = 0
		for _, err := range v.Walk(context.Background(), ".") {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n), "entries/op")
}

// BenchmarkExportFixtureArchive exports the attacked container of the
// node collection, read in place from the .tar.gz.
func BenchmarkExportFixtureArchive(b *testing.B) {
	v, err := New(snapshotLayers(nodeArchive(b), attackedSnapshots), nil)
	if err != nil {
		b.Fatal(err)
	}
	benchExport(b, v)
}

// BenchmarkExportFixtureDir exports it from the extracted collection,
// the same files a kernel mount would read.
func BenchmarkExportFixtureDir(b *testing.B) {
	node := nodeExtracted(b)
	src := dirLayers(b, filepath.Join(node, snapshotsDir, "6", "fs"), filepath.Join(node, snapshotsDir, "3", "fs"), filepath.Join(node, snapshotsDir, "2", "fs"))
	v, err := New(src, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchExport(b, v)
}

func benchExport(b *testing.B, v *View) {
	b.ResetTimer()
	var bytes int64
	for i := 0; i < b.N; i++ {
		cw := &countWriter{}
		if _, err := CollectManifest(ExportMerged(context.Background(), cw, v, nil)); err != nil {
			b.Fatal(err)
		}
		bytes = cw.n
	}
	b.SetBytes(bytes)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
