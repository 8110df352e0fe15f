package xfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/evidence/xfs"
)

// The attacked container's upper dir in the node collection, and the
// sha256 of its miner (a busybox), which make.sh copied to a dropper and
// deleted.
const (
	upperDir    = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs"
	busyboxSHA  = "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6"
	busyboxSize = 1982256
)

// pattern is make.sh's pattern N SEED.
func pattern(n int, seed string) []byte {
	unit := "deadnode xfs fixture " + seed + " "
	return []byte(strings.Repeat(unit, n/len(unit)+1)[:n])
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func recovered(t *testing.T, d vfs.Deleted) (string, int64) {
	t.Helper()
	if d.Open == nil {
		return "", 0
	}
	r, err := d.Open()
	if err != nil {
		t.Fatalf("open %s: %v", d.Path, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(r, 0, d.Size))
	if err != nil {
		t.Fatalf("read %s: %v", d.Path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// TestDeleted recovers what make.sh deleted: the dropper from the attacked
// container's upper dir, the /etc/passwd that sed -i replaced there, two
// files of a block directory — one whose inode number a new file took —
// (each with its name, its inode copy from the log and its content), and
// the names of the empty files removed from the node directory (from its
// data blocks' free space). Nothing else is reported, and nothing
// reported is visible through the Source.
func TestDeleted(t *testing.T) {
	type want struct {
		path     string
		method   string
		size     int64
		sha      string
		complete bool
		note     string
	}
	newFile := "edge/dirs/block/" + strings.Repeat("n", 40) + "-takes-a-freed-inode"
	for _, name := range []string{"v5", "small", "legacy"} {
		t.Run(name, func(t *testing.T) {
			f := xfs.OpenFixture(t, name)
			// The passwd sed -i replaced is the live one less its last
			// line; on v5 its block went to the new file since.
			live, err := evidence.ReadFile(f, upperDir+"/etc/passwd", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			passwd := want{upperDir + "/etc/passwd", vfs.MethodJournal, 256,
				sha(bytes.TrimSuffix(live, []byte("# deadnode\n"))), true, "belongs to a live file now"}
			if name == "v5" {
				passwd.sha = sha(append(pattern(100, "new"), make([]byte, 156)...))
				passwd.complete = false
				passwd.note = "no longer (all) free space"
			}
			wants := []want{
				{"edge/dirs/block/gone.txt", vfs.MethodJournal, 3000, sha(pattern(3000, "gone")), true, ""},
				{"edge/dirs/block/reused.txt", vfs.MethodJournal, 2000, sha(pattern(2000, "reused")), true, "now belongs to a newer file"},
				{"edge/dirs/node/n10", vfs.MethodDirent, 0, "", true, ""},
				{"edge/dirs/node/n11", vfs.MethodDirent, 0, "", true, ""},
				{"edge/dirs/node/n12", vfs.MethodDirent, 0, "", true, ""},
				{"edge/dirs/node/n4000", vfs.MethodDirent, 0, "", true, ""},
				passwd,
				{upperDir + "/usr/local/bin/dropper", vfs.MethodJournal, busyboxSize, busyboxSHA, true, ""},
			}
			ds, err := f.Deleted(context.Background(), ".")
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != len(wants) {
				for _, d := range ds {
					t.Logf("%+v", d)
				}
				t.Fatalf("%d deleted files, want %d", len(ds), len(wants))
			}
			for i, w := range wants {
				d := ds[i]
				sum, n := recovered(t, d)
				notes := strings.Join(d.Notes, "; ")
				if d.Path != w.path || d.Method != w.method || d.Size != w.size || sum != w.sha ||
					d.Complete != w.complete || d.Recoverable != w.size || n != w.size ||
					(w.note == "") != (notes == "") || !strings.Contains(notes, w.note) {
					t.Errorf("deleted %d: %q %s size %d recoverable %d complete %v sha %s (%d bytes), notes %q\nwant %+v",
						i, d.Path, d.Method, d.Size, d.Recoverable, d.Complete, sum, n, d.Notes, w)
				}
				if d.Inode == 0 || d.Mtime.After(d.DeletedAt) && !d.DeletedAt.IsZero() || d.Mode.Type() != 0 || d.Mode.Perm() == 0 ||
					d.DeletedAt.IsZero() && !strings.Contains(notes, "newer file") {
					t.Errorf("deleted %s: inode %d, deleted at %v, mtime %v, mode %v", d.Path, d.Inode, d.DeletedAt, d.Mtime, d.Mode)
				}
				st, err := f.Lstat(d.Path)
				switch {
				case w.path == passwd.path:
					if err != nil || st.Ino == d.Inode {
						t.Errorf("replaced passwd: %v %v", st, err)
					}
				case !errors.Is(err, fs.ErrNotExist):
					t.Errorf("lstat %s: %v, want not exist", d.Path, err)
				}
			}
			// The new file has reused.txt's inode number now.
			if st, err := f.Lstat(newFile); err != nil || st.Ino != ds[1].Inode {
				t.Errorf("new file: %+v %v; reused.txt had inode %d", st, err, ds[1].Inode)
			}
			if d := ds[7]; d.Mode.Perm() != 0o755 || d.UID != 0 {
				t.Errorf("dropper mode %v uid %d", d.Mode, d.UID)
			}
			// Below the upper dir: the old passwd and the dropper.
			up, err := f.Deleted(context.Background(), upperDir)
			if err != nil || len(up) != 2 || up[0].Path != wants[6].path || up[1].Path != wants[7].path {
				t.Errorf("deleted below the upper dir: %v, %+v", err, up)
			}
			if _, err := f.Deleted(context.Background(), "edge/files/tiny"); err == nil {
				t.Error("deleted below a file: no error")
			}
		})
	}
}

// TestDeletedOrphan finds a file that was unlinked but still open when the
// disk was snapshotted: on the AGI unlinked list, all its blocks its own.
func TestDeletedOrphan(t *testing.T) {
	f := xfs.OpenFixture(t, "orphan")
	ds, err := f.Deleted(context.Background(), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d deleted files: %+v", len(ds), ds)
	}
	d := ds[0]
	sum, n := recovered(t, d)
	if d.Path != "tmp/dropper" || d.Method != vfs.MethodInode || d.Size != busyboxSize || n != busyboxSize ||
		sum != busyboxSHA || !d.Complete || d.Recoverable != busyboxSize {
		t.Errorf("orphan: %+v sha %s", d, sum)
	}
	if _, err := f.Lstat("tmp/dropper"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lstat: %v", err)
	}
	ents, err := f.ReadDir("tmp")
	if err != nil || len(ents) != 1 || ents[0].Name != "tmp/live" {
		t.Errorf("readdir tmp: %v %v", ents, err)
	}
}
