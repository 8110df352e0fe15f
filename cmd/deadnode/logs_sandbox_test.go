package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A CRI-O sandbox whose metadata names no pod (a damaged or hand-made
// record): logs says it is a sandbox, it does not crash on the missing pod.
func TestLogsSandboxWithoutPod(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var/lib/containers/storage/overlay-containers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := `[{"id":"aaaaaaaaaaaa","names":["x"],"layer":"","metadata":"{\"pod\":true,\"pod-id\":\"aaaaaaaaaaaa\"}","created":"2026-01-01T00:00:00Z"}]`
	if err := os.WriteFile(filepath.Join(dir, "containers.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, "--root", root, "logs", "aaaaaaaaaaaa")
	if code != 1 || !strings.Contains(stderr, "aaaaaaaaaaaa is a pod sandbox: it writes no log\n") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
