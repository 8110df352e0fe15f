package xfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os/exec"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/evidence/xfs"
)

// mountImage mounts an image read-only (a read-only loop device, no log
// recovery) and returns the mount point.
func mountImage(t testing.TB, img string) string {
	t.Helper()
	mnt := t.TempDir()
	out, err := exec.Command("losetup", "-r", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup %s: %v\n%s", img, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	if out, err := exec.Command("mount", "-t", "xfs", "-o", "ro,norecovery,nouuid", dev, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", dev, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

func hashFile(src vfs.Source, name string, buf []byte) (string, int64, error) {
	f, err := src.Open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// treeStats counts what a comparison saw.
type treeStats struct {
	entries, files, dirs, symlinks, devices, fifos, sockets, xattrs int
	bytes                                                           int64
	whiteouts                                                       int
}

// compareTree compares every entry below name in the kernel's view (want)
// and ours (got): lstat, the listing, link targets, xattrs and content.
func compareTree(t *testing.T, want, got vfs.Source, name string, ts *treeStats) {
	t.Helper()
	wst, err := want.Lstat(name)
	if err != nil {
		t.Fatalf("kernel lstat %s: %v", name, err)
	}
	gst, err := got.Lstat(name)
	if err != nil {
		t.Errorf("lstat %s: %v", name, err)
		return
	}
	compareEntry(t, want, got, wst, gst, ts)
	buf := make([]byte, 256<<10)
	var walk func(dir string)
	walk = func(dir string) {
		wl, err := want.ReadDir(dir)
		if err != nil {
			t.Fatalf("kernel readdir %s: %v", dir, err)
		}
		gl, err := got.ReadDir(dir)
		if err != nil {
			t.Errorf("readdir %s: %v", dir, err)
			return
		}
		if len(wl) != len(gl) {
			t.Errorf("readdir %s: %d entries, kernel %d", dir, len(gl), len(wl))
		}
		for i := 0; i < len(wl) && i < len(gl); i++ {
			w, g := wl[i], gl[i]
			if w.Name != g.Name {
				t.Errorf("readdir %s: entry %d is %q, kernel %q", dir, i, g.Name, w.Name)
				return
			}
			compareEntry(t, want, got, w, g, ts)
			// Lstat by name agrees with the listing.
			if l, err := got.Lstat(g.Name); err != nil || !reflect.DeepEqual(l, g) {
				t.Errorf("lstat %s: %+v, %v; readdir said %+v", g.Name, l, err, g)
			}
			switch {
			case w.Mode.IsDir():
				walk(w.Name)
			case w.Mode.IsRegular():
				wh, wn, werr := hashFile(want, w.Name, buf)
				gh, gn, gerr := hashFile(got, g.Name, buf)
				if werr != nil {
					t.Fatalf("kernel read %s: %v", w.Name, werr)
				}
				if gerr != nil || gh != wh || gn != wn {
					t.Errorf("content %s: sha256 %s (%d bytes, %v), kernel %s (%d bytes)", g.Name, gh, gn, gerr, wh, wn)
				}
				ts.bytes += gn
			}
		}
	}
	if wst.Mode.IsDir() {
		walk(name)
	}
}

func compareEntry(t *testing.T, want, got vfs.Source, w, g *vfs.Stat, ts *treeStats) {
	t.Helper()
	ts.entries++
	if !reflect.DeepEqual(w, g) {
		t.Errorf("stat %s:\n got  %+v\n want %+v", g.Name, *g, *w)
	}
	wx, err := want.Xattrs(w.Name)
	if err != nil {
		t.Fatalf("kernel xattrs %s: %v", w.Name, err)
	}
	gx, err := got.Xattrs(g.Name)
	if err != nil || !reflect.DeepEqual(wx, gx) {
		t.Errorf("xattrs %s: %v\n got  %s\n want %s", g.Name, err, xattrKeys(gx), xattrKeys(wx))
		for k, v := range wx {
			if !bytes.Equal(gx[k], v) {
				t.Errorf("xattr %s %s: %d bytes, kernel %d", g.Name, k, len(gx[k]), len(v))
			}
		}
	}
	ts.xattrs += len(gx)
	switch {
	case w.Mode.IsDir():
		ts.dirs++
	case w.Mode.IsRegular():
		ts.files++
	case w.Mode&fs.ModeSymlink != 0:
		ts.symlinks++
		wl, err := want.Readlink(w.Name)
		if err != nil {
			t.Fatalf("kernel readlink %s: %v", w.Name, err)
		}
		gl, err := got.Readlink(g.Name)
		if err != nil || gl != wl {
			t.Errorf("readlink %s: %q, %v; kernel %q", g.Name, gl, err, wl)
		}
	case w.Mode&fs.ModeDevice != 0:
		ts.devices++
		if w.IsWhiteout() {
			ts.whiteouts++
		}
	case w.Mode&fs.ModeNamedPipe != 0:
		ts.fifos++
	case w.Mode&fs.ModeSocket != 0:
		ts.sockets++
	}
	if !w.Mode.IsRegular() {
		if _, err := got.Open(g.Name); !errors.Is(err, vfs.ErrNotRegular) {
			t.Errorf("open %s (%v): %v, want ErrNotRegular", g.Name, g.Mode, err)
		}
	}
}

func xattrKeys(m map[string][]byte) string {
	var k []string
	for n, v := range m {
		k = append(k, n+"("+strconv.Itoa(len(v))+")")
	}
	sort.Strings(k)
	return strings.Join(k, " ")
}

var mountMu sync.Mutex

// TestKernelEqual reads every fixture image through this package and
// through the kernel's own read-only mount of it, and requires the same
// answer for every path: lstat (mode, owner, size, links, inode, device,
// all four times to the nanosecond), listings, link targets, xattrs
// (trusted.* and the POSIX ACLs included) and the sha256 of every file.
func TestKernelEqual(t *testing.T) {
	// What make.sh made is all there: the node collection (849 members)
	// and /edge in the first three; a little in the others.
	node := treeStats{entries: 7436, files: 6676, dirs: 199, symlinks: 543, devices: 10, fifos: 7,
		sockets: 1, xattrs: 1641, bytes: 169452821, whiteouts: 7}
	wants := map[string]treeStats{"v5": node, "small": node, "legacy": node,
		"orphan": {entries: 3, files: 1, dirs: 2, bytes: 4096},
		"fuzz":   {entries: 1553, files: 1545, dirs: 5, symlinks: 2, devices: 1, xattrs: 342, bytes: 2453509, whiteouts: 1}}
	for _, name := range []string{"v5", "small", "legacy", "orphan", "fuzz"} {
		t.Run(name, func(t *testing.T) {
			mountMu.Lock()
			defer mountMu.Unlock()
			img := xfs.FixtureImage(t, name)
			kern, err := evidence.OpenDir(mountImage(t, img))
			if err != nil {
				t.Fatal(err)
			}
			defer kern.Close()
			ours := xfs.OpenFixture(t, name)
			var ts treeStats
			compareTree(t, kern, ours, ".", &ts)
			t.Logf("%s: %+v", name, ts)
			if w := ours.Warnings(); len(w) > 0 {
				t.Errorf("warnings on a clean image: %q", w)
			}
			if want := wants[name]; ts != want {
				t.Errorf("the tree is not what make.sh made:\n got  %+v\n want %+v", ts, want)
			}
		})
	}
}

// TestConcurrent hashes every file of the v5 image on two goroutines
// sharing one FS (as drift does) and requires the answers of a
// sequential pass; run with -race it also checks the caches' locking.
func TestConcurrent(t *testing.T) {
	f := xfs.OpenFixture(t, "v5")
	var files []string
	evidence.Walk(context.Background(), f, ".", func(st *vfs.Stat, err error) error {
		if err == nil && st.Mode.IsRegular() {
			files = append(files, st.Name)
		}
		return err
	})
	buf := make([]byte, 64<<10)
	want := map[string]string{}
	for _, n := range files {
		h, _, err := hashFile(f, n, buf)
		if err != nil {
			t.Fatal(err)
		}
		want[n] = h
	}
	g := xfs.OpenFixture(t, "v5") // cold caches, shared by both
	var wg sync.WaitGroup
	errs := make(chan string, 2)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for i := w; i < len(files)+w; i++ {
				n := files[(i*7+w)%len(files)]
				h, _, err := hashFile(g, n, buf)
				if err != nil || h != want[n] {
					errs <- n
					return
				}
				g.Lstat(n)
				g.Xattrs(n)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for n := range errs {
		t.Errorf("%s: concurrent read differs", n)
	}
	if len(files) != 6676 {
		t.Errorf("%d files", len(files))
	}
}

// TestErrorsLikeKernel asks both sources for what is not there or not
// allowed, and requires the same kind of error.
func TestErrorsLikeKernel(t *testing.T) {
	mountMu.Lock()
	defer mountMu.Unlock()
	kern, err := evidence.OpenDir(mountImage(t, xfs.FixtureImage(t, "v5")))
	if err != nil {
		t.Fatal(err)
	}
	defer kern.Close()
	ours := xfs.OpenFixture(t, "v5")
	kinds := []error{fs.ErrNotExist, vfs.ErrSymlinkInPath, vfs.ErrNotRegular, syscall.ENOTDIR, syscall.EINVAL, fs.ErrInvalid}
	kind := func(err error) string {
		if err == nil {
			return "nil"
		}
		for _, k := range kinds {
			if errors.Is(err, k) {
				return k.Error()
			}
		}
		return "other: " + err.Error()
	}
	ops := map[string]func(src vfs.Source, name string) error{
		"lstat":    func(s vfs.Source, n string) error { _, err := s.Lstat(n); return err },
		"readdir":  func(s vfs.Source, n string) error { _, err := s.ReadDir(n); return err },
		"readlink": func(s vfs.Source, n string) error { _, err := s.Readlink(n); return err },
		"xattrs":   func(s vfs.Source, n string) error { _, err := s.Xattrs(n); return err },
		"open": func(s vfs.Source, n string) error {
			f, err := s.Open(n)
			if err == nil {
				f.Close()
			}
			return err
		},
	}
	names := []string{"missing", "edge/missing/x", "edge/files/tiny/x", "edge/links/short/x", "edge/links/short",
		"edge/files/tiny", "edge", "edge/special/fifo", "edge/special/null", "edge/special/socket", "/edge/files/../files/tiny",
		"../etc", "edge/dirs/odd/sp ace", ".", ""}
	for _, n := range names {
		for op, fn := range ops {
			if w, g := kind(fn(kern, n)), kind(fn(ours, n)); w != g {
				t.Errorf("%s %q: %s, kernel %s", op, n, g, w)
			}
		}
	}
}
