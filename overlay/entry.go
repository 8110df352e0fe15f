package overlay

import (
	"context"
	"errors"
	"io/fs"
	"iter"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// Origin names a layer and a path inside it.
type Origin struct {
	Layer     int    `json:"layer"`      // index in the view, 0 = upper
	LayerName string `json:"layer_name"` // Layer.Name
	Path      string `json:"path"`       // path inside the layer
}

// Entry is one entry of the merged tree with the layer that supplied it.
type Entry struct {
	Path string `json:"path"` // slash-separated, relative to the merged root; "." is the root
	// Stat is the metadata as a mount would show it: that of the origin
	// layer's entry, with Name = Path and Nlink = 1 for directories merged
	// from several layers.
	Stat       *evidence.Stat `json:"-"`
	LinkTarget string         `json:"link_target,omitempty"`
	Origin     Origin         `json:"origin"`
	// Merged lists, for a directory, every layer directory whose entries
	// it shows, upper first.
	Merged    []Origin           `json:"merged,omitempty"`
	Opaque    bool               `json:"opaque,omitempty"`    // the origin dir hides lower layers
	Redirect  string             `json:"redirect,omitempty"`  // the origin dir's overlay.redirect
	Anomalies []evidence.Warning `json:"anomalies,omitempty"` // what the kernel would ignore (an invalid redirect)

	n *node
}

// Type names the entry's file type (evidence.TypeName).
func (e *Entry) Type() string { return evidence.TypeName(e.Stat.Mode) }

// TypeOf names a file type.
//
// Deprecated: use evidence.TypeName, the one vocabulary.
func TypeOf(m fs.FileMode) string { return evidence.TypeName(m) }

func (v *View) entry(n *node) (*Entry, error) {
	l := v.layers[n.li]
	e := &Entry{
		Path:      n.path,
		Stat:      n.st,
		Origin:    Origin{Layer: n.li, LayerName: l.Name, Path: n.lpath},
		Opaque:    n.opaque,
		Redirect:  n.redirect,
		Anomalies: n.anomalies,
		n:         n,
	}
	if n.isDir() {
		for _, s := range n.stack {
			e.Merged = append(e.Merged, Origin{Layer: s.li, LayerName: v.layers[s.li].Name, Path: s.path})
		}
	}
	if n.st.Mode&fs.ModeSymlink != 0 {
		t, err := v.readlink(n)
		if err != nil {
			return e, err
		}
		e.LinkTarget = t
	}
	return e, nil
}

// Symlink is the entry's link target, and whether it is a symbolic link.
func (e *Entry) Symlink() (string, bool) {
	return e.LinkTarget, e.Stat.Mode&fs.ModeSymlink != 0
}

// LstatEntry returns the entry at name without following a final symbolic
// link (intermediate links are followed inside the merged namespace). A
// leading "/" is accepted.
func (v *View) LstatEntry(name string) (*Entry, error) {
	n, err := v.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return v.entry(n)
}

// StatEntry is LstatEntry following a final symbolic link too.
func (v *View) StatEntry(name string) (*Entry, error) {
	n, err := v.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return v.entry(n)
}

// Resolve returns the path of name in the merged tree with every symbolic
// link resolved inside the merged namespace (40 hops at most).
func (v *View) Resolve(name string) (string, error) {
	n, err := v.resolve("resolve", name, true)
	if err != nil {
		return "", err
	}
	return n.path, nil
}

// ReadDirEntries lists the merged directory name (links followed), sorted.
// Entries that could not be resolved are reported in the joined error and
// left out; the rest is returned.
func (v *View) ReadDirEntries(name string) ([]*Entry, error) {
	n, err := v.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	kids, errs := v.readDir(n)
	out := make([]*Entry, 0, len(kids))
	for _, k := range kids {
		e, err := v.entry(k)
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}

var errNotDir = errors.New("not a directory")

// Xattrs returns the extended attributes of the entry as a mount shows
// them: those of its origin layer, without overlay-internal attributes.
func (v *View) Xattrs(e *Entry) (map[string][]byte, error) {
	l := v.layers[e.n.li]
	xs, err := l.src.Xattrs(e.n.lpath)
	if err != nil {
		return nil, v.layerErr(l, err)
	}
	return v.visibleXattrs(xs), nil
}

// OverlayXattrs returns the overlay-internal attributes of the entry's
// origin (opaque, redirect, origin, metacopy, …) keyed by their full name.
func (v *View) OverlayXattrs(e *Entry) (map[string][]byte, error) {
	l := v.layers[e.n.li]
	if l.Kind != LayerDir {
		return nil, nil
	}
	xs, err := l.src.Xattrs(e.n.lpath)
	if err != nil {
		return nil, v.layerErr(l, err)
	}
	var out map[string][]byte
	for k, val := range xs {
		for _, p := range v.prefixes {
			if strings.HasPrefix(k, p) && !strings.HasPrefix(k[len(p):], xattrEscapeSub) {
				if out == nil {
					out = map[string][]byte{}
				}
				out[k] = val
			}
		}
	}
	return out, nil
}

// DataOrigin tells where the data of a regular file comes from: the entry's
// origin, or for a metacopy file the lower file reached through its
// redirect or its path. mc is non-nil for a metacopy file.
func (v *View) DataOrigin(e *Entry) (o Origin, mc *Metacopy, err error) {
	l, p, mc, err := v.dataOf(e.n)
	if err != nil {
		return Origin{}, mc, err
	}
	return Origin{Layer: l.idx, LayerName: l.Name, Path: p}, mc, nil
}

// OpenEntry opens the data of a regular file entry.
func (v *View) OpenEntry(e *Entry) (evidence.File, error) {
	if !e.Stat.Mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: e.Path, Err: evidence.ErrNotRegular}
	}
	l, p, _, err := v.dataOf(e.n)
	if err != nil {
		return nil, err
	}
	f, err := l.src.Open(p)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: e.Path, Err: v.layerErr(l, err)}
	}
	return f, nil
}

// OpenFile opens the regular file name, following symbolic links inside
// the merged namespace.
func (v *View) OpenFile(name string) (evidence.File, error) {
	e, err := v.StatEntry(name)
	if err != nil {
		return nil, err
	}
	return v.OpenEntry(e)
}

// Walk streams the merged tree from root (links in root are followed,
// none below it) in lexical order, directories before their contents.
// Errors are yielded with the entry they concern: a directory that could
// not be listed completely, or nil for an entry that could not be
// resolved; a directory MaxDepth levels below root comes with an
// *evidence.DepthError (errors.Is(err, evidence.ErrTooDeep)) and is not
// descended. The walk goes on after an error; breaking the loop stops it,
// and so does cancelling ctx (ctx.Err() is yielded last). Memory holds the
// names of one directory per level and the entry being yielded: it does not
// grow with the number of entries already visited.
func (v *View) Walk(ctx context.Context, root string) iter.Seq2[*Entry, error] {
	return func(yield func(*Entry, error) bool) {
		n, err := v.resolve("walk", root, true)
		if err != nil {
			yield(nil, err)
			return
		}
		v.walk(ctx, n, 0, "walk", yield)
	}
}

func (v *View) walk(ctx context.Context, n *node, depth int, op string, yield func(*Entry, error) bool) bool {
	if err := ctx.Err(); err != nil {
		yield(nil, err)
		return false
	}
	e, err := v.entry(n)
	if !yield(e, err) {
		return false
	}
	if !n.isDir() {
		return true
	}
	if depth >= v.maxDepth {
		return yield(e, &evidence.DepthError{Op: op, Path: n.path, Limit: v.maxDepth})
	}
	return v.children(n, func(k *node, err error) bool {
		if err != nil {
			return yield(e, err)
		}
		return v.walk(ctx, k, depth+1, op, yield)
	})
}
