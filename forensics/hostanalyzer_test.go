package forensics

import (
	"context"
	"errors"
	"testing"

	"github.com/deadnode/deadnode/forensics/host"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

func openHost(t *testing.T, root string) *Node {
	t.Helper()
	n, err := OpenPath(root, &Options{AllowNoRuntime: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// The analyzer gives one finding per persistence entry and per package
// row; the timeline reads the same reports (the evidence is read once per
// node), and a triage holds each host event once.
func TestHostAnalyzerAndTimeline(t *testing.T) {
	for form, root := range map[string]string{"dir": testfix.KubeHost(t), "tar.zst": testfix.KubeHostArchive(t)} {
		t.Run(form, func(t *testing.T) {
			n := openHost(t, root)
			ctx := context.Background()
			r, err := HostAnalyzer().Analyze(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Warnings) != 0 || len(r.Events) != 0 {
				t.Errorf("warnings %v, %d events", r.Warnings, len(r.Events))
			}
			by := map[string]int{}
			var critical []string
			for _, f := range r.Findings {
				by[f.Analyzer]++
				if f.Severity == model.SeverityCritical {
					critical = append(critical, f.Path)
				}
			}
			if by[host.AnalyzerPersistence] != 55 || by[host.AnalyzerPackages] != 9 || len(by) != 2 {
				t.Errorf("findings by analyzer %v", by)
			}
			if len(critical) != 1 || critical[0] != "/usr/sbin/pam_timestamp_check2" {
				t.Errorf("critical %v", critical)
			}
			first, err := n.hostReports(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := n.hostReports(ctx); again != first || first.packages == nil || first.persistence == nil {
				t.Error("the host's reports were read twice")
			}

			// the timeline's host events
			tl, _, err := n.TimelineAll(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var hostEvents int
			mtimes := map[string]string{}
			for _, e := range tl {
				if e.Source == host.AnalyzerPersistence || e.Source == host.AnalyzerPackages {
					hostEvents++
					if e.What == "mtime" {
						mtimes[e.Path] = e.Time.String()
					}
					if e.Path == "/usr/bin/curl" && (e.Source != host.AnalyzerPackages || e.Change != host.ChangeModified || e.EvidencePath != "/usr/bin/curl") {
						t.Errorf("curl event %+v", e)
					}
				}
			}
			// An mtime for each of the 18 paths above info (the archive
			// records no ctime or btime; the directory does, for each).
			if len(mtimes) != 18 || mtimes["/usr/bin/curl"] != "2026-11-26T21:14:05.000000000Z" || mtimes["/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"] != "2026-11-20T10:00:00.000000000Z" {
				t.Errorf("mtime events %v", mtimes)
			}
			if form == "tar.zst" && hostEvents != 18 || form == "dir" && hostEvents <= 18 {
				t.Errorf("%d host events in the timeline", hostEvents)
			}

			// triage: the host's findings, and its events once
			cs, err := Triage(ctx, n, &TriageOptions{Analyzers: DefaultAnalyzers(), NoMemory: true})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, e := range cs.Timeline {
				if e.Source != host.AnalyzerPersistence && e.Source != host.AnalyzerPackages {
					continue
				}
				k := e.Path + " " + e.What
				if seen[k] {
					t.Errorf("host event twice in the case: %s", k)
				}
				seen[k] = true
			}
			if !seen["/etc/cron.d/apt-compat-check mtime"] || !seen["/usr/sbin/pam_timestamp_check2 mtime"] {
				t.Errorf("case timeline misses the compromise: %v", seen)
			}
			var pam *model.Finding
			for i := range cs.Findings {
				if cs.Findings[i].Path == "/usr/sbin/pam_timestamp_check2" {
					pam = &cs.Findings[i]
					break
				}
			}
			if pam == nil || pam.Analyzer != host.AnalyzerPackages || pam.Severity != model.SeverityCritical || cs.Findings[0].Severity != model.SeverityCritical {
				t.Errorf("the setuid copy %+v; first finding %+v", pam, cs.Findings[0])
			}
		})
	}
}

// Cancelled before it starts, the analyzer stops with the context's error
// and keeps nothing: the next call reads the host.
func TestHostAnalyzerCancel(t *testing.T) {
	n := openHost(t, testfix.KubeHostArchive(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := HostAnalyzer().Analyze(ctx, n); !errors.Is(err, context.Canceled) {
		t.Errorf("analyze: %v", err)
	}
	if _, _, err := n.TimelineAll(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("timeline: %v", err)
	}
	if n.host.r != nil {
		t.Error("a cancelled read was kept")
	}
	r, err := HostAnalyzer().Analyze(context.Background(), n)
	if err != nil || len(r.Findings) != 64 {
		t.Errorf("after cancelling: %d findings, %v", len(r.Findings), err)
	}
}

// On the sample node (a containerd collection: no package database, no
// cron or systemd files), the host analyzer finds nothing above info and
// warns of nothing: package drift is skipped quietly.
func TestHostAnalyzerWithoutPackageDB(t *testing.T) {
	n := openHost(t, testfix.NodeArchive(t))
	r, err := HostAnalyzer().Analyze(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 0 || len(r.Findings) != 1 {
		t.Fatalf("warnings %v, findings %+v", r.Warnings, r.Findings)
	}
	f := r.Findings[0]
	if f.Severity != model.SeverityInfo || f.Kind != host.KindRuntimeConfig || f.Path != "/etc/containerd/config.toml" {
		t.Errorf("finding %+v", f)
	}
	if hr, _ := n.hostReports(context.Background()); hr.packages != nil || hr.persistence.PackageDB != "" {
		t.Errorf("package report %+v", hr.packages)
	}
}
