package host

import (
	"io/fs"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// cron's files (crontab(5), Debian cron's README, anacrontab(5)).
const (
	crontab     = "/etc/crontab"
	cronD       = "/etc/cron.d"
	anacrontab  = "/etc/anacrontab"
	cronSpool   = "/var/spool/cron/crontabs" // Debian: one crontab per user
	cronSpoolRH = "/var/spool/cron"          // Red Hat: the same, one level up
)

// cronPeriodic are the run-parts directories and when cron (or anacron)
// runs them.
var cronPeriodic = []struct{ dir, when string }{
	{"/etc/cron.hourly", "@hourly"}, {"/etc/cron.daily", "@daily"}, {"/etc/cron.weekly", "@weekly"},
	{"/etc/cron.monthly", "@monthly"}, {"/etc/cron.yearly", "@yearly"},
}

// standardShells are the shells a crontab's SHELL= usually names.
var standardShells = map[string]bool{"/bin/sh": true, "/bin/bash": true, "/bin/dash": true, "/usr/bin/sh": true, "/usr/bin/bash": true, "/usr/bin/dash": true, "/bin/zsh": true, "/usr/bin/zsh": true, "": true}

// CronJob is a job of a crontab or anacrontab.
type CronJob struct {
	// Schedule is the five time fields ("*/5 * * * *"), an @keyword
	// ("@reboot"), or for anacron "period delay job-id".
	Schedule string `json:"schedule"`
	// User runs the job (the file's name for a user crontab; root for
	// run-parts scripts).
	User    string `json:"user"`
	Command string `json:"command"`
	// Env are the NAME=value lines in effect for the job, in file order.
	Env []string `json:"env,omitempty"`
}

// cronLine is one parsed line of a crontab.
type cronLine struct {
	Line     int
	Text     string // the line, trimmed
	Env      bool   // a NAME=value line
	Job      CronJob
	Long     bool
	Bad      string // why cron would reject the line ("" when fine)
	EnvValue string
}

var cronKeywords = map[string]bool{
	"@reboot": true, "@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true,
}

// parseCrontab reads a crontab: system ones (/etc/crontab, cron.d) carry
// a user field, user ones (the spool) do not. Comment and blank lines are
// dropped; NAME=value lines are returned as Env lines and attached to the
// jobs after them.
func parseCrontab(b []byte, system bool) []cronLine {
	var out []cronLine
	var env []string
	for l := range contentLines(b) {
		t := l.Text
		cl := cronLine{Line: l.Num, Text: t, Long: l.Long}
		if isCronEnv(t) {
			cl.Env, cl.EnvValue = true, cronEnv(t)
			if len(env) < 64 {
				env = append(env, cl.EnvValue)
			}
			out = append(out, cl)
			continue
		}
		nsched := 5
		if strings.HasPrefix(t, "@") {
			nsched = 1
		}
		want := nsched + 1 // and a command
		if system {
			want++
		}
		fields, rest := cutFields(t, want-1)
		if len(fields) < want-1 || strings.TrimSpace(rest) == "" {
			cl.Bad = "too few fields"
			out = append(out, cl)
			continue
		}
		cl.Job.Schedule = strings.Join(fields[:nsched], " ")
		if system {
			cl.Job.User = fields[nsched]
		}
		cl.Job.Command = strings.TrimSpace(rest)
		if nsched == 1 && !cronKeywords[strings.ToLower(fields[0])] {
			cl.Bad = "unknown @keyword " + short(fields[0])
		} else if nsched == 5 {
			for _, f := range fields[:5] {
				if !cronField(f) {
					cl.Bad = "bad time field " + short(f)
					break
				}
			}
		}
		cl.Job.Env = append([]string(nil), env...)
		out = append(out, cl)
		if len(out) > 1<<16 {
			break
		}
	}
	return out
}

// isCronEnv: cron takes a line as an environment setting when it is
// NAME = value (NAME may be quoted) and not a job.
func isCronEnv(t string) bool {
	if t == "" || t[0] == '@' || t[0] == '*' || ('0' <= t[0] && t[0] <= '9') {
		return false
	}
	k, _, ok := strings.Cut(t, "=")
	if !ok {
		return false
	}
	k = strings.Trim(strings.TrimSpace(k), `"'`)
	return k != "" && !strings.ContainsAny(k, " \t")
}

// cronEnv is a NAME=value line as the environment it sets ("NAME=value",
// spaces around the name and value and quotes around the value dropped).
func cronEnv(t string) string {
	k, v, _ := strings.Cut(t, "=")
	return strings.TrimSpace(k) + "=" + unquote(strings.TrimSpace(v))
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// cutFields returns the first n whitespace-separated fields of s and the
// rest of s after them (its spacing kept).
func cutFields(s string, n int) ([]string, string) {
	var out []string
	i := 0
	for len(out) < n {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return out, ""
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
	return out, s[i:]
}

// cronField checks a time field's characters (numbers, names, * , - /).
func cronField(f string) bool {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '*' || c == ',' || c == '-' || c == '/' || c == '~') {
			return false
		}
	}
	return f != ""
}

// parseAnacrontab reads anacrontab(5): "period delay job-id command" lines
// and NAME=value lines (START_HOURS_RANGE, RANDOM_DELAY …).
func parseAnacrontab(b []byte) []cronLine {
	var out []cronLine
	var env []string
	for l := range contentLines(b) {
		t := l.Text
		cl := cronLine{Line: l.Num, Text: t, Long: l.Long}
		if isCronEnv(t) && !strings.HasPrefix(t, "@") {
			if f, _ := cutFields(t, 1); len(f) == 1 && strings.Contains(f[0], "=") {
				cl.Env, cl.EnvValue = true, cronEnv(t)
				env = append(env, cl.EnvValue)
				out = append(out, cl)
				continue
			}
		}
		fields, rest := cutFields(t, 3)
		if len(fields) < 3 || strings.TrimSpace(rest) == "" {
			cl.Bad = "too few fields"
		}
		cl.Job = CronJob{Schedule: strings.Join(fields, " "), User: "root", Command: strings.TrimSpace(rest), Env: append([]string(nil), env...)}
		out = append(out, cl)
		if len(out) > 1<<16 {
			break
		}
	}
	return out
}

func (ps *persist) cron() {
	ps.crontabFile(crontab, true, "")
	rd, ents := ps.listDir(cronD)
	for _, e := range ents {
		if e.Mode.IsDir() {
			continue
		}
		ps.crontabFile(path.Join(rd, baseName(e.Name)), true, "")
	}
	for _, sp := range []string{cronSpool, cronSpoolRH} {
		rd, ents := ps.listDir(sp)
		for _, e := range ents {
			if e.Mode.IsDir() || strings.HasPrefix(baseName(e.Name), ".") && sp == cronSpoolRH {
				continue
			}
			ps.crontabFile(path.Join(rd, baseName(e.Name)), false, baseName(e.Name))
		}
	}
	ps.anacron()
	for _, per := range cronPeriodic {
		rd, ents := ps.listDir(per.dir)
		for _, e := range ents {
			if e.Mode.IsDir() {
				continue
			}
			ps.runPartsScript(path.Join(rd, baseName(e.Name)), e, per.when)
		}
	}
}

// crontabFile lists the jobs of one crontab.
func (ps *persist) crontabFile(p string, system bool, user string) {
	cf := ps.readConf(p)
	if cf == nil {
		return
	}
	refused := ""
	name := path.Base(cf.path)
	if system && cf.path != crontab && !runPartsName(name) {
		refused = "cron skips files in cron.d whose names are not letters, digits, '_' and '-'"
	}
	if fst, _ := lstat(ps.src, cf.file); fst != nil && system && (fst.UID != 0 || fst.Mode&0o022 != 0) {
		refused = "cron refuses a system crontab not owned by root or writable by group or others"
	}
	for _, cl := range parseCrontab(cf.data, system) {
		if cl.Env {
			continue
		}
		e := Entry{Path: cf.path, Line: cl.Line, Kind: KindCron, Target: cl.Text, Enabled: cl.Bad == "" && refused == "", EvidencePath: cf.file, Flags: []string{}}
		j := cl.Job
		if !system {
			j.User = user
		}
		e.Cron = &j
		ps.stamp(&e, cf.path, cf.st)
		if cl.Long {
			addFlag(&e, FlagLongLine)
		}
		if cl.Bad != "" {
			e.Note = "cron rejects this line: " + cl.Bad
		} else if refused != "" {
			e.Note = refused
			addFlag(&e, FlagRefusedByCron)
		}
		cmds := []string{j.Command}
		for _, v := range j.Env {
			name, val, _ := strings.Cut(v, "=")
			switch {
			case name == "LD_PRELOAD":
				cmds = append(cmds, v)
			case name == "BASH_ENV" || name == "ENV" || name == "SHELL" && !standardShells[val]:
				// the job runs through this program (or sources it)
				cmds = append(cmds, val)
			}
		}
		ps.runs(&e, "", cmds...)
		ps.add(e)
	}
}

func (ps *persist) anacron() {
	cf := ps.readConf(anacrontab)
	if cf == nil {
		return
	}
	for _, cl := range parseAnacrontab(cf.data) {
		if cl.Env {
			continue
		}
		j := cl.Job
		e := Entry{Path: cf.path, Line: cl.Line, Kind: KindAnacron, Target: cl.Text, Enabled: cl.Bad == "", EvidencePath: cf.file, Cron: &j, Flags: []string{}}
		ps.stamp(&e, cf.path, cf.st)
		if cl.Bad != "" {
			e.Note = "anacron rejects this line: " + cl.Bad
		}
		ps.runs(&e, "", j.Command)
		ps.add(e)
	}
}

// runPartsScript lists a script of a cron.{hourly,…} directory: run-parts
// runs it when its name is letters, digits, '_' and '-' and it is
// executable.
func (ps *persist) runPartsScript(p string, st *evidence.Stat, when string) {
	e := Entry{Path: p, Kind: KindCron, Target: p, Flags: []string{}}
	e.Cron = &CronJob{Schedule: when, User: "root", Command: p}
	fp, err := ps.res.follow(p)
	if err != nil {
		ps.w.at(p, -1, "%v", err)
		fp = p
	}
	fst, _ := lstat(ps.src, fp)
	e.EvidencePath = fp
	e.Enabled = runPartsName(path.Base(p)) && fst != nil && fst.Mode.IsRegular() && fst.Mode&0o111 != 0
	if !e.Enabled {
		e.Note = "run-parts skips it (its name or mode)"
	}
	ps.stamp(&e, p, st)
	if st.Mode&fs.ModeSymlink != 0 && fst != nil {
		// a link: what it points at is what runs
		if s := ps.state(fp, fst); s.owner != nil && e.OwnerPackage == nil {
			e.OwnerPackage = ownerName(s.owner)
			e.PackageModified = s.modified
		}
	}
	if fst != nil && fst.Mode.IsRegular() {
		if b, err := readConfig(ps.src, srcName(fp)); err == nil {
			ps.scanScript(&e, b, "")
		} else {
			ps.w.at(p, -1, "%v", err)
		}
	}
	ps.runs(&e, "", p)
	ps.add(e)
}
