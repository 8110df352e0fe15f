package host

import (
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/model"
)

// systemd's unit search paths (systemd.unit(5)), highest priority first.
var (
	systemUnitDirs = []string{"/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient", "/etc/systemd/system", "/etc/systemd/system.attached",
		"/run/systemd/system", "/run/systemd/system.attached", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
	userUnitDirs = []string{"/etc/systemd/user", "/run/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user", "/lib/systemd/user"}
	homeUnitDirs = []string{".config/systemd/user", ".local/share/systemd/user"}
	// dshEnabled is where deb-systemd-helper records the links Debian's
	// maintainer scripts made (the same relative paths as under
	// /etc/systemd/system).
	dshEnabled = "/var/lib/systemd/deb-systemd-helper-enabled"
)

// unitTypes are the unit types that run or trigger programs.
var unitTypes = map[string]bool{".service": true, ".timer": true, ".socket": true, ".path": true}

// FlagMasked etc. describe units.
const (
	FlagUserUnit      = "user_unit"
	FlagWantsLink     = "enablement_link"
	FlagAliasLink     = "alias_link"
	FlagUnitOutside   = "unit_outside_search_path" // a link points at a unit file outside systemd's search path
	FlagNotALink      = "not_a_link"               // a regular file where systemd expects a link
	FlagLinkDangling  = "dangling_link"
	FlagTriggered     = "triggered_by_unit"
	FlagRefusedByCron = "refused_by_cron"
)

// UnitInfo is what a systemd entry runs and why.
type UnitInfo struct {
	Name  string `json:"name"`
	Scope string `json:"scope"` // system, user
	// File is the unit file read (a link's resolved target).
	File             string  `json:"file"`
	FileOwnerPackage *string `json:"file_owner_package"`
	// UnitLink is the enablement (or alias) link this entry is, when it
	// is one; its JSON fields inline.
	UnitLink
	DropIns     []DropIn   `json:"dropins"`
	Exec        []ExecLine `json:"exec"`
	Environment []string   `json:"environment,omitempty"`
	EnvFiles    []string   `json:"environment_files,omitempty"`
	User        string     `json:"user,omitempty"`
	// Triggers is the unit a timer, socket or path unit starts.
	Triggers string   `json:"triggers,omitempty"`
	Schedule []string `json:"schedule,omitempty"` // a timer's On…= settings
	WantedBy []string `json:"wanted_by,omitempty"`
	// EnabledBy are the links (and timers, sockets, path units) that make
	// the unit run.
	EnabledBy []string `json:"enabled_by"`

	dropinsUnowned int
	dshState       bool
}

// UnitLink is a link that enables (or aliases) a unit: a file under
// <unit>.wants/ or an alias name pointing at the unit file.
type UnitLink struct {
	// Link is the link's path, LinkTarget its target as written.
	Link       string `json:"link,omitempty"`
	LinkTarget string `json:"link_target,omitempty"`
	// LinkRecorded: deb-systemd-helper recorded the link (Debian's
	// maintainer scripts made it).
	LinkRecorded bool `json:"link_recorded"`
}

// DropIn is a drop-in file applied to a unit.
type DropIn struct {
	Path         string  `json:"path"`
	OwnerPackage *string `json:"owner_package"`
	Modified     bool    `json:"package_modified"`
	model.FileTimes
}

// unitScope is one set of search paths: the system's, the global user
// one, or a home's.
type unitScope struct {
	scope string
	dirs  []string          // resolved, highest priority first
	names map[string]string // unit name -> the file (in its dir, not followed)
	// own are the dirs whose units this scope lists (a home's user scope
	// lists only the home's).
	own    []string
	loaded map[string]*loadedUnit
	home   string // a home's user scope: its directory (for %h)
}

type loadedUnit struct {
	name    string
	file    string // the unit file read (followed)
	st      *evidence.Stat
	merged  *mergedUnit
	info    UnitInfo
	flags   []string
	missing bool
	masked  bool
}

type unitLink struct {
	path   string // the link, in its dir
	dir    string // the wants dir
	name   string
	st     *evidence.Stat
	target string // as written
}

func (ps *persist) systemd() {
	_, st := ps.lstatAbs(dshEnabled)
	dsh := st != nil && st.Mode.IsDir()
	sys := ps.newScope("system", systemUnitDirs, nil)
	sys.home = "/root"
	ps.unitEntries(sys, dsh)
	usr := ps.newScope("user", userUnitDirs, nil)
	ps.unitEntries(usr, false)
	for _, h := range ps.homeDirs() {
		var own []string
		for _, d := range homeUnitDirs {
			own = append(own, path.Join(h, d))
		}
		hs := ps.newScope("user", append(append([]string{}, own...), userUnitDirs...), own)
		hs.home = h
		if len(hs.own) > 0 {
			ps.unitEntries(hs, false)
		}
	}
}

// newScope resolves a scope's directories and indexes its unit names.
func (ps *persist) newScope(scope string, dirs, own []string) *unitScope {
	s := &unitScope{scope: scope, names: map[string]string{}, loaded: map[string]*loadedUnit{}}
	seen := map[string]bool{}
	ownSet := map[string]bool{}
	for _, o := range own {
		ownSet[o] = true
	}
	for _, d := range dirs {
		rd, ents := ps.listDir(d)
		if rd == "" || seen[rd] || ents == nil {
			continue
		}
		seen[rd] = true
		s.dirs = append(s.dirs, rd)
		if own == nil || ownSet[d] {
			s.own = append(s.own, rd)
		}
		for _, e := range ents {
			name := baseName(e.Name)
			if _, ok := s.names[name]; ok {
				continue
			}
			if unitTypes[path.Ext(name)] && !e.Mode.IsDir() {
				s.names[name] = path.Join(rd, name)
			}
		}
	}
	return s
}

// unitEntries lists a scope's unit files and enablement links.
func (ps *persist) unitEntries(s *unitScope, dsh bool) {
	// links in *.wants, *.requires, *.upholds of every dir, and aliases
	var links []unitLink
	enabledBy := map[string][]string{} // unit file (followed) or name -> links
	for _, d := range s.dirs {
		for _, e := range readDir(ps.src, srcName(d), ps.w) {
			name := baseName(e.Name)
			if !e.Mode.IsDir() || !(strings.HasSuffix(name, ".wants") || strings.HasSuffix(name, ".requires") || strings.HasSuffix(name, ".upholds")) {
				continue
			}
			wd := path.Join(d, name)
			for _, l := range readDir(ps.src, srcName(wd), ps.w) {
				ln := baseName(l.Name)
				if !unitTypes[path.Ext(ln)] {
					continue
				}
				ul := unitLink{path: path.Join(wd, ln), dir: wd, name: ln, st: l}
				if l.Mode&fs.ModeSymlink != 0 {
					ul.target, _ = ps.src.Readlink(l.Name)
				}
				links = append(links, ul)
			}
		}
	}
	for _, l := range links {
		lu := ps.loadLinked(s, l)
		key := l.name
		if lu != nil && lu.file != "" {
			key = lu.file
		}
		enabledBy[key] = append(enabledBy[key], l.path)
		if lu != nil && lu.file != "" && lu.name != l.name {
			enabledBy[l.name] = append(enabledBy[l.name], l.path)
		}
	}
	// the unit files the scope lists (the effective one of each name)
	var names []string
	for n, f := range s.names {
		if inDirs(path.Dir(f), s.own...) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	type made struct {
		e  Entry
		lu *loadedUnit
	}
	var units []made
	triggered := map[string][]string{} // service file -> trigger unit files
	for _, n := range names {
		lu := ps.loadUnit(s, n)
		if lu == nil || lu.masked {
			continue
		}
		e := ps.unitEntry(s, lu, s.names[n], nil)
		eb := append(append([]string{}, enabledBy[lu.file]...), enabledBy[n]...)
		e.Unit.EnabledBy = dedupe(eb)
		e.Enabled = len(e.Unit.EnabledBy) > 0
		if e.Unit.Triggers != "" && e.Enabled {
			if tu := ps.loadUnit(s, e.Unit.Triggers); tu != nil {
				triggered[tu.file] = append(triggered[tu.file], s.names[n])
			}
		}
		units = append(units, made{e, lu})
	}
	for _, u := range units {
		if t := triggered[u.lu.file]; len(t) > 0 {
			u.e.Unit.EnabledBy = dedupe(append(u.e.Unit.EnabledBy, t...))
			u.e.Enabled = true
			addFlag(&u.e, FlagTriggered)
		}
		ps.add(u.e)
	}
	// the links themselves
	for _, l := range links {
		lu := ps.loadLinked(s, l)
		ul := l
		e := ps.unitEntry(s, lu, l.path, &ul)
		e.Enabled = lu != nil && !lu.missing && !lu.masked
		if dsh && s.scope == "system" {
			ps.dshRecord(e.Unit, l.path)
		}
		ps.add(e)
	}
	// aliases: links directly in /etc/systemd/system to another name
	for _, d := range s.own {
		for _, en := range readDir(ps.src, srcName(d), ps.w) {
			n := baseName(en.Name)
			if en.Mode&fs.ModeSymlink == 0 || !unitTypes[path.Ext(n)] || s.names[n] != path.Join(d, n) {
				continue
			}
			lu := ps.loadUnit(s, n)
			if lu == nil || lu.masked || lu.missing || baseName(lu.file) == n {
				continue // a masked unit, or a linked unit file of the same name (listed above)
			}
			// listed above as the unit; mark it an alias
			for i := range ps.entries {
				if ps.entries[i].Path == path.Join(d, n) && ps.entries[i].Unit != nil {
					addFlag(&ps.entries[i], FlagAliasLink)
					ps.entries[i].Unit.Link = path.Join(d, n)
					ps.entries[i].Unit.LinkTarget, _ = ps.src.Readlink(en.Name)
					if dsh && s.scope == "system" {
						ps.dshRecord(ps.entries[i].Unit, path.Join(d, n))
					}
				}
			}
		}
	}
}

// expandSpecifiers expands the systemd specifiers of a path we can know
// (%h, the home; %%); others stay as written.
func expandSpecifiers(cmd, home string) string {
	if !strings.Contains(cmd, "%") {
		return cmd
	}
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] == '%' && i+1 < len(cmd) {
			switch cmd[i+1] {
			case 'h':
				if home != "" {
					b.WriteString(home)
					i++
					continue
				}
			case '%':
				b.WriteByte('%')
				i++
				continue
			}
		}
		b.WriteByte(cmd[i])
	}
	return b.String()
}

// templateOf returns the template of an instance name ("getty@.service"
// for "getty@tty1.service"), "" for other names.
// dropInDirs are the drop-in directory names of a unit, most specific
// first: its own, its name's dash prefixes (foo-bar-.service.d,
// foo-.service.d, since systemd 246), its template's, its type's
// (service.d).
func dropInDirs(name string) []string {
	out := []string{name + ".d"}
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := len(stem) - 1; i > 0; i-- {
		if stem[i] == '-' && i < len(stem)-1 {
			out = append(out, stem[:i+1]+ext+".d")
		}
	}
	if t := templateOf(name); t != "" {
		out = append(out, t+".d")
	}
	return append(out, strings.TrimPrefix(ext, ".")+".d")
}

func templateOf(name string) string {
	i := strings.IndexByte(name, '@')
	ext := path.Ext(name)
	if i <= 0 || strings.HasPrefix(name[i:], "@.") {
		return ""
	}
	return name[:i+1] + ext
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// loadLinked loads the unit an enablement link points at: the file it
// resolves to inside the evidence, or (a link to nothing readable) the
// unit of that name.
// dshRecord notes that deb-systemd-helper's state is on the node for a
// system unit's link at p, and whether it recorded that link (Debian's
// maintainer scripts made it).
func (ps *persist) dshRecord(u *UnitInfo, p string) {
	u.dshState = true
	if rel, ok := strings.CutPrefix(p, "/etc/systemd/system/"); ok {
		if _, st := ps.lstatAbs(dshEnabled + "/" + rel); st != nil {
			u.LinkRecorded = true
		}
	}
}

func (ps *persist) loadLinked(s *unitScope, l unitLink) *loadedUnit {
	key := "link:" + l.path
	if lu, ok := s.loaded[key]; ok {
		return lu
	}
	var lu *loadedUnit
	if l.st.Mode&fs.ModeSymlink == 0 {
		// systemd reads a .wants entry by its name alone
		lu = ps.loadUnit(s, l.name)
		if lu == nil {
			if t := templateOf(l.name); t != "" {
				lu = ps.loadUnit(s, t)
			}
		}
	} else {
		fp, err := ps.res.follow(l.path)
		if err != nil {
			ps.w.at(l.path, -1, "%v", err)
		}
		if fp != "" {
			if st, _ := lstat(ps.src, fp); st != nil && st.Mode.IsRegular() {
				lu = ps.loadFile(s, l.name, fp, st)
			}
		}
		if lu == nil {
			if n := s.names[l.name]; n != "" {
				lu = ps.loadUnit(s, l.name)
			} else if t := templateOf(l.name); t != "" {
				lu = ps.loadUnit(s, t)
			}
		}
		if lu == nil && fp != "" && fp != "/dev/null" {
			lu = &loadedUnit{name: l.name, file: fp, missing: true}
		}
		if fp == "/dev/null" {
			lu = &loadedUnit{name: l.name, file: fp, masked: true}
		}
	}
	s.loaded[key] = lu
	return lu
}

// loadUnit loads the effective unit of a name in a scope (template
// instances fall back to their template), nil when there is none.
func (ps *persist) loadUnit(s *unitScope, name string) *loadedUnit {
	if lu, ok := s.loaded[name]; ok {
		return lu
	}
	s.loaded[name] = nil // a unit that names itself does not loop
	f := s.names[name]
	if f == "" {
		if t := templateOf(name); t != "" {
			f = s.names[t]
		}
	}
	if f == "" {
		return nil
	}
	fp, err := ps.res.follow(f)
	if err != nil {
		ps.w.at(f, -1, "%v", err)
		return nil
	}
	if fp == "/dev/null" {
		lu := &loadedUnit{name: name, file: fp, masked: true}
		s.loaded[name] = lu
		return lu
	}
	st, _ := lstat(ps.src, fp)
	if st == nil || !st.Mode.IsRegular() {
		lu := &loadedUnit{name: name, file: fp, missing: true}
		s.loaded[name] = lu
		return lu
	}
	lu := ps.loadFile(s, name, fp, st)
	s.loaded[name] = lu
	return lu
}

// loadFile reads a unit file and its drop-ins.
func (ps *persist) loadFile(s *unitScope, name, fp string, st *evidence.Stat) *loadedUnit {
	if lu, ok := s.loaded["file:"+fp]; ok && lu != nil {
		return lu
	}
	lu := &loadedUnit{name: name, file: fp, st: st}
	b, err := readConfig(ps.src, srcName(fp))
	if err != nil {
		ps.w.at(fp, -1, "%v", err)
		lu.missing = true
		return lu
	}
	dirs, long := parseUnitFile(b)
	if long {
		lu.flags = append(lu.flags, FlagLongLine)
	}
	srcs := []unitSource{{path: fp, directives: dirs}}
	fst := ps.state(fp, st)
	lu.info = UnitInfo{Name: name, Scope: s.scope, File: fp, FileOwnerPackage: ownerName(fst.owner), DropIns: []DropIn{}, EnabledBy: []string{}}
	// drop-ins: <name>.d/*.conf (and the template's, and the type's) in
	// every dir; a name in a higher-priority dir masks the same name below
	dnames := dropInDirs(name)
	chosen := map[string]string{}
	var order []string
	for _, d := range s.dirs {
		for _, dn := range dnames {
			for _, e := range readDir(ps.src, srcName(path.Join(d, dn)), ps.w) {
				bn := baseName(e.Name)
				if !strings.HasSuffix(bn, ".conf") {
					continue
				}
				if _, ok := chosen[bn]; ok {
					continue
				}
				chosen[bn] = path.Join(d, dn, bn)
				order = append(order, bn)
			}
		}
	}
	sort.Strings(order)
	for _, bn := range order {
		dp := chosen[bn]
		dfp, err := ps.res.follow(dp)
		if err != nil {
			ps.w.at(dp, -1, "%v", err)
			continue
		}
		dst, _ := lstat(ps.src, dfp)
		if dst == nil || !dst.Mode.IsRegular() {
			continue // a drop-in linked to /dev/null masks nothing we run
		}
		db, err := readConfig(ps.src, srcName(dfp))
		if err != nil {
			ps.w.at(dp, -1, "%v", err)
			continue
		}
		dd, long := parseUnitFile(db)
		if long {
			lu.flags = append(lu.flags, FlagLongLine)
		}
		lst, _ := lstat(ps.src, dp)
		if lst == nil {
			lst = dst
		}
		ds := ps.state(dfp, dst)
		di := DropIn{Path: dp, OwnerPackage: ownerName(ds.owner), Modified: ds.modified, FileTimes: model.TimesOf(lst)}
		lu.info.DropIns = append(lu.info.DropIns, di)
		if fst.owner != nil && (ds.owner == nil || ds.modified) {
			for _, d := range dd {
				if isExecKey(d.Key) || d.Key == "Environment" || d.Key == "EnvironmentFile" || d.Key == "User" || d.Key == "Unit" || d.Key == "Service" {
					lu.info.dropinsUnowned++
					lu.flags = append(lu.flags, FlagUnownedDropIn)
					break
				}
			}
		}
		srcs = append(srcs, unitSource{path: dp, directives: dd})
	}
	m := mergeUnit(srcs)
	lu.merged = m
	for _, k := range m.cut {
		ps.w.at(lu.info.File, -1, "more values of %s than are kept (%d, %d for Exec lines): the later ones are not judged", k, maxListValues, maxExecLines)
	}
	lu.info.Exec = model.NonNil(m.exec)
	for _, v := range m.all("Service", "Environment") {
		for _, w := range shellWords(v) {
			if len(lu.info.Environment) < 64 {
				lu.info.Environment = append(lu.info.Environment, w)
			}
		}
	}
	lu.info.EnvFiles = m.all("Service", "EnvironmentFile")
	lu.info.User = m.get("Service", "User")
	lu.info.WantedBy = append(m.all("Install", "WantedBy"), m.all("Install", "RequiredBy")...)
	switch path.Ext(name) {
	case ".timer":
		lu.info.Triggers = m.get("Timer", "Unit")
		for _, k := range []string{"OnCalendar", "OnBootSec", "OnStartupSec", "OnActiveSec", "OnUnitActiveSec", "OnUnitInactiveSec"} {
			for _, v := range m.all("Timer", k) {
				lu.info.Schedule = append(lu.info.Schedule, k+"="+v)
			}
		}
	case ".path":
		lu.info.Triggers = m.get("Path", "Unit")
	case ".socket":
		lu.info.Triggers = m.get("Socket", "Service")
		if lu.info.Triggers == "" && strings.EqualFold(m.get("Socket", "Accept"), "yes") {
			lu.info.Triggers = strings.TrimSuffix(name, ".socket") + "@.service"
		}
	}
	if lu.info.Triggers == "" && path.Ext(name) != ".service" {
		lu.info.Triggers = strings.TrimSuffix(name, path.Ext(name)) + ".service"
	}
	s.loaded["file:"+fp] = lu
	return lu
}

// unitEntry makes the entry of a unit file (link == nil) or of a link to
// it.
func (ps *persist) unitEntry(s *unitScope, lu *loadedUnit, at string, link *unitLink) Entry {
	name := path.Base(at)
	e := Entry{Path: at, Kind: KindSystemdUnit, Flags: []string{}}
	if path.Ext(name) == ".timer" {
		e.Kind = KindSystemdTimer
	}
	if s.scope == "user" {
		addFlag(&e, FlagUserUnit)
	}
	var st *evidence.Stat
	if link != nil {
		st = link.st
		addFlag(&e, FlagWantsLink)
		if link.st.Mode&fs.ModeSymlink == 0 {
			addFlag(&e, FlagNotALink)
		}
	} else {
		st, _ = lstat(ps.src, at)
	}
	e.FileTimes = model.TimesOf(st)
	if lu == nil || lu.missing {
		info := UnitInfo{Name: name, Scope: s.scope, DropIns: []DropIn{}, EnabledBy: []string{}, Exec: []ExecLine{}}
		if link != nil {
			info.Link, info.LinkTarget = link.path, link.target
		}
		e.Unit = &info
		addFlag(&e, FlagLinkDangling)
		if lu != nil {
			e.Unit.File = lu.file
			e.EvidencePath = lu.file
		}
		e.Severity, e.Why = model.SeverityLow, "the unit it names is not in the evidence, so it runs nothing"
		if e.OwnerPackage = ownerName(ps.ownerOf(at)); e.OwnerPackage != nil {
			e.Severity, e.Why = model.SeverityInfo, "the unit it names is not in the evidence"
		}
		return e
	}
	info := lu.info
	info.DropIns = append([]DropIn{}, lu.info.DropIns...)
	info.EnabledBy = []string{}
	for _, f := range lu.flags {
		addFlag(&e, f)
	}
	e.Unit = &info
	e.EvidencePath = lu.file
	fst := ps.state(lu.file, lu.st)
	if fst.owner != nil {
		e.OwnerPackage = ownerName(fst.owner)
		e.PackageModified = fst.modified
		e.conffile = fst.owner.Conffile
	}
	for _, d := range info.DropIns {
		if d.Modified {
			e.PackageModified = true
		}
	}
	if link != nil {
		info.Link, info.LinkTarget = link.path, link.target
		if !inDirs(path.Dir(lu.file), s.dirs...) {
			addFlag(&e, FlagUnitOutside)
			if classify.Volatile(lu.file) {
				addFlag(&e, FlagRunsVolatile)
			}
			if classify.Hidden(lu.file) {
				addFlag(&e, FlagRunsHidden)
			}
		}
	}
	// what it runs: its own Exec lines, or (a timer, socket, path) its
	// triggered service's
	run := lu
	if info.Triggers != "" && path.Ext(lu.name) != ".service" {
		tu := ps.loadUnit(s, info.Triggers)
		if tu == nil || tu.missing {
			addFlag(&e, FlagTargetMissing)
			e.Note = "the unit it triggers, " + info.Triggers + ", is not in the evidence"
			run = nil
		} else if !tu.masked {
			run = tu
			for _, f := range tu.flags {
				addFlag(&e, f)
			}
			if tfs := ps.state(tu.file, tu.st); tfs.owner == nil || tfs.modified {
				// a package timer whose service someone replaced or added
				if e.OwnerPackage != nil && !e.PackageModified {
					e.Unit.dropinsUnowned++
					addFlag(&e, FlagUnownedDropIn)
				}
			}
			e.Unit.dropinsUnowned += tu.info.dropinsUnowned
		}
	}
	if run != nil && run.merged != nil {
		var cmds []string
		for _, x := range run.merged.exec {
			cmds = append(cmds, x.Command)
		}
		if e.Target == "" {
			for _, x := range run.merged.exec {
				if x.Directive == "ExecStart" {
					e.Target = x.Command
					break
				}
			}
			if e.Target == "" && len(run.merged.exec) > 0 {
				e.Target = run.merged.exec[0].Command
			}
		}
		for _, env := range run.merged.all("Service", "Environment") {
			cmds = append(cmds, "env "+env)
			if rePreloadEnv.MatchString(env) {
				addFlag(&e, FlagPreloadsLib)
			}
		}
		for i, c := range cmds {
			cmds[i] = expandSpecifiers(c, s.home)
		}
		ps.runs(&e, "", cmds...)
		if run != lu {
			e.Unit.Exec = model.NonNil(run.merged.exec)
		}
	}
	return e
}

func (ps *persist) ownerOf(p string) *OwnedFile {
	if ps.db == nil {
		return nil
	}
	return ps.db.Owner(p)
}
