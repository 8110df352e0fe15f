package evidence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// The shared types live in package vfs, so that filesystem readers can
// implement a Source without importing this package; these are the same
// types under the names callers use.
type (
	Stat        = vfs.Stat
	File        = vfs.File
	Source      = vfs.Source
	HostPather  = vfs.HostPather
	FormatError = vfs.FormatError
	Deleted     = vfs.Deleted
	Recoverer   = vfs.Recoverer
	Warning     = vfs.Warning
	NameLister  = vfs.NameLister
)

// Warnf makes a Warning about file at offset off (-1 when unknown).
func Warnf(file string, off int64, format string, args ...any) Warning {
	return vfs.Warnf(file, off, format, args...)
}

// WarningOf turns an error into a Warning, keeping the file and offset of a
// *FormatError found in its chain.
func WarningOf(err error) Warning { return vfs.WarningOf(err) }

// TypeName is the one vocabulary for an entry's type: "file", "dir",
// "symlink", "char", "block", "fifo", "socket".
func TypeName(m fs.FileMode) string { return vfs.TypeName(m) }

// ModeString prints the permission bits with setuid/setgid/sticky as four
// octal digits ("0755", "4755").
func ModeString(m fs.FileMode) string { return vfs.ModeString(m) }

// UnixMode is the st_mode permission bits of m (with setuid 04000, setgid
// 02000, sticky 01000), as tar headers and stat(2) have them.
func UnixMode(m fs.FileMode) uint32 { return vfs.UnixMode(m) }

var (
	// ErrNotRegular is returned by Open for anything but a regular file.
	ErrNotRegular = vfs.ErrNotRegular
	// ErrSymlinkInPath is returned when a non-final component is a symbolic
	// link: callers that want to follow links use Resolve first.
	ErrSymlinkInPath = vfs.ErrSymlinkInPath
	// ErrTooManyLinks is returned by Resolve past MaxSymlinkHops.
	ErrTooManyLinks = vfs.ErrTooManyLinks
	// ErrNotRetained is returned by archives opened without retaining the
	// data of a member.
	ErrNotRetained = vfs.ErrNotRetained
)

// Clean turns a user or record path into a source name: leading slashes are
// dropped, the path is cleaned, and any ".." that would climb above the root
// is an error.
func Clean(name string) (string, error) { return vfs.Clean(name) }

// MaxSymlinkHops is the number of symbolic links Resolve follows, as the
// kernel's MAXSYMLINKS.
const MaxSymlinkHops = vfs.MaxSymlinkHops

// Resolve follows the symbolic links of name inside the evidence's own
// namespace: absolute targets restart at the source root, and ".." never
// climbs above it (as under chroot). When followLast is false a final
// symlink is left as it is. The result names an entry free of links in its
// intermediate components; it may not exist.
func Resolve(src Source, name string, followLast bool) (string, error) {
	return vfs.Resolve(src, name, followLast)
}

// FollowLinks resolves name one component at a time in a namespace whose
// entries are N, following symbolic links as the kernel does but inside
// the namespace (see vfs.FollowLinks): overlay views and mounted views
// resolve their own names with it.
func FollowLinks[N any](name string, root N, step func(stack []N, c string, more bool) (child N, target string, follow bool, err error)) ([]N, []string, error) {
	return vfs.FollowLinks(name, root, step)
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

// DefaultMaxDepth is the one bound on directory nesting for every walk
// (Walk, overlay's walks and exports): a directory at that depth is
// reported with a *DepthError and not descended.
const DefaultMaxDepth = 1024

// ErrTooDeep is matched (errors.Is) by a *DepthError.
var ErrTooDeep = errors.New("directory nesting too deep")

// DepthError reports a directory nested deeper than a walk descends. The
// walk goes on beside it; the tree below is not visited. A tree this deep
// is itself a finding (a container that looped mkdir d; cd d).
type DepthError struct {
	Op    string // "walk", "export"
	Path  string // the directory not descended
	Limit int    // the bound, in levels below the walk's root
}

func (e *DepthError) Error() string {
	return fmt.Sprintf("%s %s: %v (more than %d levels), not descended", e.Op, e.Path, ErrTooDeep, e.Limit)
}

func (e *DepthError) Unwrap() error { return ErrTooDeep }

// ReadDirNames lists the names of a directory's entries, sorted, through
// the source's NameLister when it has one (no Stat per entry).
func ReadDirNames(src Source, name string) ([]string, error) {
	if nl, ok := src.(NameLister); ok {
		return nl.ReadDirNames(name)
	}
	ents, err := src.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ents))
	for i, st := range ents {
		out[i] = path.Base(st.Name)
	}
	return out, nil
}

// WalkFunc is called for every entry by Walk. Returning fs.SkipDir on a
// directory skips it; fs.SkipAll stops the walk.
type WalkFunc func(st *Stat, err error) error

// Walk visits root and everything below it in lexical order, without
// following symbolic links. An error reading a directory, or an entry of
// it, is passed to fn with the directory's Stat, and the walk goes on; a
// directory DefaultMaxDepth levels below root is passed with a
// *DepthError and not descended. Memory holds the names of one directory
// per level, never a Stat per entry. Walk stops with ctx.Err() when ctx is
// cancelled.
func Walk(ctx context.Context, src Source, root string, fn WalkFunc) error {
	root, err := Clean(root)
	if err != nil {
		return fn(nil, err)
	}
	st, err := src.Lstat(root)
	if err != nil {
		return fn(nil, err)
	}
	err = walk(ctx, src, st, 0, fn)
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

func walk(ctx context.Context, src Source, st *Stat, depth int, fn WalkFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := fn(st, nil); err != nil {
		return err
	}
	if !st.Mode.IsDir() {
		return nil
	}
	dirErr := func(err error) error {
		if err := fn(st, err); err != nil && err != fs.SkipDir {
			return err
		}
		return nil
	}
	if depth >= DefaultMaxDepth {
		return dirErr(&DepthError{Op: "walk", Path: st.Name, Limit: DefaultMaxDepth})
	}
	names, err := ReadDirNames(src, st.Name)
	if err != nil {
		return dirErr(err)
	}
	for _, n := range names {
		cst, err := src.Lstat(join(st.Name, n))
		if err == nil {
			err = walk(ctx, src, cst, depth+1, fn)
		} else if err = fn(st, err); err == fs.SkipDir {
			return nil
		}
		if err != nil && err != fs.SkipDir {
			return err
		}
	}
	return nil
}

// join returns dir/name for source names.
func join(dir, name string) string { return vfs.Join(dir, name) }

// Join returns dir/name for source names ("." joins to name).
func Join(dir, name string) string { return vfs.Join(dir, name) }

// WarningLines prints warnings as their one-line strings, for records that
// still keep warnings as strings.
func WarningLines(ws []Warning) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.String()
	}
	return out
}
