package evidence

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// MaxDirEntries bounds the entries ReadDir returns for one directory.
const MaxDirEntries = 1 << 22

// Dir is a Source over a host directory (a mounted image). Every access is
// made relative to a file descriptor of the root, one component at a time
// with O_NOFOLLOW, so nothing outside the root is ever reached. Where the
// process may (CAP_SYS_ADMIN), that root is a private read-only, noatime
// clone of the mount, so the kernel itself refuses any change. A Dir is
// safe for concurrent use.
type Dir struct {
	path  string
	fd    int
	clone bool // fd is the root of a private read-only, noatime mount clone

	mu    sync.Mutex
	cache map[string]*cachedDir
	byFD  map[int]*cachedDir
	lru   *list.List

	warnMu   sync.Mutex
	warnings []string // what reading met and went past (an entry left out)
	warnSeen map[string]bool
}

// maxDirWarnings bounds the warnings a Dir keeps.
const maxDirWarnings = 1000

func (d *Dir) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.warnMu.Lock()
	defer d.warnMu.Unlock()
	if d.warnSeen[msg] || len(d.warnings) >= maxDirWarnings {
		return
	}
	if d.warnSeen == nil {
		d.warnSeen = map[string]bool{}
	}
	d.warnSeen[msg] = true
	d.warnings = append(d.warnings, msg)
}

// Warnings are what reading the directory met and went past so far: an
// entry that could not be stat'ed and was left out of its directory's
// listing, a listing cut short.
func (d *Dir) Warnings() []string {
	d.warnMu.Lock()
	defer d.warnMu.Unlock()
	return append([]string(nil), d.warnings...)
}

// OpenDir opens a host directory as evidence.
func OpenDir(dir string) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: abs, Err: err}
	}
	d := &Dir{path: abs, fd: fd}
	if clone, ok := readOnlyClone(fd); ok {
		unix.Close(fd)
		d.fd, d.clone = clone, true
	}
	return d, nil
}

// readOnlyClone makes a private, detached copy of the mount(s) under fd
// (open_tree with OPEN_TREE_CLONE, never attached anywhere) and marks it
// read-only and noatime, so that no read through it — not even readlink,
// which has no O_NOATIME — can change anything of the evidence. It needs
// CAP_SYS_ADMIN; without it the caller keeps the plain descriptor.
func readOnlyClone(fd int) (int, bool) {
	clone, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return -1, false
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOATIME, Attr_clr: unix.MOUNT_ATTR__ATIME}
	if err := unix.MountSetattr(clone, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(clone)
		return -1, false
	}
	return clone, true
}

// ReadOnlyClone says whether reads go through a private read-only,
// noatime clone of the evidence's mount (see OpenDir).
func (d *Dir) ReadOnlyClone() bool { return d.clone }

func (d *Dir) String() string { return d.path }

// Close releases the root descriptor.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	d.mu.Lock()
	for fd := range d.byFD {
		unix.Close(fd)
	}
	d.cache, d.byFD, d.lru = nil, nil, nil
	d.mu.Unlock()
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// ReadOnlyMount says whether the root is on a read-only mount. On a
// writable mount the kernel may update the access time of a symbolic link
// when its target is read (readlink has no O_NOATIME), and, for a process
// without CAP_FOWNER, of files and directories it does not own (the kernel
// refuses O_NOATIME on them and they are opened without it).
func (d *Dir) ReadOnlyMount() bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(d.fd, &st); err != nil {
		return false
	}
	return st.Flags&unix.ST_RDONLY != 0
}

// HostPath returns the host path of a (resolved) name.
func (d *Dir) HostPath(name string) (string, error) {
	name, err := Clean(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(d.path, filepath.FromSlash(name)), nil
}

// parent returns a descriptor (O_PATH) of the directory holding name's
// last component, and that component; for the root itself last is "".
// Directory descriptors are kept in a small LRU cache, so that a walk does
// not reopen every component of a deep path for each entry; the caller
// hands the descriptor back with closeParent.
func (d *Dir) parent(op, name string) (int, string, string, error) {
	name, err := Clean(name)
	if err != nil {
		return -1, "", "", err
	}
	if name == "." {
		return d.fd, "", name, nil
	}
	dir, last := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return d.fd, last, name, nil
	}
	if fd, ok := d.cacheGet(dir); ok {
		return fd, last, name, nil
	}
	// Start from the deepest cached ancestor.
	start, startFD := "", d.fd
	for a := path.Dir(dir); a != "."; a = path.Dir(a) {
		if fd, ok := d.cacheGet(a); ok {
			start, startFD = a, fd
			break
		}
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(dir, start), "/")
	comps := strings.Split(rest, "/")
	fd := startFD
	for i, c := range comps {
		nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if fd != startFD {
			unix.Close(fd)
		}
		if err != nil {
			d.closeParent(startFD)
			if err == unix.ELOOP || err == unix.ENOTDIR {
				// Tell a link from a file in the way.
				var st unix.Stat_t
				bad := path.Join(start, strings.Join(comps[:i+1], "/"))
				if e2 := d.fstatat(bad, &st); e2 == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
					err = ErrSymlinkInPath
				} else {
					err = unix.ENOTDIR
				}
			}
			return -1, "", name, &fs.PathError{Op: op, Path: name, Err: mapErrno(err)}
		}
		fd = nfd
	}
	d.closeParent(startFD)
	return d.cachePut(dir, fd), last, name, nil
}

// dirCacheSize bounds the directory descriptors Dir keeps open.
const dirCacheSize = 64

type cachedDir struct {
	path    string
	fd      int
	refs    int
	evicted bool
	elem    *list.Element
}

func (d *Dir) cacheGet(dir string) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.cache[dir]
	if c == nil {
		return -1, false
	}
	c.refs++
	d.lru.MoveToFront(c.elem)
	return c.fd, true
}

// cachePut caches fd for dir with one reference and returns the
// descriptor to use (an equal one already cached wins).
func (d *Dir) cachePut(dir string, fd int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cache == nil {
		d.cache, d.byFD, d.lru = map[string]*cachedDir{}, map[int]*cachedDir{}, list.New()
	}
	if c := d.cache[dir]; c != nil {
		unix.Close(fd)
		c.refs++
		d.lru.MoveToFront(c.elem)
		return c.fd
	}
	c := &cachedDir{path: dir, fd: fd, refs: 1}
	c.elem = d.lru.PushFront(c)
	d.cache[dir], d.byFD[fd] = c, c
	for d.lru.Len() > dirCacheSize {
		old := d.lru.Back().Value.(*cachedDir)
		d.lru.Remove(old.elem)
		delete(d.cache, old.path)
		old.evicted = true
		if old.refs == 0 {
			delete(d.byFD, old.fd)
			unix.Close(old.fd)
		}
	}
	return fd
}

// fstatat lstats a path by walking it with the root-relative discipline;
// used only to explain errors.
func (d *Dir) fstatat(name string, st *unix.Stat_t) error {
	fd, last, _, err := d.parent("lstat", name)
	if err != nil {
		return err
	}
	defer d.closeParent(fd)
	return unix.Fstatat(fd, last, st, unix.AT_SYMLINK_NOFOLLOW)
}

func mapErrno(err error) error {
	switch err {
	case unix.ENOENT:
		return fs.ErrNotExist
	case unix.EACCES, unix.EPERM:
		return fs.ErrPermission
	}
	return err
}

func (d *Dir) closeParent(fd int) {
	if fd == d.fd || fd < 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.byFD[fd]
	if c == nil {
		unix.Close(fd)
		return
	}
	c.refs--
	if c.refs == 0 && c.evicted {
		delete(d.byFD, fd)
		unix.Close(fd)
	}
}

// Lstat implements Source.
func (d *Dir) Lstat(name string) (*Stat, error) {
	fd, last, clean, err := d.parent("lstat", name)
	if err != nil {
		return nil, err
	}
	defer d.closeParent(fd)
	return statxAt(fd, last, clean)
}

func statxAt(fd int, last, name string) (*Stat, error) {
	var stx unix.Statx_t
	flags := unix.AT_SYMLINK_NOFOLLOW | unix.AT_NO_AUTOMOUNT
	if last == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if err := unix.Statx(fd, last, flags, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &stx); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: mapErrno(err)}
	}
	st := &Stat{
		Name:  name,
		Mode:  vfs.FromUnixMode(uint32(stx.Mode)),
		UID:   stx.Uid,
		GID:   stx.Gid,
		Size:  int64(stx.Size),
		Nlink: uint64(stx.Nlink),
		Ino:   stx.Ino,
		Atime: tsx(stx.Atime),
		Mtime: tsx(stx.Mtime),
		Ctime: tsx(stx.Ctime),
	}
	if stx.Mask&unix.STATX_BTIME != 0 {
		st.Btime = tsx(stx.Btime)
	}
	if st.Mode&fs.ModeDevice != 0 {
		st.DevMajor, st.DevMinor = stx.Rdev_major, stx.Rdev_minor
	}
	return st, nil
}

func tsx(t unix.StatxTimestamp) time.Time { return time.Unix(t.Sec, int64(t.Nsec)).UTC() }

// openNoatime opens with O_NOATIME, retrying without it where the kernel
// refuses (files we do not own, without CAP_FOWNER).
func openNoatime(dirfd int, name string, flags int) (int, error) {
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	return fd, err
}

// readDirNames opens a directory (O_NOATIME where the kernel allows) and
// reads its names, sorted; the caller closes the returned file.
func (d *Dir) readDirNames(name string) (*os.File, string, []string, error) {
	pfd, last, clean, err := d.parent("readdir", name)
	if err != nil {
		return nil, "", nil, err
	}
	defer d.closeParent(pfd)
	target := last
	if last == "" {
		target = "."
	}
	fd, err := openNoatime(pfd, target, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		if err == unix.ELOOP {
			err = ErrSymlinkInPath
		}
		return nil, "", nil, &fs.PathError{Op: "readdir", Path: clean, Err: mapErrno(err)}
	}
	f := os.NewFile(uintptr(fd), clean)
	var names []string
	for {
		batch, err := f.Readdirnames(4096)
		names = append(names, batch...)
		if len(names) > MaxDirEntries {
			f.Close()
			return nil, "", nil, &fs.PathError{Op: "readdir", Path: clean, Err: fmt.Errorf("more than %d entries", MaxDirEntries)}
		}
		if err != nil && err != io.EOF {
			d.warnf("readdir %s: %v: the listing is cut there", clean, err)
		}
		if err != nil || len(batch) == 0 {
			break
		}
	}
	sort.Strings(names)
	return f, clean, names, nil
}

// ReadDir implements Source. An entry that cannot be stat'ed (an overlay
// metacopy without its data answers EIO) is left out, with a warning
// (Warnings), and the others are listed: one bad entry must not hide its
// siblings.
func (d *Dir) ReadDir(name string) ([]*Stat, error) {
	f, clean, names, err := d.readDirNames(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]*Stat, 0, len(names))
	for _, n := range names {
		st, err := statxAt(int(f.Fd()), n, join(clean, n))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				d.warnf("%v: left out of its directory", err)
			}
			continue
		}
		out = append(out, st)
	}
	return out, nil
}

// ReadDirNames implements NameLister.
func (d *Dir) ReadDirNames(name string) ([]string, error) {
	f, _, names, err := d.readDirNames(name)
	if err != nil {
		return nil, err
	}
	f.Close()
	return names, nil
}

// Readlink implements Source.
func (d *Dir) Readlink(name string) (string, error) {
	fd, last, clean, err := d.parent("readlink", name)
	if err != nil {
		return "", err
	}
	defer d.closeParent(fd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, last, buf)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: clean, Err: mapErrno(err)}
	}
	return string(buf[:n]), nil
}

// MaxXattrSize bounds one extended attribute value.
const MaxXattrSize = 64 << 10

// Xattrs implements Source. It reaches the entry through the parent
// directory's descriptor (/proc/self/fd/N/last, not following last).
func (d *Dir) Xattrs(name string) (map[string][]byte, error) {
	fd, last, clean, err := d.parent("xattrs", name)
	if err != nil {
		return nil, err
	}
	defer d.closeParent(fd)
	p := fmt.Sprintf("/proc/self/fd/%d", fd)
	if last != "" {
		p += "/" + last
	}
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if err == unix.ENOTSUP {
			return nil, nil
		}
		return nil, &fs.PathError{Op: "listxattr", Path: clean, Err: mapErrno(err)}
	}
	var out map[string][]byte
	val := make([]byte, MaxXattrSize)
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" {
			continue
		}
		vn, err := unix.Lgetxattr(p, k, val)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return out, &fs.PathError{Op: "getxattr " + k, Path: clean, Err: mapErrno(err)}
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[k] = append([]byte(nil), val[:vn]...)
	}
	return out, nil
}

// Open implements Source.
func (d *Dir) Open(name string) (File, error) {
	pfd, last, clean, err := d.parent("open", name)
	if err != nil {
		return nil, err
	}
	defer d.closeParent(pfd)
	if last == "" {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: ErrNotRegular}
	}
	// Refuse devices and FIFOs before opening them (opening one can have
	// side effects); O_NONBLOCK and a second check on the descriptor close
	// the race with a changing tree.
	if pre, err := statxAt(pfd, last, clean); err != nil {
		return nil, err
	} else if !pre.Mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: clean, Err: ErrNotRegular}
	}
	fd, err := openNoatime(pfd, last, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		if err == unix.ELOOP {
			err = ErrNotRegular
		}
		return nil, &fs.PathError{Op: "open", Path: clean, Err: mapErrno(err)}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: clean, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: clean, Err: ErrNotRegular}
	}
	// Back to blocking mode: os.NewFile would otherwise try to register a
	// non-blocking descriptor with the poller on every open.
	unix.SetNonblock(fd, false)
	return &osFile{File: os.NewFile(uintptr(fd), clean), size: st.Size}, nil
}

type osFile struct {
	*os.File
	size int64
}

func (f *osFile) Size() int64 { return f.size }
