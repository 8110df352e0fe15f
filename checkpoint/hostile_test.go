package checkpoint

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	criu_core "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/magic"
	"github.com/deadnode/deadnode/evidence"
	"google.golang.org/protobuf/proto"

	"github.com/deadnode/deadnode/internal/testfix"
)

func TestMagicsMatchGoCriu(t *testing.T) {
	m := magic.LoadMagic().ByName
	for name, v := range map[string]uint32{
		"IMG_COMMON": magicImgCommon, "IMG_SERVICE": magicImgService, "INVENTORY": magicInventory, "PSTREE": magicPstree,
		"CORE": magicCore, "IDS": magicIDs, "MM": magicMM, "PAGEMAP": magicPagemap, "FILES": magicFiles, "FDINFO": magicFdinfo,
		"FS": magicFs, "MNTS": magicMountpoints, "REMAP_FPATH": magicRemapFpath, "TTY_INFO": magicTtyInfo, "STATS": magicStats,
		"MEMFD_INODE": magicMemfdInode, "REG_FILES": magicRegFiles, "INETSK": magicInetSk, "UNIXSK": magicUnixSk, "PIPES": magicPipes,
	} {
		if uint64(v) != m[name] {
			t.Errorf("%s: 0x%x, go-criu 0x%x", name, v, m[name])
		}
	}
}

// image frames records as CRIU does: [prefix] magic, then u32 length + bytes.
func image(magicV uint32, prefix bool, msgs ...proto.Message) []byte {
	var b bytes.Buffer
	if prefix {
		binary.Write(&b, binary.LittleEndian, magicImgCommon)
	}
	binary.Write(&b, binary.LittleEndian, magicV)
	for _, m := range msgs {
		p, err := (proto.MarshalOptions{AllowPartial: true}).Marshal(m)
		if err != nil {
			panic(err)
		}
		binary.Write(&b, binary.LittleEndian, uint32(len(p)))
		b.Write(p)
	}
	return b.Bytes()
}

func u32(v uint32) *uint32 { return &v }

func coreImg(comm string) []byte {
	return image(magicCore, true, &criu_core.CoreEntry{Mtype: criu_core.CoreEntry_X86_64.Enum(),
		Tc: &criu_core.TaskCoreEntry{TaskState: u32(1), ExitCode: u32(0), Personality: u32(0), Flags: u32(0), BlkSigset: proto.Uint64(0), Comm: &comm}})
}

// writeDir writes a synthetic image directory.
func writeDir(t *testing.T, files map[string][]byte) string {
	dir := t.TempDir()
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func inventoryImg() []byte {
	return image(magicInventory, false, &inventory.InventoryEntry{ImgVersion: u32(2), FdinfoPerId: proto.Bool(true)})
}

func TestPstreeCycle(t *testing.T) {
	dir := writeDir(t, map[string][]byte{
		imgInventory: inventoryImg(),
		imgPstree: image(magicPstree, true,
			&pstree.PstreeEntry{Pid: u32(1), Ppid: u32(2), Pgid: u32(1), Sid: u32(1)},
			&pstree.PstreeEntry{Pid: u32(2), Ppid: u32(1), Pgid: u32(1), Sid: u32(1)},
			&pstree.PstreeEntry{Pid: u32(2), Ppid: u32(0), Pgid: u32(1), Sid: u32(1)},
			&pstree.PstreeEntry{Pid: u32(3), Ppid: u32(3), Pgid: u32(1), Sid: u32(1)}),
		"core-1.img": coreImg("a"),
		"core-2.img": coreImg("b"),
		"core-3.img": []byte{1, 2, 3},
	})
	cp, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := pids(cp); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("pids %v", got)
	}
	// Every task must reach a root by following ppid.
	parent := map[uint32]uint32{}
	for _, p := range cp.Processes {
		parent[p.PID] = p.PPID
	}
	for _, p := range cp.Processes {
		x, n := p.PID, 0
		for x != 0 && n < 10 {
			x, n = parent[x], n+1
		}
		if x != 0 {
			t.Errorf("task %d never reaches a root", p.PID)
		}
	}
	w := warnText(cp.Warnings)
	if !strings.Contains(w, "parent cycle") || !strings.Contains(w, "task 2 listed again") {
		t.Errorf("warnings %q", w)
	}
	// The truncated core image of task 3 is a per-task error, not a failure.
	if p := cp.Process(3); p.State != "unknown" || len(p.Errors) == 0 || !strings.Contains(p.Errors[0].String(), "core-3.img") {
		t.Errorf("task 3 %+v", p)
	}
}

func TestHugeLengthPrefix(t *testing.T) {
	b := image(magicPstree, true)
	b = binary.LittleEndian.AppendUint32(b, 0xffffffff)
	dir := writeDir(t, map[string][]byte{imgInventory: inventoryImg(), imgPstree: b})
	_, err := OpenPath(ctx, dir, nil)
	var fe *evidence.FormatError
	if !errors.As(err, &fe) || fe.Offset != 8 || !strings.Contains(fe.Msg, "4294967295 bytes passes the 16777216-byte limit") || !strings.HasSuffix(fe.File, "pstree.img") {
		t.Fatalf("err %v", err)
	}
	// Under the per-record limit but past the end of the file.
	b = binary.LittleEndian.AppendUint32(image(magicPstree, true), 1<<20)
	_, err = OpenPath(ctx, writeDir(t, map[string][]byte{imgInventory: inventoryImg(), imgPstree: b}), nil)
	if !errors.As(err, &fe) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(fe.Msg, "0 bytes left") {
		t.Fatalf("err %v", err)
	}
}

func TestWrongMagic(t *testing.T) {
	dir := writeDir(t, map[string][]byte{imgInventory: inventoryImg(), imgPstree: coreImg("x")})
	_, err := OpenPath(ctx, dir, nil)
	if !errors.Is(err, ErrWrongMagic) || !strings.Contains(err.Error(), "pstree.img: offset 0: magic 0x55053847, want 0x50273030") {
		t.Fatalf("err %v", err)
	}
	// An inventory with the wrong magic is not a CRIU directory at all.
	_, err = OpenPath(ctx, writeDir(t, map[string][]byte{imgInventory: coreImg("x"), imgPstree: coreImg("x")}), nil)
	if err == nil || !strings.Contains(err.Error(), "no CRIU images found") {
		t.Fatalf("err %v", err)
	}
}

func TestAbsurdNrPages(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    *pagemap.PagemapEntry
		want string
	}{
		{"nr_pages 2^60", &pagemap.PagemapEntry{Vaddr: proto.Uint64(0x1000), CompatNrPages: u32(0), NrPages: proto.Uint64(1 << 60), Flags: u32(PagePresent)}, "leaves the address space"},
		{"wraps", &pagemap.PagemapEntry{Vaddr: proto.Uint64(0xffff_ffff_ffff_0000), CompatNrPages: u32(0x100), Flags: u32(PagePresent)}, "leaves the address space"},
		// CRIU never writes a run off a page; one shifted every byte after it
		{"unaligned", &pagemap.PagemapEntry{Vaddr: proto.Uint64(0x11800), CompatNrPages: u32(2), Flags: u32(PagePresent)}, "run at 0x11800 does not start on a page"},
	} {
		b := image(magicPagemap, true, &pagemap.PagemapHead{PagesId: u32(1)}, tc.e)
		ir, err := NewImageReader(bytes.NewReader(b), int64(len(b)), "pagemap-1.img")
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodePagemap(ir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Cumulative offsets past 2^62 bytes.
	big := &pagemap.PagemapEntry{Vaddr: proto.Uint64(0), NrPages: proto.Uint64(1<<51 - 1), Flags: u32(PagePresent)}
	b := image(magicPagemap, true, &pagemap.PagemapHead{PagesId: u32(1)}, big, big, big, big, big)
	ir, _ := NewImageReader(bytes.NewReader(b), int64(len(b)), "pagemap-1.img")
	if _, err := DecodePagemap(ir); err == nil || !strings.Contains(err.Error(), "overflows the pages image") {
		t.Errorf("overflow: %v", err)
	}
}

func TestPagemapLayouts(t *testing.T) {
	// CRIU < 4.2: compat_nr_pages only, flags; older still: in_parent only.
	// CRIU >= 4.2: nr_pages (field 5) with compat_nr_pages 0.
	b := image(magicPagemap, true, &pagemap.PagemapHead{PagesId: u32(7)},
		&pagemap.PagemapEntry{Vaddr: proto.Uint64(0x10000), CompatNrPages: u32(3), Flags: u32(PagePresent | PageLazy)},
		&pagemap.PagemapEntry{Vaddr: proto.Uint64(0x20000), CompatNrPages: u32(0), NrPages: proto.Uint64(5_000_000), Flags: u32(PagePresent)},
		&pagemap.PagemapEntry{Vaddr: proto.Uint64(0x9000000000), CompatNrPages: u32(2), InParent: proto.Bool(true)},
		&pagemap.PagemapEntry{Vaddr: proto.Uint64(0xa000000000), CompatNrPages: u32(1)},
	)
	ir, err := NewImageReader(bytes.NewReader(b), int64(len(b)), "pagemap-1.img")
	if err != nil {
		t.Fatal(err)
	}
	pm, err := DecodePagemap(ir)
	if err != nil {
		t.Fatal(err)
	}
	want := []PagemapEntry{
		{Vaddr: 0x10000, NrPages: 3, Flags: PagePresent | PageLazy, Offset: 0},
		{Vaddr: 0x20000, NrPages: 5_000_000, Flags: PagePresent, Offset: 3 * 4096},
		{Vaddr: 0x9000000000, NrPages: 2, Flags: PageParent, Offset: -1},
		{Vaddr: 0xa000000000, NrPages: 1, Flags: PagePresent, Offset: (3 + 5_000_000) * 4096},
	}
	if pm.PagesID != 7 || len(pm.Entries) != len(want) {
		t.Fatalf("pagemap %+v", pm)
	}
	for i := range want {
		if pm.Entries[i] != want[i] {
			t.Errorf("entry %d %+v, want %+v", i, pm.Entries[i], want[i])
		}
	}
	if pm.PresentPages() != 5_000_004 {
		t.Errorf("present %d", pm.PresentPages())
	}
}

// TestTruncatedImages cuts every image of the raw dump at every length:
// each cut is a clean error or a shorter decode, never a panic.
func TestTruncatedImages(t *testing.T) {
	dir := testfix.Fixture(t, "criu-dump", "images")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".img") || strings.HasPrefix(e.Name(), "pages-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for cut := 0; cut < len(b); cut++ {
			err := decodeAny(b[:cut], e.Name())
			if cut < 4 && err == nil {
				t.Fatalf("%s cut at %d: no error", e.Name(), cut)
			}
			if err != nil {
				var fe *evidence.FormatError
				if !errors.As(err, &fe) || !strings.Contains(fe.File, e.Name()) {
					t.Fatalf("%s cut at %d: %v is not a FormatError naming the image", e.Name(), cut, err)
				}
			}
			n++
		}
		if err := decodeAny(b, e.Name()); err != nil {
			t.Errorf("%s whole: %v", e.Name(), err)
		}
	}
	if n < 5000 {
		t.Fatalf("only %d cuts", n)
	}
}

// decodeAny decodes an image with the decoder its magic calls for.
func decodeAny(b []byte, name string) error {
	ir, err := NewImageReader(bytes.NewReader(b), int64(len(b)), name)
	if err != nil {
		return err
	}
	switch ir.Magic() {
	case magicInventory:
		_, err = decodeInventory(ir)
	case magicPstree:
		_, err = decodePstree(ir)
	case magicCore:
		_, err = decodeCore(ir)
	case magicIDs:
		_, err = decodeIDs(ir)
	case magicMM:
		_, err = decodeMM(ir)
	case magicPagemap:
		_, err = DecodePagemap(ir)
	case magicFiles:
		_, err = decodeFiles(ir)
	case magicFdinfo:
		_, err = decodeFdinfo(ir)
	case magicFs:
		_, err = decodeFs(ir)
	case magicMountpoints:
		_, err = decodeMountpoints(ir)
	case magicRemapFpath:
		_, err = decodeRemaps(ir)
	case magicTtyInfo:
		_, err = decodeTtyInfo(ir)
	case magicStats:
		_, err = decodeStats(ir)
	case magicMemfdInode:
		_, err = decodeMemfdInodes(ir)
	case magicRegFiles, magicInetSk, magicUnixSk, magicPipes:
		_, err = decodeLegacyFiles(ir)
	default:
		for {
			if _, _, err = ir.Next(); err != nil {
				break
			}
		}
		if err == io.EOF {
			err = nil
		}
	}
	return err
}

// TestDotDotMembers: an archive whose members climb out with "../" has
// them refused by the archive index; only the real images are decoded and
// nothing is written anywhere.
func TestDotDotMembers(t *testing.T) {
	src := testfix.Fixture(t, "criu-dump", "images")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	evil := image(magicPstree, true, &pstree.PstreeEntry{Pid: u32(666), Ppid: u32(0), Pgid: u32(666), Sid: u32(666)})
	add("../pstree.img", evil)
	add("checkpoint/../../pstree.img", evil)
	for _, n := range []string{imgInventory, imgPstree, "core-1360.img", "core-1362.img", "core-1363.img", "core-1364.img", "ids-1360.img", "mm-1360.img", "fs-1360.img", "fdinfo-2.img", "files.img", "pagemap-1360.img"} {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		add("checkpoint/"+n, b)
	}
	add("checkpoint/../checkpoint/../../../etc/passwd", []byte("x"))
	tw.Close()
	tmp := t.TempDir()
	arc := filepath.Join(tmp, "evil.tar")
	if err := os.WriteFile(arc, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cp, err := OpenPath(ctx, arc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if got := pids(cp); len(got) != 1 || got[0] != 1360 {
		t.Fatalf("pids %v", got)
	}
	w := warnText(cp.Warnings)
	if strings.Count(w, `climbs out of the archive`) != 3 {
		t.Fatalf("warnings %q", w)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 1 {
		t.Fatalf("something was written beside the archive: %v", ents)
	}
	// A compressed copy spills only what needs random access, and still
	// refuses the climbing members.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(buf.Bytes())
	zw.Close()
	if err := os.WriteFile(arc+".gz", gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cpz, err := OpenPath(ctx, arc+".gz", &Options{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	defer cpz.Close()
	if got := pids(cpz); len(got) != 1 || got[0] != 1360 || strings.Count(warnText(cpz.Warnings), "climbs out") != 3 {
		t.Fatalf("gz: pids %v warnings %q", got, cpz.Warnings)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 2 {
		t.Fatalf("the spill file must be unlinked: %v", ents)
	}
}

func TestNotACheckpoint(t *testing.T) {
	if _, err := OpenPath(ctx, testfix.Fixture(t, "containerd-node", "GROUND_TRUTH.md"), nil); err == nil {
		t.Fatal("a text file is not a checkpoint")
	}
	if _, err := OpenPath(ctx, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "no CRIU images found") {
		t.Fatalf("empty dir: %v", err)
	}
}

// TestArgsAtTopOfAddressSpace: a run of pages that ends exactly at 2^64
// and an argv range in it must not overflow the span arithmetic.
func TestArgsAtTopOfAddressSpace(t *testing.T) {
	b := image(magicPagemap, true, &pagemap.PagemapHead{PagesId: u32(1)},
		&pagemap.PagemapEntry{Vaddr: proto.Uint64(1<<64 - 2*pageSize), CompatNrPages: u32(2), Flags: u32(PagePresent)})
	ir, _ := NewImageReader(bytes.NewReader(b), int64(len(b)), "pagemap-1.img")
	pm, err := DecodePagemap(ir)
	if err != nil {
		t.Fatal(err)
	}
	pages := make([]byte, 2*pageSize)
	copy(pages[pageSize+8:], "a\x00bc\x00")
	got := readStrings(bytes.NewReader(pages), pm, 1<<64-pageSize+8, 1<<64-1)
	if len(got) != 2 || got[0] != "a" || got[1] != "bc" {
		t.Fatalf("%q", got)
	}
	if sp := spans(pm, 1<<64-3*pageSize, 1<<64-1); sp != nil {
		t.Fatalf("a start outside the runs gives no span: %v", sp)
	}
}

// A pagemap damaged after its first run keeps that run: the task's page
// count and its command line come from it, with the damage as the task's
// error (the memory package read those pages; this one dropped them).
func TestPartialPagemap(t *testing.T) {
	const argAt = 0x10000
	m := &mm.MmEntry{MmStartCode: proto.Uint64(0), MmEndCode: proto.Uint64(0), MmStartData: proto.Uint64(0), MmEndData: proto.Uint64(0),
		MmStartStack: proto.Uint64(0), MmStartBrk: proto.Uint64(0), MmBrk: proto.Uint64(0), MmArgStart: proto.Uint64(argAt), MmArgEnd: proto.Uint64(argAt + 9),
		MmEnvStart: proto.Uint64(0), MmEnvEnd: proto.Uint64(0), ExeFileId: proto.Uint32(0)}
	pm := image(magicPagemap, true, &pagemap.PagemapHead{PagesId: u32(1)},
		&pagemap.PagemapEntry{Vaddr: proto.Uint64(argAt), CompatNrPages: u32(4), Flags: u32(PagePresent)})
	pm = append(pm, 0xff, 0xff, 0, 0) // a record length past the end
	pages := make([]byte, 4*pageSize)
	copy(pages, "sh\x00-c\x00id\x00")
	dir := writeDir(t, map[string][]byte{
		imgInventory:    inventoryImg(),
		imgPstree:       image(magicPstree, true, &pstree.PstreeEntry{Pid: u32(1), Ppid: u32(0), Pgid: u32(1), Sid: u32(1)}),
		"core-1.img":    coreImg("sh"),
		"mm-1.img":      image(magicMM, true, m),
		"pagemap-1.img": pm,
		"pages-1.img":   pages,
	})
	cp, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := cp.Process(1)
	if p.PagesID != 1 || p.PageCount != 4 || strings.Join(p.Cmdline, " ") != "sh -c id" || !strings.Contains(warnText(p.Errors), "pagemap-1.img: offset 26: record of 65535 bytes") {
		t.Fatalf("pages %d of %d, cmdline %q, errors %v", p.PageCount, p.PagesID, p.Cmdline, p.Errors)
	}
}
