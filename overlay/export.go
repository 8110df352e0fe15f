package overlay

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deadnode/deadnode/evidence"
)

// ManifestEntry records one member written by an export, for chain of
// custody.
type ManifestEntry struct {
	Path   string `json:"path"` // member name, without "./" or a trailing "/"
	Type   string `json:"type"` // dir, file, symlink, hardlink, char, block, fifo, whiteout, opaque
	Size   int64  `json:"size"` // bytes of data (the file's size for a hardlink)
	SHA256 string `json:"sha256,omitempty"`
	Mode   string `json:"mode"`           // octal permission bits with setuid/setgid/sticky, e.g. "0755"
	Link   string `json:"link,omitempty"` // symlink target or hardlink target member
}

// Progress is passed to ExportOptions.Progress after each member.
type Progress struct {
	Entries int
	Bytes   int64 // data bytes written so far
	Path    string
}

// ExportOptions tune the exports. The zero value is usable.
type ExportOptions struct {
	// NoXattrs leaves extended attributes out of the tar.
	NoXattrs bool
	// Progress, when set, is called after every member.
	Progress func(Progress)
}

type exporter struct {
	tw    *tar.Writer
	opt   ExportOptions
	buf   []byte
	h     hash.Hash
	man   []ManifestEntry
	links map[linkKey]string
	errs  []error
	prog  Progress
}

// bufPool holds the 1 MiB copy buffers of exports.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

type linkKey struct {
	layer int
	ino   uint64
}

func newExporter(w io.Writer, opt *ExportOptions) *exporter {
	x := &exporter{tw: tar.NewWriter(w), h: sha256.New(), links: map[linkKey]string{}}
	if opt != nil {
		x.opt = *opt
	}
	return x
}

// ErrOutput marks a failure of the output writer, which ends an export
// (errors.Is(err, ErrOutput)); other errors concern single entries.
var ErrOutput = errors.New("writing the tar failed")

type errWrite struct{ err error }

func (e errWrite) Error() string        { return "writing tar: " + e.err.Error() }
func (e errWrite) Unwrap() error        { return e.err }
func (e errWrite) Is(target error) bool { return target == ErrOutput }

func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 04000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 02000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 01000
	}
	return mode
}

func header(name string, st *evidence.Stat) *tar.Header {
	h := &tar.Header{
		Name:    name,
		Mode:    tarMode(st.Mode),
		Uid:     int(st.UID),
		Gid:     int(st.GID),
		ModTime: st.Mtime,
		Format:  tar.FormatPAX,
	}
	if !st.Atime.IsZero() {
		h.AccessTime = st.Atime
	}
	if !st.Ctime.IsZero() {
		h.ChangeTime = st.Ctime
	}
	return h
}

func (x *exporter) addXattrs(h *tar.Header, xs map[string][]byte) {
	if x.opt.NoXattrs || len(xs) == 0 {
		return
	}
	keys := make([]string, 0, len(xs))
	for k := range xs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			continue // not representable as a PAX key
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = string(xs[k])
	}
}

// write writes one member; open, for regular files, gives the data.
func (x *exporter) write(h *tar.Header, st *evidence.Stat, typ string, open func() (evidence.File, error)) error {
	m := ManifestEntry{Path: strings.TrimSuffix(h.Name, "/"), Type: typ, Mode: fmt.Sprintf("%04o", h.Mode), Link: h.Linkname}
	var f evidence.File
	if open != nil {
		var err error
		if f, err = open(); err != nil {
			x.errs = append(x.errs, err)
			return nil
		}
		defer f.Close()
		h.Size = f.Size()
	}
	if err := x.tw.WriteHeader(h); err != nil {
		if errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, tar.ErrHeader) {
			x.errs = append(x.errs, fmt.Errorf("%s: %w", h.Name, err))
			return nil
		}
		return errWrite{err}
	}
	if f != nil {
		if x.buf == nil {
			bp := bufPool.Get().(*[]byte)
			defer bufPool.Put(bp)
			x.buf = *bp
			defer func() { x.buf = nil }()
		}
		x.h.Reset()
		n, err := io.CopyBuffer(io.MultiWriter(x.tw, x.h), io.NewSectionReader(f, 0, h.Size), x.buf)
		if err != nil {
			if n < h.Size {
				// Keep the archive well formed: pad to the declared size.
				var werr error
				for rem := h.Size - n; rem > 0 && werr == nil; {
					z := x.buf[:min(int64(len(x.buf)), rem)]
					clear(z)
					var k int
					k, werr = x.tw.Write(z)
					rem -= int64(k)
				}
				if werr != nil {
					return errWrite{werr}
				}
			}
			x.errs = append(x.errs, fmt.Errorf("%s: data short after %d of %d bytes (zero-filled in the tar): %w", h.Name, n, h.Size, err))
		}
		m.Size = h.Size
		m.SHA256 = hex.EncodeToString(x.h.Sum(nil))
		x.prog.Bytes += n
	} else if typ == "hardlink" {
		m.Size = st.Size
		for i := len(x.man) - 1; i >= 0; i-- {
			if x.man[i].Path == h.Linkname {
				m.SHA256 = x.man[i].SHA256
				break
			}
		}
	}
	x.man = append(x.man, m)
	x.prog.Entries++
	x.prog.Path = m.Path
	if x.opt.Progress != nil {
		x.opt.Progress(x.prog)
	}
	return nil
}

// writeEntry writes an entry of a merged view under the member name name.
func (x *exporter) writeEntry(v *View, e *Entry, name string) error {
	st := e.Stat
	if st.Mode.IsDir() {
		name += "/"
	}
	h := header(name, st)
	var xs map[string][]byte
	if !x.opt.NoXattrs {
		var err error
		if xs, err = v.Xattrs(e); err != nil {
			x.errs = append(x.errs, err)
		}
	}
	x.addXattrs(h, xs)
	typ := TypeOf(st.Mode)
	var open func() (evidence.File, error)
	switch typ {
	case "dir":
		h.Typeflag = tar.TypeDir
	case "file":
		h.Typeflag = tar.TypeReg
		if st.Nlink > 1 && st.Ino != 0 {
			k := linkKey{e.Origin.Layer, st.Ino}
			if first, ok := x.links[k]; ok {
				h.Typeflag, h.Linkname = tar.TypeLink, first
				return x.write(h, st, "hardlink", nil)
			}
			x.links[k] = name
		}
		open = func() (evidence.File, error) { return v.OpenEntry(e) }
	case "symlink":
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.LinkTarget
	case "char", "block":
		h.Typeflag = tar.TypeChar
		if typ == "block" {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(st.DevMajor), int64(st.DevMinor)
	case "fifo":
		h.Typeflag = tar.TypeFifo
	default:
		x.errs = append(x.errs, fmt.Errorf("%s: %s cannot be stored in a tar, left out", e.Path, typ))
		return nil
	}
	return x.write(h, st, typ, open)
}

func (x *exporter) writeMarker(name, typ string, mtime time.Time) error {
	h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0, ModTime: mtime, Format: tar.FormatPAX}
	return x.write(h, nil, typ, nil)
}

func (x *exporter) finish() ([]ManifestEntry, error) {
	if err := x.tw.Close(); err != nil {
		return x.man, errWrite{err}
	}
	return x.man, errors.Join(x.errs...)
}

// ExportMerged writes the merged tree of v as a PAX tar to w: members in
// lexical order without the root, extended attributes as SCHILY.xattr.*
// (overlay-internal ones left out), a hard link for the second and later
// names of one layer inode. Data is streamed with one 1 MiB buffer. Errors
// for single entries are joined into the returned error and the export
// goes on; a failing writer ends it. The manifest lists every member.
func ExportMerged(w io.Writer, v *View, opt *ExportOptions) ([]ManifestEntry, error) {
	x := newExporter(w, opt)
	var fatal error
	v.WalkFunc(".", func(e *Entry, err error) error {
		if err != nil {
			x.errs = append(x.errs, err)
			return nil
		}
		if e.Path == "." {
			return nil
		}
		if err := x.writeEntry(v, e, e.Path); err != nil {
			fatal = err
			return fs.SkipAll
		}
		return nil
	})
	if fatal != nil {
		return x.man, fatal
	}
	return x.finish()
}

// ExportUpper writes the upper layer as an OCI layer diff over lower: its
// entries, a .wh.NAME member for each whiteout and .wh..wh..opq in each
// opaque directory. A renamed directory (overlay.redirect) is written whole,
// from the merged view, as an opaque directory; a metacopy file is written
// with the data of its lower file. lower may be nil when upper has no
// lower layers.
func ExportUpper(w io.Writer, upper Layer, lower *View, opt *ExportOptions) ([]ManifestEntry, error) {
	layers := []Layer{upper}
	var o *Options
	if lower != nil {
		layers = append(layers, lower.Layers()...)
		o = &Options{MaxDepth: lower.maxDepth}
		switch {
		case len(lower.prefixes) == 2:
		case lower.prefixes[0] == XattrTrustedPrefix:
			o.Xattrs = XattrTrusted
		default:
			o.Xattrs = XattrUser
		}
	}
	full, err := New(layers, o)
	if err != nil {
		return nil, err
	}
	x := newExporter(w, opt)
	if err := x.upperDir(full, full.layers[0], ".", full.root.stack[0].xw, 0); err != nil {
		return x.man, err
	}
	var dels []string
	for p := range full.layers[0].deleted {
		dels = append(dels, p)
	}
	sort.Strings(dels)
	for _, p := range dels {
		if err := x.writeMarker(whiteoutName(p), "whiteout", time.Time{}); err != nil {
			return x.man, err
		}
	}
	return x.finish()
}

func whiteoutName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1] + WhiteoutPrefix + p[i+1:]
	}
	return WhiteoutPrefix + p
}

func (x *exporter) upperDir(v *View, l *layer, dir string, xw bool, depth int) error {
	if depth >= v.maxDepth {
		x.errs = append(x.errs, &fs.PathError{Op: "export", Path: dir, Err: fmt.Errorf("%w (more than %d levels), not descended", ErrTooDeep, v.maxDepth)})
		return nil
	}
	ents, err := l.src.ReadDir(dir)
	if err != nil {
		x.errs = append(x.errs, &fs.PathError{Op: "readdir", Path: dir, Err: v.layerErr(l, err)})
	}
	for _, st := range ents {
		name := baseName(st.Name)
		p := join(dir, name)
		if l.Kind == LayerTar {
			if k, _ := ParseWhiteoutName(name); k != NotWhiteout {
				typ := "whiteout"
				if k == OpaqueWhiteout {
					typ = "opaque"
				}
				if k == WhiteoutMeta {
					continue
				}
				if err := x.writeMarker(p, typ, st.Mtime); err != nil {
					return err
				}
				continue
			}
		}
		pr, err := v.probe(l, dir, xw, name, listing(ents))
		if err != nil {
			x.errs = append(x.errs, err)
			continue
		}
		switch pr.kind {
		case kMissing:
			continue
		case kWhiteout:
			if err := x.writeMarker(whiteoutName(p), "whiteout", st.Mtime); err != nil {
				return err
			}
			continue
		}
		e, err := v.LstatEntry(p)
		if err != nil {
			x.errs = append(x.errs, err)
			continue
		}
		if e.Origin.Layer != 0 && !e.Stat.Mode.IsDir() {
			continue // not this layer's (cannot happen for the top layer)
		}
		if pr.kind == kDir && pr.redirect != nil {
			// A renamed directory: OCI has no rename, so write it whole.
			if err := x.writeEntry(v, e, p); err != nil {
				return err
			}
			if err := x.writeMarker(p+"/"+WhiteoutOpaque, "opaque", st.Mtime); err != nil {
				return err
			}
			var fatal error
			v.WalkFunc(p, func(se *Entry, err error) error {
				if err != nil {
					x.errs = append(x.errs, err)
					return nil
				}
				if se.Path == p {
					return nil
				}
				if err := x.writeEntry(v, se, se.Path); err != nil {
					fatal = err
					return fs.SkipAll
				}
				return nil
			})
			if fatal != nil {
				return fatal
			}
			continue
		}
		if err := x.writeEntry(v, e, p); err != nil {
			return err
		}
		if pr.kind == kDir {
			if pr.opaque == OpaqueYes && l.Kind == LayerDir {
				if err := x.writeMarker(p+"/"+WhiteoutOpaque, "opaque", st.Mtime); err != nil {
					return err
				}
			}
			if err := x.upperDir(v, l, p, pr.opaque == OpaqueXWhiteouts, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
