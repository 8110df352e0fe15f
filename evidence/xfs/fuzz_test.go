package xfs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// The fuzz targets splice their input into a real image: the fuzz image
// of testdata/xfs/make.sh, committed as testdata/fuzzbase.img.zst so that
// seeds and crashers stay valid. Each target replaces one kind of
// structure (its seeds are that structure's real bytes, picked by the
// first input byte) and then does everything a caller can do.

var fuzzBase struct {
	once sync.Once
	img  []byte
	err  error
}

func loadFuzzBase(tb testing.TB) []byte {
	tb.Helper()
	containPanics = false // the fuzzers must see panics
	fuzzBase.once.Do(func() {
		fh, err := os.Open(filepath.Join("testdata", "fuzzbase.img.zst"))
		if err != nil {
			fuzzBase.err = err
			return
		}
		defer fh.Close()
		d, err := zstd.NewReader(fh)
		if err != nil {
			fuzzBase.err = err
			return
		}
		defer d.Close()
		fuzzBase.img, fuzzBase.err = io.ReadAll(d)
	})
	if fuzzBase.err != nil {
		tb.Fatal(fuzzBase.err)
	}
	return fuzzBase.img
}

// patched is the base image with patch laid over it at off.
type patched struct {
	base  []byte
	off   int64
	patch []byte
}

func (p *patched) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(p.base)) {
		return 0, io.EOF
	}
	n := copy(b, p.base[off:])
	lo, hi := max(off, p.off), min(off+int64(n), p.off+int64(len(p.patch)))
	if lo < hi {
		copy(b[lo-off:hi-off], p.patch[lo-p.off:hi-p.off])
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func openPatched(base []byte, off int64, patch []byte) (*FS, error) {
	p := &patched{base: base, off: off, patch: patch}
	return Open(p, int64(len(base)), &Options{Name: "fuzz", CacheBytes: 4 << 20, InodeCache: 1024})
}

// exercise walks below name and does every Source operation on what it
// finds (on the first 20 entries of each directory, and on every
// subdirectory), reading at most 1 MiB of each file, with bounded totals.
func exercise(f *FS, name string, budget int) {
	var walk func(string)
	walk = func(dir string) {
		ents, _ := f.ReadDir(dir)
		for i, st := range ents {
			if budget--; budget < 0 {
				return
			}
			if i >= 20 && !st.Mode.IsDir() {
				continue
			}
			f.Lstat(st.Name)
			f.Xattrs(st.Name)
			switch {
			case st.Mode.IsDir():
				walk(st.Name)
			case st.Mode&0o170000 == 0 && st.Mode.Type() == 0:
				if fl, err := f.Open(st.Name); err == nil {
					io.Copy(io.Discard, io.LimitReader(fl, 1<<20))
					fl.ReadAt(make([]byte, 4096), st.Size/2)
				}
			default:
				f.Readlink(st.Name)
			}
		}
	}
	if st, err := f.Lstat(name); err == nil {
		f.Xattrs(name)
		if st.Mode.IsDir() {
			walk(name)
		} else if fl, err := f.Open(name); err == nil {
			io.Copy(io.Discard, io.LimitReader(fl, 1<<20))
		} else {
			f.Readlink(name)
		}
	}
}

// target is a structure of the base image the fuzzers replace.
type target struct {
	name string // path whose structure it is
	pos  int64
	n    int
}

type targetSet struct {
	once  sync.Once
	inode []target
	dir   []target
	attr  []target
	bmbt  []target
	ag    []target
	log   []target
}

var fuzzTargets targetSet

// targets finds, with the reader itself on the unpatched base, where the
// structures the fuzzers replace are.
func targets(tb testing.TB) *targetSet {
	base := loadFuzzBase(tb)
	t := &fuzzTargets
	t.once.Do(func() {
		f, err := openPatched(base, 0, nil)
		if err != nil {
			tb.Fatal(err)
		}
		ino := func(p string) *inode {
			_, ip, err := f.resolve("fuzz", p)
			if err != nil {
				tb.Fatal(err)
			}
			return ip
		}
		for _, p := range []string{".", "short", "block", "leaf", "node", "fragmented", "tiny", "short-link",
			"long-link", "whiteout", "attr-leaf", "attr-node"} {
			ip := ino(p)
			t.inode = append(t.inode, target{p, ip.pos, f.inodeSize})
		}
		blk := func(list *[]target, p string, attr bool, lblks ...uint64) {
			ip := ino(p)
			fk, err := f.newFork(ip, attr)
			if err != nil {
				tb.Fatal(err)
			}
			n := uint64(1)
			if !attr {
				n = f.dirFSBs
			}
			for _, lb := range lblks {
				_, pos, err := fk.readBlocks(lb, n, -1)
				if err != nil {
					tb.Fatalf("%s block %d: %v", p, lb, err)
				}
				*list = append(*list, target{p, pos, int(n) << f.blockLog})
			}
		}
		blk(&t.dir, "block", false, 0)
		blk(&t.dir, "leaf", false, 0, f.leafFSB)
		blk(&t.dir, "node", false, 0, 1, f.leafFSB, f.leafFSB+1)
		blk(&t.attr, "attr-leaf", true, 0, 1)
		blk(&t.attr, "attr-node", true, 0, 1, 2)
		ip := ino("fragmented")
		fk, _ := f.dataFork(ip)
		_, ptrs := nodeKeyPtr(fk.root, 4, int(be.Uint16(fk.root[2:])))
		for i := 0; i < len(ptrs)/8; i++ {
			pos, _ := f.fsbPos(be.Uint64(ptrs[i*8:]))
			t.bmbt = append(t.bmbt, target{"fragmented", pos, int(f.blockSize)})
		}
		for agno := uint64(0); agno < f.agCount; agno++ {
			agi, _, _ := f.agHeader(agno, 2, agiMagic, agiCRC)
			agf, _, _ := f.agHeader(agno, 1, agfMagic, agfCRC)
			for _, b := range []uint32{be.Uint32(agi[agiRoot:]), be.Uint32(agf[agfRoots:])} {
				pos, _ := f.agPos(agno, uint64(b))
				t.ag = append(t.ag, target{".", pos, int(f.blockSize)})
			}
			pos, _ := f.agPos(agno, 0)
			t.ag = append(t.ag, target{".", pos, 4 * f.sectSize})
		}
		lpos, _ := f.fsbPos(f.logStart)
		for _, off := range []int64{0, 32 << 10, 256 << 10} {
			t.log = append(t.log, target{".", lpos + off, 64 << 10})
		}
	})
	return t
}

// watchdog turns a hang into a crash the fuzzer reports (each input takes
// milliseconds; the bound is generous for a loaded machine).
func watchdog() func() {
	done := make(chan bool)
	go func() {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			panic("fuzz input ran for more than 20 s")
		}
	}()
	return func() { close(done) }
}

// fuzzSplice runs one fuzz input: byte 0 picks the target, the rest
// replaces it.
func fuzzSplice(t *testing.T, list []target, data []byte, run func(f *FS, tg target)) {
	if len(data) < 1 || len(list) == 0 {
		return
	}
	tg := list[int(data[0])%len(list)]
	patch := data[1:]
	if len(patch) > tg.n {
		patch = patch[:tg.n]
	}
	f, err := openPatched(loadFuzzBase(t), tg.pos, patch)
	if err != nil {
		return
	}
	defer watchdog()()
	run(f, tg)
}

func seedTargets(f *testing.F, list []target) {
	base := loadFuzzBase(f)
	for i, tg := range list {
		f.Add(append([]byte{byte(i)}, base[tg.pos:tg.pos+int64(tg.n)]...))
	}
}

// FuzzOpen replaces the superblock (and the AG 0 headers after it).
func FuzzOpen(f *testing.F) {
	base := loadFuzzBase(f)
	f.Add(append([]byte(nil), base[:2048]...))
	f.Add(append([]byte(nil), base[:512]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			data = data[:4096]
		}
		fs, err := openPatched(loadFuzzBase(t), 0, data)
		if err != nil {
			var fe *vfs.FormatError
			if !asFormatError(err, &fe) {
				t.Fatalf("Open error is not a FormatError: %v", err)
			}
			return
		}
		fs.Info()
		defer watchdog()()
		exercise(fs, ".", 3000)
	})
}

func asFormatError(err error, fe **vfs.FormatError) bool {
	e, ok := err.(*vfs.FormatError)
	*fe = e
	return ok
}

// FuzzDinode replaces one inode (directories of each format, a btree
// file, symlinks, a whiteout, files with attribute leaves and nodes).
func FuzzDinode(f *testing.F) {
	seedTargets(f, targets(f).inode)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSplice(t, targets(t).inode, data, func(fs *FS, tg target) { exercise(fs, tg.name, 3000) })
	})
}

// FuzzDirBlock replaces a directory block: a single-block directory, the
// data and leaf blocks of a leaf directory, the data, node and leaf
// blocks of a node directory.
func FuzzDirBlock(f *testing.F) {
	seedTargets(f, targets(f).dir)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSplice(t, targets(t).dir, data, func(fs *FS, tg target) {
			exercise(fs, tg.name, 3000)
			fs.Lstat(tg.name + "/n700")
			fs.Lstat(tg.name + "/leaf-entry-number-7")
			r := &recovery{f: fs, ctx: context.Background(), dirs: map[uint64]string{}, byIno: map[uint64]*vfs.Deleted{}}
			if _, ip, err := fs.resolve("fuzz", tg.name); err == nil {
				r.dirGaps(tg.name, ip)
			}
		})
	})
}

// FuzzAttr replaces an attribute block: leaves, a node, remote values.
func FuzzAttr(f *testing.F) {
	seedTargets(f, targets(f).attr)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSplice(t, targets(t).attr, data, func(fs *FS, tg target) { fs.Xattrs(tg.name) })
	})
}

// FuzzBmbt replaces a block of a btree block map.
func FuzzBmbt(f *testing.F) {
	seedTargets(f, targets(f).bmbt)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSplice(t, targets(t).bmbt, data, func(fs *FS, tg target) {
			if fl, err := fs.Open(tg.name); err == nil {
				io.Copy(io.Discard, io.LimitReader(fl, 8<<20))
				fl.ReadAt(make([]byte, 100000), 1<<20)
			}
		})
	})
}

// FuzzAGBtree replaces AG headers and the roots of the inode and free
// space btrees, and lists deleted files.
func FuzzAGBtree(f *testing.F) {
	seedTargets(f, targets(f).ag)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSplice(t, targets(t).ag, data, func(fs *FS, tg target) {
			ds, _ := fs.Deleted(context.Background(), ".")
			readDeleted(ds)
		})
	})
}

// FuzzLog replaces part of the log, and lists deleted files.
func FuzzLog(f *testing.F) {
	seedTargets(f, targets(f).log)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSplice(t, targets(t).log, data, func(fs *FS, tg target) {
			ds, _ := fs.Deleted(context.Background(), ".")
			readDeleted(ds)
		})
	})
}

func readDeleted(ds []vfs.Deleted) {
	for _, d := range ds {
		if d.Open == nil {
			continue
		}
		if r, err := d.Open(); err == nil {
			io.Copy(io.Discard, io.NewSectionReader(r, 0, min(d.Size, 4<<20)))
		}
	}
}

// TestFuzzBase reads the committed fuzz base image without root: its tree
// as make.sh made it, and its deleted file.
func TestFuzzBase(t *testing.T) {
	f, err := openPatched(loadFuzzBase(t), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, files := 0, 0
	var walk func(string)
	walk = func(dir string) {
		ents, err := f.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range ents {
			n++
			if st.Mode.IsRegular() {
				files++
			}
			if st.Mode.IsDir() {
				walk(st.Name)
			}
		}
	}
	walk(".")
	if n != 1552 || files != 1545 {
		t.Errorf("%d entries, %d files", n, files)
	}
	x, err := f.Xattrs("attr-node")
	if err != nil || len(x) != 300 || string(x["user.n300"]) != "deadnode xfs fixture node300 deadnode xf" {
		t.Errorf("attr-node: %d xattrs, %v, n300 %q", len(x), err, x["user.n300"])
	}
	ds, err := f.Deleted(context.Background(), ".")
	if err != nil || len(ds) != 1 || ds[0].Path != "block/gone" || !ds[0].Complete || ds[0].Size != 20000 {
		t.Fatalf("deleted: %v %+v", err, ds)
	}
	r, _ := ds[0].Open()
	b := make([]byte, 20000)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	unit := []byte("deadnode xfs fixture gone ")
	if !bytes.Equal(b, bytes.Repeat(unit, 20000/len(unit)+1)[:20000]) {
		t.Errorf("recovered content differs: %q...", b[:64])
	}
}
