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

// TestMemFileBackedFromNode: pages of the miner's text that CRIU did not
// dump are read from the container's own filesystem on the node and say so.
func TestMemFileBackedFromNode(t *testing.T) {
	out, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "mem", "maps", "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", "--pid", "50", "--ranges", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var maps []struct {
		Start  string `json:"start"`
		Ranges []struct {
			Start, End, Provenance, Source string
		} `json:"ranges"`
	}
	if err := json.Unmarshal([]byte(out), &maps); err != nil {
		t.Fatal(err)
	}
	if len(maps) == 0 || maps[0].Start != "0x400000" || len(maps[0].Ranges) != 1 {
		t.Fatalf("maps %+v", maps)
	}
	r := maps[0].Ranges[0]
	if r.Provenance != "file" || r.Source != "/tmp/.x/miner" || r.End != "0x401000" {
		t.Errorf("first page of the miner: %+v", r)
	}
}
