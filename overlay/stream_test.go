package overlay

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/testfix"
)

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// sampler measures, at points the caller picks (every 100,000 entries of
// a walk), how much more live heap there is than at its start: what a
// stream holds, not the garbage it leaves for the collector.
type sampler struct {
	base, peak uint64
	n          int
}

func newSampler() *sampler { return &sampler{base: liveHeap()} }

func (s *sampler) tick() {
	if s.n++; s.n%100_000 == 0 {
		if l := liveHeap(); l > s.base && l-s.base > s.peak {
			s.peak = l - s.base
		}
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

const million = 1_000_000

// millionTar is a node collection whose container upper dir holds 10⁶
// files in one directory (made once, kept in the gitignored cache dir).
func millionTar(t *testing.T) string {
	dir := filepath.Join(testfix.RepoRoot(t), "testdata", ".cache", "overlay")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "million.tar.gz")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	f, err := os.Create(p + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	add := func(name string, typ byte, body string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	add("lower/etc/passwd", tar.TypeReg, "root:x:0:0::/root:/bin/sh\n")
	add("lower/d/f0000007", tar.TypeReg, "lower")
	add("upper/d/", tar.TypeDir, "")
	for i := 0; i < million; i++ {
		add(fmt.Sprintf("upper/d/f%07d", i), tar.TypeReg, "")
	}
	tw.Close()
	zw.Close()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 16.4: a directory of 10⁶ entries is listed (its names are held)
// but nothing per entry stays in memory once it is yielded: the walk, the
// exports and evidence.Walk hold a small, flat heap.
func TestMillionEntriesFlatMemory(t *testing.T) {
	p := millionTar(t)
	before := liveHeap()
	a, err := evidence.OpenArchive(context.Background(), p, &evidence.ArchiveOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	index := liveHeap() - before
	t.Logf("index of %d entries: %d MiB (%d bytes an entry)", million+8, index>>20, index/million)
	if index > 200*million {
		t.Errorf("index: %d bytes an entry", index/million)
	}
	v, err := New([]Layer{{Source: a, Dir: "upper", Kind: LayerDir, Name: "upper"}, {Source: a, Dir: "lower", Kind: LayerDir, Name: "lower"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The directory's names (16 bytes each) and slack; an Entry or a Stat
	// kept per entry would be hundreds of MiB.
	const bound = 40 << 20
	check := func(what string, s *sampler, n, want int) {
		t.Helper()
		t.Logf("%s: %d entries, live heap +%d MiB at most", what, n, s.peak>>20)
		if n != want || s.peak > bound {
			t.Errorf("%s: %d entries (want %d), live heap +%d MiB", what, n, want, s.peak>>20)
		}
	}
	s := newSampler()
	for e, err := range v.Walk(context.Background(), ".") {
		if err != nil {
			t.Fatal(err)
		}
		if e.Path == "d/f0000007" && e.Origin.LayerName != "upper" {
			t.Errorf("f0000007 from %s", e.Origin.LayerName)
		}
		s.tick()
	}
	check("walk", s, s.n, million+4)
	s = newSampler()
	for _, err := range ExportMerged(context.Background(), io.Discard, v, nil) {
		if err != nil {
			t.Fatal(err)
		}
		s.tick()
	}
	check("export merged", s, s.n, million+3)
	lower, err := New([]Layer{{Source: a, Dir: "lower", Kind: LayerDir, Name: "lower"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s = newSampler()
	for _, err := range ExportUpper(context.Background(), io.Discard, Layer{Source: a, Dir: "upper", Kind: LayerDir, Name: "upper"}, lower, nil) {
		if err != nil {
			t.Fatal(err)
		}
		s.tick()
	}
	check("export upper", s, s.n, million+1)
	s = newSampler()
	evidence.Walk(context.Background(), a, ".", func(st *evidence.Stat, err error) error {
		s.tick()
		return err
	})
	check("evidence.Walk", s, s.n, million+8)
}

// Issue 16.4: a tree 100,000 levels deep in a container's layer: the
// walk and both exports stop at the bound and say where, as a typed error
// a caller can turn into a finding.
func TestDeepLayerTree(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		tw.WriteHeader(&tar.Header{Name: "upper/" + strings.Repeat("d/", 100_000) + "f", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX})
		tw.Close()
		pw.Close()
	}()
	data, _ := io.ReadAll(pr)
	p := filepath.Join(t.TempDir(), "deep.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := evidence.OpenArchive(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	up := Layer{Source: a, Dir: "upper", Kind: LayerDir, Name: "upper"}
	v, err := New([]Layer{up}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var deep *evidence.DepthError
	n := 0
	for _, err := range v.Walk(context.Background(), ".") {
		if err != nil {
			if !errors.As(err, &deep) || !errors.Is(err, ErrTooDeep) {
				t.Fatal(err)
			}
			continue
		}
		n++
	}
	if deep == nil || deep.Op != "walk" || deep.Limit != DefaultMaxDepth || strings.Count(deep.Path, "/") != DefaultMaxDepth-1 || n != DefaultMaxDepth+1 {
		t.Errorf("walk: %+v, %d entries", deep, n)
	}
	for name, export := range map[string]func() ([]ManifestEntry, error){
		"merged": func() ([]ManifestEntry, error) {
			return CollectManifest(ExportMerged(context.Background(), io.Discard, v, nil))
		},
		"upper": func() ([]ManifestEntry, error) {
			return CollectManifest(ExportUpper(context.Background(), io.Discard, up, nil, nil))
		},
	} {
		man, err := export()
		if !errors.As(err, &deep) || len(man) != DefaultMaxDepth {
			t.Errorf("%s: %d members, %v", name, len(man), err)
		}
	}
}

// Walks and exports stop with ctx.Err() when cancelled, before or while
// they run.
func TestStreamsCancelled(t *testing.T) {
	v, err := New(snapshotLayers(nodeArchive(t), attackedSnapshots), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range v.Walk(ctx, ".") {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("walk before: %v", err)
		}
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	var last error
	seen := ""
	for e, err := range v.Walk(ctx, ".") {
		if err != nil {
			last = err
			continue
		}
		if seen = e.Path; seen == "bin" {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) || seen != "bin" {
		t.Errorf("walk while: %v, last entry %s", last, seen)
	}
	for name, seq := range map[string]func(context.Context) ([]ManifestEntry, error){
		"merged": func(ctx context.Context) ([]ManifestEntry, error) {
			return CollectManifest(ExportMerged(ctx, io.Discard, v, nil))
		},
		"upper": func(ctx context.Context) ([]ManifestEntry, error) {
			lower, _ := New(v.Layers()[1:], nil)
			return CollectManifest(ExportUpper(ctx, io.Discard, v.Layers()[0], lower, nil))
		},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if man, err := seq(ctx); !errors.Is(err, context.Canceled) || len(man) != 0 {
			t.Errorf("%s before: %d members, %v", name, len(man), err)
		}
		ctx, cancel = context.WithCancel(context.Background())
		opt := &ExportOptions{Progress: func(p Progress) {
			if p.Entries == 5 {
				cancel()
			}
		}}
		var man []ManifestEntry
		var werr error
		exp := ExportMerged(ctx, io.Discard, v, opt)
		if name == "upper" {
			lower, _ := New(v.Layers()[1:], nil)
			exp = ExportUpper(ctx, io.Discard, v.Layers()[0], lower, opt)
		}
		for m, err := range exp {
			if err != nil {
				werr = err
				continue
			}
			man = append(man, m)
		}
		if !errors.Is(werr, context.Canceled) || len(man) > 6 {
			t.Errorf("%s while: %d members, %v", name, len(man), werr)
		}
		cancel()
	}
}
