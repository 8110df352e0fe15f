package evidence

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/diskimage"
	"github.com/deadnode/deadnode/internal/testfix"
)

// TestOpenDiskImage: Open reads a disk image by its content — the node's
// root picked and assembled — with its kind naming the container format,
// the notes saying what was read, and OpenOptions.Disk applied.
func TestOpenDiskImage(t *testing.T) {
	dir := testfix.DiskImages(t)
	for _, c := range []struct{ image, kind, root string }{
		{"gpt-ext4.raw", "disk:raw", "p2"},
		{"gpt-ext4.zstd.qcow2", "disk:qcow2", "p2"},
		{"split/gpt-ext4.raw.001", "disk:split-raw", "p2"},
		{"gpt-xfs.vmdk", "disk:vmdk-stream", "p1"},
		{"mbr-lvm-xfs.raw", "disk:raw", "vg0/root"},
		{"gpt-var.raw", "disk:raw", "p1"},
	} {
		p := filepath.Join(dir, c.image)
		ev, err := Open(context.Background(), p, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.image, err)
		}
		im := ev.Disk()
		if string(ev.Kind) != c.kind || im == nil || im.Root.Volume != c.root || ev.Source != Source(im) || ev.Root != "." || ev.Path != p {
			t.Errorf("%s: kind %s root %v source %T", c.image, ev.Kind, im, ev.Source)
		}
		if !strings.Contains(strings.Join(WarningLines(ev.Notes), "\n"), "root filesystem: "+c.root) {
			t.Errorf("%s: notes %q", c.image, WarningLines(ev.Notes))
		}
		if st, err := ev.Source.Lstat("var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"); err != nil || !st.Mode.IsRegular() {
			t.Errorf("%s: meta.db: %v", c.image, err)
		}
		ev.Close()
	}
	ev, err := Open(context.Background(), filepath.Join(dir, "gpt-var.raw"), &OpenOptions{Disk: &diskimage.Options{NoAssemble: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if _, err := ev.Source.Lstat("var/lib/containerd"); err == nil {
		t.Error("no-assemble: /var is mounted")
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "gpt-ext4.raw"), &OpenOptions{Disk: &diskimage.Options{Volume: "p1"}}); err == nil || !strings.Contains(err.Error(), "volume p1 cannot be the root") {
		t.Errorf("--volume p1: %v", err)
	}
}
