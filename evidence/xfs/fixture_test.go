package xfs

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// FixtureImage returns the path of an image made by testdata/xfs/make.sh
// (v5, small, legacy, orphan, fuzz). The images are made once, as root,
// under testdata/tmp/xfs-<hash of the script and the node collection>,
// and reused while neither changes. It fails, never skips, when not root.
func FixtureImage(t testing.TB, name string) string {
	t.Helper()
	root := testfix.RepoRoot(t)
	script := filepath.Join(root, "testdata", "xfs", "make.sh")
	node := testfix.NodeArchive(t)
	h := sha256.New()
	for _, p := range []string{script, node} {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	tmp := filepath.Join(root, "testdata", "tmp")
	dir := filepath.Join(tmp, "xfs-"+key)
	img := filepath.Join(dir, name+".img")
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return img
	}
	if os.Geteuid() != 0 {
		t.Fatal("making the XFS fixture images needs root (mkfs.xfs, loop mounts, trusted.* xattrs, mknod); CI runs as root")
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(tmp, "xfs.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return img
	}
	// Images of older scripts are stale.
	old, _ := filepath.Glob(filepath.Join(tmp, "xfs-*"))
	for _, o := range old {
		if o != dir && !strings.HasSuffix(o, ".lock") {
			os.RemoveAll(o)
		}
	}
	os.RemoveAll(dir)
	cmd := exec.Command("bash", script, dir, node)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make.sh: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "done"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

// OpenFixture opens a fixture image with this package.
func OpenFixture(t testing.TB, name string) *FS {
	t.Helper()
	img := FixtureImage(t, name)
	fh, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(fh, st.Size(), &Options{Name: img})
	if err != nil {
		t.Fatal(err)
	}
	return f
}
