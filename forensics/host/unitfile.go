package host

import (
	"strings"
)

// maxUnitValue bounds a value joined from continuation lines (systemd's
// LONG_LINE_MAX).
const maxUnitValue = 1 << 20

// unitDirective is one Key=Value of a unit file (or drop-in).
type unitDirective struct {
	Section string `json:"section"`
	Key     string `json:"key"`
	Value   string `json:"value"`
	Line    int    `json:"line"`
}

// parseUnitFile reads a systemd unit file or drop-in (systemd.syntax(7)):
// [Section] headers, Key=Value assignments, '#'/';' comments, a trailing
// backslash continuing a value on the next line (comment lines inside a
// continuation are skipped). It returns the assignments in order and
// whether any line was cut at MaxLine or a value at maxUnitValue.
func parseUnitFile(b []byte) (out []unitDirective, long bool) {
	section := ""
	var cont *unitDirective
	var buf strings.Builder
	finish := func() {
		if cont != nil {
			cont.Value = strings.TrimSpace(buf.String())
			out = append(out, *cont)
			cont = nil
			buf.Reset()
		}
	}
	for _, l := range lines(b) {
		if l.Long {
			long = true
		}
		text := l.Text
		if cont != nil {
			t := strings.TrimLeft(text, " \t")
			if strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
				continue // a comment inside a continuation
			}
			more := strings.HasSuffix(text, "\\")
			text = strings.TrimSuffix(text, "\\")
			if buf.Len()+len(text)+1 > maxUnitValue {
				long = true
			} else {
				buf.WriteByte(' ')
				buf.WriteString(text)
			}
			if !more {
				finish()
			}
			continue
		}
		t := strings.TrimSpace(text)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' {
			if i := strings.IndexByte(t, ']'); i > 0 {
				section = t[1:i]
			}
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		d := unitDirective{Section: section, Key: strings.TrimSpace(k), Line: l.Num}
		if strings.HasSuffix(v, "\\") {
			cont = &d
			buf.WriteString(strings.TrimSuffix(v, "\\"))
			continue
		}
		d.Value = strings.TrimSpace(v)
		out = append(out, d)
		if len(out) > 1<<16 {
			return out, true
		}
	}
	finish()
	return out, long
}

// execKeys run programs, in the order systemd runs them.
var execKeys = []string{"ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost"}

func isExecKey(k string) bool {
	for _, e := range execKeys {
		if e == k {
			return true
		}
	}
	return false
}

// listKeys accumulate over the unit and its drop-ins; an empty assignment
// resets them.
func isListKey(k string) bool {
	return isExecKey(k) || k == "Environment" || k == "EnvironmentFile" || k == "WantedBy" || k == "RequiredBy" ||
		k == "OnCalendar" || k == "OnBootSec" || k == "OnStartupSec" || k == "OnActiveSec" || k == "OnUnitActiveSec" || k == "OnUnitInactiveSec" ||
		k == "PathExists" || k == "PathExistsGlob" || k == "PathChanged" || k == "PathModified" || k == "DirectoryNotEmpty" ||
		k == "ListenStream" || k == "ListenDatagram" || k == "ListenFIFO" || k == "Alias"
}

// mergedUnit is a unit with its drop-ins applied.
type mergedUnit struct {
	list   map[string][]string // section/key -> values
	single map[string]string   // section/key -> last value
	// changedBy: drop-in paths that set a key of each section/key
	exec []ExecLine
}

// ExecLine is one program a unit runs.
type ExecLine struct {
	Directive string `json:"directive"` // ExecStart, ExecStartPre, …
	Command   string `json:"command"`   // the command line, systemd's prefixes (@-:+!) removed
	From      string `json:"from"`      // the file that set it (the unit or a drop-in)
}

// mergeUnit applies drop-ins (in order) over a unit's directives.
func mergeUnit(files []unitSource) *mergedUnit {
	m := &mergedUnit{list: map[string][]string{}, single: map[string]string{}}
	type ex struct {
		cmd, from string
	}
	execs := map[string][]ex{}
	for _, f := range files {
		for _, d := range f.directives {
			key := d.Section + "/" + d.Key
			if isListKey(d.Key) {
				if d.Value == "" {
					delete(m.list, key)
					if isExecKey(d.Key) {
						delete(execs, d.Key)
					}
					continue
				}
				if len(m.list[key]) < 256 {
					m.list[key] = append(m.list[key], d.Value)
				}
				if isExecKey(d.Key) && len(execs[d.Key]) < 64 {
					execs[d.Key] = append(execs[d.Key], ex{stripExecPrefix(d.Value), f.path})
				}
				continue
			}
			m.single[key] = d.Value
		}
	}
	for _, k := range execKeys {
		for _, e := range execs[k] {
			m.exec = append(m.exec, ExecLine{Directive: k, Command: e.cmd, From: e.from})
		}
	}
	return m
}

type unitSource struct {
	path       string
	directives []unitDirective
}

// stripExecPrefix removes systemd's special executable prefixes
// ("@", "-", ":", "+", "!", "!!", "|").
func stripExecPrefix(v string) string {
	v = strings.TrimSpace(v)
	for len(v) > 0 && strings.IndexByte("@-:+!|", v[0]) >= 0 {
		v = v[1:]
	}
	return strings.TrimSpace(v)
}

// get returns the last value of a single-valued key.
func (m *mergedUnit) get(section, key string) string { return m.single[section+"/"+key] }

// all returns the values of a list key.
func (m *mergedUnit) all(section, key string) []string { return m.list[section+"/"+key] }
