package forensics

import (
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/deadnode/deadnode/internal/gennode"
)

// benchDriftDir is a generated node of the size the drift benchmark names:
// an image of 50,000 files / 1 GiB in 5 layers and an upper layer of 5,000
// files / 500 MiB. It is made once and kept (it takes a minute); delete
// the directory to make it again.
var benchDriftDir = filepath.Join(os.TempDir(), "deadnode-bench-drift")

func benchDriftNode(b *testing.B) (*Node, string) {
	b.Helper()
	marker := filepath.Join(benchDriftDir, "READY")
	if _, err := os.Stat(marker); err != nil {
		os.RemoveAll(benchDriftDir)
		lay, err := gennode.DriftNode(benchDriftDir, gennode.DriftShape{Layers: 5, ImageFiles: 50000, ImageBytes: 1 << 30, UpperFiles: 5000, UpperBytes: 500 << 20})
		if err != nil {
			b.Fatal(err)
		}
		os.WriteFile(marker, []byte(lay.ContainerID+"\n"+lay.UpperDir+"\n"), 0o644)
	}
	n, err := OpenPath(context.Background(), benchDriftDir, &Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range n.Containers() {
		if c.Kind == "container" {
			return n, c.ID
		}
	}
	b.Fatal("no container")
	return nil, ""
}

func BenchmarkDriftGenerated(b *testing.B) {
	n, id := benchDriftNode(b)
	defer n.Close()
	c, _ := n.FindContainer(id)
	var bytes int64
	b.ReportAllocs()
	for b.Loop() {
		ds, _ := n.ContainerDrift(c)
		bytes = 0
		for f, err := range Drift(context.Background(), ds, nil) {
			if err != nil {
				b.Fatal(err)
			}
			bytes += f.Size
		}
	}
	b.SetBytes(bytes)
}

// BenchmarkDriftFloor reads and hashes every upper-layer file once, the
// least any drift that hashes can do.
func BenchmarkDriftFloor(b *testing.B) {
	n, id := benchDriftNode(b)
	c, _ := n.FindContainer(id)
	upper := filepath.Join(benchDriftDir, c.UpperDir)
	n.Close()
	var total int64
	buf := make([]byte, 256<<10)
	for b.Loop() {
		total = 0
		filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return nil
			}
			h := sha256.New()
			k, _ := io.CopyBuffer(h, f, buf)
			total += k
			f.Close()
			return nil
		})
	}
	b.SetBytes(total)
}
