package forensics

import (
	"context"
	"errors"
	"sync"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/host"
)

// HostAnalyzer is the host's persistence entries and package drift
// (package forensics/host) as a triage analyzer: one finding per
// persistence entry (package-owned, unmodified ones at info) and one per
// changed or unowned package file. Package drift needs a package database
// (dpkg, or rpm's SQLite one); without one only persistence is read, every
// entry judged as no package's. Its events are the node's timeline's (see
// Node.Timeline), not repeated in its result.
func HostAnalyzer() Analyzer { return hostAnalyzer{} }

type hostAnalyzer struct{}

func (hostAnalyzer) Name() string { return "host" }

func (hostAnalyzer) Analyze(ctx context.Context, n *Node) (AnalyzerResult, error) {
	hr, err := n.hostReports(ctx)
	if err != nil {
		return AnalyzerResult{}, err
	}
	var r AnalyzerResult
	r.Findings = append(r.Findings, hr.persistence.Findings()...)
	if hr.packages != nil {
		r.Findings = append(r.Findings, hr.packages.Findings()...)
	}
	r.Warnings = hr.warnings
	return r, nil
}

// hostMemo keeps the host's reports once read: triage's analyzer and the
// timeline's source share them, so the evidence is hashed once.
type hostMemo struct {
	mu sync.Mutex
	r  *hostResult
}

type hostResult struct {
	persistence *host.PersistenceReport
	packages    *host.PackageReport // nil without a package database
	warnings    []evidence.Warning
}

// hostReports reads the host's persistence and package drift, once per
// node (a cancelled read is not kept).
func (n *Node) hostReports(ctx context.Context) (*hostResult, error) {
	n.host.mu.Lock()
	defer n.host.mu.Unlock()
	if n.host.r != nil {
		return n.host.r, nil
	}
	hr := &hostResult{}
	db, err := host.OpenPackageDB(ctx, n.Src)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, host.ErrNoPackageDB):
		db = nil
	default:
		// Persistence says so too, as it reads every entry as unowned.
		hr.warnings = append(hr.warnings, evidence.Warnf("", -1, "host packages: %v", err))
		db = nil
	}
	p, err := host.Persistence(ctx, n.Src, host.PersistenceOptions{DB: db})
	if err != nil {
		return nil, err
	}
	hr.persistence = p
	for _, w := range p.Warnings {
		hr.warnings = append(hr.warnings, evidence.Warnf("", -1, "host persistence: %s", w))
	}
	if db != nil {
		k, err := host.Packages(ctx, n.Src, host.PackageOptions{DB: db})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			hr.warnings = append(hr.warnings, evidence.Warnf("", -1, "host packages: %v", err))
		} else {
			hr.packages = k
			for _, w := range k.Warnings {
				hr.warnings = append(hr.warnings, evidence.Warnf("", -1, "host packages: %s", w))
			}
		}
	}
	n.host.r = hr
	return hr, nil
}

// hostEvents: the times of the host's persistence entries (their files,
// drop-ins and the programs they run) and of its changed or unowned
// package files, those above info (host.Events).
func hostEvents(ctx context.Context, n *Node, _ *TimelineOptions, em *emitter) error {
	hr, err := n.hostReports(ctx)
	if err != nil {
		return err
	}
	for _, w := range hr.warnings {
		em.warn(w)
	}
	for _, ev := range host.Events(hr.persistence, hr.packages, false) {
		e := Event{Source: ev.Source, What: ev.What, Message: ev.Message, Path: ev.Path, EvidencePath: ev.EvidencePath}
		if ev.Source == host.AnalyzerPackages {
			e.Change = ev.Kind
		}
		em.add(ev.Time.Time, e)
	}
	return nil
}
