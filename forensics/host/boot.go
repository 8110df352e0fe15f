package host

import (
	"path"
	"regexp"
	"sort"
	"strings"
)

const (
	ldSoPreload    = "/etc/ld.so.preload"
	etcEnvironment = "/etc/environment"
)

// preloadLib is one library named in /etc/ld.so.preload.
type preloadLib struct {
	Lib  string
	Line int
}

// parsePreload reads ld.so.preload: libraries separated by blanks, colons
// or newlines; '#' starts a comment to the end of the line.
func parsePreload(b []byte) []preloadLib {
	var out []preloadLib
	for l := range lines(b) {
		t := l.Text
		if i := strings.IndexByte(t, '#'); i >= 0 {
			t = t[:i]
		}
		for _, lib := range strings.FieldsFunc(t, func(r rune) bool { return r == ' ' || r == '\t' || r == ':' }) {
			if len(out) >= 1024 {
				return out
			}
			out = append(out, preloadLib{Lib: lib, Line: l.Num})
		}
	}
	return out
}

func (ps *persist) ldPreload() {
	cf := ps.readConf(ldSoPreload)
	if cf == nil {
		return
	}
	for _, lib := range parsePreload(cf.data) {
		e := Entry{Path: cf.path, Line: lib.Line, Kind: KindLDPreload, Target: lib.Lib, Enabled: true, EvidencePath: cf.file, Flags: []string{FlagPreloadsLib}}
		ps.stamp(&e, cf.path, cf.st)
		ps.runs(&e, "", lib.Lib)
		ps.add(e)
	}
}

// shell startup files, system-wide and per home.
var (
	systemRC = []string{"/etc/profile", "/etc/bash.bashrc", "/etc/bash.bash_logout", "/etc/bashrc", "/etc/environment",
		"/etc/zsh/zshenv", "/etc/zsh/zprofile", "/etc/zsh/zshrc", "/etc/zsh/zlogin", "/etc/zshenv", "/etc/zprofile", "/etc/zshrc", "/etc/zlogin",
		"/etc/csh.cshrc", "/etc/csh.login", "/etc/ksh.kshrc"}
	systemRCDirs = []string{"/etc/profile.d"}
	homeRC       = []string{".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc", ".zshenv", ".zprofile", ".zlogin", ".cshrc", ".tcshrc", ".kshrc", ".config/fish/config.fish"}
)

func (ps *persist) shellRC() {
	for _, p := range systemRC {
		ps.rcFile(p, true)
	}
	for _, d := range systemRCDirs {
		rd, ents := ps.listDir(d)
		for _, e := range ents {
			if !e.Mode.IsDir() {
				n := baseName(e.Name)
				// /etc/profile sources *.sh (Debian) — other names are not run
				ps.rcFile(path.Join(rd, n), strings.HasSuffix(n, ".sh"))
			}
		}
	}
	for _, h := range ps.homeDirs() {
		for _, n := range homeRC {
			ps.rcFile(path.Join(h, n), true)
		}
	}
}

// rcFile lists a shell startup file (its content scanned for what it
// runs); /etc/environment's LD_PRELOAD also makes an ld_preload entry.
func (ps *persist) rcFile(p string, enabled bool) {
	rp, st := ps.lstatAbs(p)
	if st == nil {
		return
	}
	b, fp, err := ps.readFileAt(rp)
	if err != nil {
		if !isNotExist(err) {
			ps.w.at(p, -1, "%v", err)
		}
		return
	}
	e := Entry{Path: rp, Kind: KindShellRC, Target: rp, Enabled: enabled, EvidencePath: fp, Flags: []string{}}
	ps.stamp(&e, rp, st)
	if fp != rp {
		// a link: the file it points at is what runs
		if fst, _ := lstat(ps.src, fp); fst != nil && e.OwnerPackage == nil {
			s := ps.state(fp, fst)
			e.OwnerPackage, e.PackageModified, e.identicalTo = ownerName(s.owner), s.modified, s.identicalTo
		}
	}
	if !enabled {
		e.Note = "/etc/profile sources only *.sh files of profile.d"
	}
	ps.scanScript(&e, b, "")
	ps.add(e)
	if rp == etcEnvironment {
		for l := range lines(b) {
			k, v, ok := strings.Cut(strings.TrimSpace(l.Text), "=")
			if !ok || strings.TrimSpace(strings.TrimPrefix(k, "export ")) != "LD_PRELOAD" {
				continue
			}
			for _, lib := range strings.FieldsFunc(unquote(strings.TrimSpace(v)), func(r rune) bool { return r == ' ' || r == ':' }) {
				le := Entry{Path: rp, Line: l.Num, Kind: KindLDPreload, Target: lib, Enabled: true, EvidencePath: fp, Flags: []string{FlagPreloadsLib}}
				ps.stamp(&le, rp, st)
				ps.runs(&le, "", lib)
				ps.add(le)
			}
		}
	}
}

func (ps *persist) rcLocal() {
	for _, p := range []string{"/etc/rc.local", "/etc/rc.d/rc.local"} {
		rp, st := ps.lstatAbs(p)
		if st == nil {
			continue
		}
		if rp != p && p == "/etc/rc.d/rc.local" {
			continue
		}
		b, fp, err := ps.readFileAt(rp)
		if err != nil {
			ps.w.at(p, -1, "%v", err)
			continue
		}
		fst, _ := lstat(ps.src, fp)
		e := Entry{Path: rp, Kind: KindRCLocal, Target: rp, EvidencePath: fp, Flags: []string{}}
		e.Enabled = fst != nil && fst.Mode&0o111 != 0
		if !e.Enabled {
			e.Note = "not executable: systemd's rc-local generator skips it"
		}
		ps.stamp(&e, rp, st)
		ps.scanScript(&e, b, "")
		ps.add(e)
	}
}

func (ps *persist) initScripts() {
	// which scripts have a start link in a runlevel directory
	started := map[string]bool{}
	for _, lvl := range []string{"0", "1", "2", "3", "4", "5", "6", "S"} {
		for _, base := range []string{"/etc/rc" + lvl + ".d", "/etc/rc.d/rc" + lvl + ".d"} {
			_, ents := ps.listDir(base)
			for _, e := range ents {
				n := baseName(e.Name)
				if len(n) > 3 && n[0] == 'S' {
					started[n[3:]] = true
				}
			}
		}
	}
	for _, d := range []string{"/etc/init.d", "/etc/rc.d/init.d"} {
		rd, ents := ps.listDir(d)
		if rd != path.Clean(d) && d == "/etc/rc.d/init.d" {
			continue // a link to /etc/init.d, listed already
		}
		for _, en := range ents {
			n := baseName(en.Name)
			if en.Mode.IsDir() || n == "README" || strings.HasPrefix(n, ".") && en.Mode.Perm()&0o111 == 0 {
				continue
			}
			p := path.Join(rd, n)
			e := Entry{Path: p, Kind: KindInitScript, Target: p, Enabled: started[n], Flags: []string{}}
			fp, err := ps.res.follow(p)
			if err != nil {
				ps.w.at(p, -1, "%v", err)
				continue
			}
			e.EvidencePath = fp
			ps.stamp(&e, p, en)
			if b, err := readConfig(ps.src, srcName(fp)); err == nil {
				ps.scanScript(&e, b, "")
			}
			ps.add(e)
		}
	}
}

// module configuration (modules-load.d(5), modprobe.d(5)).
var (
	modulesLoadDirs = []string{"/etc/modules-load.d", "/run/modules-load.d", "/usr/local/lib/modules-load.d", "/usr/lib/modules-load.d", "/lib/modules-load.d"}
	modprobeDirs    = []string{"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"}
	udevRuleDirs    = []string{"/etc/udev/rules.d", "/run/udev/rules.d", "/usr/local/lib/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d"}
)

// confFiles lists the files of a set of .d directories as systemd-style
// tools read them: by name, a name in an earlier directory masking the
// same name in a later one.
func (ps *persist) confFiles(dirs []string, suffix string) []string {
	chosen := map[string]string{}
	seen := map[string]bool{}
	var names []string
	for _, d := range dirs {
		rd, ents := ps.listDir(d)
		if rd == "" || seen[rd] {
			continue
		}
		seen[rd] = true
		for _, e := range ents {
			n := baseName(e.Name)
			if e.Mode.IsDir() || suffix != "" && !strings.HasSuffix(n, suffix) {
				continue
			}
			if _, ok := chosen[n]; !ok {
				chosen[n] = path.Join(rd, n)
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = chosen[n]
	}
	return out
}

// confLines reads a configuration file's logical lines: comments ('#',
// ';') dropped, backslash continuations joined.
func confLines(b []byte) []textLine {
	var out []textLine
	var cur *textLine
	for l := range lines(b) {
		t := l.Text
		if cur == nil {
			s := strings.TrimSpace(t)
			if s == "" || s[0] == '#' || s[0] == ';' {
				continue
			}
			c := l
			cur = &c
			cur.Text = ""
		}
		more := strings.HasSuffix(t, "\\")
		if len(cur.Text) < 1<<20 {
			cur.Text += strings.TrimSuffix(t, "\\")
		}
		cur.Long = cur.Long || l.Long
		if !more {
			cur.Text = strings.TrimSpace(cur.Text)
			out = append(out, *cur)
			cur = nil
		}
		if len(out) > 1<<16 {
			break
		}
	}
	if cur != nil {
		cur.Text = strings.TrimSpace(cur.Text)
		out = append(out, *cur)
	}
	return out
}

func (ps *persist) modules() {
	files := append([]string{"/etc/modules"}, ps.confFiles(modulesLoadDirs, ".conf")...)
	for _, p := range files {
		ps.confEntries(p, func(e *Entry, l textLine) bool {
			f := strings.Fields(l.Text)
			e.Kind, e.Target, e.Enabled = KindKernelModule, f[0], true
			return true
		})
	}
	for _, p := range ps.confFiles(modprobeDirs, ".conf") {
		ps.confEntries(p, func(e *Entry, l textLine) bool {
			f, rest := cutFields(l.Text, 2)
			if len(f) < 2 || (f[0] != "install" && f[0] != "remove") {
				return false
			}
			cmd := strings.TrimSpace(rest)
			e.Kind, e.Target, e.Enabled = KindModprobeCmd, cmd, true
			ps.runs(e, "", cmd)
			e.ordinary = disablesModule(cmd)
			return true
		})
	}
}

// disablesModule: "install X /bin/true" (or false) is how administrators
// and hardening guides keep a module from loading.
func disablesModule(cmd string) bool {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return false
	}
	switch path.Base(f[0]) {
	case "true", "false":
		return len(f) == 1
	}
	return false
}

// confEntries makes an entry of each logical line of a configuration
// file that fn accepts.
func (ps *persist) confEntries(p string, fn func(*Entry, textLine) bool) {
	cf := ps.readConf(p)
	if cf == nil {
		return
	}
	for _, l := range confLines(cf.data) {
		if strings.TrimSpace(l.Text) == "" {
			continue
		}
		e := Entry{Path: cf.path, Line: l.Num, EvidencePath: cf.file, Flags: []string{}}
		if !fn(&e, l) {
			continue
		}
		if l.Long {
			addFlag(&e, FlagLongLine)
		}
		ps.stamp(&e, cf.path, cf.st)
		ps.add(e)
	}
}

// reUdevRun finds the assignments of a udev rule that run programs.
var reUdevRun = regexp.MustCompile(`(RUN(\{(program|builtin)\})?|PROGRAM|IMPORT\{program\})\s*(\+=|:=|=)\s*"((?:[^"\\]|\\.)*)"`)

func (ps *persist) udev() {
	for _, p := range ps.confFiles(udevRuleDirs, ".rules") {
		cf := ps.readConf(p)
		if cf == nil {
			continue
		}
		for _, l := range confLines(cf.data) {
			for i, m := range reUdevRun.FindAllStringSubmatch(l.Text, 16) {
				if m[3] == "builtin" {
					continue
				}
				e := Entry{Path: cf.path, Line: l.Num, Kind: KindUdevRule, Target: m[5], Enabled: true, EvidencePath: cf.file, Flags: []string{}}
				if i > 0 {
					e.Note = "another program of the same rule"
				}
				ps.stamp(&e, cf.path, cf.st)
				ps.runs(&e, "/usr/lib/udev", m[5])
				ps.add(e)
			}
		}
	}
}
