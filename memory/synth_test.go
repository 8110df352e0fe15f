package memory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	core_x86 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	criu_core "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// CRIU magics for writing synthetic images (criu/include/magic.h).
const (
	tImgCommon = 0x54564319
	tInventory = 0x58313116
	tPstree    = 0x50273030
	tCore      = 0x55053847
	tMM        = 0x57492820
	tPagemap   = 0x56084025
)

func img(magic uint32, prefix bool, msgs ...proto.Message) []byte {
	var b []byte
	if prefix {
		b = binary.LittleEndian.AppendUint32(b, tImgCommon)
	}
	b = binary.LittleEndian.AppendUint32(b, magic)
	for _, m := range msgs {
		p, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
		if err != nil {
			panic(err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// pme is a pagemap entry; compat writes the count as CRIU < 4.2 does.
type pme struct {
	vaddr  uint64
	n      uint32
	flags  uint32
	compat bool
}

func pagemapImg(pagesID uint32, ents ...pme) []byte {
	msgs := []proto.Message{&pagemap.PagemapHead{PagesId: proto.Uint32(pagesID)}}
	for _, e := range ents {
		pe := &pagemap.PagemapEntry{Vaddr: proto.Uint64(e.vaddr), Flags: proto.Uint32(e.flags)}
		if e.compat {
			pe.CompatNrPages = proto.Uint32(e.n)
		} else {
			pe.CompatNrPages = proto.Uint32(0)
			pe.NrPages = proto.Uint64(uint64(e.n))
		}
		msgs = append(msgs, pe)
	}
	return img(tPagemap, true, msgs...)
}

type tvma struct {
	start, end, pgoff, shmid uint64
	flags, status            uint32
}

// task writes the images of one alive task with the given VMAs.
func task(t *testing.T, dir string, pid uint32, vmas []tvma) {
	t.Helper()
	w := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w("inventory.img", img(tInventory, false, &inventory.InventoryEntry{ImgVersion: proto.Uint32(2)}))
	w("pstree.img", img(tPstree, true, &pstree.PstreeEntry{Pid: proto.Uint32(pid), Ppid: proto.Uint32(0), Pgid: proto.Uint32(pid), Sid: proto.Uint32(pid)}))
	regs := &core_x86.ThreadInfoX86{}
	fillRequired(regs.ProtoReflect())
	regs.Gpregs.Ip = proto.Uint64(0x10010)
	w("core-1.img", img(tCore, true, &criu_core.CoreEntry{Mtype: criu_core.CoreEntry_X86_64.Enum(), ThreadInfo: regs,
		Tc: &criu_core.TaskCoreEntry{TaskState: proto.Uint32(1), ExitCode: proto.Uint32(0), Personality: proto.Uint32(0), Flags: proto.Uint32(0), BlkSigset: proto.Uint64(0), Comm: proto.String("synth")}}))
	m := &mm.MmEntry{MmStartCode: proto.Uint64(0), MmEndCode: proto.Uint64(0), MmStartData: proto.Uint64(0), MmEndData: proto.Uint64(0),
		MmStartStack: proto.Uint64(0), MmStartBrk: proto.Uint64(0), MmBrk: proto.Uint64(0), MmArgStart: proto.Uint64(0), MmArgEnd: proto.Uint64(0),
		MmEnvStart: proto.Uint64(0), MmEnvEnd: proto.Uint64(0), ExeFileId: proto.Uint32(0)}
	for _, v := range vmas {
		m.Vmas = append(m.Vmas, &vma.VmaEntry{Start: proto.Uint64(v.start), End: proto.Uint64(v.end), Pgoff: proto.Uint64(v.pgoff),
			Shmid: proto.Uint64(v.shmid), Prot: proto.Uint32(3), Flags: proto.Uint32(v.flags), Status: proto.Uint32(v.status), Fd: proto.Int64(-1)})
	}
	w("mm-1.img", img(tMM, true, m))
}

// fillRequired sets every required field of m, recursively, to its zero
// value (registers of a synthetic thread: all zero is a valid state).
func fillRequired(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Cardinality() != protoreflect.Required {
			continue
		}
		if fd.Kind() == protoreflect.MessageKind {
			fillRequired(m.Mutable(fd).Message())
			continue
		}
		m.Set(fd, fd.Default())
	}
}

func fill(b byte, pages int) []byte { return bytes.Repeat([]byte{b}, pages*pageSize) }

const (
	stAnon   = 1 | checkpoint.VMAAnonPrivate
	stShared = 1 | checkpoint.VMAAnonShared
	stVdso   = 1 | checkpoint.VMAAreaVdso | checkpoint.VMAAnonPrivate
)

// chain writes dump/ (top), pre/ and grand/ of an incremental dump of
// task 1 and returns the root.
func chain(t *testing.T) string {
	root := t.TempDir()
	dump, pre, grand := filepath.Join(root, "dump"), filepath.Join(root, "pre"), filepath.Join(root, "grand")
	for _, d := range []string{dump, pre, grand} {
		os.Mkdir(d, 0o755)
	}
	vmas := []tvma{
		{start: 0x10000, end: 0x14000, flags: 0x22, status: stAnon},                             // A
		{start: 0x14000, end: 0x16000, flags: 0x22, status: stAnon},                             // B, adjacent to A
		{start: 0x20000, end: 0x28000, flags: 0x22, status: stAnon},                             // C, from the parents
		{start: 0x30000, end: 0x32000, flags: 0x22, status: stAnon},                             // D, lazy
		{start: 0x40000, end: 0x44000, pgoff: 0x1000, shmid: 77, flags: 0x21, status: stShared}, // E, shared
		{start: 0x50000, end: 0x51000, flags: 0x22, status: stVdso},                             // F, vdso
	}
	task(t, dump, 1, vmas)
	task(t, pre, 1, vmas)
	task(t, grand, 1, vmas)
	w := func(dir, name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A and B: two runs; "SPANNING-SECRET" straddles the VMA boundary.
	ab := append(fill('a', 4), fill('b', 2)...)
	copy(ab[4*pageSize-8:], "SPANNING-SECRET")
	shm := append(fill('s', 1), fill('S', 1)...)
	w(dump, "pagemap-1.img", pagemapImg(1, pme{0x10000, 4, checkpoint.PagePresent, false}, pme{0x14000, 2, checkpoint.PagePresent | checkpoint.PageLazy, false},
		pme{0x20000, 8, checkpoint.PageParent, false}, pme{0x30000, 2, checkpoint.PageLazy, false}))
	w(dump, "pages-1.img", ab)
	w(dump, "pagemap-shmem-77.img", pagemapImg(2, pme{0x1000, 1, checkpoint.PagePresent, false}, pme{0x3000, 1, checkpoint.PagePresent, false}))
	w(dump, "pages-2.img", shm)
	// pre: pages 0-1 of C present, 2-5 in its own parent, 6-7 nowhere.
	w(pre, "pagemap-1.img", pagemapImg(1, pme{0x20000, 2, checkpoint.PagePresent, false}, pme{0x22000, 4, checkpoint.PageParent, false}))
	w(pre, "pages-1.img", fill('p', 2))
	// grand (CRIU < 4.2: compat_nr_pages): pages 2-3 present, 4 lazy, 5 nowhere.
	w(grand, "pagemap-1.img", pagemapImg(5, pme{0x22000, 2, checkpoint.PagePresent, true}, pme{0x24000, 1, checkpoint.PageLazy, true}))
	w(grand, "pages-5.img", fill('g', 2))
	os.Symlink("../pre", filepath.Join(dump, "parent"))
	os.Symlink("../grand", filepath.Join(pre, "parent"))
	return root
}

type reg struct {
	start, end uint64
	prov       Provenance
	reason     string
}

func regs(s *Space, a, e uint64) []reg {
	var out []reg
	for _, r := range s.Regions(a, e) {
		out = append(out, reg{r.Start, r.End, r.Provenance, r.Reason})
	}
	return out
}

func checkChain(t *testing.T, r *Reader) {
	t.Helper()
	s, err := r.Space(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Errors) != 0 {
		t.Fatalf("errors %v", s.Errors)
	}
	// C through two parents; shorter parent runs split the range.
	got := regs(s, 0x20000, 0x28000)
	exp := []reg{{0x20000, 0x22000, Parent, ""}, {0x22000, 0x24000, Parent, ""}, {0x24000, 0x25000, NotCaptured, ReasonLazy}, {0x25000, 0x28000, NotCaptured, ReasonNoParent}}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("C regions %x", got)
	}
	b := make([]byte, 2)
	if _, err := s.Read(b, 0x21fff); err != nil || string(b) != "pg" {
		t.Fatalf("parent bytes %q %v", b, err)
	}
	if n, err := s.Read(make([]byte, 8), 0x24000); n != 0 || !errors.Is(err, ErrNotCaptured) {
		t.Fatalf("lazy parent page read %d %v", n, err)
	}
	c := s.Mapping(0x20000)
	if c.Pages != (PageCounts{Parent: 8}) {
		t.Fatalf("C pages %+v", c.Pages)
	}
	// D: PE_LAZY only.
	if got := regs(s, 0x30000, 0x32000); !reflect.DeepEqual(got, []reg{{0x30000, 0x32000, NotCaptured, ReasonLazy}}) {
		t.Fatalf("D %x", got)
	}
	if d := s.Mapping(0x30000); d.Pages != (PageCounts{Lazy: 2}) {
		t.Fatalf("D pages %+v", d.Pages)
	}
	// E: shared memory at object offset 0x1000: present, hole, present, hole.
	got = regs(s, 0x40000, 0x44000)
	exp = []reg{{0x40000, 0x41000, Dumped, ""}, {0x41000, 0x42000, Zero, ""}, {0x42000, 0x43000, Dumped, ""}, {0x43000, 0x44000, Zero, ""}}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("E regions %x", got)
	}
	e := make([]byte, 4*pageSize)
	if _, err := s.Read(e, 0x40000); err != nil || e[0] != 's' || e[pageSize] != 0 || e[2*pageSize] != 'S' || e[3*pageSize+5] != 0 {
		t.Fatalf("E bytes %v", err)
	}
	if m := s.Mapping(0x40000); m.Kind != "shmem" || m.Shmid != 77 || m.Pages != (PageCounts{Dumped: 2, Absent: 2}) {
		t.Fatalf("E mapping %+v", m)
	}
	// F: vdso, never dumped.
	if got := regs(s, 0x50000, 0x51000); !reflect.DeepEqual(got, []reg{{0x50000, 0x51000, NotCaptured, ReasonSpecial}}) {
		t.Fatalf("F %x", got)
	}
	// A match spanning two runs of two adjacent VMAs, with tiny windows.
	for _, cs := range []int{64, 4096, 1 << 20} {
		var hits []Hit
		for h, err := range s.Search(ctx, String("SPANNING-SECRET"), &SearchOptions{ChunkSize: cs, Context: 4}) {
			if err != nil {
				t.Fatal(err)
			}
			hits = append(hits, h)
		}
		if len(hits) != 1 || hits[0].Address != 0x13ff8 || hits[0].VMAStart != 0x10000 || hits[0].Provenance != Dumped ||
			string(hits[0].Context) != "aaaaSPANNING-SECRETbbbb" {
			t.Fatalf("chunk %d: %+v", cs, hits)
		}
	}
	// Parent bytes are searched and tagged.
	var hits []Hit
	for h, err := range s.Search(ctx, String("pg"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		hits = append(hits, h)
	}
	if len(hits) != 1 || hits[0].Address != 0x21fff || hits[0].Provenance != Parent {
		t.Fatalf("pg hits %+v", hits)
	}
	// Zero fill only when asked.
	var zeros int
	for _, err := range s.Search(ctx, Bytes([]byte{0, 0, 0, 0}), &SearchOptions{Provenances: []Provenance{Zero}}) {
		if err != nil {
			t.Fatal(err)
		}
		zeros++
	}
	if zeros != 2*(pageSize-3) {
		t.Fatalf("%d zero hits", zeros)
	}
}

func TestParentChainHostDir(t *testing.T) {
	root := chain(t)
	r, err := OpenPath(ctx, filepath.Join(root, "dump"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkChain(t, r)
}

func TestParentChainInsideEvidence(t *testing.T) {
	root := chain(t)
	src, err := evidence.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cp, err := checkpoint.Open(ctx, src, "dump", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(cp, nil) // ParentOutside not needed: ../pre is in the evidence
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkChain(t, r)
	// Opened at the images dir without ParentOutside, the parent is
	// outside the evidence: those pages are not captured, with a reason.
	sub, _ := evidence.OpenDir(filepath.Join(root, "dump"))
	defer sub.Close()
	cp2, err := checkpoint.Open(ctx, sub, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := Open(cp2, nil)
	defer r2.Close()
	s, _ := r2.Space(1)
	if got := regs(s, 0x20000, 0x28000); !reflect.DeepEqual(got, []reg{{0x20000, 0x28000, NotCaptured, ReasonNoParent}}) || len(s.Errors) != 1 {
		t.Fatalf("no parent: %x %v", got, s.Errors)
	}
}

// A pages image shorter than the pagemap says (here: zstd-compressed) is
// named as such and its pages are not captured.
func TestCompressedPages(t *testing.T) {
	dir := t.TempDir()
	task(t, dir, 1, []tvma{{start: 0x10000, end: 0x12000, flags: 0x22, status: stAnon}})
	os.WriteFile(filepath.Join(dir, "pagemap-1.img"), pagemapImg(1, pme{0x10000, 2, checkpoint.PagePresent, false}), 0o644)
	os.WriteFile(filepath.Join(dir, "pages-1.img"), []byte("\x28\xb5\x2f\xfd compressed"), 0o644)
	r, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, _ := r.Space(1)
	if len(s.Errors) != 1 || !bytes.Contains([]byte(s.Errors[0].String()), []byte("compressed (zstd): compressed pages images are not supported")) {
		t.Fatalf("errors %v", s.Errors)
	}
	if got := regs(s, 0x10000, 0x12000); got[len(got)-1].prov != NotCaptured || got[len(got)-1].reason != ReasonPages {
		t.Fatalf("regions %x", got)
	}
	// Unknown flag bits are refused, not guessed.
	os.WriteFile(filepath.Join(dir, "pagemap-1.img"), pagemapImg(1, pme{0x10000, 2, 1 << 5, false}), 0o644)
	r2, _ := OpenPath(ctx, dir, nil)
	defer r2.Close()
	s, _ = r2.Space(1)
	if got := regs(s, 0x10000, 0x12000); !reflect.DeepEqual(got, []reg{{0x10000, 0x12000, NotCaptured, ReasonFlags}}) || len(s.Errors) != 1 {
		t.Fatalf("flags: %x %v", got, s.Errors)
	}
}

func TestUTF16AndStrings(t *testing.T) {
	dir := t.TempDir()
	task(t, dir, 1, []tvma{{start: 0x10000, end: 0x12000, flags: 0x22, status: stAnon}})
	pages := make([]byte, 2*pageSize)
	u := UTF16("WIDE-SECRET").lit
	copy(pages[pageSize-7:], u) // across the page (and run) boundary, at an odd address
	copy(pages[100:], "narrow-text\x00")
	os.WriteFile(filepath.Join(dir, "pagemap-1.img"), pagemapImg(1, pme{0x10000, 1, checkpoint.PagePresent, false}, pme{0x11000, 1, checkpoint.PagePresent, false}), 0o644)
	os.WriteFile(filepath.Join(dir, "pages-1.img"), pages, 0o644)
	r, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, _ := r.Space(1)
	var got []uint64
	for h, err := range s.Search(ctx, UTF16("WIDE-SECRET"), &SearchOptions{ChunkSize: 64}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Address)
	}
	if !slices.Equal(got, []uint64{0x10000 + pageSize - 7}) {
		t.Fatalf("utf16 hits %x", got)
	}
	var texts []Text
	for st, err := range s.Strings(ctx, &StringsOptions{UTF16: true, Min: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, st)
	}
	if len(texts) != 1 || texts[0].Text != "WIDE-SECRET" || texts[0].Address != 0x10000+pageSize-7 || texts[0].Encoding != "utf16le" {
		t.Fatalf("utf16 strings %+v", texts)
	}
	texts = nil
	for st, err := range s.Strings(ctx, &StringsOptions{Min: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, st)
	}
	if len(texts) != 1 || texts[0].Text != "narrow-text" || texts[0].Address != 0x10000+100 || texts[0].Provenance != Dumped {
		t.Fatalf("ascii strings %+v", texts)
	}
}

// A memfd mapping reads the pages of its inode's shmem object: the VMA's
// shmid is a file id (files.img), whose memfd inode (memfd.img) names the
// pagemap-shmem image.
// memfdTask writes task 1 with one memfd mapping (0x70000-0x72000, file
// id 9, memfd inode 4 named name, shmem object 1234).
func memfdTask(t *testing.T, name string) string {
	dir := t.TempDir()
	task(t, dir, 1, []tvma{{start: 0x70000, end: 0x72000, shmid: 9, flags: 0x01, status: 1 | checkpoint.VMAAreaMemfd | checkpoint.VMAFileShared}})
	w := func(name string, b []byte) { os.WriteFile(filepath.Join(dir, name), b, 0o644) }
	w("files.img", img(0x56303138, true, &fdinfo.FileEntry{Type: fdinfo.FdTypes_MEMFD.Enum(), Id: proto.Uint32(9),
		Memfd: &memfd.MemfdFileEntry{Id: proto.Uint32(9), Flags: proto.Uint32(2), Pos: proto.Uint64(0), InodeId: proto.Uint32(4)}}))
	w("memfd.img", img(0x48453499, true, &memfd.MemfdInodeEntry{Name: proto.String(name), Uid: proto.Uint32(0), Gid: proto.Uint32(0),
		Size: proto.Uint64(2 * pageSize), Shmid: proto.Uint32(1234), Seals: proto.Uint32(0), InodeId: proto.Uint64(4)}))
	w("pagemap-1.img", pagemapImg(1))
	return dir
}

func TestMemfd(t *testing.T) {
	dir := memfdTask(t, "payload")
	w := func(name string, b []byte) { os.WriteFile(filepath.Join(dir, name), b, 0o644) }
	w("pagemap-shmem-1234.img", pagemapImg(3, pme{pageSize, 1, checkpoint.PagePresent, false}))
	w("pages-3.img", append([]byte("MEMFD-PAYLOAD"), make([]byte, pageSize-13)...))
	r, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Space(1)
	if err != nil {
		t.Fatal(err)
	}
	if got := regs(s, 0x70000, 0x72000); !reflect.DeepEqual(got, []reg{{0x70000, 0x71000, Zero, ""}, {0x71000, 0x72000, Dumped, ""}}) || len(s.Errors) != 0 {
		t.Fatalf("regions %x %v", got, s.Errors)
	}
	var hits []Hit
	for h, err := range s.Search(ctx, String("MEMFD-PAYLOAD"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		hits = append(hits, h)
	}
	if len(hits) != 1 || hits[0].Address != 0x71000 || hits[0].VMAKind != "memfd" || hits[0].Path != "memfd:payload" {
		t.Fatalf("hits %+v", hits)
	}
}
