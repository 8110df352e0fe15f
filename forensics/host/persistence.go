package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/model"
)

// Kinds of persistence entries.
const (
	KindCron          = "cron"                     // a crontab line, or a script run-parts runs from cron.{hourly,…}
	KindAnacron       = "anacron"                  // an anacrontab job
	KindSystemdUnit   = "systemd_unit"             // a service (or socket, path) unit, or a link enabling one
	KindSystemdTimer  = "systemd_timer"            // a timer unit, or a link enabling one
	KindLDPreload     = "ld_preload"               // a library in /etc/ld.so.preload (or LD_PRELOAD in /etc/environment)
	KindAuthorizedKey = "authorized_keys"          // one key of an authorized_keys file
	KindShellRC       = "shell_rc"                 // a shell startup file (profile, bashrc, environment)
	KindRCLocal       = "rc_local"                 // /etc/rc.local
	KindInitScript    = "init_script"              // a SysV init script
	KindKernelModule  = "kernel_module"            // a module loaded at boot (modules, modules-load.d)
	KindModprobeCmd   = "modprobe_command"         // an install/remove command of modprobe.d
	KindUdevRule      = "udev_rule"                // a udev rule that runs a program (RUN, PROGRAM, IMPORT{program})
	KindOCIHook       = "oci_hook"                 // an OCI hook of hooks.d run by the runtime around containers
	KindRuntimeConfig = "container_runtime_config" // a containerd/CRI-O setting that makes the runtime run a program
)

// ATT&CK techniques by kind.
var attackOf = map[string]string{
	KindCron:          "attack:T1053.003",
	KindAnacron:       "attack:T1053.003",
	KindSystemdUnit:   "attack:T1543.002",
	KindSystemdTimer:  "attack:T1053.006",
	KindLDPreload:     "attack:T1574.006",
	KindAuthorizedKey: "attack:T1098.004",
	KindShellRC:       "attack:T1546.004",
	KindRCLocal:       "attack:T1037.004",
	KindInitScript:    "attack:T1037.004",
	KindKernelModule:  "attack:T1547.006",
	KindModprobeCmd:   "attack:T1547.006",
	KindUdevRule:      "attack:T1546.017",
}

// Entry is one persistence entry of the host: something the system will
// run (or trust) on its own at boot, login, schedule or a container's
// start.
type Entry struct {
	// Path is the file that makes the entry (a crontab, a unit, a wants
	// link, authorized_keys …), as the host sees it.
	Path string `json:"path"`
	Line int    `json:"line,omitempty"` // the line in Path, for line-based entries
	Kind string `json:"kind"`
	// Target is what the entry runs: a crontab line as written, a unit's
	// ExecStart command (a timer's: its service's), a preloaded library,
	// a key's comment, a hook's program, a script's own path.
	Target  string `json:"target"`
	Enabled bool   `json:"enabled"`
	// OwnerPackage owns Path (nil when no package does).
	OwnerPackage *string `json:"owner_package"`
	// PackageModified: a package owns Path but its digest differs from the
	// database's (or a conffile was edited).
	PackageModified bool `json:"package_modified"`
	model.FileTimes
	Flags    []string       `json:"flags"`
	Severity model.Severity `json:"severity"`
	Why      string         `json:"why"`
	// EvidencePath is the file read (a link's resolved unit file).
	EvidencePath string `json:"evidence_path"`
	// Programs are what the entry's commands run, with what the evidence
	// says of each.
	Programs []Program `json:"programs"`

	Cron    *CronJob        `json:"cron,omitempty"`
	Unit    *UnitInfo       `json:"unit,omitempty"`
	Key     *AuthorizedKey  `json:"key,omitempty"`
	Hook    *OCIHook        `json:"hook,omitempty"`
	Runtime *RuntimeSetting `json:"runtime,omitempty"`
	Note    string          `json:"note,omitempty"`

	// judgement inputs not printed
	dropinsOwned bool
	ordinary     bool // a runtime setting with nothing unusual
	empty        bool // a script with no command
	conffile     bool
	identicalTo  string // the file itself is a copy of a package-owned file
}

// Program is a program an entry runs, as the evidence holds it.
type Program struct {
	Path         string  `json:"path"`     // as the entry names it
	Resolved     string  `json:"resolved"` // resolved in the evidence ("" when absent)
	Exists       bool    `json:"exists"`
	Type         string  `json:"type"`
	OwnerPackage *string `json:"owner_package"`
	ExecKind     string  `json:"exec_kind"`
	SHA256       string  `json:"sha256"`
	// IdenticalTo is a package-owned file with the same content under
	// another name (a renamed copy of a system binary).
	IdenticalTo string     `json:"identical_to"`
	Flags       []string   `json:"flags"`
	Mtime       model.Time `json:"mtime"`
}

// PersistenceOptions tune Persistence.
type PersistenceOptions struct {
	// DB is a package database already read (OpenPackageDB); nil reads it
	// (and a host without one is still read, every entry unowned).
	DB *PackageDB
}

// PersistenceReport is the host's persistence entries.
type PersistenceReport struct {
	PackageDB string             `json:"package_db"` // "dpkg", "rpm", "" when none
	Entries   []Entry            `json:"entries"`
	Warnings  []evidence.Warning `json:"warnings"`
}

// Persistence lists what the host would run on its own: cron and anacron
// jobs, systemd units and timers (system and user, with their drop-ins and
// enablement links), /etc/ld.so.preload, authorized_keys of every home,
// shell startup files, rc.local and init scripts, boot-time kernel modules
// and modprobe commands, udev rules that run programs, OCI hooks, and the
// container runtimes' configured programs. Each entry is judged: a
// package-owned, unmodified one is info; an unowned one at least medium
// (low for an unowned systemd service running an ordinary installed
// program, as node images install the kubelet); high when it runs
// something from a volatile or hidden place, a renamed copy of a system
// binary, fetches or decodes code and runs it, opens a reverse shell or
// preloads a library.
func Persistence(ctx context.Context, src evidence.Source, opt PersistenceOptions) (*PersistenceReport, error) {
	var w warnings
	db := opt.DB
	if db == nil {
		var err error
		db, err = OpenPackageDB(ctx, src)
		if err != nil {
			if !errors.Is(err, ErrNoPackageDB) {
				w.add("package database: %v (every entry is treated as unowned)", err)
			}
			db = nil
		}
	}
	ps := &persist{src: src, db: db, w: &w, res: newResolver(src), fileState: map[string]fileState{}}
	if db != nil {
		ps.res = db.res
	}
	r := &PersistenceReport{}
	if db != nil {
		r.PackageDB = db.Format
	}
	steps := []func(){
		ps.cron, ps.systemd, ps.ldPreload, ps.homes, ps.shellRC, ps.rcLocal, ps.initScripts,
		ps.modules, ps.udev, ps.ociHooks, ps.containerd, ps.crio,
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		step()
	}
	for i := range ps.entries {
		e := &ps.entries[i]
		ps.judge(e)
		e.Flags = model.NonNil(e.Flags)
		e.Programs = model.NonNil(e.Programs)
	}
	sort.SliceStable(ps.entries, func(i, j int) bool {
		a, b := &ps.entries[i], &ps.entries[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Line < b.Line
	})
	r.Entries = model.NonNil(ps.entries)
	r.Warnings = model.NonNil(w.done())
	return r, nil
}

type persist struct {
	src     evidence.Source
	db      *PackageDB
	res     *resolver
	w       *warnings
	entries []Entry
	full    bool

	homesDone bool
	homeCache []home
	uidOf     map[string]string // user name -> uid, from /etc/passwd (sshd's %U)

	fileState map[string]fileState // path -> ownership/modification, computed once
	buf       []byte
}

type fileState struct {
	owner       *OwnedFile
	modified    bool
	identicalTo string
	sha256      string
}

// add appends an entry, stamping the file's owner, modification and
// times from its path (a link keeps its own times).
func (ps *persist) add(e Entry) {
	if len(ps.entries) >= MaxEntries {
		if !ps.full {
			ps.full = true
			ps.w.add("more than %d persistence entries; the rest are not listed", MaxEntries)
		}
		return
	}
	if e.EvidencePath == "" {
		e.EvidencePath = e.Path
	}
	ps.entries = append(ps.entries, e)
}

// stamp fills an entry's ownership and times from the file at p (an
// absolute path, directories resolved; a final link is the link).
func (ps *persist) stamp(e *Entry, p string, st *evidence.Stat) {
	e.FileTimes = model.TimesOf(st)
	s := ps.state(p, st)
	if s.owner != nil {
		e.OwnerPackage = ownerName(s.owner)
		e.PackageModified = s.modified
		e.conffile = s.owner.Conffile
	}
	e.identicalTo = s.identicalTo
}

// state says who owns a file and whether it is as the package shipped it
// (hashing it once).
func (ps *persist) state(p string, st *evidence.Stat) fileState {
	if s, ok := ps.fileState[p]; ok {
		return s
	}
	var s fileState
	if ps.db != nil {
		s.owner = ps.db.Owner(p)
	}
	if st != nil && st.Mode.IsRegular() {
		if ps.buf == nil {
			ps.buf = make([]byte, 64<<10)
		}
		algo := AlgoMD5
		if s.owner != nil && s.owner.Algo != "" {
			algo = s.owner.Algo
		} else if ps.db != nil {
			algo = ps.db.digestAlgo()
		}
		if d, err := hashPath(ps.src, p, algo, true, ps.buf); err == nil {
			s.sha256 = d.sha256
			if s.owner != nil && s.owner.Digest != "" && !digestMatches(s.owner, d.db) {
				s.modified = true
			}
			if s.owner == nil && ps.db != nil && st.Size > 0 {
				pc := &pkgCheck{src: ps.src, db: ps.db, w: ps.w, shaCache: map[string]string{}}
				s.identicalTo = pc.identical(d, p, ps.buf)
			}
		}
	}
	if len(ps.fileState) < 1<<16 {
		ps.fileState[p] = s
	}
	return s
}

// program describes a program an entry runs. Bare names are looked up on
// the standard PATH; relative ones under base.
func (ps *persist) program(name, base string) Program {
	pr := Program{Path: name, Flags: []string{}}
	var cands []string
	switch {
	case name == "" || strings.ContainsAny(name, "$%"):
		return pr
	case strings.HasPrefix(name, "/"):
		cands = []string{name}
	case strings.Contains(name, "/"):
		return pr // relative to a working directory we do not know
	default:
		if base != "" {
			cands = append(cands, path.Join(base, name))
		}
		for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
			cands = append(cands, d+"/"+name)
		}
	}
	for _, c := range cands {
		rp, err := ps.res.follow(c)
		if err != nil {
			continue
		}
		st, err := lstat(ps.src, rp)
		if err != nil || st == nil {
			continue
		}
		pr.Resolved, pr.Exists, pr.Type = rp, true, evidence.TypeName(st.Mode)
		pr.Mtime = model.T(st.Mtime)
		pr.Flags = append(pr.Flags, flagsOf(rp, st)...)
		if st.Mode.IsRegular() {
			s := ps.state(rp, st)
			pr.OwnerPackage = ownerName(s.owner)
			pr.SHA256 = s.sha256
			pr.IdenticalTo = s.identicalTo
			if f, err := ps.src.Open(srcName(rp)); err == nil {
				hdr := make([]byte, min(int64(classify.MaxHeader), st.Size))
				n, _ := f.ReadAt(hdr, 0)
				pr.ExecKind = classify.File(hdr[:n], f, st.Mode).Kind
				f.Close()
			}
		}
		return pr
	}
	return pr
}

// runs fills an entry's programs and flags from the commands it runs.
func (ps *persist) runs(e *Entry, base string, cmds ...string) {
	for _, c := range cmds {
		cf := analyzeCommand(c)
		for _, f := range cf.Flags {
			addFlag(e, f)
		}
		for _, p := range cf.Programs {
			if len(e.Programs) >= 16 {
				break
			}
			dup := false
			for _, q := range e.Programs {
				dup = dup || q.Path == p
			}
			if dup {
				continue
			}
			pr := ps.program(p, base)
			e.Programs = append(e.Programs, pr)
			if pr.IdenticalTo != "" {
				addFlag(e, FlagTargetCopy)
			}
			if strings.HasPrefix(p, "/") && !pr.Exists {
				addFlag(e, FlagTargetMissing)
			}
			if pr.Resolved != "" {
				if classify.Volatile(pr.Resolved) {
					addFlag(e, FlagRunsVolatile)
				}
				if hiddenProgram(pr.Resolved) {
					addFlag(e, FlagRunsHidden)
				}
			}
		}
	}
}

func addFlag(e *Entry, f string) {
	if !hasFlag(e.Flags, f) {
		e.Flags = append(e.Flags, f)
	}
}

// maxScriptScan bounds how much of a script is read for what it runs.
const maxScriptScan = 1 << 20

// scanScript flags what a script file (an rc file, a run-parts script, an
// init script) does, line by line.
func (ps *persist) scanScript(e *Entry, b []byte, base string) {
	var cmds []string
	e.empty = true
	if len(b) > maxScriptScan {
		b = b[:maxScriptScan]
		addFlag(e, FlagLongLine)
	}
	for l := range lines(b) {
		if l.Long {
			addFlag(e, FlagLongLine)
		}
		s := strings.TrimSpace(l.Text)
		if s == "" || s[0] == '#' {
			continue
		}
		e.empty = false
		cf := analyzeCommand(s)
		for _, f := range cf.Flags {
			if f != FlagInlineCode { // scripts are code: inline code says nothing
				addFlag(e, f)
			}
		}
		if len(cmds) < 8 && (hasFlag(cf.Flags, FlagFetchRun) || hasFlag(cf.Flags, FlagReverseShell) || hasFlag(cf.Flags, FlagDecodeRun) || hasFlag(cf.Flags, FlagRunsHidden) || hasFlag(cf.Flags, FlagRunsVolatile) || hasFlag(cf.Flags, FlagPreloadsLib)) {
			cmds = append(cmds, s)
		}
	}
	if len(cmds) > 0 {
		ps.runs(e, base, cmds...)
	}
}

// judge sets an entry's severity and why.
func (ps *persist) judge(e *Entry) {
	if e.Severity != 0 || e.Why != "" {
		return // judged where it was made
	}
	owned := e.OwnerPackage != nil
	severe := ""
	for _, f := range severeFlags {
		if hasFlag(e.Flags, f) {
			severe = f
			break
		}
	}
	what := describeSevere(severe, e)
	switch {
	case e.ordinary && severe == "":
		e.Severity, e.Why = model.SeverityInfo, ordinaryWhy[e.Kind]
	case owned && !e.PackageModified && (e.Unit == nil || e.Unit.dropinsUnowned == 0):
		pkg := *e.OwnerPackage
		if e.Unit != nil && e.Unit.Link != "" && !e.Unit.LinkRecorded && e.Unit.dshState {
			e.Severity, e.Why = model.SeverityLow, fmt.Sprintf("enables a unit of package %s as shipped, but the link was not made by the package's maintainer scripts (deb-systemd-helper has no record of it)", pkg)
			return
		}
		e.Severity, e.Why = model.SeverityInfo, fmt.Sprintf("as package %s shipped it", pkg)
		if e.Unit != nil && e.Unit.Link != "" {
			e.Why = fmt.Sprintf("a link enabling a unit of package %s as shipped", pkg)
			if e.Unit.LinkRecorded {
				e.Why += ", made by its maintainer scripts (recorded by deb-systemd-helper)"
			}
		}
	case owned && e.Unit != nil && e.Unit.dropinsUnowned > 0 && !e.PackageModified:
		if severe != "" {
			e.Severity, e.Why = model.SeverityHigh, fmt.Sprintf("a drop-in no package owns changes a unit of package %s so that it %s", *e.OwnerPackage, what)
		} else {
			e.Severity, e.Why = model.SeverityMedium, fmt.Sprintf("a drop-in no package owns changes what a unit of package %s runs", *e.OwnerPackage)
		}
	case owned:
		pkg := *e.OwnerPackage
		switch {
		case severe != "":
			e.Severity, e.Why = model.SeverityHigh, fmt.Sprintf("a file of package %s, changed since install, %s", pkg, what)
		case e.conffile:
			e.Severity, e.Why = model.SeverityMedium, fmt.Sprintf("a configuration file of package %s was edited since install; what it runs is an ordinary program", pkg)
		default:
			e.Severity, e.Why = model.SeverityHigh, fmt.Sprintf("a file of package %s no longer matches the package database's digest", pkg)
		}
	case severe != "":
		e.Severity, e.Why = model.SeverityHigh, fmt.Sprintf("no package owns it, and it %s", what)
	case e.Kind == KindLDPreload:
		e.Severity, e.Why = model.SeverityHigh, "no package owns it, and it preloads a library into every dynamically linked process"
	case e.Kind == KindOCIHook && e.Hook != nil && e.Hook.Always:
		e.Severity, e.Why = model.SeverityHigh, "no package owns it, and the runtime runs its program on the host for every container it creates"
	case !e.Enabled && (e.Kind == KindCron || e.Kind == KindAnacron || e.Kind == KindAuthorizedKey || e.Kind == KindRCLocal || e.Kind == KindInitScript || e.Kind == KindShellRC):
		e.Severity, e.Why = model.SeverityLow, "no package owns it, but nothing runs it as it is"
		if e.Note != "" {
			e.Why += " (" + e.Note + ")"
		}
	case e.empty:
		e.Severity, e.Why = model.SeverityInfo, "it holds no command: it runs nothing"
	case e.Kind == KindShellRC && e.identicalTo != "":
		e.Severity, e.Why = model.SeverityInfo, fmt.Sprintf("a copy of %s, the package's default, as user creation makes it", e.identicalTo)
	case (e.Kind == KindSystemdUnit || e.Kind == KindSystemdTimer) && ps.ordinaryUnit(e):
		e.Severity, e.Why = model.SeverityLow, "unowned but ordinary: no package owns the unit, and it runs an installed program from a system directory with nothing unusual on its command line (as node images install the kubelet)"
	case hasFlag(e.Flags, FlagTargetMissing):
		e.Severity, e.Why = model.SeverityMedium, "no package owns it, and the program it runs is not in the evidence"
	case hasFlag(e.Flags, FlagInlineCode):
		e.Severity, e.Why = model.SeverityMedium, "no package owns it, and it gives an interpreter code on its command line"
	case hasFlag(e.Flags, FlagCommandOption):
		e.Severity, e.Why = model.SeverityMedium, "no package owns it; the key forces a command on login"
	default:
		e.Severity, e.Why = model.SeverityMedium, "no package owns it: "+unownedWhy[e.Kind]
	}
}

// ordinaryWhy explains entries judged by their content alone.
var ordinaryWhy = map[string]string{
	KindRuntimeConfig: "the runtime's own configuration: a standard OCI runtime, or a standard feature, with nothing run from an unusual place",
	KindModprobeCmd:   "keeps the module from loading (install … /bin/true), as hardening guides do",
}

var unownedWhy = map[string]string{
	KindCron:          "a scheduled job someone added",
	KindAnacron:       "a scheduled job someone added",
	KindSystemdUnit:   "a service someone added",
	KindSystemdTimer:  "a timer someone added",
	KindAuthorizedKey: "a key that lets its holder log in as this user",
	KindShellRC:       "a startup file run at every login of a shell",
	KindRCLocal:       "a script run as root at every boot",
	KindInitScript:    "an init script someone added",
	KindKernelModule:  "a kernel module loaded at every boot",
	KindModprobeCmd:   "a command modprobe runs as root when the module loads",
	KindUdevRule:      "a rule that runs a program as root on device events",
	KindOCIHook:       "a hook the runtime runs on the host around containers",
	KindRuntimeConfig: "a runtime setting that makes the container runtime run a program",
}

func describeSevere(flag string, e *Entry) string {
	switch flag {
	case FlagFetchRun:
		return "downloads code and runs it"
	case FlagDecodeRun:
		return "decodes a blob and runs it"
	case FlagReverseShell:
		return "connects a shell to the network"
	case FlagRunsVolatile:
		return "runs a program from a volatile directory (" + flaggedProgram(e, classify.Volatile) + ")"
	case FlagRunsHidden:
		return "runs a program under a hidden name (" + flaggedProgram(e, hiddenProgram) + ")"
	case FlagPreloadsLib:
		return "preloads a library into the processes it starts"
	case FlagTargetCopy:
		for _, p := range e.Programs {
			if p.IdenticalTo != "" {
				return fmt.Sprintf("runs %s, a renamed copy of the system binary %s", p.Path, p.IdenticalTo)
			}
		}
	}
	return ""
}

func flaggedProgram(e *Entry, test func(string) bool) string {
	for _, p := range e.Programs {
		if test(p.Path) || p.Resolved != "" && test(p.Resolved) {
			return p.Path
		}
	}
	if e.Target != "" && test(e.Target) {
		return e.Target
	}
	return "its command"
}

// ordinaryUnit: an unowned unit whose programs are all installed files in
// system program directories, with nothing unusual on its command lines.
func (ps *persist) ordinaryUnit(e *Entry) bool {
	if len(e.Programs) == 0 || hasFlag(e.Flags, FlagInlineCode) || hasFlag(e.Flags, FlagTargetMissing) {
		return false
	}
	for _, p := range e.Programs {
		if !p.Exists || !inDirs(p.Resolved, binDirs...) {
			return false
		}
	}
	return true
}

// lstatAbs resolves p's directories and stats it.
func (ps *persist) lstatAbs(p string) (string, *evidence.Stat) {
	rp, err := ps.res.path(p)
	if err != nil {
		ps.w.at(p, -1, "%v", err)
		return "", nil
	}
	st, err := lstat(ps.src, rp)
	if err != nil {
		ps.w.at(p, -1, "%v", err)
	}
	return rp, st
}

// readFileAt reads a regular file at resolved path rp (following a final
// link inside the evidence). It returns the file's own path read.
func (ps *persist) readFileAt(rp string) ([]byte, string, error) {
	fp, err := ps.res.follow(rp)
	if err != nil {
		return nil, "", err
	}
	b, err := readConfig(ps.src, srcName(fp))
	return b, fp, err
}

// confFile is a configuration file read from the evidence.
type confFile struct {
	path string         // the absolute path asked for, its directories' links resolved
	st   *evidence.Stat // path's lstat
	data []byte         // the content (bounded by MaxConfigFile)
	file string         // the path of the file read: path, a final link followed
}

// readConf reads the configuration file at absolute path p; nil when it is
// absent, or unreadable (then a warning names p).
func (ps *persist) readConf(p string) *confFile {
	rp, st := ps.lstatAbs(p)
	if st == nil {
		return nil
	}
	b, fp, err := ps.readFileAt(rp)
	if err != nil {
		ps.w.at(p, -1, "%v", err)
		return nil
	}
	return &confFile{path: rp, st: st, data: b, file: fp}
}

// listDir lists the entries of an absolute directory path (resolved),
// sorted by name; nil when absent.
func (ps *persist) listDir(dir string) (string, []*evidence.Stat) {
	rd, err := ps.res.follow(dir)
	if err != nil {
		ps.w.at(dir, -1, "%v", err)
		return "", nil
	}
	st, _ := lstat(ps.src, rd)
	if st == nil || !st.Mode.IsDir() {
		return rd, nil
	}
	return rd, readDir(ps.src, srcName(rd), ps.w)
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}
