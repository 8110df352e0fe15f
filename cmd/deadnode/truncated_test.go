package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// Issue 16 (degraded): a .tar.gz cut short keeps saying that it ends in a
// damaged member, before whatever error follows — the examiner must not
// conclude from "no container runtime found" that the node ran none.
func TestTruncatedCollectionSaysSo(t *testing.T) {
	b, err := os.ReadFile(testfix.NodeArchive(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, pct := range []int{30, 60, 90} {
		p := filepath.Join(t.TempDir(), "cut.tar.gz")
		if err := os.WriteFile(p, b[:len(b)*pct/100], 0o644); err != nil {
			t.Fatal(err)
		}
		for _, cache := range []string{"--no-cache", "--cache=" + t.TempDir()} {
			_, stderr, _ := runCLI(t, "--root", p, "ls", "containers", cache)
			i := strings.Index(stderr, "archive ends in a damaged member")
			if i < 0 {
				t.Errorf("%d%% %s: no damage warning:\n%s", pct, cache, stderr)
				continue
			}
			if j := strings.Index(stderr, "deadnode ls:"); j >= 0 && j < i {
				t.Errorf("%d%% %s: the warning comes after the error:\n%s", pct, cache, stderr)
			}
		}
	}
}
