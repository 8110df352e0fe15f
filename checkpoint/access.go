package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	criu_core "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/deadnode/deadnode/evidence"
)

// What other packages read of a checkpoint beyond its decoded fields: the
// images directory (pagemaps and pages, the parent dump), registers,
// memfd objects, the container's changes. Everything is decoded on demand
// from the source, so these may be called from several goroutines.

// Images is the directory of the checkpoint's own CRIU images.
func (cp *Checkpoint) Images() *ImageDir { return cp.imgs }

// Process returns the task with that pid, or nil.
func (cp *Checkpoint) Process(pid uint32) *Process {
	cp.mu.Lock()
	if len(cp.byPID) != len(cp.Processes) {
		cp.byPID = make(map[uint32]int, len(cp.Processes))
		for i := range cp.Processes {
			if _, dup := cp.byPID[cp.Processes[i].PID]; !dup {
				cp.byPID[cp.Processes[i].PID] = i
			}
		}
	}
	i, ok := cp.byPID[pid]
	cp.mu.Unlock()
	if !ok || i >= len(cp.Processes) || cp.Processes[i].PID != pid {
		return nil
	}
	return &cp.Processes[i]
}

// Pagemap decodes pagemap-<pid>.img of a task of the pstree.
func (cp *Checkpoint) Pagemap(pid uint32) (*Pagemap, error) {
	if cp.Process(pid) == nil {
		return nil, fmt.Errorf("%s: task %d is not in %s", cp.Source, pid, imgPstree)
	}
	return cp.imgs.Pagemap(pid)
}

// Pages opens pages-<id>.img for random access (a Pagemap entry's Offset
// is an offset in it). Compressed archives need Options.Pages.
func (cp *Checkpoint) Pages(pagesID uint32) (evidence.File, error) {
	return cp.imgs.src.Open(cp.imgs.path(fmt.Sprintf(imgPagesFmt, pagesID)))
}

// Image opens any CRIU protobuf image of the checkpoint by file name
// (for instance "seccomp.img"), for records this package does not
// decode; close the returned io.Closer.
func (cp *Checkpoint) Image(name string) (*ImageReader, io.Closer, error) {
	if strings.Contains(name, "/") {
		return nil, nil, fmt.Errorf("image name %q has a slash", name)
	}
	return cp.imgs.open(name)
}

// Registers reads the saved registers of thread tid (core-<tid>.img).
func (cp *Checkpoint) Registers(tid uint32) (*Registers, error) {
	core, err := decodeImage(cp.imgs, fmt.Sprintf(imgCoreFmt, tid), decodeCore)
	if err != nil {
		return nil, err
	}
	r := &Registers{TID: tid, Arch: strings.ToLower(core.GetMtype().String()),
		PendingSigs: len(core.GetThreadCore().GetSignalsP().GetSignals()), BlockedSigs: blockedSigs(core)}
	if core.GetMtype() == criu_core.CoreEntry_X86_64 {
		if g := core.GetThreadInfo().GetGpregs(); g != nil {
			r.X86 = &X86Regs{R15: g.GetR15(), R14: g.GetR14(), R13: g.GetR13(), R12: g.GetR12(), BP: g.GetBp(), BX: g.GetBx(),
				R11: g.GetR11(), R10: g.GetR10(), R9: g.GetR9(), R8: g.GetR8(), AX: g.GetAx(), CX: g.GetCx(), DX: g.GetDx(),
				SI: g.GetSi(), DI: g.GetDi(), OrigAX: g.GetOrigAx(), IP: g.GetIp(), CS: g.GetCs(), Flags: g.GetFlags(),
				SP: g.GetSp(), SS: g.GetSs(), FSBase: g.GetFsBase(), GSBase: g.GetGsBase(), DS: g.GetDs(), ES: g.GetEs(),
				FS: g.GetFs(), GS: g.GetGs()}
		}
		if f := core.GetThreadInfo().GetFpregs(); f != nil {
			r.X86FP = &X86FPRegs{CWD: f.GetCwd(), SWD: f.GetSwd(), TWD: f.GetTwd(), FOP: f.GetFop(), RIP: f.GetRip(), RDP: f.GetRdp(),
				MXCSR: f.GetMxcsr(), MXCSRMask: f.GetMxcsrMask(), ST: f.GetStSpace(), XMM: f.GetXmmSpace()}
		}
	}
	return r, nil
}

// memfdIndex maps memfd file ids to the shmid of their inode.
type memfdIndex struct {
	shmid map[uint32]uint64
	err   error
}

// MemfdShmid returns the shared memory object of a memfd: fileID is the
// file id of a memfd mapping (its VMA's FileID); files.img names its inode,
// whose memfd.img record gives the shmid of pagemap-shmem-<shmid>.img.
func (cp *Checkpoint) MemfdShmid(fileID uint32) (uint64, error) {
	cp.mu.Lock()
	if cp.memfd == nil {
		cp.memfd = cp.loadMemfds()
	}
	x := cp.memfd
	cp.mu.Unlock()
	if sh, ok := x.shmid[fileID]; ok {
		return sh, nil
	}
	if x.err != nil {
		return 0, x.err
	}
	return 0, fmt.Errorf("memfd file id %d has no inode in %s", fileID, imgMemfdInode)
}

func (cp *Checkpoint) loadMemfds() *memfdIndex {
	x := &memfdIndex{shmid: map[uint32]uint64{}}
	if cp.imgs == nil {
		x.err = fs.ErrNotExist
		return x
	}
	inodes := map[uint32]uint64{}
	l, err := decodeImage(cp.imgs, imgMemfdInode, decodeMemfdInodes)
	x.err = err
	for _, m := range l {
		inodes[uint32(m.GetInodeId())] = uint64(m.GetShmid())
	}
	files, err := decodeImage(cp.imgs, imgFiles, decodeFiles)
	if err != nil && x.err == nil && !errors.Is(err, fs.ErrNotExist) {
		x.err = err
	}
	for _, f := range files {
		if m := f.GetMemfd(); m != nil {
			if sh, ok := inodes[m.GetInodeId()]; ok {
				x.shmid[f.GetId()] = sh
			}
		}
	}
	return x
}

// diffSource is rootfs-diff.tar indexed as a source, once.
type diffSource struct {
	a   *evidence.Archive
	f   evidence.File
	err error
}

func (d *diffSource) close() error {
	if d.a == nil {
		return nil
	}
	d.a.Close()
	return d.f.Close()
}

// RootfsDiffSource returns the container's changed files stored with the
// checkpoint (rootfs-diff.tar of Podman, CRI-O and kubelet archives) as an
// evidence source, indexed once and read in place; the Checkpoint owns it.
// fs.ErrNotExist when the checkpoint has none (or a compressed archive
// did not keep it: Options.MaxRootfsDiff).
func (cp *Checkpoint) RootfsDiffSource() (evidence.Source, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.diff == nil && cp.top == nil {
		return nil, fs.ErrNotExist
	}
	if cp.diff == nil {
		cp.diff = &diffSource{}
		name := cp.top.path(fileRootfsDiff)
		f, err := cp.top.src.Open(name)
		if err != nil {
			cp.diff.err = err
		} else if a, err := evidence.NewArchive(context.Background(), f, f.Size(), cp.top.label(fileRootfsDiff), &evidence.ArchiveOptions{}); err != nil {
			f.Close()
			cp.diff.err = err
		} else {
			cp.diff.a, cp.diff.f = a, f
		}
	}
	if cp.diff.err != nil {
		return nil, cp.diff.err
	}
	return cp.diff.a, nil
}
