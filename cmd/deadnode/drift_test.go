package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

func TestDriftCLI(t *testing.T) {
	arch := testfix.NodeArchive(t)
	out, stderr, code := runCLI(t, "--root", arch, "drift", "shop/shop-frontend-7d9c8b6f5-x2k4q/app", "--exec-only", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var fs []map[string]any
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range fs {
		paths = append(paths, f["path"].(string))
		for _, k := range []string{"container_id", "namespace", "pod", "container_name", "path", "change", "type", "size", "mode", "uid", "gid", "atime", "mtime", "ctime", "sha256", "lower_sha256", "exec_kind", "flags", "identical_to", "evidence_path"} {
			if _, ok := f[k]; !ok {
				t.Errorf("%s lacks %s", f["path"], k)
			}
		}
	}
	// Executables only: the miner, the two scripts, and runc's empty 0755
	// mount points (exec bit, flagged benign).
	want := "/etc/hostname /etc/hosts /etc/resolv.conf /tmp/.x/miner /usr/local/bin/backdoor.sh /var/tmp/.kworker"
	if strings.Join(paths, " ") != want {
		t.Errorf("exec-only paths %v", paths)
	}
	table, _, _ := runCLI(t, "--root", arch, "drift", "4b324cab")
	lines := strings.Split(table, "\n")
	if !strings.Contains(lines[0], "14 findings") || !strings.Contains(lines[2], "/tmp/.x/miner") || !strings.Contains(lines[2], "identical to /bin/busybox") {
		t.Errorf("table (executables first):\n%s", table)
	}
	if _, _, code := runCLI(t, "--root", arch, "drift"); code != 2 {
		t.Errorf("drift without containers: exit %d", code)
	}
	out, _, code = runCLI(t, "drift", "--checkpoint", testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst"), "-o", "jsonl")
	if code != 0 || !strings.Contains(out, `"path":"/usr/local/bin/dropper","change":"added_or_modified","type":"file"`) || !strings.Contains(out, `"path":"/etc/motd","change":"deleted"`) {
		t.Errorf("checkpoint drift: %d\n%s", code, out)
	}
}
