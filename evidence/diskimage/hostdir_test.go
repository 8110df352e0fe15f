package diskimage

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// hostDir is a minimal vfs.Source over a host directory the test itself
// mounted (the kernel's view to compare with); the tests cannot use
// package evidence, which imports this one. It follows no link: names are
// joined to the root and lstat'ed.
type hostDir struct{ root string }

func openDirForTest(root string) (*hostDir, error) { return &hostDir{root: root}, nil }

func (d *hostDir) host(name string) string { return filepath.Join(d.root, filepath.FromSlash(name)) }

func (d *hostDir) Lstat(name string) (*vfs.Stat, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, d.host(name), unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &stx); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	ts := func(t unix.StatxTimestamp) time.Time { return time.Unix(t.Sec, int64(t.Nsec)).UTC() }
	mode := vfs.FromUnixMode(uint32(stx.Mode))
	st := &vfs.Stat{Name: name, Mode: mode, UID: stx.Uid, GID: stx.Gid, Size: int64(stx.Size), Nlink: uint64(stx.Nlink), Ino: stx.Ino,
		Atime: ts(stx.Atime), Mtime: ts(stx.Mtime), Ctime: ts(stx.Ctime)}
	if stx.Mask&unix.STATX_BTIME != 0 {
		st.Btime = ts(stx.Btime)
	}
	if mode&fs.ModeDevice != 0 {
		st.DevMajor, st.DevMinor = stx.Rdev_major, stx.Rdev_minor
	}
	return st, nil
}

func (d *hostDir) ReadDir(name string) ([]*vfs.Stat, error) {
	ents, err := os.ReadDir(d.host(name))
	if err != nil {
		return nil, err
	}
	var out []*vfs.Stat
	for _, e := range ents {
		st, err := d.Lstat(vfs.Join(name, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d *hostDir) Readlink(name string) (string, error) { return os.Readlink(d.host(name)) }

func (d *hostDir) Xattrs(name string) (map[string][]byte, error) { return nil, nil }

func (d *hostDir) Open(name string) (vfs.File, error) {
	f, err := os.Open(d.host(name))
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return hostFile{f, st.Size()}, nil
}

type hostFile struct {
	*os.File
	size int64
}

func (f hostFile) Size() int64 { return f.size }

func (d *hostDir) String() string { return d.root }
func (d *hostDir) Close() error   { return nil }
