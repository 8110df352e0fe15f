package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// Changes of a package file.
const (
	ChangeOK               = "ok"                // as the package shipped it (listed with --all)
	ChangeModified         = "modified"          // the digest differs from the database's
	ChangeConffileModified = "conffile_modified" // a configuration file edited since install
	ChangeMissing          = "missing"           // listed, absent from the evidence
	ChangeTypeChanged      = "type_changed"      // e.g. a listed regular file is now a symlink
	ChangeModeChanged      = "mode_changed"      // permission bits differ from the rpm header's
	ChangeUnowned          = "unowned"           // an executable in a system directory no package owns
	ChangeSetuidUnowned    = "setuid_unowned"    // a setuid/setgid file no package owns
)

// FileChange is one file of package drift on the host.
type FileChange struct {
	Path string `json:"path"`
	// ListedPath is the path as the package database lists it, when it
	// differs from Path (merged /usr, a diversion).
	ListedPath string  `json:"listed_path,omitempty"`
	Package    *string `json:"package"`
	Change     string  `json:"change"`
	Conffile   bool    `json:"conffile"`
	Type       string  `json:"type"`                  // "" when missing
	ListedType string  `json:"listed_type,omitempty"` // for type_changed
	LinkTarget string  `json:"link_target,omitempty"` // a symlink's target now
	Size       int64   `json:"size"`                  // 0 when missing
	Mode       string  `json:"mode"`                  // octal with setuid/setgid/sticky
	ListedMode string  `json:"listed_mode,omitempty"` // rpm: the header's
	UID        uint32  `json:"uid"`
	GID        uint32  `json:"gid"`
	model.FileTimes
	// DigestAlgo is the database's digest (md5 for dpkg, usually sha256
	// for rpm); ExpectedDigest is the recorded one, ActualDigest the
	// file's now.
	DigestAlgo     string            `json:"digest_algo"`
	ExpectedDigest string            `json:"expected_digest"`
	ActualDigest   string            `json:"actual_digest"`
	SHA256         string            `json:"sha256"`
	ExecKind       string            `json:"exec_kind"`
	ELF            *classify.ELFInfo `json:"elf,omitempty"`
	Interpreter    string            `json:"interpreter,omitempty"`
	Flags          []string          `json:"flags"`
	// IdenticalTo is a package-owned file with the same content (a
	// renamed copy of a system binary).
	IdenticalTo  string         `json:"identical_to"`
	Severity     model.Severity `json:"severity"`
	Why          string         `json:"why"`
	EvidencePath string         `json:"evidence_path"`
	Note         string         `json:"note,omitempty"`
}

// PackageOptions tune Packages.
type PackageOptions struct {
	// All also lists the files found as shipped (change "ok", info).
	All bool
	// Workers hash in parallel (default GOMAXPROCS).
	Workers int
	// DB is a package database already read (OpenPackageDB); nil reads it.
	DB *PackageDB
	// SystemDirs are where unowned executables are looked for (default
	// /usr, /etc, and /bin, /sbin, /lib* where they are directories).
	SystemDirs []string
}

// DefaultSystemDirs are the directories searched for unowned executables:
// where the package manager installs, and nobody else should. /opt is left
// out (third-party software lives there by design) and so is /var.
var DefaultSystemDirs = []string{"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// PackageReport is package drift of the host.
type PackageReport struct {
	Format     string `json:"format"`   // dpkg, rpm
	Database   string `json:"database"` // the database read
	Packages   int    `json:"packages"`
	OwnedPaths int    `json:"owned_paths"` // paths the database lists (directories included)
	// Checked counts the files whose content was compared.
	Checked int `json:"checked"`
	// Excluded counts listed files dpkg's path-exclude filters kept from
	// being installed (not findings).
	Excluded int `json:"excluded"`
	// UnownedScanned counts the regular files of the system directories
	// no package owns (executable or not).
	UnownedScanned int                `json:"unowned_scanned"`
	Counts         map[string]int     `json:"counts"` // changes by class
	Changes        []FileChange       `json:"changes"`
	Warnings       []evidence.Warning `json:"warnings"`
}

// Packages checks every file the host's packages own against the package
// database and looks for executables and setuid files no package owns in
// the system directories. Changes come back in path order (owned files
// first, then unowned ones).
func Packages(ctx context.Context, src evidence.Source, opt PackageOptions) (*PackageReport, error) {
	var changes []FileChange
	r, err := StreamPackages(ctx, src, opt, func(c FileChange) { changes = append(changes, c) })
	if err != nil {
		return nil, err
	}
	r.Changes = model.NonNil(changes)
	return r, nil
}

// StreamPackages is Packages calling fn with each change as it is made
// (in the same order) instead of collecting them: memory stays flat
// whatever the number of files. The report's Changes is left nil.
func StreamPackages(ctx context.Context, src evidence.Source, opt PackageOptions, fn func(FileChange)) (*PackageReport, error) {
	db := opt.DB
	if db == nil {
		var err error
		if db, err = OpenPackageDB(ctx, src); err != nil {
			return nil, err
		}
	}
	var w warnings
	for _, s := range db.Warnings {
		w.put(s)
	}
	r := &PackageReport{Format: db.Format, Database: db.Path, Packages: len(db.Packages), OwnedPaths: db.Owned(), Counts: map[string]int{}}
	pc := &pkgCheck{src: src, db: db, opt: opt, w: &w, shaCache: map[string]string{}}
	pc.preload = preloadedLibs(src, db.res)
	emit := func(c *FileChange) {
		if c == nil {
			return
		}
		c.Flags = model.NonNil(c.Flags)
		r.Counts[c.Change]++
		fn(*c)
	}
	// 1. every owned file the database can judge
	list := db.checkList()
	var mu sync.Mutex
	err := ordered(ctx, len(list), opt.Workers, func(i int, buf []byte) *FileChange {
		c, checked, excluded := pc.owned(db.files[list[i]], buf)
		mu.Lock()
		r.Checked += checked
		r.Excluded += excluded
		mu.Unlock()
		return c
	}, emit)
	if err != nil {
		return nil, err
	}
	// 2. unowned executables and setuid files of the system directories,
	// a directory at a time
	dirs := opt.SystemDirs
	if len(dirs) == 0 {
		dirs = DefaultSystemDirs
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		st, err := lstat(src, path.Clean("/"+d))
		if err != nil {
			w.at(d, -1, "%v", err)
			continue
		}
		if st == nil || !st.Mode.IsDir() || seen[st.Name] {
			continue // absent, or a merged-/usr link whose files /usr holds
		}
		seen[st.Name] = true
		var batch []*evidence.Stat
		flush := func() error {
			b := batch
			batch = nil
			return ordered(ctx, len(b), opt.Workers, func(i int, buf []byte) *FileChange {
				return pc.unowned(b[i], buf)
			}, emit)
		}
		werr := evidence.Walk(ctx, src, st.Name, func(e *evidence.Stat, err error) error {
			if err != nil {
				if e != nil {
					w.at(pathutil.Abs(e.Name), -1, "%v", err)
					return nil
				}
				return err
			}
			if !e.Mode.IsRegular() || db.files[pathutil.Abs(e.Name)] != nil {
				return nil
			}
			r.UnownedScanned++
			batch = append(batch, e)
			if len(batch) >= 4096 {
				return flush()
			}
			return nil
		})
		if werr == nil {
			werr = flush()
		}
		if werr != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			w.at(d, -1, "%v", werr)
		}
	}
	r.Warnings = model.NonNil(w.done())
	return r, nil
}

// checkList returns the owned paths whose state can be judged, sorted:
// for dpkg, files with a recorded digest; for rpm, every regular file and
// symlink that is not a %ghost.
func (db *PackageDB) checkList() []string {
	if db.Format == FormatDpkg {
		return db.order
	}
	var out []string
	for p, f := range db.files {
		if f.HasMode && !f.Ghost && (f.Mode.IsRegular() || f.Mode&fs.ModeSymlink != 0) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

type pkgCheck struct {
	src     evidence.Source
	db      *PackageDB
	opt     PackageOptions
	w       *warnings
	preload map[string]bool

	mu       sync.Mutex
	shaCache map[string]string // owned path -> sha256 on disk
}

func (pc *pkgCheck) base(p string, st *evidence.Stat) FileChange {
	c := FileChange{Path: p, EvidencePath: p, Flags: []string{}}
	if st != nil {
		c.Type = evidence.TypeName(st.Mode)
		c.Size = st.Size
		c.Mode = evidence.ModeString(st.Mode)
		c.UID, c.GID = st.UID, st.GID
		c.FileTimes = model.TimesOf(st)
	}
	return c
}

// owned checks one owned file; nil when it is as shipped and --all is off.
func (pc *pkgCheck) owned(f *OwnedFile, buf []byte) (c *FileChange, checked, excluded int) {
	// The common case first: a regular file as shipped needs no more
	// than its digest (Open checks that it is a regular file).
	if !f.HasMode && !pc.opt.All {
		if fh, err := pc.src.Open(srcName(f.Path)); err == nil {
			sum, err := digestOnly(fh, f.Algo, buf)
			fh.Close()
			if err == nil && digestMatches(f, sum) {
				return nil, 1, 0
			}
		}
	}
	st, err := lstat(pc.src, f.Path)
	if err != nil {
		pc.w.at(f.Path, -1, "%v", err)
		return nil, 0, 0
	}
	ch := pc.base(f.Path, st)
	ch.ListedPath = f.Listed
	if f.Diverted != "" {
		ch.ListedPath = f.Diverted
		ch.Note = "diverted by dpkg-divert from " + f.Diverted
	}
	ch.Package = ownerName(f)
	ch.Conffile = f.Conffile
	ch.DigestAlgo, ch.ExpectedDigest = f.Algo, f.Digest
	if f.HasMode {
		ch.ListedMode = evidence.ModeString(f.Mode)
	}
	listedType := "file"
	if f.HasMode {
		listedType = evidence.TypeName(f.Mode)
	}
	switch {
	case st == nil:
		listed := f.Listed
		if listed == "" {
			listed = f.Path
		}
		if f.Diverted != "" {
			listed = f.Diverted
		}
		if pc.db.excludedByFilter(listed) {
			return nil, 0, 1
		}
		if f.Obsolete {
			return nil, 0, 0
		}
		ch.Change = ChangeMissing
		ch.ListedType = listedType
	case evidence.TypeName(st.Mode) != listedType:
		ch.Change = ChangeTypeChanged
		ch.ListedType = listedType
		if st.Mode&fs.ModeSymlink != 0 {
			ch.LinkTarget, _ = pc.src.Readlink(srcName(f.Path))
		}
	case st.Mode&fs.ModeSymlink != 0:
		ch.LinkTarget, _ = pc.src.Readlink(srcName(f.Path))
		ch.Change = ChangeOK
		if f.LinkTo != "" && ch.LinkTarget != f.LinkTo {
			ch.Change = ChangeModified
			ch.Note = "link target was " + f.LinkTo
		}
	default:
		checked = 1
		d, err := hashPath(pc.src, f.Path, f.Algo, pc.opt.All, buf)
		if err != nil {
			pc.w.at(f.Path, -1, "%v", err)
			ch.Note = "unreadable: " + err.Error()
			ch.Change = ChangeModified
			ch.Severity, ch.Why = model.SeverityLow, "the file could not be read to compare it with the package's digest"
			return &ch, checked, 0
		}
		ch.ActualDigest = d.db
		ch.SHA256 = d.sha256
		ch.Change = ChangeOK
		if !digestMatches(f, d.db) {
			ch.Change = ChangeModified
			if f.Conffile {
				ch.Change = ChangeConffileModified
			}
			pc.describe(&ch, st, d, buf)
		} else if pc.opt.All {
			pc.classify(&ch, st, d.hdr)
		}
	}
	if ch.Change == ChangeOK && st != nil && f.HasMode && modeBits(st.Mode) != modeBits(f.Mode) {
		ch.Change = ChangeModeChanged
	}
	if ch.Change == ChangeOK && !pc.opt.All {
		return nil, checked, 0
	}
	ch.Flags = append(ch.Flags, flagsOf(f.Path, st)...)
	judgeOwned(&ch, f)
	return &ch, checked, 0
}

func modeBits(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

func digestMatches(f *OwnedFile, got string) bool {
	if strings.EqualFold(got, f.Digest) {
		return true
	}
	for _, a := range f.Alt {
		if strings.EqualFold(got, a) {
			return true
		}
	}
	return false
}

// describe completes a changed regular file: sha256, exec kind, and
// identical_to.
func (pc *pkgCheck) describe(ch *FileChange, st *evidence.Stat, d digests, buf []byte) {
	if d.sha256 == "" {
		d2, err := hashPath(pc.src, ch.Path, "", true, buf)
		if err != nil {
			ch.Note = "read error: " + err.Error()
			return
		}
		d.sha256 = d2.sha256
	}
	ch.SHA256 = d.sha256
	pc.classify(ch, st, d.hdr)
	if st.Size > 0 && (ch.ExecKind != "" || st.Mode&(fs.ModeSetuid|fs.ModeSetgid) != 0) {
		ch.IdenticalTo = pc.identical(d, ch.Path, buf)
	}
}

func (pc *pkgCheck) classify(ch *FileChange, st *evidence.Stat, hdr []byte) {
	var e classify.Exec
	f, err := pc.src.Open(srcName(ch.Path))
	if err == nil {
		e = classify.File(hdr, f, st.Mode)
		f.Close()
	} else {
		e = classify.File(hdr, nil, st.Mode)
	}
	ch.ExecKind, ch.ELF, ch.Interpreter = e.Kind, e.ELF, e.Interpreter
}

// identical finds a package-owned file with the same content: the
// database's digests give candidates, and each candidate's content on disk
// confirms by sha256 (so a candidate that was itself replaced never
// matches).
func (pc *pkgCheck) identical(d digests, self string, buf []byte) string {
	algo := pc.db.digestAlgo()
	sum := d.db
	if algo == AlgoSHA256 {
		sum = d.sha256
	}
	if sum == "" || algo != AlgoSHA256 && algo != AlgoMD5 {
		return ""
	}
	if d.db == "" && algo == AlgoMD5 {
		// the digest in the database's algorithm was not computed
		d2, err := hashPath(pc.src, self, AlgoMD5, false, buf)
		if err != nil {
			return ""
		}
		sum = d2.db
	}
	for _, cand := range pc.db.sameDigest(algo, sum) {
		if cand == self {
			continue
		}
		pc.mu.Lock()
		s, ok := pc.shaCache[cand]
		pc.mu.Unlock()
		if !ok {
			if st, _ := lstat(pc.src, cand); st != nil && st.Mode.IsRegular() {
				if dd, err := hashPath(pc.src, cand, "", true, buf); err == nil {
					s = dd.sha256
				}
			}
			pc.mu.Lock()
			if len(pc.shaCache) < 1<<16 {
				pc.shaCache[cand] = s
			}
			pc.mu.Unlock()
		}
		if s != "" && s == d.sha256 {
			return cand
		}
	}
	return ""
}

// unowned looks at a regular file no package owns; nil unless it is an
// executable (ELF, script, shared library, exec bit) or setuid/setgid.
func (pc *pkgCheck) unowned(st *evidence.Stat, buf []byte) *FileChange {
	p := pathutil.Abs(st.Name)
	f, err := pc.src.Open(st.Name)
	if err != nil {
		pc.w.at(p, -1, "%v", err)
		return nil
	}
	defer f.Close()
	hdr := make([]byte, min(int64(classify.MaxHeader), st.Size))
	n, _ := f.ReadAt(hdr, 0)
	hdr = hdr[:n]
	e := classify.File(hdr, f, st.Mode)
	suid := st.Mode&(fs.ModeSetuid|fs.ModeSetgid) != 0
	if e.Kind == "" && !suid {
		return nil
	}
	ch := pc.base(p, st)
	ch.ExecKind, ch.ELF, ch.Interpreter = e.Kind, e.ELF, e.Interpreter
	ch.Change = ChangeUnowned
	if suid {
		ch.Change = ChangeSetuidUnowned
	}
	algo := pc.db.digestAlgo()
	if algo != AlgoMD5 {
		algo = ""
	}
	d, err := hashOpen(f, algo, true, buf)
	if err != nil {
		ch.Note = "read error: " + err.Error()
	} else {
		ch.SHA256, ch.DigestAlgo, ch.ActualDigest = d.sha256, pc.db.digestAlgo(), d.db
		if algo == "" {
			ch.ActualDigest = d.sha256
		}
		if st.Size > 0 {
			ch.IdenticalTo = pc.identical(d, p, buf)
		}
	}
	ch.Flags = append(ch.Flags, flagsOf(p, st)...)
	if pc.preload[p] {
		ch.Flags = append(ch.Flags, FlagPreloaded)
	}
	judgeUnowned(&ch)
	return &ch
}

// FlagPreloaded marks a library named in /etc/ld.so.preload.
const FlagPreloaded = "ld_preloaded"

// flagsOf are the flags a file earns by its path and mode.
func flagsOf(p string, st *evidence.Stat) []string {
	out := classify.PathFlags(p)
	if st == nil {
		return out
	}
	if st.Mode&fs.ModeSetuid != 0 {
		out = append(out, classify.FlagSetuid)
	}
	if st.Mode&fs.ModeSetgid != 0 && !st.Mode.IsDir() {
		out = append(out, classify.FlagSetgid)
	}
	if st.Mode&0o002 != 0 && st.Mode&fs.ModeSymlink == 0 && st.Mode&fs.ModeSticky == 0 {
		out = append(out, classify.FlagWorldWrite)
	}
	return out
}

// preloadedLibs reads /etc/ld.so.preload: the libraries it names,
// resolved in the evidence.
func preloadedLibs(src evidence.Source, res *resolver) map[string]bool {
	out := map[string]bool{}
	b, err := readResolved(src, res, ldSoPreload)
	if err != nil {
		return out
	}
	for _, lib := range parsePreload(b) {
		out[lib.Lib] = true
		if rp, err := res.follow(lib.Lib); err == nil {
			out[rp] = true
		}
	}
	return out
}

// inDirs reports whether p lies under one of dirs.
func inDirs(p string, dirs ...string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// binDirs are where programs and libraries live.
var binDirs = []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32", "/usr/libexec", "/lib", "/lib32", "/lib64", "/libx32", "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/usr/local/libexec"}

// docDirs hold documentation dpkg filters often leave out.
var docDirs = []string{"/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/locale", "/usr/share/lintian", "/usr/share/help"}

// authDirs are configuration that decides who gets in and what the loader
// maps: a change there is worth a look even when an administrator may
// have made it.
var authDirs = []string{"/etc/pam.d", "/etc/security", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ld.so.preload", "/etc/nsswitch.conf"}

// nodeComponents are programs Kubernetes node images install outside the
// package manager (kubeadm's and the cloud images' install scripts copy
// release binaries into /usr/bin or /usr/local/bin).
var nodeComponents = map[string]bool{
	"kubelet": true, "kubeadm": true, "kubectl": true, "crictl": true, "critest": true, "ctr": true,
	"containerd": true, "containerd-shim": true, "containerd-shim-runc-v1": true, "containerd-shim-runc-v2": true,
	"containerd-stress": true, "runc": true, "crun": true, "runsc": true, "containerd-shim-runsc-v1": true,
	"nerdctl": true, "cri-dockerd": true, "conmon": true, "crio": true, "pinns": true,
	"docker": true, "dockerd": true, "docker-init": true, "docker-proxy": true,
	"k3s": true, "rke2": true, "k0s": true, "kube-proxy": true, "etcd": true, "etcdctl": true,
	"kube-apiserver": true, "kube-controller-manager": true, "kube-scheduler": true,
	"ecr-credential-provider": true, "aws-iam-authenticator": true, "gke-exec-auth-plugin": true, "auth-provider-gcp": true,
}

// cniDirs hold CNI plugins, which are installed from release tarballs.
var cniDirs = []string{"/usr/lib/cni", "/usr/libexec/cni", "/usr/local/lib/cni"}

func judgeOwned(ch *FileChange, f *OwnedFile) {
	pkg := f.Package
	exec := ch.ExecKind != ""
	inBin := inDirs(ch.Path, binDirs...)
	persist := hasFlag(ch.Flags, classify.FlagPersistence)
	switch ch.Change {
	case ChangeOK:
		ch.Severity, ch.Why = model.SeverityInfo, fmt.Sprintf("as package %s shipped it", pkg)
	case ChangeModified:
		switch {
		case ch.IdenticalTo != "":
			ch.Severity, ch.Why = model.SeverityHigh, fmt.Sprintf("a file of package %s was replaced by a copy of %s", pkg, ch.IdenticalTo)
		case exec || inBin:
			ch.Severity, ch.Why = model.SeverityHigh, fmt.Sprintf("a program or library of package %s no longer matches the digest the package database recorded: a replaced system binary", pkg)
		case persist:
			ch.Severity, ch.Why = model.SeverityHigh, fmt.Sprintf("a file of package %s in a place the system runs at boot, login or schedule no longer matches the recorded digest (and it is not a conffile an administrator is expected to edit)", pkg)
		default:
			ch.Severity, ch.Why = model.SeverityMedium, fmt.Sprintf("a file of package %s no longer matches the recorded digest; packages do not expect their non-configuration files to change", pkg)
		}
	case ChangeConffileModified:
		switch {
		case exec:
			ch.Severity, ch.Why = model.SeverityMedium, fmt.Sprintf("an executable configuration file of package %s (run by the system as root) was edited since install", pkg)
		case inDirs(ch.Path, authDirs...):
			ch.Severity, ch.Why = model.SeverityMedium, fmt.Sprintf("a configuration file of package %s that decides authentication or library loading was edited since install", pkg)
		case persist:
			ch.Severity, ch.Why = model.SeverityLow, fmt.Sprintf("a configuration file of package %s in a persistence location was edited since install (the persistence report judges what it runs)", pkg)
		default:
			ch.Severity, ch.Why = model.SeverityInfo, fmt.Sprintf("a configuration file of package %s was edited since install, as administrators do", pkg)
		}
	case ChangeMissing:
		switch {
		case f.Conffile:
			ch.Severity, ch.Why = model.SeverityInfo, fmt.Sprintf("a configuration file of package %s was removed (dpkg honours an administrator's removal)", pkg)
		case inDirs(ch.Path, docDirs...):
			ch.Severity, ch.Why = model.SeverityInfo, fmt.Sprintf("documentation of package %s is absent (often filtered out by image builders)", pkg)
		default:
			ch.Severity, ch.Why = model.SeverityLow, fmt.Sprintf("a file package %s installed is absent", pkg)
		}
	case ChangeTypeChanged:
		if exec || inBin {
			ch.Severity, ch.Why = model.SeverityHigh, fmt.Sprintf("a program or library path of package %s is now a %s: it may point the system at another file", pkg, ch.Type)
		} else {
			ch.Severity, ch.Why = model.SeverityMedium, fmt.Sprintf("a file of package %s is now a %s", pkg, ch.Type)
		}
	case ChangeModeChanged:
		gained := (parseMode(ch.Mode) &^ parseMode(ch.ListedMode)) & 0o6000
		if gained != 0 {
			ch.Severity, ch.Why = model.SeverityHigh, fmt.Sprintf("a file of package %s gained the setuid/setgid bit it was not shipped with", pkg)
		} else {
			ch.Severity, ch.Why = model.SeverityLow, fmt.Sprintf("the permissions of a file of package %s differ from the header's (%s, was %s)", pkg, ch.Mode, ch.ListedMode)
		}
	}
}

func parseMode(s string) uint32 {
	var v uint32
	fmt.Sscanf(s, "%o", &v)
	return v
}

func judgeUnowned(ch *FileChange) {
	base := path.Base(ch.Path)
	hidden := hasFlag(ch.Flags, classify.FlagHidden)
	switch {
	case ch.Change == ChangeSetuidUnowned && ch.IdenticalTo != "":
		ch.Severity, ch.Why = model.SeverityCritical, fmt.Sprintf("a setuid/setgid copy of %s that no package installed: anyone who runs it gets its owner's privileges", ch.IdenticalTo)
	case ch.Change == ChangeSetuidUnowned:
		ch.Severity, ch.Why = model.SeverityHigh, "a setuid/setgid file no package installed"
	case ch.IdenticalTo != "":
		ch.Severity, ch.Why = model.SeverityHigh, fmt.Sprintf("a renamed copy of the system binary %s that no package installed", ch.IdenticalTo)
	case hasFlag(ch.Flags, FlagPreloaded):
		ch.Severity, ch.Why = model.SeverityHigh, "a library no package installed that /etc/ld.so.preload loads into every dynamically linked process"
	case hidden:
		ch.Severity, ch.Why = model.SeverityHigh, "an executable no package installed, under a hidden name in a system directory"
	case hasFlag(ch.Flags, classify.FlagWorldWrite):
		ch.Severity, ch.Why = model.SeverityHigh, "a world-writable executable in a system directory: anyone can change what it runs"
	case ch.ExecKind == classify.ExecBit && inDirs(ch.Path, "/etc"):
		ch.Severity, ch.Why = model.SeverityInfo, "a configuration file with the exec bit set; it is neither ELF nor a script"
	case ch.ExecKind == classify.ExecBit:
		ch.Severity, ch.Why = model.SeverityLow, "a file with the exec bit set that no package installed; it is neither ELF nor a script"
	case nodeComponents[base] || strings.HasPrefix(base, "containerd-shim-"):
		ch.Severity, ch.Why = model.SeverityLow, fmt.Sprintf("%s is a Kubernetes node component that node images install outside the package manager", base)
	case inDirs(ch.Path, cniDirs...):
		ch.Severity, ch.Why = model.SeverityLow, "a CNI plugin, installed from a release tarball as usual"
	case inDirs(ch.Path, "/usr/local"):
		ch.Severity, ch.Why = model.SeverityLow, "locally installed software: /usr/local is for files no package owns"
	default:
		ch.Severity, ch.Why = model.SeverityMedium, "an executable in a system directory that no package installed"
	}
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

var errStop = errors.New("stop")
