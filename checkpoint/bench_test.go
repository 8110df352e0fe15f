package checkpoint

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
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/deadnode/deadnode/internal/testfix"
)

// Benchmarks over the fixture archives and over a generated large
// checkpoint: the podman fixture with pid 18's memory grown by 1 GiB of
// pages (a new anonymous VMA, a matching pagemap entry, and the pages
// spliced into pages-4.img at the right offset). The large archives are
// written once to $DEADNODE_BENCH_DIR (default /tmp/deadnode-checkpoint-bench)
// as .tar and .tar.zst; they are never committed.

const (
	benchExtraPages = 1 << 18 // 1 GiB
	benchVaddr      = 0x7f0000000000
)

func benchDir() string {
	if d := os.Getenv("DEADNODE_BENCH_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "deadnode-checkpoint-bench")
}

// largeArchives makes (once) the large .tar and .tar.zst.
func largeArchives(tb testing.TB) (string, string) {
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
	zw, err := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		tb.Fatal(err)
	}
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

// fillPage writes page i of the synthetic memory: a header naming the
// page, 1 KiB of pseudo-random bytes, and text, so that it compresses
// about as well as a real heap.
func fillPage(p []byte, i int, rng *rand.Rand) {
	clear(p)
	copy(p, fmt.Sprintf("deadnode bench page %d\n", i))
	for j := 64; j < 64+1024; j += 8 {
		binary.LittleEndian.PutUint64(p[j:], rng.Uint64())
	}
	for j := 1200; j+32 < len(p); j += 48 {
		copy(p[j:], "key=value; session=abcdef0123456789; ")
	}
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
	// The new pagemap entry goes where its vaddr sorts.
	pmb := members["checkpoint/pagemap-18.img"]
	ir, err := NewImageReader(bytes.NewReader(pmb), int64(len(pmb)), "pagemap-18.img")
	if err != nil {
		return err
	}
	pm, err := DecodePagemap(ir)
	if err != nil {
		return err
	}
	insertAt, spliceOff := len(pm.Entries), int64(pm.PresentPages()*pageSize)
	for i, e := range pm.Entries {
		if e.Vaddr > benchVaddr {
			if benchVaddr+benchExtraPages*pageSize > e.Vaddr {
				return fmt.Errorf("bench range overlaps 0x%x", e.Vaddr)
			}
			insertAt = i
			for _, f := range pm.Entries[i:] {
				if f.Flags&PagePresent != 0 {
					spliceOff = f.Offset
					break
				}
			}
			break
		}
	}
	var newPM bytes.Buffer
	binary.Write(&newPM, binary.LittleEndian, magicImgCommon)
	binary.Write(&newPM, binary.LittleEndian, magicPagemap)
	rec := func(m proto.Message) {
		b, _ := (proto.MarshalOptions{AllowPartial: true}).Marshal(m)
		binary.Write(&newPM, binary.LittleEndian, uint32(len(b)))
		newPM.Write(b)
	}
	rec(&pagemap.PagemapHead{PagesId: proto.Uint32(pm.PagesID)})
	for i, e := range pm.Entries {
		if i == insertAt {
			rec(&pagemap.PagemapEntry{Vaddr: proto.Uint64(benchVaddr), CompatNrPages: proto.Uint32(benchExtraPages), Flags: proto.Uint32(PagePresent)})
		}
		rec(&pagemap.PagemapEntry{Vaddr: proto.Uint64(e.Vaddr), CompatNrPages: proto.Uint32(uint32(e.NrPages)), Flags: proto.Uint32(e.Flags)})
	}
	if insertAt == len(pm.Entries) {
		rec(&pagemap.PagemapEntry{Vaddr: proto.Uint64(benchVaddr), CompatNrPages: proto.Uint32(benchExtraPages), Flags: proto.Uint32(PagePresent)})
	}
	members["checkpoint/pagemap-18.img"] = newPM.Bytes()

	// The VMA, in mm-18.img.
	mmb := members["checkpoint/mm-18.img"]
	ir, err = NewImageReader(bytes.NewReader(mmb), int64(len(mmb)), "mm-18.img")
	if err != nil {
		return err
	}
	mme, err := decodeMM(ir)
	if err != nil {
		return err
	}
	nv := &vma.VmaEntry{Start: proto.Uint64(benchVaddr), End: proto.Uint64(benchVaddr + benchExtraPages*pageSize), Pgoff: proto.Uint64(0),
		Shmid: proto.Uint64(0), Prot: proto.Uint32(3), Flags: proto.Uint32(0x22), Status: proto.Uint32(VMAAreaRegular | VMAAnonPrivate), Fd: proto.Int64(-1)}
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
	var newMM bytes.Buffer
	binary.Write(&newMM, binary.LittleEndian, magicImgCommon)
	binary.Write(&newMM, binary.LittleEndian, magicMM)
	b, _ := (proto.MarshalOptions{AllowPartial: true}).Marshal((*mm.MmEntry)(mme))
	binary.Write(&newMM, binary.LittleEndian, uint32(len(b)))
	newMM.Write(b)
	members["checkpoint/mm-18.img"] = newMM.Bytes()

	pagesName := fmt.Sprintf("checkpoint/pages-%d.img", pm.PagesID)
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return err
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	rng := rand.New(rand.NewPCG(1, 2))
	page := make([]byte, pageSize)
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
			h.Size += benchExtraPages * pageSize
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
		for i := 0; i < benchExtraPages; i++ {
			fillPage(page, i, rng)
			if _, err := tw.Write(page); err != nil {
				return err
			}
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

func BenchmarkOpenLarge(b *testing.B) {
	tarPath, zstPath := largeArchives(b)
	for _, tc := range []struct {
		name, path string
		pages      bool
	}{{"tar", tarPath, false}, {"tar.zst", zstPath, false}, {"tar.zst-pages", zstPath, true}} {
		b.Run(tc.name, func(b *testing.B) {
			st, _ := os.Stat(tc.path)
			b.SetBytes(st.Size())
			for b.Loop() {
				cp, err := OpenPath(ctx, tc.path, &Options{Pages: tc.pages})
				if err != nil {
					b.Fatal(err)
				}
				p := cp.Process(18)
				if p == nil || p.PageCount < benchExtraPages || len(p.Cmdline) != 3 {
					b.Fatalf("pid 18: %+v", p)
				}
				cp.Close()
			}
		})
	}
}

func BenchmarkOpenFixtures(b *testing.B) {
	for _, name := range []string{"ckpt-leave-running.tar", "ckpt-leave-running.tar.gz", "ckpt-default-zstd.tar.zst"} {
		b.Run(name, func(b *testing.B) {
			p := testfix.Fixture(b, "podman-checkpoint", name)
			for b.Loop() {
				cp, err := OpenPath(ctx, p, nil)
				if err != nil {
					b.Fatal(err)
				}
				cp.Close()
			}
		})
	}
	b.Run("criu-dump-dir", func(b *testing.B) {
		p := testfix.Fixture(b, "criu-dump", "images")
		for b.Loop() {
			cp, err := OpenPath(ctx, p, nil)
			if err != nil {
				b.Fatal(err)
			}
			cp.Close()
		}
	})
}
