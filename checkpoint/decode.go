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

// The decoders of each kind of CRIU image, with go-criu's generated types.
// They stay inside the package: callers get project types (Process,
// Pagemap, Registers, …) from the Checkpoint.
// Images of one record:
var (
	decodeInventory = one[inventory.InventoryEntry](magicInventory) // inventory.img
	decodeCore      = one[criu_core.CoreEntry](magicCore)           // core-<tid>.img
	decodeIDs       = one[criu_core.TaskKobjIdsEntry](magicIDs)     // ids-<pid>.img
	decodeMM        = one[mm.MmEntry](magicMM)                      // mm-<pid>.img
	decodeFs        = one[criufs.FsEntry](magicFs)                  // fs-<pid>.img
	decodeStats     = one[stats.StatsEntry](magicStats)             // stats-dump
)

// Images of a list of records:
var (
	decodeFdinfo      = all[fdinfo.FdinfoEntry](magicFdinfo)           // fdinfo-<files_id>.img
	decodeFiles       = all[fdinfo.FileEntry](magicFiles)              // files.img
	decodeMountpoints = all[mnt.MntEntry](magicMountpoints)            // mountpoints-<ns>.img
	decodeRemaps      = all[remap.RemapFilePathEntry](magicRemapFpath) // remap-fpath.img
	decodeTtyInfo     = all[tty.TtyInfoEntry](magicTtyInfo)            // tty-info.img
	decodeMemfdInodes = all[memfd.MemfdInodeEntry](magicMemfdInode)    // memfd.img
)

// decodePstree reads pstree.img, bounded to maxProcesses entries of at
// most maxThreads threads.
func decodePstree(ir *ImageReader) ([]*pstree.PstreeEntry, error) {
	if err := ir.Expect(magicPstree); err != nil {
		return nil, err
	}
	var out []*pstree.PstreeEntry
	for e, off := range records[pstree.PstreeEntry](ir) {
		if len(out) >= maxProcesses {
			return out, ir.errf(off, fmt.Sprintf("more than %d tasks", maxProcesses), nil)
		}
		if len(e.Threads) > maxThreads {
			return out, ir.errf(off, fmt.Sprintf("task %d has %d threads, limit %d", e.GetPid(), len(e.Threads), maxThreads), nil)
		}
		out = append(out, e)
	}
	return out, ir.err
}

// DecodePagemap reads pagemap-<pid>.img (or pagemap-shmem-<shmid>.img): a
// pagemap_head record, then pagemap_entry records. nr_pages is normalised
// as CRIU does (CRIU < 4.2 writes only compat_nr_pages, field 2). The
// result is bounded: a run of pages must fit in the 64-bit address space
// and the offsets in the pages image must not overflow.
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
	for e, at := range records[pagemap.PagemapEntry](ir) {
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
		if va%pageSize != 0 {
			return pm, ir.errf(at, fmt.Sprintf("run at 0x%x does not start on a page", va), nil)
		}
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
	return pm, ir.err
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

// legacyKinds are the per-kind file images of CRIU before files.img: each
// record becomes the FileEntry files.img would hold.
var legacyKinds = map[uint32]func(ir *ImageReader) ([]*fdinfo.FileEntry, error){
	magicRegFiles: legacy(fdinfo.FdTypes_REG, all[regfile.RegFileEntry](magicRegFiles), (*regfile.RegFileEntry).GetId,
		func(f *fdinfo.FileEntry, r *regfile.RegFileEntry) { f.Reg = r }),
	magicInetSk: legacy(fdinfo.FdTypes_INETSK, all[sk_inet.InetSkEntry](magicInetSk), (*sk_inet.InetSkEntry).GetId,
		func(f *fdinfo.FileEntry, r *sk_inet.InetSkEntry) { f.Isk = r }),
	magicUnixSk: legacy(fdinfo.FdTypes_UNIXSK, all[sk_unix.UnixSkEntry](magicUnixSk), (*sk_unix.UnixSkEntry).GetId,
		func(f *fdinfo.FileEntry, r *sk_unix.UnixSkEntry) { f.Usk = r }),
	magicPipes: legacy(fdinfo.FdTypes_PIPE, all[pipe.PipeEntry](magicPipes), (*pipe.PipeEntry).GetId,
		func(f *fdinfo.FileEntry, r *pipe.PipeEntry) { f.Pipe = r }),
}

func legacy[R any](t fdinfo.FdTypes, dec decoder[[]R], id func(R) uint32, set func(*fdinfo.FileEntry, R)) func(*ImageReader) ([]*fdinfo.FileEntry, error) {
	return func(ir *ImageReader) ([]*fdinfo.FileEntry, error) {
		l, err := dec(ir)
		out := make([]*fdinfo.FileEntry, 0, len(l))
		for _, r := range l {
			fe := &fdinfo.FileEntry{Type: t.Enum(), Id: proto.Uint32(id(r))}
			set(fe, r)
			out = append(out, fe)
		}
		return out, err
	}
}

// decodeLegacyFiles reads a legacy per-kind file image (CRIU before 3.x).
func decodeLegacyFiles(ir *ImageReader) ([]*fdinfo.FileEntry, error) {
	if dec := legacyKinds[ir.Magic()]; dec != nil {
		return dec(ir)
	}
	return nil, ir.errf(0, fmt.Sprintf("magic 0x%08x is not a file image", ir.Magic()), ErrWrongMagic)
}
