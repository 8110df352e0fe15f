package overlay

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"golang.org/x/sys/unix"
)

// buildLayers makes three layer dirs (upper first) exercising every
// overlay feature the kernel honours on a read-only mount.
func buildLayers(t testing.TB) []string { return buildLayersNS(t, "trusted.overlay.", true) }

// buildLayersNS writes the overlay attributes under prefix; without
// redirects it leaves out renamed dirs and metacopy files (a userxattr
// mount refuses to follow them).
func buildLayersNS(t testing.TB, prefix string, redirects bool) []string {
	dirs := layerDirs(t, "l0", "l1", "l2")
	l0, l1, l2 := tb{t, dirs[0]}, tb{t, dirs[1]}, tb{t, dirs[2]}

	// Base layer.
	l2.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	l2.file("etc/motd", "welcome\n", 0o644)
	l2.file("etc/gone.conf", "x=1\n", 0o640)
	l2.file("opt/cache/a.dat", "aaaa", 0o644)
	l2.file("opt/cache/b.dat", "bbbb", 0o644)
	l2.file("olddir/x.txt", "x in olddir\n", 0o644)
	l2.file("olddir/sub/y.txt", "y in olddir/sub\n", 0o600)
	l2.file("absold/inner/p.txt", "p\n", 0o644)
	l2.file("absold/inner/q/r.txt", "r\n", 0o644)
	l2.file("absold/keep.txt", "keep\n", 0o644)
	l2.file("bin/busybox", strings.Repeat("BUSYBOX", 4096), 0o755)
	if err := os.Link(l2.p("bin/busybox"), l2.p("bin/sh")); err != nil {
		t.Fatal(err)
	}
	l2.symlink("bin/ls", "/bin/busybox")
	l2.symlink("link-abs", "/etc/passwd")
	l2.symlink("link-rel", "etc/passwd")
	l2.symlink("link-up", "../../etc/passwd")
	l2.symlink("dangling", "/nonexistent/target")
	l2.symlink("loop1", "loop2")
	l2.symlink("loop2", "loop1")
	l2.dir("run", 0o755)
	if err := unix.Mkfifo(l2.p("run/fifo"), 0o620); err != nil {
		t.Fatal(err)
	}
	l2.file("usr/bin/su", "su binary", fs.ModeSetuid|0o755)
	l2.file("usr/bin/wall", "wall binary", fs.ModeSetgid|0o755)
	l2.dir("tmp", fs.ModeSticky|0o777)
	l2.file("ünïcødé файл.txt", "unicode\n", 0o644)
	l2.file("name with space", "space\n", 0o644)
	l2.file("new\nline", "newline\n", 0o644)
	l2.file("xattr-file", "has xattrs\n", 0o644)
	l2.xattr("xattr-file", "user.test", "value-1")
	l2.file("thing", "thing was a file\n", 0o644)
	l2.file("stuff/inside.txt", "stuff dir content\n", 0o644)
	l2.file("data/big.bin", strings.Repeat("0123456789abcdef", 8192), 0o644)
	l2.file("data/orig.bin", strings.Repeat("original data ", 1000), 0o644)
	l2.file("xw/gone", "hidden by an xattr whiteout\n", 0o644)
	l2.file("xw/kept", "kept\n", 0o644)
	l2.file("var/log/old.log", "old log\n", 0o644)
	l2.file("home/user/.profile", "export A=1\n", 0o644)
	l2.chown("home/user/.profile", 1000, 1000)
	l2.chown("home/user", 1000, 1000)
	l2.dir("empty", 0o700)

	// Middle layer: image-style whiteouts and opaque dirs.
	l1.whiteout("etc/gone.conf")
	l1.file("opt/cache/c.dat", "cccc", 0o644)
	l1.xattr("opt/cache", prefix+"opaque", "y")
	l1.file("thing/now-a-dir.txt", "dir over file\n", 0o644)
	l1.file("stuff", "file over dir\n", 0o644)
	l1.dir("xw", 0o755)
	l1.xattr("xw", prefix+"opaque", "x")
	l1.file("xw/gone", "", 0o644)
	l1.xattr("xw/gone", prefix+"whiteout", "")
	l1.file("xw/new", "new in l1\n", 0o644)
	l1.file("etc/group", "root:x:0:\n", 0o644)
	l1.dir("etc", 0o755)

	// Upper layer: container changes.
	l0.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nsysupd:x:0:0:sysupd:/root:/bin/sh\n", 0o644)
	l0.whiteout("etc/motd")
	l0.whiteout("nothing-here") // a whiteout over nothing
	if redirects {
		// olddir renamed to newdir (relative redirect) plus a new file.
		l0.whiteout("olddir")
		l0.file("newdir/z.txt", "z new\n", 0o644)
		l0.xattr("newdir", prefix+"redirect", "olddir")
		// absold/inner moved to moved/here (absolute redirect).
		l0.whiteout("absold/inner")
		l0.file("moved/here/added.txt", "added\n", 0o644)
		l0.xattr("moved/here", prefix+"redirect", "/absold/inner")
	}
	// Opaque dir in the upper layer.
	l0.file("var/log/new.log", "new log\n", 0o644)
	l0.xattr("var/log", prefix+"opaque", "y")
	if redirects {
		// Metacopy: metadata-only copy-ups, one by path, one by redirect.
		l0.dir("data", 0o755)
		l0.file("data/big.bin", "", 0o600)
		if err := os.Truncate(l0.p("data/big.bin"), 16*8192); err != nil {
			t.Fatal(err)
		}
		l0.chown("data/big.bin", 33, 33)
		l0.xattr("data/big.bin", prefix+"metacopy", "")
		l0.file("data/renamed.bin", "", 0o640)
		if err := os.Truncate(l0.p("data/renamed.bin"), 14*1000); err != nil {
			t.Fatal(err)
		}
		l0.xattr("data/renamed.bin", prefix+"metacopy", "")
		l0.xattr("data/renamed.bin", prefix+"redirect", "/data/orig.bin")
		l0.whiteout("data/orig.bin")
	}
	// New files of the attack.
	l0.dir("tmp", fs.ModeSticky|0o777)
	l0.file("tmp/.x/miner", strings.Repeat("BUSYBOX", 4096), 0o755)
	l0.symlink("tmp/.x/self", "/tmp/.x/miner")
	l0.file("usr/local/bin/backdoor.sh", "exec nc -ll -p 4444 -e /bin/sh\n", 0o755)
	l0.xattr("usr/local/bin/backdoor.sh", "user.mark", "evil")
	l0.file("home/user/.profile", "export A=2\n", 0o600)
	l0.chown("home/user/.profile", 1000, 1000)
	if err := os.Link(l0.p("tmp/.x/miner"), l0.p("tmp/.x/miner2")); err != nil {
		t.Fatal(err)
	}
	return dirs
}

func TestKernelCompare(t *testing.T) {
	dirs := buildLayers(t)
	v, err := New(dirLayers(t, dirs...), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := viewTree(t, v)
	checkSynthetic(t, v, got)
	if noKernel(t) {
		return
	}
	mnt := mountOverlay(t, dirs)
	compareTrees(t, kernelTree(t, mnt), got, true)
}

// The user.overlay.* forms, as a userxattr mount (rootless podman) reads
// them: whiteouts, xattr whiteouts, opaque dirs. The kernel refuses
// redirect_dir and metacopy with userxattr, so those are left out.
func TestKernelCompareUserXattr(t *testing.T) {
	dirs := buildLayersNS(t, "user.overlay.", false)
	v, err := New(dirLayers(t, dirs...), &Options{Xattrs: XattrUser})
	if err != nil {
		t.Fatal(err)
	}
	got := viewTree(t, v)
	for _, p := range []string{"opt/cache/a.dat", "xw/gone", "var/log/old.log", "etc/motd"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s shown", p)
		}
	}
	// Read as trusted.overlay.* only, the user attributes mean nothing.
	vt, err := New(dirLayers(t, dirs...), &Options{Xattrs: XattrTrusted})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vt.LstatEntry("opt/cache/a.dat"); err != nil {
		t.Errorf("trusted-only view: %v", err)
	}
	if noKernel(t) {
		return
	}
	mnt := t.TempDir()
	opts := "lowerdir=" + strings.Join(dirs, ":") + ",userxattr"
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount overlay (%s): %v", opts, err)
	}
	defer unix.Unmount(mnt, 0)
	compareTrees(t, kernelTree(t, mnt), got, true)
}

// checkSynthetic asserts the facts the layers were built for, whatever
// the kernel says.
func checkSynthetic(t *testing.T, v *View, got map[string]rec) {
	for _, p := range []string{"etc/motd", "etc/gone.conf", "opt/cache/a.dat", "opt/cache/b.dat", "olddir", "absold/inner", "var/log/old.log", "xw/gone", "stuff/inside.txt", "nothing-here", "data/orig.bin"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s should be hidden", p)
		}
	}
	want := map[string]string{
		"opt/cache/c.dat":           "file",
		"newdir/x.txt":              "file",
		"newdir/sub/y.txt":          "file",
		"newdir/z.txt":              "file",
		"moved/here/p.txt":          "file",
		"moved/here/q/r.txt":        "file",
		"moved/here/added.txt":      "file",
		"absold/keep.txt":           "file",
		"var/log/new.log":           "file",
		"xw/kept":                   "file",
		"xw/new":                    "file",
		"thing":                     "dir",
		"thing/now-a-dir.txt":       "file",
		"stuff":                     "file",
		"run/fifo":                  "fifo",
		"loop1":                     "symlink",
		"new\nline":                 "file",
		"ünïcødé файл.txt":          "file",
		"data/big.bin":              "file",
		"data/renamed.bin":          "file",
		"tmp/.x/miner":              "file",
		"usr/local/bin/backdoor.sh": "file",
	}
	for p, typ := range want {
		if got[p].Type != typ {
			t.Errorf("%s: type %q, want %q", p, got[p].Type, typ)
		}
	}
	if r := got["data/big.bin"]; r.UID != 33 || r.Mode != 0o600 || r.Size != 131072 || r.SHA256 != sha256Hex(strings.Repeat("0123456789abcdef", 8192)) {
		t.Errorf("metacopy data/big.bin: %v", r)
	}
	if r := got["data/renamed.bin"]; r.SHA256 != sha256Hex(strings.Repeat("original data ", 1000)) || r.Mode != 0o640 {
		t.Errorf("metacopy+redirect data/renamed.bin: %v", r)
	}
	if r := got["usr/bin/su"]; r.Mode != fs.ModeSetuid|0o755 {
		t.Errorf("setuid: %v", r)
	}
	if r := got["tmp"]; r.Mode != fs.ModeSticky|0o777 {
		t.Errorf("sticky tmp: %v", r)
	}
	if r := got["usr/local/bin/backdoor.sh"]; r.Xattrs != "user.mark=evil" {
		t.Errorf("xattrs: %v", r)
	}
	// Origins.
	e, err := v.LstatEntry("/etc/passwd")
	if err != nil || e.Origin.Layer != 0 || e.Origin.LayerName != "L0" {
		t.Errorf("etc/passwd origin: %+v %v", e, err)
	}
	e, err = v.LstatEntry("newdir/sub/y.txt")
	if err != nil || e.Origin.Layer != 2 || e.Origin.Path != "olddir/sub/y.txt" {
		t.Errorf("newdir/sub/y.txt origin: %+v %v", e, err)
	}
	e, err = v.LstatEntry("newdir")
	if err != nil || e.Redirect != "olddir" || len(e.Merged) != 2 || e.Merged[1].Path != "olddir" || e.Stat.Nlink != 1 {
		t.Errorf("newdir: %+v %v", e, err)
	}
	e, err = v.LstatEntry("moved/here")
	if err != nil || e.Redirect != "/absold/inner" || len(e.Merged) != 2 || e.Merged[1] != (Origin{2, "L2", "absold/inner"}) {
		t.Errorf("moved/here: %+v %v", e, err)
	}
	e, _ = v.LstatEntry("opt/cache")
	if !e.Opaque || e.Origin.Layer != 1 || len(e.Merged) != 1 {
		t.Errorf("opt/cache: %+v", e)
	}
	e, _ = v.LstatEntry("data/big.bin")
	o, mc, err := v.DataOrigin(e)
	if err != nil || mc == nil || o != (Origin{2, "L2", "data/big.bin"}) || e.Origin.Layer != 0 {
		t.Errorf("metacopy origin: %+v %+v %v", o, mc, err)
	}
	e, _ = v.LstatEntry("data/renamed.bin")
	if o, mc, err := v.DataOrigin(e); err != nil || mc == nil || o.Path != "data/orig.bin" {
		t.Errorf("metacopy redirect origin: %+v %+v %v", o, mc, err)
	}
	// Symlinks resolve in the merged namespace.
	for _, c := range []struct{ name, want string }{
		{"link-abs", "etc/passwd"}, {"link-rel", "etc/passwd"}, {"link-up", "etc/passwd"},
		{"bin/ls", "bin/busybox"}, {"tmp/.x/self", "tmp/.x/miner"},
	} {
		if p, err := v.Resolve(c.name); err != nil || p != c.want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", c.name, p, err, c.want)
		}
	}
	b, err := fs.ReadFile(v, "link-up")
	if err != nil || !strings.Contains(string(b), "sysupd:x:0:0") {
		t.Errorf("ReadFile(link-up) = %q, %v", b, err)
	}
	if _, err := v.Stat("loop1"); !errors.Is(err, evidence.ErrTooManyLinks) {
		t.Errorf("loop: %v", err)
	}
	if _, err := v.Stat("dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dangling: %v", err)
	}
	if tgt, err := v.ReadLink("dangling"); err != nil || tgt != "/nonexistent/target" {
		t.Errorf("ReadLink dangling = %q, %v", tgt, err)
	}
	if _, err := v.Lstat("etc/motd"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("whiteout etc/motd: %v", err)
	}
	// The hardlink pair of the base layer shows nlink 2 in both names.
	if got["bin/sh"].Nlink != 2 || got["bin/busybox"].Nlink != 2 {
		t.Errorf("hardlinks: %v %v", got["bin/sh"], got["bin/busybox"])
	}
	f, err := v.Open("data/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 16)
	if _, err := io.ReadFull(f, head); err != nil || string(head) != "0123456789abcdef" {
		t.Errorf("read metacopy: %q %v", head, err)
	}
	f.Close()
}
