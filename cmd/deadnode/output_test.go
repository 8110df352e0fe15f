package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// TestNoOutputInsideEvidence: asked to write inside the evidence, every
// writing command refuses (exit 1) and writes nothing.
func TestNoOutputInsideEvidence(t *testing.T) {
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	link := filepath.Join(t.TempDir(), "ev")
	if err := os.Symlink(filepath.Join(dir, "node", "tmp-out"), link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--root", dir, "timeline", "-f", filepath.Join(dir, "node", "timeline.jsonl")},
		{"--root", dir, "export", "4b324cab", "-f", filepath.Join(dir, "node", "etc", "x.tar")},
		{"--root", dir, "export", "4b324cab", "-f", filepath.Join(t.TempDir(), "ok.tar"), "--manifest", link},
		{"mem", "core", testfix.Fixture(t, "criu-dump", "images"), "--pid", "1360", "-f", filepath.Join(testfix.Fixture(t, "criu-dump", "images"), "core")},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != 1 || !strings.Contains(stderr, "inside the evidence") {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
	for _, p := range []string{"node/timeline.jsonl", "node/etc/x.tar", "node/tmp-out"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s was written into the evidence", p)
		}
	}
}
