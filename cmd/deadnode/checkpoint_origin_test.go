package main

import (
	"encoding/json"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// TestCheckpointExeOriginFromNode: a containerd checkpoint read from the
// node tells which executables were in the image and which only in the
// container's diff.
func TestCheckpointExeOriginFromNode(t *testing.T) {
	out, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "checkpoint", "inspect", "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var cp struct {
		Processes []struct {
			PID       int    `json:"pid"`
			Exe       string `json:"exe"`
			ExeOrigin string `json:"exe_origin"`
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &cp); err != nil {
		t.Fatal(err)
	}
	want := map[int]string{1: "image", 8: "image", 50: "container_diff", 91: "container_diff", 51: "image", 93: "image"}
	if len(cp.Processes) != len(want) {
		t.Fatalf("%d processes", len(cp.Processes))
	}
	for _, p := range cp.Processes {
		if p.ExeOrigin != want[p.PID] {
			t.Errorf("pid %d (%s): origin %q, want %q", p.PID, p.Exe, p.ExeOrigin, want[p.PID])
		}
	}
}
