package vfs

import "io/fs"

// The file type bits of st_mode (S_IFMT and its values), as inodes of every
// Linux filesystem and package databases (rpm) store them.
const (
	unixTypeMask = 0o170000
	unixFifo     = 0o010000
	unixChar     = 0o020000
	unixDir      = 0o040000
	unixBlock    = 0o060000
	unixSymlink  = 0o120000
	unixSocket   = 0o140000
)

// FromUnixMode converts an st_mode (type bits, rwx for all, setuid 04000,
// setgid 02000, sticky 01000) to an fs.FileMode; it is the inverse of
// UnixMode plus the type. Type bits that name no type (nor a regular file)
// give no type bit: callers that must tell look at m&0o170000 themselves.
func FromUnixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unixTypeMask {
	case unixDir:
		mode |= fs.ModeDir
	case unixSymlink:
		mode |= fs.ModeSymlink
	case unixFifo:
		mode |= fs.ModeNamedPipe
	case unixSocket:
		mode |= fs.ModeSocket
	case unixChar:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unixBlock:
		mode |= fs.ModeDevice
	}
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
