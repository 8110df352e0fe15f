package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// checkOutput refuses an output path (a file or directory a command would
// create or write) that is, or lies inside, the evidence: the --root
// directory or archive, or the given host SOURCE paths (CRIU images
// directories, checkpoint archives). deadnode never writes to evidence,
// not even when asked to (--force included).
//
// Paths are compared by what they are, not by how they are spelled: the
// device and inode of the output (when it exists, links followed) against
// each evidence file, and of the nearest existing ancestor and each of its
// parents against each evidence directory — so a bind mount or a link to
// the evidence is caught as surely as its own path.
func (a *app) checkOutput(out string, sources ...string) error {
	if out == "" || out == "-" {
		return nil
	}
	var evs []evid
	for _, p := range append([]string{a.root}, sources...) {
		if p == "" {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			continue
		}
		evs = append(evs, evid{path: p, dev: st.Dev, ino: st.Ino, dir: st.Mode&unix.S_IFMT == unix.S_IFDIR})
	}
	if len(evs) == 0 {
		return nil
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	// The output itself, when it exists (a link to the evidence counts as
	// the evidence).
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err == nil {
		for _, e := range evs {
			if st.Dev == e.dev && st.Ino == e.ino {
				return fmt.Errorf("refusing to write %s: it is the evidence %s", out, e.path)
			}
		}
	}
	// Where a write would land: a dangling link at the path writes its
	// target; then the nearest existing ancestor and every parent above it.
	at := abs
	for hops := 0; hops < 40; hops++ {
		fi, err := os.Lstat(at)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		t, err := os.Readlink(at)
		if err != nil {
			break
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(at), t)
		}
		at = filepath.Clean(t)
	}
	dir := filepath.Dir(at)
	for {
		if _, err := os.Stat(dir); err == nil || dir == filepath.Dir(dir) {
			break
		}
		dir = filepath.Dir(dir)
	}
	// Walk up through "..": the parents as the kernel sees them, whatever
	// the path says (bind mounts, links).
	cur := dir
	for i := 0; i < 4096; i++ {
		var ds unix.Stat_t
		if err := unix.Stat(cur, &ds); err != nil {
			break
		}
		for _, e := range evs {
			if e.dir && ds.Dev == e.dev && ds.Ino == e.ino {
				return fmt.Errorf("refusing to write %s: it is inside the evidence %s", out, e.path)
			}
		}
		var ps unix.Stat_t
		up := filepath.Join(cur, "..")
		if err := unix.Stat(up, &ps); err != nil || (ps.Dev == ds.Dev && ps.Ino == ds.Ino) {
			break // the root
		}
		cur = up
	}
	return nil
}

type evid struct {
	path     string
	dev, ino uint64
	dir      bool
}

// createOut creates an output file (checked with checkOutput first). With
// force an existing file is overwritten, but only after the open file
// itself is shown not to be the evidence (device and inode of the open
// descriptor), so no race can turn --force against the evidence.
func (a *app) createOut(name string, force bool, sources ...string) (*os.File, error) {
	if err := a.checkOutput(name, sources...); err != nil {
		return nil, err
	}
	if !force {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%s exists (use --force to overwrite)", name)
		}
		return f, err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	for _, p := range append([]string{a.root}, sources...) {
		var es unix.Stat_t
		if p != "" && unix.Stat(p, &es) == nil && es.Dev == st.Dev && es.Ino == st.Ino {
			f.Close()
			return nil, fmt.Errorf("refusing to write %s: it is the evidence %s", name, p)
		}
	}
	// A file with other names may be one of them inside the evidence (a
	// hard link into a directory of evidence): truncating it would
	// change the evidence, whatever this name's directory is.
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 {
		f.Close()
		return nil, fmt.Errorf("refusing to overwrite %s: the file has %d hard links, and another name of it may be evidence", name, st.Nlink)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}
