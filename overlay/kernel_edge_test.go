package overlay

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
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
	dirs := layerDirs(t, "top", "bottom")
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
	dirs := layerDirs(t, "l0", "l1", "l2")
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

// Two names of one metacopy inode whose data is in no layer: neither can
// be stored, and neither is: the second was written as a hard link to the
// first, which the tar did not hold (extracting it failed).
func TestExportNoLinkToAMissingMember(t *testing.T) {
	up := tb{t, filepath.Join(t.TempDir(), "up")}
	up.file("m1", "", 0o644)
	if err := os.Truncate(up.p("m1"), 10); err != nil {
		t.Fatal(err)
	}
	up.xattr("m1", "trusted.overlay.metacopy", "")
	if err := os.Link(up.p("m1"), up.p("m2")); err != nil {
		t.Fatal(err)
	}
	v, err := New(dirLayers(t, up.root), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	failed := 0
	for _, err := range ExportMerged(context.Background(), &buf, v, nil) {
		if err != nil {
			failed++
		}
	}
	names := map[string]bool{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeLink && !names[h.Linkname] {
			t.Errorf("%s links to %s, which the tar does not hold before it", h.Name, h.Linkname)
		}
		names[h.Name] = true
	}
	if failed != 2 || names["m1"] || names["m2"] {
		t.Errorf("%d errors, members %v", failed, names)
	}
}

// A directory opened through io/fs says the entries it could not resolve
// (a redirect out of the layers), as View.ReadDir does: its ReadDir
// dropped the error whenever another entry resolved.
func TestFSDirReadDirSaysErrors(t *testing.T) {
	base := t.TempDir()
	up, low := tb{t, filepath.Join(base, "up")}, tb{t, filepath.Join(base, "low")}
	low.file("a.txt", "a", 0o644)
	up.dir("escape", 0o755)
	up.xattr("escape", "trusted.overlay.redirect", "/../etc")
	v, err := New(dirLayers(t, up.root, low.root), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, werr := v.ReadDir(".")
	if len(want) != 1 || !errors.Is(werr, ErrRedirectEscape) {
		t.Fatalf("View.ReadDir: %v, %v", want, werr)
	}
	for _, n := range []int{-1, 1} {
		f, err := v.Open(".")
		if err != nil {
			t.Fatal(err)
		}
		ents, err := f.(fs.ReadDirFile).ReadDir(n)
		if len(ents) != 1 || ents[0].Name() != "a.txt" || !errors.Is(err, ErrRedirectEscape) {
			t.Errorf("ReadDir(%d): %v, %v", n, ents, err)
		}
		if n > 0 {
			if ents, err := f.(fs.ReadDirFile).ReadDir(n); len(ents) != 0 || err != io.EOF {
				t.Errorf("ReadDir(%d) again: %v, %v", n, ents, err)
			}
		}
		f.Close()
	}
}
