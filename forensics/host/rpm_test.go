package host

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/forensics/model"
)

// testdata/rpm/rpm-root.tar.gz: two packages built with rpmbuild and
// installed by the real rpm 4.18 into an SQLite rpmdb, then tampered with
// (make-rpm-root.sh); rpm-qa.txt, rpm-files.txt and rpm-Va.txt are what the
// real rpm said of it.
const rpmRoot = "testdata/rpm/rpm-root.tar.gz"

func rpmForms(t *testing.T) map[string]evidence.Source {
	t.Helper()
	a, err := evidence.OpenArchive(context.Background(), rpmRoot, nil)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("extracting the rpm root with its setuid files and owners needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "--numeric-owner", "-xpzf", rpmRoot, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	d, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); d.Close() })
	return map[string]evidence.Source{"tar.gz": a, "dir": d}
}

func readLines(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "rpm", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

// The header parser reads what rpm -qa and rpm -qa --qf '[%{FILENAMES}
// %{FILEDIGESTS} %{FILEMODES:octal} %{FILEFLAGS}]' print.
func TestRPMDatabase(t *testing.T) {
	for form, src := range rpmForms(t) {
		t.Run(form, func(t *testing.T) {
			db, err := OpenPackageDB(context.Background(), src)
			if err != nil {
				t.Fatal(err)
			}
			if db.Format != FormatRPM || db.Path != "/var/lib/rpm/rpmdb.sqlite" || len(db.Warnings) != 0 {
				t.Fatalf("%s %s %q", db.Format, db.Path, db.Warnings)
			}
			var got []string
			for _, p := range db.Packages {
				v := p.Version
				if !strings.Contains(v, ":") {
					v = "0:" + v
				}
				got = append(got, p.Name+" "+v+" "+p.Architecture)
			}
			if want := readLines(t, "rpm-qa.txt"); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			files := readLines(t, "rpm-files.txt")
			if len(files) != 11 {
				t.Fatalf("rpm-files.txt: %d lines", len(files))
			}
			for _, l := range files {
				f := strings.Fields(l)
				path, digest, mode, flags := f[0], "", f[len(f)-2], f[len(f)-1]
				if len(f) == 4 {
					digest = f[1]
				}
				of := db.Owner(path)
				if of == nil {
					t.Errorf("%s: not owned", path)
					continue
				}
				m, _ := strconv.ParseUint(mode, 8, 32)
				fl, _ := strconv.Atoi(flags)
				if of.Digest != digest || of.Mode != vfs.FromUnixMode(uint32(m)) || of.Conffile != (fl&1 != 0) || of.Ghost != (fl&rpmFileGhost != 0) {
					t.Errorf("%s: digest %s mode %v conffile %v ghost %v; rpm says %s", path, of.Digest, of.Mode, of.Conffile, of.Ghost, l)
				}
				if digest != "" && of.Algo != AlgoSHA256 {
					t.Errorf("%s: algo %s", path, of.Algo)
				}
			}
		})
	}
}

// Package drift finds what rpm -Va finds, and the unowned files beside.
func TestRPMPackages(t *testing.T) {
	for form, src := range rpmForms(t) {
		t.Run(form, func(t *testing.T) {
			r, err := Packages(context.Background(), src, PackageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			by := map[string]FileChange{}
			for _, c := range r.Changes {
				by[c.Path] = c
			}
			// every file rpm -V reports, we report
			for _, l := range readLines(t, "rpm-Va.txt") {
				p := l[strings.LastIndexByte(l, ' ')+1:]
				if _, ok := by[p]; !ok {
					t.Errorf("rpm -V reports %q; we do not", l)
				}
			}
			tampered := sha256.Sum256(mustRead(t, src, "usr/bin/dn-agent"))
			want := []struct {
				path, change string
				sev          model.Severity
			}{
				{"/usr/bin/dn-agent", ChangeModified, model.SeverityHigh},
				{"/etc/dn-agent/agent.conf", ChangeConffileModified, model.SeverityInfo},
				{"/usr/share/doc/deadnode-agent/README", ChangeMissing, model.SeverityInfo},
				{"/usr/bin/dn-tool", ChangeTypeChanged, model.SeverityHigh},
				{"/usr/libexec/dn-helper", ChangeModeChanged, model.SeverityHigh},
				{"/usr/sbin/dn-report-copy", ChangeUnowned, model.SeverityHigh},
				{"/usr/bin/.dn-suid", ChangeSetuidUnowned, model.SeverityCritical},
			}
			for _, w := range want {
				c, ok := by[w.path]
				if !ok || c.Change != w.change || c.Severity != w.sev {
					t.Errorf("%s: %s %s; want %s %s", w.path, c.Change, c.Severity, w.change, w.sev)
				}
			}
			if len(r.Changes) != len(want) {
				t.Errorf("%d changes, want %d: %v", len(r.Changes), len(want), r.Counts)
			}
			if c := by["/usr/bin/dn-agent"]; c.ExpectedDigest != "97ebd3da54aca0dcd1795b6e319b8d47b83d4051d5630975f942d647e990a296" || c.ActualDigest != hex.EncodeToString(tampered[:]) || c.DigestAlgo != AlgoSHA256 || c.ExecKind != "elf" {
				t.Errorf("dn-agent: %+v", c)
			}
			if c := by["/usr/bin/dn-tool"]; c.Type != "symlink" || c.ListedType != "file" || c.LinkTarget != "/tmp/.t" {
				t.Errorf("dn-tool: %+v", c)
			}
			if c := by["/usr/libexec/dn-helper"]; c.Mode != "4755" || c.ListedMode != "0755" {
				t.Errorf("dn-helper: %+v", c)
			}
			for _, p := range []string{"/usr/sbin/dn-report-copy", "/usr/bin/.dn-suid"} {
				if c := by[p]; c.IdenticalTo != "/usr/bin/dn-report" || c.ExecKind != "script" {
					t.Errorf("%s: %+v", p, c)
				}
			}
			// the %ghost log file is not installed, and not missing
			if _, ok := by["/var/log/dn-agent.log"]; ok {
				t.Error("ghost file reported")
			}
		})
	}
}

func mustRead(t *testing.T, src evidence.Source, name string) []byte {
	t.Helper()
	b, err := evidence.ReadFile(src, name, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Persistence on an rpm host: ownership from rpmdb.sqlite.
func TestRPMPersistence(t *testing.T) {
	for form, src := range rpmForms(t) {
		t.Run(form, func(t *testing.T) {
			r, err := Persistence(context.Background(), src, PersistenceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.PackageDB != FormatRPM {
				t.Errorf("package db %q", r.PackageDB)
			}
			by := map[string]Entry{}
			for _, e := range r.Entries {
				by[e.Path] = e
			}
			if e := by["/etc/cron.d/dn-agent"]; e.OwnerPackage == nil || *e.OwnerPackage != "deadnode-agent" || e.Severity != model.SeverityInfo || e.Target != "0 4 * * * root /usr/bin/dn-agent --rotate" {
				t.Errorf("dn-agent cron: %+v", e)
			}
			if e := by["/etc/cron.d/dn-update"]; e.OwnerPackage != nil || e.Severity != model.SeverityHigh || !hasFlag(e.Flags, FlagFetchRun) {
				t.Errorf("dn-update cron: %+v", e)
			}
			// the unit is owned, the link made by hand: no deb-systemd-helper
			// on an rpm host, so the link stays info
			if e := by["/etc/systemd/system/multi-user.target.wants/dn-agent.service"]; e.Unit == nil || e.Severity != model.SeverityInfo || e.Target != "/usr/bin/dn-agent" || !e.Enabled ||
				*e.Unit.FileOwnerPackage != "deadnode-agent" {
				t.Errorf("dn-agent link: %+v", e)
			}
			// the unit runs a package binary someone modified: the unit
			// itself is as shipped
			if e := by["/usr/lib/systemd/system/dn-agent.service"]; e.Severity != model.SeverityInfo || !e.Enabled {
				t.Errorf("dn-agent unit: %+v", e)
			}
		})
	}
}

// A Berkeley DB rpm database (a real one, made by db_load) is refused with
// a message that names it, and persistence goes on without it.
func TestRPMBerkeleyRefused(t *testing.T) {
	bdb, err := os.ReadFile("testdata/rpm/bdb-Packages")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "var/lib/rpm"), 0o755)
	os.WriteFile(filepath.Join(dir, "var/lib/rpm/Packages"), bdb, 0o644)
	os.MkdirAll(filepath.Join(dir, "etc/cron.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/cron.d/x"), []byte("* * * * * root /usr/bin/true\n"), 0o644)
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = OpenPackageDB(context.Background(), src)
	if err == nil || !strings.Contains(err.Error(), "/var/lib/rpm/Packages: this rpm database is a Berkeley DB hash file") {
		t.Errorf("err %v", err)
	}
	r, err := Persistence(context.Background(), src, PersistenceOptions{})
	if err != nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0].String(), "Berkeley DB") || len(r.Entries) != 1 || r.Entries[0].OwnerPackage != nil {
		t.Errorf("persistence: %v %q %+v", err, r.Warnings, r.Entries)
	}
	// a Packages file of another format is named as unknown
	os.WriteFile(filepath.Join(dir, "var/lib/rpm/Packages"), make([]byte, 64), 0o644)
	if _, err := OpenPackageDB(context.Background(), src); err == nil || !strings.Contains(err.Error(), "does not recognise") {
		t.Errorf("err %v", err)
	}
}
