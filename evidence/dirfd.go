package evidence

import (
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// OpenDirFD opens a directory of the evidence as an O_PATH descriptor,
// reached one component at a time with O_NOFOLLOW from the root (a link in
// any component, the last one included, is refused), for the few
// operations that hand a directory to the kernel (an overlay mount's
// layers). The descriptor can name the directory only: it cannot read or
// write. Close it.
func (d *Dir) OpenDirFD(name string) (*os.File, error) {
	fd, last, clean, err := d.parent("open", name)
	if err != nil {
		return nil, err
	}
	defer d.closeParent(fd)
	if last == "" {
		nfd, err := unix.Openat(fd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: clean, Err: mapErrno(err)}
		}
		return os.NewFile(uintptr(nfd), path.Join(d.path, clean)), nil
	}
	nfd, err := unix.Openat(fd, last, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP || err == unix.ENOTDIR {
			var st unix.Stat_t
			if e2 := d.fstatat(clean, &st); e2 == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = ErrSymlinkInPath
			} else {
				err = unix.ENOTDIR
			}
		}
		return nil, &fs.PathError{Op: "open", Path: clean, Err: mapErrno(err)}
	}
	return os.NewFile(uintptr(nfd), path.Join(d.path, clean)), nil
}

// DirFDOpener is implemented by sources that can hand out directory
// descriptors (a directory evidence, or a source read from inside one).
type DirFDOpener interface {
	OpenDirFD(name string) (*os.File, error)
}
