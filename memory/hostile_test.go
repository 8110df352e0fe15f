package memory

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/checkpoint"
)

// A parent link that points back at the dump itself ends after
// maxParentDepth levels with an error, not a hang.
func TestParentLoop(t *testing.T) {
	dir := t.TempDir()
	task(t, dir, 1, []tvma{{start: 0x10000, end: 0x12000, flags: 0x22, status: stAnon}})
	os.WriteFile(filepath.Join(dir, "pagemap-1.img"), pagemapImg(1, pme{0x10000, 2, checkpoint.PageParent, false}), 0o644)
	os.Symlink(".", filepath.Join(dir, "parent"))
	r, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Space(1)
	if err != nil {
		t.Fatal(err)
	}
	if got := regs(s, 0x10000, 0x12000); !reflect.DeepEqual(got, []reg{{0x10000, 0x12000, NotCaptured, ReasonNoParent}}) {
		t.Fatalf("regions %x", got)
	}
	if len(s.Errors) != 1 || !strings.Contains(s.Errors[0].String(), "more than 64 parent images") {
		t.Fatalf("errors %v", s.Errors)
	}
}

// An absolute parent link is never followed out of the evidence.
func TestParentAbsolute(t *testing.T) {
	dir := t.TempDir()
	task(t, dir, 1, []tvma{{start: 0x10000, end: 0x11000, flags: 0x22, status: stAnon}})
	os.WriteFile(filepath.Join(dir, "pagemap-1.img"), pagemapImg(1, pme{0x10000, 1, checkpoint.PageParent, false}), 0o644)
	os.Symlink("/etc", filepath.Join(dir, "parent"))
	r, _ := OpenPath(ctx, dir, nil)
	defer r.Close()
	s, _ := r.Space(1)
	if len(s.Errors) != 1 || !strings.Contains(s.Errors[0].String(), "outside the evidence") {
		t.Fatalf("errors %v", s.Errors)
	}
}

// Missing and short pages images, runs outside every mapping, runs out of
// order and overlapping: each is reported, the rest is read.
func TestHostilePagemaps(t *testing.T) {
	dir := t.TempDir()
	task(t, dir, 1, []tvma{{start: 0x10000, end: 0x14000, flags: 0x22, status: stAnon}, {start: 0x20000, end: 0x21000, flags: 0x22, status: stAnon}})
	os.WriteFile(filepath.Join(dir, "pagemap-1.img"), pagemapImg(1,
		pme{0x12000, 2, checkpoint.PagePresent, false}, // out of order
		pme{0x10000, 3, checkpoint.PagePresent, false}, // overlaps the next by one page after sorting
		pme{0x90000, 1, checkpoint.PagePresent, false}, // outside every mapping
		pme{0x20000, 1, checkpoint.PagePresent, false}, // past the end of the short pages image
	), 0o644)
	os.WriteFile(filepath.Join(dir, "pages-1.img"), append(fill('x', 2), fill('y', 3)...), 0o644) // 5 of 7 pages
	r, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Space(1)
	if err != nil {
		t.Fatal(err)
	}
	joined := warnText(s.Errors)
	for _, w := range []string{"out of address order", "overlap at 0x12000", "0x90000 (1 pages) is outside every mapping", "holds 20480 bytes but the pagemap needs 28672: truncated"} {
		if !strings.Contains(joined, w) {
			t.Errorf("no error %q in\n%s", w, joined)
		}
	}
	// After sorting, 0x10000 x3 (offset 8192: 'y') wins over the overlapping
	// first page of 0x12000 x2 (offset 0: 'x'), whose second page stays.
	b := make([]byte, 1)
	for addr, want := range map[uint64]byte{0x10000: 'y', 0x12000: 'y', 0x13000: 'x'} {
		if _, err := s.Read(b, addr); err != nil || b[0] != want {
			t.Errorf("0x%x: %q %v", addr, b, err)
		}
	}
	if got := regs(s, 0x20000, 0x21000); !reflect.DeepEqual(got, []reg{{0x20000, 0x21000, NotCaptured, ReasonPages}}) {
		t.Fatalf("past the end: %x", got)
	}
	// Missing pages image.
	os.Remove(filepath.Join(dir, "pages-1.img"))
	r2, _ := OpenPath(ctx, dir, nil)
	defer r2.Close()
	s, _ = r2.Space(1)
	if got := regs(s, 0x10000, 0x14000); !reflect.DeepEqual(got, []reg{{0x10000, 0x14000, NotCaptured, ReasonPages}}) {
		t.Fatalf("no pages: %x", got)
	}
}
