package overlay

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"iter"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/ptr"
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
	tw      *tar.Writer
	opt     ExportOptions
	buf     []byte
	h       hash.Hash
	links   map[linkKey]string // first member name of each multiply linked layer inode
	linkSum map[string]string  // sha256 of those first members
	stored  bool               // the last write stored its member in the tar
	prog    Progress
	yield   func(ManifestEntry, error) bool
}

// bufPool holds the 1 MiB copy buffers of exports.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

type linkKey struct {
	layer int
	ino   uint64
}

func newExporter(w io.Writer, opt *ExportOptions, yield func(ManifestEntry, error) bool) *exporter {
	x := &exporter{tw: tar.NewWriter(w), h: sha256.New(), links: map[linkKey]string{}, linkSum: map[string]string{}, yield: yield, opt: ptr.Value(opt)}
	return x
}

// ErrOutput marks a failure of the output writer, which ends an export
// (errors.Is(err, ErrOutput)); other errors concern single entries.
var ErrOutput = errors.New("writing the tar failed")

type errWrite struct{ err error }

func (e errWrite) Error() string        { return "writing tar: " + e.err.Error() }
func (e errWrite) Unwrap() error        { return e.err }
func (e errWrite) Is(target error) bool { return target == ErrOutput }

// errStopped ends an export whose consumer stopped the iteration.
var errStopped = errors.New("export stopped")

// report yields an error about one entry; the export goes on unless the
// consumer stops.
func (x *exporter) report(err error) error {
	if !x.yield(ManifestEntry{}, err) {
		return errStopped
	}
	return nil
}

func header(name string, st *evidence.Stat) *tar.Header {
	h := &tar.Header{
		Name:    name,
		Mode:    int64(evidence.UnixMode(st.Mode)),
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

// write writes one member; open, for regular files, gives the data. It
// returns an error only when the export must end (errWrite, errStopped).
func (x *exporter) write(h *tar.Header, st *evidence.Stat, typ string, open func() (evidence.File, error)) error {
	m := ManifestEntry{Path: strings.TrimSuffix(h.Name, "/"), Type: typ, Mode: fmt.Sprintf("%04o", h.Mode), Link: h.Linkname}
	x.stored = false
	var f evidence.File
	if open != nil {
		var err error
		if f, err = open(); err != nil {
			return x.report(err)
		}
		defer f.Close()
		h.Size = f.Size()
	}
	if err := x.tw.WriteHeader(h); err != nil {
		if errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, tar.ErrHeader) {
			return x.report(fmt.Errorf("%s: %w", h.Name, err))
		}
		return errWrite{err}
	}
	x.stored = true
	var short error
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
			short = fmt.Errorf("%s: data short after %d of %d bytes (zero-filled in the tar): %w", h.Name, n, h.Size, err)
		}
		m.Size = h.Size
		m.SHA256 = hex.EncodeToString(x.h.Sum(nil))
		if _, ok := x.linkSum[h.Name]; ok {
			x.linkSum[h.Name] = m.SHA256
		}
		x.prog.Bytes += n
	} else if typ == "hardlink" {
		m.Size = st.Size
		m.SHA256 = x.linkSum[h.Linkname]
	}
	x.prog.Entries++
	x.prog.Path = m.Path
	if x.opt.Progress != nil {
		x.opt.Progress(x.prog)
	}
	if short != nil {
		if err := x.report(short); err != nil {
			return err
		}
	}
	if !x.yield(m, nil) {
		return errStopped
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
			if err := x.report(err); err != nil {
				return err
			}
		}
	}
	x.addXattrs(h, xs)
	typ := evidence.TypeName(st.Mode)
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
			// The later names link to this one once it is in the tar: a
			// first name that could not be stored (its data unreadable)
			// leaves the next to store the data itself.
			x.linkSum[name] = ""
			err := x.write(h, st, typ, func() (evidence.File, error) { return v.OpenEntry(e) })
			if x.stored {
				x.links[k] = name
			} else {
				delete(x.linkSum, name)
			}
			return err
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
		return x.report(fmt.Errorf("%s: %s cannot be stored in a tar, left out", e.Path, typ))
	}
	return x.write(h, st, typ, open)
}

func (x *exporter) writeMarker(name, typ string, mtime time.Time) error {
	h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0, ModTime: mtime, Format: tar.FormatPAX}
	return x.write(h, nil, typ, nil)
}

// finish closes the tar: its end-of-archive blocks.
func (x *exporter) finish() {
	if err := x.tw.Close(); err != nil {
		x.yield(ManifestEntry{}, errWrite{err})
	}
}

// end yields the error that ended an export (none when the consumer
// stopped it).
func (x *exporter) end(err error) {
	if err != nil && err != errStopped {
		x.yield(ManifestEntry{}, err)
	}
}

// tree writes the merged subtree of n (n itself when withRoot), from a
// streaming walk: memory does not grow with the number of entries.
func (x *exporter) tree(ctx context.Context, v *View, n *node, withRoot bool) error {
	var fatal error
	v.walk(ctx, n, 0, "walk", func(e *Entry, err error) bool {
		switch {
		case err != nil && ctx.Err() != nil:
			fatal = err
		case err != nil:
			fatal = x.report(err)
		case e.n == n && !withRoot:
		default:
			fatal = x.writeEntry(v, e, e.Path)
		}
		return fatal == nil
	})
	return fatal
}

// ExportMerged writes the merged tree of v as a PAX tar to w: members in
// lexical order without the root, extended attributes as SCHILY.xattr.*
// (overlay-internal ones left out), a hard link for the second and later
// names of one layer inode. Data is streamed with one 1 MiB buffer, and
// the tree from a streaming walk (memory does not grow with the number of
// members). Each member's manifest entry is yielded as it is written.
// Errors for single entries are yielded (with a zero ManifestEntry) and the
// export goes on; a failing writer (errors.Is(err, ErrOutput)) or a
// cancelled ctx is yielded last. The tar is complete when the loop ends
// without a break.
func ExportMerged(ctx context.Context, w io.Writer, v *View, opt *ExportOptions) iter.Seq2[ManifestEntry, error] {
	return func(yield func(ManifestEntry, error) bool) {
		x := newExporter(w, opt, yield)
		if err := x.tree(ctx, v, v.root, false); err != nil {
			x.end(err)
			return
		}
		x.finish()
	}
}

// ExportUpper writes the upper layer as an OCI layer diff over lower: its
// entries, a .wh.NAME member for each whiteout and .wh..wh..opq in each
// opaque directory. A renamed directory (overlay.redirect) is written whole,
// from the merged view, as an opaque directory; a metacopy file is written
// with the data of its lower file. lower may be nil when upper has no
// lower layers. Members, errors and the end are yielded as ExportMerged
// yields them.
func ExportUpper(ctx context.Context, w io.Writer, upper Layer, lower *View, opt *ExportOptions) iter.Seq2[ManifestEntry, error] {
	return func(yield func(ManifestEntry, error) bool) {
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
			yield(ManifestEntry{}, err)
			return
		}
		x := newExporter(w, opt, yield)
		if err := x.upperDir(ctx, full, full.layers[0], ".", full.root, full.root.stack[0].xw, 0); err != nil {
			x.end(err)
			return
		}
		var dels []string
		for p := range full.layers[0].deleted {
			dels = append(dels, p)
		}
		sort.Strings(dels)
		for _, p := range dels {
			if err := x.writeMarker(whiteoutName(p), "whiteout", time.Time{}); err != nil {
				x.end(err)
				return
			}
		}
		x.finish()
	}
}

// CollectManifest runs an export to its end and returns the manifest and
// the errors of single entries joined; a failing writer or a cancelled
// context is returned alone.
func CollectManifest(export iter.Seq2[ManifestEntry, error]) ([]ManifestEntry, error) {
	man, _, err := drain(export, true)
	return man, err
}

// CountManifest runs an export to its end as CollectManifest does, but
// counts the members instead of keeping their entries: memory does not
// grow with them.
func CountManifest(export iter.Seq2[ManifestEntry, error]) (int, error) {
	_, n, err := drain(export, false)
	return n, err
}

func drain(export iter.Seq2[ManifestEntry, error], keep bool) ([]ManifestEntry, int, error) {
	var man []ManifestEntry
	var errs []error
	n := 0
	for m, err := range export {
		if err != nil {
			if errors.Is(err, ErrOutput) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return man, n, err
			}
			errs = append(errs, err)
			continue
		}
		n++
		if keep {
			man = append(man, m)
		}
	}
	return man, n, errors.Join(errs...)
}

func whiteoutName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1] + WhiteoutPrefix + p[i+1:]
	}
	return WhiteoutPrefix + p
}

// upperDir writes the entries of the upper layer's directory dir (merged
// node parent), streaming its names.
func (x *exporter) upperDir(ctx context.Context, v *View, l *layer, dir string, parent *node, xw bool, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth >= v.maxDepth {
		return x.report(&evidence.DepthError{Op: "export", Path: dir, Limit: v.maxDepth})
	}
	names, err := evidence.ReadDirNames(l.src, dir)
	if err != nil {
		if err := x.report(&fs.PathError{Op: "readdir", Path: dir, Err: v.layerErr(l, err)}); err != nil {
			return err
		}
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := join(dir, name)
		st, err := l.src.Lstat(p)
		if err != nil {
			if err := x.report(v.layerErr(l, err)); err != nil {
				return err
			}
			continue
		}
		if l.Kind == LayerTar {
			if k, _ := ParseWhiteoutName(name); k != NotWhiteout {
				if k == WhiteoutMeta {
					continue
				}
				typ := "whiteout"
				if k == OpaqueWhiteout {
					typ = "opaque"
				}
				if err := x.writeMarker(p, typ, st.Mtime); err != nil {
					return err
				}
				continue
			}
		}
		pr, err := v.classify(l, dir, xw, name, st)
		if err != nil {
			if err := x.report(err); err != nil {
				return err
			}
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
		n, err := v.lookupChild(parent, name, nil)
		if err == nil && n == nil {
			err = &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
		}
		if err != nil {
			if err := x.report(err); err != nil {
				return err
			}
			continue
		}
		e, err := v.entry(n)
		if err != nil {
			if err := x.report(err); err != nil {
				return err
			}
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
			if err := x.tree(ctx, v, n, false); err != nil {
				return err
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
			if err := x.upperDir(ctx, v, l, p, n, pr.opaque == OpaqueXWhiteouts, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
