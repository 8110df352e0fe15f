package ext4

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// The fuzz targets start from small real images (testdata/ext4/seeds, made
// by make-seeds.sh with mkfs, a kernel mount and debugfs) and let the
// fuzzer rewrite one structure of them at a time: the first blocks
// (superblock, descriptors, bitmaps, inode tables), one inode record, one
// directory block, the xattr block, an extent tree leaf, a journal block.
// Whatever the bytes, the reader must not panic, hang or allocate without
// bound; errors are expected. Inputs are large (whole blocks), so run them
// with a bounded minimization, or the fuzzer spends its time minimizing:
//
//	go test ./evidence/ext4 -run '^$' -fuzz '^FuzzDir$' -fuzztime 60s -fuzzminimizetime 50x

var seedNames = []string{"ext4", "ext3", "inline"}

var seedCache = map[string][]byte{}

func seedImage(t testing.TB, name string) []byte {
	t.Helper()
	if b, ok := seedCache[name]; ok {
		return b
	}
	f, err := os.Open(filepath.Join("..", "..", "testdata", "ext4", "seeds", name+".img.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	seedCache[name] = b
	return b
}

func pickSeed(t testing.TB, which uint8) (string, []byte) {
	name := seedNames[int(which)%len(seedNames)]
	return name, append([]byte(nil), seedImage(t, name)...)
}

func openBytes(t testing.TB, img []byte) (*FS, error) {
	return Open(bytes.NewReader(img), int64(len(img)), nil)
}

// exercise reads everything a caller could ask of an image, within
// budgets, and checks the few promises that hold whatever the input.
func exercise(t *testing.T, img []byte) {
	f, err := openBytes(t, img)
	if err != nil {
		var fe *vfs.FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("Open failed without a FormatError: %v", err)
		}
		return
	}
	budget := 4000
	var walk func(name string, depth int)
	walk = func(name string, depth int) {
		if depth > 24 || budget <= 0 {
			return
		}
		ents, err := f.ReadDir(name)
		if err != nil {
			return
		}
		// The htree lookup, which listings never use.
		if in, _, err := f.resolve("fuzz", name); err == nil && in.has(flagIndex) {
			for _, n := range ents[:min(len(ents), 3)] {
				f.dxLookup(in, n.Name[strings.LastIndexByte(n.Name, '/')+1:])
			}
			f.dxLookup(in, "no-such-name")
		}
		for _, st := range ents {
			budget--
			if budget <= 0 {
				return
			}
			if _, err := f.Lstat(st.Name); err != nil {
				continue
			}
			f.Xattrs(st.Name)
			switch {
			case st.Mode.IsDir():
				walk(st.Name, depth+1)
			case st.Mode&os.ModeSymlink != 0:
				f.Readlink(st.Name)
			case st.Mode.IsRegular():
				readSome(t, f, st.Name)
			}
		}
	}
	walk(".", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ds, err := f.Deleted(ctx, ".")
	if err == nil {
		for i, d := range ds {
			if i > 50 {
				break
			}
			if d.Open != nil {
				if ra, err := d.Open(); err == nil {
					buf := make([]byte, 64<<10)
					for off := int64(0); off < min(d.Size, 1<<20); off += int64(len(buf)) {
						if _, err := ra.ReadAt(buf, off); err != nil {
							break
						}
					}
				}
			}
		}
	}
	f.Warnings()
	f.Info()
}

func readSome(t *testing.T, f *FS, name string) {
	fl, err := f.Open(name)
	if err != nil {
		return
	}
	defer fl.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for n < 1<<20 {
		c, err := fl.Read(buf)
		n += int64(c)
		if err != nil {
			break
		}
		if c == 0 {
			t.Fatalf("%s: Read returned 0 bytes and no error", name)
		}
	}
}

// locate returns the byte offset of a structure of a seed image.
type locator func(f *FS) (int64, bool)

func inodeAt(path string) locator {
	return func(f *FS) (int64, bool) {
		in, _, err := f.resolve("fuzz", path)
		if err != nil {
			return 0, false
		}
		return in.off, true
	}
}

// blockOf returns the offset of logical block n of path's content.
func blockOf(path string, n uint64) locator {
	return func(f *FS) (int64, bool) {
		in, _, err := f.resolve("fuzz", path)
		if err != nil || in.has(flagInlineData) {
			return 0, false
		}
		r, err := f.mapBlock(in, n, nil)
		if err != nil || r.phys == 0 {
			return 0, false
		}
		return int64(r.phys) * f.bs, true
	}
}

func xattrBlockOf(path string) locator {
	return func(f *FS) (int64, bool) {
		in, _, err := f.resolve("fuzz", path)
		if err != nil || in.fileACL == 0 {
			return 0, false
		}
		return int64(in.fileACL) * f.bs, true
	}
}

// extentLeafOf returns the offset of the first extent tree leaf of a file
// whose tree has depth 1.
func extentLeafOf(path string) locator {
	return func(f *FS) (int64, bool) {
		in, _, err := f.resolve("fuzz", path)
		if err != nil || !in.has(flagExtents) {
			return 0, false
		}
		h, ok := parseExtentHeader(in.block[:])
		if !ok || h.depth == 0 || h.entries == 0 {
			return 0, false
		}
		e := in.block[12:]
		return int64(uint64(le.Uint16(e[8:]))<<32|uint64(le.Uint32(e[4:]))) * f.bs, true
	}
}

func journalBlock(n uint32) locator {
	return func(f *FS) (int64, bool) {
		j, err := f.openJournal()
		if err != nil {
			return 0, false
		}
		p, err := j.physOf(n)
		if err != nil {
			return 0, false
		}
		return int64(p) * f.bs, true
	}
}

// patchTarget overwrites the structure target (of locs) in a seed image
// with data (at most size bytes) and exercises the result.
func patchTarget(t *testing.T, which, target uint8, data []byte, locs []locator, size int) {
	_, img := pickSeed(t, which)
	f, err := openBytes(t, img)
	if err != nil {
		t.Fatal(err)
	}
	off, ok := locs[int(target)%len(locs)](f)
	if !ok {
		return
	}
	if len(data) > size {
		data = data[:size]
	}
	copy(img[off:], data)
	exercise(t, img)
}

// seedTargets adds, for every seed image and target, the target's real
// bytes as a seed.
func seedTargets(f *testing.F, locs []locator, size int) {
	for w := range seedNames {
		_, img := pickSeed(f, uint8(w))
		fs, err := openBytes(f, img)
		if err != nil {
			f.Fatal(err)
		}
		for i, l := range locs {
			if off, ok := l(fs); ok {
				f.Add(uint8(w), uint8(i), append([]byte(nil), img[off:min(off+int64(size), int64(len(img)))]...))
			}
		}
	}
}

func FuzzOpen(f *testing.F) {
	for w := range seedNames {
		_, img := pickSeed(f, uint8(w))
		f.Add(uint8(w), img[:64<<10])
	}
	f.Fuzz(func(t *testing.T, which uint8, head []byte) {
		_, img := pickSeed(t, which)
		copy(img, head[:min(len(head), 256<<10)])
		exercise(t, img)
	})
}

var inodeTargets = []locator{
	inodeAt("dir/frag"), inodeAt("dir/medium"), inodeAt("dir/small"), inodeAt("dir/slow-link"),
	inodeAt("dir/fast-link"), inodeAt("dir/blk"), inodeAt("htree"), inodeAt("del"), inodeAt("dir/sparse"), inodeAt("."),
}

func FuzzInode(f *testing.F) {
	seedTargets(f, inodeTargets, 256)
	f.Fuzz(func(t *testing.T, which, target uint8, raw []byte) {
		patchTarget(t, which, target, raw, inodeTargets, 256)
	})
}

var dirTargets = []locator{blockOf("del", 0), blockOf("htree", 0), blockOf("htree", 1), blockOf("dir", 0), blockOf(".", 0)}

func FuzzDir(f *testing.F) {
	seedTargets(f, dirTargets, 1024)
	f.Fuzz(func(t *testing.T, which, target uint8, block []byte) {
		patchTarget(t, which, target, block, dirTargets, 1024)
	})
}

var xattrTargets = []locator{xattrBlockOf("dir/medium")}

func FuzzXattr(f *testing.F) {
	seedTargets(f, xattrTargets, 1024)
	f.Fuzz(func(t *testing.T, which, target uint8, block []byte) {
		patchTarget(t, which, target, block, xattrTargets, 1024)
	})
}

var extentTargets = []locator{extentLeafOf("dir/frag"), blockOf("dir/medium", 12), blockOf("dir/sparse", 12)}

func FuzzExtent(f *testing.F) {
	seedTargets(f, extentTargets, 1024)
	f.Fuzz(func(t *testing.T, which, target uint8, block []byte) {
		patchTarget(t, which, target, block, extentTargets, 1024)
	})
}

var journalTargets = []locator{journalBlock(0), journalBlock(1), journalBlock(2), journalBlock(3), journalBlock(4), journalBlock(5)}

// FuzzJournal rewrites one journal block; with replay set, the superblock
// also says the journal needs recovery from its first log block, so that
// Open replays it.
func FuzzJournal(f *testing.F) {
	for w := range seedNames {
		_, img := pickSeed(f, uint8(w))
		fs, err := openBytes(f, img)
		if err != nil {
			f.Fatal(err)
		}
		for i, l := range journalTargets {
			if off, ok := l(fs); ok {
				f.Add(uint8(w), uint8(i), i%2 == 0, append([]byte(nil), img[off:off+1024]...))
			}
		}
	}
	f.Fuzz(func(t *testing.T, which, target uint8, replay bool, block []byte) {
		_, img := pickSeed(t, which)
		fs, err := openBytes(t, img)
		if err != nil {
			t.Fatal(err)
		}
		off, ok := journalTargets[int(target)%len(journalTargets)](fs)
		if !ok {
			return
		}
		if replay {
			jsb, _ := journalTargets[0](fs)
			le.PutUint32(img[superblockOffset+sbFeatureIncompat:], fs.sb.incompat|incompatRecover)
			be.PutUint32(img[jsb+0x1C:], 1)
		}
		copy(img[off:], block[:min(len(block), 1024)])
		exercise(t, img)
	})
}

// TestSeedsExercise runs the fuzz body over the unmodified seeds: they
// open, and a walk finds their content.
func TestSeedsExercise(t *testing.T) {
	for w, name := range seedNames {
		_, img := pickSeed(t, uint8(w))
		f, err := openBytes(t, img)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := f.Lstat("dir/frag"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		exercise(t, img)
		ds, err := f.Deleted(context.Background(), "del")
		if err != nil || len(ds) != 2 {
			t.Errorf("%s: deleted in del: %d %v", name, len(ds), err)
		}
	}
}
