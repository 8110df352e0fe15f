package ext4_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/ext4"
)

// TestJournalReplay reads a filesystem that was not cleanly unmounted:
// its changes are only in the journal (three transactions logged by
// debugfs: the changes, garbage over keep.txt's block, a revoke of that
// block). Read with the in-memory replay, it must equal what the kernel
// shows after replaying the journal itself (on a copy: the kernel writes);
// read without, it must be the state before the changes.
func TestJournalReplay(t *testing.T) {
	fsys, img := openImage(t, replayImage)
	cp := filepath.Join(t.TempDir(), "copy.img")
	if out, err := exec.Command("cp", "--sparse=always", img, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	kern, err := evidence.OpenDir(mountWith(t, cp, "loop,noatime"))
	if err != nil {
		t.Fatal(err)
	}
	defer kern.Close()
	n := compareTrees(t, kern, fsys)
	if n.total != 58 {
		t.Errorf("compared only %d entries", n.total)
	}
	if fsys.Info().Clean {
		t.Error("Info says clean")
	}
	if w := strings.Join(fsys.Warnings(), "\n"); !strings.Contains(w, "3 committed transactions") {
		t.Errorf("warnings do not tell of the replay: %s", w)
	}
	st, err := fsys.Lstat("keep.txt")
	if err != nil || !st.Mtime.Equal(time.Date(2022, 2, 22, 22, 22, 22, 222222222, time.UTC)) {
		t.Errorf("keep.txt after replay: %+v %v", st, err)
	}
	b, err := evidence.ReadFile(fsys, "escaped.bin", 1<<20)
	if err != nil || len(b) != 5004 || string(b[:4]) != "\xc0\x3b\x39\x98" {
		t.Errorf("escaped.bin: %d bytes %q %v", len(b), b[:min(len(b), 8)], err)
	}
	if b, err := evidence.ReadFile(fsys, "keep.txt", 1<<20); err != nil || !strings.HasPrefix(string(b), "deadnode ext4 fixture: keep") {
		t.Errorf("keep.txt (its garbage copy was revoked): %q %v", b[:min(len(b), 40)], err)
	}

	// Without the replay: the filesystem as it is on disk.
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	raw, err := ext4.Open(f, fi.Size(), &ext4.Options{NoReplay: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Lstat("new.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("new.txt without replay: %v", err)
	}
	if _, err := raw.Lstat("dir/gone.txt"); err != nil {
		t.Errorf("dir/gone.txt without replay: %v", err)
	}
}
