package overlay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"golang.org/x/sys/unix"
)

// rec is what the kernel comparison looks at for one path.
type rec struct {
	Type   string
	Mode   fs.FileMode // permission + setuid/setgid/sticky
	UID    uint32
	GID    uint32
	Size   int64
	Nlink  uint64
	Link   string
	SHA256 string
	Xattrs string // user.* xattrs, sorted "k=v;"
}

func (r rec) String() string {
	return fmt.Sprintf("%s %v %d:%d size=%d nlink=%d link=%q sha=%.12s xattrs=%q", r.Type, r.Mode, r.UID, r.GID, r.Size, r.Nlink, r.Link, r.SHA256, r.Xattrs)
}

func permBits(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

func hashReader(t testing.TB, r io.Reader) string {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("hash: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func userXattrs(xs map[string][]byte) string {
	var ks []string
	for k, v := range xs {
		if strings.HasPrefix(k, "user.") {
			ks = append(ks, k+"="+string(v))
		}
	}
	sort.Strings(ks)
	return strings.Join(ks, ";")
}

// kernelTree walks a mounted tree with lstat, hashing regular files.
func kernelTree(t testing.TB, root string) map[string]rec {
	out := map[string]rec{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("kernel walk %s: %v", p, err)
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("lstat %s: %v", p, err)
			return nil
		}
		fi, _ := os.Lstat(p)
		r := rec{Type: TypeOf(fi.Mode()), Mode: permBits(fi.Mode()), UID: st.Uid, GID: st.Gid, Size: st.Size, Nlink: uint64(st.Nlink)}
		if r.Type == "dir" {
			r.Size = 0
		}
		switch r.Type {
		case "symlink":
			r.Link, _ = os.Readlink(p)
		case "file":
			f, err := os.Open(p)
			if err != nil {
				t.Errorf("open %s: %v", p, err)
				return nil
			}
			r.SHA256 = hashReader(t, f)
			f.Close()
		}
		r.Xattrs = userXattrs(hostXattrs(p))
		out[rel] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hostXattrs(p string) map[string][]byte {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		return nil
	}
	out := map[string][]byte{}
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" {
			continue
		}
		val := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(p, k, val)
		if err == nil {
			out[k] = val[:vn]
		}
	}
	return out
}

// viewTree walks a View the same way.
func viewTree(t testing.TB, v *View) map[string]rec {
	out := map[string]rec{}
	for e, err := range v.Walk(context.Background(), ".") {
		if err != nil {
			t.Errorf("view walk: %v", err)
			continue
		}
		r := rec{Type: e.Type(), Mode: permBits(e.Stat.Mode), UID: e.Stat.UID, GID: e.Stat.GID, Size: e.Stat.Size, Nlink: e.Stat.Nlink, Link: e.LinkTarget}
		if r.Type == "dir" {
			r.Size = 0
		}
		if r.Type == "file" {
			f, err := v.OpenEntry(e)
			if err != nil {
				t.Errorf("open %s: %v", e.Path, err)
				continue
			}
			r.SHA256 = hashReader(t, io.NewSectionReader(f, 0, f.Size()))
			f.Close()
		}
		xs, err := v.Xattrs(e)
		if err != nil {
			t.Errorf("xattrs %s: %v", e.Path, err)
		}
		r.Xattrs = userXattrs(xs)
		out[e.Path] = r
	}
	return out
}

// compareTrees reports every difference; nlink is compared only when
// withNlink.
func compareTrees(t testing.TB, kernel, view map[string]rec, withNlink bool) {
	t.Helper()
	var paths []string
	for p := range kernel {
		paths = append(paths, p)
	}
	for p := range view {
		if _, ok := kernel[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	diffs := 0
	for _, p := range paths {
		k, kok := kernel[p]
		g, gok := view[p]
		if !withNlink {
			k.Nlink, g.Nlink = 0, 0
		}
		switch {
		case !kok:
			t.Errorf("%q: in the view, not in the kernel mount: %v", p, g)
		case !gok:
			t.Errorf("%q: in the kernel mount, not in the view: %v", p, k)
		case k != g:
			t.Errorf("%q:\n kernel %v\n view   %v", p, k, g)
		default:
			continue
		}
		if diffs++; diffs > 40 {
			t.Fatalf("too many differences")
		}
	}
	if len(kernel) == 0 {
		t.Fatal("empty kernel tree")
	}
}

// noKernel reports whether the kernel comparison is explicitly disabled.
func noKernel(t testing.TB) bool {
	if os.Getenv("DEADNODE_NO_KERNEL") == "1" {
		t.Log("DEADNODE_NO_KERNEL=1: kernel overlay comparison not run")
		return true
	}
	return false
}

// mountOverlay mounts lowers read-only with the kernel's overlayfs and
// unmounts at cleanup. It fails the test when mounting is impossible.
func mountOverlay(t testing.TB, lowers []string) string {
	t.Helper()
	mnt := t.TempDir()
	for _, l := range lowers {
		if strings.ContainsAny(l, ":,\\") {
			t.Fatalf("layer path %q needs escaping", l)
		}
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",redirect_dir=follow,metacopy=on"
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount overlay (%s): %v (the kernel comparison needs root; set DEADNODE_NO_KERNEL=1 to leave it out)", opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

func dirLayers(t testing.TB, dirs ...string) []Layer {
	var out []Layer
	for i, d := range dirs {
		src, err := evidence.OpenDir(d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		out = append(out, Layer{Source: src, Dir: ".", Kind: LayerDir, Name: fmt.Sprintf("L%d", i)})
	}
	return out
}

// tb builds layer trees.
type tb struct {
	t    testing.TB
	root string
}

func (b tb) p(rel string) string { return filepath.Join(b.root, filepath.FromSlash(rel)) }

func (b tb) dir(rel string, mode os.FileMode) {
	b.t.Helper()
	if err := os.MkdirAll(b.p(rel), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Chmod(b.p(rel), mode); err != nil {
		b.t.Fatal(err)
	}
}

func (b tb) file(rel, data string, mode os.FileMode) {
	b.t.Helper()
	os.MkdirAll(filepath.Dir(b.p(rel)), 0o755)
	if err := os.WriteFile(b.p(rel), []byte(data), 0o600); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Chmod(b.p(rel), mode); err != nil {
		b.t.Fatal(err)
	}
}

func (b tb) symlink(rel, target string) {
	b.t.Helper()
	os.MkdirAll(filepath.Dir(b.p(rel)), 0o755)
	if err := os.Symlink(target, b.p(rel)); err != nil {
		b.t.Fatal(err)
	}
}

func (b tb) whiteout(rel string) {
	b.t.Helper()
	os.MkdirAll(filepath.Dir(b.p(rel)), 0o755)
	if err := unix.Mknod(b.p(rel), unix.S_IFCHR|0o000, 0); err != nil {
		b.t.Fatalf("mknod whiteout: %v", err)
	}
}

func (b tb) xattr(rel, name, val string) {
	b.t.Helper()
	if err := unix.Lsetxattr(b.p(rel), name, []byte(val), 0); err != nil {
		b.t.Fatalf("setxattr %s %s: %v", rel, name, err)
	}
}

func (b tb) chown(rel string, uid, gid int) {
	b.t.Helper()
	if err := os.Lchown(b.p(rel), uid, gid); err != nil {
		b.t.Fatal(err)
	}
}

func sha256Hex(s string) string {
	return hashReader(nil, strings.NewReader(s))
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// layerDirs makes an empty directory for each name, in a temporary
// directory: the layers of a test, top first.
func layerDirs(t testing.TB, names ...string) []string {
	t.Helper()
	base := t.TempDir()
	var dirs []string
	for _, n := range names {
		d := filepath.Join(base, n)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}
