package xfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/deadnode/deadnode/evidence/vfs"
)

func pathErr(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == name {
		return err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// resolve finds the inode of name without following any symbolic link.
func (f *FS) resolve(op, name string) (string, *inode, error) {
	clean, err := vfs.Clean(name)
	if err != nil {
		return "", nil, err
	}
	if clean == "." {
		ip, err := f.getInode(f.rootIno)
		if err != nil {
			return clean, nil, pathErr(op, clean, err)
		}
		return clean, ip, nil
	}
	dir, last := path.Split(clean)
	dino, err := f.dirIno(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return clean, nil, pathErr(op, clean, err)
	}
	dip, err := f.getInode(dino)
	if err != nil {
		return clean, nil, pathErr(op, clean, err)
	}
	ino, err := f.dirLookup(dip, last)
	if err != nil {
		return clean, nil, pathErr(op, clean, err)
	}
	ip, err := f.getInode(ino)
	if err != nil {
		return clean, nil, pathErr(op, clean, err)
	}
	return clean, ip, nil
}

// dirIno returns the inode number of directory dir ("" is the root),
// through the cache of resolved directories.
func (f *FS) dirIno(dir string) (uint64, error) {
	if dir == "" || dir == "." {
		return f.rootIno, nil
	}
	if ino, ok := f.dirs.Get(dir); ok {
		return ino, nil
	}
	start, cur := "", f.rootIno
	for a := path.Dir(dir); a != "."; a = path.Dir(a) {
		if ino, ok := f.dirs.Get(a); ok {
			start, cur = a, ino
			break
		}
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(dir, start), "/")
	done := start
	for _, c := range strings.Split(rest, "/") {
		dip, err := f.getInode(cur)
		if err != nil {
			return 0, err
		}
		ino, err := f.dirLookup(dip, c)
		if err != nil {
			return 0, err
		}
		ip, err := f.getInode(ino)
		if err != nil {
			return 0, err
		}
		switch ip.typ() {
		case sIFDIR:
		case sIFLNK:
			return 0, vfs.ErrSymlinkInPath
		default:
			return 0, syscall.ENOTDIR
		}
		cur = ino
		done = vfs.Join(done, c)
		f.dirs.Put(done, cur, 1)
	}
	return cur, nil
}

// Lstat implements vfs.Source.
func (f *FS) Lstat(name string) (_ *vfs.Stat, err error) {
	defer contain(f.name, &err)
	clean, ip, err := f.resolve("lstat", name)
	if err != nil {
		return nil, err
	}
	return ip.stat(clean), nil
}

// ReadDir implements vfs.Source: the entries of a directory sorted by
// name. An entry that cannot be read (a damaged inode, a directory that
// names another parent or lists itself) is left out and reported through
// Warnings, as ext4's reader does; only a directory that cannot be read
// at all is an error. A directory shows only under the parent it names,
// so a corrupt image cannot make the tree a graph with cycles.
func (f *FS) ReadDir(name string) (_ []*vfs.Stat, err error) {
	defer contain(f.name, &err)
	clean, ip, err := f.resolve("readdir", name)
	if err != nil {
		return nil, err
	}
	if ip.typ() != sIFDIR {
		// as openat(O_DIRECTORY|O_NOFOLLOW) answers, for a link too
		return nil, pathErr("readdir", clean, syscall.ENOTDIR)
	}
	ents, err := f.dirNames(ip)
	if err != nil {
		return nil, pathErr("readdir", clean, err)
	}
	out := make([]*vfs.Stat, 0, len(ents))
	for _, e := range ents {
		child := vfs.Join(clean, e.name)
		cip, err := f.getInode(e.ino)
		if err != nil {
			f.warnf("%v: left out of its directory", pathErr("lstat", child, err))
			continue
		}
		if cip.typ() == sIFDIR {
			if parent, err := f.dirParent(cip); err != nil || parent != ip.ino || e.ino == ip.ino {
				if err == nil {
					err = ferr(cip.what("directory"), cip.pos, "linked from directory %d but names %d as its parent", ip.ino, parent)
				}
				f.warnf("%v: left out of its directory", pathErr("lstat", child, err))
				continue
			}
			f.dirs.Put(child, e.ino, 1)
		}
		out = append(out, cip.stat(child))
	}
	return out, nil
}

// Readlink implements vfs.Source.
func (f *FS) Readlink(name string) (_ string, err error) {
	defer contain(f.name, &err)
	clean, ip, err := f.resolve("readlink", name)
	if err != nil {
		return "", err
	}
	if clean == "." {
		// readlinkat(rootfd, "") answers ENOENT
		return "", pathErr("readlink", clean, fs.ErrNotExist)
	}
	if ip.typ() != sIFLNK {
		return "", pathErr("readlink", clean, syscall.EINVAL)
	}
	t, err := f.readlink(ip)
	if err != nil {
		return "", pathErr("readlink", clean, err)
	}
	return t, nil
}

// Xattrs implements vfs.Source.
func (f *FS) Xattrs(name string) (_ map[string][]byte, err error) {
	defer contain(f.name, &err)
	clean, ip, err := f.resolve("xattrs", name)
	if err != nil {
		return nil, err
	}
	m, err := f.xattrs(ip)
	if err != nil {
		return m, pathErr("xattrs", clean, err)
	}
	return m, nil
}

// ErrRealtime is returned by Open for files on the realtime device, which
// this reader does not have.
var ErrRealtime = errors.New("file data is on the XFS realtime device, which is not read")

// Open implements vfs.Source.
func (f *FS) Open(name string) (_ vfs.File, err error) {
	defer contain(f.name, &err)
	clean, ip, err := f.resolve("open", name)
	if err != nil {
		return nil, err
	}
	if ip.typ() != sIFREG {
		return nil, pathErr("open", clean, vfs.ErrNotRegular)
	}
	if ip.flags&diflagRealtime != 0 {
		return nil, pathErr("open", clean, ErrRealtime)
	}
	fk, err := f.dataFork(ip)
	if err != nil {
		return nil, pathErr("open", clean, err)
	}
	return &file{fk: fk, size: ip.size, name: clean}, nil
}

// file is an open regular file (or recovered content): its block map and
// size.
type file struct {
	fk   *fork
	size int64
	name string
	mu   sync.Mutex
	off  int64
}

var _ vfs.File = (*file)(nil)

func (x *file) Size() int64 { return x.size }

func (x *file) Close() error { return nil }

func (x *file) ReadAt(p []byte, off int64) (_ int, err error) {
	defer contain(x.name, &err)
	n, err := x.fk.readAt(p, off, x.size)
	if err != nil && err != io.EOF {
		err = pathErr("read", x.name, err)
	}
	return n, err
}

func (x *file) Read(p []byte) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	n, err := x.ReadAt(p, x.off)
	x.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (x *file) String() string { return fmt.Sprintf("xfs file %s", x.name) }
