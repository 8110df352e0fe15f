package memory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
)

// FileOpener opens a file of the container's filesystem by its absolute
// path (as CRIU recorded it in files.img) to fill the pages of private file
// mappings that were not dumped. It returns fs.ErrNotExist when the file is
// not known.
type FileOpener func(path string) (evidence.File, error)

// Options tune Open.
type Options struct {
	// Files fills unmodified file-backed pages from the container's own
	// filesystem (the lead wires the node's merged overlay view here). It
	// is asked after the checkpoint's rootfs-diff.tar.
	Files FileOpener
	// FS is an alternative to Files: paths are looked up without their
	// leading slash.
	FS fs.FS
	// NoRootfsDiff stops the automatic use of the archive's rootfs-diff.tar.
	NoRootfsDiff bool
	// ParentOutside allows the "parent" link of an incremental dump to lead
	// out of the evidence source when the source is a host directory (the
	// usual case of a CRIU images dir opened on its own, whose parent is a
	// sibling directory "../pre-dump"). Only relative links are followed.
	ParentOutside bool
}

// Reader gives the address spaces of a checkpoint's processes. It keeps
// the pages images it opened; Close it (the Checkpoint stays the caller's).
type Reader struct {
	CP  *checkpoint.Checkpoint
	src evidence.Source
	dir string
	opt Options

	top     *level   // the checkpoint's own images
	parents []*level // parents[i] is the i+1th ancestor
	parErr  error

	shmem      map[uint64]*shmemObj
	memfdShmid map[uint32]uint64 // memfd file id -> shmid
	memfdErr   error

	diff     *evidence.Archive
	diffFile evidence.File
	diffDone bool

	files   map[string]*fileBacking
	closers []io.Closer
}

// level is one directory of images of the dump chain.
type level struct {
	stream bool // pages images not kept by a compressed archive are streamed
	src    evidence.Source
	dir    string
	label  string
	pms    map[uint32]*pmIndex
	pages  map[uint32]*pagesFile
}

type pmIndex struct {
	pm  *checkpoint.Pagemap
	err error
}

type pagesFile struct {
	f      evidence.File
	stream *streamPages // the pages are read from the archive's stream
	size   int64
	name   string
	err    error
	check  bool
}

// ra is what the ranges of this pages image read from.
func (p *pagesFile) ra() io.ReaderAt {
	if p.f != nil {
		return p.f
	}
	if p.stream != nil {
		return p.stream
	}
	return nil
}

type fileBacking struct {
	f    evidence.File
	size int64
	err  error
}

// Open prepares cp's memory for reading. The pages of compressed archives
// need cp opened with checkpoint.Options{Pages: true} (OpenFile does it).
func Open(cp *checkpoint.Checkpoint, opt *Options) (*Reader, error) {
	src, dir := cp.ImagesSource()
	if src == nil {
		return nil, errors.New("memory: checkpoint has no images source")
	}
	r := &Reader{CP: cp, src: src, dir: dir, shmem: map[uint64]*shmemObj{}, files: map[string]*fileBacking{}}
	if opt != nil {
		r.opt = *opt
	}
	r.top = newLevel(src, dir)
	return r, nil
}

// OpenFile opens a checkpoint archive or images directory on the host
// (checkpoint.OpenFile with the pages kept) and its memory; parents of a
// host images directory may be siblings of it. Close the Reader to close
// both.
func OpenFile(hostPath string, opt *Options) (*Reader, error) {
	cp, err := checkpoint.OpenFile(hostPath, &checkpoint.Options{Pages: true})
	if err != nil {
		return nil, err
	}
	o := Options{ParentOutside: true}
	if opt != nil {
		o = *opt
		o.ParentOutside = true
	}
	r, err := Open(cp, &o)
	if err != nil {
		cp.Close()
		return nil, err
	}
	r.closers = append(r.closers, cp)
	return r, nil
}

func newLevel(src evidence.Source, dir string) *level {
	return &level{src: src, dir: dir, label: src.String() + ":" + dir, pms: map[uint32]*pmIndex{}, pages: map[uint32]*pagesFile{}}
}

func (lv *level) path(name string) string {
	if lv.dir == "" || lv.dir == "." {
		return name
	}
	return path.Join(lv.dir, name)
}

func (lv *level) name(name string) string { return lv.src.String() + ":" + lv.path(name) }

// Close releases the files the Reader opened.
func (r *Reader) Close() error {
	var errs []error
	for _, pl := range append([]*level{r.top}, r.parents...) {
		for _, p := range pl.pages {
			if p.f != nil {
				errs = append(errs, p.f.Close())
			}
		}
	}
	for _, fb := range r.files {
		if fb.f != nil {
			errs = append(errs, fb.f.Close())
		}
	}
	if r.diff != nil {
		errs = append(errs, r.diff.Close())
	}
	if r.diffFile != nil {
		errs = append(errs, r.diffFile.Close())
	}
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i].Close())
	}
	r.closers = nil
	return errors.Join(errs...)
}

// pagemap decodes (once) and sorts pagemap-<pid>.img of a level.
func (lv *level) pagemap(pid uint32) (*checkpoint.Pagemap, error) {
	if ix, ok := lv.pms[pid]; ok {
		return ix.pm, ix.err
	}
	pm, err := decodePagemapFile(lv, fmt.Sprintf(imgPagemapFmt, pid))
	if pm != nil {
		pm.PID = pid
	}
	lv.pms[pid] = &pmIndex{pm, err}
	return pm, err
}

func decodePagemapFile(lv *level, name string) (*checkpoint.Pagemap, error) {
	f, err := lv.src.Open(lv.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ir, err := checkpoint.NewImageReader(f, f.Size(), lv.name(name))
	if err != nil {
		return nil, err
	}
	pm, err := checkpoint.DecodePagemap(ir)
	if pm == nil {
		return nil, err
	}
	if err2 := sortEntries(pm, lv.name(name)); err == nil {
		err = err2
	}
	return pm, err
}

// sortEntries orders the runs by address and cuts overlaps (CRIU writes
// them sorted and disjoint; a hostile image may not), keeping the earlier
// run's pages.
func sortEntries(pm *checkpoint.Pagemap, label string) error {
	e := pm.Entries
	sorted := sort.SliceIsSorted(e, func(i, j int) bool { return e[i].Vaddr < e[j].Vaddr })
	if !sorted {
		sort.SliceStable(e, func(i, j int) bool { return e[i].Vaddr < e[j].Vaddr })
	}
	var errs []error
	if !sorted {
		errs = append(errs, &evidence.FormatError{File: label, Offset: -1, Msg: "pagemap runs out of address order (sorted)"})
	}
	overlap := false
	out := e[:0]
	var prevEnd uint64
	for i, x := range e {
		if x.NrPages == 0 {
			continue
		}
		end := runEnd(x)
		if i > 0 && len(out) > 0 && x.Vaddr < prevEnd {
			if !overlap {
				overlap = true
				errs = append(errs, &evidence.FormatError{File: label, Offset: -1, Msg: fmt.Sprintf("pagemap runs overlap at 0x%x; the later run is cut", x.Vaddr)})
			}
			if end <= prevEnd {
				continue
			}
			skip := (prevEnd - x.Vaddr) / pageSize
			x.Vaddr = prevEnd
			x.NrPages -= skip
			if x.Offset >= 0 {
				x.Offset += int64(skip * pageSize)
			}
		}
		out = append(out, x)
		prevEnd = end
	}
	pm.Entries = out
	return errors.Join(errs...)
}

// runEnd is the end address of a run, saturated at the top of the space.
func runEnd(e checkpoint.PagemapEntry) uint64 {
	end := e.Vaddr + e.NrPages*pageSize
	if end < e.Vaddr || e.NrPages >= 1<<52 {
		return ^uint64(0) &^ (pageSize - 1)
	}
	return end
}

// pagesImage opens pages-<id>.img of a level once and checks that it holds
// what the pagemap says: a shorter file is a truncated image, or one whose
// pages were compressed, which this package does not read.
func (lv *level) pagesImage(id uint32, need int64) *pagesFile {
	p := lv.pages[id]
	if p == nil {
		name := fmt.Sprintf(imgPagesFmt, id)
		p = &pagesFile{name: lv.name(name)}
		f, err := lv.src.Open(lv.path(name))
		switch {
		case err == nil:
			p.f, p.size = f, f.Size()
		case lv.stream && errors.Is(err, evidence.ErrNotRetained):
			if st, err := lv.src.Lstat(lv.path(name)); err == nil {
				p.stream, p.size = &streamPages{member: lv.path(name), name: p.name}, st.Size
			} else {
				p.err = err
			}
		default:
			p.err = err
		}
		lv.pages[id] = p
	}
	if p.err == nil && need > p.size && !p.check {
		p.check = true
		kind := "truncated"
		if p.f == nil {
			// streamed: the magic is not at hand
		} else if c := evidence.DetectCompression(p.f); c != evidence.CompressionNone {
			kind = fmt.Sprintf("compressed (%v): compressed pages images are not supported", c)
		} else if p.size > 4 {
			var m [4]byte
			if _, err := p.f.ReadAt(m[:], 0); err == nil && string(m[:]) == "\x04\x22\x4d\x18" {
				kind = "compressed (lz4): compressed pages images are not supported"
			}
		}
		p.err = &evidence.FormatError{File: p.name, Offset: p.size, Msg: fmt.Sprintf("holds %d bytes but the pagemap needs %d: %s", p.size, need, kind)}
	}
	return p
}

// need is the size of the pages image the present runs of pm require.
func need(pm *checkpoint.Pagemap) int64 {
	var n int64
	for _, e := range pm.Entries {
		if e.Flags&checkpoint.PagePresent != 0 && e.Offset >= 0 {
			n = max(n, e.Offset+int64(e.NrPages*pageSize))
		}
	}
	return n
}

// parent returns the images of the depth-th ancestor (1 = parent).
func (r *Reader) parent(depth int) (*level, error) {
	if depth > maxParentDepth {
		return nil, fmt.Errorf("more than %d parent images (a loop?)", maxParentDepth)
	}
	for len(r.parents) < depth {
		if r.parErr != nil {
			return nil, r.parErr
		}
		child := r.top
		if n := len(r.parents); n > 0 {
			child = r.parents[n-1]
		}
		lv, err := r.openParent(child)
		if err != nil {
			r.parErr = err
			return nil, err
		}
		r.parents = append(r.parents, lv)
	}
	return r.parents[depth-1], nil
}

func (r *Reader) openParent(child *level) (*level, error) {
	link := child.path(parentLink)
	st, err := child.src.Lstat(link)
	if err != nil {
		return nil, fmt.Errorf("%s: no parent images: %w", child.name(parentLink), err)
	}
	if st.Mode.IsDir() {
		return newLevel(child.src, link), nil
	}
	if st.Mode&fs.ModeSymlink == 0 {
		return nil, fmt.Errorf("%s: not a directory or link", child.name(parentLink))
	}
	target, err := child.src.Readlink(link)
	if err != nil {
		return nil, err
	}
	lexical := path.Join(child.dir, target)
	if !strings.HasPrefix(target, "/") && lexical != ".." && !strings.HasPrefix(lexical, "../") {
		res, err := evidence.Resolve(child.src, link, true)
		if err != nil {
			return nil, err
		}
		if st, err := child.src.Lstat(res); err != nil || !st.Mode.IsDir() {
			return nil, fmt.Errorf("%s -> %s: parent images not in the evidence", child.name(parentLink), target)
		}
		return newLevel(child.src, res), nil
	}
	hp, ok := child.src.(evidence.HostPather)
	if !r.opt.ParentOutside || !ok || strings.HasPrefix(target, "/") {
		return nil, fmt.Errorf("%s -> %s: parent images outside the evidence", child.name(parentLink), target)
	}
	base, err := hp.HostPath(child.dir)
	if err != nil {
		return nil, err
	}
	d, err := evidence.OpenDir(filepath.Join(base, filepath.FromSlash(target)))
	if err != nil {
		return nil, fmt.Errorf("%s -> %s: %w", child.name(parentLink), target, err)
	}
	r.closers = append(r.closers, d)
	return newLevel(d, "."), nil
}

// file opens (once) a file of the container's filesystem for file-backed
// pages: the checkpoint's rootfs-diff.tar first, then Options.Files/FS.
func (r *Reader) file(p string) *fileBacking {
	if fb, ok := r.files[p]; ok {
		return fb
	}
	fb := &fileBacking{err: fs.ErrNotExist}
	r.files[p] = fb
	if p == "" || !strings.HasPrefix(p, "/") {
		return fb
	}
	name, err := evidence.Clean(p)
	if err != nil {
		fb.err = err
		return fb
	}
	if d := r.rootfsDiff(); d != nil {
		if res, err := evidence.Resolve(d, name, true); err == nil {
			if f, err := d.Open(res); err == nil {
				fb.f, fb.size, fb.err = f, f.Size(), nil
				return fb
			}
		}
	}
	if r.opt.Files != nil {
		if f, err := r.opt.Files(p); err == nil {
			fb.f, fb.size, fb.err = f, f.Size(), nil
			return fb
		} else {
			fb.err = err
		}
	}
	if r.opt.FS != nil {
		if f, err := r.opt.FS.Open(name); err == nil {
			if ra, ok := f.(interface {
				io.ReaderAt
				Stat() (fs.FileInfo, error)
			}); ok {
				if st, err := ra.Stat(); err == nil && st.Mode().IsRegular() {
					fb.f, fb.size, fb.err = &fsFile{f, ra}, st.Size(), nil
					return fb
				}
			}
			f.Close()
			fb.err = fmt.Errorf("%s: not a regular file with ReadAt in the FS", p)
		}
	}
	return fb
}

type fsFile struct {
	fs.File
	ra interface {
		io.ReaderAt
		Stat() (fs.FileInfo, error)
	}
}

func (f *fsFile) ReadAt(p []byte, off int64) (int, error) { return f.ra.ReadAt(p, off) }
func (f *fsFile) Size() int64 {
	st, err := f.ra.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// rootfsDiff indexes the checkpoint's rootfs-diff.tar (Podman, CRI-O,
// kubelet) in place, once.
func (r *Reader) rootfsDiff() *evidence.Archive {
	if r.diffDone {
		return r.diff
	}
	r.diffDone = true
	if r.opt.NoRootfsDiff {
		return nil
	}
	top := "."
	if r.dir != "." && r.dir != "" {
		top = path.Dir(r.dir)
	}
	name := path.Join(top, rootfsDiff)
	f, err := r.src.Open(name)
	if err != nil {
		return nil
	}
	a, err := evidence.NewArchive(context.TODO(), f, f.Size(), r.src.String()+":"+name, &evidence.ArchiveOptions{})
	if err != nil {
		f.Close()
		return nil
	}
	r.diff, r.diffFile = a, f
	return a
}
