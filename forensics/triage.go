package forensics

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
	"github.com/deadnode/deadnode/internal/ptr"
	"github.com/deadnode/deadnode/memory"
)

// Case is the triage of a node: every finding of every analyzer the
// evidence allows, ranked, with the containers ranked by their worst
// finding, the events around the findings, and what was examined (the
// evidence's identity and the tool that examined it), so that the case
// can be handed on as it is.
type Case struct {
	Tool        ToolInfo            `json:"tool"`
	Evidence    EvidenceInfo        `json:"evidence"`
	GeneratedAt model.Time          `json:"generated_at"`
	CommandLine []string            `json:"command_line"`
	Node        NodeInfo            `json:"node"`
	Containers  []ContainerCase     `json:"containers"`
	Findings    []model.Finding     `json:"findings"`
	Timeline    []Event             `json:"timeline"`
	Warnings    []evidence.Warning  `json:"warnings"`
	Checkpoints []CheckpointSummary `json:"checkpoints"`
	// Counts are the number of findings by severity.
	Counts map[string]int `json:"counts"`
}

// ToolInfo names the tool that made a case.
type ToolInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// EvidenceInfo is the identity of the evidence a case was made from.
type EvidenceInfo struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // dir, tar, tar.gz, tar.zst, disk image kinds
	Size int64  `json:"size"`
	// SHA256 of the evidence file, hashed as it was read; null for a
	// directory, with the reason in SHA256Note (which also says what was
	// hashed for an image made of several files).
	SHA256     *string `json:"sha256"`
	SHA256Note string  `json:"sha256_note,omitempty"`
	// Files are the host files a disk image is made of, each hashed, when
	// there are several (split raw pieces, VMDK extents, backing images).
	Files []EvidenceFile `json:"files,omitempty"`
}

// NodeInfo says what the node was.
type NodeInfo struct {
	Hostname string              `json:"hostname"`
	OS       string              `json:"os"`
	Runtimes []model.RuntimeInfo `json:"runtimes"`
	Pods     int                 `json:"pods"`
	// Kubelet is the kubelet's configuration where the evidence holds it
	// (set by the kubelet analyzer).
	Kubelet any `json:"kubelet"`
}

// ContainerCase is a container ranked by its findings.
type ContainerCase struct {
	ID      string `json:"id"`
	Runtime string `json:"runtime"`
	Pod     string `json:"pod"`
	Name    string `json:"name"`
	Image   string `json:"image"`
	State   string `json:"state"`
	Kind    string `json:"kind"`
	// Risk is the severity of the container's worst finding ("info" when
	// it has none).
	Risk model.Severity `json:"risk"`
	// Findings counts the container's findings above info.
	Findings int `json:"findings"`
	// Drift is the container's drift (executables and everything above
	// info first; at most MaxCaseDrift entries).
	Drift        []DriftEntry `json:"drift"`
	DriftOmitted int          `json:"drift_omitted,omitempty"`
	// Images are the verifications of the container's image.
	Images []image.Verification `json:"images,omitempty"`
	// Checkpoints are the digests or paths of the container's checkpoints
	// (see Case.Checkpoints).
	Checkpoints []string `json:"checkpoints,omitempty"`
}

// CheckpointSummary is what the case keeps of a checkpoint.
type CheckpointSummary struct {
	Ref         string               `json:"ref"` // name, digest or path
	ContainerID string               `json:"container_id"`
	Processes   []checkpoint.Process `json:"processes"`
	// MemoryHits are the indicators found in the processes' memory.
	MemoryHits []MemoryIndicator `json:"memory_hits"`
}

// MemoryIndicator is an indicator of the case (a dropped file's name)
// found in a process's memory.
type MemoryIndicator struct {
	Indicator string `json:"indicator"`
	PID       uint32 `json:"pid"`
	Comm      string `json:"comm"`
	Address   uint64 `json:"address"`
	VMAKind   string `json:"vma_kind"`
	Count     int    `json:"count"`
}

// TriageOptions tune Triage.
type TriageOptions struct {
	// NoMemory skips reading checkpoints' process memory.
	NoMemory bool
	// CheckpointPaths are checkpoint archives or CRIU images directories on
	// the host to include besides those found in the evidence.
	CheckpointPaths []string
	// Evidence is the evidence's identity; when its Path is empty, Triage
	// works it out (Node.Identify), reading the evidence files whole.
	Evidence EvidenceInfo
	// CommandLine is recorded in the case.
	CommandLine []string
	// Analyzers add findings of their own (kubelet, host…); each runs
	// once, in parallel with the others. Nil means DefaultAnalyzers(); an
	// empty, non-nil list runs none.
	Analyzers []Analyzer
	// Progress, when set, is told each step as it starts.
	Progress func(step string)
	// Now is the case's generation time (time.Now when zero).
	Now time.Time
}

// Analyzer is an extra source of findings and events for Triage.
type Analyzer interface {
	Name() string
	Analyze(ctx context.Context, n *Node) (AnalyzerResult, error)
}

// AnalyzerResult is what an Analyzer found.
type AnalyzerResult struct {
	Findings []model.Finding
	Events   []Event
	Warnings []evidence.Warning
	// Kubelet fills NodeInfo.Kubelet.
	Kubelet any
}

// MaxCaseDrift bounds the drift entries a case keeps per container
// (findings are kept whole).
const MaxCaseDrift = 500

// maxCaseTimeline bounds the events a case keeps.
const maxCaseTimeline = 2000

// ToolVersion is deadnode's version as the Go build info records it.
func ToolVersion() ToolInfo {
	v := ToolInfo{Name: "deadnode", Version: "(devel)"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Commit = s.Value
			}
		}
	}
	return v
}

// Triage runs every analyzer the evidence allows — drift of every
// container, image verification, every checkpoint (process origins,
// sockets, and the case's indicators searched in process memory), the
// extra analyzers — ranks the findings, ranks the containers by their
// worst finding then count, and keeps the timeline around the findings.
// Independent analyzers run in parallel, on as many goroutines as CPUs.
func Triage(ctx context.Context, n *Node, opt *TriageOptions) (*Case, error) {
	o := ptr.Value(opt)
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	step := func(s string) {
		if o.Progress != nil {
			o.Progress(s)
		}
	}
	if o.Evidence.Path == "" && n.Evidence != nil {
		step("hashing the evidence")
		id, err := n.Identify(ctx)
		if err != nil {
			return nil, err
		}
		o.Evidence = id
	}
	cs := &Case{Tool: ToolVersion(), Evidence: o.Evidence, GeneratedAt: model.T(now.UTC()), CommandLine: model.NonNil(o.CommandLine),
		Findings: []model.Finding{}, Containers: []ContainerCase{}, Timeline: []Event{}, Warnings: []evidence.Warning{}, Checkpoints: []CheckpointSummary{}}
	cs.Node = nodeInfo(n)
	var mu sync.Mutex
	addFindings := func(fs []model.Finding) {
		mu.Lock()
		cs.Findings = append(cs.Findings, fs...)
		mu.Unlock()
	}
	addWarnings := func(ws ...evidence.Warning) {
		mu.Lock()
		cs.Warnings = append(cs.Warnings, ws...)
		mu.Unlock()
	}
	var extraEvents []Event
	extra := o.Analyzers
	if extra == nil {
		extra = DefaultAnalyzers()
	}

	// Drift of every container, the images' verification and the extra
	// analyzers are independent: run them side by side.
	ctrs := n.Containers()
	drifts := make([][]DriftEntry, len(ctrs))
	var verifs []image.Verification
	var wg sync.WaitGroup
	errs := make(chan error, 3+len(extra))
	wg.Add(2)
	go func() {
		defer wg.Done()
		step("drift")
		for i := range ctrs {
			c := &ctrs[i]
			if c.UpperDir == "" {
				continue
			}
			ds, err := n.ContainerDrift(c)
			if err != nil {
				addWarnings(evidence.WarningOf(err))
				continue
			}
			es, ws, err := DriftAll(ctx, ds, nil)
			addWarnings(ws...)
			if err != nil {
				if ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				addWarnings(evidence.Warnf(c.UpperDir, -1, "drift stopped: %v", err))
			}
			drifts[i] = es
		}
	}()
	go func() {
		defer wg.Done()
		if len(n.Runtimes) == 0 {
			return
		}
		step("image verification")
		v, err := n.VerifyImages(ctx, nil, nil)
		if err != nil {
			if ctx.Err() != nil {
				errs <- ctx.Err()
				return
			}
			addWarnings(evidence.Warnf("", -1, "image verification: %v", err))
		}
		verifs = v
	}()
	var kubelet any
	for _, a := range extra {
		wg.Add(1)
		go func(a Analyzer) {
			defer wg.Done()
			step(a.Name())
			r, err := a.Analyze(ctx, n)
			if err != nil {
				if ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				addWarnings(evidence.Warnf("", -1, "%s: %v", a.Name(), err))
			}
			addFindings(r.Findings)
			addWarnings(r.Warnings...)
			mu.Lock()
			extraEvents = append(extraEvents, r.Events...)
			if r.Kubelet != nil {
				kubelet = r.Kubelet
			}
			mu.Unlock()
		}(a)
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	cs.Node.Kubelet = kubelet

	// Findings of drift and verification, joined to their containers.
	byCtr := map[string]*ContainerCase{}
	for i := range ctrs {
		c := ctrs[i]
		cc := ContainerCase{ID: c.ID, Runtime: c.Runtime, Pod: podOf(c), Name: nameOf(c), Image: c.Image, State: c.Status.State, Kind: c.Kind, Drift: []DriftEntry{}}
		for _, e := range drifts[i] {
			addFindings([]model.Finding{e.Finding()})
		}
		cc.Drift, cc.DriftOmitted = caseDrift(drifts[i])
		cs.Containers = append(cs.Containers, cc)
	}
	for i := range cs.Containers {
		byCtr[cs.Containers[i].ID] = &cs.Containers[i]
	}
	for _, v := range verifs {
		fs := VerificationFindings(v)
		// A tampered layer concerns every container using the image.
		users := n.imageUsers(v)
		for _, id := range users {
			if cc := byCtr[id]; cc != nil {
				cc.Images = append(cc.Images, v)
			}
		}
		for _, f := range fs {
			if len(users) == 0 {
				addFindings([]model.Finding{f})
			}
			for _, id := range users {
				g := f
				g.ContainerID = id
				if cc := byCtr[id]; cc != nil {
					g.Pod = cc.Pod
				}
				addFindings([]model.Finding{g})
			}
		}
	}

	// Checkpoints: processes, sockets, memory indicators.
	step("checkpoints")
	indicators := caseIndicators(cs.Findings)
	refs, ws := n.Checkpoints(ctx)
	addWarnings(ws...)
	for _, r := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := firstOf(r.Name, r.Digest)
		cp, err := n.OpenCheckpoint(ctx, firstOf(r.Digest, r.Name), &checkpoint.Options{Pages: !o.NoMemory})
		if err != nil {
			addWarnings(evidence.Warnf(name, -1, "checkpoint: %v", err))
			continue
		}
		cs.addCheckpoint(ctx, name, cp, indicators, !o.NoMemory, n, byCtr, addFindings, addWarnings)
		cp.Close()
	}
	for _, p := range o.CheckpointPaths {
		cp, err := checkpoint.OpenPath(ctx, p, &checkpoint.Options{Pages: !o.NoMemory})
		if err != nil {
			addWarnings(evidence.Warnf(p, -1, "checkpoint: %v", err))
			continue
		}
		cs.addCheckpoint(ctx, p, cp, indicators, !o.NoMemory, n, byCtr, addFindings, addWarnings)
		cp.Close()
	}

	// Rank.
	model.SortFindings(cs.Findings)
	cs.Counts = map[string]int{}
	for _, f := range cs.Findings {
		cs.Counts[f.Severity.String()]++
		if cc := byCtr[f.ContainerID]; cc != nil {
			if f.Severity > cc.Risk {
				cc.Risk = f.Severity
			}
			if f.Severity > model.SeverityInfo {
				cc.Findings++
			}
		}
	}
	sort.SliceStable(cs.Containers, func(i, j int) bool {
		a, b := cs.Containers[i], cs.Containers[j]
		if a.Risk != b.Risk {
			return a.Risk > b.Risk
		}
		if a.Findings != b.Findings {
			return a.Findings > b.Findings
		}
		return a.ID < b.ID
	})

	// The timeline around the findings.
	step("timeline")
	done := map[string][]DriftEntry{}
	for i, c := range ctrs {
		if drifts[i] != nil {
			done[c.ID] = drifts[i]
		}
	}
	tl, tws, err := n.TimelineAll(ctx, &TimelineOptions{Drift: done, Hash: true})
	if err != nil {
		return nil, err
	}
	addWarnings(tws...)
	// What the evidence's readers met while triage read them (an entry
	// left out of its directory, a damaged block): no record carries it.
	if n.Evidence != nil {
		for _, w := range n.Evidence.ReaderWarnings() {
			addWarnings(evidence.Warnf("", -1, "%s", w))
		}
	}
	tl = append(tl, extraEvents...)
	sort.SliceStable(tl, func(i, j int) bool { return tl[i].Time.Before(tl[j].Time.Time) })
	cs.Timeline = window(tl, cs.Findings)
	if len(cs.Warnings) > maxTimelineWarnings {
		cs.Warnings = cs.Warnings[:maxTimelineWarnings]
	}
	return cs, nil
}

func nodeInfo(n *Node) NodeInfo {
	ni := NodeInfo{Runtimes: []model.RuntimeInfo{}, Pods: len(n.Pods())}
	for _, rt := range n.Runtimes {
		i := rt.Info()
		i.Warnings = nil
		ni.Runtimes = append(ni.Runtimes, i)
	}
	if b, err := readSmall(n.Src, "etc/hostname"); err == nil {
		ni.Hostname = strings.TrimSpace(string(b))
	}
	if b, err := readSmall(n.Src, "etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				ni.OS = strings.Trim(v, `"'`)
			}
		}
	}
	return ni
}

// readSmall reads a small file of the evidence, following its links
// inside the evidence.
func readSmall(src evidence.Source, name string) ([]byte, error) {
	p, err := evidence.Resolve(src, name, true)
	if err != nil {
		return nil, err
	}
	return evidence.ReadFile(src, p, 64<<10)
}

// caseDrift keeps a container's drift for the case: entries above info
// first (executables among them), then the rest, at most MaxCaseDrift.
func caseDrift(es []DriftEntry) ([]DriftEntry, int) {
	if len(es) == 0 {
		return []DriftEntry{}, 0
	}
	out := append([]DriftEntry(nil), es...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Finding().Severity > out[j].Finding().Severity })
	if len(out) > MaxCaseDrift {
		return out[:MaxCaseDrift], len(out) - MaxCaseDrift
	}
	return out, 0
}

// imageUsers are the containers of the node built from a verified image.
func (n *Node) imageUsers(v image.Verification) []string {
	var out []string
	for _, c := range n.Containers() {
		if c.Kind != model.KindContainer {
			continue
		}
		if (v.Namespace == "" || c.Namespace == v.Namespace) && (c.Image == v.Name || c.ImageRef == v.Digest || "sha256:"+c.ImageRef == v.Digest || matchesAny(c.Image, strings.Split(v.Name, ","))) {
			out = append(out, c.ID)
		}
	}
	return out
}

func matchesAny(s string, l []string) bool {
	for _, x := range l {
		if x != "" && x == s {
			return true
		}
	}
	return false
}

// caseIndicators are what the findings make worth looking for in process
// memory: the names of executables dropped into containers.
func caseIndicators(fs []model.Finding) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range fs {
		e, ok := f.Details.(DriftEntry)
		if !ok || f.Severity < model.SeverityMedium || e.ExecKind == "" || e.Change == ChangeDeleted {
			continue
		}
		b := path.Base(e.Path)
		if len(b) < 4 || seen[b] || classify.RuntimeMountPoint(e.Path) {
			continue
		}
		seen[b] = true
		out = append(out, b)
		if len(out) == 64 {
			break
		}
	}
	sort.Strings(out)
	return out
}

func (cs *Case) addCheckpoint(ctx context.Context, name string, cp *checkpoint.Checkpoint, indicators []string, mem bool, n *Node, byCtr map[string]*ContainerCase,
	addFindings func([]model.Finding), addWarnings func(...evidence.Warning)) {
	rt := cp.Container.Engine
	if cc := byCtr[cp.Container.ID]; cc != nil {
		rt = cc.Runtime
		cc.Checkpoints = append(cc.Checkpoints, name)
	}
	for _, w := range cp.Warnings {
		addWarnings(evidence.Warnf(name, -1, "%s", w))
	}
	addFindings(CheckpointFindings(cp, rt))
	sum := CheckpointSummary{Ref: name, ContainerID: cp.Container.ID, Processes: cp.Processes, MemoryHits: []MemoryIndicator{}}
	if mem && len(indicators) > 0 {
		sum.MemoryHits = memoryIndicators(ctx, cp, indicators, addWarnings)
		for _, h := range sum.MemoryHits {
			f := model.Finding{Severity: model.SeverityHigh, Analyzer: AnalyzerCheckpoint, Kind: "memory_indicator", Runtime: rt, ContainerID: cp.Container.ID,
				Pid: model.PidPtr(int(h.PID)), Path: h.Indicator,
				Why:     "the name of a file dropped into a container appears in a process's memory: the process knew of, ran or wrote the dropped tool",
				Summary: fmt.Sprintf("%q found %d times in the memory of pid %d %s (%s at 0x%x)", h.Indicator, h.Count, h.PID, h.Comm, h.VMAKind, h.Address),
				Refs:    []string{"indicator:" + h.Indicator}, Details: h}
			if cc := byCtr[cp.Container.ID]; cc != nil {
				f.Pod = cc.Pod
			}
			addFindings([]model.Finding{f})
		}
	}
	cs.Checkpoints = append(cs.Checkpoints, sum)
}

// memoryIndicators searches every process of a checkpoint for the
// indicators (one pass, one alternation), counting hits per process and
// indicator.
func memoryIndicators(ctx context.Context, cp *checkpoint.Checkpoint, indicators []string, addWarnings func(...evidence.Warning)) []MemoryIndicator {
	r, err := memory.Open(cp, nil)
	if err != nil {
		addWarnings(evidence.Warnf("", -1, "memory: %v", err))
		return []MemoryIndicator{}
	}
	defer r.Close()
	quoted := make([]string, len(indicators))
	for i, s := range indicators {
		quoted[i] = regexp.QuoteMeta(s)
	}
	pat, err := memory.Regex(strings.Join(quoted, "|"), 256)
	if err != nil {
		addWarnings(evidence.Warnf("", -1, "memory: %v", err))
		return []MemoryIndicator{}
	}
	type key struct {
		pid uint32
		ind string
	}
	hits := map[key]*MemoryIndicator{}
	var order []key
	for h, err := range r.Search(ctx, pat, &memory.SearchOptions{Context: 256}) {
		if err != nil {
			if !errors.Is(err, memory.ErrNotCaptured) {
				addWarnings(evidence.Warnf("", -1, "memory of pid %d: %v", h.PID, err))
			}
			continue
		}
		ind := ""
		for _, s := range indicators {
			if strings.Contains(string(h.Context), s) {
				ind = s
				break
			}
		}
		if p := cp.Process(h.PID); p != nil && path.Base(p.Exe) == ind {
			continue // a process knows its own name: not an indicator
		}
		k := key{h.PID, ind}
		if m := hits[k]; m != nil {
			m.Count++
			continue
		}
		hits[k] = &MemoryIndicator{Indicator: ind, PID: h.PID, Comm: h.Comm, Address: h.Address, VMAKind: h.VMAKind, Count: 1}
		order = append(order, k)
	}
	out := []MemoryIndicator{}
	for _, k := range order {
		out = append(out, *hits[k])
	}
	return out
}

// window keeps the events around the findings: from an hour before the
// first finding with a time to an hour after the last, at most
// maxCaseTimeline of them (the ones nearest the findings' span).
func window(tl []Event, fs []model.Finding) []Event {
	var lo, hi time.Time
	for _, f := range fs {
		if f.Severity < model.SeverityMedium {
			continue
		}
		t := findingTime(f)
		if t.IsZero() {
			continue
		}
		if lo.IsZero() || t.Before(lo) {
			lo = t
		}
		if hi.IsZero() || t.After(hi) {
			hi = t
		}
	}
	out := []Event{}
	if lo.IsZero() {
		if len(tl) > maxCaseTimeline {
			tl = tl[len(tl)-maxCaseTimeline:]
		}
		return append(out, tl...)
	}
	lo, hi = lo.Add(-time.Hour), hi.Add(time.Hour)
	for _, e := range tl {
		if !e.Time.Before(lo) && !e.Time.After(hi) {
			out = append(out, e)
		}
	}
	if len(out) > maxCaseTimeline {
		out = out[:maxCaseTimeline]
	}
	return out
}

// findingTime is when a finding's subject last changed, where it says.
func findingTime(f model.Finding) time.Time {
	if d, ok := f.Details.(interface{ EventTime() time.Time }); ok {
		return d.EventTime()
	}
	return time.Time{}
}
