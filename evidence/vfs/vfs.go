// Package vfs holds the few types every evidence filesystem shares — the
// entry metadata (Stat), an open file (File), the read-only primitives
// (Source), their errors, and what a filesystem says of a file it no longer
// links (Deleted) — so that a filesystem reader (a directory, a tar archive,
// ext4 or XFS read from a disk image) can implement a Source without
// importing package evidence, which opens and assembles them. Package
// evidence re-exports every name here; callers use those.
package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Stat is the metadata of one entry of the evidence, as lstat(2) reports it.
// Archives carry no inode numbers: an Archive numbers its members itself
// (in name order, from 1), and a hard link has its target's number.
type Stat struct {
	Name     string      // slash-separated path relative to the source root; "." is the root
	Mode     fs.FileMode // permission and type bits (fs.ModeSymlink, fs.ModeDevice|fs.ModeCharDevice, …)
	UID      uint32
	GID      uint32
	Size     int64
	Nlink    uint64
	Ino      uint64
	DevMajor uint32 // device numbers of a block or character device
	DevMinor uint32
	Atime    time.Time
	Mtime    time.Time
	Ctime    time.Time
	Btime    time.Time // birth time; zero when the evidence does not record it
}

// IsWhiteout reports whether the entry is an overlayfs whiteout device
// (a character device with number 0:0).
func (s *Stat) IsWhiteout() bool {
	return s.Mode&fs.ModeCharDevice != 0 && s.DevMajor == 0 && s.DevMinor == 0
}

// Info adapts s to fs.FileInfo. Sys returns s.
func (s *Stat) Info() fs.FileInfo { return fileInfo{s} }

type fileInfo struct{ s *Stat }

func (fi fileInfo) Name() string       { return path.Base(fi.s.Name) }
func (fi fileInfo) Size() int64        { return fi.s.Size }
func (fi fileInfo) Mode() fs.FileMode  { return fi.s.Mode }
func (fi fileInfo) ModTime() time.Time { return fi.s.Mtime }
func (fi fileInfo) IsDir() bool        { return fi.s.Mode.IsDir() }
func (fi fileInfo) Sys() any           { return fi.s }

// File is an open regular file of the evidence.
type File interface {
	io.Reader
	io.ReaderAt
	io.Closer
	Size() int64
}

// Source is a read-only filesystem of evidence. Names are slash-separated
// and relative to the root (a leading "/" is accepted and ignored); "." is
// the root. No method follows a symbolic link in any component.
type Source interface {
	Lstat(name string) (*Stat, error)
	// ReadDir returns the entries of a directory sorted by name.
	ReadDir(name string) ([]*Stat, error)
	Readlink(name string) (string, error)
	// Xattrs returns the extended attributes of an entry (nil when none).
	Xattrs(name string) (map[string][]byte, error)
	// Open opens a regular file. Other types are refused with ErrNotRegular.
	Open(name string) (File, error)
	// String describes the source for messages (its path on the host).
	String() string
	Close() error
}

// HostPather is implemented by sources backed by a host directory; it maps
// a name to the host path for the few operations that need one (a kernel
// mount). The name must already be resolved.
type HostPather interface {
	HostPath(name string) (string, error)
}

var (
	// ErrNotRegular is returned by Open for anything but a regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrSymlinkInPath is returned when a non-final component is a symbolic
	// link: callers that want to follow links use Resolve first.
	ErrSymlinkInPath = errors.New("path crosses a symbolic link (use Resolve)")
	// ErrTooManyLinks is returned by Resolve past MaxSymlinkHops.
	ErrTooManyLinks = errors.New("too many levels of symbolic links")
	// ErrNotRetained is returned by archives opened without retaining the
	// data of a member.
	ErrNotRetained = errors.New("member data not retained")
)

// FormatError reports a malformed record inside a file of the evidence.
type FormatError struct {
	File   string // the evidence file (path inside the evidence, or on the host), or the structure ("ext4 superblock")
	Offset int64  // byte offset of the record, -1 when unknown
	Msg    string
	Err    error
}

func (e *FormatError) Error() string {
	var b strings.Builder
	where(&b, e.File, e.Offset)
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FormatError) Unwrap() error { return e.Err }

// where writes "file: offset N" (the offset when known).
func where(b *strings.Builder, file string, off int64) {
	b.WriteString(file)
	if off >= 0 {
		fmt.Fprintf(b, ": offset %d", off)
	}
}

// Clean turns a user or record path into a source name: leading slashes are
// dropped, the path is cleaned, and any ".." that would climb above the root
// is an error.
func Clean(name string) (string, error) {
	name = strings.TrimLeft(name, "/")
	if name == "" {
		return ".", nil
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", &fs.PathError{Op: "clean", Path: name, Err: fs.ErrInvalid}
		}
	}
	name = path.Clean(name)
	if strings.ContainsRune(name, 0) {
		return "", &fs.PathError{Op: "clean", Path: name, Err: fs.ErrInvalid}
	}
	return name, nil
}

// Join returns dir/name for source names ("." joins to name).
func Join(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}

// Recovery methods: how a deleted file was found.
const (
	MethodDirent  = "dirent"  // a name left in a directory block's slack (ext4 rec_len gaps, XFS freed entries)
	MethodJournal = "journal" // an older copy of the inode in the filesystem journal (ext4 jbd2, the XFS log)
	MethodInode   = "inode"   // an unlinked inode whose block map still points at data
)

// Deleted is a file a filesystem no longer links but still holds, as far as
// its own structures tell. Nothing read through Open is live content: the
// blocks may have been reused since.
type Deleted struct {
	Path      string // path within the filesystem ("" when only the inode is known)
	Inode     uint64
	Size      int64
	Mode      fs.FileMode
	UID, GID  uint32
	Atime     time.Time
	Mtime     time.Time
	Ctime     time.Time
	Btime     time.Time
	DeletedAt time.Time // the inode's deletion time (ext4 dtime), zero when unknown
	Method    string    // MethodDirent, MethodJournal or MethodInode
	// Recoverable is how many of Size bytes are mapped by the surviving
	// block map and readable through Open; Complete is true when all are
	// and no mapped block is in use by a live inode (as the allocation
	// bitmaps tell).
	Recoverable int64
	Complete    bool
	// Notes say what was doubtful (a block past the end, a reused block).
	Notes []string
	// Open reads the recovered bytes (Recoverable of them; holes read as
	// zeros). Nil when nothing is recoverable.
	Open func() (io.ReaderAt, error)
}

// Recoverer is implemented by filesystems that can list deleted files.
// Deleted lists what was deleted below dir ("." for the whole filesystem)
// that the filesystem still holds; a name is kept only where the
// filesystem's structures still carry it.
type Recoverer interface {
	Deleted(ctx context.Context, dir string) ([]Deleted, error)
}

// Warning is a problem with one record of the evidence that did not stop
// the work: the record was skipped or read in part, and the rest was read.
// It prints (and marshals to JSON) as one line, "file: offset N: message",
// so a list of warnings reads as it always has; the parts stay typed for
// programs.
type Warning struct {
	File   string // the evidence file or structure; "" when about the evidence as a whole
	Offset int64  // byte offset of the record in File; -1 when unknown
	Msg    string
}

// Warnf makes a Warning about file at offset off (-1 when unknown).
func Warnf(file string, off int64, format string, args ...any) Warning {
	return Warning{File: file, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// WarningOf turns an error into a Warning, keeping the file and offset of a
// *FormatError found in its chain.
func WarningOf(err error) Warning {
	var fe *FormatError
	if errors.As(err, &fe) && fe.Error() == err.Error() {
		msg := fe.Msg
		if fe.Err != nil {
			if msg != "" {
				msg += ": "
			}
			msg += fe.Err.Error()
		}
		return Warning{File: fe.File, Offset: fe.Offset, Msg: msg}
	}
	return Warning{Offset: -1, Msg: err.Error()}
}

func (w Warning) String() string {
	var b strings.Builder
	if w.File != "" {
		where(&b, w.File, w.Offset)
		if w.Msg != "" {
			b.WriteString(": ")
		}
	}
	b.WriteString(w.Msg)
	return b.String()
}

// Error makes a Warning usable where an iterator yields problems as errors
// (errors.As(err, &vfs.Warning{}) tells a warning from a failure).
func (w Warning) Error() string { return w.String() }

// MarshalText writes the warning as its one line.
func (w Warning) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText reads a warning back as a message (its parts are not
// recovered from the line).
func (w *Warning) UnmarshalText(b []byte) error {
	*w = Warning{Offset: -1, Msg: string(b)}
	return nil
}

// TypeName is the one vocabulary for an entry's type in every package's
// output: "file", "dir", "symlink", "char", "block", "fifo", "socket"
// (a whiteout is a "char" device 0:0; callers that care say "whiteout").
func TypeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "char"
	case m&fs.ModeDevice != 0:
		return "block"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "unknown"
}

// UnixMode is the st_mode permission bits of m as stat(2) has them:
// rwx for all, plus setuid (04000), setgid (02000) and sticky (01000).
func UnixMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// ModeString prints UnixMode as four octal digits ("0755", "4755").
func ModeString(m fs.FileMode) string { return fmt.Sprintf("%04o", UnixMode(m)) }

// NameLister is implemented by sources that can list a directory's names
// without the metadata of each entry: streaming walks hold one name per
// entry of the directory they are in, not one Stat.
type NameLister interface {
	// ReadDirNames returns the names of a directory's entries, sorted.
	ReadDirNames(name string) ([]string, error)
}
