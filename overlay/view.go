package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/ptr"
	"golang.org/x/sys/unix"
)

// LayerKind tells how a layer marks deletions.
type LayerKind int

const (
	// LayerDir is an overlayfs layer directory (a snapshot's fs/ dir):
	// whiteouts are char 0:0 devices or xattr whiteouts, opaque dirs and
	// renames are xattrs.
	LayerDir LayerKind = iota
	// LayerTar is an OCI layer (a layer blob, podman's rootfs-diff.tar)
	// opened as an evidence.Archive: whiteouts are .wh.NAME members and
	// opaque dirs hold .wh..wh..opq.
	LayerTar
)

func (k LayerKind) String() string {
	switch k {
	case LayerDir:
		return "dir"
	case LayerTar:
		return "tar"
	}
	return fmt.Sprintf("LayerKind(%d)", int(k))
}

// Layer is one layer of a view.
type Layer struct {
	Source evidence.Source // the evidence holding the layer
	Dir    string          // the layer root inside Source ("." for the whole source)
	Kind   LayerKind
	Name   string // how reports name the layer (snapshot dir, diff_id, file)
	// Deleted lists paths this layer removes besides its own whiteouts
	// (podman's deleted.files next to rootfs-diff.tar).
	Deleted []string
}

// XattrNamespace chooses where overlay attributes are read from.
type XattrNamespace int

const (
	// XattrAuto reads trusted.overlay.* and, failing that, user.overlay.*.
	XattrAuto XattrNamespace = iota
	// XattrTrusted reads trusted.overlay.* only (a default kernel mount).
	XattrTrusted
	// XattrUser reads user.overlay.* only (a mount with -o userxattr).
	XattrUser
)

// Options tune New. The zero value is usable.
type Options struct {
	Xattrs   XattrNamespace
	MaxDepth int // directory nesting bound (default DefaultMaxDepth)
}

// View is the merged, read-only view of an ordered list of layers, upper
// first. It is safe for concurrent use.
type View struct {
	layers   []*layer
	prefixes []string
	maxDepth int
	root     *node

	mu       sync.Mutex
	dirCache map[string]*node
}

type layer struct {
	Layer
	idx     int
	src     evidence.Source // the layer root (evidence.Sub of Source at dir)
	dir     string          // the layer root inside Source, cleaned
	deleted map[string]bool
}

// lpath is a directory of one layer taking part in a merged directory.
type lpath struct {
	li   int
	path string // inside the layer
	xw   bool   // the dir is marked overlay.opaque=x (holds xattr whiteouts)
}

// node is a resolved entry of the merged tree.
type node struct {
	path      string
	st        *evidence.Stat
	li        int
	lpath     string
	stack     []lpath // directories: every layer dir merged, top first
	opaque    bool
	redirect  string
	anomalies []evidence.Warning
	cont      *cont // where the lookup stopped, to find metacopy data
}

type cont struct {
	cands []lpath
	k     int
	abs   string
	cur   string
}

func (n *node) isDir() bool { return n.st.Mode.IsDir() }

// ErrLayer wraps problems with a layer itself (missing dir, not a dir).
var ErrLayer = errors.New("bad overlay layer")

// ErrTooDeep is matched by errors for directories nested deeper than
// MaxDepth: walks yield an *evidence.DepthError, lookups a path error. It is
// evidence.ErrTooDeep, the one sentinel of every walk.
var ErrTooDeep = evidence.ErrTooDeep

// New builds the merged view of layers (upper first).
func New(layers []Layer, opt *Options) (*View, error) {
	o := ptr.Value(opt)
	if len(layers) == 0 {
		return nil, fmt.Errorf("%w: no layers", ErrLayer)
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	v := &View{maxDepth: o.MaxDepth, dirCache: map[string]*node{}}
	switch o.Xattrs {
	case XattrTrusted:
		v.prefixes = []string{XattrTrustedPrefix}
	case XattrUser:
		v.prefixes = []string{XattrUserPrefix}
	default:
		v.prefixes = []string{XattrTrustedPrefix, XattrUserPrefix}
	}
	root := &node{path: "."}
	for i, L := range layers {
		if L.Source == nil {
			return nil, fmt.Errorf("%w %d (%s): no source", ErrLayer, i, L.Name)
		}
		dir := L.Dir
		if dir == "" {
			dir = "."
		}
		if L.Kind == LayerDir && path.Base(dir) == "work" {
			// snapshots/N/work (and its work/work) is overlayfs scratch
			// space, never content; its char 0:0 files are not whiteouts.
			if st, err := L.Source.Lstat(join(path.Dir(dir), "fs")); err == nil && st.Mode.IsDir() {
				return nil, fmt.Errorf("%w %d (%s): %s is an overlay work dir, not a layer (use %s)", ErrLayer, i, L.Name, dir, join(path.Dir(dir), "fs"))
			}
		}
		if st, err := L.Source.Lstat(dir); err == nil && !st.Mode.IsDir() {
			return nil, fmt.Errorf("%w %d (%s): %s in %s is not a directory", ErrLayer, i, L.Name, dir, L.Source)
		}
		dir, err := evidence.Clean(dir)
		if err != nil {
			return nil, fmt.Errorf("%w %d (%s): %s in %s: %w", ErrLayer, i, L.Name, L.Dir, L.Source, err)
		}
		src, err := evidence.Sub(L.Source, dir)
		if err != nil {
			return nil, fmt.Errorf("%w %d (%s): %s in %s: %w", ErrLayer, i, L.Name, dir, L.Source, err)
		}
		st, err := src.Lstat(".")
		if err != nil {
			return nil, fmt.Errorf("%w %d (%s): %s in %s: %w", ErrLayer, i, L.Name, dir, L.Source, err)
		}
		if !st.Mode.IsDir() {
			return nil, fmt.Errorf("%w %d (%s): %s in %s is not a directory", ErrLayer, i, L.Name, dir, L.Source)
		}
		l := &layer{Layer: L, idx: i, src: src, dir: dir}
		for _, d := range L.Deleted {
			c, err := evidence.Clean(d)
			if err != nil || c == "." {
				return nil, fmt.Errorf("%w %d (%s): deleted path %q: invalid", ErrLayer, i, L.Name, d)
			}
			if l.deleted == nil {
				l.deleted = map[string]bool{}
			}
			l.deleted[c] = true
		}
		v.layers = append(v.layers, l)
		lp := lpath{li: i, path: "."}
		if L.Kind == LayerDir {
			xs, err := src.Xattrs(".")
			if err != nil {
				return nil, fmt.Errorf("%w %d (%s): %w", ErrLayer, i, L.Name, err)
			}
			if b, ok := v.overlayXattr(xs, XattrOpaque); ok && len(b) == 1 && b[0] == OpaqueXWhiteouts {
				lp.xw = true
			}
		}
		root.stack = append(root.stack, lp)
		if i == 0 {
			st.Name = "."
			root.st = st
		}
	}
	if len(root.stack) > 1 {
		root.st.Nlink = 1
	}
	v.root = root
	return v, nil
}

// Layers returns the layers of the view, upper first.
func (v *View) Layers() []Layer {
	out := make([]Layer, len(v.layers))
	for i, l := range v.layers {
		out[i] = l.Layer
	}
	return out
}

type kind uint8

const (
	kMissing  kind = iota
	kWhiteout      // a whiteout, or anything that stops the lookup with no result
	kDir
	kOther
)

type probe struct {
	kind      kind
	st        *evidence.Stat
	path      string
	opaque    byte
	stopBelow bool // tar layer: .wh.NAME next to NAME hides lower NAMEs
	implicit  bool // tar layer: a parent dir the archive does not hold as a member
	redirect  *Redirect
	anomaly   *evidence.Warning
}

// Presence of a name in a layer directory, when the caller knows it from
// the directory's listing (saving an lstat where the name is absent).
const (
	unknown int8 = iota
	absentHere
	presentHere
)

func join(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}

// absent reports errors that mean "no such entry in this layer".
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, evidence.ErrSymlinkInPath)
}

// probe looks name up in one layer directory. known says whether the
// directory's listing holds the name, when the caller knows.
func (v *View) probe(l *layer, dir string, dirXW bool, name string, known int8) (probe, error) {
	p := join(dir, name)
	if l.Kind == LayerTar && !l.deleted[p] {
		if k, _ := ParseWhiteoutName(name); k != NotWhiteout {
			return probe{path: p}, nil // markers are never content
		}
	}
	var st *evidence.Stat
	if known != absentHere && !l.deleted[p] {
		var err error
		st, err = l.src.Lstat(p)
		if err != nil {
			if absent(err) {
				st = nil
			} else {
				return probe{path: p}, v.layerErr(l, err)
			}
		}
	}
	return v.classify(l, dir, dirXW, name, st)
}

// classify says what the entry st (nil: none) called name in one layer
// directory means for the merge.
func (v *View) classify(l *layer, dir string, dirXW bool, name string, st *evidence.Stat) (probe, error) {
	p := join(dir, name)
	pr := probe{path: p}
	if l.deleted[p] {
		pr.kind = kWhiteout
		return pr, nil
	}
	if l.Kind == LayerTar {
		_, err := l.src.Lstat(join(dir, WhiteoutPrefix+name))
		hasWh := err == nil
		if st == nil {
			if hasWh {
				pr.kind = kWhiteout
			}
			return pr, nil
		}
		pr.st = st
		if !st.Mode.IsDir() {
			pr.kind = kOther
			return pr, nil
		}
		pr.kind = kDir
		pr.stopBelow = hasWh
		pr.implicit = implicitDir(l, p, st)
		if _, err := l.src.Lstat(join(p, WhiteoutOpaque)); err == nil {
			pr.opaque = OpaqueYes
		}
		return pr, nil
	}
	if st == nil {
		return pr, nil
	}
	pr.st = st
	if st.IsWhiteout() {
		pr.kind = kWhiteout
		return pr, nil
	}
	if st.Mode.IsRegular() && st.Size == 0 && dirXW {
		xs, err := l.src.Xattrs(p)
		if err != nil {
			return pr, v.layerErr(l, err)
		}
		if _, ok := v.overlayXattr(xs, XattrWhiteout); ok {
			pr.kind = kWhiteout
			return pr, nil
		}
	}
	if !st.Mode.IsDir() {
		pr.kind = kOther
		return pr, nil
	}
	pr.kind = kDir
	xs, err := l.src.Xattrs(p)
	if err != nil {
		return pr, v.layerErr(l, err)
	}
	if b, ok := v.overlayXattr(xs, XattrOpaque); ok && len(b) == 1 {
		pr.opaque = b[0]
	}
	if pr.opaque != OpaqueYes { // the kernel ignores redirects on opaque dirs
		if b, ok := v.overlayXattr(xs, XattrRedirect); ok {
			r, err := ParseRedirect(b)
			switch {
			case err == nil:
				pr.redirect = &r
			case errors.Is(err, ErrRedirectEscape):
				return pr, &fs.PathError{Op: "lookup", Path: p, Err: fmt.Errorf("layer %d (%s): %w", l.idx, l.Name, err)}
			default:
				w := evidence.Warnf("", -1, "layer %d (%s): %s: %v (ignored, as the kernel does)", l.idx, l.Name, p, err)
				pr.anomaly = &w
			}
		}
	}
	return pr, nil
}

// layerErr names the layer in an error from its source, with the path
// inside the evidence (the layer dir joined back), which says which
// layer dir was read.
func (v *View) layerErr(l *layer, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		p := pe.Path
		if l.dir != "." && !strings.HasPrefix(p, l.dir+"/") && p != l.dir {
			p = join(l.dir, p)
		}
		return &fs.PathError{Op: pe.Op, Path: p, Err: fmt.Errorf("layer %d (%s): %w", l.idx, l.Name, pe.Err)}
	}
	return fmt.Errorf("layer %d (%s): %w", l.idx, l.Name, err)
}

// implicitDir tells a directory that an archive made up for members below
// it (no member of its own) from a real one.
func implicitDir(l *layer, p string, st *evidence.Stat) bool {
	if !st.Mtime.IsZero() || st.Mode != fs.ModeDir|0o755 || st.UID != 0 || st.GID != 0 {
		return false
	}
	if a, ok := l.Source.(*evidence.Archive); ok {
		dir := l.Dir
		if dir == "" {
			dir = "."
		}
		return a.Implicit(path.Join(dir, p))
	}
	return true
}

// rootsFrom returns the root dirs of the layers from index i on.
func (v *View) rootsFrom(i int) []lpath {
	if i >= len(v.root.stack) {
		return nil
	}
	return v.root.stack[i:]
}

// probeAbs looks up an absolute redirect path from the root of a layer,
// one component at a time as ovl_lookup_layer does. It returns the probe
// of the last component, the name to use in lower layers (intermediate
// redirects rewrite it) and whether lower layers are cut off.
func (v *View) probeAbs(l *layer, abs string) (probe, string, bool, error) {
	comps := strings.Split(abs, "/")
	dir, xw := ".", v.root.stack[l.idx].xw
	stop := false
	newAbs := abs
	for i, c := range comps {
		last := i == len(comps)-1
		pr, err := v.probe(l, dir, xw, c, unknown)
		if err != nil {
			return pr, newAbs, stop, err
		}
		switch pr.kind {
		case kMissing:
			return pr, newAbs, stop, nil
		case kWhiteout:
			return pr, newAbs, true, nil
		case kOther:
			if !last {
				return probe{kind: kWhiteout}, newAbs, true, nil
			}
			return pr, newAbs, stop, nil
		}
		if last {
			return pr, newAbs, stop, nil
		}
		if pr.opaque == OpaqueYes {
			stop = true
		} else if pr.redirect != nil {
			post := strings.Join(comps[i+1:], "/")
			if pr.redirect.Absolute {
				newAbs = pr.redirect.Path + "/" + post
				stop = false
			} else {
				// the path up to c as an earlier redirect rewrote it: the
				// tail from c on is never rewritten, so count from the end,
				// as the kernel does
				pre := strings.TrimSuffix(newAbs[:len(newAbs)-len(strings.Join(comps[i:], "/"))], "/")
				newAbs = join(pre, pr.redirect.Path) + "/" + post
			}
		}
		dir, xw = pr.path, pr.opaque == OpaqueXWhiteouts
	}
	return probe{}, newAbs, stop, nil
}

// lookupChild resolves name in the merged directory parent, following
// ovl_lookup: layer by layer until a whiteout, a non-directory, an opaque
// directory or the last layer; redirects change the name looked up in the
// layers below. lists, when not nil, holds the listing of each of the
// parent's layer dirs. It returns nil when the name does not exist.
func (v *View) lookupChild(parent *node, name string, known []int8) (*node, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return nil, &fs.PathError{Op: "lookup", Path: join(parent.path, name), Err: fs.ErrInvalid}
	}
	cands := parent.stack
	cur, abs := name, ""
	var n *node
	implicit := false
loop:
	for k := 0; k < len(cands); k++ {
		c := cands[k]
		l := v.layers[c.li]
		var pr probe
		var err error
		stopAfter := false
		if abs != "" {
			pr, abs, stopAfter, err = v.probeAbs(l, abs)
		} else {
			kn := unknown
			if known != nil && cur == name && len(cands) == len(parent.stack) {
				kn = known[k]
			}
			pr, err = v.probe(l, c.path, c.xw, cur, kn)
		}
		if err != nil {
			return nil, err
		}
		if pr.anomaly != nil && n != nil {
			n.anomalies = append(n.anomalies, *pr.anomaly)
		}
		switch pr.kind {
		case kMissing:
			if stopAfter {
				break loop
			}
			continue
		case kWhiteout:
			break loop
		case kOther:
			if n == nil { // else a directory above hides the non-directory
				n = v.newNode(parent, name, l, pr)
				n.cont = &cont{cands: cands, k: k + 1, abs: abs, cur: cur}
			}
			break loop
		}
		if n == nil {
			n = v.newNode(parent, name, l, pr)
			if pr.anomaly != nil {
				n.anomalies = append(n.anomalies, *pr.anomaly)
			}
			implicit = pr.implicit
		} else if implicit && !pr.implicit {
			// A parent dir a tar layer only implies takes its metadata
			// from the lower dir, as unpacking the layer over it would.
			pr.st.Name = n.path
			n.st, n.li, n.lpath = pr.st, c.li, pr.path
			implicit = false
		}
		n.stack = append(n.stack, lpath{li: c.li, path: pr.path, xw: pr.opaque == OpaqueXWhiteouts})
		if pr.opaque == OpaqueYes || pr.stopBelow || stopAfter {
			break
		}
		if pr.redirect != nil {
			if pr.redirect.Absolute {
				abs = pr.redirect.Path
				cands = v.rootsFrom(c.li + 1)
				k = -1
			} else if abs != "" {
				abs = join(path.Dir(abs), pr.redirect.Path)
			} else {
				cur = pr.redirect.Path
			}
		}
	}
	if n != nil && len(n.stack) > 1 {
		n.st.Nlink = 1 // as ovl_getattr reports merged dirs
	}
	return n, nil
}

func (v *View) newNode(parent *node, name string, l *layer, pr probe) *node {
	p := join(parent.path, name)
	st := pr.st
	st.Name = p
	n := &node{path: p, st: st, li: l.idx, lpath: pr.path}
	if st.Mode.IsDir() {
		n.opaque = pr.opaque == OpaqueYes || pr.stopBelow
		if pr.redirect != nil {
			if pr.redirect.Absolute {
				n.redirect = "/" + pr.redirect.Path
			} else {
				n.redirect = pr.redirect.Path
			}
		}
	}
	return n
}

// children streams the merged directory n: the union of its layer dirs'
// names, merged in name order as they are listed (one name list per layer
// dir, no Stat held), each resolved by lookupChild. Errors for single
// names (and unreadable layer dirs) are yielded with a nil node and the
// listing goes on. It returns false when yield stopped it.
func (v *View) children(n *node, yield func(*node, error) bool) bool {
	lists := make([][]string, len(n.stack))
	for i, c := range n.stack {
		l := v.layers[c.li]
		names, err := evidence.ReadDirNames(l.src, c.path)
		if err != nil {
			if !yield(nil, &fs.PathError{Op: "readdir", Path: n.path, Err: v.layerErr(l, err)}) {
				return false
			}
		}
		if l.Kind == LayerTar {
			kept := names[:0]
			for _, nm := range names {
				if !strings.HasPrefix(nm, WhiteoutPrefix) {
					kept = append(kept, nm)
				}
			}
			names = kept
		}
		lists[i] = names
	}
	known := make([]int8, len(lists))
	for {
		// The smallest name at the head of any list, and which lists hold it.
		name, any := "", false
		for _, ls := range lists {
			if len(ls) > 0 && (!any || ls[0] < name) {
				name, any = ls[0], true
			}
		}
		if !any {
			return true
		}
		for i, ls := range lists {
			if len(ls) > 0 && ls[0] == name {
				known[i], lists[i] = presentHere, ls[1:]
			} else {
				known[i] = absentHere
			}
		}
		child, err := v.lookupChild(n, name, known)
		switch {
		case err != nil:
			if !yield(nil, err) {
				return false
			}
		case child != nil:
			if !yield(child, nil) {
				return false
			}
		}
	}
}

// readDir lists the merged directory n whole (see children).
func (v *View) readDir(n *node) ([]*node, []error) {
	var out []*node
	var errs []error
	v.children(n, func(k *node, err error) bool {
		if err != nil {
			errs = append(errs, err)
		} else {
			out = append(out, k)
		}
		return true
	})
	return out, errs
}

// resolve walks name from the root of the merged tree. Symbolic links in
// intermediate components (and the last one when followLast) are followed
// inside the merged namespace: absolute targets restart at the merged
// root, ".." never climbs above it.
func (v *View) resolve(op, name string, followLast bool) (*node, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	nodes, _, err := evidence.FollowLinks(name, v.root, func(nodes []*node, c string, more bool) (*node, string, bool, error) {
		cur := nodes[len(nodes)-1]
		if !cur.isDir() {
			return nil, "", false, &fs.PathError{Op: op, Path: name, Err: unix.ENOTDIR}
		}
		if len(nodes) > v.maxDepth {
			return nil, "", false, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w (more than %d levels)", ErrTooDeep, v.maxDepth)}
		}
		child, err := v.cachedChild(cur, c)
		if err != nil {
			return nil, "", false, err
		}
		if child == nil {
			return nil, "", false, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if child.st.Mode&fs.ModeSymlink == 0 || !more && !followLast {
			return child, "", false, nil
		}
		target, err := v.readlink(child)
		return nil, target, true, err
	})
	if errors.Is(err, evidence.ErrTooManyLinks) || errors.Is(err, unix.ENAMETOOLONG) {
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			err = &fs.PathError{Op: op, Path: name, Err: err}
		}
	}
	if err != nil {
		return nil, err
	}
	return nodes[len(nodes)-1], nil
}

const dirCacheMax = 4096

// cachedChild looks up a child, caching directories for repeated lookups.
func (v *View) cachedChild(parent *node, name string) (*node, error) {
	key := join(parent.path, name)
	v.mu.Lock()
	if n, ok := v.dirCache[key]; ok {
		v.mu.Unlock()
		return n, nil
	}
	v.mu.Unlock()
	n, err := v.lookupChild(parent, name, nil)
	if err != nil || n == nil || !n.isDir() {
		return n, err
	}
	v.mu.Lock()
	if len(v.dirCache) >= dirCacheMax {
		clear(v.dirCache)
	}
	v.dirCache[key] = n
	v.mu.Unlock()
	return n, nil
}

func (v *View) readlink(n *node) (string, error) {
	l := v.layers[n.li]
	t, err := l.src.Readlink(n.lpath)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: n.path, Err: v.layerErr(l, err)}
	}
	return t, nil
}

// dataOf finds the file holding the data of regular file n: n itself, or
// for a metacopy file the lower file reached by its redirect or its path.
func (v *View) dataOf(n *node) (*layer, string, *Metacopy, error) {
	l := v.layers[n.li]
	if l.Kind != LayerDir || !n.st.Mode.IsRegular() {
		return l, n.lpath, nil, nil
	}
	mc, redir, err := v.metacopyAttrs(l, n.lpath)
	if err != nil || mc == nil {
		return l, n.lpath, nil, err
	}
	first := mc
	c := *n.cont
	cands := c.cands
	k := c.k
	apply := func(r *Redirect, li int) {
		if r == nil {
			return
		}
		if r.Absolute {
			c.abs = r.Path
			cands = v.rootsFrom(li + 1)
			k = 0
		} else if c.abs != "" {
			c.abs = join(path.Dir(c.abs), r.Path)
		} else {
			c.cur = r.Path
		}
	}
	apply(redir, l.idx)
	for k < len(cands) {
		cd := cands[k]
		k++
		ll := v.layers[cd.li]
		var pr probe
		if c.abs != "" {
			pr, c.abs, _, err = v.probeAbs(ll, c.abs)
		} else {
			pr, err = v.probe(ll, cd.path, cd.xw, c.cur, unknown)
		}
		if err != nil {
			return nil, "", first, err
		}
		if pr.kind == kMissing {
			continue
		}
		if pr.kind != kOther || !pr.st.Mode.IsRegular() {
			break
		}
		if ll.Kind != LayerDir {
			return ll, pr.path, first, nil
		}
		mc2, r2, err := v.metacopyAttrs(ll, pr.path)
		if err != nil {
			return nil, "", first, err
		}
		if mc2 == nil {
			return ll, pr.path, first, nil
		}
		apply(r2, ll.idx)
	}
	return nil, "", first, &fs.PathError{Op: "open", Path: n.path, Err: fmt.Errorf("metacopy file in layer %d (%s) has no lower data", l.idx, l.Name)}
}

func (v *View) metacopyAttrs(l *layer, p string) (*Metacopy, *Redirect, error) {
	xs, err := l.src.Xattrs(p)
	if err != nil {
		return nil, nil, v.layerErr(l, err)
	}
	b, ok := v.overlayXattr(xs, XattrMetacopy)
	if !ok {
		return nil, nil, nil
	}
	mc, err := ParseMetacopy(b)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: p, Err: fmt.Errorf("layer %d (%s): %w", l.idx, l.Name, err)}
	}
	var redir *Redirect
	if rb, ok := v.overlayXattr(xs, XattrRedirect); ok {
		r, err := ParseRedirect(rb)
		if err != nil {
			if errors.Is(err, ErrRedirectEscape) {
				return nil, nil, &fs.PathError{Op: "open", Path: p, Err: fmt.Errorf("layer %d (%s): %w", l.idx, l.Name, err)}
			}
		} else {
			redir = &r
		}
	}
	return &mc, redir, nil
}
