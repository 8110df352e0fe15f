package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/testfix"
)

const ctrApp = "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007"

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// fingerprint records every entry of a host tree — content hash, mode,
// owner, size, the three times and xattrs — read through the evidence
// package so that taking it changes nothing itself.
func fingerprint(t *testing.T, dir string) map[string]string {
	t.Helper()
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fp := map[string]string{}
	err = evidence.Walk(context.Background(), src, ".", func(st *evidence.Stat, err error) error {
		if err != nil {
			return err
		}
		x, _ := src.Xattrs(st.Name)
		var keys []string
		for k := range x {
			keys = append(keys, k+"="+hex.EncodeToString(x[k]))
		}
		sort.Strings(keys)
		sum := ""
		if st.Mode.IsRegular() {
			f, err := src.Open(st.Name)
			if err != nil {
				return err
			}
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			sum = hex.EncodeToString(h.Sum(nil))
		}
		fp[st.Name] = fmt.Sprintf("%v %d:%d %d a=%d m=%d c=%d %s %s", st.Mode, st.UID, st.GID, st.Size, st.Atime.UnixNano(), st.Mtime.UnixNano(), st.Ctime.UnixNano(), strings.Join(keys, ","), sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func diffPrints(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, fmt.Sprintf("%s: %s -> %s", k, v, b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	return d
}

// everyCommand lists the command lines run against the evidence by the
// untouched-evidence test. Every command that reads evidence belongs here.
func everyCommand(t *testing.T, root string) [][]string {
	outDir := t.TempDir()
	var cmds [][]string
	for _, o := range []string{"table", "json", "jsonl"} {
		for _, s := range lsSubjects {
			cmds = append(cmds, []string{"--root", root, "ls", s, "-o", o})
		}
		for _, c := range []string{ctrApp, "forge-default-cache", "jobs/report-job-28374651-q7wzt/report", "1cb04cd4"} {
			cmds = append(cmds, []string{"--root", root, "inspect", c, "-o", o})
		}
	}
	cmds = append(cmds,
		[]string{"--root", root, "drift", "--all", "-o", "json"},
		[]string{"--root", root, "drift", "--all"},
		[]string{"--root", root, "drift", "--pod", "shop/shop-frontend-7d9c8b6f5-x2k4q", "--exec-only", "-o", "jsonl"},
		[]string{"--root", root, "fs", "ls", ctrApp, "/", "-R", "--hash", "-o", "json"},
		[]string{"--root", root, "fs", "cat", ctrApp, "/etc/passwd"},
		[]string{"--root", root, "fs", "stat", ctrApp, "/tmp/.x/miner", "-o", "json"},
		[]string{"--root", root, "export", ctrApp, "--merged", "-f", filepath.Join(outDir, "merged.tar"), "--manifest", filepath.Join(outDir, "m.json")},
		[]string{"--root", root, "export", ctrApp, "--upper", "-f", filepath.Join(outDir, "upper.tar")},
		[]string{"--root", root, "image", "verify", "--all", "-o", "json"},
		[]string{"--root", root, "image", "inspect", "forge.local/shop/app:1.0", "-o", "json"},
		[]string{"--root", root, "checkpoint", "ls", "-o", "json"},
		[]string{"--root", root, "checkpoint", "inspect", "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", "--all", "-o", "json"},
		[]string{"--root", root, "mem", "search", "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", "--string", "FORGE-SECRET", "-o", "json"},
		[]string{"--root", root, "mem", "maps", "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", "-o", "json"},
		[]string{"--root", root, "timeline", "--format", "bodyfile"},
		[]string{"--root", root, "timeline", "--format", "timesketch", "-o", "json"},
		[]string{"--root", root, "drift", "--checkpoint", "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", "-o", "json"},
	)
	return append(cmds, extraCommands(root)...)
}

// extraCommands is extended by the other commands' tests (fs, export,
// image, drift, checkpoint, mem) through registerEvidenceCommands.
var evidenceCommandMakers []func(root string) [][]string

func extraCommands(root string) [][]string {
	var out [][]string
	for _, m := range evidenceCommandMakers {
		out = append(out, m(root)...)
	}
	return out
}

// bindReadOnly mounts dir read-only at a new temp dir, as an examiner
// mounts an image, and returns the mount point.
func bindReadOnly(t *testing.T, dir string) string {
	t.Helper()
	mnt := t.TempDir()
	if err := syscall.Mount(dir, mnt, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		t.Fatalf("bind mount (needs root; CI runs as root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	if err := syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	return mnt
}

func TestEvidenceUntouched(t *testing.T) {
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	// The check must be able to fail: under relatime, a plain read of a file
	// whose atime is not after its mtime or ctime moves the atime.
	probe := filepath.Join(dir, "node/etc/containerd/config.toml")
	before := fingerprint(t, dir)
	if after := fingerprint(t, dir); len(diffPrints(before, after)) != 0 {
		t.Fatalf("fingerprinting changed the tree: %v", diffPrints(before, after))
	}
	run := func(root string, jsonOnly bool) {
		for _, args := range everyCommand(t, root) {
			if jsonOnly && args[len(args)-1] != "json" {
				continue // the table and jsonl renderings read the same evidence
			}
			if _, stderr, code := runCLI(t, args...); code != 0 {
				t.Errorf("%v: exit %d: %s", args, code, stderr)
			}
		}
	}
	// As an examiner works: the image mounted read-only. Nothing changes,
	// not even an access time.
	run(bindReadOnly(t, dir), false)
	if d := diffPrints(before, fingerprint(t, dir)); len(d) != 0 {
		t.Errorf("the evidence changed through a read-only mount:\n%s", strings.Join(d, "\n"))
	}
	// On the writable copy itself: as root, deadnode reads through a
	// private read-only, noatime clone of the mount, so again nothing
	// changes, symlink atimes included (readlink has no O_NOATIME).
	run(dir, false)
	if d := diffPrints(before, fingerprint(t, dir)); len(d) != 0 {
		t.Errorf("the writable evidence changed:\n%s", strings.Join(d, "\n"))
	}
	archive := testfix.NodeArchive(t)
	archStat, _ := os.Stat(archive)
	run(archive, true)
	if st, _ := os.Stat(archive); !st.ModTime().Equal(archStat.ModTime()) || st.Size() != archStat.Size() {
		t.Errorf("the archive changed")
	}
	before = fingerprint(t, dir)
	os.ReadFile(probe)
	if d := diffPrints(before, fingerprint(t, dir)); len(d) != 1 || !strings.HasPrefix(d[0], "node/etc/containerd/config.toml") {
		t.Errorf("a plain read was not seen by the fingerprint (atime not tracked?): %v", d)
	}
}

func TestLsContainersJSON(t *testing.T) {
	out, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "ls", "containers", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var v []map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if len(v) != 6 {
		t.Fatalf("%d containers", len(v))
	}
	for _, c := range v {
		for _, f := range []string{"id", "namespace", "kind", "image", "created_at", "labels", "pod", "container_name", "sandbox_id", "snapshot_key", "upper_dir", "lower_dirs", "status", "warnings", "runtime"} {
			if _, ok := c[f]; !ok {
				t.Errorf("%v lacks %q", c["id"], f)
			}
		}
		if _, ok := c["spec"]; ok {
			t.Errorf("ls prints the spec")
		}
	}
	app := v[2]
	if app["id"] != ctrApp || app["upper_dir"] != "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs" || app["created_at"] != "2026-11-27T02:30:16.962174262Z" {
		t.Errorf("app: %v", app)
	}
	pod := app["pod"].(map[string]any)
	if pod["namespace"] != "shop" || pod["name"] != "shop-frontend-7d9c8b6f5-x2k4q" || pod["uid"] != "3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f" {
		t.Errorf("pod %v", pod)
	}
	// jsonl: one object per line, same content.
	out2, _, _ := runCLI(t, "--root", testfix.NodeArchive(t), "ls", "containers", "-o", "jsonl")
	lines := strings.Split(strings.TrimSpace(out2), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d jsonl lines", len(lines))
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &first); err != nil || first["id"] != ctrApp {
		t.Errorf("jsonl line 3: %v %v", first, err)
	}
}

func TestInspectPrintsSpec(t *testing.T) {
	out, _, code := runCLI(t, "--root", testfix.NodeArchive(t), "inspect", "shop/shop-frontend-7d9c8b6f5-x2k4q/app", "-o", "json")
	if code != 0 {
		t.Fatal(code)
	}
	var c struct {
		ID   string `json:"id"`
		Spec struct {
			Args        []string `json:"args"`
			Env         []string `json:"env"`
			Cwd         string   `json:"cwd"`
			HostNetwork bool     `json:"host_network"`
			Mounts      []struct {
				Destination string `json:"destination"`
			} `json:"mounts"`
			Capabilities []string `json:"capabilities"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	if c.ID != ctrApp || c.Spec.Cwd != "/app" || len(c.Spec.Args) != 1 || c.Spec.Args[0] != "/app/server.sh" || c.Spec.HostNetwork {
		t.Errorf("inspect: %+v", c)
	}
	found := false
	for _, e := range c.Spec.Env {
		found = found || e == "SHOP_ENV=prod"
	}
	if !found || len(c.Spec.Mounts) == 0 || len(c.Spec.Capabilities) == 0 {
		t.Errorf("env %v mounts %v caps %v", c.Spec.Env, c.Spec.Mounts, c.Spec.Capabilities)
	}
	table, _, _ := runCLI(t, "--root", testfix.NodeArchive(t), "inspect", "4b324cab")
	for _, want := range []string{"Upper dir:", "snapshots/6/fs", "Lower dir 2:", "snapshots/2/fs", "Pid (host):", "19714", "Env:", "SHOP_ENV=prod"} {
		if !strings.Contains(table, want) {
			t.Errorf("inspect table lacks %q", want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	arch := testfix.NodeArchive(t)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"ls", "containers"}, 2},            // no --root
		{[]string{"--root", arch, "ls", "bogus"}, 2}, // bad subject
		{[]string{"--root", arch, "ls", "containers", "-o", "xml"}, 2},
		{[]string{"--root", arch, "frobnicate"}, 2},
		{[]string{"--root", "/nonexistent/evidence", "ls", "containers"}, 1},
		{[]string{"--root", t.TempDir(), "ls", "containers"}, 1}, // no runtime
		{[]string{"--root", arch, "inspect", "nope"}, 1},
		{[]string{"--root", arch, "inspect", "forge-default-"}, 1}, // ambiguous
		{[]string{"--help"}, 0},
		{[]string{"--root", arch, "-n", "default", "ls", "containers"}, 0},
	} {
		if _, stderr, code := runCLI(t, c.args...); code != c.code {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, c.code, stderr)
		}
	}
}

func TestFindCommandWithFlagsFirst(t *testing.T) {
	cmd, rest := findCommand([]string{"--root", "x", "-n", "k8s.io", "ls", "containers", "-o", "json"})
	if cmd == nil || cmd.name != "ls" || strings.Join(rest, " ") != "--root x -n k8s.io containers -o json" {
		t.Errorf("findCommand = %v %v", cmd, rest)
	}
}
