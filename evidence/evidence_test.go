package evidence

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// hostileDir builds an evidence root whose links point out of it, next to
// a file outside the root that must never be read.
func hostileDir(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside.txt")
	must(t, os.WriteFile(outside, []byte("HOST SECRET"), 0o644))
	must(t, os.MkdirAll(filepath.Join(root, "d", "e"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "d", "e", "f.txt"), []byte("inside"), 0o640))
	must(t, os.Symlink("/", filepath.Join(root, "link_root")))
	must(t, os.Symlink("../../../../../../..", filepath.Join(root, "d", "link_up")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(root, "link_passwd")))
	must(t, os.Symlink("../outside.txt", filepath.Join(root, "rel_out")))
	must(t, os.Symlink("loop_b", filepath.Join(root, "loop_a")))
	must(t, os.Symlink("loop_a", filepath.Join(root, "loop_b")))
	must(t, os.Symlink("e/f.txt", filepath.Join(root, "d", "ok")))
	must(t, syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	return root, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDirNeverLeavesRoot(t *testing.T) {
	root, _ := hostileDir(t)
	src, err := OpenDir(root)
	must(t, err)
	defer src.Close()

	// Primitives never follow a link, final or intermediate.
	if _, err := src.Open("link_passwd"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Open(link_passwd) = %v, want ErrNotRegular", err)
	}
	if _, err := src.Lstat("link_root/etc/passwd"); !errors.Is(err, ErrSymlinkInPath) {
		t.Errorf("Lstat through link = %v, want ErrSymlinkInPath", err)
	}
	if _, err := src.ReadDir("link_root"); err == nil {
		t.Error("ReadDir followed a link to /")
	}
	if _, err := src.Open("../outside.txt"); err == nil {
		t.Error("Open(../outside.txt) succeeded")
	}
	if _, err := src.Open("fifo"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Open(fifo) = %v, want ErrNotRegular without blocking", err)
	}
	// Resolve follows links inside the evidence's namespace only.
	for name, want := range map[string]string{
		"link_root/etc/passwd":  "etc/passwd",
		"d/link_up/outside.txt": "outside.txt",
		"rel_out":               "outside.txt",
		"link_passwd":           "etc/passwd",
		"d/ok":                  "d/e/f.txt",
		"/d/./e/../e/f.txt":     "d/e/f.txt",
	} {
		got, err := Resolve(src, name, true)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"etc/passwd", "outside.txt"} {
		if _, err := src.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists in the evidence: %v", name, err)
		}
	}
	if _, err := Resolve(src, "loop_a", true); !errors.Is(err, ErrTooManyLinks) {
		t.Errorf("Resolve(loop) = %v, want ErrTooManyLinks", err)
	}
	b, err := ReadFile(src, "d/e/f.txt", 100)
	if err != nil || string(b) != "inside" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := ReadFile(src, "d/e/f.txt", 3); err == nil {
		t.Error("ReadFile ignored its limit")
	}
	st, err := src.Lstat("d/e/f.txt")
	must(t, err)
	if st.Mode != 0o640 || st.Size != 6 || st.Nlink != 1 || st.Ino == 0 || st.Mtime.IsZero() {
		t.Errorf("Lstat = %+v", st)
	}
	if tgt, err := src.Readlink("link_passwd"); err != nil || tgt != "/etc/passwd" {
		t.Errorf("Readlink = %q, %v", tgt, err)
	}
	var names []string
	must(t, Walk(context.Background(), src, ".", func(st *Stat, err error) error {
		if err != nil {
			return err
		}
		names = append(names, st.Name)
		return nil
	}))
	want := []string{".", "d", "d/e", "d/e/f.txt", "d/link_up", "d/ok", "fifo", "link_passwd", "link_root", "loop_a", "loop_b", "rel_out"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("Walk = %v\nwant %v", names, want)
	}
}

func TestDirXattrsAndWhiteout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root for trusted.* xattrs and mknod (CI runs as root)")
	}
	root := t.TempDir()
	must(t, os.Mkdir(filepath.Join(root, "opq"), 0o755))
	must(t, syscall.Setxattr(filepath.Join(root, "opq"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, syscall.Mknod(filepath.Join(root, "wh"), syscall.S_IFCHR, 0))
	must(t, os.Symlink("opq", filepath.Join(root, "lnk")))
	src, err := OpenDir(root)
	must(t, err)
	defer src.Close()
	x, err := src.Xattrs("opq")
	if err != nil || string(x["trusted.overlay.opaque"]) != "y" {
		t.Errorf("Xattrs(opq) = %q, %v", x, err)
	}
	// A link's own xattrs, not its target's.
	if x, err := src.Xattrs("lnk"); err != nil || x["trusted.overlay.opaque"] != nil {
		t.Errorf("Xattrs(lnk) followed the link: %q, %v", x, err)
	}
	st, err := src.Lstat("wh")
	must(t, err)
	if !st.IsWhiteout() {
		t.Errorf("wh: %+v is not a whiteout", st)
	}
}

type member struct {
	hdr  tar.Header
	body string
}

func buildTar(t *testing.T, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := m.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(m.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		must(t, tw.WriteHeader(&h))
		if m.body != "" {
			_, err := tw.Write([]byte(m.body))
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func hostileTar(t *testing.T) []byte {
	return buildTar(t, []member{
		{tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "./etc/hostname", Typeflag: tar.TypeReg}, "node-1\n"},
		{tar.Header{Name: "../escape", Typeflag: tar.TypeReg}, "ESCAPED"},
		{tar.Header{Name: "a/../../escape2", Typeflag: tar.TypeReg}, "ESCAPED"},
		{tar.Header{Name: "/abs/file", Typeflag: tar.TypeReg}, "absolute"},
		{tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, ""},
		{tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "./etc/hostname"}, ""},
		{tar.Header{Name: "wh", Typeflag: tar.TypeChar, Devmajor: 0, Devminor: 0}, ""},
		{tar.Header{Name: "x", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}}, "xx"},
	})
}

func compress(t *testing.T, b []byte, c Compression) []byte {
	var buf bytes.Buffer
	switch c {
	case CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case CompressionZstd:
		w, err := zstd.NewWriter(&buf)
		must(t, err)
		w.Write(b)
		w.Close()
	default:
		return b
	}
	return buf.Bytes()
}

func TestArchiveHostileMembers(t *testing.T) {
	raw := hostileTar(t)
	for _, c := range []Compression{CompressionNone, CompressionGzip, CompressionZstd} {
		t.Run(string(c), func(t *testing.T) {
			data := compress(t, raw, c)
			a, err := NewArchive(context.Background(), bytes.NewReader(data), int64(len(data)), "hostile.tar", nil)
			must(t, err)
			defer a.Close()
			if a.Compression() != c {
				t.Errorf("compression %s", a.Compression())
			}
			w := fmt.Sprint(a.Warnings())
			for _, want := range []string{`member "../escape" climbs out`, `member "a/../../escape2" climbs out`, `member "/abs/file" has an absolute name`} {
				if !strings.Contains(w, want) {
					t.Errorf("warnings lack %q:\n%s", want, w)
				}
			}
			var names []string
			must(t, Walk(context.Background(), a, ".", func(st *Stat, err error) error {
				names = append(names, st.Name)
				return err
			}))
			want := []string{".", "abs", "abs/file", "etc", "etc/hostname", "hard", "lnk", "wh", "x"}
			if !reflect.DeepEqual(names, want) {
				t.Errorf("names %v, want %v", names, want)
			}
			b, err := ReadFile(a, "hard", 100)
			if err != nil || string(b) != "node-1\n" {
				t.Errorf("hard link read %q, %v", b, err)
			}
			st, _ := a.Lstat("etc/hostname")
			if st.Nlink != 2 || st.Size != 7 || st.Ino == 0 {
				t.Errorf("hostname stat %+v", st)
			}
			if hl, _ := a.Lstat("hard"); hl.Ino != st.Ino || hl.Nlink != 2 {
				t.Errorf("hard link %+v does not share %d", hl, st.Ino)
			}
			if x, _ := a.Lstat("x"); x.Ino == st.Ino {
				t.Errorf("two files share inode %d", x.Ino)
			}
			if tgt, ok := a.Hardlink("hard"); !ok || tgt != "etc/hostname" {
				t.Errorf("Hardlink(hard) = %q %v", tgt, ok)
			}
			if !a.Implicit("abs") || a.Implicit("etc") || a.Implicit("etc/hostname") {
				t.Errorf("Implicit: abs %v etc %v", a.Implicit("abs"), a.Implicit("etc"))
			}
			if _, err := a.Lstat("lnk/hostname"); !errors.Is(err, ErrSymlinkInPath) {
				t.Errorf("Lstat through archive link = %v", err)
			}
			if r, err := Resolve(a, "lnk/hostname", true); err != nil || r != "etc/hostname" {
				t.Errorf("Resolve = %q %v", r, err)
			}
			if st, _ := a.Lstat("wh"); !st.IsWhiteout() {
				t.Errorf("wh not a whiteout: %+v", st)
			}
			if x, _ := a.Xattrs("x"); string(x["trusted.overlay.opaque"]) != "y" {
				t.Errorf("xattrs %q", x)
			}
		})
	}
}

func TestArchiveTruncatedAndGarbage(t *testing.T) {
	raw := hostileTar(t)
	cut := raw[:1024+300] // inside the third member
	a, err := NewArchive(context.Background(), bytes.NewReader(cut), int64(len(cut)), "cut.tar", nil)
	must(t, err)
	defer a.Close()
	if _, err := a.Lstat("etc"); err != nil {
		t.Errorf("members before the damage are lost: %v", err)
	}
	b, err := ReadFile(a, "etc/hostname", 100)
	if err == nil {
		t.Errorf("read %q from a member cut short", b)
	}
	garbage := bytes.Repeat([]byte("not a tar "), 100)
	_, err = NewArchive(context.Background(), bytes.NewReader(garbage), int64(len(garbage)), "garbage.tar", nil)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.File != "garbage.tar" || fe.Offset != 0 {
		t.Errorf("garbage: %v", err)
	}
}

func TestArchiveSpillLimitAndRetain(t *testing.T) {
	raw := buildTar(t, []member{
		{tar.Header{Name: "big", Typeflag: tar.TypeReg}, strings.Repeat("A", 100000)},
		{tar.Header{Name: "small", Typeflag: tar.TypeReg}, "s"},
	})
	gz := compress(t, raw, CompressionGzip)
	_, err := NewArchive(context.Background(), bytes.NewReader(gz), int64(len(gz)), "bomb.tar.gz", &ArchiveOptions{MaxSpill: 50000})
	if err == nil || !strings.Contains(err.Error(), "passes the 50000-byte limit") {
		t.Errorf("spill limit: %v", err)
	}
	a, err := NewArchive(context.Background(), bytes.NewReader(gz), int64(len(gz)), "sel.tar.gz", &ArchiveOptions{Retain: func(n string, _ int64) bool { return n == "small" }})
	must(t, err)
	defer a.Close()
	if _, err := a.Open("big"); !errors.Is(err, ErrNotRetained) {
		t.Errorf("big: %v", err)
	}
	if b, err := ReadFile(a, "small", 10); err != nil || string(b) != "s" {
		t.Errorf("small: %q %v", b, err)
	}
}

func TestSub(t *testing.T) {
	raw := hostileTar(t)
	a, err := NewArchive(context.Background(), bytes.NewReader(raw), int64(len(raw)), "h.tar", nil)
	must(t, err)
	s, err := Sub(a, "etc")
	must(t, err)
	st, err := s.Lstat("hostname")
	if err != nil || st.Name != "hostname" {
		t.Errorf("Sub Lstat %+v %v", st, err)
	}
	if _, err := s.Lstat("../x"); err == nil {
		t.Error("Sub let .. out")
	}
	// A root-level dot name keeps its dot.
	raw2 := buildTar(t, []member{{tar.Header{Name: "d/.hidden", Typeflag: tar.TypeReg}, "h"}, {tar.Header{Name: "d/.", Typeflag: tar.TypeDir}, ""}})
	a2, err := NewArchive(context.Background(), bytes.NewReader(raw2), int64(len(raw2)), "h2.tar", nil)
	must(t, err)
	s2, err := Sub(a2, "d")
	must(t, err)
	if st, err := s2.Lstat(".hidden"); err != nil || st.Name != ".hidden" {
		t.Errorf("Sub .hidden: %+v %v", st, err)
	}
	if ents, err := s2.ReadDir("."); err != nil || len(ents) != 1 || ents[0].Name != ".hidden" {
		t.Errorf("Sub ReadDir: %v %v", ents, err)
	}
	f, err := s.Open("/hostname")
	must(t, err)
	b, _ := io.ReadAll(f)
	if string(b) != "node-1\n" {
		t.Errorf("Sub read %q", b)
	}
}

func fdCount(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	return len(ents)
}

// TestDirCacheConcurrent reads a tree with more directories than the
// descriptor cache holds, from several goroutines, and checks that every
// answer is right and no descriptor leaks.
func TestDirCacheConcurrent(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < 150; i++ {
		p := filepath.Join(root, "a", "b", fmt.Sprintf("d%03d", i), "e")
		must(t, os.MkdirAll(p, 0o755))
		must(t, os.WriteFile(filepath.Join(p, "f"), []byte(fmt.Sprint(i)), 0o644))
	}
	before := fdCount(t)
	src, err := OpenDir(root)
	must(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := 0; k < 600; k++ {
				i := (k*7 + g*13) % 150
				name := fmt.Sprintf("a/b/d%03d/e/f", i)
				b, err := ReadFile(src, name, 10)
				if err != nil || string(b) != fmt.Sprint(i) {
					errs <- fmt.Errorf("%s: %q %v", name, b, err)
					return
				}
				if _, err := src.Lstat(fmt.Sprintf("a/b/d%03d/e", i)); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := fdCount(t) - before; n > dirCacheSize+2 {
		t.Errorf("%d descriptors open while in use, cache holds %d", n, dirCacheSize)
	}
	must(t, src.Close())
	// Fewer than before is fine: a descriptor of an earlier test may be
	// closed (by the garbage collector) meanwhile; more is a leak.
	if n := fdCount(t); n > before {
		t.Errorf("%d descriptors after Close, %d before", n, before)
	}
}

// TestDirReadOnlyClone: as root, a directory is read through a private
// read-only, noatime clone of its mount, so even readlink leaves a link's
// atime alone, and the evidence cannot be written through the source.
func TestDirReadOnlyClone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs CAP_SYS_ADMIN (CI runs as root)")
	}
	root := t.TempDir()
	must(t, os.Symlink("target", filepath.Join(root, "lnk")))
	old := time.Unix(1600000000, 0)
	// atime older than ctime: relatime would update it on readlink.
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, "lnk"), []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW))
	src, err := OpenDir(root)
	must(t, err)
	defer src.Close()
	if !src.ReadOnlyClone() || !src.ReadOnlyMount() {
		t.Fatalf("clone %v read-only %v", src.ReadOnlyClone(), src.ReadOnlyMount())
	}
	if tgt, err := src.Readlink("lnk"); err != nil || tgt != "target" {
		t.Fatalf("Readlink %q %v", tgt, err)
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(root, "lnk"), &st))
	if st.Atim.Sec != old.Unix() {
		t.Errorf("readlink moved the link's atime to %d", st.Atim.Sec)
	}
	// The clone refuses writes outright.
	if err := unix.Mkdirat(src.fd, "new", 0o755); err != unix.EROFS {
		t.Errorf("mkdir through the clone: %v, want EROFS", err)
	}
	// Without the clone (as a user without CAP_SYS_ADMIN), the same readlink
	// does move it: the test can fail.
	plain, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	must(t, err)
	defer unix.Close(plain)
	buf := make([]byte, 64)
	unix.Readlinkat(plain, "lnk", buf)
	must(t, unix.Lstat(filepath.Join(root, "lnk"), &st))
	if st.Atim.Sec == old.Unix() {
		t.Errorf("a plain readlink did not move the atime: the check above proves nothing")
	}
}
