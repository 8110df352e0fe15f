package vfs

import (
	"io/fs"
	"testing"
)

func TestFromUnixMode(t *testing.T) {
	for _, c := range []struct {
		m    uint32
		want fs.FileMode
		typ  string
	}{
		{0o100644, 0o644, "file"},
		{0o104755, 0o755 | fs.ModeSetuid, "file"},
		{0o040755 | 0o1000, fs.ModeDir | fs.ModeSticky | 0o755, "dir"},
		{0o120777, fs.ModeSymlink | 0o777, "symlink"},
		{0o020620, fs.ModeDevice | fs.ModeCharDevice | 0o620, "char"},
		{0o060660 | 0o2000, fs.ModeDevice | fs.ModeSetgid | 0o660, "block"},
		{0o010600, fs.ModeNamedPipe | 0o600, "fifo"},
		{0o140777, fs.ModeSocket | 0o777, "socket"},
		{0o170644, 0o644, "file"}, // no type named: no type bit
	} {
		got := FromUnixMode(c.m)
		if got != c.want || TypeName(got) != c.typ {
			t.Errorf("FromUnixMode(%#o) = %v (%s), want %v (%s)", c.m, got, TypeName(got), c.want, c.typ)
		}
		if UnixMode(got) != c.m&0o7777 {
			t.Errorf("UnixMode(FromUnixMode(%#o)) = %#o", c.m, UnixMode(got))
		}
	}
}

func TestFromInodeMode(t *testing.T) {
	for _, c := range []struct {
		m    uint16
		want fs.FileMode
	}{
		{0o100644, 0o644},                                     // regular file
		{0o040755, fs.ModeDir | 0o755},                        // directory
		{0o120777, fs.ModeSymlink | 0o777},                    // symbolic link
		{0o104755, fs.ModeSetuid | 0o755},                     // setuid regular file
		{0o000644, fs.ModeIrregular | 0o644},                  // no type bits: a damaged inode
		{0o170644, fs.ModeIrregular | 0o644},                  // type 017: names nothing
		{0o030600, fs.ModeIrregular | 0o600},                  // type 003: names nothing
		{0o020620, fs.ModeDevice | fs.ModeCharDevice | 0o620}, // character device
		{0o061660, fs.ModeDevice | fs.ModeSticky | 0o660},     // block device, sticky
	} {
		if got := FromInodeMode(c.m); got != c.want {
			t.Errorf("FromInodeMode(%#o) = %v, want %v", c.m, got, c.want)
		}
	}
}
