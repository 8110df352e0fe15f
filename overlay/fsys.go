package overlay

import (
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/deadnode/deadnode/evidence"
)

// The View is an io/fs file system of the merged tree: fs.WalkDir,
// fs.ReadFile, http.FS and the like work on a container's root.
var (
	_ fs.FS         = (*View)(nil)
	_ fs.StatFS     = (*View)(nil)
	_ fs.ReadDirFS  = (*View)(nil)
	_ fs.ReadLinkFS = (*View)(nil)
)

func checkName(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// Open implements fs.FS, following symbolic links inside the merged
// namespace. Regular files read their data; directories list; other
// types only Stat.
func (v *View) Open(name string) (fs.File, error) {
	if err := checkName("open", name); err != nil {
		return nil, err
	}
	e, err := v.StatEntry(name)
	if err != nil {
		return nil, err
	}
	switch {
	case e.Stat.Mode.IsRegular():
		f, err := v.OpenEntry(e)
		if err != nil {
			return nil, err
		}
		return &file{e: e, f: f, sr: io.NewSectionReader(f, 0, f.Size())}, nil
	case e.Stat.Mode.IsDir():
		return &dir{v: v, e: e}, nil
	}
	return &special{e: e}, nil
}

// Stat implements fs.StatFS (links followed). Sys returns the *Entry.
func (v *View) Stat(name string) (fs.FileInfo, error) { return v.info("stat", name, true) }

// Lstat implements fs.ReadLinkFS. Sys returns the *Entry.
func (v *View) Lstat(name string) (fs.FileInfo, error) { return v.info("lstat", name, false) }

func (v *View) info(op, name string, follow bool) (fs.FileInfo, error) {
	if err := checkName(op, name); err != nil {
		return nil, err
	}
	n, err := v.resolve(op, name, follow)
	if err != nil {
		return nil, err
	}
	e, err := v.entry(n)
	if err != nil {
		return nil, err
	}
	return info{e}, nil
}

// ReadLink implements fs.ReadLinkFS.
func (v *View) ReadLink(name string) (string, error) {
	return ReadLinkEntry(v.LstatEntry, name)
}

// ReadLinkEntry is fs.ReadLinkFS's ReadLink for any view that looks entries
// up without following a final link (lstat): View's LstatEntry, and the
// views built on it, such as a container's view with its volumes mounted.
func ReadLinkEntry[E interface{ Symlink() (string, bool) }](lstat func(name string) (E, error), name string) (string, error) {
	if err := checkName("readlink", name); err != nil {
		return "", err
	}
	e, err := lstat(name)
	if err != nil {
		return "", err
	}
	target, ok := e.Symlink()
	if !ok {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return target, nil
}

// ReadDir implements fs.ReadDirFS. Entries that cannot be resolved are
// left out and reported in the error, with the others returned.
func (v *View) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := checkName("readdir", name); err != nil {
		return nil, err
	}
	ents, err := v.ReadDirEntries(name)
	out := make([]fs.DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, dirEntry{e})
	}
	return out, err
}

type info struct{ e *Entry }

func (i info) Name() string {
	if i.e.Path == "." {
		return "."
	}
	return baseName(i.e.Path)
}
func (i info) Size() int64        { return i.e.Stat.Size }
func (i info) Mode() fs.FileMode  { return i.e.Stat.Mode }
func (i info) ModTime() time.Time { return i.e.Stat.Mtime }
func (i info) IsDir() bool        { return i.e.Stat.Mode.IsDir() }
func (i info) Sys() any           { return i.e }

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

type dirEntry struct{ e *Entry }

func (d dirEntry) Name() string               { return baseName(d.e.Path) }
func (d dirEntry) IsDir() bool                { return d.e.Stat.Mode.IsDir() }
func (d dirEntry) Type() fs.FileMode          { return d.e.Stat.Mode.Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return info(d), nil }
func (d dirEntry) String() string             { return fs.FormatDirEntry(d) }

type file struct {
	e  *Entry
	f  evidence.File
	sr *io.SectionReader
}

func (f *file) Stat() (fs.FileInfo, error)                { return info{f.e}, nil }
func (f *file) Read(p []byte) (int, error)                { return f.sr.Read(p) }
func (f *file) ReadAt(p []byte, off int64) (int, error)   { return f.sr.ReadAt(p, off) }
func (f *file) Seek(off int64, whence int) (int64, error) { return f.sr.Seek(off, whence) }
func (f *file) Close() error                              { return f.f.Close() }

type dir struct {
	v    *View
	e    *Entry
	ents []*Entry
	read bool
	err  error // entries that could not be resolved: said with the first batch
}

func (d *dir) Stat() (fs.FileInfo, error) { return info{d.e}, nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.e.Path, Err: errors.New("is a directory")}
}
func (d *dir) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		d.read = true
		kids, errs := d.v.readDir(d.e.n)
		for _, k := range kids {
			e, err := d.v.entry(k)
			if err == nil {
				d.ents = append(d.ents, e)
			} else {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 && len(d.ents) == 0 {
			return nil, errors.Join(errs...)
		}
		// Entries that could not be resolved are said with the others, as
		// View.ReadDir says them: dropping the error hid them.
		d.err = errors.Join(errs...)
	}
	if n > 0 && len(d.ents) == 0 {
		return nil, io.EOF
	}
	if n <= 0 || n > len(d.ents) {
		n = len(d.ents)
	}
	out := make([]fs.DirEntry, 0, n)
	for _, e := range d.ents[:n] {
		out = append(out, dirEntry{e})
	}
	d.ents = d.ents[n:]
	err := d.err
	d.err = nil
	return out, err
}

type special struct{ e *Entry }

func (s *special) Stat() (fs.FileInfo, error) { return info{s.e}, nil }
func (s *special) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: s.e.Path, Err: evidence.ErrNotRegular}
}
func (s *special) Close() error { return nil }
