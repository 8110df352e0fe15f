package memory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"google.golang.org/protobuf/proto"
)

// A parent link that points back at the dump itself is an error at once,
// not a hang nor maxParentDepth copies of the same images.
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
	if want := "the parent images of " + dir + ":. loop back to " + dir + ":., already read"; len(s.Errors) != 1 || !strings.Contains(s.Errors[0].String(), want) {
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

// hugeMM is a task whose mm declares a 64 TiB anonymous mapping never
// touched (no page in the pagemap: zero) and a 94 TiB vvar-like mapping
// (never dumped: not captured), beside a small heap with one dumped page
// (issue 16, "mem dump" degraded).
func hugeMM(t *testing.T) string {
	dir := t.TempDir()
	const (
		heap = 0x10000
		tib  = uint64(1) << 40
		big  = 1 << 44
		vvar = 1 << 47
	)
	task(t, dir, 1, []tvma{
		{start: heap, end: heap + 4*pageSize, flags: 0x22, status: stAnon | checkpoint.VMAAreaHeap},
		{start: big, end: big + 64*tib, flags: 0x22, status: stAnon},
		{start: vvar, end: vvar + 94*tib, flags: 0x22, status: 1 | checkpoint.VMAAreaVvar},
	})
	os.WriteFile(filepath.Join(dir, "pagemap-1.img"), pagemapImg(1, pme{heap, 1, checkpoint.PagePresent, false}), 0o644)
	page := make([]byte, pageSize)
	copy(page[100:], "HEAP-BYTES")
	os.WriteFile(filepath.Join(dir, "pages-1.img"), page, 0o644)
	return dir
}

// openTask1 opens the images in dir and the space of its task 1, closed
// with the test.
func openTask1(t *testing.T, dir string) (*Reader, *Space) {
	t.Helper()
	r, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	s, err := r.Space(1)
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

// Dump never writes never-touched or uncaptured memory as bytes: small
// zero and not-captured ranges are holes of their file, huge ones are left
// out and listed, with a note, and the dump takes no time and no disk.
func TestDumpHugeMapping(t *testing.T) {
	_, s := openTask1(t, hugeMM(t))
	var all []Range
	for _, m := range s.Mappings {
		all = append(all, Range{Start: m.Start, End: m.End})
	}
	out := t.TempDir()
	man, err := s.Dump(ctx, out, "huge", all, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Regions) != 1 || man.Regions[0].File != "0x10000-0x14000.bin" || len(man.Regions[0].Ranges) != 2 ||
		man.Regions[0].Ranges[1].Provenance != Zero {
		t.Fatalf("regions %+v", man.Regions)
	}
	want := []Range{{Start: 1 << 44, End: 1<<44 + 64<<40, Provenance: Zero}, {Start: 1 << 47, End: 1<<47 + 94<<40, Provenance: NotCaptured, Reason: ReasonSpecial}}
	if !reflect.DeepEqual(man.Skipped, want) || !strings.Contains(man.Note, "2 ranges were not written") {
		t.Fatalf("skipped %+v note %q", man.Skipped, man.Note)
	}
	// The heap file: one page written, three as a hole; its sha256 is
	// that of the bytes as they read.
	b, err := os.ReadFile(filepath.Join(out, man.Regions[0].File))
	if err != nil || len(b) != 4*pageSize || string(b[100:110]) != "HEAP-BYTES" {
		t.Fatalf("heap file: %d bytes %v", len(b), err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != man.Regions[0].SHA256 {
		t.Fatal("sha256 of the heap file")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(out, man.Regions[0].File), &st); err != nil || st.Blocks*512 > 2*pageSize {
		t.Fatalf("heap file takes %d bytes on disk (%v): its zero pages must be a hole", st.Blocks*512, err)
	}
	// A range across the heap and the first page of the huge mapping: the
	// 16 TiB between them is skipped, each side is a file of its own.
	man, err = s.Dump(ctx, t.TempDir(), "huge", []Range{{Start: 0x12000, End: 1<<44 + pageSize}}, nil)
	if err != nil || len(man.Regions) != 2 || man.Regions[0].File != "0x12000-0x14000.bin" || man.Regions[1].File != "0x100000000000-0x100000001000.bin" ||
		!reflect.DeepEqual(man.Skipped, []Range{{Start: 0x14000, End: 1 << 44, Provenance: NotCaptured, Reason: ReasonUnmapped}}) {
		t.Fatalf("across: %+v %v", man, err)
	}
	// Within the bound, a zero range is a hole of its file, however long.
	man, err = s.Dump(ctx, t.TempDir(), "huge", []Range{{Start: 1 << 44, End: 1<<44 + 64<<20}}, &DumpOptions{MaxHoles: 64 << 20})
	if err != nil || len(man.Regions) != 1 || man.Regions[0].Size != 64<<20 || len(man.Skipped) != 0 ||
		man.Regions[0].SHA256 != "3b6a07d0d404fab4e23b6d34bc6696a6a312dd92821332385e5af7c01c421351" {
		t.Fatalf("64 MiB of zeros: %+v %v", man, err)
	}
	// Cancelled: nothing more is written.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Dump(cctx, t.TempDir(), "huge", all, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled dump: %v", err)
	}
}

// Searching the 64 TiB never-touched mapping with zero fill included:
// the parallel search makes its pieces as it goes (8 M of them up front
// took gigabytes before the first byte was read), so the heap stays flat;
// the search is stopped by its context.
func TestSearchHugeZeroMapping(t *testing.T) {
	_, s := openTask1(t, hugeMM(t))
	withParallel(8<<20, true, maxPieceHits, func() {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var last error
		for _, err := range s.Search(cctx, String("HEAP-BYTES"), &SearchOptions{Provenances: []Provenance{Dumped, Zero}}) {
			last = err
		}
		runtime.ReadMemStats(&after)
		if !errors.Is(last, context.DeadlineExceeded) {
			t.Errorf("search ended with %v, not its deadline", last)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
			t.Errorf("the search allocated %d MiB", grew>>20)
		}
	})
}

// A files.img name longer than PATH_MAX, shared by a thousand file
// mappings: the checkpoint cuts it once, with a warning, so the core's
// NT_FILE note stays small (a 1 MiB name per mapping made it a gigabyte).
func TestLongFileNameShared(t *testing.T) {
	dir := t.TempDir()
	var vmas []tvma
	for i := uint64(0); i < 1000; i++ {
		vmas = append(vmas, tvma{start: 0x100000 + 2*i*pageSize, end: 0x100000 + (2*i+1)*pageSize, shmid: 9, flags: 0x02, status: 1 | checkpoint.VMAFilePrivate})
	}
	task(t, dir, 1, vmas)
	name := "/" + strings.Repeat("n", 1<<20)
	os.WriteFile(filepath.Join(dir, "files.img"), img(0x56303138, true, &fdinfo.FileEntry{Type: fdinfo.FdTypes_REG.Enum(), Id: proto.Uint32(9),
		Reg: &regfile.RegFileEntry{Id: proto.Uint32(9), Flags: proto.Uint32(0), Pos: proto.Uint64(0), Fown: &fown.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0), PidType: proto.Uint32(0), Pid: proto.Uint32(0)}, Name: proto.String(name)}}), 0o644)
	os.WriteFile(filepath.Join(dir, "pagemap-1.img"), pagemapImg(1), 0o644)
	r, s := openTask1(t, dir)
	want := "files.img: file names longer than PATH_MAX (4096 bytes), which the kernel never gives, cut there: 1"
	if ws := r.CP.Warnings; len(ws) != 1 || !strings.HasSuffix(ws[0].String(), want) {
		t.Fatalf("warnings %v", ws)
	}
	if len(s.Mappings) != 1000 || s.Mappings[0].Path != name[:4096] {
		t.Fatalf("%d mappings, path of %d bytes", len(s.Mappings), len(s.Mappings[0].Path))
	}
	var core bytes.Buffer
	if _, err := r.WriteCore(ctx, s, &core, nil); err != nil {
		t.Fatal(err)
	}
	if core.Len() > 8<<20 {
		t.Errorf("core of %d bytes", core.Len())
	}
}

// reusedShmemMM is a hostile mm that maps one 64 KiB shared-memory object
// at 512 addresses: 32 MiB of content from 64 KiB of pages, since every
// mapping reads the object again.
func reusedShmemMM(t *testing.T) string {
	dir := t.TempDir()
	var vmas []tvma
	for i := range uint64(512) {
		start := 0x10000000 + i<<20
		vmas = append(vmas, tvma{start: start, end: start + 16*pageSize, shmid: 77, flags: 0x21, status: stShared})
	}
	task(t, dir, 1, vmas)
	os.WriteFile(filepath.Join(dir, "pagemap-1.img"), pagemapImg(1), 0o644)
	os.WriteFile(filepath.Join(dir, "pagemap-shmem-77.img"), pagemapImg(2, pme{0, 16, checkpoint.PagePresent, false}), 0o644)
	os.WriteFile(filepath.Join(dir, "pages-2.img"), fill('s', 16), 0o644)
	return dir
}

// Content re-read by every mapping of one object is bounded by MaxData:
// past it, the rest is listed as skipped with its reason and a note, in
// a dump (no file) and in a core (no PT_LOAD, so gdb says it cannot
// access the range rather than show zeros).
func TestMaxDataReusedShmem(t *testing.T) {
	dir := reusedShmemMM(t)
	_, s := openTask1(t, dir)
	var all []Range
	for _, m := range s.Mappings {
		all = append(all, Range{Start: m.Start, End: m.End})
	}
	if len(all) != 512 {
		t.Fatalf("%d mappings", len(all))
	}
	out := t.TempDir()
	man, err := s.Dump(ctx, out, "reused", all, &DumpOptions{MaxData: 4*16*pageSize + 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Regions) != 4 || man.Regions[3].File != "0x10300000-0x10310000.bin" || man.Regions[3].Size != 16*pageSize {
		t.Fatalf("regions %+v", man.Regions)
	}
	if want := (Range{Start: 0x10400000, End: 0x10410000, Provenance: Dumped, Source: man.Skipped[0].Source, Reason: ReasonMaxData}); len(man.Skipped) != 508 || man.Skipped[0] != want ||
		man.Skipped[507].Start != 0x2ff00000 || !strings.HasSuffix(man.Skipped[0].Source, "pages-2.img") {
		t.Fatalf("%d skipped, first %+v, last %+v", len(man.Skipped), man.Skipped[0], man.Skipped[len(man.Skipped)-1])
	}
	if want := "33292288 bytes of content in 508 ranges were not written: past the bound of 262244 bytes of content (see skipped)"; man.Note != want {
		t.Fatalf("note %q, want %q", man.Note, want)
	}
	ents, err := os.ReadDir(out)
	if err != nil || len(ents) != 5 {
		t.Fatalf("%d files written (%v), want 4 and the manifest", len(ents), err)
	}
	// One range across four mappings and the gaps between them: once the
	// bound skips the second mapping, no file is made of a gap alone, and
	// the first file does not end in one.
	out = t.TempDir()
	man, err = s.Dump(ctx, out, "reused", []Range{{Start: 0x10000000, End: 0x10000000 + 4<<20}}, &DumpOptions{MaxData: 16 * pageSize})
	if err != nil || len(man.Regions) != 1 || man.Regions[0].File != "0x10000000-0x10010000.bin" || len(man.Skipped) != 3 {
		t.Fatalf("across mappings: %+v %v", man, err)
	}
	if ents, err := os.ReadDir(out); err != nil || len(ents) != 2 {
		t.Fatalf("%d files written (%v), want 1 and the manifest", len(ents), err)
	}
	// The default bound lets all 32 MiB through.
	if man, err := s.Dump(ctx, t.TempDir(), "reused", all, nil); err != nil || len(man.Regions) != 512 || len(man.Skipped) != 0 || man.Note != "" {
		t.Fatalf("default: %d regions, %d skipped, %v", len(man.Regions), len(man.Skipped), err)
	}

	p, info := writeCoreFile(t, dir, &CoreOptions{MaxData: 2 * 16 * pageSize})
	if info.Loads != 2 || len(info.Skipped) != 510 || info.Skipped[0].Reason != ReasonMaxData || info.Skipped[0].Start != 0x10200000 ||
		!strings.HasPrefix(info.Note, "33423360 bytes of content in 510 ranges have no PT_LOAD") {
		t.Fatalf("core: %d loads, %d skipped (%+v), note %q", info.Loads, len(info.Skipped), info.Skipped[0], info.Note)
	}
	loads, f := loadsOf(t, p)
	defer f.Close()
	if want := [][3]uint64{{0x10000000, 16 * pageSize, 16 * pageSize}, {0x10100000, 16 * pageSize, 16 * pageSize}}; !reflect.DeepEqual(loads, want) {
		t.Fatalf("loads %x, want %x", loads, want)
	}
	if st, err := os.Stat(p); err != nil || st.Size() != info.Size || info.Size > 2*16*pageSize+64<<10 {
		t.Fatalf("core of %d bytes (info %d), %v", st.Size(), info.Size, err)
	}
}

// A task whose pstree lists its leader three times has one thread, an
// error saying so, and a core with one of each process-wide note: each
// repeat added the NT_FILE note again (a 130 KB pstree could ask for
// hundreds of gigabytes).
func TestRepeatedThreadOnce(t *testing.T) {
	dir := hugeMM(t)
	os.WriteFile(filepath.Join(dir, "pstree.img"), img(tPstree, true, &pstree.PstreeEntry{Pid: proto.Uint32(1), Ppid: proto.Uint32(0),
		Pgid: proto.Uint32(1), Sid: proto.Uint32(1), Threads: []uint32{1, 1, 1}}), 0o644)
	r, _ := openTask1(t, dir)
	if p := r.CP.Process(1); len(p.Threads) != 1 || !strings.Contains(fmt.Sprint(p.Errors), "thread 1 listed again in task 1") {
		t.Fatalf("threads %+v errors %v", p.Threads, p.Errors)
	}
	p, info := writeCoreFile(t, dir, nil)
	if info.Threads != 1 {
		t.Errorf("%d threads in the core", info.Threads)
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	notes := map[uint32]int{}
	b, err := io.ReadAll(f.Progs[0].Open())
	if err != nil {
		t.Fatal(err)
	}
	for len(b) >= 12 {
		nsz, dsz, typ := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
		notes[typ]++
		b = b[min(len(b), 12+int((nsz+3)&^3)+int((dsz+3)&^3)):]
	}
	if notes[ntPrstatus] != 1 || notes[ntPrpsinfo] != 1 || notes[ntFile] != 1 {
		t.Errorf("notes by type %v", notes)
	}
}

// A memfd's name past the kernel's 249 bytes is cut there, once, with a
// warning: it is every mapping's path and reaches each core's NT_FILE.
func TestMemfdNameCut(t *testing.T) {
	dir := memfdTask(t, strings.Repeat("n", 1<<20))
	r, s := openTask1(t, dir)
	if m := s.Mapping(0x70000); m == nil || m.Path != "memfd:"+strings.Repeat("n", 249) {
		t.Fatalf("mapping %+v", m)
	}
	if !strings.Contains(fmt.Sprint(r.CP.Warnings), "memfd names longer than the kernel's 249 bytes cut there: 1") {
		t.Errorf("warnings %v", r.CP.Warnings)
	}
}

// A file mapping whose page offset runs past what a file can hold (pgoff
// near 2^63, or wrapping) is past the file's end: its pages fault, as
// the kernel's would, instead of being read at a negative offset (which
// failed the whole dump).
func TestFileFillOffsetOverflow(t *testing.T) {
	for _, pgoff := range []uint64{0x7FFFFFFFFFFFF000, 0xFFFFFFFFFFFFF000} {
		r := &Reader{files: map[string]*fileBacking{"/lib/x.so": {f: stubFile{}, size: 100}}}
		b := &builder{r: r, s: &Space{}}
		v := &Mapping{Start: 0x100000, End: 0x103000, Pgoff: pgoff, Path: "/lib/x.so"}
		b.fileFill(v, 0x101000, 0x103000)
		var got []Range
		for _, sg := range b.s.segs {
			got = append(got, Range{Start: sg.start, End: sg.end, Provenance: sg.prov, Reason: sg.reason})
		}
		want := []Range{{Start: 0x101000, End: 0x103000, Provenance: NotCaptured, Reason: ReasonBeyondEOF}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("pgoff %#x: %+v, want %+v", pgoff, got, want)
		}
	}
}

type stubFile struct{ evidence.File }
