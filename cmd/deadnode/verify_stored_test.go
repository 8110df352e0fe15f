package main

import (
	"encoding/json"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

func TestImageVerifyDockerAndPodman(t *testing.T) {
	for _, c := range []struct{ archive, runtime string }{{"docker-root.tar.gz", "docker"}, {"storage-root.tar.gz", "containers-storage"}} {
		out, stderr, code := runCLI(t, "--root", testfix.Fixture(t, "runtimes-c1", c.archive), "image", "verify", "--all", "-o", "json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.archive, code, stderr)
		}
		var reps []struct {
			Runtime, Name, Status string
			Layers                []struct {
				Status string
				DiffID string `json:"diff_id"`
			}
		}
		if err := json.Unmarshal([]byte(out), &reps); err != nil {
			t.Fatal(err)
		}
		if len(reps) != 2 || reps[0].Name != "forge.local/shop/web:1.4" || len(reps[0].Layers) != 3 || reps[1].Name != "forge.local/base/bbox:1.35-c1" {
			t.Fatalf("%s: %+v", c.archive, reps)
		}
		for _, r := range reps {
			if r.Runtime != c.runtime || r.Status != "verified" {
				t.Errorf("%s: %+v", c.archive, r)
			}
		}
		if reps[0].Layers[0].DiffID != "sha256:03936a86dced807a48655bdb473b69bd3eb651a018fc8324fcb6f401d908a28a" {
			t.Errorf("base diff_id %s", reps[0].Layers[0].DiffID)
		}
	}
}
