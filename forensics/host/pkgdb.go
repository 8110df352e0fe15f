package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// Package database formats.
const (
	FormatDpkg = "dpkg"
	FormatRPM  = "rpm"
)

// Digest algorithms of a package database.
const (
	AlgoMD5    = "md5"
	AlgoSHA1   = "sha1"
	AlgoSHA256 = "sha256"
	AlgoSHA384 = "sha384"
	AlgoSHA512 = "sha512"
)

// ErrNoPackageDB is returned when the evidence holds no package database
// deadnode reads.
var ErrNoPackageDB = errors.New("no package database (dpkg status or rpmdb.sqlite) in the evidence")

// Package is an installed package as the database records it.
type Package struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	Status       string `json:"status,omitempty"` // dpkg's Status field ("install ok installed")
	Files        int    `json:"files"`            // paths it lists
}

// OwnedFile is a path a package lists, as the evidence holds it.
type OwnedFile struct {
	// Path is where the file lies in the evidence: the listed path with
	// its directories resolved through the evidence's own links (merged
	// /usr) and any dpkg diversion applied.
	Path string
	// Listed is the path as the database lists it, when it differs.
	Listed  string
	Package string
	// Digest is the recorded content digest (hex), "" when none is
	// recorded (directories, symlinks, rpm ghost files, a conffile dpkg
	// marks "newconffile").
	Digest   string
	Algo     string
	Conffile bool
	// Obsolete conffiles are no longer shipped (dpkg "obsolete").
	Obsolete bool
	// Diverted is the listed path a dpkg diversion moved to Path.
	Diverted string
	// Alt holds further digests when several packages list the same path
	// with different content (a file replaced by a later package).
	Alt []string
	// From rpm headers only.
	Mode    fs.FileMode
	HasMode bool
	Size    int64
	LinkTo  string
	Ghost   bool // rpm %ghost: not shipped, not checked
}

// PackageDB is what the host's package manager says it installed: the
// packages, and every path they own keyed by where it lies in the
// evidence. It is read once (OpenPackageDB) and shared by Packages and
// Persistence.
type PackageDB struct {
	Format   string             `json:"format"`
	Path     string             `json:"path"` // the database read ("/var/lib/dpkg/status")
	Packages []Package          `json:"packages"`
	Warnings []evidence.Warning `json:"warnings"`

	files    map[string]*OwnedFile
	byDigest map[string][]string // digest -> owned paths (a few per digest)
	// excluded are dpkg's path-exclude/path-include filters (dpkg.cfg):
	// listed files dpkg was told not to install.
	filters []pathFilter
	res     *resolver
	order   []string // paths with a digest, sorted
}

type pathFilter struct {
	include bool
	glob    string
}

// OpenPackageDB reads the package database of the evidence: dpkg's
// (/var/lib/dpkg) or rpm's SQLite database (/var/lib/rpm/rpmdb.sqlite or
// /usr/lib/sysimage/rpm/rpmdb.sqlite). It returns ErrNoPackageDB when
// there is neither. Berkeley DB and NDB rpm databases are refused with an
// error naming them.
func OpenPackageDB(ctx context.Context, src evidence.Source) (*PackageDB, error) {
	var w warnings
	res := newResolver(src)
	if st, _ := lstatResolved(src, res, dpkgStatus); st != nil {
		db, err := readDpkg(ctx, src, res, &w)
		if err != nil {
			return nil, err
		}
		db.Warnings = w.done()
		return db, nil
	}
	for _, dir := range rpmDBDirs {
		if st, _ := lstatResolved(src, res, dir+"/"+rpmSQLite); st != nil && st.Mode.IsRegular() {
			db, err := readRPM(ctx, src, res, dir+"/"+rpmSQLite, &w)
			if err != nil {
				return nil, err
			}
			db.Warnings = w.done()
			return db, nil
		}
	}
	for _, dir := range rpmDBDirs {
		for _, f := range []string{rpmBDB, rpmNDB} {
			if st, _ := lstatResolved(src, res, dir+"/"+f); st != nil && st.Mode.IsRegular() {
				return nil, fmt.Errorf("%s/%s: this rpm database is %s, which deadnode does not read (only rpmdb.sqlite); list its packages with `rpm --dbpath` on a copy", dir, f, rpmDBKind(src, res, dir+"/"+f))
			}
		}
	}
	return nil, ErrNoPackageDB
}

// lstatResolved resolves p's directories and stats it (nil when absent).
func lstatResolved(src evidence.Source, res *resolver, p string) (*evidence.Stat, error) {
	rp, err := res.path(p)
	if err != nil {
		return nil, err
	}
	return lstat(src, rp)
}

func newDB(format, path string, res *resolver) *PackageDB {
	return &PackageDB{Format: format, Path: path, files: map[string]*OwnedFile{}, byDigest: map[string][]string{}, res: res}
}

// add records a listed path of pkg; it returns false when the database
// is over MaxOwnedPaths.
func (db *PackageDB) add(f OwnedFile, w *warnings) bool {
	if len(db.files) >= MaxOwnedPaths {
		return false
	}
	rp, err := db.res.path(f.Path)
	if err != nil {
		w.at(db.Path, -1, "%s: %v", f.Path, err)
		return true
	}
	if rp != f.Path {
		f.Listed = f.Path
		f.Path = rp
	}
	if old := db.files[rp]; old != nil {
		// Several packages list it (a shared directory, or a path listed
		// under both its merged-/usr names): keep the first owner, and
		// every distinct digest.
		switch {
		case old.Digest == "" && f.Digest != "":
			f.Alt = old.Alt
			*old = f
		case f.Digest != "" && f.Digest != old.Digest && len(old.Alt) < 8:
			old.Alt = append(old.Alt, f.Digest)
		}
		if f.Conffile {
			old.Conffile = true
		}
		return true
	}
	nf := f
	db.files[rp] = &nf
	return true
}

// finish indexes the owned files by digest and sorts them.
func (db *PackageDB) finish() {
	db.order = make([]string, 0, len(db.files))
	db.byDigest = make(map[string][]string, len(db.files))
	for p, f := range db.files {
		if f.Digest == "" {
			continue
		}
		db.order = append(db.order, p)
		// digests of different algorithms differ in length: the digest
		// alone is the key
		if l := db.byDigest[f.Digest]; len(l) < 8 {
			db.byDigest[f.Digest] = append(l, p)
		}
	}
	sort.Strings(db.order)
	for k, l := range db.byDigest {
		sort.Strings(l)
		db.byDigest[k] = l
	}
}

// Owner returns the owned file at p (an absolute path in the evidence;
// its directories are resolved through the evidence's links), or nil.
func (db *PackageDB) Owner(p string) *OwnedFile {
	if db == nil {
		return nil
	}
	if f := db.files[p]; f != nil {
		return f
	}
	rp, err := db.res.path(p)
	if err != nil {
		return nil
	}
	return db.files[rp]
}

// Owned returns how many paths the database lists (directories included).
func (db *PackageDB) Owned() int { return len(db.files) }

// sameDigest returns owned paths whose recorded digest is sum.
func (db *PackageDB) sameDigest(algo, sum string) []string {
	if db == nil || sum == "" {
		return nil
	}
	return db.byDigest[sum]
}

// excludedByFilter reports whether dpkg's path filters kept p (as
// listed) from being installed.
func (db *PackageDB) excludedByFilter(listed string) bool {
	ex := false
	for _, f := range db.filters {
		if fnmatch(f.glob, listed) {
			ex = !f.include
		}
	}
	return ex
}

// digestAlgo returns the algorithm the database uses for most files.
func (db *PackageDB) digestAlgo() string {
	if db.Format == FormatDpkg {
		return AlgoMD5
	}
	for _, p := range db.order {
		return db.files[p].Algo
	}
	return AlgoSHA256
}

// ownerName is a file's owning package as a pointer for JSON (nil when
// none).
func ownerName(f *OwnedFile) *string {
	if f == nil {
		return nil
	}
	s := f.Package
	return &s
}

func trimSlash(p string) string { return strings.TrimPrefix(p, "/") }

// rpmDBKind names an rpm database file's format by its magic: Berkeley
// DB's hash magic 0x061561 at offset 12, NDB's "RpmP" at 0.
func rpmDBKind(src evidence.Source, res *resolver, p string) string {
	f, err := openResolved(src, res, p)
	if err != nil {
		return "unreadable (" + err.Error() + ")"
	}
	defer f.Close()
	var b [16]byte
	if n, _ := f.ReadAt(b[:], 0); n < 16 {
		return "too short to be a database"
	}
	switch {
	case string(b[:4]) == "RpmP":
		return "an NDB file"
	case b[12] == 0x61 && b[13] == 0x15 && b[14] == 0x06 && b[15] == 0, b[12] == 0 && b[13] == 0x06 && b[14] == 0x15 && b[15] == 0x61:
		return "a Berkeley DB hash file"
	}
	return "in a format it does not recognise (neither Berkeley DB hash nor NDB)"
}
