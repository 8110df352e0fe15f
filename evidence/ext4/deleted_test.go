package ext4_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/vfs"
)

const dropperPath = "node/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs/tmp/.x/dropper"

// TestDeletedRecovery recovers, on every fixture image, the four files
// make.sh deleted — two through the kernel (name wiped from the directory,
// extent map cleared, inode number reused since: only the journal has
// them), two through debugfs (one name left in rec_len slack, one known
// only by its inode) — by name and by content, and checks the inode
// findings against debugfs's own lsdel and ls -d.
func TestDeletedRecovery(t *testing.T) {
	for _, name := range fixtureImages {
		t.Run(name, func(t *testing.T) {
			fsys, img := openImage(t, name)
			fc := facts(t, name)
			all, err := fsys.Deleted(context.Background(), ".")
			if err != nil {
				t.Fatal(err)
			}
			byPath := map[string]vfs.Deleted{}
			for _, d := range all {
				t.Logf("%q inode %d size %d %s recoverable %d complete %v notes %q", d.Path, d.Inode, d.Size, d.Method, d.Recoverable, d.Complete, d.Notes)
				if d.Path != "" {
					byPath[d.Path] = d
				}
			}
			want := []struct {
				path, method, sum string
				size              int64
				mode              fs.FileMode
			}{
				{dropperPath, vfs.MethodJournal, fc["dropper_sha256"], 9072, 0o755},
				{"edge/deleted/kernel-big.bin", vfs.MethodJournal, fc["kernel_big_sha256"], 300000, 0o644},
				{"edge/deleted2/dbg-dirent.txt", vfs.MethodDirent, fc["dbg_dirent_sha256"], 20000, 0o644},
				{"edge/deleted2/dbg-inode.txt", vfs.MethodInode, fc["dbg_inode_sha256"], 7000, 0o644},
				{"edge/deleted/gone-dir/inner.txt", vfs.MethodJournal, fc["gone_inner_sha256"], 6000, 0o644},
				{"edge/deleted/gone-dir/nested/deep.txt", vfs.MethodJournal, fc["gone_nested_sha256"], 2000, 0o644},
			}
			if name == "ext4-1k" { // inline_data
				want = append(want, struct {
					path, method, sum string
					size              int64
					mode              fs.FileMode
				}{"edge/inline/gone-inline", "", fc["inline_deleted_sha256"], 40, 0o644})
			}
			for _, w := range want {
				d, ok := byPath[w.path]
				if !ok {
					t.Errorf("%s not recovered", w.path)
					continue
				}
				// The kernel leaves an inline file's data in its freed inode
				// (or not): either source is right, "" accepts both.
				if (w.method != "" && d.Method != w.method) || d.Size != w.size || d.Mode != w.mode || d.UID != 0 || d.GID != 0 {
					t.Errorf("%s: method %s size %d mode %v uid %d gid %d, want %s %d %v 0 0", w.path, d.Method, d.Size, d.Mode, d.UID, d.GID, w.method, w.size, w.mode)
				}
				if d.DeletedAt.IsZero() || d.Mtime.IsZero() || d.DeletedAt.Before(d.Mtime.Truncate(1e9)) {
					t.Errorf("%s: deleted at %v, modified %v", w.path, d.DeletedAt, d.Mtime)
				}
				sum, n := recoveredSum(t, d)
				// The kernel may hand a freed block to a later file: then the
				// record must say so instead of claiming the content.
				if d.Complete {
					if sum != w.sum || n != w.size {
						t.Errorf("%s: complete, but %d bytes with sha256 %s, want %d %s", w.path, n, sum, w.size, w.sum)
					}
				} else if w.path == dropperPath || d.Recoverable != d.Size || len(d.Notes) == 0 {
					t.Errorf("%s: incomplete (%d of %d bytes): %q", w.path, d.Recoverable, d.Size, d.Notes)
				}
			}
			if d := byPath[dropperPath]; !d.Complete {
				t.Errorf("the dropper is not fully recovered")
			}
			for _, dir := range []string{"edge/deleted/gone-dir", "edge/deleted/gone-dir/nested"} {
				if d, ok := byPath[dir]; !ok || !d.Mode.IsDir() || d.Method != vfs.MethodJournal {
					t.Errorf("deleted directory %s: %+v", dir, d)
				}
			}

			// debugfs lsdel lists the free inodes whose block maps still map
			// blocks: exactly those we recover from the inode on disk.
			lsdel := debugfsLsdel(t, img)
			var ours []string
			for _, d := range all {
				if d.Method != vfs.MethodJournal {
					ours = append(ours, fmt.Sprintf("%d %o %d", d.Inode, unixMode(d.Mode), d.Size))
				}
			}
			sort.Strings(ours)
			if strings.Join(ours, ",") != strings.Join(lsdel, ",") {
				t.Errorf("inodes with intact block maps: ours %v, debugfs lsdel %v", ours, lsdel)
			}
			// debugfs ls -d shows the entries left in rec_len slack.
			var dirents []string
			for _, d := range all {
				if d.Method == vfs.MethodDirent {
					dirents = append(dirents, fmt.Sprintf("%d %s", d.Inode, d.Path))
				}
			}
			if got, want := strings.Join(dirents, ","), strings.Join(debugfsDeletedEntries(t, img, "edge/deleted2"), ","); got != want {
				t.Errorf("names in slack: ours %s, debugfs ls -d %s", got, want)
			}

			// Below a directory: only what was deleted there.
			sub, err := fsys.Deleted(context.Background(), "node/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs")
			if err != nil {
				t.Fatal(err)
			}
			if len(sub) != 1 || sub[0].Path != dropperPath {
				t.Errorf("deleted below the upper dir: %v", paths(sub))
			}
			sub, err = fsys.Deleted(context.Background(), "edge/deleted2")
			if err != nil {
				t.Fatal(err)
			}
			if got := paths(sub); strings.Join(got, ",") != "edge/deleted2/dbg-dirent.txt,edge/deleted2/dbg-inode.txt" {
				t.Errorf("deleted below edge/deleted2: %v", got)
			}
			// Nothing recovered is live.
			for _, d := range all {
				if d.Path == "" {
					continue
				}
				if _, err := fsys.Lstat(d.Path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("lstat of deleted %s: %v", d.Path, err)
				}
			}
			if _, err := fsys.Deleted(context.Background(), "edge/hardlink-a"); err == nil {
				t.Error("Deleted of a regular file succeeded")
			}
		})
	}
}

func paths(ds []vfs.Deleted) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Path)
	}
	return out
}

func recoveredSum(t *testing.T, d vfs.Deleted) (string, int64) {
	t.Helper()
	if d.Open == nil {
		return "", 0
	}
	ra, err := d.Open()
	if err != nil {
		t.Fatalf("%s: open: %v", d.Path, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(ra, 0, d.Size))
	if err != nil {
		t.Fatalf("%s: read: %v", d.Path, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), n
}

func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	switch {
	case m.IsDir():
		u |= 0o40000
	case m&fs.ModeSymlink != 0:
		u |= 0o120000
	case m.IsRegular():
		u |= 0o100000
	}
	return u
}

var lsdelLine = regexp.MustCompile(`^\s*(\d+)\s+\d+\s+([0-7]+)\s+(\d+)\s+\d+/\s*\d+`)

// debugfsLsdel runs debugfs lsdel: "inode mode size" of each free inode
// with blocks.
func debugfsLsdel(t *testing.T, img string) []string {
	out, err := exec.Command("debugfs", "-R", "lsdel", img).Output()
	if err != nil {
		t.Fatalf("debugfs lsdel: %v", err)
	}
	var l []string
	for _, line := range strings.Split(string(out), "\n") {
		if m := lsdelLine.FindStringSubmatch(line); m != nil {
			mode, _ := strconv.ParseUint(m[2], 8, 32)
			l = append(l, fmt.Sprintf("%s %o %s", m[1], mode, m[3]))
		}
	}
	sort.Strings(l)
	if len(l) == 0 {
		t.Fatalf("debugfs lsdel found nothing:\n%s", out)
	}
	return l
}

var lsdEntry = regexp.MustCompile(`<(\d+)>\s+\(\d+\)\s+(\S+)`)

// debugfsDeletedEntries runs debugfs ls -d and returns its deleted entries
// ("<inode> (rec_len) name") as "inode dir/name".
func debugfsDeletedEntries(t *testing.T, img, dir string) []string {
	out, err := exec.Command("debugfs", "-R", "ls -d /"+dir, img).Output()
	if err != nil {
		t.Fatalf("debugfs ls -d: %v", err)
	}
	var l []string
	for _, m := range lsdEntry.FindAllStringSubmatch(string(out), -1) {
		l = append(l, m[1]+" "+dir+"/"+m[2])
	}
	return l
}
