package evidence

import (
	"archive/tar"
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

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

// ArchiveOptions tune OpenArchive and NewArchive. The zero value is usable.
type ArchiveOptions struct {
	// Retain decides which members of a compressed archive keep their data
	// (spilled, decompressed, to one private unlinked temp file). Nil keeps
	// all. Members not retained are listed but Open fails with
	// ErrNotRetained. Uncompressed archives are read in place and ignore it.
	Retain func(name string, size int64) bool
	// MaxMembers bounds the number of members (default 4,194,304).
	MaxMembers int
	// MaxSpill bounds the bytes spilled to the temp file (default 256 GiB),
	// so that a decompression bomb is an error, not a full disk.
	MaxSpill int64
	// TempDir is where the spill file is made (default os.TempDir()).
	TempDir string
}

// Archive is a Source over a tar archive of a filesystem.
type Archive struct {
	name        string
	compression Compression
	entries     map[string]*archEntry
	children    map[string][]string
	data        io.ReaderAt // the archive itself (uncompressed) or nil
	spill       *os.File
	closer      io.Closer
	warnings    []string
}

type archEntry struct {
	st       Stat
	link     string // symlink target
	hardlink string // name of the member whose data this shares
	xattrs   map[string][]byte
	inSpill  bool
	off      int64 // data offset in the archive or spill file
	retained bool
	hdrOff   int64 // offset of the member's header in the (uncompressed) tar stream
	implicit bool  // a directory the archive only implies (no member of its own)
}

// OpenArchive opens and indexes a tar, tar.gz or tar.zst file of the host.
func OpenArchive(file string, opt *ArchiveOptions) (*Archive, error) {
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
	a, err := NewArchive(f, st.Size(), file, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	a.closer = f
	return a, nil
}

func openHostNoatime(file string) (*os.File, error) {
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOATIME|unix.O_NONBLOCK, 0)
	if err == unix.EPERM {
		fd, err = unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: file, Err: mapErrno(err)}
	}
	return os.NewFile(uintptr(fd), file), nil
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
// valid while the Archive is used; a compressed one is decompressed once.
func NewArchive(r io.ReaderAt, size int64, name string, opt *ArchiveOptions) (*Archive, error) {
	var o ArchiveOptions
	if opt != nil {
		o = *opt
	}
	if o.MaxMembers <= 0 {
		o.MaxMembers = 1 << 22
	}
	if o.MaxSpill <= 0 {
		o.MaxSpill = 256 << 30
	}
	a := &Archive{name: name, compression: DetectCompression(r), entries: map[string]*archEntry{}}
	sr := io.NewSectionReader(r, 0, size)
	var tr *tar.Reader
	var pos func() int64
	if a.compression == CompressionNone {
		a.data = r
		tr = tar.NewReader(sr)
		pos = func() int64 { p, _ := sr.Seek(0, io.SeekCurrent); return p }
	} else {
		dr, err := Decompress(bufio.NewReaderSize(sr, 1<<20), a.compression)
		if err != nil {
			return nil, &FormatError{File: name, Offset: 0, Msg: string(a.compression), Err: err}
		}
		defer dr.Close()
		cr := &countReader{r: dr}
		tr = tar.NewReader(cr)
		pos = func() int64 { return cr.n }
	}
	var spilled int64
	for {
		hdrOff := pos()
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(a.entries) == 0 {
				a.Close()
				return nil, &FormatError{File: name, Offset: hdrOff, Msg: "not a readable tar archive", Err: err}
			}
			a.warnf("%s: offset %d: archive ends in a damaged member, index stops there: %v", name, hdrOff, err)
			break
		}
		if len(a.entries) >= o.MaxMembers {
			a.warnf("%s: more than %d members; the rest is not indexed", name, o.MaxMembers)
			break
		}
		clean, ok := a.memberName(hdr.Name, hdrOff)
		if !ok {
			continue
		}
		e := &archEntry{st: headerStat(hdr, clean), link: hdr.Linkname, xattrs: headerXattrs(hdr), hdrOff: hdrOff}
		switch hdr.Typeflag {
		case tar.TypeLink:
			target, ok := a.memberName(hdr.Linkname, hdrOff)
			if !ok {
				continue
			}
			e.hardlink, e.link = target, ""
		case tar.TypeReg, tar.TypeGNUSparse:
			sparse := hdr.Typeflag == tar.TypeGNUSparse || hdr.PAXRecords["GNU.sparse.major"] != "" || hdr.PAXRecords["GNU.sparse.map"] != ""
			if a.compression == CompressionNone && !sparse {
				e.off, e.retained = pos(), true
				break
			}
			if o.Retain != nil && !o.Retain(clean, hdr.Size) {
				break
			}
			if spilled+hdr.Size > o.MaxSpill {
				a.Close()
				return nil, &FormatError{File: name, Offset: hdrOff, Msg: fmt.Sprintf("member %q: decompressed data passes the %d-byte limit", clean, o.MaxSpill)}
			}
			if a.spill == nil {
				f, err := os.CreateTemp(o.TempDir, "deadnode-spill-*")
				if err != nil {
					a.Close()
					return nil, err
				}
				os.Remove(f.Name()) // private and gone on close, whatever happens
				a.spill = f
			}
			n, err := io.Copy(a.spill, tr)
			if err != nil {
				a.warnf("%s: offset %d: member %q: data truncated after %d bytes: %v", name, hdrOff, clean, n, err)
			}
			e.off, e.inSpill, e.retained = spilled, true, true
			e.st.Size = n
			spilled += n
		}
		a.entries[clean] = e
	}
	a.finish()
	return a, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
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
		a.warnf("%s: offset %d: member %q has an absolute name, read relative to the archive root", a.name, off, orig)
		n = strings.TrimLeft(n, "/")
	}
	clean, err := Clean(n)
	if err != nil {
		a.warnf("%s: offset %d: member %q climbs out of the archive with \"..\", ignored", a.name, off, orig)
		return "", false
	}
	return clean, true
}

func (a *Archive) warnf(format string, args ...any) {
	if len(a.warnings) < 1000 {
		a.warnings = append(a.warnings, fmt.Sprintf(format, args...))
	}
}

// Warnings lists what was odd in the archive (refused names, damage).
func (a *Archive) Warnings() []string { return a.warnings }

// Implicit says whether name is a directory the archive only implies: no
// member of its own, so its metadata is made up (0755, root, no times).
func (a *Archive) Implicit(name string) bool {
	e, _, err := a.lookup("implicit", name)
	return err == nil && e.implicit
}

// Hardlink returns the member a hard link member shares its data with.
func (a *Archive) Hardlink(name string) (string, bool) {
	e, _, err := a.lookup("hardlink", name)
	if err != nil || e.hardlink == "" {
		return "", false
	}
	return e.hardlink, true
}

// Compression reports how the archive was compressed.
func (a *Archive) Compression() Compression { return a.compression }

// MemberOffset returns the offset of a member's header in the uncompressed
// tar stream, for error messages.
func (a *Archive) MemberOffset(name string) int64 {
	if e := a.entries[name]; e != nil {
		return e.hdrOff
	}
	return -1
}

func headerStat(h *tar.Header, name string) Stat {
	st := Stat{
		Name:     name,
		Mode:     fs.FileMode(h.Mode & 0o777),
		UID:      uint32(h.Uid),
		GID:      uint32(h.Gid),
		Size:     h.Size,
		Nlink:    1,
		Mtime:    h.ModTime.UTC(),
		Atime:    h.AccessTime.UTC(),
		Ctime:    h.ChangeTime.UTC(),
		DevMajor: uint32(h.Devmajor),
		DevMinor: uint32(h.Devminor),
	}
	if h.AccessTime.IsZero() {
		st.Atime = time.Time{}
	}
	if h.ChangeTime.IsZero() {
		st.Ctime = time.Time{}
	}
	if v := h.PAXRecords["LIBARCHIVE.creationtime"]; v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			st.Btime = time.Unix(0, int64(f*1e9)).UTC()
		}
	}
	if h.Mode&04000 != 0 {
		st.Mode |= fs.ModeSetuid
	}
	if h.Mode&02000 != 0 {
		st.Mode |= fs.ModeSetgid
	}
	if h.Mode&01000 != 0 {
		st.Mode |= fs.ModeSticky
	}
	switch h.Typeflag {
	case tar.TypeDir:
		st.Mode |= fs.ModeDir
		st.Size = 0
	case tar.TypeSymlink:
		st.Mode |= fs.ModeSymlink
		st.Size = int64(len(h.Linkname))
	case tar.TypeChar:
		st.Mode |= fs.ModeDevice | fs.ModeCharDevice
		st.Size = 0
	case tar.TypeBlock:
		st.Mode |= fs.ModeDevice
		st.Size = 0
	case tar.TypeFifo:
		st.Mode |= fs.ModeNamedPipe
		st.Size = 0
	}
	return st
}

func headerXattrs(h *tar.Header) map[string][]byte {
	var out map[string][]byte
	for k, v := range h.PAXRecords {
		var name string
		var val []byte
		switch {
		case strings.HasPrefix(k, "SCHILY.xattr."):
			name, val = strings.TrimPrefix(k, "SCHILY.xattr."), []byte(v)
		case strings.HasPrefix(k, "LIBARCHIVE.xattr."):
			n, err := url.QueryUnescape(strings.TrimPrefix(k, "LIBARCHIVE.xattr."))
			if err != nil {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				if b, err = base64.RawStdEncoding.DecodeString(v); err != nil {
					continue
				}
			}
			name, val = n, b
		default:
			continue
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[name] = val
	}
	return out
}

// finish synthesises the root and missing parent directories, counts hard
// links, and sorts each directory's children.
func (a *Archive) finish() {
	if _, ok := a.entries["."]; !ok {
		a.entries["."] = &archEntry{st: Stat{Name: ".", Mode: fs.ModeDir | 0o755, Nlink: 1}, implicit: true}
	}
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	for _, n := range names {
		for p := path.Dir(n); n != "."; n, p = p, path.Dir(p) {
			if _, ok := a.entries[p]; !ok {
				a.entries[p] = &archEntry{st: Stat{Name: p, Mode: fs.ModeDir | 0o755, Nlink: 1}, implicit: true}
			} else {
				break
			}
		}
	}
	a.children = make(map[string][]string, len(a.entries)/4)
	for n, e := range a.entries {
		if n == "." {
			continue
		}
		p := path.Dir(n)
		if pe := a.entries[p]; pe != nil && pe.st.Mode.IsDir() {
			a.children[p] = append(a.children[p], path.Base(n))
		}
		if e.hardlink != "" {
			if t := a.entries[e.hardlink]; t != nil && t.hardlink == "" {
				t.st.Nlink++
			}
		}
	}
	for _, c := range a.children {
		sort.Strings(c)
	}
	// Synthetic inode numbers, so that hard links can be told (Nlink > 1
	// and the same Ino) as on a real filesystem.
	all := make([]string, 0, len(a.entries))
	for n := range a.entries {
		all = append(all, n)
	}
	sort.Strings(all)
	for i, n := range all {
		a.entries[n].st.Ino = uint64(i + 1)
	}
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

// lookup finds an entry; a miss under a symlink ancestor is reported as
// ErrSymlinkInPath, as the directory source does.
func (a *Archive) lookup(op, name string) (*archEntry, string, error) {
	clean, err := Clean(name)
	if err != nil {
		return nil, "", err
	}
	if e, ok := a.entries[clean]; ok {
		return e, clean, nil
	}
	for p := path.Dir(clean); p != "."; p = path.Dir(p) {
		if e, ok := a.entries[p]; ok {
			switch {
			case e.st.Mode&fs.ModeSymlink != 0:
				return nil, clean, &fs.PathError{Op: op, Path: clean, Err: ErrSymlinkInPath}
			case !e.st.Mode.IsDir():
				return nil, clean, &fs.PathError{Op: op, Path: clean, Err: unix.ENOTDIR}
			}
			break
		}
	}
	return nil, clean, &fs.PathError{Op: op, Path: clean, Err: fs.ErrNotExist}
}

// data returns the entry that holds the data of e (itself, or its hard
// link target).
func (a *Archive) dataEntry(e *archEntry) (*archEntry, error) {
	for i := 0; e.hardlink != "" && i < 8; i++ {
		t, ok := a.entries[e.hardlink]
		if !ok {
			return nil, fmt.Errorf("hard link to %q, which the archive does not hold", e.hardlink)
		}
		e = t
	}
	if e.hardlink != "" {
		return nil, errors.New("hard link chain too long")
	}
	return e, nil
}

func (a *Archive) stat(e *archEntry) *Stat {
	st := e.st
	if e.hardlink != "" {
		if t, err := a.dataEntry(e); err == nil {
			name := st.Name
			st = t.st
			st.Name = name
		} else {
			st.Mode = 0o644
		}
	}
	return &st
}

// Lstat implements Source.
func (a *Archive) Lstat(name string) (*Stat, error) {
	e, _, err := a.lookup("lstat", name)
	if err != nil {
		return nil, err
	}
	return a.stat(e), nil
}

// ReadDir implements Source.
func (a *Archive) ReadDir(name string) ([]*Stat, error) {
	e, clean, err := a.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !e.st.Mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: clean, Err: unix.ENOTDIR}
	}
	kids := a.children[clean]
	out := make([]*Stat, 0, len(kids))
	for _, k := range kids {
		out = append(out, a.stat(a.entries[join(clean, k)]))
	}
	return out, nil
}

// Readlink implements Source.
func (a *Archive) Readlink(name string) (string, error) {
	e, clean, err := a.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if e.st.Mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: clean, Err: fs.ErrInvalid}
	}
	return e.link, nil
}

// Xattrs implements Source (from PAX SCHILY.xattr.* and LIBARCHIVE.xattr.*).
func (a *Archive) Xattrs(name string) (map[string][]byte, error) {
	e, _, err := a.lookup("xattrs", name)
	if err != nil {
		return nil, err
	}
	if d, err := a.dataEntry(e); err == nil {
		e = d
	}
	return e.xattrs, nil
}

// Open implements Source.
func (a *Archive) Open(name string) (File, error) {
	e, clean, err := a.lookup("open", name)
	if err != nil {
		return nil, err
	}
	d, err := a.dataEntry(e)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: err}
	}
	if !d.st.Mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: ErrNotRegular}
	}
	if !d.retained {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: ErrNotRetained}
	}
	var ra io.ReaderAt = a.data
	if d.inSpill {
		ra = a.spill
	}
	return &sectionFile{SectionReader: io.NewSectionReader(ra, d.off, d.st.Size)}, nil
}

type sectionFile struct{ *io.SectionReader }

func (f *sectionFile) Close() error { return nil }
