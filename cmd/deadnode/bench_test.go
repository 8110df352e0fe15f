package main

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/deadnode/deadnode/internal/gennode"
	"github.com/deadnode/deadnode/internal/testfix"
)

var (
	genOnce sync.Once
	genDir  string
	genErr  error
)

// generatedNode is a synthetic containerd node of 1,000 containers and
// 3,000 snapshots, made once per test binary run.
func generatedNode(b *testing.B) string {
	genOnce.Do(func() {
		genDir, genErr = os.MkdirTemp("", "deadnode-bench-node-*")
		if genErr == nil {
			genErr = gennode.Containerd(genDir, 1000, 3000)
		}
	})
	if genErr != nil {
		b.Fatal(genErr)
	}
	return genDir
}

func benchLs(b *testing.B, root string) {
	b.ReportAllocs()
	for b.Loop() {
		if code := run([]string{"--root", root, "ls", "containers", "-o", "json"}, io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}

// BenchmarkLsContainersGenerated: `ls containers -o json` on a meta.db of
// 1,000 containers and 3,000 snapshots.
func BenchmarkLsContainersGenerated(b *testing.B) { benchLs(b, generatedNode(b)) }

// BenchmarkLsContainersFixtureArchive: the real node collection, read
// from its .tar.gz (decompressed once per run).
func BenchmarkLsContainersFixtureArchive(b *testing.B) { benchLs(b, testfix.NodeArchive(b)) }

// BenchmarkLsContainersFixtureDir: the same node, extracted.
func BenchmarkLsContainersFixtureDir(b *testing.B) {
	benchLs(b, filepath.Join(testfix.Extract(b, testfix.NodeArchive(b)), "node"))
}
