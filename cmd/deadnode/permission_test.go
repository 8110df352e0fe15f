package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// Issue 15: as an unprivileged user, on an extracted node whose
// /var/lib/containerd is root-only (0700, as the node had it), deadnode
// says that it may not read that path — never that the node ran no
// containers.
func TestPermissionDeniedNamesThePath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to extract the fixture and to run as nobody (CI runs as root)")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatal("setpriv (util-linux) is needed")
	}
	base := filepath.Join(os.TempDir(), "deadnode-perm-"+strings.ReplaceAll(t.Name(), "/", "_"))
	os.RemoveAll(base)
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	bin := filepath.Join(base, "deadnode")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	node := filepath.Join(base, "node")
	if err := os.Mkdir(node, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpzf", testfix.NodeArchive(t), "-C", node).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	ctd := filepath.Join(node, "node/var/lib/containerd")
	if err := os.Chmod(ctd, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "--root", node, "ls", "containers")
	out, err := cmd.CombinedOutput()
	s := string(out)
	if err == nil || !strings.Contains(s, "permission denied") || !strings.Contains(s, "/var/lib/containerd") || strings.Contains(s, "no container runtime found") {
		t.Errorf("as nobody: %v\n%s", err, s)
	}
	// The same evidence as root reads.
	if out, err := exec.Command(bin, "--root", node, "ls", "containers").CombinedOutput(); err != nil || !strings.Contains(string(out), "4b324cab2548") {
		t.Errorf("as root: %v\n%s", err, out)
	}
}
