package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

const ckptImage = "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96"

// Issue 16.8: with the evidence directory bind-mounted at a second path,
// no command writes through the bind mount (or a link to it) into the
// evidence.
func TestOutputsIntoEvidenceThroughBindMount(t *testing.T) {
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	bind := t.TempDir()
	if err := syscall.Mount(dir, bind, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	defer syscall.Unmount(bind, syscall.MNT_DETACH)
	link := filepath.Join(t.TempDir(), "ev")
	if err := os.Symlink(bind, link); err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, dir)
	for _, base := range []string{bind, link, filepath.Join(bind, "node", "var")} {
		for _, args := range [][]string{
			{"--root", dir, "timeline", "-f", filepath.Join(base, "x.body"), "--format", "bodyfile"},
			{"--root", dir, "export", ctrApp, "-f", filepath.Join(base, "x.tar")},
			{"--root", dir, "export", ctrApp, "-f", filepath.Join(t.TempDir(), "ok.tar"), "--manifest", filepath.Join(base, "m.json")},
			{"--root", dir, "mem", "core", ckptImage, "--pid", "1", "-f", filepath.Join(base, "core")},
			{"--root", dir, "mem", "dump", ckptImage, "--pid", "1", "--all", "-d", filepath.Join(base, "dump")},
			{"--root", dir, "mount", ctrApp, filepath.Join(base, "mnt")},
		} {
			_, stderr, code := runCLI(t, args...)
			if code != 1 || !strings.Contains(stderr, "refusing to write") {
				t.Errorf("%v: exit %d, %s", args, code, stderr)
			}
		}
	}
	if d := diffPrints(before, fingerprint(t, dir)); len(d) > 0 {
		t.Errorf("the evidence changed: %v", d)
	}
}

// Issue 16.9: the evidence archive is never opened for writing, --force or
// not, by its own path, a link, or a hard link to it.
func TestEvidenceArchiveNeverOverwritten(t *testing.T) {
	tmp := t.TempDir()
	ev := filepath.Join(tmp, "evidence.tar.gz")
	b, err := os.ReadFile(testfix.NodeArchive(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ev, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(b)
	sym, hard := filepath.Join(tmp, "sym.tar"), filepath.Join(tmp, "hard.tar")
	os.Symlink(ev, sym)
	os.Link(ev, hard)
	for _, out := range []string{ev, sym, hard} {
		for _, args := range [][]string{
			{"--root", ev, "export", ctrApp, "--force", "-f", out},
			{"--root", ev, "export", ctrApp, "--force", "-f", filepath.Join(tmp, "x.tar"), "--manifest", out},
			{"--root", ev, "timeline", "-f", out},
		} {
			_, stderr, code := runCLI(t, args...)
			if code != 1 || !strings.Contains(stderr, "refusing to write") {
				t.Errorf("%v: exit %d, %s", args, code, stderr)
			}
		}
	}
	got, err := os.ReadFile(ev)
	if err != nil || sha256.Sum256(got) != want {
		t.Fatalf("the evidence archive changed (%d bytes, %v)", len(got), err)
	}
}

// Issue 16.12: a layer that is a link out of the evidence (here the
// container's upper dir made a link to the host's /etc) is refused, never
// handed to the kernel; a mount point inside the evidence is refused.
func TestMountRefusesLinkedLayers(t *testing.T) {
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	fsdir := filepath.Join(dir, "node/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs")
	if err := os.RemoveAll(fsdir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", fsdir); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	_, stderr, code := runCLI(t, "--root", dir, "mount", ctrApp, mnt)
	if code != 1 || !strings.Contains(stderr, "symbolic link") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
		syscall.Unmount(mnt, syscall.MNT_DETACH)
		t.Fatalf("something was mounted: %d entries", len(ents))
	}
	// The snapshot directory itself a link.
	snap := filepath.Dir(fsdir)
	os.Rename(snap, snap+".real")
	os.Symlink("/", snap)
	_, stderr, code = runCLI(t, "--root", dir, "mount", ctrApp, mnt)
	if code != 1 || !strings.Contains(stderr, "symbolic link") {
		t.Errorf("snapshot dir a link: exit %d: %s", code, stderr)
	}
}

// A hard link, outside the evidence, to a file inside a directory of
// evidence: --force refuses to truncate it (the evidence's own file would
// change), for every command that writes.
func TestForceRefusesHardLinkIntoEvidence(t *testing.T) {
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	inside := filepath.Join(dir, "node/etc/containerd/config.toml")
	before, err := os.ReadFile(inside)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Link(inside, out); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--root", dir, "timeline", "-f", out, "--force"},
		{"--root", dir, "export", ctrApp, "-f", out, "--force"},
		{"--root", dir, "triage", "-f", out, "--force"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != 1 || !strings.Contains(stderr, "refusing to overwrite "+out+": the file has 2 hard links") {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
	if after, err := os.ReadFile(inside); err != nil || string(after) != string(before) {
		t.Fatalf("the evidence's /etc/containerd/config.toml changed: %q %v", after, err)
	}
}

// Outputs are opened before the work: an existing manifest or report is
// refused before a tar is written or a triage is run, and the manifest
// may not be the tar itself, --force or not.
func TestOutputsCheckedFirst(t *testing.T) {
	root := testfix.NodeArchive(t)
	dir := t.TempDir()
	tarPath, man, rep := filepath.Join(dir, "x.tar"), filepath.Join(dir, "man.json"), filepath.Join(dir, "r.html")
	os.WriteFile(man, []byte("old"), 0o644)
	os.WriteFile(rep, []byte("old"), 0o644)
	if _, stderr, code := runCLI(t, "--root", root, "export", ctrApp, "-f", tarPath, "--manifest", man); code != 1 || !strings.Contains(stderr, man+" exists (use --force to overwrite)") {
		t.Errorf("export: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(tarPath); !os.IsNotExist(err) {
		t.Errorf("the tar was made before the manifest was refused: %v", err)
	}
	if _, stderr, code := runCLI(t, "--root", root, "export", ctrApp, "-f", tarPath, "--manifest", tarPath, "--force"); code != 2 || !strings.Contains(stderr, "--manifest "+tarPath+" is the tar itself") {
		t.Errorf("export onto itself: exit %d, %s", code, stderr)
	}
	if out, stderr, code := runCLI(t, "--root", root, "triage", "-f", rep); code != 1 || out != "" || !strings.Contains(stderr, rep+" exists (use --force to overwrite)") {
		t.Errorf("triage: exit %d, %q %s", code, out, stderr)
	}
	if b, _ := os.ReadFile(rep); string(b) != "old" {
		t.Errorf("report changed: %q", b)
	}
}
