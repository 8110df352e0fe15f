package memory

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"github.com/deadnode/deadnode/checkpoint"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/deadnode/deadnode/internal/testfix"
)

// The benchmarks search a generated checkpoint with over 1 GiB of pages:
// the Podman fixture with pid 18 given a new 1 GiB anonymous mapping (a VMA
// in mm-18.img, a pagemap run, the pages spliced into pages-4.img), and
// the secret planted benchSecrets times, some across page boundaries. The
// pagemap is rewritten with CRIU 4.2's nr_pages so that checkpointctl
// (which reads only that field) sees the pages too. Written once to
// $DEADNODE_BENCH_DIR (default /tmp/deadnode-memory-bench) as .tar and
// .tar.zst; never committed.

const (
	benchPages   = 1 << 18 // 1 GiB
	benchVaddr   = 0x7e0000000000
	benchSecrets = 16
)

func benchDir() string {
	if d := os.Getenv("DEADNODE_BENCH_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "deadnode-memory-bench")
}

func largeCheckpoint(tb testing.TB) (string, string) {
	dir := benchDir()
	tarPath, zstPath := filepath.Join(dir, "large.tar"), filepath.Join(dir, "large.tar.zst")
	if _, err := os.Stat(zstPath); err == nil {
		return tarPath, zstPath
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := writeLarge(testfix.Fixture(tb, "podman-checkpoint", "ckpt-leave-running.tar"), tarPath); err != nil {
		tb.Fatal(err)
	}
	in, err := os.Open(tarPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(zstPath + ".tmp")
	if err != nil {
		tb.Fatal(err)
	}
	zw, _ := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if _, err := io.Copy(zw, in); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(zstPath+".tmp", zstPath); err != nil {
		tb.Fatal(err)
	}
	return tarPath, zstPath
}

// benchPage fills page i: a header, 1 KiB of pseudo-random bytes and
// repeated text (compresses about like a heap).
func benchPage(p []byte, i int, rng *rand.Rand) {
	clear(p)
	copy(p, fmt.Sprintf("bench page %d\n", i))
	for j := 64; j < 64+1024; j += 8 {
		binary.LittleEndian.PutUint64(p[j:], rng.Uint64())
	}
	for j := 1200; j+40 < len(p); j += 48 {
		copy(p[j:], "key=value; session=abcdef0123456789; ")
	}
}

// secretPage says where on page i a planted secret starts (-1: none);
// every other one crosses into the next page.
func secretPage(i int) int {
	step := benchPages / benchSecrets
	if i%step != step/2 {
		return -1
	}
	if (i/step)%2 == 0 {
		return pageSize - 7
	}
	return 3000
}

func writeLarge(ckpt, dst string) error {
	src, err := os.Open(ckpt)
	if err != nil {
		return err
	}
	defer src.Close()
	members := map[string][]byte{}
	var order []*tar.Header
	tr := tar.NewReader(src)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		members[h.Name] = b
		order = append(order, h)
	}
	// Every pagemap in CRIU 4.2 form (nr_pages); pid 18 gets the new run.
	var pagesName string
	var spliceOff int64
	for name, b := range members {
		var pid uint32
		if _, err := fmt.Sscanf(name, "checkpoint/pagemap-%d.img", &pid); err != nil {
			continue
		}
		ir, err := checkpoint.NewImageReader(bytes.NewReader(b), int64(len(b)), name)
		if err != nil {
			return err
		}
		pm, err := checkpoint.DecodePagemap(ir)
		if err != nil {
			return err
		}
		var ents []pme
		added := pid != 18
		for _, e := range pm.Entries {
			if !added && e.Vaddr > benchVaddr {
				ents = append(ents, pme{benchVaddr, benchPages, checkpoint.PagePresent, false})
				spliceOff, added = e.Offset, true
				if e.Offset < 0 {
					return fmt.Errorf("run after the bench range is not present")
				}
			}
			ents = append(ents, pme{e.Vaddr, uint32(e.NrPages), e.Flags, false})
		}
		if !added {
			ents = append(ents, pme{benchVaddr, benchPages, checkpoint.PagePresent, false})
			spliceOff = int64(pm.PresentPages() * pageSize)
		}
		members[name] = pagemapImg(pm.PagesID, ents...)
		if pid == 18 {
			pagesName = fmt.Sprintf("checkpoint/pages-%d.img", pm.PagesID)
		}
	}
	mmb := members["checkpoint/mm-18.img"]
	ir, err := checkpoint.NewImageReader(bytes.NewReader(mmb), int64(len(mmb)), "mm-18.img")
	if err != nil {
		return err
	}
	mme := &mm.MmEntry{}
	if err := ir.NextMessage(mme); err != nil {
		return err
	}
	nv := &vma.VmaEntry{Start: proto.Uint64(benchVaddr), End: proto.Uint64(benchVaddr + benchPages*pageSize), Pgoff: proto.Uint64(0),
		Shmid: proto.Uint64(0), Prot: proto.Uint32(3), Flags: proto.Uint32(0x22), Status: proto.Uint32(stAnon), Fd: proto.Int64(-1)}
	var vmas []*vma.VmaEntry
	placed := false
	for _, v := range mme.Vmas {
		if !placed && v.GetStart() > benchVaddr {
			vmas, placed = append(vmas, nv), true
		}
		vmas = append(vmas, v)
	}
	if !placed {
		vmas = append(vmas, nv)
	}
	mme.Vmas = vmas
	members["checkpoint/mm-18.img"] = img(tMM, true, (*mm.MmEntry)(mme))
	_ = pagemap.PagemapHead{}

	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return err
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	rng := rand.New(rand.NewPCG(1, 2))
	page := make([]byte, 2*pageSize)
	for _, h := range order {
		data := members[h.Name]
		if h.Typeflag != tar.TypeReg {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Size = int64(len(data))
		if h.Name == pagesName {
			h.Size += benchPages * pageSize
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Name != pagesName {
			if _, err := tw.Write(data); err != nil {
				return err
			}
			continue
		}
		if _, err := tw.Write(data[:spliceOff]); err != nil {
			return err
		}
		benchPage(page[:pageSize], 0, rng)
		for i := 0; i < benchPages; i++ {
			if i+1 < benchPages {
				benchPage(page[pageSize:], i+1, rng)
			} else {
				clear(page[pageSize:])
			}
			if o := secretPage(i); o >= 0 {
				copy(page[o:], secret)
			}
			if _, err := tw.Write(page[:pageSize]); err != nil {
				return err
			}
			copy(page, page[pageSize:])
		}
		if _, err := tw.Write(data[spliceOff:]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".tmp", dst)
}

// searchAll searches every task and returns the hits and the bytes of
// dumped memory searched.
func searchAll(b *testing.B, r *Reader, pat *Pattern) (int, int64) {
	hits := 0
	for _, err := range r.Search(ctx, pat, nil) {
		if err != nil {
			b.Fatal(err)
		}
		hits++
	}
	var n int64
	for _, p := range r.CP.Processes {
		n += int64(p.PageCount * pageSize)
	}
	return hits, n
}

func BenchmarkSearchLarge(b *testing.B) {
	tarPath, zstPath := largeCheckpoint(b)
	lit := String(secret)
	re, _ := Regex(`FORGE-SECRET-[0-9a-f]{6}`, 64)
	for _, tc := range []struct {
		name, path string
		pat        *Pattern
	}{{"tar/string", tarPath, lit}, {"tar/regex", tarPath, re}, {"tar.zst/string", zstPath, lit}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				r, err := OpenPath(ctx, tc.path, nil)
				if err != nil {
					b.Fatal(err)
				}
				hits, n := searchAll(b, r, tc.pat)
				// 16 planted + the 4 of the fixture.
				if hits != benchSecrets+4 {
					b.Fatalf("%d hits", hits)
				}
				b.SetBytes(n)
				r.Close()
			}
		})
	}
}

// largeDir is large.tar extracted (once) into a directory of images.
func largeDir(tb testing.TB) string {
	tarPath, _ := largeCheckpoint(tb)
	dir := filepath.Join(benchDir(), "large.dir")
	if _, err := os.Stat(filepath.Join(dir, "checkpoint", "pstree.img")); err == nil {
		return dir
	}
	f, err := os.Open(tarPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			tb.Fatal(err)
		}
		name := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(name, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(name), 0o755)
		out, err := os.Create(name)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			tb.Fatal(err)
		}
		out.Close()
	}
}

// BenchmarkSearchPath is the search of mem search SOURCE: the directory
// and the .tar read in place, the .tar.zst in one pass over its stream
// (its pages never spilled). The floors are BenchmarkFloorRead (the .tar
// read once, as cat > /dev/null does) and BenchmarkFloorZstd (the .tar.zst
// decompressed once).
func BenchmarkSearchPath(b *testing.B) {
	tarPath, zstPath := largeCheckpoint(b)
	for _, tc := range []struct{ name, path string }{{"dir", largeDir(b)}, {"tar", tarPath}, {"tar.zst", zstPath}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(benchPages * pageSize)
			for b.Loop() {
				hits := 0
				for _, err := range SearchPath(ctx, tc.path, String(secret), &SearchOptions{Context: 32}, nil) {
					if err != nil {
						b.Fatal(err)
					}
					hits++
				}
				if hits != benchSecrets+4 {
					b.Fatalf("%d hits", hits)
				}
			}
		})
	}
}

func BenchmarkFloorRead(b *testing.B) {
	tarPath, _ := largeCheckpoint(b)
	st, _ := os.Stat(tarPath)
	b.SetBytes(st.Size())
	buf := make([]byte, 128<<10)
	for b.Loop() {
		f, err := os.Open(tarPath)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func BenchmarkFloorZstd(b *testing.B) {
	_, zstPath := largeCheckpoint(b)
	b.SetBytes(benchPages * pageSize)
	buf := make([]byte, 128<<10)
	for b.Loop() {
		f, err := os.Open(zstPath)
		if err != nil {
			b.Fatal(err)
		}
		d, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{d}, buf); err != nil {
			b.Fatal(err)
		}
		d.Close()
		f.Close()
	}
}

func BenchmarkCoreLarge(b *testing.B) {
	tarPath, _ := largeCheckpoint(b)
	r, err := OpenPath(ctx, tarPath, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	s, err := r.Space(18)
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "core")
	for b.Loop() {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		info, err := r.WriteCore(ctx, s, f, nil)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		b.SetBytes(info.Size)
		os.Remove(out)
	}
}
