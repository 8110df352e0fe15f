package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/forensics/host"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

func init() {
	evidenceCommandMakers = append(evidenceCommandMakers, func(root string) [][]string {
		// the sample node has no package database: host packages exits 1
		// there (TestHostPackagesNoDatabase); the host's own untouched
		// test runs it
		return [][]string{
			{"--root", root, "host", "persistence", "-o", "json"},
			{"--root", root, "host", "persistence"},
		}
	})
}

// hostFalseFinding says why a host finding is not one the ground truth
// allows above info ("" when it is allowed).
func hostFalseFinding(path string, sev model.Severity) string {
	switch {
	case sev == model.SeverityInfo || testfix.HostPlanted[path]:
		return ""
	case testfix.HostKubelet[path] && sev == model.SeverityLow:
		return ""
	}
	return "above info, and neither planted nor the kubelet at low"
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, stderr)
	}
	return out
}

// tableRows reads a table printed by render.Table: the rows after the
// header line that starts with first, each as its cells by column name
// (cells are cut at the header's column starts, so they may hold single
// spaces). ASCII tables only.
func tableRows(t *testing.T, out, first string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	h := -1
	for i, l := range lines {
		if strings.HasPrefix(l, first+"  ") {
			h = i
			break
		}
	}
	if h < 0 {
		t.Fatalf("no header %q in:\n%s", first, out)
	}
	header := lines[h]
	type col struct {
		name  string
		start int
	}
	var cols []col
	for i := 0; i < len(header); {
		j := strings.Index(header[i:], "  ")
		name := header[i:]
		if j >= 0 {
			name = header[i : i+j]
		}
		cols = append(cols, col{name, i})
		if j < 0 {
			break
		}
		i += j
		for i < len(header) && header[i] == ' ' {
			i++
		}
	}
	var rows []map[string]string
	for _, l := range lines[h+1:] {
		if l == "" {
			break
		}
		r := map[string]string{}
		for k, c := range cols {
			end := len(l)
			if k+1 < len(cols) {
				end = min(cols[k+1].start, len(l))
			}
			if c.start < len(l) {
				r[c.name] = strings.TrimSpace(l[c.start:end])
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func TestHostPersistenceCommand(t *testing.T) {
	truth := testfix.LoadHostTruth(t)
	for form, root := range hostRoots(t) {
		t.Run(form, func(t *testing.T) {
			var r host.PersistenceReport
			if err := json.Unmarshal([]byte(runOK(t, "--root", root, "host", "persistence", "-o", "json")), &r); err != nil {
				t.Fatal(err)
			}
			if r.PackageDB != "dpkg" || len(r.Warnings) != 0 || len(r.Entries) != 55 {
				t.Errorf("package db %q, %d entries, warnings %q", r.PackageDB, len(r.Entries), r.Warnings)
			}
			by := map[string][]host.Entry{}
			for _, e := range r.Entries {
				by[e.Path] = append(by[e.Path], e)
				if why := hostFalseFinding(e.Path, e.Severity); why != "" {
					t.Errorf("%s:%d %s %s: %s (%s)", e.Path, e.Line, e.Kind, e.Severity, why, e.Why)
				}
			}
			for _, x := range truth.Persistence {
				es := by[x.Path]
				if len(es) == 0 {
					t.Errorf("%s: not listed", x.Path)
				}
				for _, e := range es {
					if x.Malicious {
						if e.Kind != x.Kind || e.Target != x.Target || e.Severity < model.SeverityMedium || e.OwnerPackage != nil || !e.Enabled ||
							e.Mtime.UTC().Format("2006-01-02 15:04:05") != truth.AttackTime {
							t.Errorf("planted %s: %s %q %s owner %v enabled %v mtime %s", x.Path, e.Kind, e.Target, e.Severity, e.OwnerPackage, e.Enabled, e.Mtime)
						}
					} else if e.Severity != model.SeverityInfo || e.OwnerPackage == nil {
						t.Errorf("baseline %s:%d: %s owner %v (%s)", x.Path, e.Line, e.Severity, e.OwnerPackage, e.Why)
					}
				}
			}
			// exact severities of the planted entries
			want := map[string]model.Severity{
				"/etc/cron.d/apt-compat-check": model.SeverityHigh, "/etc/ld.so.preload": model.SeverityHigh,
				"/etc/systemd/system/sysstat-collect.timer": model.SeverityHigh, "/etc/systemd/system/sysstat-collect.service": model.SeverityHigh,
				"/etc/systemd/system/timers.target.wants/sysstat-collect.timer": model.SeverityHigh,
				"/usr/share/containers/oci/hooks.d/00-metrics.json":             model.SeverityHigh,
				"/root/.ssh/authorized_keys":                                    model.SeverityMedium,
				"/etc/systemd/system/kubelet.service":                           model.SeverityLow,
			}
			for p, s := range want {
				if len(by[p]) != 1 || by[p][0].Severity != s {
					t.Errorf("%s: %+v, want one entry at %s", p, by[p], s)
				}
			}

			// The table: by severity, the planted cron line first.
			table := runOK(t, "--root", root, "host", "persistence", "--wide")
			if !strings.HasPrefix(table, "persistence: 55 entries (6 high, 1 medium, 2 low, 46 info); package database: dpkg\n") {
				t.Errorf("table title: %q", strings.SplitN(table, "\n", 2)[0])
			}
			rows := tableRows(t, table, "SEVERITY")
			if len(rows) != 55 {
				t.Fatalf("%d table rows", len(rows))
			}
			c := rows[0]
			if c["SEVERITY"] != "high" || c["KIND"] != "cron" || c["PATH"] != "/etc/cron.d/apt-compat-check:3" || c["OWNER"] != "-" || c["ENABLED"] != "true" ||
				c["TARGET"] != "*/5 * * * * root /var/tmp/.apt/check >/dev/null 2>&1" || c["MTIME"] != "2026-11-26T21:14:05.000000000Z" ||
				c["FLAGS"] != "runs_from_volatile,runs_from_hidden,target_renamed_copy" {
				t.Errorf("first row: %v", c)
			}
			last := model.SeverityCritical
			for _, r := range rows {
				s, err := model.ParseSeverity(r["SEVERITY"])
				if err != nil || s > last {
					t.Errorf("row out of severity order: %v", r)
				}
				last = s
				if r["PATH"] == "/etc/cron.daily/dpkg" && (r["SEVERITY"] != "info" || r["OWNER"] != "dpkg") {
					t.Errorf("baseline row: %v", r)
				}
				if strings.HasPrefix(r["PATH"], "/etc/crontab:") && !strings.Contains(r["TARGET"], `\t`) {
					t.Errorf("a tab of the evidence is not escaped: %v", r)
				}
			}

			// -o jsonl: one entry a line, in the report's order.
			lines := strings.Split(strings.TrimSpace(runOK(t, "--root", root, "host", "persistence", "-o", "jsonl")), "\n")
			if len(lines) != len(r.Entries) {
				t.Fatalf("%d jsonl lines, %d entries", len(lines), len(r.Entries))
			}
			for i, l := range lines {
				var e host.Entry
				if err := json.Unmarshal([]byte(l), &e); err != nil || e.Path != r.Entries[i].Path || e.Line != r.Entries[i].Line {
					t.Errorf("line %d: %v %s:%d", i, err, e.Path, e.Line)
				}
			}
		})
	}
}

func TestHostPackagesCommand(t *testing.T) {
	truth := testfix.LoadHostTruth(t)
	for form, root := range hostRoots(t) {
		t.Run(form, func(t *testing.T) {
			var r host.PackageReport
			if err := json.Unmarshal([]byte(runOK(t, "--root", root, "host", "packages", "-o", "json")), &r); err != nil {
				t.Fatal(err)
			}
			if r.Format != "dpkg" || r.Database != "/var/lib/dpkg/status" || r.Packages != 15 || r.Checked != 365 || r.Excluded != 621 || len(r.Warnings) != 0 ||
				r.Counts["modified"] != 1 || r.Counts["unowned"] != 7 || r.Counts["setuid_unowned"] != 1 || len(r.Changes) != 9 {
				t.Errorf("report: %s %s %d packages, %d checked, %d excluded, counts %v, %d changes, warnings %q",
					r.Format, r.Database, r.Packages, r.Checked, r.Excluded, r.Counts, len(r.Changes), r.Warnings)
			}
			by := map[string]host.FileChange{}
			for _, c := range r.Changes {
				by[c.Path] = c
				if why := hostFalseFinding(c.Path, c.Severity); why != "" {
					t.Errorf("%s %s %s: %s (%s)", c.Path, c.Change, c.Severity, why, c.Why)
				}
			}
			for _, x := range truth.PackageDrift {
				c, ok := by[x.Path]
				if !ok {
					t.Errorf("%s: not listed", x.Path)
					continue
				}
				if c.Change != x.Change || (c.Package == nil) != (x.Package == nil) || x.Package != nil && *c.Package != *x.Package || c.Severity < model.SeverityHigh {
					t.Errorf("%s: %s %v %s, want %s %v", x.Path, c.Change, c.Package, c.Severity, x.Change, x.Package)
				}
				if x.ExpectedMD5 != "" && (c.DigestAlgo != "md5" || c.ExpectedDigest != x.ExpectedMD5 || c.ActualDigest != x.ActualMD5) {
					t.Errorf("%s: %s %s -> %s, want md5 %s -> %s", x.Path, c.DigestAlgo, c.ExpectedDigest, c.ActualDigest, x.ExpectedMD5, x.ActualMD5)
				}
			}
			if c := by["/usr/sbin/pam_timestamp_check2"]; c.Severity != model.SeverityCritical || c.Mode != "4755" || c.IdenticalTo != "/usr/bin/dash" || c.ExecKind != "elf" {
				t.Errorf("pam_timestamp_check2: %+v", c)
			}
			if c := by["/usr/bin/dbus-daemon-helper"]; c.IdenticalTo != "/usr/bin/dash" || c.SHA256 != "f5adb8bf0100ed0f8c7782ca5f92814e9229525a4b4e0d401cf3bea09ac960a6" {
				t.Errorf("dbus-daemon-helper: %+v", c)
			}

			// The table (--wide: whole digests): by severity, both md5s of
			// curl, the copies of dash named, the rest identical to nothing.
			table := runOK(t, "--root", root, "host", "packages", "--wide")
			title := "packages: dpkg database /var/lib/dpkg/status, 15 packages, 1369 owned paths, 365 files checked, 621 excluded by dpkg filters, 60 unowned files scanned\nchanges: 1 modified, 7 unowned, 1 setuid_unowned\n"
			if !strings.HasPrefix(table, title) {
				t.Errorf("table title:\n%s", table[:min(len(table), len(title))])
			}
			rows := tableRows(t, table, "SEVERITY")
			if len(rows) != 9 {
				t.Fatalf("%d rows:\n%s", len(rows), table)
			}
			row := map[string]map[string]string{}
			for i, r := range rows {
				row[r["PATH"]] = r
				if i == 0 && r["PATH"] != "/usr/sbin/pam_timestamp_check2" {
					t.Errorf("first row: %v", r)
				}
			}
			if r := row["/usr/bin/curl"]; r["SEVERITY"] != "high" || r["CHANGE"] != "modified" || r["PACKAGE"] != "curl" || r["EXPECTED"] != "038170c95d94437d6e02a0f631524119" ||
				r["ACTUAL"] != "eab99061229dd3f58b19d25987c04e6c" || r["IDENTICAL TO"] != "-" || r["EXEC"] != "elf" || r["NOTE"] != "md5" {
				t.Errorf("curl row: %v", r)
			}
			if r := row["/usr/sbin/pam_timestamp_check2"]; r["SEVERITY"] != "critical" || r["CHANGE"] != "setuid_unowned" || r["PACKAGE"] != "-" || r["MODE"] != "4755" ||
				r["IDENTICAL TO"] != "/usr/bin/dash" || r["FLAGS"] != "setuid" || r["EXPECTED"] != "-" {
				t.Errorf("setuid row: %v", r)
			}
			if r := row["/usr/bin/dbus-daemon-helper"]; r["CHANGE"] != "unowned" || r["IDENTICAL TO"] != "/usr/bin/dash" || r["SIZE"] != "125640" {
				t.Errorf("dbus-daemon-helper row: %v", r)
			}
			if r := row["/usr/lib/x86_64-linux-gnu/libnss_cache.so.2"]; r["CHANGE"] != "unowned" || r["EXEC"] != "shared_library" || r["IDENTICAL TO"] != "-" || r["FLAGS"] != "ld_preloaded" {
				t.Errorf("libnss_cache row: %v", r)
			}
			// without --wide, digests print as 12 digits
			if r := tableRows(t, runOK(t, "--root", root, "host", "packages"), "SEVERITY"); r[1]["PATH"] != "/usr/bin/curl" || r[1]["EXPECTED"] != "038170c95d94" {
				t.Errorf("short digests: %v", r[1])
			}

			// -o jsonl: the rows as the report lists them, one a line.
			lines := strings.Split(strings.TrimSpace(runOK(t, "--root", root, "host", "packages", "-o", "jsonl")), "\n")
			if len(lines) != len(r.Changes) {
				t.Fatalf("%d jsonl lines, %d changes", len(lines), len(r.Changes))
			}
			for i, l := range lines {
				var c host.FileChange
				if err := json.Unmarshal([]byte(l), &c); err != nil || c.Path != r.Changes[i].Path || c.Change != r.Changes[i].Change {
					t.Errorf("line %d: %v %s", i, err, l)
				}
			}
		})
	}
}

// --all lists the files found as shipped too, with both digests equal.
func TestHostPackagesAll(t *testing.T) {
	root := testfix.KubeHostArchive(t)
	var r host.PackageReport
	if err := json.Unmarshal([]byte(runOK(t, "--root", root, "host", "packages", "--all", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Counts["ok"] != 364 || len(r.Changes) != 373 {
		t.Errorf("counts %v, %d changes", r.Counts, len(r.Changes))
	}
	for _, c := range r.Changes {
		if c.Change == "ok" && (c.Severity != model.SeverityInfo || c.ActualDigest != c.ExpectedDigest || c.Package == nil) {
			t.Errorf("%s: %+v", c.Path, c)
		}
		if c.Path == "/usr/bin/dash" && (c.Change != "ok" || c.ListedPath != "/bin/dash" || c.SHA256 != "f5adb8bf0100ed0f8c7782ca5f92814e9229525a4b4e0d401cf3bea09ac960a6") {
			t.Errorf("dash: %+v", c)
		}
	}
	n := strings.Count(runOK(t, "--root", root, "host", "packages", "--all", "-o", "jsonl"), "\n")
	if n != 373 {
		t.Errorf("%d jsonl lines", n)
	}
}

func TestHostPackagesNoDatabase(t *testing.T) {
	out, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "host", "packages")
	if code != 1 || out != "" || !strings.Contains(stderr, "deadnode host packages: no package database (dpkg status or rpmdb.sqlite) in the evidence\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "host", "persistence", "extra"); code != 2 || !strings.Contains(stderr, "takes no arguments") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// triage -o json on the host: every planted fact among the findings at
// medium or above, nothing else of the host above info but the kubelet at
// low, the findings ranked, the host's events in the case's timeline.
func TestHostTriage(t *testing.T) {
	truth := testfix.LoadHostTruth(t)
	for form, root := range hostRoots(t) {
		t.Run(form, func(t *testing.T) {
			var cs struct {
				Evidence struct {
					Kind   string  `json:"kind"`
					SHA256 *string `json:"sha256"`
				} `json:"evidence"`
				Node struct {
					Hostname string `json:"hostname"`
					OS       string `json:"os"`
				} `json:"node"`
				Containers []struct {
					Pod  string         `json:"pod"`
					Name string         `json:"name"`
					Risk model.Severity `json:"risk"`
				} `json:"containers"`
				Findings []model.Finding `json:"findings"`
				Timeline []struct {
					Time   model.Time `json:"time"`
					Source string     `json:"source"`
					What   string     `json:"what"`
					Path   string     `json:"path"`
					Change string     `json:"change"`
				} `json:"timeline"`
				Counts map[string]int `json:"counts"`
			}
			out := runOK(t, "--root", root, "triage", "-o", "json", "--no-memory")
			if err := json.Unmarshal([]byte(out), &cs); err != nil {
				t.Fatal(err)
			}
			if cs.Node.Hostname != "vm" || cs.Node.OS != "Debian GNU/Linux 12 (bookworm)" {
				t.Errorf("node %+v", cs.Node)
			}
			if form == "tar.zst" {
				b, err := os.ReadFile(root)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(b)
				if cs.Evidence.SHA256 == nil || *cs.Evidence.SHA256 != hex.EncodeToString(sum[:]) {
					t.Errorf("evidence sha256 %v", cs.Evidence.SHA256)
				}
			}
			type key struct{ analyzer, path string }
			found := map[key]model.Finding{}
			hostFindings := 0
			for i, f := range cs.Findings {
				if i > 0 && f.Severity > cs.Findings[i-1].Severity {
					t.Errorf("finding %d (%s %s) ranked after a %s one", i, f.Severity, f.Summary, cs.Findings[i-1].Severity)
				}
				if f.Analyzer != host.AnalyzerPersistence && f.Analyzer != host.AnalyzerPackages {
					continue
				}
				hostFindings++
				if _, dup := found[key{f.Analyzer, f.Path}]; !dup {
					found[key{f.Analyzer, f.Path}] = f
				}
				if why := hostFalseFinding(f.Path, f.Severity); why != "" {
					t.Errorf("false host finding: %s %s: %s", f.Severity, f.Summary, why)
				}
				if f.Why == "" || f.Summary == "" || f.ContainerID != "" || f.Details == nil {
					t.Errorf("finding shape: %+v", f)
				}
			}
			// 55 persistence entries, 9 package rows
			if hostFindings != 64 {
				t.Errorf("%d host findings", hostFindings)
			}
			for _, x := range truth.Persistence {
				f, ok := found[key{host.AnalyzerPersistence, x.Path}]
				switch {
				case !ok:
					t.Errorf("persistence %s: no finding", x.Path)
				case x.Malicious && (f.Severity < model.SeverityMedium || f.Kind != x.Kind):
					t.Errorf("planted %s: %s %s", x.Path, f.Severity, f.Kind)
				case !x.Malicious && f.Severity != model.SeverityInfo:
					t.Errorf("baseline %s: %s", x.Path, f.Severity)
				}
			}
			for _, x := range truth.PackageDrift {
				f, ok := found[key{host.AnalyzerPackages, x.Path}]
				if !ok || f.Kind != x.Change || f.Severity < model.SeverityHigh {
					t.Errorf("package drift %s: %+v", x.Path, f)
				}
			}
			// ranked: the two critical findings of the node first — the
			// privileged static pod mounting / and the setuid copy of dash;
			// the attacked container still leads the containers
			if cs.Counts["critical"] != 2 || len(cs.Findings) < 2 || cs.Findings[0].Path != "/etc/kubernetes/manifests/log-shipper.yaml" ||
				cs.Findings[1].Path != "/usr/sbin/pam_timestamp_check2" || cs.Findings[1].Severity != model.SeverityCritical {
				t.Errorf("first findings %+v %+v, counts %v", cs.Findings[0], cs.Findings[1], cs.Counts)
			}
			if curl := found[key{host.AnalyzerPackages, "/usr/bin/curl"}]; !strings.Contains(curl.Summary, "md5 eab99061229dd3f58b19d25987c04e6c, was 038170c95d94437d6e02a0f631524119") {
				t.Errorf("curl summary %q", curl.Summary)
			}
			if len(cs.Containers) == 0 || cs.Containers[0].Pod != "shop/shop-frontend-7d9c8b6f5-x2k4q" || cs.Containers[0].Risk < model.SeverityHigh {
				t.Errorf("containers: %+v", cs.Containers)
			}
			// the host's events at the attack's time are in the window
			at := map[string]string{}
			for _, e := range cs.Timeline {
				if (e.Source == "persistence" || e.Source == "packages") && e.What == "mtime" && e.Time.UTC().Format("2006-01-02 15:04:05") == truth.AttackTime {
					at[e.Path] = e.Source + "/" + e.Change
				}
			}
			for p, want := range map[string]string{"/etc/cron.d/apt-compat-check": "persistence/", "/etc/ld.so.preload": "persistence/",
				"/usr/bin/curl": "packages/modified", "/usr/sbin/pam_timestamp_check2": "packages/setuid_unowned"} {
				if at[p] != want {
					t.Errorf("timeline at the attack: %s is %q, want %q", p, at[p], want)
				}
			}
		})
	}
}

// The node's timeline carries the host's events above info.
func TestHostTimeline(t *testing.T) {
	out := runOK(t, "--root", testfix.KubeHostArchive(t), "timeline")
	n := map[string]int{}
	var curl []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct {
			Time    model.Time `json:"time"`
			Source  string     `json:"source"`
			What    string     `json:"what"`
			Path    string     `json:"path"`
			Change  string     `json:"change"`
			Message string     `json:"message"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		n[e.Source]++
		if e.Path == "/usr/bin/curl" {
			curl = append(curl, e.Time.String()+" "+e.Source+" "+e.What+" "+e.Change+" "+e.Message)
		}
	}
	// The archive records no ctime or btime: an mtime per path (a path
	// both a persistence entry runs and package drift lists is one event,
	// the persistence entry's). 14 paths of the compromise, 3 of the
	// kubelet (its unit, drop-in and binary) and its wants link.
	if n["persistence"] != 15 || n["packages"] != 3 {
		t.Errorf("host events %v", n)
	}
	if strings.Join(curl, "\n") != "2026-11-26T21:14:05.000000000Z packages mtime modified mtime modified /usr/bin/curl (high)" {
		t.Errorf("curl events: %q", curl)
	}
}

// The host commands, triage and the timeline leave the host directory as
// it was, access times included.
func TestHostEvidenceUntouched(t *testing.T) {
	dir := testfix.KubeHost(t)
	before := fingerprint(t, dir)
	for _, args := range [][]string{
		{"host", "persistence", "-o", "json"}, {"host", "packages", "--all", "-o", "jsonl"}, {"host", "packages"},
		{"triage", "-o", "json", "--no-memory"}, {"timeline"},
	} {
		runOK(t, append([]string{"--root", dir}, args...)...)
	}
	if d := diffPrints(before, fingerprint(t, dir)); len(d) != 0 {
		t.Errorf("the host evidence changed:\n%s", strings.Join(d, "\n"))
	}
}
