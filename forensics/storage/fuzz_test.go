package storage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	"github.com/deadnode/deadnode/forensics/internal/boltdb/bolttest"
	"github.com/deadnode/deadnode/internal/testfix"
)

// FuzzContainersJSON streams a containers.json (or layers.json,
// images.json) through decodeList and each record decoder, as the reader
// does.
func FuzzContainersJSON(f *testing.F) {
	f.Add([]byte(`[{"id":"a","names":["n"],"layer":"l","metadata":"{\"pod-name\":\"p\"}"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		prev := int64(-1)
		n, err := decodeList(bytes.NewReader(b), 1000, func(i int, off int64, raw json.RawMessage) {
			if off <= prev || off > int64(len(b)) {
				t.Fatalf("record %d at offset %d after %d", i, off, prev)
			}
			prev = off
			if c, err := decodeContainer(raw); err == nil {
				decodeMetadata(c.Metadata)
			}
			decodeLayer(raw)
			decodeImage(raw)
		})
		if n < 0 || n > 1000 || (err == nil && n > 0 && prev < 0) {
			t.Fatalf("n %d err %v", n, err)
		}
	})
}

// FuzzLibpodRecords feeds libpod config and state values and CRI-O state
// files to their decoders.
func FuzzLibpodRecords(f *testing.F) {
	f.Add([]byte(`{"id":"a","pod":"p","spec":{"process":{"args":["x"]}}}`), []byte(`{"state":3,"pid":1,"exitCode":2}`))
	f.Fuzz(func(t *testing.T, cfg, state []byte) {
		decodeLibpodConfig(cfg)
		decodeLibpodState(state)
		decodeCRIOState(state)
		decodeMetadata(string(cfg))
		if r, err := decodeExecRecordFrom(bytes.NewReader(cfg)); err == nil && (!isHexID(r.ID) || !isHexID(r.ContainerID)) {
			t.Fatalf("exec record with ids %q %q", r.ID, r.ContainerID)
		}
	})
}

// FuzzParseLower checks that every entry parseLower accepts is an l/ link
// name that cannot climb out of the driver directory.
func FuzzParseLower(f *testing.F) {
	f.Add([]byte("l/AAAA:l/BBBB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseLower(b)
		if err != nil {
			return
		}
		if len(entries) == 0 || len(entries) > maxLowers {
			t.Fatalf("%d entries", len(entries))
		}
		for _, e := range entries {
			short, ok := strings.CutPrefix(e, "l/")
			if !ok || short == "" || short == "." || short == ".." || strings.ContainsAny(short, "/\x00") {
				t.Fatalf("entry %q accepted", e)
			}
		}
	})
}

// FuzzOpenStore builds a graph root from a fuzzed containers.json, layers
// file, lower file and l/ link target, and checks that Open neither fails
// nor resolves a directory outside overlay/.
func FuzzOpenStore(f *testing.F) {
	f.Add([]byte(`[{"id":"c","layer":"L"}]`), []byte(`[{"id":"base"},{"id":"L","parent":"base"}]`), "l/X", "../base/diff")
	f.Add([]byte(`[{"id":"c","layer":"L"}`), []byte(`[{"id":"L","parent":"L"}]`), "l/X", "/etc")
	f.Fuzz(func(t *testing.T, ctrs, layers []byte, lower, target string) {
		if len(target) > 512 || strings.ContainsRune(target, 0) {
			return
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		dir := func(n string) { tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755}) }
		file := func(n string, c []byte) {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(c))})
			tw.Write(c)
		}
		r := "var/lib/containers/storage/"
		for _, d := range []string{"etc/", "etc/x/", "etc/x/diff/", r, r + "overlay/", r + "overlay/l/", r + "overlay/L/", r + "overlay/L/diff/", r + "overlay/base/", r + "overlay/base/diff/", r + "overlay-containers/", r + "overlay-layers/"} {
			dir(d)
		}
		file(r+"overlay-containers/containers.json", ctrs)
		file(r+"overlay-layers/layers.json", layers)
		file(r+"overlay/L/lower", []byte(lower))
		tw.WriteHeader(&tar.Header{Name: r + "overlay/l/X", Typeflag: tar.TypeSymlink, Linkname: target})
		tw.Close()
		src, err := evidence.NewArchive(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), "fuzz.tar", nil)
		if err != nil {
			return
		}
		defer src.Close()
		s, err := Open(src, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Containers {
			for _, d := range append([]string{c.UpperDir}, c.LowerDirs...) {
				if d == "" {
					continue
				}
				rel, ok := strings.CutPrefix(d, "/var/lib/containers/storage/overlay/")
				parts := strings.Split(rel, "/")
				if !ok || len(parts) != 2 || parts[1] != "diff" || parts[0] == "l" || parts[0] == ".." {
					t.Fatalf("directory %q escapes overlay/", d)
				}
			}
		}
	})
}

// fuzzStore is the containers-storage fixture and its bolt_state.db,
// loaded once per process.
var fuzzStore struct {
	once sync.Once
	src  evidence.Source
	base []byte
	tree []uint64
}

func loadFuzzStore(t testing.TB) {
	fuzzStore.once.Do(func() {
		a, err := evidence.OpenArchive(context.Background(), testfix.Fixture(t, "runtimes-c1", "storage-root.tar.zst"), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := evidence.ReadFile(a, stateName, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		bf, err := bolttest.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		fuzzStore.src, fuzzStore.base, fuzzStore.tree = a, b, bf.TreePages()
	})
	if fuzzStore.src == nil {
		t.Fatal("the fixture did not load")
	}
}

// FuzzLibpodStatePages damages the page structure of the fixture's
// libpod bolt_state.db (bolttest.Mutate: page headers, branch children,
// element positions and sizes, bucket roots) and reads the store: the
// reader must return, bbolt must never panic past the page check, and no
// private copy may stay registered.
func FuzzLibpodStatePages(f *testing.F) {
	loadFuzzStore(f)
	idx := func(id uint64) byte {
		for i, p := range fuzzStore.tree {
			if p == id {
				return byte(i)
			}
		}
		f.Fatalf("page %d is not in the tree", id)
		return 0
	}
	edit := bolttest.Edit
	// The root leaf 3, the ctr bucket's leaf 2, the containers' leaves 17
	// and 6 (4 pages each).
	f.Add(edit(idx(2), 7, 1, 0, uint32(idx(2))))      // a container bucket rooted at its parent
	f.Add(edit(idx(2), 7, 0, 2, 7))                   // a bucket root of 2^40+7
	f.Add(edit(idx(6), 1, 0, 1, 0xffff))              // absurd count
	f.Add(edit(idx(17), 2, 0, 1, 1000))               // overflow past the end
	f.Add(edit(idx(3), 5, 4, 1, 0xfffffff0))          // a key outside the root page
	f.Add(edit(idx(6), 0, 0, 1, bolttest.FlagBranch)) // a leaf read as a branch
	f.Fuzz(func(t *testing.T, edits []byte) {
		if len(edits) > 8*64 {
			edits = edits[:8*64]
		}
		bf := &bolttest.File{B: append([]byte(nil), fuzzStore.base...), PageSize: 4096}
		bf.Mutate(fuzzStore.tree, edits)
		s, err := Open(&bolttest.Source{Source: fuzzStore.src, Name: stateName, Data: bf.B}, nil)
		if r := boltdb.Registered(); len(r) != 0 {
			t.Fatalf("private copies left: %v", r)
		}
		if err != nil {
			t.Fatalf("the store is read whatever its state database: %v", err)
		}
		for _, w := range s.Warnings {
			if strings.Contains(w.Msg, "panicked") {
				t.Fatalf("bbolt panicked past the page check: %v", w)
			}
		}
	})
}
