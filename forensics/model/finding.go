package model

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Severity ranks a finding. It prints as its name ("info" … "critical").
type Severity int

// Severities, lowest first. An examiner reads them as:
//   - Info: a fact worth having in the case, no judgement (a package-owned
//     cron file, a runc mount point).
//   - Low: unusual but commonly benign (a runtime artefact, a world-writable
//     file in a volatile directory).
//   - Medium: worth a look (a script dropped in /tmp, an unowned persistence
//     entry that runs a system path).
//   - High: what attackers do (an ELF dropped into a container, persistence
//     running something hidden, a modified package binary, a weakened
//     kubelet).
//   - Critical: the compromise itself (a setuid copy of a shell, a process
//     running from the container diff with an established connection,
//     a tampered image layer, a privileged static pod mounting /).
const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(n, name) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (info, low, medium, high, critical)", name)
}

func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// Finding is one judgement of an analyzer (drift, image verification, a
// checkpoint's processes, the kubelet, host persistence, package drift),
// in one shape for every analyzer so that a report can rank them together.
// The analyzer's own record rides along in Details.
type Finding struct {
	Severity Severity `json:"severity"`
	// Analyzer names what judged: "drift", "image_verify", "checkpoint",
	// "kubelet", "static_pod", "persistence", "packages", "logs", "triage".
	Analyzer string `json:"analyzer"`
	// Kind is what was found, in the analyzer's words
	// ("added_executable", "setuid", "cron", "modified", …).
	Kind string `json:"kind"`
	// Why explains the severity to the examiner in a sentence.
	Why         string `json:"why"`
	Runtime     string `json:"runtime"`      // "" when not about a container
	ContainerID string `json:"container_id"` // ""
	Pod         string `json:"pod"`          // "namespace/name", ""
	// Path is the path the finding is about as the container or host sees
	// it ("/tmp/.x/miner", "/etc/cron.d/x").
	Path string `json:"path"`
	Pid  *int   `json:"pid"` // a process id, for checkpoint findings
	// Summary is one line for a table.
	Summary string `json:"summary"`
	// EvidencePath is where in the evidence the finding was read.
	EvidencePath string `json:"evidence_path"`
	// Refs are related facts that let an examiner pivot: digests
	// ("sha256:…"), other paths, ATT&CK technique ids ("attack:T1053.003").
	Refs []string `json:"refs"`
	// Details is the analyzer's own record (a drift entry, a persistence
	// entry, a verification result), as it prints in that command's JSON.
	Details any `json:"details,omitempty"`
}

// MarshalJSON writes empty Refs as [] (stable field shapes).
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	p := plain(f)
	p.Refs = NonNil(p.Refs)
	return json.Marshal(p)
}

// PidPtr returns a pointer to pid for Finding.Pid.
func PidPtr(pid int) *int { return &pid }

// SortFindings orders findings by severity (highest first), then by
// container, path, analyzer and kind, so that the same evidence always
// gives the same order.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.ContainerID != b.ContainerID {
			return a.ContainerID < b.ContainerID
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Analyzer != b.Analyzer {
			return a.Analyzer < b.Analyzer
		}
		return a.Kind < b.Kind
	})
}

// Worst returns the highest severity among fs, and false when fs is empty.
func Worst(fs []Finding) (Severity, bool) {
	if len(fs) == 0 {
		return SeverityInfo, false
	}
	w := fs[0].Severity
	for _, f := range fs[1:] {
		if f.Severity > w {
			w = f.Severity
		}
	}
	return w, true
}
