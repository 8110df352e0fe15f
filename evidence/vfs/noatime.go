package vfs

import (
	"errors"
	"os"
	"syscall"
)

// OpenNoatime opens a file of the examiner's machine (an evidence file:
// an archive, a disk image) for reading without moving its access time
// (O_NOATIME), falling back to a plain read-only open where the kernel
// refuses the flag (a file this user does not own).
func OpenNoatime(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOATIME, 0)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) {
		return os.Open(path)
	}
	return f, err
}

// OpenInRootNoatime is OpenNoatime for a name inside an os.Root (the
// extents of a VMDK descriptor, the pieces of a split image).
func OpenInRootNoatime(root *os.Root, name string) (*os.File, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOATIME, 0)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) {
		return root.Open(name)
	}
	return f, err
}
