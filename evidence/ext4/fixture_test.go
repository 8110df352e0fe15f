package ext4_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/ext4"
	"github.com/deadnode/deadnode/internal/testfix"
	"golang.org/x/sys/unix"
)

// The images testdata/ext4/make.sh makes, and what each was made with.
var fixtureImages = []string{"ext4-4k", "ext4-1k", "ext3", "ext4-metabg"}

// replayImage needs journal recovery (see make.sh, replay_image).
const replayImage = "ext4-replay"

// fixtureDir returns the directory holding the images made by
// testdata/ext4/make.sh from the committed node collection, making them
// once per version of the script and of the collection (they are cached
// under testdata/tmp/ext4/<hash>, which git ignores). It needs root: the
// script loop-mounts the images and writes trusted.* xattrs and devices.
func fixtureDir(t testing.TB) string {
	t.Helper()
	root := testfix.RepoRoot(t)
	script := filepath.Join(root, "testdata", "ext4", "make.sh")
	node := testfix.NodeArchive(t)
	h := sha256.New()
	for _, p := range []string{script, node} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(h, f)
		f.Close()
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	base := filepath.Join(root, "testdata", "tmp", "ext4")
	dir := filepath.Join(base, key)
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	if os.Geteuid() != 0 {
		t.Fatal("making the ext4 fixture images needs root (loop mounts, trusted.* xattrs, devices); CI runs as root")
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(base, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	cmd := exec.Command("bash", script, tmp, node)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make.sh: %v\n%s", err, tail(out, 4000))
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	// Images of older versions of the script are of no further use.
	if old, err := os.ReadDir(base); err == nil {
		for _, e := range old {
			if e.IsDir() && e.Name() != key {
				os.RemoveAll(filepath.Join(base, e.Name()))
			}
		}
	}
	return dir
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// openImage opens a fixture image with the reader under test.
func openImage(t testing.TB, name string) (*ext4.FS, string) {
	t.Helper()
	img := filepath.Join(fixtureDir(t), name+".img")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext4.Open(f, st.Size(), &ext4.Options{Name: name})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys, img
}

// mountImage loop-mounts an image read-only (without loading its
// journal) and returns the mount point.
func mountImage(t testing.TB, img string) string {
	t.Helper()
	return mountWith(t, img, "ro,loop,noload")
}

func mountWith(t testing.TB, img, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the kernel comparison loop-mounts the image and needs root; CI runs as root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", "-o", opts, img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", img, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", mnt).Run()
			t.Logf("umount %s: %v %s", mnt, err, strings.TrimSpace(string(out)))
		}
	})
	return mnt
}

// facts reads the NAME.facts file make.sh wrote beside an image.
func facts(t testing.TB, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir(t), name+".facts"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, " ")
		m[k] = v
	}
	return m
}
