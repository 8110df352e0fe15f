package vfs

import (
	"errors"
	"os"
	"syscall"
)

// openFlags open an evidence file: read-only, without moving its access
// time, without blocking on a FIFO or making a tty the controlling
// terminal (what a hostile name may point at; callers check the file is
// regular before reading).
const openFlags = os.O_RDONLY | syscall.O_NOATIME | syscall.O_NONBLOCK | syscall.O_NOCTTY

// OpenNoatime opens a file of the examiner's machine (an evidence file:
// an archive, a disk image) for reading without moving its access time
// (O_NOATIME), falling back to an open without it where the kernel
// refuses the flag (a file this user does not own). The open never blocks
// (O_NONBLOCK) nor takes a controlling terminal (O_NOCTTY); the file is
// then in blocking mode for reading.
func OpenNoatime(path string) (*os.File, error) {
	return openNoatime(func(flags int) (*os.File, error) { return os.OpenFile(path, flags, 0) })
}

// OpenInRootNoatime is OpenNoatime for a name inside an os.Root (the
// extents of a VMDK descriptor, the pieces of a split image).
func OpenInRootNoatime(root *os.Root, name string) (*os.File, error) {
	return openNoatime(func(flags int) (*os.File, error) { return root.OpenFile(name, flags, 0) })
}

func openNoatime(open func(flags int) (*os.File, error)) (*os.File, error) {
	f, err := open(openFlags)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) {
		f, err = open(openFlags &^ syscall.O_NOATIME)
	}
	if err != nil {
		return nil, err
	}
	f.Fd() // puts the file in blocking mode
	return f, nil
}
