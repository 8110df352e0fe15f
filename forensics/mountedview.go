package forensics

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/overlay"
)

// Origins of a MountedView entry besides a mount's own ("volume:<name>",
// "host:<path>", "runtime:<what>").
const (
	// OriginLayer is an entry of the container's layers (the overlay).
	OriginLayer = "layer"
	// OriginMountPoint is a directory the layers lack above a mount point
	// (the runtime made it when it mounted): shown so the mount can be
	// reached.
	OriginMountPoint = "mount_point"
)

// PseudoPath is where a MountedView shows a mount whose container path is
// unknown (a pod's writable volume that the container's OCI spec does not
// list, e.g. containers created with crictl): "/(volume:scratch)", a
// directory of the root that no container has, named after the mount's
// origin. Its files are reported under it ("/(volume:scratch)/.cache/x"),
// rather than at a mount point deadnode would have to invent.
func PseudoPath(m kube.Mount) string { return "/(" + m.Origin + ")" }

// mountAt is where a mount shows in the container: its container path, or
// its pseudo path.
func mountAt(m kube.Mount) string {
	if m.ContainerPath != nil {
		return path.Clean("/" + *m.ContainerPath)
	}
	return PseudoPath(m)
}

// ViewMount is a mount as a MountedView places it.
type ViewMount struct {
	kube.Mount
	// At is the container path the view shows the mount at: the spec's
	// destination with the links of its parent resolved in the layers (as
	// the runtime resolved them when it mounted), or PseudoPath when the
	// spec does not say.
	At string `json:"at"`
	// Placed is false for a mount shown at its pseudo path.
	Placed bool `json:"placed"`

	dir string // the content in the evidence, links resolved; "" when absent
}

// MountedView is a container's root as its processes saw it: the merged
// layers with the container's mounts over them — pod volumes (emptyDir,
// configMap, secret, projected), host paths and the files the runtime
// binds in (/etc/hosts, /etc/resolv.conf) — each at its container path,
// and the mounts whose container path is unknown at their PseudoPath.
// Every entry says where it comes from (Origin). Paths resolve as in the
// container: links are followed component by component across mounts, an
// absolute link target restarts at the container's root (never the
// node's), and ".." never climbs above it; the evidence is only read.
// It is an fs.FS (StatFS, ReadDirFS, ReadLinkFS) too. Safe for concurrent use.
type MountedView struct {
	// Root is the container's merged layers.
	Root *overlay.View
	// Mounts are the container's mounts, by At.
	Mounts []ViewMount

	src      evidence.Source
	maxDepth int
}

// MountedEntry is one entry of a MountedView.
type MountedEntry struct {
	// Path is relative to the container's root ("." the root), as
	// overlay.Entry's: "etc/hosts", "(volume:scratch)/.cache/sync.sh".
	Path       string
	Stat       *evidence.Stat // Name is Path
	LinkTarget string
	// Origin is OriginLayer, OriginMountPoint, or the mount's origin
	// ("volume:<name>", "host:<path>", "runtime:<what>").
	Origin string
	// Layer is the overlay entry when Origin is OriginLayer.
	Layer *overlay.Entry
	// Mount is the mount the entry lies in (nil for the layers).
	Mount *ViewMount
	// EvidencePath is where a mount's entry lies in the evidence ("" for
	// the layers: see Layer).
	EvidencePath string
	// Note says why an entry is synthetic (a mount point the layers lack,
	// a mount whose content is not in the evidence).
	Note string

	ep string // the evidence name behind a mount's entry
}

// Type names the entry's file type (evidence.TypeName).
func (e *MountedEntry) Type() string { return evidence.TypeName(e.Stat.Mode) }

// ContainerPath is the entry's path as the container names it ("/etc/hosts").
func (e *MountedEntry) ContainerPath() string {
	if e.Path == "." {
		return "/"
	}
	return "/" + e.Path
}

// MountedView returns a container's merged root with its mounts over it
// (see MountedView). Warnings are about the kubelet's files, and about
// mounts the view cannot place.
func (n *Node) MountedView(c *model.Container) (*MountedView, []evidence.Warning, error) {
	root, err := n.MergedView(c)
	if err != nil {
		return nil, nil, err
	}
	ms, ws := n.ContainerMounts(c, true)
	v, more := newMountedView(n.Src, root, ms)
	return v, append(ws, more...), nil
}

// newMountedView places mounts over root.
func newMountedView(src evidence.Source, root *overlay.View, mounts []kube.Mount) (*MountedView, []evidence.Warning) {
	v := &MountedView{Root: root, src: src, maxDepth: overlay.DefaultMaxDepth}
	var ws []evidence.Warning
	byAt := map[string]int{}
	for _, m := range mounts {
		vm := ViewMount{Mount: m, At: mountAt(m), Placed: m.ContainerPath != nil}
		if vm.Placed {
			if vm.At == "/" {
				ws = append(ws, evidence.Warnf(m.EvidencePath, -1, "a mount of %s over the container's root is not shown", m.Origin))
				continue
			}
			vm.At = resolveMountPoint(root, vm.At)
		}
		if m.Exists && m.EvidencePath != "" {
			if p, err := evidence.Resolve(src, m.EvidencePath, true); err == nil {
				if _, err := src.Lstat(p); err == nil {
					vm.dir = p
				}
			}
		}
		if i, ok := byAt[vm.At]; ok {
			// The later mount hides the earlier, as in the kernel.
			v.Mounts[i] = vm
			continue
		}
		byAt[vm.At] = len(v.Mounts)
		v.Mounts = append(v.Mounts, vm)
	}
	sort.SliceStable(v.Mounts, func(i, j int) bool { return v.Mounts[i].At < v.Mounts[j].At })
	return v, ws
}

// resolveMountPoint resolves the links of a mount destination's parent in
// the layers, as the runtime did when it mounted: the longest prefix that
// exists is resolved, and the rest kept (the runtime creates it).
func resolveMountPoint(root *overlay.View, at string) string {
	parts := strings.Split(strings.Trim(path.Dir(at), "/"), "/")
	for i := len(parts); i > 0; i-- {
		if r, err := root.Resolve(strings.Join(parts[:i], "/")); err == nil {
			return path.Join(append([]string{"/", r}, append(parts[i:], path.Base(at))...)...)
		}
	}
	return at
}

// mountFor returns the mount that holds the container path p (absolute,
// its components free of links) and p relative to the mount.
func (v *MountedView) mountFor(p string) (*ViewMount, string) {
	var best *ViewMount
	rel := ""
	for i := range v.Mounts {
		m := &v.Mounts[i]
		switch {
		case p == m.At:
		case strings.HasPrefix(p, m.At+"/"):
		default:
			continue
		}
		if best == nil || len(m.At) > len(best.At) {
			best, rel = m, strings.TrimPrefix(strings.TrimPrefix(p, m.At), "/")
		}
	}
	return best, rel
}

// mountAncestor says whether a mount lies below the container path p.
func (v *MountedView) mountAncestor(p string) bool {
	pre := strings.TrimSuffix(p, "/") + "/"
	for _, m := range v.Mounts {
		if strings.HasPrefix(m.At, pre) {
			return true
		}
	}
	return false
}

func relPath(p string) string {
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

func synthDir(p string, mtime time.Time) *evidence.Stat {
	return &evidence.Stat{Name: relPath(p), Mode: fs.ModeDir | 0o755, Nlink: 1, Mtime: mtime}
}

// lstat returns the entry at the container path p (absolute, its
// components free of links), not following a final link.
func (v *MountedView) lstat(p string) (*MountedEntry, error) {
	if m, rel := v.mountFor(p); m != nil {
		if m.dir == "" {
			if rel == "" {
				return &MountedEntry{Path: relPath(p), Stat: synthDir(p, time.Time{}), Origin: m.Origin, Mount: m,
					Note: "the mount's content is not in the evidence"}, nil
			}
			return nil, &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
		}
		ep := m.dir
		if rel != "" {
			ep = evidence.Join(m.dir, rel)
		}
		st, err := v.src.Lstat(ep)
		if err != nil {
			return nil, &fs.PathError{Op: "lstat", Path: p, Err: unwrapPath(err)}
		}
		return v.mountEntry(p, m, ep, st)
	}
	le, err := v.Root.LstatEntry(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && v.mountAncestor(p) {
			return &MountedEntry{Path: relPath(p), Stat: synthDir(p, time.Time{}), Origin: OriginMountPoint,
				Note: "not in the container's layers: a directory the runtime made for a mount below it"}, nil
		}
		return nil, err
	}
	return &MountedEntry{Path: relPath(p), Stat: le.Stat, LinkTarget: le.LinkTarget, Origin: OriginLayer, Layer: le}, nil
}

func (v *MountedView) mountEntry(p string, m *ViewMount, ep string, st *evidence.Stat) (*MountedEntry, error) {
	s := *st
	s.Name = relPath(p)
	e := &MountedEntry{Path: s.Name, Stat: &s, Origin: m.Origin, Mount: m, EvidencePath: "/" + strings.TrimPrefix(ep, "."), ep: ep}
	if ep == "." {
		e.EvidencePath = "/"
	}
	if st.Mode&fs.ModeSymlink != 0 {
		t, err := v.src.Readlink(ep)
		if err != nil {
			return e, &fs.PathError{Op: "readlink", Path: p, Err: unwrapPath(err)}
		}
		e.LinkTarget = t
	}
	return e, nil
}

// unwrapPath keeps the cause of an evidence error, whose path names the
// evidence and not the container.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// resolve walks name component by component in the container's
// namespace, following links inside it (evidence.FollowLinks: absolute
// targets restart at the container's root, ".." stops there).
func (v *MountedView) resolve(op, name string, follow bool) (*MountedEntry, error) {
	stack, _, err := evidence.FollowLinks(name, (*MountedEntry)(nil), func(stack []*MountedEntry, c string, more bool) (*MountedEntry, string, bool, error) {
		if len(stack)-1 >= v.maxDepth {
			return nil, "", false, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w (more than %d levels)", overlay.ErrTooDeep, v.maxDepth)}
		}
		cand := "/" + c
		if top := stack[len(stack)-1]; top != nil && top.Path != "." {
			cand = "/" + top.Path + "/" + c
		}
		ce, err := v.lstat(cand)
		if err != nil {
			return nil, "", false, &fs.PathError{Op: op, Path: name, Err: unwrapPath(err)}
		}
		if ce.Stat.Mode&fs.ModeSymlink != 0 && (more || follow) {
			return nil, ce.LinkTarget, true, nil
		}
		if !ce.Stat.Mode.IsDir() && more {
			return nil, "", false, &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
		}
		return ce, "", false, nil
	})
	if err != nil {
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			err = &fs.PathError{Op: op, Path: name, Err: err}
		}
		return nil, err
	}
	if e := stack[len(stack)-1]; e != nil {
		return e, nil
	}
	return v.lstat("/")
}

// Symlink is the entry's link target, and whether it is a symbolic link.
func (e *MountedEntry) Symlink() (string, bool) {
	return e.LinkTarget, e.Stat.Mode&fs.ModeSymlink != 0
}

// LstatEntry returns the entry at name (a container path) without
// following a final link.
func (v *MountedView) LstatEntry(name string) (*MountedEntry, error) {
	return v.resolve("lstat", name, false)
}

// StatEntry is LstatEntry following a final link too.
func (v *MountedView) StatEntry(name string) (*MountedEntry, error) {
	return v.resolve("stat", name, true)
}

// Resolve returns name's container path ("/etc/hosts") with every link
// followed in the container's namespace.
func (v *MountedView) Resolve(name string) (string, error) {
	e, err := v.StatEntry(name)
	if err != nil {
		return "", err
	}
	return e.ContainerPath(), nil
}

// ReadDirEntries lists the directory name (links followed) as the
// container saw it, sorted: the mounts below it replace (or add) the
// entries of their names. Entries that could not be read are reported in
// the joined error and left out.
func (v *MountedView) ReadDirEntries(name string) ([]*MountedEntry, error) {
	d, err := v.StatEntry(name)
	if err != nil {
		return nil, err
	}
	return v.readDir(d)
}

func (v *MountedView) readDir(d *MountedEntry) ([]*MountedEntry, error) {
	if !d.Stat.Mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: d.ContainerPath(), Err: syscall.ENOTDIR}
	}
	p := d.ContainerPath()
	var errs []error
	byName := map[string]*MountedEntry{}
	child := func(base string) string { return path.Join(p, base) }
	switch {
	case d.Mount != nil && d.ep != "":
		ents, err := v.src.ReadDir(d.ep)
		if err != nil {
			errs = append(errs, &fs.PathError{Op: "readdir", Path: p, Err: unwrapPath(err)})
		}
		for _, st := range ents {
			b := path.Base(st.Name)
			e, err := v.mountEntry(child(b), d.Mount, st.Name, st)
			if err != nil {
				errs = append(errs, err)
			}
			byName[b] = e
		}
	case d.Layer != nil:
		les, err := v.Root.ReadDirEntries(d.Layer.Path)
		if err != nil {
			errs = append(errs, err)
		}
		for _, le := range les {
			if le == nil {
				continue
			}
			b := path.Base(le.Path)
			byName[b] = &MountedEntry{Path: relPath(child(b)), Stat: le.Stat, LinkTarget: le.LinkTarget, Origin: OriginLayer, Layer: le}
		}
	}
	// The mounts (and the directories above deeper ones) below p.
	pre := strings.TrimSuffix(p, "/") + "/"
	for _, m := range v.Mounts {
		rest, ok := strings.CutPrefix(m.At, pre)
		if !ok || rest == "" {
			continue
		}
		b, _, _ := strings.Cut(rest, "/")
		if _, ok := byName[b]; ok && b != rest {
			continue // a directory on the way to a deeper mount: as it is
		}
		e, err := v.lstat(child(b))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byName[b] = e
	}
	names := make([]string, 0, len(byName))
	for b := range byName {
		names = append(names, b)
	}
	sort.Strings(names)
	out := make([]*MountedEntry, 0, len(names))
	for _, b := range names {
		out = append(out, byName[b])
	}
	return out, errors.Join(errs...)
}

// Walk yields the entries below root (links in root followed, none below
// it), directories before their contents, in lexical order; nesting
// deeper than the overlay's bound is an error and not descended. Errors
// are yielded with the entry they concern (or nil) and the walk goes on.
func (v *MountedView) Walk(root string) iter.Seq2[*MountedEntry, error] {
	return func(yield func(*MountedEntry, error) bool) {
		e, err := v.StatEntry(root)
		if err != nil {
			yield(nil, err)
			return
		}
		v.walk(e, 0, yield)
	}
}

func (v *MountedView) walk(e *MountedEntry, depth int, yield func(*MountedEntry, error) bool) bool {
	if !yield(e, nil) {
		return false
	}
	if !e.Stat.Mode.IsDir() {
		return true
	}
	if depth >= v.maxDepth {
		return yield(e, &fs.PathError{Op: "walk", Path: e.ContainerPath(), Err: fmt.Errorf("%w (more than %d levels), not descended", overlay.ErrTooDeep, v.maxDepth)})
	}
	kids, err := v.readDir(e)
	if err != nil {
		for _, ke := range splitJoined(err) {
			if !yield(e, ke) {
				return false
			}
		}
	}
	for _, k := range kids {
		if !v.walk(k, depth+1, yield) {
			return false
		}
	}
	return true
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// OpenEntry opens the data of a regular file entry.
func (v *MountedView) OpenEntry(e *MountedEntry) (evidence.File, error) {
	if !e.Stat.Mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: e.ContainerPath(), Err: evidence.ErrNotRegular}
	}
	if e.Layer != nil {
		return v.Root.OpenEntry(e.Layer)
	}
	if e.ep == "" {
		return nil, &fs.PathError{Op: "open", Path: e.ContainerPath(), Err: fs.ErrNotExist}
	}
	f, err := v.src.Open(e.ep)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: e.ContainerPath(), Err: unwrapPath(err)}
	}
	return f, nil
}

// OpenFile opens the regular file name, links followed in the
// container's namespace.
func (v *MountedView) OpenFile(name string) (evidence.File, error) {
	e, err := v.StatEntry(name)
	if err != nil {
		return nil, err
	}
	return v.OpenEntry(e)
}

// Xattrs returns an entry's extended attributes (overlay's own hidden for
// layer entries).
func (v *MountedView) Xattrs(e *MountedEntry) (map[string][]byte, error) {
	switch {
	case e.Layer != nil:
		return v.Root.Xattrs(e.Layer)
	case e.ep != "":
		return v.src.Xattrs(e.ep)
	}
	return nil, nil
}

// The view is an io/fs file system.
var (
	_ fs.FS         = (*MountedView)(nil)
	_ fs.StatFS     = (*MountedView)(nil)
	_ fs.ReadDirFS  = (*MountedView)(nil)
	_ fs.ReadLinkFS = (*MountedView)(nil)
)

// Lstat implements fs.ReadLinkFS. Sys returns the *MountedEntry.
func (v *MountedView) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	e, err := v.LstatEntry(name)
	if err != nil {
		return nil, err
	}
	return mountedInfo{e}, nil
}

// ReadLink implements fs.ReadLinkFS.
func (v *MountedView) ReadLink(name string) (string, error) {
	return overlay.ReadLinkEntry(v.LstatEntry, name)
}

// Open implements fs.FS (links followed in the container's namespace).
func (v *MountedView) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	e, err := v.StatEntry(name)
	if err != nil {
		return nil, err
	}
	mf := &mountedFile{v: v, e: e}
	if e.Stat.Mode.IsRegular() {
		f, err := v.OpenEntry(e)
		if err != nil {
			return nil, err
		}
		mf.f, mf.sr = f, io.NewSectionReader(f, 0, f.Size())
	}
	return mf, nil
}

// Stat implements fs.StatFS. Sys returns the *MountedEntry.
func (v *MountedView) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	e, err := v.StatEntry(name)
	if err != nil {
		return nil, err
	}
	return mountedInfo{e}, nil
}

// ReadDir implements fs.ReadDirFS.
func (v *MountedView) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	ents, err := v.ReadDirEntries(name)
	out := make([]fs.DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, fs.FileInfoToDirEntry(mountedInfo{e}))
	}
	return out, err
}

type mountedInfo struct{ e *MountedEntry }

func (i mountedInfo) Name() string       { return path.Base(i.e.Path) }
func (i mountedInfo) Size() int64        { return i.e.Stat.Size }
func (i mountedInfo) Mode() fs.FileMode  { return i.e.Stat.Mode }
func (i mountedInfo) ModTime() time.Time { return i.e.Stat.Mtime }
func (i mountedInfo) IsDir() bool        { return i.e.Stat.Mode.IsDir() }
func (i mountedInfo) Sys() any           { return i.e }

type mountedFile struct {
	v    *MountedView
	e    *MountedEntry
	f    evidence.File
	sr   *io.SectionReader
	kids []*MountedEntry
	read bool
}

func (f *mountedFile) Stat() (fs.FileInfo, error) { return mountedInfo{f.e}, nil }

func (f *mountedFile) Read(p []byte) (int, error) {
	if f.sr == nil {
		return 0, &fs.PathError{Op: "read", Path: f.e.ContainerPath(), Err: fs.ErrInvalid}
	}
	return f.sr.Read(p)
}

func (f *mountedFile) Close() error {
	if f.f != nil {
		return f.f.Close()
	}
	return nil
}

// ReadDir implements fs.ReadDirFile for directories.
func (f *mountedFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !f.e.Stat.Mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: f.e.ContainerPath(), Err: syscall.ENOTDIR}
	}
	var err error
	if !f.read {
		f.kids, err = f.v.readDir(f.e)
		f.read = true
	}
	k := len(f.kids)
	if n > 0 && n < k {
		k = n
	}
	out := make([]fs.DirEntry, 0, k)
	for _, e := range f.kids[:k] {
		out = append(out, fs.FileInfoToDirEntry(mountedInfo{e}))
	}
	f.kids = f.kids[k:]
	if n > 0 && len(out) == 0 && err == nil {
		return out, io.EOF
	}
	return out, err
}
