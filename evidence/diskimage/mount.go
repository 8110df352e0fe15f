package diskimage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// maxMounts bounds the mount table entries besides the root.
const maxMounts = 256

// mount is one filesystem (or a directory of it, for a bind mount) at a
// point of the node's namespace.
type mount struct {
	point string      // source name in the node: "." for the root, "var"
	fs    *Filesystem // the filesystem mounted
	sub   string      // its directory mounted there: "." or a bind mount's source
}

// mountTable is the assembled namespace: lookups descend into the
// filesystem of the longest mount point that is a prefix of the name. No
// lookup follows a link; a mount point is a name, never resolved again.
type mountTable struct {
	name     string
	root     *mount
	mounts   map[string]*mount // by point, root included
	prefixes map[string]bool   // every mount point and each of its parents
}

func newMountTable(name string, root *Filesystem) *mountTable {
	m := &mount{point: ".", fs: root, sub: "."}
	return &mountTable{name: name, root: m, mounts: map[string]*mount{".": m}, prefixes: map[string]bool{}}
}

func (t *mountTable) add(m *mount) {
	t.mounts[m.point] = m
	for p := m.point; p != "."; p = path.Dir(p) {
		t.prefixes[p] = true
	}
}

// locate returns the mount holding the cleaned name and the name within
// the mounted filesystem.
func (t *mountTable) locate(name string) (*mount, string) {
	if len(t.mounts) == 1 || name == "." {
		return t.root, name
	}
	best := t.root
	bestLen := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			continue
		}
		p := name[:i]
		if !t.prefixes[p] {
			break
		}
		if m := t.mounts[p]; m != nil {
			best, bestLen = m, i
		}
	}
	if best == t.root {
		return best, name
	}
	rel := "."
	if bestLen < len(name) {
		rel = name[bestLen+1:]
	}
	if best.sub != "." {
		rel = vfs.Join(best.sub, rel)
		if strings.HasSuffix(rel, "/.") {
			rel = best.sub
		}
	}
	return best, rel
}

// at maps a node name to its filesystem and its name there.
func (im *Image) at(op, name string) (*mount, string, string, error) {
	c, err := vfs.Clean(name)
	if err != nil {
		return nil, "", "", err
	}
	m, rel := im.table.locate(c)
	return m, rel, c, nil
}

// nodeErr renames the path of an error the filesystem gave (its own name
// rel) to the node's name.
func nodeErr(err error, rel, name string) error {
	var pe *fs.PathError
	if rel != name && errors.As(err, &pe) && pe.Path == rel && err == error(pe) {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return err
}

// Lstat implements vfs.Source.
func (im *Image) Lstat(name string) (*vfs.Stat, error) {
	m, rel, c, err := im.at("lstat", name)
	if err != nil {
		return nil, err
	}
	st, err := m.fs.src.Lstat(rel)
	if err != nil {
		return nil, nodeErr(err, rel, c)
	}
	st.Name = c
	return st, nil
}

// ReadDir implements vfs.Source: a mount point's entry is the mounted
// filesystem's root, as the kernel's stat of it reports.
func (im *Image) ReadDir(name string) ([]*vfs.Stat, error) {
	m, rel, c, err := im.at("readdir", name)
	if err != nil {
		return nil, err
	}
	ents, err := m.fs.src.ReadDir(rel)
	if err != nil {
		return nil, nodeErr(err, rel, c)
	}
	for i, st := range ents {
		child := vfs.Join(c, path.Base(st.Name))
		st.Name = child
		if len(im.table.mounts) > 1 && im.table.prefixes[child] {
			if mm := im.table.mounts[child]; mm != nil {
				if ms, err := mm.fs.src.Lstat(mm.sub); err == nil {
					ms.Name = child
					ents[i] = ms
				}
			}
		}
	}
	return ents, nil
}

// Readlink implements vfs.Source.
func (im *Image) Readlink(name string) (string, error) {
	m, rel, c, err := im.at("readlink", name)
	if err != nil {
		return "", err
	}
	t, err := m.fs.src.Readlink(rel)
	return t, nodeErr(err, rel, c)
}

// Xattrs implements vfs.Source.
func (im *Image) Xattrs(name string) (map[string][]byte, error) {
	m, rel, c, err := im.at("xattrs", name)
	if err != nil {
		return nil, err
	}
	x, err := m.fs.src.Xattrs(rel)
	return x, nodeErr(err, rel, c)
}

// Open implements vfs.Source.
func (im *Image) Open(name string) (vfs.File, error) {
	m, rel, c, err := im.at("open", name)
	if err != nil {
		return nil, err
	}
	f, err := m.fs.src.Open(rel)
	return f, nodeErr(err, rel, c)
}

// String names the image (its host path).
func (im *Image) String() string { return im.Path }

// MountOf returns the filesystem a node name lies on, and the name within
// it.
func (im *Image) MountOf(name string) (*Filesystem, string, error) {
	m, rel, _, err := im.at("mount", name)
	if err != nil {
		return nil, "", err
	}
	return m.fs, rel, nil
}

// Deleted implements vfs.Recoverer over the node's namespace: what was
// deleted below dir on the filesystem holding dir, and on every
// filesystem mounted below it (whole, with its entries known only by
// inode). dir "." is every mounted filesystem. Names are the node's;
// records under a directory hidden by a mount keep the filesystem's name
// with a note. Records known only by their inode say in a note which
// volume they are on.
func (im *Image) Deleted(ctx context.Context, dir string) ([]vfs.Deleted, error) {
	m, rel, c, err := im.at("deleted", dir)
	if err != nil {
		return nil, err
	}
	type job struct {
		m   *mount
		rel string
	}
	jobs := []job{{m, rel}}
	var points []string
	for p, mm := range im.table.mounts {
		if p != "." && mm != m && (c == "." || strings.HasPrefix(p, c+"/")) {
			points = append(points, p)
		}
	}
	sort.Strings(points)
	for _, p := range points {
		jobs = append(jobs, job{im.table.mounts[p], im.table.mounts[p].sub})
	}
	var out []vfs.Deleted
	done := map[string]bool{}
	for _, j := range jobs {
		key := j.m.fs.Volume + "\x00" + j.rel
		if done[key] {
			continue
		}
		done[key] = true
		ds, err := im.deletedOn(ctx, j.m, j.rel)
		if err != nil {
			return out, nodeErr(err, j.rel, c)
		}
		out = append(out, ds...)
	}
	return out, nil
}

// DeletedFS lists what was deleted on the whole filesystems holding the
// names (their files known only by inode included), with the node's names
// as Deleted gives them (through the mount of the first name on each). A
// filesystem holding several of the names, through one mount or several
// (a bind mount), is read once. A filesystem that cannot be read is an
// error naming its volume, one of the joined error returned; what the
// others hold is listed all the same.
func (im *Image) DeletedFS(ctx context.Context, names ...string) ([]vfs.Deleted, error) {
	var out []vfs.Deleted
	var errs []error
	done := map[*Filesystem]bool{}
	for _, name := range names {
		m, _, c, err := im.at("deleted", name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if done[m.fs] {
			continue
		}
		done[m.fs] = true
		ds, err := im.deletedOn(ctx, m, ".")
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("volume %s (%s, mounted at %s): %w", m.fs.Volume, m.fs.Type, slash(m.point), nodeErr(err, ".", c)))
			continue
		}
		out = append(out, ds...)
	}
	return out, errors.Join(errs...)
}

// deletedOn lists what was deleted below rel on the filesystem of m and
// maps the names to the node's.
func (im *Image) deletedOn(ctx context.Context, m *mount, rel string) ([]vfs.Deleted, error) {
	rec, ok := m.fs.src.(vfs.Recoverer)
	if !ok {
		return nil, nil
	}
	ds, err := rec.Deleted(ctx, rel)
	if err != nil {
		return nil, err
	}
	out := make([]vfs.Deleted, 0, len(ds))
	for _, d := range ds {
		d.Notes = append([]string(nil), d.Notes...)
		if d.Path == "" {
			d.Notes = append(d.Notes, fmt.Sprintf("on volume %s (%s, mounted at %s); only the inode is known", m.fs.Volume, m.fs.Type, slash(m.point)))
			out = append(out, d)
			continue
		}
		node, visible := im.nodeName(m, d.Path)
		if !visible {
			d.Notes = append(d.Notes, fmt.Sprintf("on volume %s at %s, a directory hidden by a mount on the node", m.fs.Volume, slash(d.Path)))
			d.Path = ""
		} else {
			d.Path = node
		}
		out = append(out, d)
	}
	return out, nil
}

// nodeName maps a name of the filesystem mounted by m back to the node's
// namespace; visible is false when a mount hides it there (or it lies
// outside a bind mount's directory).
func (im *Image) nodeName(m *mount, fsName string) (string, bool) {
	rel := fsName
	if m.sub != "." {
		if fsName != m.sub && !strings.HasPrefix(fsName, m.sub+"/") {
			return fsName, false
		}
		rel = strings.TrimPrefix(strings.TrimPrefix(fsName, m.sub), "/")
		if rel == "" {
			rel = "."
		}
	}
	node := rel
	if m.point != "." {
		node = vfs.Join(m.point, rel)
		if rel == "." {
			node = m.point
		}
	}
	if got, _ := im.table.locate(node); got != m {
		return fsName, false
	}
	return node, true
}

func slash(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}

// MountPoint returns the node's name of the mount point of the
// filesystem holding name ("." for the root filesystem).
func (im *Image) MountPoint(name string) (string, error) {
	m, _, _, err := im.at("mount", name)
	if err != nil {
		return "", err
	}
	return m.point, nil
}

// ReadDirNames returns the sorted names of a directory's entries, through
// the filesystem's own name listing when it has one. A mount point is
// named in its parent as the kernel's readdir names it.
func (im *Image) ReadDirNames(name string) ([]string, error) {
	m, rel, c, err := im.at("readdir", name)
	if err != nil {
		return nil, err
	}
	if nl, ok := m.fs.src.(vfs.NameLister); ok {
		names, err := nl.ReadDirNames(rel)
		return names, nodeErr(err, rel, c)
	}
	ents, err := m.fs.src.ReadDir(rel)
	if err != nil {
		return nil, nodeErr(err, rel, c)
	}
	out := make([]string, len(ents))
	for i, st := range ents {
		out[i] = path.Base(st.Name)
	}
	return out, nil
}
