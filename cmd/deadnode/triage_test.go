package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

func triageJSON(t *testing.T, root string, args ...string) *forensics.Case {
	t.Helper()
	out, stderr, code := runCLI(t, append([]string{"--root", root, "triage", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("triage: exit %d: %s", code, stderr)
	}
	var cs forensics.Case
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatalf("triage JSON: %v", err)
	}
	return &cs
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// findingOf returns the worst finding about a path (in a container).
func findingOf(cs *forensics.Case, ctr, path string) *model.Finding {
	var best *model.Finding
	for i := range cs.Findings {
		f := &cs.Findings[i]
		if f.Path == path && (ctr == "" || f.ContainerID == ctr) && (best == nil || f.Severity > best.Severity) {
			best = f
		}
	}
	return best
}

// Issue 14 "Done when", on real nodes: the attacked container first, its
// dropped setuid copy and its cron persistence high or above, the runc
// mount points not above low, the evidence's sha256 recorded.
func TestTriageRanksTheAttackedContainer(t *testing.T) {
	docker := testfix.Fixture(t, "runtimes-c1", "docker-root.tar.gz")
	for _, form := range []string{"tar.gz", "dir"} {
		t.Run(form, func(t *testing.T) {
			root := docker
			if form == "dir" {
				root = testfix.Extract(t, docker)
			}
			cs := triageJSON(t, root)
			if len(cs.Containers) == 0 || cs.Containers[0].ID != gDockerWeb || cs.Containers[0].Risk != model.SeverityCritical {
				t.Fatalf("first container %+v", cs.Containers[0])
			}
			for path, min := range map[string]model.Severity{
				"/var/tmp/.X11-unix/.font-cache/kswapd0": model.SeverityCritical, // a setuid copy of busybox
				"/etc/periodic/.hourly":                  model.SeverityHigh,     // busybox cron persistence
				"/bin/busybox":                           model.SeverityHigh,     // setuid bit added
			} {
				if f := findingOf(cs, gDockerWeb, path); f == nil || f.Severity < min {
					t.Errorf("%s: %+v, want >= %v", path, f, min)
				}
			}
			for _, p := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/.dockerenv"} {
				if f := findingOf(cs, "", p); f != nil && f.Severity > model.SeverityLow {
					t.Errorf("runtime mount point %s at %v", p, f.Severity)
				}
			}
			if form == "tar.gz" {
				if cs.Evidence.SHA256 == nil || *cs.Evidence.SHA256 != fileSHA(t, docker) {
					t.Errorf("evidence sha256 %v", cs.Evidence.SHA256)
				}
			} else if cs.Evidence.SHA256 != nil || cs.Evidence.SHA256Note == "" {
				t.Errorf("a directory has no hash but a reason: %+v", cs.Evidence)
			}
			if cs.Tool.Name != "deadnode" || cs.Tool.Version == "" || cs.GeneratedAt.IsZero() || len(cs.CommandLine) == 0 {
				t.Errorf("custody facts %+v %v %v", cs.Tool, cs.GeneratedAt, cs.CommandLine)
			}
			// Findings are sorted by severity.
			for i := 1; i < len(cs.Findings); i++ {
				if cs.Findings[i].Severity > cs.Findings[i-1].Severity {
					t.Fatalf("finding %d ranked above %d", i, i-1)
				}
			}
		})
	}
}

// The checkpointed process running from the container diff is high or
// above, on the Podman node with its checkpoint archive given, and on the
// containerd node with the checkpoint found in its content store.
func TestTriageCheckpointedProcess(t *testing.T) {
	cs := triageJSON(t, testfix.Fixture(t, "runtimes-c1", "storage-root.tar.gz"),
		"--checkpoint", testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst"))
	if cs.Containers[0].ID != gPodmanCart {
		t.Errorf("first container %s", cs.Containers[0].ID)
	}
	if f := findingOf(cs, gPodmanCart, "/usr/lib/.x11-cache/kthreadd2"); f == nil || f.Severity < model.SeverityCritical {
		t.Errorf("setuid copy: %+v", f)
	}
	var proc *model.Finding
	for i := range cs.Findings {
		if cs.Findings[i].Kind == "process_from_container_diff" {
			proc = &cs.Findings[i]
			break
		}
	}
	if proc == nil || proc.Severity < model.SeverityHigh || proc.Path != "/usr/local/bin/dropper" || *proc.Pid != 19 {
		t.Errorf("checkpointed process: %+v", proc)
	}
	node := triageJSON(t, testfix.NodeArchive(t))
	if node.Containers[0].ID != gApp {
		t.Errorf("containerd node: first %s", node.Containers[0].ID)
	}
	if f := findingOf(node, gApp, "/tmp/.x/miner"); f == nil || f.Severity < model.SeverityHigh {
		t.Errorf("containerd miner: %+v", f)
	}
}

// The triage table's head counts in words a person reads ("1 finding",
// not "1 findings") and says what the evidence does not record.
func TestTriageTableHead(t *testing.T) {
	root := testfix.Fixture(t, "containerd-node", "containerd-node.tar.gz")
	out, stderr, code := runCLI(t, "--root", root, "triage")
	if code != 0 {
		t.Fatalf("triage: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"node (hostname not recorded), (OS not recorded): 6 containers, 2 pods, 37 findings (4 high, 2 medium, 6 low, 25 info)\n",
		"  high     4b324cab2548 containerd shop/shop-frontend-7d9c8b6f5-x2k4q/app (running) image forge.local/shop/app:1.0: 11 findings\n",
		"  low      forge-default-cache containerd default (stopped) image forge.local/library/busybox:1.35: 1 finding\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("triage table lacks %q:\n%s", want, out)
		}
	}
}
