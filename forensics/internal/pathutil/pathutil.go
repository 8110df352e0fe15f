// Package pathutil holds path helpers shared by the forensics readers
// (containerd, docker, storage): finding a host path of the seized node
// inside the evidence, the home directories of its users, and naming what
// the examiner may not read. It reads the evidence only through
// evidence.Source and never writes to it; its functions are safe for
// concurrent use when the Source is.
package pathutil

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// Rebase finds a host-absolute path of the seized node inside the evidence.
// Collections are often made of a tree that was itself below some prefix
// (a chroot, a triage copy), so when the path does not exist as it is, its
// leading components are dropped one at a time until ok accepts what is
// left (resolved inside the evidence). It returns the resolved path (""
// when none) and a note saying where it was found when that is not where
// the host put it.
// A path longer than PATH_MAX, or of more than MaxRebaseDepth components,
// is not one a host gave: it is not looked for (each try resolves the
// rest of the path, so a crafted one cost time cubic in its length).
func Rebase(src evidence.Source, abs string, ok func(resolved string) bool) (string, string) {
	if len(abs) > maxPath {
		return "", ""
	}
	comps := strings.Split(strings.Trim(abs, "/"), "/")
	if len(comps) > MaxRebaseDepth {
		return "", ""
	}
	for i := range comps {
		r, err := evidence.Resolve(src, strings.Join(comps[i:], "/"), true)
		if err != nil || !ok(r) {
			continue
		}
		if i == 0 {
			return r, ""
		}
		return r, fmt.Sprintf(" (not in the evidence as it is; found at /%s)", r)
	}
	return "", ""
}

// MaxRebaseDepth bounds the components of a path Rebase looks for.
const MaxRebaseDepth = 64

// maxPath is PATH_MAX: no path a host gives is longer.
const maxPath = 4096

// MaxHomes bounds the /home/* directories listed by Homes.
const MaxHomes = 4096

// Home is a user's home directory in the evidence.
type Home struct {
	Dir string // "root" or "home/<name>", no leading "/"
	UID uint32 // the directory's owner
}

// Homes lists root's home and every /home/* directory of the evidence
// (plain names only, at most MaxHomes).
func Homes(src evidence.Source) []Home {
	out := []Home{{Dir: "root"}}
	ents, err := src.ReadDir("home")
	if err != nil {
		return out
	}
	for i, e := range ents {
		if i >= MaxHomes {
			break
		}
		n := path.Base(e.Name)
		if e.Mode.IsDir() && PlainName(n) {
			out = append(out, Home{Dir: path.Join("home", n), UID: e.UID})
		}
	}
	return out
}

// PlainName says whether s can be used as one path component: not empty,
// not . or .., at most 255 bytes, no slash and no NUL.
func PlainName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 255 && !strings.ContainsAny(s, "/\x00")
}

// Denied turns a permission error met reading name (a path inside the
// evidence) into one that names what may not be read: the directory on
// the way to name that could not be searched, or name itself. Any other
// error (nil included) is returned as it is.
func Denied(src evidence.Source, name string, err error) error {
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	comps := strings.Split(strings.Trim(name, "/"), "/")
	for i := range comps {
		if _, e := src.Lstat(strings.Join(comps[:i+1], "/")); e != nil {
			if !errors.Is(e, fs.ErrPermission) {
				return err
			}
			return &fs.PathError{Op: "open", Path: "/" + strings.Join(comps[:i], "/"), Err: fs.ErrPermission}
		}
	}
	return &fs.PathError{Op: "open", Path: "/" + strings.Join(comps, "/"), Err: fs.ErrPermission}
}

// Finder collects the roots of a runtime's stores found in the evidence,
// in order of preference, with notes on how each was found and the places
// that could not be read. The zero value is not usable: set Src and IsRoot.
type Finder struct {
	Src evidence.Source
	// What names the root in messages ("containerd root"), and Hint says
	// how to choose another when several are found ("use
	// --containerd-root").
	What, Hint string
	// IsRoot says whether r (resolved, no leading "/") holds the
	// runtime's store; its error, when a permission error, says it could
	// not be told.
	IsRoot func(r string) (bool, error)
	// Roots are the roots found ("/"-rooted, resolved).
	Roots []string
	// Notes say how roots were found, where that is worth saying.
	Notes []string
	// Denied are the places (roots, config files) that could not be read.
	Denied []error

	seen map[string]bool
}

// Add considers r (resolved, no leading "/"), noting why when it is a root.
func (f *Finder) Add(r, why string) bool {
	if r == "" || f.seen[r] {
		return false
	}
	ok, err := f.IsRoot(r)
	if err != nil {
		f.deny(r, err)
		return false
	}
	if !ok {
		return false
	}
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	f.seen[r] = true
	f.Roots = append(f.Roots, "/"+r)
	if why != "" {
		f.Notes = append(f.Notes, why)
	}
	return true
}

// Known considers a place where the runtime keeps its root by default (a
// path inside the evidence). It returns the root added ("" when none).
func (f *Finder) Known(p, why string) string {
	r, err := evidence.Resolve(f.Src, p, true)
	if err != nil {
		f.deny(p, err)
		return ""
	}
	if f.Add(r, why) {
		return r
	}
	return ""
}

// Host considers a host-absolute path named by a configuration file (see
// Rebase); why says where it was named and is completed with where it was
// found. It returns the root added ("" when none) and its note.
func (f *Finder) Host(abs, why string) (string, string) {
	r, how := Rebase(f.Src, abs, func(r string) bool {
		ok, err := f.IsRoot(r)
		return ok && err == nil
	})
	if r != "" {
		if f.Add(r, why+how) {
			return r, why + how
		}
		return "", ""
	}
	// Not found anywhere: say so when the place itself may not be read.
	if r, err := evidence.Resolve(f.Src, abs, true); err != nil {
		f.deny(abs, err)
	} else if _, err := f.IsRoot(r); err != nil {
		f.deny(r, err)
	}
	return "", ""
}

// ReadConfig reads a small configuration file of the evidence (absent is
// not an error: nil, nil), noting a file that may not be read.
func (f *Finder) ReadConfig(name string, max int64) []byte {
	p, err := evidence.Resolve(f.Src, name, true)
	if err == nil {
		var b []byte
		if b, err = evidence.ReadFile(f.Src, p, max); err == nil {
			return b
		}
	}
	f.deny(name, err)
	return nil
}

func (f *Finder) deny(name string, err error) {
	if errors.Is(err, fs.ErrPermission) {
		f.Denied = append(f.Denied, Denied(f.Src, name, err))
	}
}

// Pick chooses the first root found. With none, it returns the places
// that could not be read (a *fs.PathError naming the first, errors.Is
// fs.ErrPermission) or else notFound. The warnings say what else was
// found (unless all is set: the caller reads every root), and which
// places could not be read, when a root was.
func (f *Finder) Pick(notFound error, all bool) (string, []evidence.Warning, error) {
	if len(f.Roots) == 0 {
		if len(f.Denied) > 0 {
			return "", nil, f.Denied[0]
		}
		return "", nil, notFound
	}
	var warns []evidence.Warning
	if len(f.Roots) > 1 && !all {
		warns = append(warns, evidence.Warnf("", -1, "more than one %s in the evidence (%s); reading %s (%s)", f.What, strings.Join(f.Roots, ", "), f.Roots[0], f.Hint))
	}
	for _, d := range f.Denied {
		warns = append(warns, evidence.WarningOf(fmt.Errorf("%w; not looked at", d)))
	}
	return f.Roots[0], warns, nil
}

// Root resolves the root a reader is to read: given (a path inside the
// evidence), or else the first root find finds (see Finder.Pick). It
// returns the root resolved inside the evidence (no leading "/"), the
// notes on how it was found and the warnings about it.
func Root(src evidence.Source, given string, find func() *Finder, notFound error) (string, []string, []evidence.Warning, error) {
	var notes []string
	var warns []evidence.Warning
	if given == "" {
		f := find()
		r, w, err := f.Pick(notFound, false)
		if err != nil {
			return "", nil, nil, err
		}
		given, notes, warns = r, f.Notes, w
	}
	r, err := evidence.Resolve(src, given, true)
	if err != nil {
		return "", nil, nil, err
	}
	return strings.TrimPrefix(r, "/"), notes, warns, nil
}

// Abs turns a source name into the absolute path the node shows ("." is
// "/").
func Abs(name string) string {
	if name == "." || name == "" {
		return "/"
	}
	return "/" + strings.TrimPrefix(name, "/")
}
