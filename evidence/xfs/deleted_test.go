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
// files of a block directory (each with its name, its inode copy from the
// log and its content), and the names of the empty files removed from the
// node directory (from its data blocks' free space). Nothing else is
// reported, and nothing reported is visible through the Source. Where
// the kernel gave a freed inode number or block to a later file (its
// allocator's choices vary from run to run), that is checked against the
// live tree: a "newer file" note exactly when the inode number is live
// again, and a Complete that is false (with its note) whenever the content
// is not the original.
func TestDeleted(t *testing.T) {
	type want struct {
		path   string
		method string
		size   int64
		sha    string // of the original content
	}
	for _, name := range []string{"v5", "small", "legacy"} {
		t.Run(name, func(t *testing.T) {
			f := xfs.OpenFixture(t, name)
			live := map[uint64]string{}
			evidence.Walk(context.Background(), f, ".", func(st *vfs.Stat, err error) error {
				if err == nil {
					live[st.Ino] = st.Name
				}
				return err
			})
			// The passwd sed -i replaced is the live one less its last line.
			cur, err := evidence.ReadFile(f, upperDir+"/etc/passwd", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			wants := []want{
				{"edge/dirs/block/gone.txt", vfs.MethodJournal, 3000, sha(pattern(3000, "gone"))},
				{"edge/dirs/block/reused.txt", vfs.MethodJournal, 2000, sha(pattern(2000, "reused"))},
				{"edge/dirs/node/n10", vfs.MethodDirent, 0, ""},
				{"edge/dirs/node/n11", vfs.MethodDirent, 0, ""},
				{"edge/dirs/node/n12", vfs.MethodDirent, 0, ""},
				{"edge/dirs/node/n4000", vfs.MethodDirent, 0, ""},
				{upperDir + "/etc/passwd", vfs.MethodJournal, 256, sha(bytes.TrimSuffix(cur, []byte("# deadnode\n")))},
				{upperDir + "/usr/local/bin/dropper", vfs.MethodJournal, busyboxSize, busyboxSHA},
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
				if d.Path != w.path || d.Method != w.method || d.Size != w.size || d.Recoverable != w.size || n != w.size {
					t.Errorf("deleted %d: %q %s size %d recoverable %d (%d read), want %+v", i, d.Path, d.Method, d.Size, d.Recoverable, n, w)
				}
				switch {
				case d.Complete && sum != w.sha:
					t.Errorf("%s: complete, but sha %s, not the original %s", d.Path, sum, w.sha)
				case !d.Complete && !strings.Contains(notes, "no longer (all) free space"):
					t.Errorf("%s: not complete, notes %q", d.Path, d.Notes)
				}
				_, reused := live[d.Inode]
				if reused != strings.Contains(notes, "now belongs to a newer file") {
					t.Errorf("%s: inode %d live again: %v (%s), notes %q", d.Path, d.Inode, reused, live[d.Inode], d.Notes)
				}
				if reused {
					t.Logf("%s: its inode %d is %s's now", d.Path, d.Inode, live[d.Inode])
				}
				if d.Inode == 0 || d.Mtime.After(d.DeletedAt) && !d.DeletedAt.IsZero() || d.Mode.Type() != 0 || d.Mode.Perm() == 0 ||
					d.DeletedAt.IsZero() && !reused {
					t.Errorf("deleted %s: inode %d, deleted at %v, mtime %v, mode %v", d.Path, d.Inode, d.DeletedAt, d.Mtime, d.Mode)
				}
				if st, err := f.Lstat(d.Path); w.path == wants[6].path {
					if err != nil || st.Ino == d.Inode || !strings.Contains(notes, "belongs to a live file now") {
						t.Errorf("replaced passwd: %v %v, notes %q", st, err, d.Notes)
					}
				} else if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("lstat %s: %v, want not exist", d.Path, err)
				}
			}
			// Nothing was allocated after the dropper and gone.txt went.
			for _, i := range []int{0, 7} {
				if d := ds[i]; !d.Complete {
					t.Errorf("%s: not complete: %q", d.Path, d.Notes)
				}
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
