// Package testfix finds and prepares the real fixtures for tests: the
// node collection committed under testdata/ and the shared fixtures beside
// the checkout. Tests that need root (extracting whiteouts and trusted.*
// xattrs) fail rather than skip when not run as root: CI runs as root.
package testfix

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// NodeArchive is the committed containerd node collection.
func NodeArchive(t testing.TB) string {
	return filepath.Join(RepoRoot(t), "testdata", "containerd-node", "containerd-node.tar.gz")
}

// Shared returns a path inside ../shared/fixtures, failing when absent.
func Shared(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{RepoRoot(t), "..", "shared", "fixtures"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared fixture missing: %v", err)
	}
	return p
}

// Extract unpacks a tar archive with its xattrs, devices and owners into a
// fresh temp dir, as an examiner's extracted copy would be, and returns it.
func Extract(t testing.TB, archive string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("extracting the fixture with its whiteouts and trusted.* xattrs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	cmd := exec.Command("tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", archive, "-C", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x %s: %v\n%s", archive, err, out)
	}
	return dir
}
