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
