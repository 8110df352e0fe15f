package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/internal/testfix"
)

func TestCheckpointInspectArchive(t *testing.T) {
	out, stderr, code := runCLI(t, "checkpoint", "inspect", testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst"), "--ps-tree")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"Container:               forge-podman-app (a44f14ae919e952b90e66273cb43627333c5313bca51e84884e7aeecb11995c7)",
		"Pod:                     shop/shop-backend-5f6d7c8b9-abcde",
		"Stale images (ignored):  core-23.img fs-23.img ids-23.img mm-23.img pagemap-23.img",
		"1 server.sh  exe=/bin/busybox  uid=0  cmd=/bin/sh /app/server.sh\n",
		"├─ 18 sh  exe=/bin/busybox  uid=0  cmd=sh -c \"X=FORGE-SECRET-7f3a9c; while true; do sleep 1; done\"\n│  └─ 24 sleep",
		"└─ 19 dropper  exe=/usr/local/bin/dropper (container_diff)  uid=0",
		"   └─ 22 sleep  exe=/usr/local/bin/dropper (container_diff)",
		"listen=tcp/127.0.0.1:8080",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	out, _, code = runCLI(t, "checkpoint", "inspect", testfix.Fixture(t, "criu-dump", "images"), "-o", "json")
	if code != 0 {
		t.Fatal(code)
	}
	var v struct {
		CRIUVersion string `json:"criu_version"`
		Processes   []struct {
			PID     uint32 `json:"pid"`
			Threads []struct {
				TID uint32 `json:"tid"`
			} `json:"threads"`
			Sockets []struct {
				Src   string `json:"src"`
				State string `json:"state"`
			} `json:"sockets"`
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.CRIUVersion != "4.1.1" || len(v.Processes) != 1 || v.Processes[0].PID != 1360 || len(v.Processes[0].Threads) != 4 ||
		v.Processes[0].Sockets[0].Src != "127.0.0.1:9099" || v.Processes[0].Sockets[0].State != "LISTEN" {
		t.Fatalf("json %+v", v)
	}
	if _, _, code := runCLI(t, "checkpoint", "inspect", testfix.Fixture(t, "containerd-node", "GROUND_TRUTH.md")); code != 1 {
		t.Errorf("a text file: exit %d, want 1", code)
	}
	if _, _, code := runCLI(t, "checkpoint", "inspect"); code != 2 {
		t.Errorf("no source: exit %d, want 2", code)
	}
}

func TestCheckpointNode(t *testing.T) {
	node := testfix.NodeArchive(t)
	out, stderr, code := runCLI(t, "--root", node, "checkpoint", "ls", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rows []forensics.CheckpointRef
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Namespace != "default" || rows[0].Digest != "sha256:d3d78e7b9623e022a3a060efa46f163236ebf1bb9195f9ef3d9b7876b96e73b1" ||
		rows[1].Name != "containerd.io/checkpoint/"+ctrApp+":11-27-2026-02:31:57" || rows[1].Size != 480256 || rows[1].Kind != "containerd" {
		t.Fatalf("rows %+v", rows)
	}
	out, stderr, code = runCLI(t, "--root", node, "checkpoint", "inspect", "containerd.io/checkpoint/"+ctrApp+":11-27-2026-02:31:57", "--sockets")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"Container:     app (" + ctrApp + ")",
		"├─ 50 miner  exe=/tmp/.x/miner (container_diff)  uid=0",
		"fd 3 inet6 tcp LISTEN [::]:4444",
		"fd 3 inet tcp LISTEN 127.0.0.1:8080",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if _, _, code := runCLI(t, "--root", node, "checkpoint", "inspect", "d3d78e7b9623"); code != 0 {
		t.Errorf("digest prefix: exit %d", code)
	}
	if _, _, code := runCLI(t, "--root", node, "checkpoint", "inspect", "nope"); code != 1 {
		t.Errorf("unknown checkpoint: exit %d", code)
	}
}

// TestCheckpointKubelet: a node without containerd still has its kubelet
// checkpoint archives listed and opened, by content (this ".tar" is a
// zstd-compressed podman export; its time comes from the file name).
func TestCheckpointKubelet(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var", "lib", "kubelet", "checkpoints")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	name := "checkpoint-shop-backend-5f6d7c8b9-abcde_shop-app-2026-11-27T02:35:10Z.tar"
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "--root", root, "checkpoint", "ls", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rows []forensics.CheckpointRef
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Kind != "kubelet" || rows[0].Name != "var/lib/kubelet/checkpoints/"+name || rows[0].Size != int64(len(b)) ||
		rows[0].Pod != "shop-backend-5f6d7c8b9-abcde (shop-app)" || rows[0].Created.Format("15:04:05") != "02:35:10" {
		t.Fatalf("rows %+v", rows)
	}
	out, stderr, code = runCLI(t, "--root", root, "checkpoint", "inspect", name, "--files")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Format:                  podman", "Checkpointed:            2026-11-27T02:35:10Z (from file_name)", "fd 10 reg /app/server.sh O_RDONLY|O_LARGEFILE"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// TestCheckpointInspectDeepTree: a pstree of one 40,000-task parent chain
// (issue 16.7) prints a table whose indentation stops at 32 levels, a
// marker giving the depth left out, so the output is linear in the tasks.
func TestCheckpointInspectDeepTree(t *testing.T) {
	archive := filepath.Join(testfix.RepoRoot(t), "checkpoint", "testdata", "hostile", "deep-pstree.tar.zst")
	out, stderr, code := runCLI(t, "checkpoint", "inspect", archive)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	tree := lines[slices.Index(lines, "Process tree:")+1:]
	var errs, widest int
	for _, l := range tree {
		if strings.Contains(l, "error: ") {
			errs++
		} else {
			widest = max(widest, len(l))
		}
	}
	if len(tree)-errs != 40000 || errs != 40000 {
		t.Fatalf("%d tree lines, %d of them errors", len(tree), errs)
	}
	if !strings.HasPrefix(tree[0], "1 ") || !strings.Contains(tree[2], "└─ 2 ") {
		t.Fatalf("top of the tree:\n%s", strings.Join(tree[:4], "\n"))
	}
	last := tree[len(tree)-2]
	if want := strings.Repeat("   ", 31) + "└─(+39967) 40000 "; !strings.HasPrefix(last, want) {
		t.Fatalf("deepest task: %q, want prefix %q", last, want)
	}
	if widest > 200 {
		t.Fatalf("a line of %d bytes", widest)
	}
	out, _, code = runCLI(t, "checkpoint", "inspect", archive, "-o", "json")
	var v struct {
		Processes []struct {
			PID, PPID uint32
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || len(v.Processes) != 40000 || v.Processes[39999].PPID != 39999 {
		t.Fatalf("json: exit %d, %v, %d tasks", code, err, len(v.Processes))
	}
}
