package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/image"
	"github.com/deadnode/deadnode/internal/testfix"
)

func init() {
	evidenceCommandMakers = append(evidenceCommandMakers, func(root string) [][]string {
		var out [][]string
		for _, o := range []string{"table", "json"} {
			out = append(out,
				[]string{"--root", root, "image", "ls", "-o", o},
				[]string{"--root", root, "image", "inspect", "forge.local/library/busybox:1.35", "-o", o},
				[]string{"--root", root, "image", "inspect", "59633960", "-o", o},
			)
			// image verify reads every symlink target: on a writable
			// mount that can move a symlink's atime, which the
			// untouched-evidence test tolerates (readlink has no O_NOATIME).
			out = append(out, []string{"--root", root, "image", "verify", "--all", "-o", o})
		}
		return out
	})
}

const (
	lsnap     = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/"
	ctrReport = "f617888dbd39d44a9b551aa1d2562a8e3b6a4ea8b8706a48c3d608d6c52f183c"
)

func TestImageLsIsLsImages(t *testing.T) {
	root := testfix.NodeArchive(t)
	a, _, c1 := runCLI(t, "--root", root, "image", "ls", "-o", "json")
	b, _, c2 := runCLI(t, "--root", root, "ls", "images", "-o", "json")
	if c1 != 0 || c2 != 0 || a != b || !strings.Contains(a, `"forge.local/shop/app:1.0"`) {
		t.Errorf("exit %d/%d, outputs differ or lack the app image:\n%s", c1, c2, a)
	}
}

func TestImageInspect(t *testing.T) {
	root := testfix.NodeArchive(t)
	out, stderr, code := runCLI(t, "--root", root, "image", "inspect", "forge.local/library/busybox:1.35", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var reps []forensics.ImageReport
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatal(err)
	}
	// The same name in both namespaces, each with its own copy of L1.
	if len(reps) != 2 || reps[0].Namespace != "default" || reps[1].Namespace != "k8s.io" {
		t.Fatalf("%+v", reps)
	}
	for i, want := range []struct {
		dir  string
		used []string
	}{
		{lsnap + "4/fs", []string{"forge-default-cache", "forge-default-idle"}},
		{lsnap + "2/fs", []string{ctrApp, ctrReport}},
	} {
		r := reps[i]
		if r.Kind != "image" || r.Image.Config.Digest != "sha256:3930a82c3430f7004c203129436666b9749764f24c811d014ed93f851080453b" || len(r.Layers) != 1 {
			t.Fatalf("%s: %+v", r.Namespace, r)
		}
		l := r.Layers[0]
		if l.SnapshotDir != want.dir || l.ChainID != "sha256:9086f7b050af0616c686578a9f2012b655bb8efb1b137cca405a01a1d377d16e" || strings.Join(l.Containers, ",") != strings.Join(want.used, ",") {
			t.Errorf("%s: layer %+v", r.Namespace, l)
		}
	}
	// The app image by digest prefix: two records (its name, and its image
	// id as CRI names it) share the manifest. L2 is in snapshot 3, under the
	// attacked container.
	out, _, code = runCLI(t, "--root", root, "image", "inspect", "sha256:013186c8", "-o", "json")
	reps = nil
	if err := json.Unmarshal([]byte(out), &reps); err != nil || code != 0 || len(reps) != 2 {
		t.Fatalf("%d %v %s", code, err, out)
	}
	if reps[0].Name != "forge.local/shop/app:1.0" || reps[1].Name != "sha256:259696f574f3e9aafa0411eecec9cd90eda29444756aecab29b3f425f583d6a9" {
		t.Errorf("names %q %q", reps[0].Name, reps[1].Name)
	}
	for _, r := range reps {
		if len(r.Layers) != 2 || r.Layers[1].SnapshotDir != lsnap+"3/fs" ||
			r.Layers[1].ChainID != "sha256:104db5b53a3212e2ed51eb35f3e14cf310124f88f9c025faedf084e1a9390a1c" ||
			strings.Join(r.Layers[1].Containers, ",") != ctrApp {
			t.Errorf("%+v", r)
		}
	}
	if strings.Join(reps[0].Containers, ",") != ctrApp {
		t.Errorf("containers of the app image: %v", reps[0].Containers)
	}
	// A checkpoint, by digest prefix.
	out, _, code = runCLI(t, "--root", root, "image", "inspect", "d3d78e7b", "-o", "json")
	reps = nil
	if err := json.Unmarshal([]byte(out), &reps); err != nil || code != 0 || len(reps) != 1 {
		t.Fatalf("%d %v %s", code, err, out)
	}
	r := reps[0]
	if r.Kind != "checkpoint" || r.Image.Checkpoint.ImageName != "forge.local/library/busybox:1.35" || len(r.Layers) != 1 || r.Layers[0].SnapshotDir != lsnap+"4/fs" {
		t.Errorf("%+v", r)
	}
	// Unknown and ambiguous references.
	if _, stderr, code := runCLI(t, "--root", root, "image", "inspect", "nosuch:1"); code != 1 || !strings.Contains(stderr, `no image "nosuch:1" in the evidence`) {
		t.Errorf("unknown: %d %s", code, stderr)
	}
	if _, _, code := runCLI(t, "--root", root, "image", "inspect"); code != 2 {
		t.Errorf("no argument: exit %d", code)
	}
}

func TestImageVerifyFixture(t *testing.T) {
	out, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "image", "verify", "--all", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var reps []image.Verification
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 9 {
		t.Fatalf("%d reports", len(reps))
	}
	kinds := map[string]int{}
	for _, r := range reps {
		kinds[r.Kind]++
		if r.Status != "verified" {
			t.Errorf("%s %s: %s %+v", r.Namespace, r.Name, r.Status, r)
		}
		if r.Kind == "checkpoint" && len(r.Blobs) != 4 {
			t.Errorf("%s: %d blobs", r.Name, len(r.Blobs))
		}
	}
	if kinds["image"] != 7 || kinds["checkpoint"] != 2 {
		t.Errorf("kinds %v", kinds)
	}
	if _, _, code := runCLI(t, "--root", testfix.NodeArchive(t), "image", "verify"); code != 2 {
		t.Errorf("no image and no --all: exit %d", code)
	}
	if _, _, code := runCLI(t, "--root", testfix.NodeArchive(t), "image", "verify", "nosuch"); code != 1 {
		t.Errorf("unknown image: exit %d", code)
	}
}

func TestImageVerifyTampered(t *testing.T) {
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	node := filepath.Join(dir, "node")
	snap := func(p string) string { return filepath.Join(node, lsnap, p) }
	if err := os.WriteFile(snap("2/fs/etc/os-release"), []byte("NAME=evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(snap("3/fs/etc/app-old.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(node, "var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/8203f9266856eeb2721500b75aca435cf532c2582797b66cd5e2f96266b07b6e")); err != nil {
		t.Fatal(err)
	}
	// The busybox config rewritten in place, same size, other bytes.
	cfg := filepath.Join(node, "var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/3930a82c3430f7004c203129436666b9749764f24c811d014ed93f851080453b")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), `"sh"`, `"ss"`, 1)), 0o444); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "--root", dir, "-n", "k8s.io", "image", "verify", "forge.local/shop/app:1.0", "forge.local/pause:3.9", "forge.local/library/busybox:1.35", "-o", "json")
	if code != 0 {
		t.Fatalf("tampering found must exit 0, got %d: %s", code, stderr)
	}
	var reps []image.Verification
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 3 || reps[0].Name != "forge.local/library/busybox:1.35" || reps[1].Name != "forge.local/pause:3.9" || reps[2].Name != "forge.local/shop/app:1.0" {
		t.Fatalf("%+v", reps)
	}
	bb := reps[0]
	if bb.Status != "tampered" || strings.Join(bb.Corrupt, ",") != "sha256:3930a82c3430f7004c203129436666b9749764f24c811d014ed93f851080453b" ||
		len(bb.Layers) != 1 || bb.Layers[0].Status != "unverifiable" || bb.Layers[0].Reason != "no diff_id for this layer in the config" {
		t.Errorf("busybox: %+v", bb)
	}
	p := reps[1]
	if p.Status != "unverifiable" || p.Layers[0].Status != "unverifiable" || p.Layers[0].Reason != "blob absent" ||
		strings.Join(p.Missing, ",") != "sha256:8203f9266856eeb2721500b75aca435cf532c2582797b66cd5e2f96266b07b6e" {
		t.Errorf("pause: %+v", p)
	}
	a := reps[2]
	if a.Status != "tampered" || len(a.Layers) != 2 {
		t.Fatalf("app: %+v", a)
	}
	l0, l1 := a.Layers[0], a.Layers[1]
	if l0.Status != "tampered" || l0.SnapshotDir != lsnap+"2/fs" || len(l0.Differences) != 1 ||
		l0.Differences[0].Path != "/etc/os-release" || l0.Differences[0].What != "content" || l0.Differences[0].Detail != "size tar: 39, disk: 10" {
		t.Errorf("L1: %+v", l0)
	}
	if l1.Status != "tampered" || l1.SnapshotDir != lsnap+"3/fs" || len(l1.Differences) != 1 ||
		l1.Differences[0].Path != "/etc/app-old.conf" || l1.Differences[0].What != "missing_on_disk" {
		t.Errorf("L2: %+v", l1)
	}
	// The table names the paths too.
	out, _, code = runCLI(t, "--root", dir, "-n", "k8s.io", "image", "verify", "forge.local/shop/app:1.0")
	if code != 0 || !strings.Contains(out, "/etc/os-release") || !strings.Contains(out, "missing_on_disk") {
		t.Errorf("table: %d\n%s", code, out)
	}
}
