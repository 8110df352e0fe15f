package overlay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// On a kernel overlay mount read as a directory, an entry the kernel
// cannot stat (a metacopy file without its data answers EIO) is left out
// of its directory's listing with a warning, and its siblings are listed:
// the listing stopped at it, and every caller dropped the partial list.
func TestDirReadDirSkipsUnstatable(t *testing.T) {
	base := t.TempDir()
	var dirs []string
	for _, n := range []string{"top", "bottom"} {
		d := filepath.Join(base, n)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	top, bottom := tb{t, dirs[0]}, tb{t, dirs[1]}
	bottom.file("d/b-kept", "kept\n", 0o644)
	top.file("d/c-kept", "kept\n", 0o644)
	top.file("d/a-bad", "", 0o644)
	if err := os.Truncate(top.p("d/a-bad"), 10); err != nil {
		t.Fatal(err)
	}
	top.xattr("d/a-bad", "trusted.overlay.metacopy", "")
	d, err := evidence.OpenDir(mountOverlay(t, dirs))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ents, err := d.ReadDir("d")
	if err != nil || len(ents) != 2 || ents[0].Name != "d/b-kept" || ents[1].Name != "d/c-kept" {
		t.Fatalf("ReadDir: %v, %v", ents, err)
	}
	if w := strings.Join(d.Warnings(), "\n"); !strings.Contains(w, "d/a-bad") || !strings.Contains(w, "left out of its directory") {
		t.Errorf("warnings %q", w)
	}
}

// Redirects met while following an absolute redirect are taken from the
// path as rewritten so far, as the kernel's lookup does: q names /a/b/c,
// a names /x and a/b names y, so q is x/y/c (deep.txt), not a/y/c.
func TestNestedRedirects(t *testing.T) {
	base := t.TempDir()
	var dirs []string
	for _, n := range []string{"l0", "l1", "l2"} {
		d := filepath.Join(base, n)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	l0, l1, l2 := tb{t, dirs[0]}, tb{t, dirs[1]}, tb{t, dirs[2]}
	l2.file("x/y/c/deep.txt", "right\n", 0o644)
	l2.file("a/y/c/wrong.txt", "wrong\n", 0o644)
	l2.file("z/y/c/deep2.txt", "right2\n", 0o644)
	l2.file("m/y/c/wrong2.txt", "wrong2\n", 0o644)
	l1.file("a/b/c/l1file", "l1\n", 0o644) // absolute, then relative
	l1.xattr("a", "trusted.overlay.redirect", "/x")
	l1.xattr("a/b", "trusted.overlay.redirect", "y")
	l1.file("m/b/c/l1file2", "l1\n", 0o644) // relative, then relative
	l1.xattr("m", "trusted.overlay.redirect", "z")
	l1.xattr("m/b", "trusted.overlay.redirect", "y")
	l0.file("q/top", "top\n", 0o644)
	l0.xattr("q", "trusted.overlay.redirect", "/a/b/c")
	l0.file("r/top", "top\n", 0o644)
	l0.xattr("r", "trusted.overlay.redirect", "/m/b/c")
	v, err := New(dirLayers(t, dirs...), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := viewTree(t, v)
	compareTrees(t, kernelTree(t, mountOverlay(t, dirs)), got, false)
	for _, want := range []string{"q/deep.txt", "r/deep2.txt"} {
		if _, err := v.LstatEntry(want); err != nil {
			t.Errorf("%s: %v", want, err)
		}
	}
}
