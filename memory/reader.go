package memory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/ptr"
)

// FileOpener opens a file of the container's filesystem by its absolute
// path (as CRIU recorded it in files.img) to fill the pages of private file
// mappings that were not dumped. It returns fs.ErrNotExist when the file is
// not known.
type FileOpener func(path string) (evidence.File, error)

// Options tune Open and OpenPath. Nil means the defaults.
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
	// OpenPath sets it.
	ParentOutside bool
	// NoPageData tells OpenPath that the caller reads mappings and
	// provenance only, never the bytes of dumped pages: a compressed
	// archive then keeps (spills) no pages image, and the tasks' command
	// lines are not read. Reads of dumped bytes fail.
	NoPageData bool
	// TempDir is where OpenPath spills what a compressed archive keeps
	// (default os.TempDir()).
	TempDir string
}

// Reader gives the address spaces of a checkpoint's processes. It caches
// the images it opened (pagemaps, pages, parents, mapped files) and is not
// safe for concurrent use; the Spaces it builds are (see Space). Close it
// (a Checkpoint given to Open stays the caller's).
type Reader struct {
	CP  *checkpoint.Checkpoint
	opt Options

	top     *level   // the checkpoint's own images
	parents []*level // parents[i] is the i+1th ancestor
	parErr  error

	shmem map[uint64]*shmemObj
	files map[string]*fileBacking

	closers []io.Closer
}

// level is one directory of images of the dump chain.
type level struct {
	dir   *checkpoint.ImageDir
	pms   map[uint32]*pmIndex
	pages map[uint32]*pagesFile
}

type pmIndex struct {
	pm  *checkpoint.Pagemap
	err error
}

type pagesFile struct {
	f      evidence.File
	stream *streamPages // not kept by a compressed archive: only in its stream
	size   int64
	name   string
	img    *checkpoint.PagesImage
	err    error
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
// need cp opened with checkpoint.Options{Pages: true} (OpenPath does it);
// without them the mappings and provenance are still given, but dumped
// bytes cannot be read.
func Open(cp *checkpoint.Checkpoint, opt *Options) (*Reader, error) {
	if cp.Images() == nil {
		return nil, errors.New("memory: checkpoint has no images")
	}
	r := &Reader{CP: cp, shmem: map[uint64]*shmemObj{}, files: map[string]*fileBacking{}, opt: ptr.Value(opt)}
	r.top = newLevel(cp.Images())
	return r, nil
}

// OpenPath opens a checkpoint archive or images directory on the host
// (checkpoint.OpenPath, with the pages kept unless Options.NoPageData) and
// its memory; parents of a host images directory may be siblings of it.
// Close the Reader to close both. It stops with ctx.Err() when ctx is
// cancelled.
func OpenPath(ctx context.Context, hostPath string, opt *Options) (*Reader, error) {
	o := ptr.Value(opt)
	o.ParentOutside = true
	copt := &checkpoint.Options{Pages: !o.NoPageData, TempDir: o.TempDir}
	if o.NoPageData {
		// Nor command lines: they would need a pass over the pages.
		copt.Skip = checkpoint.PartCmdlines
	}
	cp, err := checkpoint.OpenPath(ctx, hostPath, copt)
	if err != nil {
		return nil, err
	}
	r, err := Open(cp, &o)
	if err != nil {
		cp.Close()
		return nil, err
	}
	r.closers = append(r.closers, cp)
	return r, nil
}

func newLevel(dir *checkpoint.ImageDir) *level {
	return &level{dir: dir, pms: map[uint32]*pmIndex{}, pages: map[uint32]*pagesFile{}}
}

// Close releases the files the Reader opened.
func (r *Reader) Close() error {
	var errs []error
	for _, lv := range append([]*level{r.top}, r.parents...) {
		for _, p := range lv.pages {
			if p.f != nil {
				errs = append(errs, p.f.Close())
			}
		}
	}
	for _, lv := range r.parents {
		errs = append(errs, lv.dir.Close())
	}
	for _, fb := range r.files {
		if fb.f != nil {
			errs = append(errs, fb.f.Close())
		}
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
	pm, err := sorted(lv.dir.Pagemap(pid))
	lv.pms[pid] = &pmIndex{pm, err}
	return pm, err
}

// sorted orders the runs of a decoded pagemap by address and cuts
// overlaps (CRIU writes them sorted and disjoint; a hostile image may
// not), keeping the earlier run's pages.
func sorted(pm *checkpoint.Pagemap, err error) (*checkpoint.Pagemap, error) {
	if pm == nil {
		return nil, err
	}
	e := pm.Entries
	isSorted := sort.SliceIsSorted(e, func(i, j int) bool { return e[i].Vaddr < e[j].Vaddr })
	errs := []error{err}
	if !isSorted {
		sort.SliceStable(e, func(i, j int) bool { return e[i].Vaddr < e[j].Vaddr })
		errs = append(errs, &evidence.FormatError{File: pm.Image, Offset: -1, Msg: "pagemap runs out of address order (sorted)"})
	}
	overlap := false
	out := e[:0]
	var prevEnd uint64
	for _, x := range e {
		if x.NrPages == 0 {
			continue
		}
		end := runEnd(x)
		if len(out) > 0 && x.Vaddr < prevEnd {
			if !overlap {
				overlap = true
				errs = append(errs, &evidence.FormatError{File: pm.Image, Offset: -1, Msg: fmt.Sprintf("pagemap runs overlap at 0x%x; the later run is cut", x.Vaddr)})
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
	return pm, errors.Join(errs...)
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
// what the pagemap says (checkpoint.PagesImage.Check).
func (lv *level) pagesImage(id uint32, need int64) *pagesFile {
	p := lv.pages[id]
	if p == nil {
		p = &pagesFile{}
		if img, err := lv.dir.Pages(id); err != nil {
			p.err = err
		} else {
			p.img, p.name, p.size, p.f = img, img.Name, img.Size, img.File
			if img.File == nil {
				p.stream = &streamPages{member: img.Member, name: img.Name}
			}
		}
		lv.pages[id] = p
	}
	if p.err == nil {
		p.err = p.img.Check(need)
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
		dir, err := child.dir.Parent(r.opt.ParentOutside)
		if err != nil {
			r.parErr = err
			return nil, err
		}
		// A parent link back to a directory of the chain (parent -> .)
		// would decode the same images again at every level.
		for _, lv := range append([]*level{r.top}, r.parents...) {
			if lv.dir.String() == dir.String() {
				dir.Close()
				r.parErr = fmt.Errorf("the parent images of %s loop back to %s, already read", child.dir, dir)
				return nil, r.parErr
			}
		}
		r.parents = append(r.parents, newLevel(dir))
	}
	return r.parents[depth-1], nil
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
	if !r.opt.NoRootfsDiff {
		if d, err := r.CP.RootfsDiffSource(); err == nil {
			if res, err := evidence.Resolve(d, name, true); err == nil {
				if f, err := d.Open(res); err == nil {
					fb.f, fb.size, fb.err = f, f.Size(), nil
					return fb
				}
			}
		}
	}
	if r.opt.Files != nil {
		f, err := r.opt.Files(p)
		if err == nil {
			fb.f, fb.size, fb.err = f, f.Size(), nil
			return fb
		}
		fb.err = err
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
