package memory

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/internal/testfix"
	"github.com/klauspost/compress/zstd"
)

// holeGiB is the size of the hostile pages image of issue 16.1: a pages
// image of zeros (a hole where it was made) in a .tar.zst.
const holeGiB = 4

// holeArchive is a .tar.zst checkpoint whose task 1 has a 4 GiB anonymous
// mapping, all of it dumped as zeros in pages-1.img (0.8 MiB), made once
// into testdata/.cache (gitignored) and reused.
func holeArchive(t *testing.T) string {
	name := filepath.Join(testfix.RepoRoot(t), "testdata", ".cache", "memory-hole-4g-v1.tar.zst")
	if _, err := os.Stat(name); err == nil {
		return name
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d", name, os.Getpid())
	if err := writeHoleArchive(tmp); err != nil {
		os.Remove(tmp)
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
	return name
}

func writeHoleArchive(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	zero := make([]byte, 1<<20)
	return writeT0Archive(f, true, 0x7f0000000000, holeGiB<<18, func(w io.Writer) error {
		for range holeGiB << 30 / len(zero) {
			if _, err := w.Write(zero); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeT0Archive writes a checkpoint archive of one task with one
// anonymous mapping of n pages at base, all dumped: pages writes them.
func writeT0Archive(w io.Writer, compress bool, base uint64, n uint32, pages func(io.Writer) error) error {
	imgs := t0Images(base, n)
	out := w
	var zw *zstd.Encoder
	if compress {
		var err error
		if zw, err = zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest)); err != nil {
			return err
		}
		out = zw
	}
	tw := tar.NewWriter(out)
	hdr := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: "checkpoint/" + name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(1_800_000_000, 0)})
	}
	for _, name := range []string{"inventory.img", "pstree.img", "core-1.img", "mm-1.img", "pagemap-1.img"} {
		if err := hdr(name, int64(len(imgs[name]))); err != nil {
			return err
		}
		tw.Write(imgs[name])
	}
	if err := hdr("pages-1.img", int64(n)*pageSize); err != nil {
		return err
	}
	if err := pages(tw); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}

// t0Images are the images of one task with one anonymous mapping of n
// pages at base, all present.
func t0Images(base uint64, n uint32) map[string][]byte {
	dir, err := os.MkdirTemp("", "deadnode-t0-*")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	t := &testing.T{}
	task(t, dir, 1, []tvma{{start: base, end: base + uint64(n)*pageSize, flags: 0x22, status: stAnon}})
	out := map[string][]byte{"pagemap-1.img": pagemapImg(1, pme{base, n, checkpoint.PagePresent, false})}
	for _, n := range []string{"inventory.img", "pstree.img", "core-1.img", "mm-1.img"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			panic(err)
		}
		out[n] = b
	}
	return out
}

// smallTmp mounts a 512 MiB tmpfs as a temp dir (as root: tests run as
// root in CI; anything else is a failure, not a skip).
func smallTmp(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("mounting a 512 MiB tmpfs as TMPDIR needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

func tmpUsed(t *testing.T, dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// Issue 16.1 (checkpoint half): the mappings of a .tar.zst whose pages
// image is 4 GiB are read with 512 MiB of temp space: nothing of the pages
// is spilled when no page byte is needed (mem maps, checkpoint inspect, mem
// search), and the pages' provenance is still known.
func TestHugePagesNotSpilled(t *testing.T) {
	archive := holeArchive(t)
	if st, err := os.Stat(archive); err != nil || st.Size() > 2<<20 {
		t.Fatalf("archive %v %v", st, err)
	}
	tmp := smallTmp(t)
	r, err := OpenPath(ctx, archive, &Options{NoPageData: true, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if used := tmpUsed(t, tmp); used > 1<<20 {
		t.Fatalf("%d bytes spilled for the mappings", used)
	}
	s, err := r.Space(1)
	if err != nil || len(s.Mappings) != 1 || s.Mappings[0].Pages.Dumped != holeGiB<<18 || len(s.Errors) != 0 {
		t.Fatalf("space %+v %v", s, err)
	}
	rg := s.Regions(s.Mappings[0].Start, s.Mappings[0].End)
	if len(rg) != 1 || rg[0].Provenance != Dumped || !strings.HasSuffix(rg[0].Source, "checkpoint/pages-1.img") {
		t.Fatalf("regions %+v", rg)
	}
	// The bytes are not at hand: a read says so.
	if _, err := s.Read(make([]byte, 8), s.Mappings[0].Start); !errors.Is(err, errStreamed) {
		t.Fatalf("read: %v", err)
	}
	// The checkpoint alone (command lines from the stream) spills nothing
	// of the pages either.
	cp, err := checkpoint.OpenPath(ctx, archive, &checkpoint.Options{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	cp.Close()
	// A search reads the stream and spills nothing: one hit planted
	// nowhere, none found, the 4 GiB scanned.
	for h, err := range SearchPath(ctx, archive, String("NOT-THERE"), nil, &Options{TempDir: tmp}) {
		t.Fatalf("hit %+v %v", h, err)
	}
	if used := tmpUsed(t, tmp); used > 1<<20 {
		t.Fatalf("%d bytes of temp space used", used)
	}
}
