package overlay

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deadnode/deadnode/evidence"

	"github.com/deadnode/deadnode/internal/testfix"
)

const snapshotsDir = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"

// attackedSnapshots are the overlay dirs of container 4b324cab… (upper
// first), from GROUND_TRUTH.md.
var attackedSnapshots = []string{"6", "3", "2"}

func fixturePath(t testing.TB, rel string) string {
	t.Helper()
	return testfix.Fixture(t, rel)
}

var (
	fixtureOnce sync.Once
	fixtureArch *evidence.Archive
	fixtureErr  error
	extractOnce sync.Once
	extractDir  string
	extractErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureArch != nil {
		fixtureArch.Close()
	}
	if extractDir != "" {
		os.RemoveAll(extractDir)
	}
	os.Exit(code)
}

// nodeArchive opens the containerd node collection in place (once).
func nodeArchive(t testing.TB) evidence.Source {
	p := fixturePath(t, "containerd-node/containerd-node.tar.gz")
	fixtureOnce.Do(func() { fixtureArch, fixtureErr = evidence.OpenArchive(context.Background(), p, nil) })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	src, err := evidence.Sub(fixtureArch, "node")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// appLayerBlobs is the node's containerd content store, holding the app
// image's two layer blobs (blobs/sha256/<digest>): content-addressed, the
// same bytes as in the app image's OCI archive the node was loaded from.
func appLayerBlobs(t testing.TB) evidence.Source {
	t.Helper()
	src, err := evidence.Sub(nodeArchive(t), "var/lib/containerd/io.containerd.content.v1.content")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// nodeExtracted extracts the collection with its xattrs and whiteouts
// (once) and returns the node dir.
func nodeExtracted(t testing.TB) string {
	p := fixturePath(t, "containerd-node/containerd-node.tar.gz")
	extractOnce.Do(func() {
		extractDir, extractErr = os.MkdirTemp("", "deadnode-overlay-fixture-")
		if extractErr != nil {
			return
		}
		out, err := exec.Command("tar", "--xattrs", "--xattrs-include=*", "-xpzf", p, "-C", extractDir).CombinedOutput()
		if err != nil {
			extractErr = err
			extractErr = &fs.PathError{Op: "tar -x", Path: p, Err: errString(string(out) + err.Error())}
		}
	})
	if extractErr != nil {
		t.Fatal(extractErr)
	}
	return filepath.Join(extractDir, "node")
}

type errString string

func (e errString) Error() string { return string(e) }

func snapshotLayers(src evidence.Source, ids []string) []Layer {
	var out []Layer
	for _, id := range ids {
		out = append(out, Layer{Source: src, Dir: snapshotsDir + "/" + id + "/fs", Kind: LayerDir, Name: id})
	}
	return out
}

func TestFixtureAttackedContainer(t *testing.T) {
	v, err := New(snapshotLayers(nodeArchive(t), attackedSnapshots), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkAttacked(t, v)
}

func checkAttacked(t *testing.T, v *View) {
	t.Helper()
	for _, p := range []string{"/etc/motd", "/app/config.ini", "/etc/app-old.conf", "/opt/cache/a.dat", "/opt/cache/b.dat"} {
		if _, err := v.LstatEntry(p); !errorsIsNotExist(err) {
			t.Errorf("%s: want not-exist, got %v", p, err)
		}
	}
	e, err := v.LstatEntry("/opt/cache")
	if err != nil || !e.Opaque || e.Origin.LayerName != "3" {
		t.Fatalf("/opt/cache: %+v %v", e, err)
	}
	ents, err := v.ReadDirEntries("/opt/cache")
	if err != nil || len(ents) != 1 || ents[0].Path != "opt/cache/c.dat" || ents[0].Stat.Size != 24 {
		t.Errorf("/opt/cache listing: %v %v", ents, err)
	}
	b, err := fs.ReadFile(v, "etc/passwd")
	if err != nil || !bytes.Contains(b, []byte("sysupd:x:0:0:sysupd:/root:/bin/sh")) {
		t.Errorf("/etc/passwd = %q, %v", b, err)
	}
	if e, _ := v.LstatEntry("etc/passwd"); e == nil || e.Origin.LayerName != "6" {
		t.Errorf("/etc/passwd origin: %+v", e)
	}
	if got := sha256Hex(string(b)); !strings.HasPrefix(got, "8149bd48") {
		t.Errorf("/etc/passwd sha256 %s, want 8149bd48…", got)
	}
	for _, c := range []struct{ path, sha, layer string }{
		{"tmp/.x/miner", "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6", "6"},
		{"bin/busybox", "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6", "2"},
		{"app/server.sh", "5e2632758f9e9bc3a232bd86fbaec11888946cdc783f6c5388857797717d0ecb", "3"},
		{"opt/cache/c.dat", "2bb01f5ac869644a1b6d1742edb3b3e9212a9ea31f6bd35f4fb81291ff844615", "3"},
	} {
		e, err := v.LstatEntry(c.path)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		f, err := v.OpenEntry(e)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		got := hashReader(t, io.NewSectionReader(f, 0, f.Size()))
		f.Close()
		if got != c.sha || e.Origin.LayerName != c.layer {
			t.Errorf("%s: sha256 %s layer %s; want %s layer %s", c.path, got, e.Origin.LayerName, c.sha, c.layer)
		}
	}
	e, err = v.LstatEntry("tmp/.x/miner")
	if err != nil || e.Stat.Mode != 0o755 || e.Stat.Size != 1982256 {
		t.Errorf("miner: %+v %v", e, err)
	}
	// busybox applets are absolute links resolved inside the container.
	if p, err := v.Resolve("bin/sh"); err != nil || p != "bin/busybox" {
		t.Errorf("Resolve(bin/sh) = %q, %v", p, err)
	}
	b, err = fs.ReadFile(v, "root/.loot/creds.txt")
	if err != nil || !bytes.Contains(b, []byte("FORGE-SECRET-7f3a9c")) {
		t.Errorf("creds.txt = %q, %v", b, err)
	}
}

func errorsIsNotExist(err error) bool { return err != nil && errorsIs(err, fs.ErrNotExist) }

func TestFixtureArchiveVsExtractedVsKernel(t *testing.T) {
	arch, err := New(snapshotLayers(nodeArchive(t), attackedSnapshots), nil)
	if err != nil {
		t.Fatal(err)
	}
	node := nodeExtracted(t)
	dsrc, err := evidence.OpenDir(node)
	if err != nil {
		t.Fatal(err)
	}
	defer dsrc.Close()
	dir, err := New(snapshotLayers(dsrc, attackedSnapshots), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkAttacked(t, dir)
	fromArch, fromDir := viewTree(t, arch), viewTree(t, dir)
	if len(fromArch) < 300 {
		t.Fatalf("only %d entries", len(fromArch))
	}
	compareTrees(t, fromDir, fromArch, false)
	if noKernel(t) {
		return
	}
	var lowers []string
	for _, id := range attackedSnapshots {
		lowers = append(lowers, filepath.Join(node, filepath.FromSlash(snapshotsDir), id, "fs"))
	}
	kern := kernelTree(t, mountOverlay(t, lowers))
	compareTrees(t, kern, fromDir, true)
	compareTrees(t, kern, fromArch, false)
}
