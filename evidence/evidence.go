package evidence

import (
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
	File   string // the evidence file (path inside the evidence, or on the host)
	Offset int64  // byte offset of the record, -1 when unknown
	Msg    string
	Err    error
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Offset >= 0 {
		fmt.Fprintf(&b, ": offset %d", e.Offset)
	}
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

// MaxSymlinkHops is the number of symbolic links Resolve follows, as the
// kernel's MAXSYMLINKS.
const MaxSymlinkHops = 40

// Resolve follows the symbolic links of name inside the evidence's own
// namespace: absolute targets restart at the source root, and ".." never
// climbs above it (as under chroot). When followLast is false a final
// symlink is left as it is. The result names an entry free of links in its
// intermediate components; it may not exist.
func Resolve(src Source, name string, followLast bool) (string, error) {
	rest := strings.Split(strings.Trim(name, "/"), "/")
	var cur []string
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			continue
		}
		cand := strings.Join(append(cur[:len(cur):len(cur)], c), "/")
		st, err := src.Lstat(cand)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// The rest cannot exist either; return the lexical remainder.
				out := append(cur, c)
				for _, r := range rest {
					if r == ".." && len(out) > 0 {
						out = out[:len(out)-1]
					} else if r != "" && r != "." && r != ".." {
						out = append(out, r)
					}
				}
				return joinOrDot(out), nil
			}
			return "", err
		}
		if st.Mode&fs.ModeSymlink == 0 || (len(rest) == 0 && !followLast) {
			cur = append(cur, c)
			continue
		}
		hops++
		if hops > MaxSymlinkHops {
			return "", &fs.PathError{Op: "resolve", Path: name, Err: ErrTooManyLinks}
		}
		target, err := src.Readlink(cand)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			cur = cur[:0]
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return joinOrDot(cur), nil
}

func joinOrDot(parts []string) string {
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

// ReadFile reads a whole regular file, refusing one larger than max bytes.
func ReadFile(src Source, name string, max int64) ([]byte, error) {
	f, err := src.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Size() > max {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("file is %d bytes, limit %d", f.Size(), max)}
	}
	buf := make([]byte, f.Size())
	n, err := io.ReadFull(io.NewSectionReader(f, 0, f.Size()), buf)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return buf[:n], nil
}

// WalkFunc is called for every entry by Walk. Returning fs.SkipDir on a
// directory skips it; fs.SkipAll stops the walk.
type WalkFunc func(st *Stat, err error) error

// Walk visits root and everything below it in lexical order, without
// following symbolic links. An error reading a directory is passed to fn
// with the directory's Stat, and the walk goes on.
func Walk(src Source, root string, fn WalkFunc) error {
	root, err := Clean(root)
	if err != nil {
		return fn(nil, err)
	}
	st, err := src.Lstat(root)
	if err != nil {
		return fn(nil, err)
	}
	err = walk(src, st, fn)
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

func walk(src Source, st *Stat, fn WalkFunc) error {
	if err := fn(st, nil); err != nil {
		return err
	}
	if !st.Mode.IsDir() {
		return nil
	}
	ents, err := src.ReadDir(st.Name)
	if err != nil {
		if err := fn(st, err); err != nil && err != fs.SkipDir {
			return err
		}
		return nil
	}
	for _, e := range ents {
		if err := walk(src, e, fn); err != nil {
			if err == fs.SkipDir {
				continue
			}
			return err
		}
	}
	return nil
}

// join returns dir/name for source names.
func join(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}
