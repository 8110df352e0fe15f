package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// Each fuzzer feeds arbitrary bytes to one reader; the seeds in
// testdata/fuzz/<Fuzzer>/ are real images of the fixtures and the hostile
// cases. Any error must be a *evidence.FormatError (or plain EOF handling
// inside), and nothing may panic or allocate past the limits.

func checkErr(t *testing.T, err error) {
	if err == nil {
		return
	}
	var fe *evidence.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a FormatError", err, err)
	}
}

func newReader(t *testing.T, b []byte) *ImageReader {
	ir, err := NewImageReader(bytes.NewReader(b), int64(len(b)), "fuzz.img")
	checkErr(t, err)
	return ir
}

func FuzzImageReader(f *testing.F) {
	f.Add([]byte{0x19, 0x43, 0x56, 0x54, 0x30, 0x30, 0x27, 0x50, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		ir := newReader(t, b)
		if ir == nil {
			return
		}
		for n := 0; ; n++ {
			rec, off, err := ir.Next()
			if err == io.EOF {
				if off != int64(len(b)) {
					t.Fatalf("EOF at %d of %d", off, len(b))
				}
				return
			}
			if err != nil {
				checkErr(t, err)
				return
			}
			if len(rec) > maxRecord || off+4+int64(len(rec)) > int64(len(b)) {
				t.Fatalf("record of %d bytes at %d", len(rec), off)
			}
		}
	})
}

func fuzzDecoder[T any](f *testing.F, dec func(*ImageReader) (T, error)) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ir := newReader(t, b)
		if ir == nil {
			return
		}
		_, err := dec(ir)
		checkErr(t, err)
	})
}

func FuzzDecodeInventory(f *testing.F) { fuzzDecoder(f, decodeInventory) }

// FuzzDecodePstree decodes a pstree.img and checks the tree: after
// checkTree no pid is listed twice, every task reaches a root, and the
// check followed at most one parent link a task (seeds: the fixtures, a
// cycle, a 2,000-task chain).
func FuzzDecodePstree(f *testing.F) {
	dir, err := evidence.OpenDir(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ir := newReader(t, b)
		if ir == nil {
			return
		}
		tree, err := decodePstree(ir)
		checkErr(t, err)
		bld := &builder{cp: &Checkpoint{}, im: NewImageDir(dir, ".")}
		tree = bld.checkTree(tree)
		if bld.treeSteps > len(tree) {
			t.Fatalf("%d steps for %d tasks", bld.treeSteps, len(tree))
		}
		parent := map[uint32]uint32{}
		for _, e := range tree {
			if _, dup := parent[e.GetPid()]; dup || e.GetPid() == 0 {
				t.Fatalf("task %d kept twice or invalid", e.GetPid())
			}
			parent[e.GetPid()] = e.GetPpid()
		}
		for _, e := range tree {
			p, n := e.GetPid(), 0
			for ; p != 0 && n <= len(tree); n++ {
				p = parent[p]
			}
			if p != 0 {
				t.Fatalf("task %d never reaches a root", e.GetPid())
			}
		}
	})
}
func FuzzDecodeCore(f *testing.F)        { fuzzDecoder(f, decodeCore) }
func FuzzDecodeIDs(f *testing.F)         { fuzzDecoder(f, decodeIDs) }
func FuzzDecodeMM(f *testing.F)          { fuzzDecoder(f, decodeMM) }
func FuzzDecodeFs(f *testing.F)          { fuzzDecoder(f, decodeFs) }
func FuzzDecodeFdinfo(f *testing.F)      { fuzzDecoder(f, decodeFdinfo) }
func FuzzDecodeFiles(f *testing.F)       { fuzzDecoder(f, decodeFiles) }
func FuzzDecodeMountpoints(f *testing.F) { fuzzDecoder(f, decodeMountpoints) }
func FuzzDecodeStats(f *testing.F)       { fuzzDecoder(f, decodeStats) }
func FuzzDecodeRemaps(f *testing.F)      { fuzzDecoder(f, decodeRemaps) }
func FuzzDecodeTtyInfo(f *testing.F)     { fuzzDecoder(f, decodeTtyInfo) }
func FuzzDecodeMemfdInodes(f *testing.F) { fuzzDecoder(f, decodeMemfdInodes) }
func FuzzDecodeLegacyFiles(f *testing.F) { fuzzDecoder(f, decodeLegacyFiles) }

func FuzzDecodePagemap(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ir := newReader(t, b)
		if ir == nil {
			return
		}
		pm, err := DecodePagemap(ir)
		checkErr(t, err)
		if pm == nil {
			return
		}
		var off int64
		for _, e := range pm.Entries {
			if e.Flags&PagePresent != 0 {
				if e.Offset != off || e.Offset < 0 {
					t.Fatalf("entry %+v: offset, want %d", e, off)
				}
				off += int64(e.NrPages) * pageSize
			}
			if e.NrPages >= 1<<52 {
				t.Fatalf("entry %+v passed the bound", e)
			}
		}
		pm.Lookup(0x7ffd340c6f15)
		// argv/envp ranges anywhere in the runs: spans stay within the
		// runs, bounded, and reading them never panics.
		for _, e := range pm.Entries {
			for _, start := range []uint64{e.Vaddr, e.Vaddr + 8, e.Vaddr + e.NrPages*pageSize - 1} {
				for _, end := range []uint64{start + 1, start + 100, start + 1<<40, 1<<64 - 1} {
					var total int64
					for _, s := range spans(pm, start, end) {
						if s.n <= 0 || s.off < 0 {
							t.Fatalf("span %+v for [%x,%x)", s, start, end)
						}
						total += s.n
					}
					if total > maxArgBytes {
						t.Fatalf("%d bytes for [%x,%x)", total, start, end)
					}
					readStrings(bytes.NewReader(make([]byte, 64)), pm, start, end)
				}
			}
		}
	})
}

// FuzzAnyValue fuzzes the protobuf Any of containerd's checkpoint config.
func FuzzAnyValue(f *testing.F) {
	f.Add([]byte("\x0a\x03abc\x12\x02{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := anyValue(b)
		if err == nil && len(v) > len(b) {
			t.Fatal("value longer than input")
		}
	})
}

// FuzzOpenArchive opens arbitrary bytes as a checkpoint archive, through
// the whole decoding path (archive index, detection, every decoder).
func FuzzOpenArchive(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := evidence.NewArchive(context.Background(), bytes.NewReader(b), int64(len(b)), "fuzz.tar", archiveOptions(&Options{TempDir: t.TempDir()}))
		if err != nil {
			return
		}
		defer a.Close()
		cp, err := Open(ctx, a, "", nil)
		if err != nil {
			return
		}
		for _, p := range cp.Processes {
			cp.Pagemap(p.PID)
		}
	})
}
