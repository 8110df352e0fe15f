package host

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

// hostForms opens the compromised host as a directory and as its .tar.zst
// collection.
func hostForms(t *testing.T) map[string]evidence.Source {
	t.Helper()
	d, err := evidence.OpenDir(testfix.KubeHost(t))
	if err != nil {
		t.Fatal(err)
	}
	a, err := evidence.OpenArchive(context.Background(), testfix.KubeHostArchive(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return map[string]evidence.Source{"dir": d, "tar.zst": a}
}

func TestHostPersistenceFixture(t *testing.T) {
	exp := testfix.LoadHostTruth(t)
	for form, src := range hostForms(t) {
		t.Run(form, func(t *testing.T) {
			r, err := Persistence(context.Background(), src, PersistenceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.PackageDB != FormatDpkg {
				t.Errorf("package db %q", r.PackageDB)
			}
			if len(r.Warnings) != 0 {
				t.Errorf("warnings: %q", r.Warnings)
			}
			byPath := map[string][]Entry{}
			for _, e := range r.Entries {
				byPath[e.Path] = append(byPath[e.Path], e)
			}
			for _, x := range exp.Persistence {
				es := byPath[x.Path]
				if len(es) == 0 {
					t.Errorf("%s: not reported", x.Path)
					continue
				}
				for _, e := range es {
					if x.Malicious {
						if e.Kind != x.Kind || e.Target != x.Target || e.Severity < model.SeverityMedium || !e.Enabled {
							t.Errorf("%s: kind %s target %q severity %s enabled %v; want %s %q >= medium, enabled", x.Path, e.Kind, e.Target, e.Severity, e.Enabled, x.Kind, x.Target)
						}
						if e.OwnerPackage != nil || e.Why == "" {
							t.Errorf("%s: owner %v why %q", x.Path, e.OwnerPackage, e.Why)
						}
					} else if e.Severity != model.SeverityInfo || e.OwnerPackage == nil || !e.Enabled && strings.Contains(x.Path, ".wants/") {
						t.Errorf("baseline %s:%d: severity %s owner %v enabled %v (%s)", x.Path, e.Line, e.Severity, e.OwnerPackage, e.Enabled, e.Why)
					}
				}
			}
			// exact facts of the planted entries
			get := func(p string) Entry {
				t.Helper()
				if len(byPath[p]) != 1 {
					t.Fatalf("%s: %d entries", p, len(byPath[p]))
				}
				return byPath[p][0]
			}
			cron := get("/etc/cron.d/apt-compat-check")
			if cron.Line != 3 || cron.Cron == nil || cron.Cron.Schedule != "*/5 * * * *" || cron.Cron.User != "root" || cron.Cron.Command != "/var/tmp/.apt/check >/dev/null 2>&1" ||
				strings.Join(cron.Cron.Env, ",") != "SHELL=/bin/sh" || cron.Severity != model.SeverityHigh {
				t.Errorf("cron entry: %+v %+v", cron, cron.Cron)
			}
			if len(cron.Programs) != 1 || cron.Programs[0].Resolved != "/var/tmp/.apt/check" || cron.Programs[0].IdenticalTo != "/usr/bin/dash" || cron.Programs[0].ExecKind != "elf" {
				t.Errorf("cron programs: %+v", cron.Programs)
			}
			for _, f := range []string{FlagRunsVolatile, FlagRunsHidden, FlagTargetCopy} {
				if !hasFlag(cron.Flags, f) {
					t.Errorf("cron flags %v: no %s", cron.Flags, f)
				}
			}
			if cron.Mtime.UTC().Format("2006-01-02 15:04:05") != exp.AttackTime {
				t.Errorf("cron mtime %s", cron.Mtime)
			}
			timer := get("/etc/systemd/system/sysstat-collect.timer")
			if timer.Unit == nil || timer.Unit.Triggers != "sysstat-collect.service" || strings.Join(timer.Unit.Schedule, " ") != "OnBootSec=2min OnUnitActiveSec=15min" ||
				strings.Join(timer.Unit.EnabledBy, " ") != "/etc/systemd/system/timers.target.wants/sysstat-collect.timer" || timer.Severity != model.SeverityHigh {
				t.Errorf("timer: %+v %+v", timer, timer.Unit)
			}
			svc := get("/etc/systemd/system/sysstat-collect.service")
			if svc.Unit == nil || strings.Join(svc.Unit.EnabledBy, " ") != "/etc/systemd/system/sysstat-collect.timer" || !hasFlag(svc.Flags, FlagTriggered) || !hasFlag(svc.Flags, FlagRunsHidden) {
				t.Errorf("service: %+v %+v", svc, svc.Unit)
			}
			link := get("/etc/systemd/system/timers.target.wants/sysstat-collect.timer")
			if link.Kind != KindSystemdTimer || link.Target != "/usr/local/lib/.sysstat/collect" || link.Severity != model.SeverityHigh || link.Unit.LinkTarget != "/etc/systemd/system/sysstat-collect.timer" || link.Unit.LinkRecorded {
				t.Errorf("timer link: %+v %+v", link, link.Unit)
			}
			pre := get("/etc/ld.so.preload")
			if pre.Severity != model.SeverityHigh || len(pre.Programs) != 1 || pre.Programs[0].ExecKind != "shared_library" || pre.Programs[0].OwnerPackage != nil {
				t.Errorf("ld.so.preload: %+v", pre)
			}
			key := get("/root/.ssh/authorized_keys")
			if key.Key == nil || key.Key.Type != "ssh-ed25519" || key.Key.User != "root" || key.Key.Bad != "" || key.Key.Fingerprint != "SHA256:Buk1v7yAYL273A/owccJoEtqJ/BOifnsL8h4uk7Wuwg" {
				t.Errorf("authorized key: %+v", key.Key)
			}
			hook := get("/usr/share/containers/oci/hooks.d/00-metrics.json")
			if hook.Hook == nil || !hook.Hook.Always || strings.Join(hook.Hook.Stages, ",") != "prestart" || strings.Join(hook.Hook.Args, " ") != "oci-metrics prestart" ||
				hook.Severity != model.SeverityHigh || len(hook.Programs) == 0 || hook.Programs[0].IdenticalTo != "/usr/bin/dash" {
				t.Errorf("hook: %+v %+v", hook, hook.Hook)
			}
			// (the fingerprint ssh-keygen -lf prints)
			// the baseline wants links were made by maintainer scripts
			for _, x := range exp.Persistence {
				if strings.Contains(x.Path, ".wants/") && !x.Malicious {
					e := get(x.Path)
					if !e.Unit.LinkRecorded || e.Unit.FileOwnerPackage == nil {
						t.Errorf("%s: link_recorded %v unit owner %v", x.Path, e.Unit.LinkRecorded, e.Unit.FileOwnerPackage)
					}
				}
			}
			// kubelet: unowned but ordinary, at low exactly
			kub := get("/etc/systemd/system/kubelet.service")
			if kub.Severity != model.SeverityLow || kub.Target != "/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS" || len(kub.Unit.DropIns) != 1 ||
				kub.Unit.DropIns[0].Path != "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf" || kub.Unit.Exec[0].From != kub.Unit.DropIns[0].Path || len(kub.Unit.Exec) != 1 {
				t.Errorf("kubelet: %+v %+v", kub, kub.Unit)
			}
			// nothing above info but the planted entries and the kubelet's
			for _, f := range r.Findings() {
				switch {
				case f.Severity == model.SeverityInfo || testfix.HostPlanted[f.Path]:
				case testfix.HostKubelet[f.Path] && f.Severity == model.SeverityLow:
				default:
					t.Errorf("unexpected finding above info: %s %s (%s)", f.Severity, f.Summary, f.Why)
				}
				if f.Analyzer != AnalyzerPersistence || f.Why == "" || f.Summary == "" {
					t.Errorf("finding shape: %+v", f)
				}
			}
		})
	}
}

func TestHostPackagesFixture(t *testing.T) {
	exp := testfix.LoadHostTruth(t)
	for form, src := range hostForms(t) {
		t.Run(form, func(t *testing.T) {
			r, err := Packages(context.Background(), src, PackageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Format != FormatDpkg || r.Packages != 15 || len(r.Warnings) != 0 {
				t.Errorf("format %s packages %d warnings %q", r.Format, r.Packages, r.Warnings)
			}
			// every regular file dpkg's md5sums and conffiles list is
			// either checked or kept out by dpkg's path-exclude filters
			if r.Checked != 365 || r.Excluded != 621 {
				t.Errorf("checked %d excluded %d", r.Checked, r.Excluded)
			}
			by := map[string]FileChange{}
			for _, c := range r.Changes {
				if _, dup := by[c.Path]; dup {
					t.Errorf("%s reported twice", c.Path)
				}
				by[c.Path] = c
			}
			for _, x := range exp.PackageDrift {
				c, ok := by[x.Path]
				if !ok {
					t.Errorf("%s: not reported", x.Path)
					continue
				}
				if c.Change != x.Change || (x.Package == nil) != (c.Package == nil) || x.Package != nil && *x.Package != *c.Package || c.Severity < model.SeverityHigh {
					t.Errorf("%s: %s %v %s; want %s %v", x.Path, c.Change, c.Package, c.Severity, x.Change, x.Package)
				}
				if x.ExpectedMD5 != "" && (c.ExpectedDigest != x.ExpectedMD5 || c.ActualDigest != x.ActualMD5 || c.DigestAlgo != AlgoMD5) {
					t.Errorf("%s: %s %s, want %s %s", x.Path, c.ExpectedDigest, c.ActualDigest, x.ExpectedMD5, x.ActualMD5)
				}
			}
			curl := by["/usr/bin/curl"]
			if curl.ExpectedDigest != "038170c95d94437d6e02a0f631524119" || curl.ActualDigest != "eab99061229dd3f58b19d25987c04e6c" || curl.ExecKind != "elf" || len(curl.SHA256) != 64 || curl.Severity != model.SeverityHigh {
				t.Errorf("curl: %+v", curl)
			}
			if c := by["/usr/bin/dbus-daemon-helper"]; c.IdenticalTo != "/usr/bin/dash" || c.ExecKind != "elf" || c.Severity != model.SeverityHigh {
				t.Errorf("dbus-daemon-helper: %+v", c)
			}
			if c := by["/usr/sbin/pam_timestamp_check2"]; c.IdenticalTo != "/usr/bin/dash" || c.Mode != "4755" || c.Severity != model.SeverityCritical || !hasFlag(c.Flags, "setuid") {
				t.Errorf("pam_timestamp_check2: %+v", c)
			}
			if c := by["/usr/lib/x86_64-linux-gnu/libnss_cache.so.2"]; c.ExecKind != "shared_library" || !hasFlag(c.Flags, FlagPreloaded) || c.Severity != model.SeverityHigh || c.IdenticalTo != "" {
				t.Errorf("libnss_cache: %+v", c)
			}
			// the cron job's program lies in /var/tmp: not a system
			// directory, so not a package-drift row (the persistence entry
			// describes it)
			if _, ok := by["/var/tmp/.apt/check"]; ok {
				t.Error("/var/tmp/.apt/check reported as package drift")
			}
			// merged /usr: dpkg lists /bin/dash, the file is /usr/bin/dash;
			// it is checked once and found as shipped
			if _, ok := by["/bin/dash"]; ok {
				t.Error("/bin/dash reported under its listed name")
			}
			if c := by["/usr/bin/kubelet"]; c.Change != ChangeUnowned || c.Severity != model.SeverityLow {
				t.Errorf("kubelet: %+v", c)
			}
			for _, p := range []string{"/etc/hostname", "/etc/resolv.conf"} {
				if c := by[p]; c.Change != ChangeUnowned || c.ExecKind != "exec_bit" || c.Severity != model.SeverityInfo {
					t.Errorf("%s: %+v", p, c)
				}
			}
			for _, f := range r.Findings() {
				switch {
				case f.Severity == model.SeverityInfo || testfix.HostPlanted[f.Path]:
				case testfix.HostKubelet[f.Path] && f.Severity == model.SeverityLow:
				default:
					t.Errorf("unexpected finding above info: %s %s (%s)", f.Severity, f.Summary, f.Why)
				}
			}
			if len(r.Changes) != 9 {
				t.Errorf("%d changes: %+v", len(r.Changes), r.Counts)
			}
		})
	}
}

// --all lists every checked file, the shipped ones at info with both
// digests.
func TestHostPackagesAll(t *testing.T) {
	src := hostForms(t)["dir"]
	r, err := Packages(context.Background(), src, PackageOptions{All: true, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Counts[ChangeOK] != 364 {
		t.Errorf("%d ok files", r.Counts[ChangeOK])
	}
	var dash *FileChange
	for i := range r.Changes {
		c := &r.Changes[i]
		if c.Path == "/usr/bin/dash" {
			dash = c
		}
		if c.Change == ChangeOK && (c.Severity != model.SeverityInfo || c.ActualDigest != c.ExpectedDigest || len(c.SHA256) != 64) {
			t.Errorf("%s: %+v", c.Path, c)
		}
	}
	if dash == nil || dash.ListedPath != "/bin/dash" || *dash.Package != "dash" || dash.SHA256 != "f5adb8bf0100ed0f8c7782ca5f92814e9229525a4b4e0d401cf3bea09ac960a6" {
		t.Errorf("dash: %+v", dash)
	}
	// owned files come in path order
	last := ""
	for _, c := range r.Changes {
		if c.Package == nil {
			break
		}
		if c.Path < last {
			t.Fatalf("%s after %s", c.Path, last)
		}
		last = c.Path
	}
}

// The timeline hook gives the compromise's times.
func TestHostEvents(t *testing.T) {
	src := hostForms(t)["tar.zst"]
	p, err := Persistence(context.Background(), src, PersistenceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := Packages(context.Background(), src, PackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := Events(p, k, false)
	attack := map[string]bool{}
	for i, e := range ev {
		if i > 0 && e.Time.Before(ev[i-1].Time.Time) {
			t.Fatal("events not sorted")
		}
		if e.What == "mtime" && e.Time.UTC().Format("2006-01-02 15:04:05") == "2026-11-26 21:14:05" {
			attack[e.Path] = true
		}
	}
	for _, want := range []string{"/etc/cron.d/apt-compat-check", "/var/tmp/.apt/check", "/etc/systemd/system/sysstat-collect.timer", "/etc/ld.so.preload",
		"/root/.ssh/authorized_keys", "/usr/bin/curl", "/usr/sbin/pam_timestamp_check2", "/usr/local/lib/.sysstat/collect"} {
		if !attack[want] {
			t.Errorf("no attack-time mtime event for %s", want)
		}
	}
	if all := Events(p, k, true); len(all) <= len(ev) {
		t.Errorf("all events %d, judged %d", len(all), len(ev))
	}
}

// The JSON shape: snake_case names, unknown times and owners as null.
func TestHostJSON(t *testing.T) {
	src := hostForms(t)["tar.zst"]
	p, err := Persistence(context.Background(), src, PersistenceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var cron map[string]any
	for _, e := range doc.Entries {
		if e["path"] == "/etc/cron.d/apt-compat-check" {
			cron = e
		}
		for k := range e {
			if strings.ToLower(k) != k || strings.Contains(k, "-") {
				t.Errorf("field %q", k)
			}
		}
	}
	if cron == nil || cron["owner_package"] != nil || cron["btime"] != nil || cron["mtime"] != "2026-11-26T21:14:05.000000000Z" || cron["severity"] != "high" || cron["kind"] != "cron" ||
		cron["target"] != "*/5 * * * * root /var/tmp/.apt/check >/dev/null 2>&1" || cron["enabled"] != true || cron["package_modified"] != false {
		t.Errorf("cron entry JSON: %v", cron)
	}
	fb, err := json.Marshal(p.Findings()[0])
	if err != nil || !strings.Contains(string(fb), `"analyzer":"persistence"`) || !strings.Contains(string(fb), `"details":{"path":`) {
		t.Errorf("finding JSON: %v %s", err, fb)
	}
}
