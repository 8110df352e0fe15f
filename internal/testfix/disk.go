package testfix

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// NodeUpperDir is the attacked container's upper dir inside the committed
// node collection, where the disk fixtures leave a deleted dropper.
const NodeUpperDir = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs"

var diskOnce struct {
	sync.Mutex
	dir string
}

// DiskImages returns the directory of the disk-image fixtures that
// testdata/disk/forge-disk.sh makes from the committed node collection (see
// that script for the list). They are made once, as root, into
// testdata/disk/.cache/<hash of the script and its inputs>/ (gitignored),
// under a file lock so that test binaries running in parallel wait for one
// another instead of racing; later runs reuse them. Not root, or a tool
// missing: the test fails (CI runs as root with the tools installed).
func DiskImages(t testing.TB) string {
	t.Helper()
	diskOnce.Lock()
	defer diskOnce.Unlock()
	if diskOnce.dir != "" {
		return diskOnce.dir
	}
	root := RepoRoot(t)
	script := filepath.Join(root, "testdata", "disk", "forge-disk.sh")
	node := NodeArchive(t)
	h := sha256.New()
	for _, p := range []string{script, node} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte{0})
	}
	h.Write([]byte(NodeUpperDir))
	key := hex.EncodeToString(h.Sum(nil))[:16]
	cacheDir := filepath.Join(root, "testdata", "disk", ".cache")
	dir := filepath.Join(cacheDir, key)
	done := filepath.Join(dir, ".done")
	if _, err := os.Stat(done); err == nil {
		diskOnce.dir = dir
		return dir
	}
	if os.Geteuid() != 0 {
		t.Fatal("making the disk-image fixtures needs root (loop devices, mounts, lvm; CI runs as root)")
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(done); err == nil { // made while we waited
		diskOnce.dir = dir
		return dir
	}
	// older generations are dropped: each is a few hundred MiB
	if old, err := os.ReadDir(cacheDir); err == nil {
		for _, e := range old {
			if e.IsDir() && e.Name() != key {
				os.RemoveAll(filepath.Join(cacheDir, e.Name()))
			}
		}
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	os.RemoveAll(tmp)
	cmd := exec.Command("bash", script, node, NodeUpperDir, tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("forge-disk.sh: %v\n%s", err, tail(string(out), 4000))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	diskOnce.dir = dir
	return dir
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[strings.IndexByte(s[len(s)-n:], '\n')+len(s)-n+1:]
}

// DiskSeed returns a committed fuzz seed made by forge-disk.sh (its seeds/
// dir, zstd-compressed under testdata/disk/seeds/): tiny real disks and
// images (tiny-gpt.raw, tiny-lvm.raw, tiny.qcow2, tiny.stream.vmdk, …) and
// the first bytes of the full fixtures' tables, PVs and filesystems.
func DiskSeed(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(RepoRoot(t), "testdata", "disk", "seeds", name+".zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(io.LimitReader(d, 64<<20))
	if err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
	return b
}

// DiskSeeds lists the committed seeds whose names match pattern (a
// filepath.Match pattern, without the .zst).
func DiskSeeds(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(RepoRoot(t), "testdata", "disk", "seeds", pattern+".zst"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no seeds match %s (%v)", pattern, err)
	}
	for i := range m {
		m[i] = strings.TrimSuffix(filepath.Base(m[i]), ".zst")
	}
	return m
}
