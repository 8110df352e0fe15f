package host

import (
	"fmt"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/model"
)

// Analyzer names of the findings made here.
const (
	AnalyzerPersistence = "persistence"
	AnalyzerPackages    = "packages"
)

// Findings returns one finding per persistence entry (package-owned ones
// at info), sorted as model.SortFindings does.
func (r *PersistenceReport) Findings() []model.Finding {
	out := make([]model.Finding, 0, len(r.Entries))
	for i := range r.Entries {
		out = append(out, r.Entries[i].Finding())
	}
	model.SortFindings(out)
	return out
}

// Finding is the entry's judgement in the shape every analyzer shares.
func (e *Entry) Finding() model.Finding {
	f := model.Finding{
		Severity: e.Severity, Analyzer: AnalyzerPersistence, Kind: e.Kind, Why: e.Why,
		Path: e.Path, EvidencePath: e.EvidencePath, Details: *e,
	}
	owner := packageText(e.OwnerPackage)
	if e.OwnerPackage != nil && e.PackageModified {
		owner += ", modified"
	}
	at := e.Path
	if e.Line > 0 {
		at = fmt.Sprintf("%s:%d", e.Path, e.Line)
	}
	target := e.Target
	if len(target) > 120 {
		target = target[:120] + "…"
	}
	en := ""
	if !e.Enabled {
		en = ", not enabled"
	}
	f.Summary = fmt.Sprintf("%s %s runs %q (%s%s)", e.Kind, at, target, owner, en)
	if a := attackOf[e.Kind]; a != "" {
		f.Refs = append(f.Refs, a)
	}
	if e.OwnerPackage != nil {
		f.Refs = append(f.Refs, "package:"+*e.OwnerPackage)
	}
	if e.Unit != nil && e.Unit.File != "" && e.Unit.File != e.Path {
		f.Refs = append(f.Refs, e.Unit.File)
	}
	for _, p := range e.Programs {
		if p.Resolved != "" && p.Resolved != e.Path {
			f.Refs = append(f.Refs, p.Resolved)
		}
		if p.SHA256 != "" {
			f.Refs = append(f.Refs, "sha256:"+p.SHA256)
		}
		if p.IdenticalTo != "" {
			f.Refs = append(f.Refs, p.IdenticalTo, "attack:T1036.003")
		}
	}
	if hasFlag(e.Flags, FlagRunsHidden) {
		f.Refs = append(f.Refs, "attack:T1564.001")
	}
	if hasFlag(e.Flags, FlagPreloadsLib) && e.Kind != KindLDPreload {
		f.Refs = append(f.Refs, "attack:T1574.006")
	}
	f.Refs = dedupe(f.Refs)
	return f
}

// packageText names the package owning a file in a finding's summary.
func packageText(name *string) string {
	if name == nil {
		return "no package"
	}
	return "package " + *name
}

// Findings returns one finding per changed package file (files found as
// shipped are facts of the report, not findings), sorted.
func (r *PackageReport) Findings() []model.Finding {
	var out []model.Finding
	for i := range r.Changes {
		if r.Changes[i].Change == ChangeOK {
			continue
		}
		out = append(out, r.Changes[i].Finding())
	}
	model.SortFindings(out)
	return model.NonNil(out)
}

// Finding is the change's judgement in the shape every analyzer shares.
func (c *FileChange) Finding() model.Finding {
	f := model.Finding{
		Severity: c.Severity, Analyzer: AnalyzerPackages, Kind: c.Change, Why: c.Why,
		Path: c.Path, EvidencePath: c.EvidencePath, Details: *c,
	}
	var extra []string
	if c.ExecKind != "" {
		extra = append(extra, c.ExecKind)
	}
	if c.ExpectedDigest != "" && c.ActualDigest != "" && c.ExpectedDigest != c.ActualDigest {
		extra = append(extra, fmt.Sprintf("%s %s, was %s", c.DigestAlgo, c.ActualDigest, c.ExpectedDigest))
	}
	if c.IdenticalTo != "" {
		extra = append(extra, "identical to "+c.IdenticalTo)
	}
	for _, fl := range c.Flags {
		if fl == classify.FlagSetuid || fl == classify.FlagSetgid || fl == classify.FlagHidden || fl == FlagPreloaded {
			extra = append(extra, fl)
		}
	}
	f.Summary = fmt.Sprintf("%s %s (%s)", c.Change, c.Path, packageText(c.Package))
	if len(extra) > 0 {
		f.Summary += ": " + strings.Join(extra, ", ")
	}
	if c.Package != nil {
		f.Refs = append(f.Refs, "package:"+*c.Package)
	}
	if c.SHA256 != "" {
		f.Refs = append(f.Refs, "sha256:"+c.SHA256)
	}
	if c.IdenticalTo != "" {
		f.Refs = append(f.Refs, c.IdenticalTo, "attack:T1036.003")
	}
	exec := c.ExecKind != "" || inDirs(c.Path, binDirs...)
	if (c.Change == ChangeModified || c.Change == ChangeTypeChanged) && exec {
		f.Refs = append(f.Refs, "attack:T1554")
	}
	if hasFlag(c.Flags, classify.FlagSetuid) || hasFlag(c.Flags, classify.FlagSetgid) {
		f.Refs = append(f.Refs, "attack:T1548.001")
	}
	if hasFlag(c.Flags, classify.FlagHidden) {
		f.Refs = append(f.Refs, "attack:T1564.001")
	}
	if hasFlag(c.Flags, FlagPreloaded) {
		f.Refs = append(f.Refs, "attack:T1574.006")
	}
	return f
}

// Event is one timestamped fact of the host: a persistence entry's file,
// a program it runs, a drop-in, or a changed package file — what the
// node's timeline needs (forensics.Event: time, source, what, message,
// path, evidence path, change).
type Event struct {
	Time model.Time `json:"time"`
	// Source is "persistence" or "packages".
	Source string `json:"source"`
	// What is the timestamp: mtime, ctime or btime.
	What string `json:"what"`
	// Kind is the entry kind ("cron", "systemd_timer", "persistence_program",
	// "systemd_dropin") or the package change ("modified", "unowned" …).
	Kind         string         `json:"kind"`
	Path         string         `json:"path"`
	EvidencePath string         `json:"evidence_path"`
	Severity     model.Severity `json:"severity"`
	Message      string         `json:"message"`
}

// Events returns the timestamps of a persistence report and a package
// report (either may be nil), one event per path and timestamp (the
// entries of one file share its times), sorted by time. Entries and
// changes at info are left out unless all is set: the timeline wants what
// an examiner would look at.
func Events(p *PersistenceReport, k *PackageReport, all bool) []Event {
	var out []Event
	seen := map[string]int{} // path/what -> index in out
	add := func(ev Event, when [3]model.Time) {
		for i, w := range []string{"mtime", "ctime", "btime"} {
			t := when[i]
			if t.IsZero() {
				continue
			}
			key := ev.Path + "\x00" + w
			if j, ok := seen[key]; ok {
				if ev.Severity > out[j].Severity {
					out[j].Severity = ev.Severity
				}
				continue
			}
			e := ev
			e.Time, e.What = model.T(t.UTC()), w
			e.Message = w + " " + ev.Message
			seen[key] = len(out)
			out = append(out, e)
		}
	}
	if p != nil {
		for i := range p.Entries {
			e := &p.Entries[i]
			if e.Severity == model.SeverityInfo && !all {
				continue
			}
			at := e.Path
			if e.Line > 0 {
				at = fmt.Sprintf("%s:%d", e.Path, e.Line)
			}
			add(Event{Source: AnalyzerPersistence, Kind: e.Kind, Path: e.Path, EvidencePath: e.EvidencePath, Severity: e.Severity,
				Message: fmt.Sprintf("%s %s (%s): runs %s", e.Kind, at, e.Severity, short(e.Target))}, [3]model.Time{e.Mtime, e.Ctime, e.Btime})
			if e.Unit != nil {
				for _, d := range e.Unit.DropIns {
					add(Event{Source: AnalyzerPersistence, Kind: "systemd_dropin", Path: d.Path, EvidencePath: d.Path, Severity: e.Severity,
						Message: fmt.Sprintf("drop-in %s of %s", d.Path, e.Unit.Name)}, [3]model.Time{d.Mtime, d.Ctime, d.Btime})
				}
			}
			for _, pr := range e.Programs {
				if pr.Resolved == "" || pr.Resolved == e.Path {
					continue
				}
				add(Event{Source: AnalyzerPersistence, Kind: "persistence_program", Path: pr.Resolved, EvidencePath: pr.Resolved, Severity: e.Severity,
					Message: fmt.Sprintf("%s, run by %s %s", pr.Resolved, e.Kind, at)}, [3]model.Time{pr.Mtime})
			}
		}
	}
	if k != nil {
		for i := range k.Changes {
			c := &k.Changes[i]
			if c.Change == ChangeOK || c.Severity == model.SeverityInfo && !all || c.Change == ChangeMissing {
				continue
			}
			add(Event{Source: AnalyzerPackages, Kind: c.Change, Path: c.Path, EvidencePath: c.EvidencePath, Severity: c.Severity,
				Message: fmt.Sprintf("%s %s (%s)", c.Change, c.Path, c.Severity)}, [3]model.Time{c.Mtime, c.Ctime, c.Btime})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time.Time) })
	return out
}
