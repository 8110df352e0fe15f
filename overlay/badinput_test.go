package overlay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"golang.org/x/sys/unix"
)

func TestMissingLayer(t *testing.T) {
	good := t.TempDir()
	src, err := evidence.OpenDir(good)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	os.WriteFile(filepath.Join(good, "file"), []byte("x"), 0o644)
	_, err = New([]Layer{{Source: src, Dir: ".", Name: "up"}, {Source: src, Dir: "snapshots/9/fs", Name: "9"}}, nil)
	if !errors.Is(err, ErrLayer) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "layer 1 (9): snapshots/9/fs") {
		t.Errorf("missing layer dir: %v", err)
	}
	_, err = New([]Layer{{Source: src, Dir: "file", Name: "f"}}, nil)
	if !errors.Is(err, ErrLayer) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("layer dir is a file: %v", err)
	}
	_, err = New([]Layer{{Source: src, Dir: "../escape", Name: "e"}}, nil)
	if !errors.Is(err, ErrLayer) {
		t.Errorf("layer dir with ..: %v", err)
	}
	os.MkdirAll(filepath.Join(good, "snapshots/6/fs"), 0o755)
	os.MkdirAll(filepath.Join(good, "snapshots/6/work/work"), 0o755)
	if _, err := New([]Layer{{Source: src, Dir: "snapshots/6/work", Name: "6"}}, nil); !errors.Is(err, ErrLayer) || !strings.Contains(err.Error(), "work dir") {
		t.Errorf("work dir as a layer: %v", err)
	}
	if _, err := New(nil, nil); !errors.Is(err, ErrLayer) {
		t.Errorf("no layers: %v", err)
	}
	_, err = New([]Layer{{Source: src, Name: "d", Deleted: []string{"../../etc/passwd"}}}, nil)
	if !errors.Is(err, ErrLayer) {
		t.Errorf("deleted path with ..: %v", err)
	}
}

func TestHostileRedirectsAndLinks(t *testing.T) {
	base := t.TempDir()
	up, low := tb{t, filepath.Join(base, "up")}, tb{t, filepath.Join(base, "low")}
	low.file("secret/inside.txt", "layer content\n", 0o644)
	low.file("a/b.txt", "b\n", 0o644)
	// A redirect that tries to climb out of the layer.
	up.dir("escape", 0o755)
	up.xattr("escape", "trusted.overlay.redirect", "/../../../etc")
	up.dir("escape-rel", 0o755)
	up.xattr("escape-rel", "trusted.overlay.redirect", "..")
	// A relative redirect with a slash: the kernel ignores it.
	up.dir("a", 0o755)
	up.xattr("a", "trusted.overlay.redirect", "x/y")
	up.whiteout("ghost") // whiteout over nothing
	// A chain of 40 links resolves; 41 do not.
	up.file("target", "end\n", 0o644)
	prev := "target"
	for i := 1; i <= 41; i++ {
		n := "chain" + itoa(i)
		up.symlink(n, prev)
		prev = n
	}
	up.symlink("abs-out", "/../../../../etc/passwd")
	up.file("bad\xffname", "invalid utf-8\n", 0o644)
	up.file("nl\nname", "newline\n", 0o644)
	// A metacopy file with nothing below and one with a corrupt value.
	up.file("mc-orphan", "", 0o644)
	os.Truncate(up.p("mc-orphan"), 10)
	up.xattr("mc-orphan", "trusted.overlay.metacopy", "")
	up.file("a/b.txt", "", 0o644)
	up.xattr("a/b.txt", "trusted.overlay.metacopy", "\x00\x09\x00")

	v, err := New(dirLayers(t, up.root, low.root), nil)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	var errs []error
	for e, err := range v.Walk(context.Background(), ".") {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		paths = append(paths, e.Path)
	}
	all := strings.Join(paths, "|")
	for _, p := range []string{"bad\xffname", "nl\nname", "a/b.txt", "secret/inside.txt", "chain41", "abs-out"} {
		if !strings.Contains("|"+all+"|", "|"+p+"|") {
			t.Errorf("walk lacks %q", p)
		}
	}
	if strings.Contains(all, "ghost") || strings.Contains(all, "passwd") {
		t.Errorf("walk shows %s", all)
	}
	var escapes int
	for _, err := range errs {
		if errors.Is(err, ErrRedirectEscape) {
			escapes++
		}
	}
	if escapes != 2 || len(errs) != 2 {
		t.Errorf("walk errors %v", errs)
	}
	if _, err := v.LstatEntry("escape/passwd"); !errors.Is(err, ErrRedirectEscape) {
		t.Errorf("escape lookup: %v", err)
	}
	e, err := v.LstatEntry("a")
	if err != nil || len(e.Anomalies) != 1 || !strings.Contains(e.Anomalies[0].String(), "invalid overlay redirect") || len(e.Merged) != 2 {
		t.Errorf("ignored redirect: %+v %v", e, err)
	}
	if p, err := v.Resolve("chain40"); err != nil || p != "target" {
		t.Errorf("40 links: %q %v", p, err)
	}
	if _, err := v.Resolve("chain41"); !errors.Is(err, evidence.ErrTooManyLinks) {
		t.Errorf("41 links: %v", err)
	}
	// ".." in a link stops at the container root: the layer's own file.
	if _, err := v.Stat("abs-out"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("abs-out: %v", err)
	}
	e, _ = v.LstatEntry("mc-orphan")
	if _, err := v.OpenEntry(e); err == nil || !strings.Contains(err.Error(), "no lower data") {
		t.Errorf("orphan metacopy: %v", err)
	}
	e, _ = v.LstatEntry("a/b.txt")
	if _, err := v.OpenEntry(e); !errors.Is(err, ErrInvalidMetacopy) {
		t.Errorf("corrupt metacopy: %v", err)
	}
	// Export goes on past the bad entries and says which they were.
	var buf bytes.Buffer
	man, err := CollectManifest(ExportMerged(context.Background(), &buf, v, nil))
	if err == nil || !strings.Contains(err.Error(), "mc-orphan") {
		t.Errorf("export error: %v", err)
	}
	mem := tarMembers(t, bytes.NewReader(buf.Bytes()))
	if _, ok := mem["bad\xffname"]; !ok {
		t.Errorf("export lost the invalid UTF-8 name: %v", len(man))
	}
	if _, ok := mem["nl\nname"]; !ok {
		t.Error("export lost the newline name")
	}
	for _, bad := range []string{"../x", "/a", "a/../b", "a\x00b"} {
		if _, err := v.Open(bad); err == nil {
			t.Errorf("Open(%q) accepted", bad)
		}
	}
}

func itoa(i int) string {
	return strings.TrimLeft(string([]byte{byte('0' + i/10), byte('0' + i%10)}), "0")
}

// A 10,000-deep directory with the default options: the walk stops at
// DefaultMaxDepth with an error, quickly, and lookups below it are refused.
func TestDeepDirectory(t *testing.T) {
	root, err := os.MkdirTemp(shmDir(), "deadnode-deep-")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		nfd, err := unix.Openat(fd, "d", unix.O_DIRECTORY|unix.O_RDONLY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = nfd
	}
	unix.Close(fd)
	// rm -rf (fts, descriptor-relative) removes it in linear time.
	t.Cleanup(func() { exec.Command("rm", "-rf", root).Run() })
	v, err := New(dirLayers(t, root), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, deep := 0, 0
	for _, err := range v.Walk(context.Background(), ".") {
		if err != nil {
			if !errors.Is(err, ErrTooDeep) {
				t.Errorf("walk: %v", err)
			}
			deep++
			continue
		}
		n++
	}
	if n != DefaultMaxDepth+1 || deep != 1 {
		t.Errorf("walked %d entries, %d depth errors", n, deep)
	}
	if _, err := v.LstatEntry(strings.Repeat("d/", DefaultMaxDepth+50)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep lookup: %v", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("deep walk took %v", d)
	}
	if _, err := CollectManifest(ExportMerged(context.Background(), io.Discard, v, nil)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep export: %v", err)
	}
}

// shmDir is a tmpfs when there is one: deleting 10,000 nested dirs on a
// disk mounted with discard takes seconds.
func shmDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return ""
}
