package memory

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/deadnode/deadnode/checkpoint"
)

// strictTmp mounts a small tmpfs with strictatime (every read of a file
// moves its access time unless it was opened O_NOATIME), as root.
func strictTmp(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("mounting a strictatime tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,strictatime", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

func atime(t *testing.T, name string) time.Time {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return statAtime(st)
}

// Issue 16.10: searching, opening or reading the memory of a checkpoint
// archive of the host never moves its access time (on a strictatime
// mount, where any plain read would).
func TestArchiveAtimeUntouched(t *testing.T) {
	dir := strictTmp(t)
	// 20 MiB of pages: large enough to be searched on several goroutines
	// over mappings of the file.
	const pages, marked = 5000, 4321
	page := make([]byte, pageSize)
	copy(page[1000:], "ATIME-MARKER")
	zero := make([]byte, pageSize)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, compress := range []bool{true, false} {
		name := filepath.Join(dir, "plain.tar")
		if compress {
			name = filepath.Join(dir, "c.tar.zst")
		}
		var b bytes.Buffer
		if err := writeT0Archive(&b, compress, 0x10000, pages, func(w io.Writer) error {
			for i := range pages {
				p := zero
				if i == marked {
					p = page
				}
				if _, err := w.Write(p); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		set := func() {
			if err := os.Chtimes(name, old, old); err != nil {
				t.Fatal(err)
			}
		}
		// The mount does move atimes on a plain read.
		set()
		if _, err := os.ReadFile(name); err != nil || atime(t, name).Equal(old) {
			t.Fatalf("%s: a plain read left the atime: not a strictatime mount", name)
		}
		set()
		for _, pat := range []*Pattern{String("ATIME-MARKER"), mustRegex(t, `ATIME-[A-Z]+`)} {
			n := 0
			for h, err := range SearchPath(ctx, name, pat, nil, nil) {
				if err != nil || h.Address != 0x10000+marked*pageSize+1000 {
					t.Fatalf("%s: hit %+v %v", name, h, err)
				}
				n++
			}
			if n != 1 {
				t.Fatalf("%s: %d hits", name, n)
			}
		}
		r, err := OpenPath(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.Space(1)
		for range s.Strings(ctx, nil) {
		}
		r.Close()
		cp, err := checkpoint.OpenPath(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		cp.Close()
		if at := atime(t, name); !at.Equal(old) {
			t.Fatalf("%s: atime moved to %v", name, at)
		}
	}
}

func mustRegex(t *testing.T, expr string) *Pattern {
	p, err := Regex(expr, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
