package kube

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/conf"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
)

// Unit is the kubelet's systemd service as the evidence holds it: the unit
// file, its drop-ins in systemd's order, the environment they set and the
// command line systemd would run, with every $VAR expanded as systemd
// expands it.
type Unit struct {
	Name     string     `json:"name"`
	Fragment *FileInfo  `json:"fragment"` // the unit file; nil when none was found
	Masked   bool       `json:"masked"`   // linked to /dev/null
	Enabled  bool       `json:"enabled"`  // a *.wants/ link names it
	WantedBy []string   `json:"wanted_by"`
	DropIns  []FileInfo `json:"drop_ins"`
	// ExecStart is the command line after expansion; ExecStartRaw is the
	// line as written, and ExecStartFrom the file that wrote it.
	ExecStart        []string           `json:"exec_start"`
	ExecStartRaw     string             `json:"exec_start_raw"`
	ExecStartFrom    string             `json:"exec_start_from"`
	Environment      []EnvVar           `json:"environment"`
	EnvironmentFiles []EnvFile          `json:"environment_files"`
	Args             []Arg              `json:"-"`
	Warnings         []evidence.Warning `json:"warnings"`
}

// EnvVar is one variable of the service's environment.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	From  string `json:"from"` // the unit, drop-in or environment file that set it
}

// EnvFile is an EnvironmentFile= of the unit, or a distribution's kubelet
// environment file that the unit does not name (Referenced false: its
// flags do not apply).
type EnvFile struct {
	FileInfo
	Optional   bool   `json:"optional"` // "-" prefix: systemd ignores it when absent
	Referenced bool   `json:"referenced"`
	From       string `json:"from,omitempty"` // the file that names it
}

// Arg is one word of the expanded command line and where it came from.
type Arg struct {
	Value string
	From  string // the file that wrote the word or the variable
	Var   string // the variable it was expanded from, if any
}

// ReadUnit finds and reads the kubelet's systemd unit.
func ReadUnit(src evidence.Source) *Unit {
	return readUnit(src, kubeletUnit)
}

func readUnit(src evidence.Source, name string) *Unit {
	u := &Unit{Name: name}
	warn := func(w evidence.Warning) { u.Warnings = append(u.Warnings, w) }
	var files []string // fragment then drop-ins, in the order systemd applies them
	for _, d := range unitDirs {
		p := d + "/" + name
		fi, res, st, err := statPath(src, p)
		if err != nil {
			warn(evidence.Warnf(pathutil.Abs(p), -1, "%v", err))
			continue
		}
		if res == "dev/null" {
			u.Masked = true
			break
		}
		if st == nil {
			continue
		}
		if !st.Mode.IsRegular() {
			warn(evidence.Warnf(pathutil.Abs(p), -1, "not a regular file (%s)", st.Mode))
			continue
		}
		f := fi
		u.Fragment = &f
		files = append(files, p)
		break
	}
	if u.Masked {
		return u
	}
	// Drop-ins: <unit>.d/*.conf and the type's service.d/*.conf in every
	// unit directory; a name in a higher-priority directory (or the more
	// specific drop-in directory) hides the same name after it; applied
	// in the lexical order of their names.
	seen := map[string]string{}
	var dropDirs []string
	for _, d := range unitDirs {
		dropDirs = append(dropDirs, d+"/"+name+".d", d+"/"+strings.TrimPrefix(path.Ext(name), ".")+".d")
	}
	for _, dir := range dropDirs {
		res, err := evidence.Resolve(src, dir, true)
		if err != nil {
			warn(evidence.Warnf(pathutil.Abs(dir), -1, "%v", err))
			continue
		}
		ents, err := src.ReadDir(res)
		if err != nil {
			if !notExist(err) {
				warn(evidence.Warnf(pathutil.Abs(dir), -1, "%v", err))
			}
			continue
		}
		for _, e := range ents {
			b := path.Base(e.Name)
			if !strings.HasSuffix(b, ".conf") {
				continue
			}
			if _, ok := seen[b]; ok {
				continue
			}
			if len(seen) >= MaxDropIns {
				warn(evidence.Warnf(pathutil.Abs(dir), -1, "more than %d drop-ins, the rest not read", MaxDropIns))
				break
			}
			seen[b] = dir + "/" + b
		}
	}
	names := make([]string, 0, len(seen))
	for b := range seen {
		names = append(names, b)
	}
	sort.Strings(names)
	for _, b := range names {
		files = append(files, seen[b])
	}
	u.WantedBy = wantedBy(src, name)
	u.Enabled = len(u.WantedBy) > 0

	env := map[string]EnvVar{}
	var envOrder []string
	setEnv := func(v EnvVar) {
		if _, ok := env[v.Name]; !ok {
			envOrder = append(envOrder, v.Name)
		}
		env[v.Name] = v
	}
	type envFileRef struct {
		path     string
		optional bool
		from     string
	}
	var envFiles []envFileRef
	var execs []struct{ raw, from string }
	for i, f := range files {
		b, fi, err := readSmall(src, f, MaxConfigBytes)
		if i > 0 {
			u.DropIns = append(u.DropIns, fi)
		}
		if err != nil {
			warn(evidence.WarningOf(err))
			continue
		}
		from := pathutil.Abs(f)
		directives, long := serviceDirectives(b)
		if long {
			warn(evidence.Warnf(from, -1, "a line over %d bytes, a value over %d bytes or more than %d assignments: the rest was not read as systemd would", MaxConfigBytes, conf.MaxUnitValue, conf.MaxDirectives))
		}
		for _, kv := range directives {
			switch kv.Key {
			case "Environment":
				words, err := splitQuoted(kv.Value)
				if err != nil {
					warn(evidence.Warnf(from, -1, "Environment=: %v", err))
				}
				for _, w := range words {
					k, v, ok := strings.Cut(w, "=")
					if !ok || k == "" {
						continue
					}
					setEnv(EnvVar{Name: k, Value: v, From: from})
				}
				if strings.TrimSpace(kv.Value) == "" {
					// An empty assignment resets the list.
					env = map[string]EnvVar{}
					envOrder = nil
				}
			case "EnvironmentFile":
				v := strings.TrimSpace(kv.Value)
				if v == "" {
					envFiles = nil
					continue
				}
				opt := strings.HasPrefix(v, "-")
				envFiles = append(envFiles, envFileRef{path: strings.TrimPrefix(v, "-"), optional: opt, from: from})
			case "ExecStart":
				if strings.TrimSpace(kv.Value) == "" {
					execs = nil
					continue
				}
				execs = append(execs, struct{ raw, from string }{kv.Value, from})
			}
		}
	}
	// EnvironmentFile= settings override Environment= ones, in the order
	// the files are named (systemd.exec(5)).
	referenced := map[string]bool{}
	for _, ef := range envFiles {
		name, err := hostPath(ef.path, "/")
		if err != nil {
			warn(evidence.Warnf("", -1, "EnvironmentFile=%s: %v", ef.path, err))
			continue
		}
		referenced[name] = true
		b, fi, err := readSmall(src, name, MaxConfigBytes)
		rec := EnvFile{FileInfo: fi, Optional: ef.optional, Referenced: true, From: ef.from}
		u.EnvironmentFiles = append(u.EnvironmentFiles, rec)
		if err != nil {
			if !(notExist(err) && ef.optional) {
				warn(evidence.Warnf("", -1, "EnvironmentFile=%s: %v", ef.path, err))
			}
			continue
		}
		for _, v := range parseEnvFile(string(b)) {
			v.From = pathutil.Abs(name)
			setEnv(v)
		}
	}
	for _, k := range envFilesKnown {
		if referenced[k] {
			continue
		}
		fi, _, st, err := statPath(src, k)
		if err != nil || st == nil {
			continue
		}
		u.EnvironmentFiles = append(u.EnvironmentFiles, EnvFile{FileInfo: fi, Referenced: false})
	}
	for _, k := range envOrder {
		if v, ok := env[k]; ok {
			u.Environment = append(u.Environment, v)
		}
	}
	if len(execs) > 1 {
		warn(evidence.Warnf("", -1, "%d ExecStart= lines remain after resets; systemd refuses a simple service with more than one (the last is used here)", len(execs)))
	}
	if len(execs) > 0 {
		x := execs[len(execs)-1]
		u.ExecStartRaw, u.ExecStartFrom = x.raw, x.from
		args, err := expandExec(x.raw, x.from, env)
		if err != nil {
			warn(evidence.Warnf(x.from, -1, "ExecStart=: %v", err))
		}
		u.Args = args
		for _, a := range args {
			u.ExecStart = append(u.ExecStart, a.Value)
		}
	}
	return u
}

// wantedBy lists the *.wants directories of /etc/systemd/system that link
// the unit.
func wantedBy(src evidence.Source, name string) []string {
	var out []string
	for _, d := range []string{"etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"} {
		ents, err := src.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			b := path.Base(e.Name)
			if !e.Mode.IsDir() || !(strings.HasSuffix(b, ".wants") || strings.HasSuffix(b, ".requires")) {
				continue
			}
			if _, err := src.Lstat(e.Name + "/" + name); err == nil {
				out = append(out, strings.TrimSuffix(strings.TrimSuffix(b, ".wants"), ".requires"))
			}
		}
	}
	return out
}

// serviceDirectives returns the [Service] assignments of a unit file or
// drop-in, in order (conf.ParseUnit reads it as systemd does), and whether
// ParseUnit stopped at one of its bounds.
func serviceDirectives(b []byte) ([]conf.Directive, bool) {
	all, long := conf.ParseUnit(b, MaxConfigBytes)
	out := all[:0]
	for _, d := range all {
		if d.Section == "Service" {
			out = append(out, d)
		}
	}
	return out, long
}

// parseEnvFile reads an EnvironmentFile: KEY=VALUE lines, # and ;
// comments, shell-style quotes, backslash-newline continuations.
func parseEnvFile(s string) []EnvVar {
	var out []EnvVar
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + lines[i]
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		out = append(out, EnvVar{Name: k, Value: unquoteEnvValue(strings.TrimSpace(v))})
	}
	return out
}

func unquoteEnvValue(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		var b strings.Builder
		in := v[1 : len(v)-1]
		for i := 0; i < len(in); i++ {
			if in[i] == '\\' && i+1 < len(in) && strings.IndexByte("\"\\`$", in[i+1]) >= 0 {
				i++
			}
			b.WriteByte(in[i])
		}
		return b.String()
	}
	// An unquoted value ends at a comment preceded by whitespace.
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}

// splitQuoted splits a systemd value into words: whitespace separates,
// double and single quotes group, and C-style backslash escapes are
// undone (systemd's extract_first_word with EXTRACT_UNQUOTE|CUNESCAPE).
func splitQuoted(s string) ([]string, error) {
	var out []string
	var b strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(s[i])
			}
			inWord = true
		case quote == 0 && (c == ' ' || c == '\t' || c == '\n'):
			if inWord {
				out = append(out, b.String())
				b.Reset()
				inWord = false
			}
		default:
			b.WriteByte(c)
			inWord = true
		}
		if len(out) > MaxArgs {
			return out, fmt.Errorf("more than %d words", MaxArgs)
		}
	}
	if inWord {
		out = append(out, b.String())
	}
	if quote != 0 {
		return out, fmt.Errorf("unbalanced %c quote", quote)
	}
	return out, nil
}

// expandExec turns an ExecStart= value into argv as systemd does: the
// special prefixes (@ - : + !) are dropped, the value is split into words,
// a word that is exactly $VAR becomes the variable's value split at
// whitespace, and ${VAR} is replaced inside a word by the exact value.
// Unset variables expand to nothing.
func expandExec(raw, from string, env map[string]EnvVar) ([]Arg, error) {
	v := strings.TrimLeft(raw, " \t")
	argv0 := false
	for len(v) > 0 && strings.IndexByte("@-:+!", v[0]) >= 0 {
		if v[0] == '@' {
			argv0 = true
		}
		v = v[1:]
	}
	words, err := splitQuoted(v)
	var out []Arg
	total := 0
	for i, w := range words {
		before := len(out)
		if argv0 && i == 1 {
			continue // the argv[0] systemd passes; not an argument
		}
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") && isVarName(w[1:]) {
			e, ok := env[w[1:]]
			if !ok {
				continue
			}
			parts, perr := splitQuoted(e.Value)
			if perr != nil && err == nil {
				err = fmt.Errorf("$%s: %v", w[1:], perr)
			}
			for _, p := range parts {
				out = append(out, Arg{Value: p, From: e.From, Var: e.Name})
			}
		} else if strings.Contains(w, "${") {
			val, vars := expandBraces(w, env)
			a := Arg{Value: val, From: from}
			if len(vars) == 1 {
				a.Var, a.From = vars[0].Name, vars[0].From
			}
			out = append(out, a)
		} else {
			out = append(out, Arg{Value: w, From: from})
		}
		for _, a := range out[before:] {
			total += len(a.Value)
		}
		if len(out) > MaxArgs || total > MaxConfigBytes {
			return out, fmt.Errorf("command line over %d words or %d bytes after expansion", MaxArgs, MaxConfigBytes)
		}
	}
	return out, err
}

func expandBraces(w string, env map[string]EnvVar) (string, []EnvVar) {
	var b strings.Builder
	var used []EnvVar
	for {
		i := strings.Index(w, "${")
		if i < 0 {
			b.WriteString(w)
			break
		}
		j := strings.IndexByte(w[i:], '}')
		if j < 0 {
			b.WriteString(w)
			break
		}
		b.WriteString(w[:i])
		name := w[i+2 : i+j]
		if e, ok := env[name]; ok {
			b.WriteString(e.Value)
			used = append(used, e)
		}
		w = w[i+j+1:]
		if b.Len() > MaxConfigBytes {
			break
		}
	}
	return b.String(), used
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
