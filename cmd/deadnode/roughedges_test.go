package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// disk ls decides by content, as --root does: a collection, a directory
// or an unknown file is refused, never listed as a raw disk of one volume.
func TestDiskLsRefusesWhatIsNoDisk(t *testing.T) {
	node := testfix.Fixture(t, "containerd-node", "containerd-node.tar.gz")
	png := filepath.Join(t.TempDir(), "shot.png")
	os.WriteFile(png, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), 0o644)
	for _, c := range []struct{ arg, want string }{
		{node, node + ": a tar.gz collection, not a disk image (give it as --root to read it)"},
		{filepath.Dir(node), filepath.Dir(node) + ": a directory, not a disk image (give it as --root to read it)"},
		{png, png + ": unsupported evidence format: a PNG image"},
	} {
		out, stderr, code := runCLI(t, "disk", "ls", c.arg)
		if code != 1 || out != "" || !strings.HasPrefix(stderr, "deadnode disk ls: "+c.want) {
			t.Errorf("disk ls %s: exit %d, stdout %q, stderr %q", c.arg, code, out, stderr)
		}
	}
}

// mem core offers the --force its "exists" error names.
func TestMemCoreForce(t *testing.T) {
	imgs := testfix.Fixture(t, "criu-dump", "images")
	core := filepath.Join(t.TempDir(), "core")
	os.WriteFile(core, []byte("old"), 0o644)
	_, stderr, code := runCLI(t, "mem", "core", imgs, "--pid", "1360", "-f", core)
	if code != 1 || !strings.Contains(stderr, core+" exists (use --force to overwrite)") {
		t.Fatalf("without --force: exit %d %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "mem", "core", imgs, "--pid", "1360", "-f", core, "--force"); code != 0 {
		t.Fatalf("--force: exit %d %s", code, stderr)
	}
	if st, err := os.Stat(core); err != nil || st.Size() != 25591808 {
		t.Fatalf("core after --force: %v %v", st, err)
	}
}

// A file the container deleted: fs cat and fs stat say the image has it
// and how to read it; a path that never existed gets no such hint.
func TestFsDeletedHint(t *testing.T) {
	node := testfix.Fixture(t, "containerd-node", "containerd-node.tar.gz")
	hint := " (the image has it: the container deleted or hid it; --image reads the image's version)\n"
	for _, cmd := range []string{"cat", "stat"} {
		_, stderr, code := runCLI(t, "--root", node, "fs", cmd, "4b324", "/etc/motd")
		if code != 1 || !strings.HasSuffix(stderr, "/etc/motd: file does not exist"+hint) {
			t.Errorf("fs %s of a deleted file: exit %d %q", cmd, code, stderr)
		}
		_, stderr, code = runCLI(t, "--root", node, "fs", cmd, "4b324", "/etc/never")
		if code != 1 || !strings.HasSuffix(stderr, "/etc/never: file does not exist\n") {
			t.Errorf("fs %s of a missing file: exit %d %q", cmd, code, stderr)
		}
	}
	out, _, code := runCLI(t, "--root", node, "fs", "cat", "4b324", "/etc/motd", "--image")
	if code != 0 || out != "Welcome to forge busybox base (lower layer file, deleted at runtime by attacker)\n" {
		t.Errorf("fs cat --image: exit %d %q", code, out)
	}
}

// drift says which containers it read and found unchanged, instead of
// printing a bare header.
func TestDriftSaysNoDrift(t *testing.T) {
	node := testfix.Fixture(t, "containerd-node", "containerd-node.tar.gz")
	out, _, code := runCLI(t, "--root", node, "drift", "forge-default-idle")
	if code != 0 || out != "container forge-default-idle: no drift\n" {
		t.Errorf("drift of an unchanged container: exit %d %q", code, out)
	}
	out, _, _ = runCLI(t, "--root", node, "drift", "--all", "--exec-only")
	if !strings.HasSuffix(out, "container forge-default-cache: no executable drift\ncontainer forge-default-idle: no executable drift\n") {
		t.Errorf("drift --all --exec-only:\n%s", out)
	}
}
