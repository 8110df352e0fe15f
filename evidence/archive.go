package evidence

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"math"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/ptr"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Compression of an archive, detected from its magic bytes.
type Compression string

const (
	CompressionNone Compression = "none"
	CompressionGzip Compression = "gzip"
	CompressionZstd Compression = "zstd"
)

// Bounds of an archive's index.
const (
	// DefaultMaxMembers bounds the members indexed.
	DefaultMaxMembers = 1 << 22
	// MaxArchiveDepth bounds the components of a member name: a deeper
	// member is left out (with a warning), its directories are listed to
	// that depth. Walks stop earlier, at DefaultMaxDepth, and say so.
	MaxArchiveDepth = 4096
	// DefaultMaxXattrBytes bounds the extended attributes kept for all
	// members together (values, names and xattrEntryCost each). Past a
	// quarter of it only the attributes forensics reads (overlay's and
	// security.capability) are kept.
	DefaultMaxXattrBytes = 64 << 20
	// MaxMemberXattrs bounds the attributes kept for one member, counted
	// the same way.
	MaxMemberXattrs = 256 << 10
	// xattrEntryCost is what one kept attribute costs besides its name
	// and value (a map entry, a slice header).
	xattrEntryCost = 32
	// maxWarnings bounds the warnings an archive keeps; the rest are counted.
	maxWarnings = 1000
)

// ArchiveOptions tune OpenArchive and NewArchive. The zero value is usable.
type ArchiveOptions struct {
	// Retain decides which regular members of a compressed archive keep
	// their data (decompressed once, to a sparse spill file). Nil keeps
	// all. Members not retained are listed but Open fails with
	// ErrNotRetained. Uncompressed archives are read in place and ignore it.
	Retain func(name string, size int64) bool
	// MaxMembers bounds the number of members (default DefaultMaxMembers).
	MaxMembers int
	// MaxSpill bounds the bytes written to the spill file (default
	// DefaultMaxSpill; runs of zeros are holes and do not count), so that
	// a decompression bomb is an error, not a full disk. 90% of the free
	// space of TempDir bounds it further.
	MaxSpill int64
	// TempDir is where the spill file is made (default os.TempDir()).
	TempDir string
	// MaxXattrBytes bounds the attribute values kept (default
	// DefaultMaxXattrBytes).
	MaxXattrBytes int64
	// Progress, when set, is called as the archive file is read, about
	// every 4 MiB.
	Progress func(Progress)
}

// Progress tells how far indexing an archive has come: Done of Total
// bytes of the archive file read.
type Progress struct {
	Done, Total int64
}

// Archive is a Source over a tar archive of a filesystem. Its index is a
// tree of compact entries built in one pass; it is immutable afterwards
// and an Archive is safe for concurrent use.
type Archive struct {
	name        string
	compression Compression
	pages       [][]anode // the entries, nodePage a page (no copying as they grow)
	count       int32
	links       map[int32]string // symlink targets and hard link targets by entry
	kids        []int32          // children of each directory, sorted by name
	xattrs      map[int32]map[string][]byte
	sparse      map[int32][]SparseFragment
	data        io.ReaderAt // the archive itself (uncompressed) or nil
	spill       *os.File
	closer      io.Closer
	warnings    []Warning
	moreWarn    int
	hint        atomic.Pointer[dirHint]
}

// anode is one entry of the index: a member, or a directory the archive
// only implies. It is kept small (about 136 bytes): an archive of 10⁶
// members is an index of about 140 MiB.
type anode struct {
	name     string // base name ("." for the root)
	parent   int32
	kid0     int32 // first child in Archive.kids
	nkids    int32
	ino      uint32
	mode     fs.FileMode
	uid, gid uint32
	nlink    uint32
	devMajor uint32
	devMinor uint32
	flags    uint16
	size     int64
	off      int64 // data offset in the archive or the spill file
	hdrOff   int64 // offset of the member's header in the uncompressed tar
	sec      [4]int64
	nsec     [4]uint32
}

const (
	fImplicit = 1 << iota // a directory the archive only implies
	fRetained             // data readable
	fInSpill              // data in the spill file
	fSparse               // data through Archive.sparse
	fHardlink             // Archive.links names the member whose data this shares
	fXattrs               // attributes in Archive.xattrs
)

// Times in anode.sec/nsec.
const (
	tAtime = iota
	tMtime
	tCtime
	tBtime
	zeroSec = math.MinInt64
)

// nodePage is how many entries a page of the index holds.
const nodePage = 1 << 12

// nd returns entry id.
func (a *Archive) nd(id int32) *anode { return &a.pages[id/nodePage][id%nodePage] }

// n is the number of entries.
func (a *Archive) n() int { return int(a.count) }

// push adds an entry and returns its id.
func (a *Archive) push(n anode) int32 {
	id := a.count
	if int(id/nodePage) == len(a.pages) {
		a.pages = append(a.pages, make([]anode, 0, nodePage))
	}
	a.pages[id/nodePage] = append(a.pages[id/nodePage], n)
	a.count++
	return id
}

// link is the symlink or hard link target of entry id.
func (a *Archive) link(id int32) string { return a.links[id] }

func (a *Archive) setLink(id int32, target string) {
	if target == "" {
		delete(a.links, id)
		return
	}
	if a.links == nil {
		a.links = map[int32]string{}
	}
	a.links[id] = target
}

type dirHint struct {
	dir string
	id  int32
}

// OpenArchive opens and indexes a tar, tar.gz or tar.zst file of the host.
func OpenArchive(ctx context.Context, file string, opt *ArchiveOptions) (*Archive, error) {
	f, err := openHostNoatime(file)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: file, Err: ErrNotRegular}
	}
	a, err := NewArchive(ctx, f, st.Size(), file, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	a.closer = f
	return a, nil
}

// openHostNoatime is vfs.OpenNoatime with the errno of a failed open
// given as fs.ErrNotExist or fs.ErrPermission, as Dir's are.
func openHostNoatime(file string) (*os.File, error) {
	f, err := vfs.OpenNoatime(file)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Err = mapErrno(pe.Err)
	}
	return f, err
}

// DetectCompression looks at the first bytes of r.
func DetectCompression(r io.ReaderAt) Compression {
	var m [4]byte
	n, _ := r.ReadAt(m[:], 0)
	return detectMagic(m[:n])
}

// Decompress returns a one-pass reader of r's uncompressed bytes.
func Decompress(r io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case CompressionGzip:
		return gzip.NewReader(r)
	case CompressionZstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}

// NewArchive indexes a tar archive read from r (size bytes; name is used in
// messages). An uncompressed archive is indexed in place and r must stay
// valid while the Archive is used; a compressed one is decompressed once,
// its retained members to a private, unlinked spill file in TempDir.
// Indexing stops with ctx.Err() when ctx is cancelled.
func NewArchive(ctx context.Context, r io.ReaderAt, size int64, name string, opt *ArchiveOptions) (*Archive, error) {
	b := newBuilder(name, DetectCompression(r), opt)
	if err := b.index(ctx, r, size, nil); err != nil {
		b.a.Close()
		return nil, err
	}
	return b.a, nil
}

// builder holds what indexing needs and the index does not.
type builder struct {
	a        *Archive
	o        ArchiveOptions
	kidIndex kidTable
	spill    *spill
	// mkSpill makes the spill file (a private temp file, or the cache's).
	mkSpill func() (*spill, error)
	// hash, when set, receives every byte of a compressed archive file.
	hash io.Writer
	// xattr accounting
	xBytes                  int64
	xDropped, xDroppedBytes int64
	xDroppedMembers         int
	xDroppedForensic        bool
	sparseFrags             int
}

// kidTable finds a child by parent and name while the index is built: an
// open-addressing table of entry ids (4 bytes a slot, at most half full),
// hashing the name once per component.
type kidTable struct {
	slots []int32 // entry id + 1; 0 is empty
	used  int
	seed  maphash.Seed
}

func (t *kidTable) hash(parent int32, name string) uint64 {
	return maphash.String(t.seed, name) ^ uint64(parent)*0x9e3779b97f4a7c15
}

func (t *kidTable) get(a *Archive, parent int32, name string) (int32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.hash(parent, name) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if n := a.nd(s - 1); n.parent == parent && n.name == name {
			return s - 1, true
		}
	}
}

func (t *kidTable) put(a *Archive, id int32) {
	if 2*(t.used+1) > len(t.slots) {
		old := t.slots
		if len(old) == 0 {
			t.seed = maphash.MakeSeed()
		}
		t.slots, t.used = make([]int32, max(1024, 2*len(old))), 0
		for _, s := range old {
			if s != 0 {
				t.put(a, s-1)
			}
		}
	}
	n := a.nd(id)
	mask := uint64(len(t.slots) - 1)
	i := t.hash(n.parent, n.name) & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = id + 1
	t.used++
}

func newBuilder(name string, c Compression, opt *ArchiveOptions) *builder {
	o := ptr.Value(opt)
	if o.MaxMembers <= 0 {
		o.MaxMembers = DefaultMaxMembers
	}
	if o.MaxXattrBytes <= 0 {
		o.MaxXattrBytes = DefaultMaxXattrBytes
	}
	a := &Archive{name: name, compression: c}
	a.push(anode{name: ".", parent: -1, mode: fs.ModeDir | 0o755, nlink: 1, flags: fImplicit, hdrOff: -1, sec: [4]int64{zeroSec, zeroSec, zeroSec, zeroSec}})
	b := &builder{a: a, o: o}
	b.mkSpill = func() (*spill, error) {
		dir := o.TempDir
		if dir == "" {
			dir = os.TempDir()
		}
		f, err := os.CreateTemp(dir, "deadnode-spill-*")
		if err != nil {
			return nil, err
		}
		os.Remove(f.Name()) // private and gone on close, whatever happens
		return newSpill(f, "temp", dir, o.MaxSpill), nil
	}
	return b
}

// index reads the archive and builds the index. keep, when not nil, also
// retains members it names (a rebuilt cache entry keeps what the old one
// had).
func (b *builder) index(ctx context.Context, r io.ReaderAt, size int64, keep func(string) bool) (err error) {
	a := b.a
	topt := &TarOptions{Label: a.name, MaxMembers: b.o.MaxMembers + 1}
	var members iter2
	if a.compression == CompressionNone {
		a.data = r
		members = iter2(TarStreamAt(ctx, r, size, topt))
	} else {
		topt.Compression = a.compression
		pr := &progressReader{r: io.NewSectionReader(r, 0, size), total: size, fn: b.o.Progress, hash: b.hash}
		members = iter2(TarStream(ctx, pr, topt))
		if b.hash != nil {
			defer func() {
				if err == nil {
					_, err = io.Copy(io.Discard, pr) // hash what follows the tar
				}
			}()
		}
	}
	count := 0
	for m, err := range members {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fe, ok := err.(*FormatError)
			if !ok {
				return err
			}
			if count == 0 {
				return &FormatError{File: a.name, Offset: fe.Offset, Msg: "not a readable tar archive", Err: fe.Err}
			}
			a.warnf(fe.Offset, "archive ends in a damaged member, index stops there: %v", fe.Err)
			break
		}
		if count >= b.o.MaxMembers {
			a.warnf(-1, "more than %d members; the rest is not indexed", b.o.MaxMembers)
			break
		}
		count++
		if err := b.member(ctx, m, keep); err != nil {
			return err
		}
	}
	if b.spill != nil {
		if err := b.spill.finish(); err != nil {
			return err
		}
		a.spill = b.spill.f
	}
	b.finish()
	return nil
}

type iter2 = func(func(TarMember, error) bool)

// progressReader reports the bytes of the archive file read.
type progressReader struct {
	r     io.Reader
	n     int64
	total int64
	last  int64
	fn    func(Progress)
	hash  io.Writer
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.hash != nil {
		p.hash.Write(b[:n])
	}
	if p.fn != nil && (p.n-p.last >= 4<<20 || err == io.EOF) {
		p.last = p.n
		p.fn(Progress{Done: p.n, Total: p.total})
	}
	return n, err
}

// memberName cleans a member name; it warns and refuses names that climb
// out of the archive, and reads absolute names as relative.
func (a *Archive) memberName(n string, off int64) (string, bool) {
	orig := n
	for strings.HasPrefix(n, "./") {
		n = n[2:]
	}
	if strings.HasPrefix(n, "/") {
		a.warnf(off, "member %q has an absolute name, read relative to the archive root", shorten(orig))
		n = strings.TrimLeft(n, "/")
	}
	clean, err := Clean(n)
	if err != nil {
		a.warnf(off, "member %q climbs out of the archive with \"..\", ignored", shorten(orig))
		return "", false
	}
	return clean, true
}

// shorten keeps names in messages readable (a member name may be 1 MiB).
func shorten(s string) string {
	if len(s) <= 256 {
		return s
	}
	return s[:200] + "…" + s[len(s)-40:]
}

func (a *Archive) warnf(off int64, format string, args ...any) {
	if len(a.warnings) >= maxWarnings {
		a.moreWarn++
		return
	}
	a.warnings = append(a.warnings, Warnf(a.name, off, format, args...))
}

// Warnings lists what was odd in the archive (refused names, damage,
// duplicates, what was left out to stay within bounds).
func (a *Archive) Warnings() []Warning {
	if a.moreWarn == 0 {
		return a.warnings
	}
	return append(a.warnings[:len(a.warnings):len(a.warnings)], Warnf(a.name, -1, "%d more warnings not listed", a.moreWarn))
}

// member adds one tar member to the index.
func (b *builder) member(ctx context.Context, m TarMember, keep func(string) bool) error {
	a, h := b.a, m.Header
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil // PAX global header: defaults, not a member
	}
	clean, ok := a.memberName(h.Name, m.Offset)
	if !ok {
		return nil
	}
	var hardlink string
	if h.Typeflag == tar.TypeLink {
		if hardlink, ok = a.memberName(h.Linkname, m.Offset); !ok {
			return nil
		}
	}
	if clean == "." && h.Typeflag != tar.TypeDir {
		// The root of the collection is a directory whatever a member
		// says: a "./" link or file would hide every other member.
		a.warnf(m.Offset, "member %q is not a directory but names the collection's root: left out", shorten(h.Name))
		return nil
	}
	id, ok := b.place(clean, m.Offset)
	if !ok {
		return nil
	}
	n := a.nd(id)
	n.setHeader(h)
	n.hdrOff = m.Offset
	a.setLink(id, "")
	if hardlink != "" {
		a.setLink(id, strings.Clone(hardlink))
		n.flags |= fHardlink
	} else if h.Typeflag == tar.TypeSymlink {
		a.setLink(id, strings.Clone(h.Linkname))
	}
	delete(a.sparse, id)
	delete(a.xattrs, id)
	if xs := b.xattrs(h); xs != nil {
		if a.xattrs == nil {
			a.xattrs = map[int32]map[string][]byte{}
		}
		a.xattrs[id] = xs
		n.flags |= fXattrs
	}
	if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeGNUSparse {
		return nil
	}
	sparse := IsSparse(h)
	if sparse && m.Sparse == nil {
		a.warnf(m.Offset, "member %q: its sparse map cannot be read; its data is left out", shorten(clean))
		return nil
	}
	if sparse {
		if b.sparseFrags+len(m.Sparse) > 4*MaxSparseFragments {
			a.warnf(m.Offset, "member %q: more sparse fragments than the index keeps; its data is not read", shorten(clean))
			return nil
		}
		b.sparseFrags += len(m.Sparse)
		if a.sparse == nil {
			a.sparse = map[int32][]SparseFragment{}
		}
	}
	if a.compression == CompressionNone {
		if sparse {
			a.sparse[id] = m.Sparse
			n.flags |= fSparse | fRetained
			return nil
		}
		n.off = m.DataOffset
		n.flags |= fRetained
		return nil
	}
	if b.o.Retain != nil && !b.o.Retain(clean, h.Size) && (keep == nil || !keep(clean)) {
		return nil
	}
	if b.spill == nil {
		s, err := b.mkSpill()
		if err != nil {
			return err
		}
		b.spill = s
	}
	if sparse {
		// Only the fragments are read and written: the holes cost nothing,
		// however large the file says it is.
		sp, rerr, err := b.spill.addFragments(ctx, clean, m.Fragments, m.Sparse)
		if err != nil {
			return err
		}
		if rerr != nil {
			a.warnf(m.Offset, "member %q: sparse data truncated: %v", shorten(clean), rerr)
		}
		a.sparse[id] = sp
		a.nd(id).flags |= fSparse | fInSpill | fRetained
		return nil
	}
	off, size, rerr, err := b.spill.add(ctx, clean, m.Data)
	if err != nil {
		return err
	}
	if rerr != nil {
		a.warnf(m.Offset, "member %q: data truncated after %d bytes: %v", shorten(clean), size, rerr)
	}
	n = a.nd(id)
	n.off, n.size = off, size
	n.flags |= fInSpill | fRetained
	return nil
}

// place finds or makes the node of a member name, making the directories
// it implies, one component at a time (linear in the name's length). A
// member deeper than MaxArchiveDepth, or below a member that is not a
// directory, is left out with a warning.
func (b *builder) place(name string, off int64) (int32, bool) {
	a := b.a
	if name == "." {
		if a.nd(0).flags&fImplicit == 0 {
			b.duplicate(0, name, off)
		}
		*a.nd(0) = anode{name: ".", parent: -1}
		return 0, true
	}
	parent, rest, depth := int32(0), name, 0
	for {
		depth++
		i := strings.IndexByte(rest, '/')
		if depth > MaxArchiveDepth {
			a.warnf(off, "member %q is %d levels deep, more than the %d the index holds: its directories are listed to that depth, the member is left out", shorten(name), strings.Count(name, "/")+1, MaxArchiveDepth)
			return 0, false
		}
		if i < 0 {
			break
		}
		comp := rest[:i]
		rest = rest[i+1:]
		id, ok := b.kidIndex.get(a, parent, comp)
		if !ok {
			id = b.add(parent, comp, anode{mode: fs.ModeDir | 0o755, nlink: 1, flags: fImplicit, hdrOff: -1, sec: [4]int64{zeroSec, zeroSec, zeroSec, zeroSec}})
		} else if !a.nd(id).mode.IsDir() {
			a.warnf(off, "member %q is below %q, which is not a directory, ignored", shorten(name), shorten(name[:len(name)-len(rest)-1]))
			return 0, false
		}
		parent = id
	}
	if id, ok := b.kidIndex.get(a, parent, rest); ok {
		n := a.nd(id)
		if n.flags&fImplicit == 0 {
			b.duplicate(id, name, off)
		}
		*n = anode{name: n.name, parent: n.parent}
		return id, true
	}
	return b.add(parent, rest, anode{}), true
}

func (b *builder) duplicate(id int32, name string, off int64) {
	b.a.warnf(off, "member %q appears again (first at offset %d): the last one wins, as tar extracts it", shorten(name), b.a.nd(id).hdrOff)
}

func (b *builder) add(parent int32, name string, n anode) int32 {
	a := b.a
	if a.count >= math.MaxInt32-1 {
		panic("archive index overflow") // unreachable: members and depth are bounded
	}
	n.name = strings.Clone(name) // never keep a whole PAX block alive through a substring
	n.parent = parent
	id := a.push(n)
	b.kidIndex.put(a, id)
	return id
}

// setHeader fills a node's metadata from its tar header.
func (n *anode) setHeader(h *tar.Header) {
	n.mode = fs.FileMode(h.Mode & 0o777)
	if h.Mode&04000 != 0 {
		n.mode |= fs.ModeSetuid
	}
	if h.Mode&02000 != 0 {
		n.mode |= fs.ModeSetgid
	}
	if h.Mode&01000 != 0 {
		n.mode |= fs.ModeSticky
	}
	n.uid, n.gid = uint32(h.Uid), uint32(h.Gid)
	n.size, n.nlink = h.Size, 1
	n.devMajor, n.devMinor = uint32(h.Devmajor), uint32(h.Devminor)
	n.setTime(tMtime, h.ModTime)
	n.setTime(tAtime, h.AccessTime)
	n.setTime(tCtime, h.ChangeTime)
	n.sec[tBtime] = zeroSec
	if v := h.PAXRecords["LIBARCHIVE.creationtime"]; v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < 1<<62/1e9 {
			n.setTime(tBtime, time.Unix(0, int64(f*1e9)))
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		n.mode |= fs.ModeDir
		n.size = 0
	case tar.TypeSymlink:
		n.mode |= fs.ModeSymlink
		n.size = int64(len(h.Linkname))
	case tar.TypeChar:
		n.mode |= fs.ModeDevice | fs.ModeCharDevice
		n.size = 0
	case tar.TypeBlock:
		n.mode |= fs.ModeDevice
		n.size = 0
	case tar.TypeFifo:
		n.mode |= fs.ModeNamedPipe
		n.size = 0
	}
}

func (n *anode) setTime(i int, t time.Time) {
	if t.IsZero() {
		n.sec[i], n.nsec[i] = zeroSec, 0
		return
	}
	n.sec[i], n.nsec[i] = t.Unix(), uint32(t.Nanosecond())
}

func (n *anode) time(i int) time.Time {
	if n.sec[i] == zeroSec {
		return time.Time{}
	}
	return time.Unix(n.sec[i], int64(n.nsec[i])).UTC()
}

// forensicXattr says whether forensics reads an attribute (overlay's
// whiteouts, opaque dirs, redirects, metacopy; file capabilities): these
// are kept while other attributes are dropped to stay within bounds.
func forensicXattr(k string) bool {
	return strings.HasPrefix(k, "trusted.overlay.") || strings.HasPrefix(k, "user.overlay.") || k == "security.capability"
}

// xattrs extracts a member's extended attributes (PAX SCHILY.xattr.* and
// LIBARCHIVE.xattr.*), within the bounds: MaxXattrSize a value,
// MaxMemberXattrs a member, MaxXattrBytes in all (a quarter of it for
// attributes forensics does not read).
func (b *builder) xattrs(h *tar.Header) map[string][]byte {
	if len(h.PAXRecords) == 0 {
		return nil
	}
	type kv struct {
		k string
		v string
		b []byte
	}
	var all []kv
	for k, v := range h.PAXRecords {
		switch {
		case strings.HasPrefix(k, "SCHILY.xattr."):
			all = append(all, kv{k: k[len("SCHILY.xattr."):], v: v})
		case strings.HasPrefix(k, "LIBARCHIVE.xattr."):
			n, err := url.QueryUnescape(k[len("LIBARCHIVE.xattr."):])
			if err != nil {
				continue
			}
			if base64.StdEncoding.DecodedLen(len(v)) > MaxXattrSize+3 {
				all = append(all, kv{k: n, v: v}) // too large: dropped below
				continue
			}
			d, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				if d, err = base64.RawStdEncoding.DecodeString(v); err != nil {
					continue
				}
			}
			all = append(all, kv{k: n, b: d})
		}
	}
	if len(all) == 0 {
		return nil
	}
	// Forensic attributes first, then by name, so what is kept does not
	// depend on map order.
	sort.Slice(all, func(i, j int) bool {
		fi, fj := forensicXattr(all[i].k), forensicXattr(all[j].k)
		if fi != fj {
			return fi
		}
		return all[i].k < all[j].k
	})
	var out map[string][]byte
	var member int64
	dropped := false
	for _, x := range all {
		size := int64(len(x.v))
		if x.b != nil {
			size = int64(len(x.b))
		}
		// What keeping it costs: the value, the name and the map entry
		// (a header of empty values must not keep names for free).
		cost := size + int64(len(x.k)) + xattrEntryCost
		forensic := forensicXattr(x.k)
		budget := b.o.MaxXattrBytes / 4
		if forensic {
			budget = b.o.MaxXattrBytes
		}
		if size > MaxXattrSize || member+cost > MaxMemberXattrs || b.xBytes+cost > budget {
			b.xDropped++
			b.xDroppedBytes += size
			b.xDroppedForensic = b.xDroppedForensic || forensic
			dropped = true
			continue
		}
		if out == nil {
			out = map[string][]byte{}
		}
		val := x.b
		if val == nil {
			val = []byte(x.v)
		}
		out[strings.Clone(x.k)] = val
		member += cost
		b.xBytes += cost
	}
	if dropped {
		b.xDroppedMembers++
	}
	return out
}

// finish sorts each directory's children, counts hard links and numbers
// the entries.
func (b *builder) finish() {
	a := b.a
	b.kidIndex = kidTable{}
	// Children grouped by parent (counting sort), then sorted by name.
	// Children of a member that is no longer a directory (a later
	// duplicate replaced it) are unreachable.
	count := make([]int32, a.n())
	for i := int32(1); i < a.count; i++ {
		if p := a.nd(i).parent; a.nd(p).mode.IsDir() {
			count[p]++
		}
	}
	var pos int32
	for i := range a.count {
		a.nd(i).kid0, a.nd(i).nkids = pos, 0
		pos += count[i]
	}
	a.kids = make([]int32, pos)
	for i := int32(1); i < a.count; i++ {
		p := a.nd(i).parent
		if pn := a.nd(p); pn.mode.IsDir() {
			a.kids[pn.kid0+pn.nkids] = i
			pn.nkids++
		}
	}
	for i := range a.count {
		ks := a.kidsOf(int32(i))
		if len(ks) > 1 {
			sort.Slice(ks, func(x, y int) bool { return a.nd(ks[x]).name < a.nd(ks[y]).name })
		}
	}
	for i := range a.count {
		if n := a.nd(i); n.flags&fHardlink != 0 {
			if t, err := a.find(a.link(int32(i))); err == nil && a.nd(t).flags&fHardlink == 0 {
				a.nd(t).nlink++
			}
		}
	}
	a.number()
	if b.xDropped > 0 {
		what := "the overlay and capability attributes were kept"
		if b.xDroppedForensic {
			what = "overlay or capability attributes among them"
		}
		a.warnf(-1, "%d extended attributes (%d bytes) of %d members dropped to stay within bounds (%d bytes a value, %d a member, %d in all); %s", b.xDropped, b.xDroppedBytes, b.xDroppedMembers, MaxXattrSize, MaxMemberXattrs, b.o.MaxXattrBytes, what)
	}
}

func (a *Archive) kidsOf(id int32) []int32 {
	n := a.nd(id)
	return a.kids[n.kid0 : n.kid0+n.nkids]
}

// number gives every reachable entry an inode number in the order of its
// full name (as sort.Strings would order them), so that hard links can be
// told (Nlink > 1 and the same Ino) as on a real filesystem. In name
// order a directory's subtree ("d/…") sorts as "d/" among its siblings,
// which need not be right after "d" itself ("d.x" sorts between them).
func (a *Archive) number() {
	next := uint32(1)
	type item struct {
		id  int32
		sub bool
	}
	var rec func(d int32, self bool)
	rec = func(d int32, self bool) {
		kids := a.kidsOf(d)
		items := make([]item, 0, 2*len(kids)+1)
		if self {
			items = append(items, item{id: d})
		}
		for _, k := range kids {
			items = append(items, item{id: k})
			if a.nd(k).nkids > 0 {
				items = append(items, item{id: k, sub: true})
			}
		}
		sort.Slice(items, func(i, j int) bool {
			return keyLess(a.nd(items[i].id).name, items[i].sub, a.nd(items[j].id).name, items[j].sub)
		})
		for _, it := range items {
			if it.sub {
				rec(it.id, false)
			} else {
				a.nd(it.id).ino = next
				next++
			}
		}
	}
	rec(0, true)
}

// keyLess compares x (followed by "/" when xs) with y (and "/" when ys).
func keyLess(x string, xs bool, y string, ys bool) bool {
	m := min(len(x), len(y))
	if c := strings.Compare(x[:m], y[:m]); c != 0 {
		return c < 0
	}
	switch {
	case len(x) == len(y):
		return !xs && ys
	case len(x) < len(y):
		return !xs || '/' < y[m]
	default:
		return ys && x[m] > '/'
	}
}

// Implicit says whether name is a directory the archive only implies: no
// member of its own, so its metadata is made up (0755, root, no times).
func (a *Archive) Implicit(name string) bool {
	id, _, err := a.lookup("implicit", name)
	return err == nil && a.nd(id).flags&fImplicit != 0
}

// Hardlink returns the member a hard link member shares its data with.
func (a *Archive) Hardlink(name string) (string, bool) {
	id, _, err := a.lookup("hardlink", name)
	if err != nil || a.nd(id).flags&fHardlink == 0 {
		return "", false
	}
	return a.link(id), true
}

// Compression reports how the archive was compressed.
func (a *Archive) Compression() Compression { return a.compression }

// MemberOffset returns the offset of a member's header in the uncompressed
// tar stream, for error messages; -1 for a name the archive does not hold
// as a member.
func (a *Archive) MemberOffset(name string) int64 {
	id, _, err := a.lookup("offset", name)
	if err != nil {
		return -1
	}
	return a.nd(id).hdrOff
}

func (a *Archive) String() string { return a.name }

// Close releases the archive file and removes the spill file.
func (a *Archive) Close() error {
	var err error
	if a.spill != nil {
		err = a.spill.Close()
		a.spill = nil
	}
	if a.closer != nil {
		if e := a.closer.Close(); err == nil {
			err = e
		}
		a.closer = nil
	}
	return err
}

// kid finds the child called name of directory d.
func (a *Archive) kid(d int32, name string) (int32, bool) {
	ks := a.kidsOf(d)
	i := sort.Search(len(ks), func(i int) bool { return a.nd(ks[i]).name >= name })
	if i < len(ks) && a.nd(ks[i]).name == name {
		return ks[i], true
	}
	return 0, false
}

// walkTo follows the components of a clean name from the root.
func (a *Archive) walkTo(clean string) (int32, error) {
	cur := int32(0)
	if clean == "." {
		return 0, nil
	}
	for rest := clean; ; {
		c, r, more := strings.Cut(rest, "/")
		k, err := a.child(cur, c)
		if err != nil || !more {
			return k, err
		}
		cur, rest = k, r
	}
}

// child finds name in directory d. A miss below a symlink is
// ErrSymlinkInPath, below a file ENOTDIR, as the directory source reports
// them.
func (a *Archive) child(d int32, name string) (int32, error) {
	n := a.nd(d)
	switch {
	case n.mode&fs.ModeSymlink != 0:
		return 0, ErrSymlinkInPath
	case !n.mode.IsDir():
		return 0, unix.ENOTDIR
	}
	k, ok := a.kid(d, name)
	if !ok {
		return 0, fs.ErrNotExist
	}
	return k, nil
}

// find returns the node of a clean name; sequential lookups in one
// directory (a walk) resolve the directory once.
func (a *Archive) find(clean string) (int32, error) {
	i := strings.LastIndexByte(clean, '/')
	if i < 0 {
		return a.walkTo(clean)
	}
	dir, base := clean[:i], clean[i+1:]
	var d int32
	if h := a.hint.Load(); h != nil && h.dir == dir {
		d = h.id
	} else {
		var err error
		if d, err = a.walkTo(dir); err != nil {
			return 0, err
		}
		a.hint.Store(&dirHint{dir: dir, id: d})
	}
	return a.child(d, base)
}

func (a *Archive) lookup(op, name string) (int32, string, error) {
	clean, err := Clean(name)
	if err != nil {
		return 0, "", err
	}
	id, err := a.find(clean)
	if err != nil {
		return 0, clean, &fs.PathError{Op: op, Path: clean, Err: err}
	}
	return id, clean, nil
}

// dataNode returns the node that holds the data of id (itself, or its
// hard link target).
func (a *Archive) dataNode(id int32) (int32, error) {
	for i := 0; a.nd(id).flags&fHardlink != 0 && i < 8; i++ {
		t, err := a.find(a.link(id))
		if err != nil {
			return 0, fmt.Errorf("hard link to %q, which the archive does not hold", a.link(id))
		}
		id = t
	}
	if a.nd(id).flags&fHardlink != 0 {
		return 0, errors.New("hard link chain too long")
	}
	return id, nil
}

func (a *Archive) stat(id int32, name string) *Stat {
	n := a.nd(id)
	mode := n.mode
	if n.flags&fHardlink != 0 {
		if d, err := a.dataNode(id); err == nil && !a.nd(d).mode.IsDir() {
			n, mode = a.nd(d), a.nd(d).mode
		} else {
			// a link to nothing, or to a directory (which tar cannot make
			// and ReadDir would refuse): a file without data
			mode = 0o644
		}
	}
	return &Stat{Name: name, Mode: mode, UID: n.uid, GID: n.gid, Size: n.size, Nlink: uint64(n.nlink), Ino: uint64(n.ino),
		DevMajor: n.devMajor, DevMinor: n.devMinor, Atime: n.time(tAtime), Mtime: n.time(tMtime), Ctime: n.time(tCtime), Btime: n.time(tBtime)}
}

// Lstat implements Source.
func (a *Archive) Lstat(name string) (*Stat, error) {
	id, clean, err := a.lookup("lstat", name)
	if err != nil {
		return nil, err
	}
	return a.stat(id, clean), nil
}

func (a *Archive) dir(op, name string) (int32, string, error) {
	id, clean, err := a.lookup(op, name)
	if err != nil {
		return 0, "", err
	}
	if !a.nd(id).mode.IsDir() {
		return 0, "", &fs.PathError{Op: op, Path: clean, Err: unix.ENOTDIR}
	}
	return id, clean, nil
}

// ReadDir implements Source.
func (a *Archive) ReadDir(name string) ([]*Stat, error) {
	id, clean, err := a.dir("readdir", name)
	if err != nil {
		return nil, err
	}
	kids := a.kidsOf(id)
	out := make([]*Stat, 0, len(kids))
	for _, k := range kids {
		out = append(out, a.stat(k, join(clean, a.nd(k).name)))
	}
	return out, nil
}

// ReadDirNames implements NameLister: the names of a directory's
// entries, sorted, without their metadata.
func (a *Archive) ReadDirNames(name string) ([]string, error) {
	id, _, err := a.dir("readdir", name)
	if err != nil {
		return nil, err
	}
	kids := a.kidsOf(id)
	out := make([]string, len(kids))
	for i, k := range kids {
		out[i] = a.nd(k).name
	}
	return out, nil
}

// Readlink implements Source.
func (a *Archive) Readlink(name string) (string, error) {
	id, clean, err := a.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if d, err := a.dataNode(id); err == nil { // a hard link to a symlink is that symlink, as tar extracts it
		id = d
	}
	if a.nd(id).mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: clean, Err: fs.ErrInvalid}
	}
	return a.link(id), nil
}

// Xattrs implements Source (from PAX SCHILY.xattr.* and LIBARCHIVE.xattr.*,
// within the bounds of ArchiveOptions.MaxXattrBytes).
func (a *Archive) Xattrs(name string) (map[string][]byte, error) {
	id, _, err := a.lookup("xattrs", name)
	if err != nil {
		return nil, err
	}
	if d, err := a.dataNode(id); err == nil {
		id = d
	}
	return a.xattrs[id], nil
}

// Open implements Source.
func (a *Archive) Open(name string) (File, error) {
	id, clean, err := a.lookup("open", name)
	if err != nil {
		return nil, err
	}
	d, err := a.dataNode(id)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: err}
	}
	n := a.nd(d)
	if !n.mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: ErrNotRegular}
	}
	if n.flags&fRetained == 0 {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: ErrNotRetained}
	}
	var ra io.ReaderAt = a.data
	if n.flags&fInSpill != 0 {
		ra = a.spill
	}
	off := n.off
	if n.flags&fSparse != 0 {
		ra, off = &sparseReaderAt{r: ra, frags: a.sparse[d], size: n.size}, 0
	}
	return &sectionFile{SectionReader: io.NewSectionReader(ra, off, n.size)}, nil
}

type sectionFile struct{ *io.SectionReader }

func (f *sectionFile) Close() error { return nil }

// sparseReaderAt reads a sparse member in place: its data fragments from
// the archive, zeros elsewhere.
type sparseReaderAt struct {
	r     io.ReaderAt
	frags []SparseFragment
	size  int64
}

func (s *sparseReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fs.ErrInvalid
	}
	n := 0
	for len(p) > 0 && off < s.size {
		i := sort.Search(len(s.frags), func(i int) bool { return s.frags[i].Offset+s.frags[i].Length > off })
		var k int
		if i < len(s.frags) && s.frags[i].Offset <= off {
			f := s.frags[i]
			k = int(min(int64(len(p)), f.Offset+f.Length-off))
			m, err := s.r.ReadAt(p[:k], f.Physical+off-f.Offset)
			n += m
			if m < k {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
		} else {
			end := s.size
			if i < len(s.frags) {
				end = s.frags[i].Offset
			}
			k = int(min(int64(len(p)), end-off))
			clear(p[:k])
			n += k
		}
		p, off = p[k:], off+int64(k)
	}
	if len(p) > 0 {
		return n, io.EOF
	}
	return n, nil
}
