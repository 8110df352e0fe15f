package host

import (
	"strings"

	"github.com/deadnode/deadnode/forensics/internal/conf"
)

// unitDirective is one Key=Value of a unit file (or drop-in).
type unitDirective = conf.Directive

// parseUnitFile reads a unit file or drop-in (conf.ParseUnit), its lines
// cut at MaxLine.
func parseUnitFile(b []byte) ([]unitDirective, bool) { return conf.ParseUnit(b, MaxLine) }

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
