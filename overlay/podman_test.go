package overlay

import (
	"bytes"
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// podman's rootfs-diff.tar (no whiteouts; deletions in deleted.files) on
// the app image's OCI layer tars, all read in place from the archives.
func TestPodmanRootfsDiff(t *testing.T) {
	ck, err := evidence.OpenArchive(context.Background(), fixturePath(t, "podman-checkpoint/ckpt-leave-running.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	f, err := ck.Open("rootfs-diff.tar")
	if err != nil {
		t.Fatal(err)
	}
	diff, err := evidence.NewArchive(context.Background(), f, f.Size(), "rootfs-diff.tar", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer diff.Close()
	img := appLayerBlobs(t)
	layers := []Layer{{Source: diff, Kind: LayerTar, Name: "rootfs-diff.tar", Deleted: []string{"/etc/motd"}}}
	for _, d := range []string{"70f36798eb87bce9cdde9a139a8004af39e4105d4c0420c7008c9a13fc1b87b5", "b610110480c53f6e1eb3f708ea2438eded51a6930b38e13a13475fd0f4b71b54"} {
		bf, err := img.Open("blobs/sha256/" + d)
		if err != nil {
			t.Fatal(err)
		}
		a, err := evidence.NewArchive(context.Background(), bf, bf.Size(), "sha256:"+d, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		layers = append(layers, Layer{Source: a, Kind: LayerTar, Name: d[:12]})
	}
	v, err := New(layers, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.LstatEntry("etc/motd"); !errorsIs(err, fs.ErrNotExist) {
		t.Errorf("deleted.files not applied: %v", err)
	}
	b, err := fs.ReadFile(v, "etc/passwd")
	if err != nil || !bytes.Contains(b, []byte("podman:x:0:0::/root:/bin/sh")) {
		t.Errorf("passwd %q %v", b, err)
	}
	b, err = fs.ReadFile(v, "tmp/note")
	if err != nil || !strings.Contains(string(b), "FORGE-SECRET-7f3a9c") {
		t.Errorf("note %q %v", b, err)
	}
	got := viewTree(t, v)
	if r := got["usr/local/bin/dropper"]; r.SHA256 != "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6" || r.Mode != 0o755 {
		t.Errorf("dropper %v", r)
	}
	if got["app/config.ini"].Type != "file" || got["etc/app-old.conf"].Type != "" {
		t.Errorf("image layers: %v %v", got["app/config.ini"], got["etc/app-old.conf"])
	}
	e, _ := v.LstatEntry("usr/local/bin/dropper")
	if e == nil || e.Origin.LayerName != "rootfs-diff.tar" {
		t.Errorf("dropper origin %+v", e)
	}
	// The diff holds no etc/ member: the dir keeps the image's metadata.
	if e, err := v.LstatEntry("etc"); err != nil || e.Origin.Layer == 0 || e.Stat.Mtime.Unix() != 1700000000 || len(e.Merged) != 3 {
		t.Errorf("etc: %+v %v", e, err)
	}
	if e, err := v.LstatEntry("tmp"); err != nil || e.Stat.Mode != fs.ModeDir|fs.ModeSticky|0o777 {
		t.Errorf("tmp: %+v %v", e, err)
	}
	// As an OCI diff the deletion becomes a whiteout.
	var out bytes.Buffer
	lower, _ := New(layers[1:], nil)
	man, err := CollectManifest(ExportUpper(context.Background(), &out, layers[0], lower, nil))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range man {
		names = append(names, m.Path+":"+m.Type)
	}
	if strings.Join(names, ",") != "etc:dir,etc/passwd:file,tmp:dir,tmp/heartbeat:file,tmp/note:file,tmp/server.log:file,usr:dir,usr/local:dir,usr/local/bin:dir,usr/local/bin/dropper:file,etc/.wh.motd:whiteout" {
		t.Errorf("upper diff %v", names)
	}
}
