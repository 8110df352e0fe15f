package vfs

import "io/fs"

// FromUnixMode converts an st_mode (type bits, rwx for all, setuid 04000,
// setgid 02000, sticky 01000) to an fs.FileMode; it is the inverse of
// UnixMode plus the type. Type bits that name no type (nor a regular file)
// give no type bit: callers that must tell look at m&0o170000 themselves.
func FromUnixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o040000: // S_IFDIR
		mode |= fs.ModeDir
	case 0o120000: // S_IFLNK
		mode |= fs.ModeSymlink
	case 0o010000: // S_IFIFO
		mode |= fs.ModeNamedPipe
	case 0o140000: // S_IFSOCK
		mode |= fs.ModeSocket
	case 0o020000: // S_IFCHR
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000: // S_IFBLK
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

// FromInodeMode is FromUnixMode for a mode read from an inode on disk
// (ext4's i_mode, XFS's di_mode): type bits that name no file type give
// fs.ModeIrregular, so that a damaged inode is not taken for a regular file.
func FromInodeMode(m uint16) fs.FileMode {
	mode := FromUnixMode(uint32(m))
	if mode.Type() == 0 && m&0o170000 != 0o100000 {
		mode |= fs.ModeIrregular
	}
	return mode
}
