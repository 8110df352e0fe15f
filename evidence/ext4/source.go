package ext4

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// maxPathDepth bounds the components of a name.
const maxPathDepth = 2048

// resolve walks name from the root directory, one component at a time,
// without following any symbolic link, and returns the inode it names.
// A directory met twice on the way is a loop in the directory structure.
func (f *FS) resolve(op, name string) (*inode, string, error) {
	clean, err := vfs.Clean(name)
	if err != nil {
		return nil, "", err
	}
	in, err := f.inode(rootIno)
	if err != nil {
		return nil, clean, &fs.PathError{Op: op, Path: clean, Err: err}
	}
	if clean == "." {
		return in, clean, nil
	}
	comps := strings.Split(clean, "/")
	if len(comps) > maxPathDepth {
		return nil, clean, &fs.PathError{Op: op, Path: clean, Err: syscall.ENAMETOOLONG}
	}
	seen := make([]uint32, 0, len(comps)+1)
	seen = append(seen, in.ino)
	for _, c := range comps {
		if !in.isDir() {
			if in.isSymlink() {
				return nil, clean, &fs.PathError{Op: op, Path: clean, Err: vfs.ErrSymlinkInPath}
			}
			return nil, clean, &fs.PathError{Op: op, Path: clean, Err: syscall.ENOTDIR}
		}
		e, ok, err := f.lookup(in, c)
		if err != nil {
			return nil, clean, &fs.PathError{Op: op, Path: clean, Err: err}
		}
		if !ok {
			return nil, clean, &fs.PathError{Op: op, Path: clean, Err: fs.ErrNotExist}
		}
		child, err := f.liveInode(e.ino)
		if err != nil {
			return nil, clean, &fs.PathError{Op: op, Path: clean, Err: err}
		}
		if child.isDir() {
			for _, s := range seen {
				if s == child.ino {
					return nil, clean, &fs.PathError{Op: op, Path: clean, Err: formatErr("directory", in.ino, in.off,
						fmt.Sprintf("entry %q names directory inode %d, an ancestor of itself (a loop)", c, child.ino))}
				}
			}
			seen = append(seen, child.ino)
		}
		in = child
	}
	return in, clean, nil
}

// bigDir is the size from which a directory not in the directory cache is
// searched through its htree index rather than read whole (about 30,000
// entries): a directory too large to keep is never read whole per lookup.
const bigDir = 1 << 20

// lookup finds one name in a directory: through the directory cache, the
// htree index of a large directory, or by reading the directory.
func (f *FS) lookup(in *inode, name string) (dirent, bool, error) {
	if d, ok := f.dirs.Get(in.ino); ok {
		e, ok := d.lookup(name, in.has(flagCasefold))
		return e, ok, d.missErr(ok)
	}
	if in.has(flagEncrypt) {
		return dirent{}, false, ErrEncrypted
	}
	if in.size >= bigDir && in.has(flagIndex) {
		if e, ok, err := f.dxLookup(in, name); err == nil {
			return e, ok, nil
		}
	}
	d, err := f.dir(in)
	if err != nil {
		return dirent{}, false, err
	}
	e, ok := d.lookup(name, in.has(flagCasefold))
	return e, ok, d.missErr(ok)
}

// missErr explains a name not found in a damaged directory.
func (d *dirIndex) missErr(found bool) error {
	if found || len(d.damage) == 0 {
		return nil
	}
	return fmt.Errorf("%w (the directory is damaged: %v)", fs.ErrNotExist, d.damage[0])
}

// liveInode returns an inode a directory entry names, refusing a free one
// (as the kernel does: the entry is stale or the directory corrupt).
func (f *FS) liveInode(ino uint32) (*inode, error) {
	in, err := f.inode(ino)
	if err != nil {
		return nil, err
	}
	if in.mode == 0 || in.links == 0 {
		return nil, formatErr("inode", ino, in.off, fmt.Sprintf("a directory entry names inode %d, which is free (mode %#o, %d links, dtime %d)", ino, in.mode, in.links, in.dtime))
	}
	return in, nil
}

// Lstat implements vfs.Source.
func (f *FS) Lstat(name string) (*vfs.Stat, error) {
	in, clean, err := f.resolve("lstat", name)
	if err != nil {
		return nil, err
	}
	return in.stat(clean), nil
}

// ReadDir implements vfs.Source. Entries are sorted by name. Damage inside
// the directory (a bad block, an entry naming a free inode) is skipped and
// reported through Warnings; only a directory that cannot be read at all
// is an error.
func (f *FS) ReadDir(name string) ([]*vfs.Stat, error) {
	in, clean, err := f.resolve("readdir", name)
	if err != nil {
		return nil, err
	}
	if !in.isDir() {
		if in.isSymlink() {
			return nil, &fs.PathError{Op: "readdir", Path: clean, Err: vfs.ErrSymlinkInPath}
		}
		return nil, &fs.PathError{Op: "readdir", Path: clean, Err: syscall.ENOTDIR}
	}
	d, err := f.dir(in)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: clean, Err: err}
	}
	out := make([]*vfs.Stat, 0, len(d.ents))
	for _, e := range d.ents {
		child, err := f.liveInode(e.ino)
		if err != nil {
			f.warnf("%s: entry %q: %v", clean, e.name, err)
			continue
		}
		out = append(out, child.stat(vfs.Join(clean, e.name)))
	}
	return out, nil
}

// Readlink implements vfs.Source.
func (f *FS) Readlink(name string) (string, error) {
	in, clean, err := f.resolve("readlink", name)
	if err != nil {
		return "", err
	}
	if !in.isSymlink() {
		return "", &fs.PathError{Op: "readlink", Path: clean, Err: fs.ErrInvalid}
	}
	t, err := f.symlinkTarget(in, nil)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: clean, Err: err}
	}
	return t, nil
}

// isFastSymlink tells, as the kernel does, whether a symlink's target is
// kept in i_block: with ea_inode by its length, otherwise by its having
// no blocks of its own.
func (f *FS) isFastSymlink(in *inode) bool {
	if f.sb.has(incompatEAInode) {
		return in.size > 0 && in.size < iBlockSize
	}
	var ea uint64
	if in.fileACL != 0 {
		ea = uint64(f.sb.clusterSize >> 9)
	}
	return in.blocks512 == ea
}

// symlinkTarget reads a symlink's target (rd: the block reader for a slow
// one's block map, nil for the FS's own). As readlink(2), it ends at the
// first NUL.
func (f *FS) symlinkTarget(in *inode, rd blockReader) (string, error) {
	if in.has(flagEncrypt) {
		return "", ErrEncrypted
	}
	if in.size > maxSymlinks {
		return "", formatErr("symlink", in.ino, in.off+inSizeLo, fmt.Sprintf("target of %d bytes (at most %d)", in.size, maxSymlinks))
	}
	var b []byte
	switch {
	case in.has(flagInlineData):
		data, err := f.inlineContent(in)
		if err != nil {
			return "", err
		}
		b = data
	case f.isFastSymlink(in):
		b = in.block[:min(int(in.size), iBlockSize-1)]
	default:
		fl := &file{f: f, in: in, size: int64(in.size), rd: rd}
		b = make([]byte, in.size)
		n, err := fl.ReadAt(b, 0)
		if err != nil && n < len(b) {
			return "", err
		}
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), nil
}

// Xattrs implements vfs.Source: the attributes getxattr(2) shows on a
// kernel mount (user., trusted., security., gnu. and the POSIX ACLs in
// their xattr form); the system.data of inline data and the fscrypt
// context are not listed, as the kernel does not list them.
func (f *FS) Xattrs(name string) (map[string][]byte, error) {
	in, clean, err := f.resolve("xattrs", name)
	if err != nil {
		return nil, err
	}
	ents, err := f.xattrEntries(in)
	if err != nil {
		return nil, &fs.PathError{Op: "xattrs", Path: clean, Err: err}
	}
	m, err := visibleXattrs(ents, in.ino)
	if err != nil {
		return m, &fs.PathError{Op: "xattrs", Path: clean, Err: err}
	}
	return m, nil
}

// Open implements vfs.Source.
func (f *FS) Open(name string) (vfs.File, error) {
	in, clean, err := f.resolve("open", name)
	if err != nil {
		return nil, err
	}
	if !in.isReg() {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: vfs.ErrNotRegular}
	}
	if in.has(flagEncrypt) {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: ErrEncrypted}
	}
	fl, err := f.openFile(in, clean)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: err}
	}
	return fl, nil
}
