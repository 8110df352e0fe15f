package xfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// baseInode resolves name on the unpatched fuzz base.
func baseInode(t *testing.T, name string) (*FS, *inode) {
	t.Helper()
	f, err := openPatched(loadFuzzBase(t), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, ip, err := f.resolve("test", name)
	if err != nil {
		t.Fatal(err)
	}
	return f, ip
}

// wantFormatError requires err to carry a FormatError naming structure
// (a substring of File) at offset off (-2: any).
func wantFormatError(t *testing.T, err error, structure string, off int64) {
	t.Helper()
	var fe *vfs.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a FormatError", err, err)
	}
	if !strings.Contains(fe.File, structure) || off != -2 && fe.Offset != off {
		t.Fatalf("FormatError %q at %d, want %q at %d", fe.File, fe.Offset, structure, off)
	}
}

func patchedWith(t *testing.T, off int64, patch []byte) *FS {
	t.Helper()
	f, err := openPatched(loadFuzzBase(t), off, patch)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestHostileSuperblock(t *testing.T) {
	base := loadFuzzBase(t)
	sb := func(edit func(b []byte)) error {
		b := append([]byte(nil), base[:512]...)
		edit(b)
		_, err := openPatched(base, 0, b)
		return err
	}
	cases := []struct {
		name string
		edit func([]byte)
		off  int64
		msg  string
	}{
		{"magic", func(b []byte) { b[0] = 'Y' }, 0, "no XFS superblock magic"},
		{"v4", func(b []byte) { be.PutUint16(b[sbVersionnum:], 0xb4a4) }, sbVersionnum, "version 4"},
		{"blocksize", func(b []byte) { be.PutUint32(b[sbBlocksize:], 3000) }, sbBlocksize, "bad block size"},
		{"agcount", func(b []byte) { be.PutUint32(b[sbAgcount:], 0) }, sbAgcount, "AG count"},
		{"dblocks", func(b []byte) { be.PutUint64(b[sbDblocks:], 1<<40) }, sbDblocks, "do not fit"},
		{"dirblklog", func(b []byte) { b[sbDirblklog] = 64 }, sbDirblklog, "directory block"},
		{"rootino", func(b []byte) { be.PutUint64(b[sbRootino:], 1<<50) }, sbRootino, "root inode"},
		{"incompat", func(b []byte) { be.PutUint32(b[sbFeatIncompat:], 1<<30) }, sbFeatIncompat, "unknown incompatible"},
	}
	for _, c := range cases {
		err := sb(c.edit)
		if err == nil {
			t.Errorf("%s: opened", c.name)
			continue
		}
		wantFormatError(t, err, "xfs superblock", c.off)
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.name, err, c.msg)
		}
	}
	if _, err := Open(strings.NewReader("short"), 5, nil); err == nil {
		t.Error("opened 5 bytes")
	}
	// A CRC mismatch is a warning, not a refusal.
	b := append([]byte(nil), base[:512]...)
	b[sbFname] = 'X'
	f, err := openPatched(base, 0, b)
	if err != nil || len(f.Warnings()) != 1 || !strings.Contains(f.Warnings()[0], "CRC mismatch") {
		t.Errorf("CRC mismatch: %v, warnings %q", err, f.Warnings())
	}
}

// An extent that points past the end of the filesystem is a FormatError
// at the extent record, and reads stop there.
func TestHostileExtentPastDevice(t *testing.T) {
	f0, ip := baseInode(t, "tiny")
	rec := ip.pos + dinodeV3Core
	e := decodeExtent(ip.dfork)
	past := e
	past.fsb = f0.agCount<<f0.agBlkLog | 5 // an AG past the last
	cross := e
	cross.fsb, cross.count = f0.agBlocks-1, 4 // runs over the end of AG 0
	for _, bad := range []extent{past, cross} {
		f := patchedWith(t, rec, encodeExtent(bad))
		_, err := f.Open("tiny")
		wantFormatError(t, err, "xfs data fork (inode ", rec)
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != "tiny" || pe.Op != "open" {
			t.Errorf("%v: not a PathError for tiny", err)
		}
	}
	// A device shorter than the filesystem: reads past its end fail.
	img := loadFuzzBase(t)
	fl, err := Open(&patched{base: img}, int64(len(img))/2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := fl.Warnings(); len(w) == 0 || !strings.Contains(w[0], "truncated image") {
		t.Errorf("warnings %q", w)
	}
	_, err = fl.ReadDir("node")
	if err == nil {
		_, err = fl.Open("fragmented")
		if err == nil {
			var x vfs.File
			x, _ = fl.Open("fragmented")
			_, err = io.Copy(io.Discard, x)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Errorf("reading past the device: %v", err)
	}
}

func encodeExtent(e extent) []byte {
	b := make([]byte, 16)
	l0 := e.off<<9 | e.fsb>>43
	if e.unwritten {
		l0 |= 1 << 63
	}
	be.PutUint64(b, l0)
	be.PutUint64(b[8:], e.fsb<<21|e.count)
	return b
}

// A bmbt whose root points twice at the same leaf is caught by the order
// of the keys and records: no loop, no duplicate data, an error.
func TestHostileBmbtLoop(t *testing.T) {
	_, ip := baseInode(t, "fragmented")
	root := append([]byte(nil), ip.dfork...)
	n := int(be.Uint16(root[2:]))
	if n < 2 {
		t.Fatalf("root with %d pointers", n)
	}
	maxrecs := (len(root) - 4) / 16
	copy(root[4+maxrecs*8+8:], root[4+maxrecs*8:4+maxrecs*8+8]) // ptr[1] = ptr[0]
	f := patchedWith(t, ip.pos+dinodeV3Core, root)
	fl, err := f.Open("fragmented")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, fl)
	wantFormatError(t, err, "data fork (inode", -2)
	fk, _ := f.dataFork(mustInode(t, f, "fragmented"))
	wantFormatError(t, fk.each(func(extent) error { return nil }), "data fork", -2)
}

func mustInode(t *testing.T, f *FS, name string) *inode {
	t.Helper()
	_, ip, err := f.resolve("test", name)
	if err != nil {
		t.Fatal(err)
	}
	return ip
}

// An attribute leaf chain that loops back is an error, not a hang.
func TestHostileAttrChainLoop(t *testing.T) {
	f0, ip := baseInode(t, "attr-node")
	fk, err := f0.attrFork(ip)
	if err != nil {
		t.Fatal(err)
	}
	// block 1 is the first leaf: make its forward sibling itself
	_, pos, err := fk.readBlocks(1, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	f := patchedWith(t, pos, []byte{0, 0, 0, 1})
	_, err = f.Xattrs("attr-node")
	wantFormatError(t, err, "attribute block (inode", -1)
	if !strings.Contains(err.Error(), "loops back") {
		t.Errorf("%v", err)
	}
}

// A directory that lists itself, or a directory whose ".." names another
// parent, is left out of the listing (with a warning), so a walk ends.
func TestHostileDirectoryCycle(t *testing.T) {
	f0, ip := baseInode(t, "short")
	// short holds one entry, "a"; point it at short itself and make
	// short its own parent
	sf := append([]byte(nil), ip.dfork[:ip.size]...)
	be.PutUint32(sf[2:], uint32(ip.ino)) // parent
	p := 6 + 3 + int(sf[6]) + 1
	be.PutUint32(sf[p:], uint32(ip.ino))
	f := patchedWith(t, ip.pos+dinodeV3Core, sf)
	ents, err := f.ReadDir("short")
	if len(ents) != 0 || err != nil || !strings.Contains(strings.Join(f.Warnings(), "\n"), "lstat short/a: ") ||
		!strings.Contains(strings.Join(f.Warnings(), "\n"), "left out of its directory") {
		t.Errorf("self-listing directory: %v, %v, warnings %q", ents, err, f.Warnings())
	}
	_ = f0
	// a walk of the whole tree ends
	n := 0
	var walk func(string)
	walk = func(d string) {
		es, _ := f.ReadDir(d)
		for _, e := range es {
			if n++; n > 10000 {
				t.Fatal("walk does not end")
			}
			if e.Mode.IsDir() {
				walk(e.Name)
			}
		}
	}
	walk(".")
}

// A symlink claiming more than XFS allows is refused.
func TestHostileSymlinkLength(t *testing.T) {
	_, ip := baseInode(t, "long-link")
	b := make([]byte, 8)
	be.PutUint64(b, 5000)
	f := patchedWith(t, ip.pos+diSize, b)
	_, err := f.Readlink("long-link")
	wantFormatError(t, err, "symlink (inode", ip.pos+diSize)
}

// Deleted on a corrupt log still answers, with what the rest says.
func TestHostileLog(t *testing.T) {
	f0, _ := baseInode(t, ".")
	pos, _ := f0.fsbPos(f0.logStart)
	junk := make([]byte, 256<<10)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	// make every sector look like a record header
	for i := 0; i < len(junk); i += 512 {
		be.PutUint32(junk[i:], logMagic)
	}
	f := patchedWith(t, pos, junk)
	ds, err := f.Deleted(context.Background(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Method == vfs.MethodJournal && d.Path != "block/gone" {
			t.Errorf("journal entry from junk: %+v", d)
		}
	}
}

// TestContain: a panic inside an exported method comes out as an error.
func TestContain(t *testing.T) {
	old := containPanics
	containPanics = true
	defer func() { containPanics = old }()
	err := func() (err error) {
		defer contain("xfs test", &err)
		var m map[string]int
		m["x"]++
		return nil
	}()
	wantFormatError(t, err, "xfs test", -1)
	if !strings.Contains(err.Error(), "internal error") {
		t.Error(err)
	}
}

// One damaged inode does not hide its siblings: the directory lists the
// ten others, and the warning names the entry left out.
func TestHostileDamagedEntryHidesNoSibling(t *testing.T) {
	_, ip := baseInode(t, "tiny")
	f := patchedWith(t, ip.pos, []byte("XX")) // the dinode's magic
	ents, err := f.ReadDir(".")
	if err != nil || len(ents) != 10 || ents[9].Name != "whiteout" {
		t.Fatalf("%d entries, %v", len(ents), err)
	}
	for _, e := range ents {
		if e.Name == "tiny" {
			t.Error("the damaged entry is listed")
		}
	}
	if w := strings.Join(f.Warnings(), "\n"); !strings.Contains(w, "lstat tiny: ") || !strings.Contains(w, "left out of its directory") {
		t.Errorf("warnings %q", w)
	}
}

// A leaf directory whose hash index is damaged is read once for all the
// lookups of its names, not scanned again for each (a walk of a large one
// was quadratic); every name still resolves to its inode.
func TestHostileDamagedHashIndexScannedOnce(t *testing.T) {
	clean, ip := baseInode(t, "node")
	want, err := clean.ReadDir("node")
	if err != nil || len(want) < 100 {
		t.Fatalf("%d entries in node, %v", len(want), err)
	}
	fk, err := clean.dataFork(ip)
	if err != nil {
		t.Fatal(err)
	}
	_, pos, err := fk.readBlocks(clean.leafFSB, clean.dirFSBs, 12)
	if err != nil {
		t.Fatal(err)
	}
	f := patchedWith(t, pos+8, []byte{0xde, 0xad}) // the leaf's magic
	for _, w := range want {
		got, err := f.Lstat(w.Name)
		if err != nil || got.Ino != w.Ino {
			t.Fatalf("%s: %+v, %v (want inode %d)", w.Name, got, err, w.Ino)
		}
	}
	if _, err := f.Lstat("node/no-such-name"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing name: %v", err)
	}
	if f.scanned.n != 1 {
		t.Errorf("the directory was read %d times for %d lookups", f.scanned.n, len(want)+1)
	}
	if w := strings.Join(f.Warnings(), "\n"); !strings.Contains(w, "scanning the directory's data blocks instead") {
		t.Errorf("warnings %q", w)
	}
}

// BenchmarkWalkDamagedHashIndex lists the leaf directory "node" of the
// fuzz base with its hash index damaged and looks up each of its names, as
// a walk does: every lookup goes without the index.
func BenchmarkWalkDamagedHashIndex(b *testing.B) {
	base := loadFuzzBase(b)
	clean, err := openPatched(base, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	_, ip, err := clean.resolve("bench", "node")
	if err != nil {
		b.Fatal(err)
	}
	fk, err := clean.dataFork(ip)
	if err != nil {
		b.Fatal(err)
	}
	_, pos, err := fk.readBlocks(clean.leafFSB, clean.dirFSBs, 12)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		f, err := openPatched(base, pos+8, []byte{0xde, 0xad})
		if err != nil {
			b.Fatal(err)
		}
		// as evidence.Walk does: list, then lstat each name
		ents, err := f.ReadDir("node")
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range ents {
			if _, err := f.Lstat(e.Name); err != nil {
				b.Fatal(err)
			}
		}
		n = len(ents)
	}
	b.ReportMetric(float64(n), "entries")
}

// Looking a name up by scanning a leaf directory's data blocks finds it:
// the blocks' iterator used the scan's own stop signal to end at the
// leaf space, and took the scan's "found" for its end, so that every
// lookup without the hash index answered "no such file".
func TestScanLookupFinds(t *testing.T) {
	f, ip := baseInode(t, "node")
	want, err := f.hashLookup(ip, []byte("n1"))
	if err != nil || want == 0 {
		t.Fatalf("hash lookup: %d %v", want, err)
	}
	if got, err := f.scanLookup(ip, "n1"); err != nil || got != want {
		t.Errorf("scan lookup: %d %v, want %d", got, err, want)
	}
	if _, err := f.scanLookup(ip, "no-such-name"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing name: %v", err)
	}
}

// A directory whose index and one data block are damaged cannot be kept
// whole: it is remembered as such (not read whole again for each lookup),
// and a name in a block before the damage is still found by a scan.
func TestHostileDamagedIndexAndBlock(t *testing.T) {
	clean, ip := baseInode(t, "node")
	fk, err := clean.dataFork(ip)
	if err != nil {
		t.Fatal(err)
	}
	_, leaf, err := fk.readBlocks(clean.leafFSB, clean.dirFSBs, 12)
	if err != nil {
		t.Fatal(err)
	}
	_, last, _, err := clean.dirDataBlock(ip, fk, uint64(ip.size)/uint64(clean.blockSize)-clean.dirFSBs)
	if err != nil {
		t.Fatal(err)
	}
	first, err := clean.hashLookup(ip, []byte("n1"))
	if err != nil {
		t.Fatal(err)
	}
	// the leaf's magic and the last data block's
	base := append([]byte(nil), loadFuzzBase(t)...)
	copy(base[last:], "XXXX")
	f, err := openPatched(base, leaf+8, []byte{0xde, 0xad})
	if err != nil {
		t.Fatal(err)
	}
	_, dip, err := f.resolve("test", "node")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, ok := f.scannedDir(dip); ok {
			t.Fatal("a directory with a damaged block was kept whole")
		}
	}
	if !f.scanned.refused || f.scanned.refusedIno != dip.ino || f.scanned.n != 0 {
		t.Errorf("scanned %+v", f.scanned)
	}
	if got, err := f.dirLookup(dip, "n1"); err != nil || got != first {
		t.Errorf("n1: %d %v, want %d", got, err, first)
	}
}
