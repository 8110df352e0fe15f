package host

import (
	"sort"
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
	// cut says which keys had more values than are kept (the first are)
	cut []string
}

// The sections whose Exec*= lines systemd runs (a service's, a socket's,
// a mount's, a swap's); an Exec key elsewhere is not a command.
var execSections = map[string]bool{"Service": true, "Socket": true, "Mount": true, "Swap": true}

// Bounds on the values a merged unit keeps of one key.
const (
	maxListValues = 256
	maxExecLines  = 64
)

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
	execs := map[string][]ex{} // by section/key: an empty ExecStart= of one section resets only its own
	cut := map[string]bool{}
	for _, f := range files {
		for _, d := range f.directives {
			key := d.Section + "/" + d.Key
			if isListKey(d.Key) {
				exec := isExecKey(d.Key) && execSections[d.Section]
				if d.Value == "" {
					delete(m.list, key)
					if exec {
						delete(execs, key)
					}
					continue
				}
				if len(m.list[key]) < maxListValues {
					m.list[key] = append(m.list[key], d.Value)
				} else {
					cut[key] = true
				}
				if exec {
					if len(execs[key]) < maxExecLines {
						execs[key] = append(execs[key], ex{stripExecPrefix(d.Value), f.path})
					} else {
						cut[key] = true
					}
				}
				continue
			}
			m.single[key] = d.Value
		}
	}
	var sections []string
	for sec := range execSections {
		sections = append(sections, sec)
	}
	sort.Strings(sections)
	for _, sec := range sections {
		for _, k := range execKeys {
			for _, e := range execs[sec+"/"+k] {
				m.exec = append(m.exec, ExecLine{Directive: k, Command: e.cmd, From: e.from})
			}
		}
	}
	for k := range cut {
		m.cut = append(m.cut, k)
	}
	sort.Strings(m.cut)
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
