package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

func init() {
	evidenceCommandMakers = append(evidenceCommandMakers, func(root string) [][]string {
		out := os.DevNull // the exports are checked in TestExportCommand
		return [][]string{
			{"--root", root, "fs", "ls", ctrApp, "/", "-R", "--hash", "-o", "json"},
			{"--root", root, "fs", "ls", ctrApp, "/etc"},
			{"--root", root, "fs", "cat", ctrApp, "/etc/passwd"},
			{"--root", root, "fs", "stat", ctrApp, "/opt/cache", "-o", "json"},
			{"--root", root, "fs", "stat", ctrApp, "/bin/sh"},
			{"--root", root, "export", ctrApp, "-f", out, "--force", "--manifest", out},
			{"--root", root, "export", ctrApp, "--upper", "-f", out, "--force"},
		}
	})
}

func TestFsLsRecursiveJSON(t *testing.T) {
	out, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "fs", "ls", "shop/shop-frontend-7d9c8b6f5-x2k4q/app", "/", "-R", "--hash", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var ents []map[string]any
	if err := json.Unmarshal([]byte(out), &ents); err != nil {
		t.Fatal(err)
	}
	by := map[string]map[string]any{}
	for _, e := range ents {
		by[e["path"].(string)] = e
	}
	if len(ents) != 309 {
		t.Errorf("%d entries, want 309 (308 members + root)", len(ents))
	}
	m := by["/tmp/.x/miner"]
	if m == nil || m["sha256"] != "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6" || m["layer"].(float64) != 0 || m["mode"] != "0755" || m["type"] != "file" || m["size"].(float64) != 1982256 {
		t.Errorf("miner: %v", m)
	}
	if c := by["/opt/cache/c.dat"]; c == nil || c["layer"].(float64) != 1 || !strings.HasSuffix(c["layer_name"].(string), "snapshots/3/fs") {
		t.Errorf("c.dat: %v", c)
	}
	if l := by["/bin/sh"]; l == nil || l["link_target"] != "/bin/busybox" || l["type"] != "symlink" {
		t.Errorf("/bin/sh: %v", l)
	}
	for _, p := range []string{"/etc/motd", "/app/config.ini", "/etc/app-old.conf", "/opt/cache/a.dat"} {
		if by[p] != nil {
			t.Errorf("%s listed", p)
		}
	}
	for _, k := range []string{"path", "type", "mode", "uid", "gid", "size", "layer"} {
		if _, ok := by["/etc/passwd"][k]; !ok {
			t.Errorf("no %q in %v", k, by["/etc/passwd"])
		}
	}
}

func TestFsCatAndStat(t *testing.T) {
	root := testfix.NodeArchive(t)
	out, stderr, code := runCLI(t, "--root", root, "fs", "cat", ctrApp, "/bin/../usr/../etc/passwd")
	if code != 0 || !strings.Contains(out, "sysupd:x:0:0:sysupd:/root:/bin/sh\n") {
		t.Errorf("cat: %d %q %s", code, out, stderr)
	}
	if _, _, code := runCLI(t, "--root", root, "fs", "cat", ctrApp, "/etc/motd"); code != 1 {
		t.Errorf("cat of a whited-out file: exit %d", code)
	}
	out, _, code = runCLI(t, "--root", root, "fs", "stat", ctrApp, "/opt/cache", "-o", "json")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("stat: %v %d", err, code)
	}
	if st["opaque"] != true || st["overlay_xattrs"].(map[string]any)["trusted.overlay.opaque"] != "y" || st["origin"].(map[string]any)["layer"].(float64) != 1 {
		t.Errorf("stat /opt/cache: %v", st)
	}
	out, _, _ = runCLI(t, "--root", root, "fs", "stat", ctrApp, "/bin/sh")
	if field(out, "Resolves to") != "/bin/busybox" || field(out, "Link target") != "/bin/busybox" {
		t.Errorf("stat /bin/sh:\n%s", out)
	}
	out, _, _ = runCLI(t, "--root", root, "fs", "stat", ctrApp, "/etc/passwd")
	if !strings.HasPrefix(field(out, "SHA256"), "8149bd48") || !strings.HasSuffix(field(out, "Origin layer"), "snapshots/6/fs (etc/passwd)") {
		t.Errorf("stat /etc/passwd:\n%s", out)
	}
}

func TestExportCommand(t *testing.T) {
	root := testfix.NodeArchive(t)
	dir := t.TempDir()
	tarPath, manPath := filepath.Join(dir, "merged.tar"), filepath.Join(dir, "manifest.json")
	out, stderr, code := runCLI(t, "--root", root, "export", ctrApp, "-f", tarPath, "--manifest", manPath, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum exportSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	if sum.SHA256 != hex.EncodeToString(h[:]) || sum.Bytes != int64(len(data)) || sum.Members != 308 {
		t.Errorf("summary %+v for a %d-byte tar", sum, len(data))
	}
	var man []map[string]any
	mb, _ := os.ReadFile(manPath)
	if err := json.Unmarshal(mb, &man); err != nil || len(man) != 308 {
		t.Fatalf("manifest: %v, %d entries", err, len(man))
	}
	// Every member of the tar is in the manifest, in order, with its hash.
	tr := tar.NewReader(bytes.NewReader(data))
	for i := 0; ; i++ {
		hd, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSuffix(hd.Name, "/") != man[i]["path"] {
			t.Fatalf("member %d %q, manifest %v", i, hd.Name, man[i]["path"])
		}
		if hd.Typeflag == tar.TypeReg {
			hh := sha256.New()
			io.Copy(hh, tr)
			if hex.EncodeToString(hh.Sum(nil)) != man[i]["sha256"] {
				t.Errorf("%s: hash differs from the manifest", hd.Name)
			}
		}
	}
	// No silent overwrite.
	if _, stderr, code := runCLI(t, "--root", root, "export", ctrApp, "-f", tarPath); code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("overwrite: exit %d %s", code, stderr)
	}
	// The upper layer to stdout: the OCI diff, summary on stderr.
	out, stderr, code = runCLI(t, "--root", root, "export", ctrApp, "--upper", "-f", "-")
	if code != 0 || field(stderr, "Members") != "23" {
		t.Fatalf("upper: exit %d %s", code, stderr)
	}
	var names []string
	tr = tar.NewReader(strings.NewReader(out))
	for {
		hd, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hd.Name)
	}
	if len(names) != 23 || !strings.Contains(strings.Join(names, ","), "etc/.wh.motd,") {
		t.Errorf("upper members: %v", names)
	}
	if _, _, code := runCLI(t, "--root", root, "export", ctrApp, "--upper", "--merged", "-f", "-"); code != 2 {
		t.Errorf("--upper --merged: exit %d", code)
	}
}

// field returns the value of a "Key:  value" line of table output.
func field(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
