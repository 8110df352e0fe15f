package checkpoint

import (
	"fmt"
	"io"

	criu_core "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	criufs "github.com/checkpoint-restore/go-criu/v8/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mnt"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pipe"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	remap "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	sk_inet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	sk_unix "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-unix"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/stats"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"google.golang.org/protobuf/proto"
)

// The decoders below each read one kind of CRIU image through an
// ImageReader. They are exported so that other packages (memory) and the
// fuzzers can use them on a single image.

// DecodeInventory reads inventory.img.
func DecodeInventory(ir *ImageReader) (*inventory.InventoryEntry, error) {
	e := &inventory.InventoryEntry{}
	return e, decodeOne(ir, magicInventory, e)
}

// DecodePstree reads pstree.img, bounded to maxProcesses entries of at
// most maxThreads threads.
func DecodePstree(ir *ImageReader) ([]*pstree.PstreeEntry, error) {
	if err := ir.Expect(magicPstree); err != nil {
		return nil, err
	}
	var out []*pstree.PstreeEntry
	for {
		e := &pstree.PstreeEntry{}
		off := ir.Offset()
		err := ir.NextMessage(e)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if len(out) >= maxProcesses {
			return out, ir.errf(off, fmt.Sprintf("more than %d tasks", maxProcesses), nil)
		}
		if len(e.Threads) > maxThreads {
			return out, ir.errf(off, fmt.Sprintf("task %d has %d threads, limit %d", e.GetPid(), len(e.Threads), maxThreads), nil)
		}
		out = append(out, e)
	}
}

// DecodeCore reads core-<tid>.img.
func DecodeCore(ir *ImageReader) (*criu_core.CoreEntry, error) {
	e := &criu_core.CoreEntry{}
	return e, decodeOne(ir, magicCore, e)
}

// DecodeIDs reads ids-<pid>.img.
func DecodeIDs(ir *ImageReader) (*criu_core.TaskKobjIdsEntry, error) {
	e := &criu_core.TaskKobjIdsEntry{}
	return e, decodeOne(ir, magicIDs, e)
}

// DecodeMM reads mm-<pid>.img.
func DecodeMM(ir *ImageReader) (*mm.MmEntry, error) {
	e := &mm.MmEntry{}
	return e, decodeOne(ir, magicMM, e)
}

// DecodeFs reads fs-<pid>.img.
func DecodeFs(ir *ImageReader) (*criufs.FsEntry, error) {
	e := &criufs.FsEntry{}
	return e, decodeOne(ir, magicFs, e)
}

// DecodeFdinfo reads fdinfo-<files_id>.img.
func DecodeFdinfo(ir *ImageReader) ([]*fdinfo.FdinfoEntry, error) {
	return decodeAll(ir, magicFdinfo, func() *fdinfo.FdinfoEntry { return &fdinfo.FdinfoEntry{} })
}

// DecodeFiles reads files.img.
func DecodeFiles(ir *ImageReader) ([]*fdinfo.FileEntry, error) {
	return decodeAll(ir, magicFiles, func() *fdinfo.FileEntry { return &fdinfo.FileEntry{} })
}

// DecodeMountpoints reads mountpoints-<mnt_ns_id>.img.
func DecodeMountpoints(ir *ImageReader) ([]*mnt.MntEntry, error) {
	return decodeAll(ir, magicMountpoints, func() *mnt.MntEntry { return &mnt.MntEntry{} })
}

// DecodeRemaps reads remap-fpath.img.
func DecodeRemaps(ir *ImageReader) ([]*remap.RemapFilePathEntry, error) {
	return decodeAll(ir, magicRemapFpath, func() *remap.RemapFilePathEntry { return &remap.RemapFilePathEntry{} })
}

// DecodeTtyInfo reads tty-info.img.
func DecodeTtyInfo(ir *ImageReader) ([]*tty.TtyInfoEntry, error) {
	return decodeAll(ir, magicTtyInfo, func() *tty.TtyInfoEntry { return &tty.TtyInfoEntry{} })
}

// DecodeMemfdInodes reads memfd.img.
func DecodeMemfdInodes(ir *ImageReader) ([]*memfd.MemfdInodeEntry, error) {
	return decodeAll(ir, magicMemfdInode, func() *memfd.MemfdInodeEntry { return &memfd.MemfdInodeEntry{} })
}

// DecodeStats reads stats-dump.
func DecodeStats(ir *ImageReader) (*stats.StatsEntry, error) {
	e := &stats.StatsEntry{}
	return e, decodeOne(ir, magicStats, e)
}

// DecodePagemap reads pagemap-<pid>.img: a pagemap_head record, then
// pagemap_entry records. nr_pages is normalised as CRIU does (CRIU < 4.2
// writes only compat_nr_pages, field 2). The result is bounded: a run of
// pages must fit in the 64-bit address space and the offsets in the pages
// image must not overflow.
func DecodePagemap(ir *ImageReader) (*Pagemap, error) {
	if err := ir.Expect(magicPagemap); err != nil {
		return nil, err
	}
	head := &pagemap.PagemapHead{}
	if err := ir.NextMessage(head); err != nil {
		if err == io.EOF {
			return nil, ir.errf(ir.Offset(), "no pagemap head", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	pm := &Pagemap{PagesID: head.GetPagesId()}
	var off int64
	e := &pagemap.PagemapEntry{}
	for {
		at := ir.Offset()
		err := ir.NextMessage(e)
		if err == io.EOF {
			return pm, nil
		}
		if err != nil {
			return pm, err
		}
		n := e.GetNrPages()
		if n == 0 {
			n = uint64(e.GetCompatNrPages())
		}
		flags := e.GetFlags()
		if e.Flags == nil {
			if e.GetInParent() {
				flags = PageParent
			} else {
				flags = PagePresent
			}
		}
		va := e.GetVaddr()
		if n >= 1<<52 || (va+n*pageSize < va && va+n*pageSize != 0) {
			return pm, ir.errf(at, fmt.Sprintf("run of %d pages at 0x%x leaves the address space", n, va), nil)
		}
		ent := PagemapEntry{Vaddr: va, NrPages: n, Flags: flags, Offset: -1}
		if flags&PagePresent != 0 {
			if n > (1<<62-uint64(off))/pageSize {
				return pm, ir.errf(at, fmt.Sprintf("run of %d pages overflows the pages image", n), nil)
			}
			ent.Offset = off
			off += int64(n * pageSize)
		}
		pm.Entries = append(pm.Entries, ent)
	}
}

// PresentPages is the number of pages stored in the pages image.
func (pm *Pagemap) PresentPages() uint64 {
	var n uint64
	for _, e := range pm.Entries {
		if e.Flags&PagePresent != 0 {
			n += e.NrPages
		}
	}
	return n
}

// Lookup finds the run holding vaddr; ok is false when no run holds it.
func (pm *Pagemap) Lookup(vaddr uint64) (PagemapEntry, bool) {
	for _, e := range pm.Entries {
		if vaddr >= e.Vaddr && (vaddr-e.Vaddr)/pageSize < e.NrPages {
			return e, true
		}
	}
	return PagemapEntry{}, false
}

// Legacy per-kind file images (CRIU before files.img).
func decodeLegacyFiles(ir *ImageReader) ([]*fdinfo.FileEntry, error) {
	var out []*fdinfo.FileEntry
	add := func(t fdinfo.FdTypes, id uint32, set func(*fdinfo.FileEntry)) {
		fe := &fdinfo.FileEntry{Type: t.Enum(), Id: proto.Uint32(id)}
		set(fe)
		out = append(out, fe)
	}
	var err error
	switch ir.Magic() {
	case magicRegFiles:
		var l []*regfile.RegFileEntry
		l, err = decodeAll(ir, magicRegFiles, func() *regfile.RegFileEntry { return &regfile.RegFileEntry{} })
		for _, r := range l {
			add(fdinfo.FdTypes_REG, r.GetId(), func(f *fdinfo.FileEntry) { f.Reg = r })
		}
	case magicInetSk:
		var l []*sk_inet.InetSkEntry
		l, err = decodeAll(ir, magicInetSk, func() *sk_inet.InetSkEntry { return &sk_inet.InetSkEntry{} })
		for _, r := range l {
			add(fdinfo.FdTypes_INETSK, r.GetId(), func(f *fdinfo.FileEntry) { f.Isk = r })
		}
	case magicUnixSk:
		var l []*sk_unix.UnixSkEntry
		l, err = decodeAll(ir, magicUnixSk, func() *sk_unix.UnixSkEntry { return &sk_unix.UnixSkEntry{} })
		for _, r := range l {
			add(fdinfo.FdTypes_UNIXSK, r.GetId(), func(f *fdinfo.FileEntry) { f.Usk = r })
		}
	case magicPipes:
		var l []*pipe.PipeEntry
		l, err = decodeAll(ir, magicPipes, func() *pipe.PipeEntry { return &pipe.PipeEntry{} })
		for _, r := range l {
			add(fdinfo.FdTypes_PIPE, r.GetId(), func(f *fdinfo.FileEntry) { f.Pipe = r })
		}
	default:
		err = ir.errf(0, fmt.Sprintf("magic 0x%08x is not a file image", ir.Magic()), ErrWrongMagic)
	}
	return out, err
}
