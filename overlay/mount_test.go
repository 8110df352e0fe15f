package overlay

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/testfix"
)

// TestMountManyLayers mounts the fixture's attacked container with 300
// extra empty layers whose names make the lowerdir string far longer than a
// page (the limit container-explorer's mounts hit), and checks the kernel's
// listing equals the pure-Go view's.
func TestMountManyLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (CI runs as root)")
	}
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	snaps := filepath.Join(dir, "node/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots")
	var host []string
	for _, id := range []string{"6", "3", "2"} {
		host = append(host, filepath.Join(snaps, id, "fs"))
	}
	pad := t.TempDir()
	total := 0
	for i := 0; i < 300; i++ {
		p := filepath.Join(pad, fmt.Sprintf("empty-layer-with-a-long-name-to-pass-the-page-limit-%03d", i))
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		host = append(host, p)
	}
	for _, h := range host {
		total += len(h) + 1
	}
	if total <= 4096 {
		t.Fatalf("lowerdir string only %d bytes", total)
	}
	mnt := t.TempDir()
	if err := Mount(mnt, host, nil); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(mnt, syscall.MNT_DETACH)
	kernel := map[string]string{}
	filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(mnt, p)
		info, _ := d.Info()
		kernel[rel] = fmt.Sprintf("%s %o %d", TypeOf(info.Mode()), info.Mode().Perm(), sizeOf(info))
		return nil
	})
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var layers []Layer
	for _, h := range host {
		rel, _ := filepath.Rel(dir, h)
		if strings.HasPrefix(rel, "..") {
			continue // the empty layers add nothing
		}
		layers = append(layers, Layer{Source: src, Dir: rel, Kind: LayerDir, Name: rel})
	}
	v, err := New(layers, nil)
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]string{}
	for e, err := range v.Walk(context.Background(), ".") {
		if err != nil {
			t.Fatal(err)
		}
		ours[e.Path] = fmt.Sprintf("%s %o %d", e.Type(), e.Stat.Mode.Perm(), sizeOf(e.Stat.Info()))
	}
	if !reflect.DeepEqual(kernel, ours) {
		for k, v := range kernel {
			if ours[k] != v {
				t.Errorf("%s: kernel %q, view %q", k, v, ours[k])
			}
		}
		for k, v := range ours {
			if _, ok := kernel[k]; !ok {
				t.Errorf("%s: only in the view (%s)", k, v)
			}
		}
	}
	if _, ok := kernel["etc/motd"]; ok || kernel["tmp/.x/miner"] != "file 755 1982256" {
		t.Errorf("kernel view: motd %v miner %q", ok, kernel["tmp/.x/miner"])
	}
	if err := os.WriteFile(filepath.Join(mnt, "x"), nil, 0o644); err == nil {
		t.Error("the mount is writable")
	}
}

func sizeOf(fi fs.FileInfo) int64 {
	if fi.IsDir() {
		return 0
	}
	return fi.Size()
}
