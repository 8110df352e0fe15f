package checkpoint

import (
	"fmt"
	"strings"

	criu_core "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	remap "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
)

// taskImage decodes one of a task's images; a problem becomes an error of
// the task and ok is false.
func taskImage[R any](b *builder, p *Process, name string, dec decoder[R]) (r R, ok bool) {
	r, err := decodeImage(b.im, name, dec)
	if err != nil {
		p.addError(err)
		return r, false
	}
	return r, true
}

func (b *builder) readCore(p *Process, tid uint32) *criu_core.CoreEntry {
	core, ok := taskImage(b, p, fmt.Sprintf(imgCoreFmt, tid), decodeCore)
	if !ok {
		return nil
	}
	return core
}

func (b *builder) process(e *pstree.PstreeEntry) Process {
	p := Process{PID: e.GetPid(), PPID: e.GetPpid(), PGID: e.GetPgid(), SID: e.GetSid(), ExeOrigin: OriginUnknown, FDs: []FD{}, Sockets: []Socket{}}
	tids := e.Threads
	if len(tids) == 0 {
		tids = []uint32{p.PID}
	}
	core := b.readCore(&p, p.PID)
	if core != nil {
		tc := core.GetTc()
		p.Comm = tc.GetComm()
		p.State = taskStates.name(tc.GetTaskState())
		p.ExitCode = tc.GetExitCode()
		p.Loginuid = tc.GetLoginuid()
		p.OOMScoreAdj = tc.GetOomScoreAdj()
		if cr := core.GetThreadCore().GetCreds(); cr != nil {
			p.UID, p.GID, p.EUID, p.EGID = cr.GetUid(), cr.GetGid(), cr.GetEuid(), cr.GetEgid()
			p.Groups = cr.GetGroups()
			p.Caps = &Caps{Inheritable: caps64(cr.CapInh), Permitted: caps64(cr.CapPrm), Effective: caps64(cr.CapEff), Bounding: caps64(cr.CapBnd), Ambient: caps64(cr.CapAmb)}
			p.NoNewPrivs = cr.GetNoNewPrivs() != 0
			p.LSMProfile = cr.GetLsmProfile()
		}
		if tcore := core.GetThreadCore(); tcore != nil && tcore.SeccompMode != nil {
			p.Seccomp = seccompName(int32(tcore.GetSeccompMode()))
		} else if tc != nil && tc.OldSeccompMode != nil {
			p.Seccomp = seccompName(int32(tc.GetOldSeccompMode()))
		}
	} else {
		p.State = "unknown"
	}
	seen := make(map[uint32]bool, len(tids))
	for _, tid := range tids {
		if seen[tid] {
			p.errorf(b.im.label(imgPstree), "thread %d listed again in task %d; the repeat left out", tid, p.PID)
			continue
		}
		seen[tid] = true
		tcore := core
		if tid != p.PID {
			tcore = b.readCore(&p, tid)
		}
		th := thread(tid, tcore)
		if th.State == "" {
			th.State = p.State // only the leader's core image carries the task state
		}
		p.Threads = append(p.Threads, th)
	}
	if p.State != StateAlive && p.State != StateStopped {
		// Dead and zombie tasks have no memory, files or fs images.
		return p
	}
	if b.opt.skips(PartFDs) {
		b.readMM(&p)
		return p
	}
	ids := core.GetIds()
	if ids == nil {
		var err error
		ids, err = decodeImage(b.im, fmt.Sprintf(imgIDsFmt, p.PID), decodeIDs)
		if err != nil && (ids != nil || !isNotExist(err)) {
			p.addError(err)
		}
	}
	b.readMM(&p)
	b.readFs(&p)
	filesID := p.PID
	if b.inv.fdinfoPerID && ids != nil {
		filesID = ids.GetFilesId()
	}
	b.readFDs(&p, filesID)
	return p
}

func thread(tid uint32, core *criu_core.CoreEntry) Thread {
	t := Thread{TID: tid}
	if core == nil {
		t.State = "unknown"
		return t
	}
	tc := core.GetThreadCore()
	t.Comm = tc.GetComm()
	if t.Comm == "" {
		t.Comm = core.GetTc().GetComm()
	}
	if core.GetTc() != nil {
		t.State = taskStates.name(core.GetTc().GetTaskState())
	}
	t.BlockedSigs = blockedSigs(core)
	t.PendingSigs = len(tc.GetSignalsP().GetSignals())
	if tc != nil && tc.SeccompMode != nil {
		t.Seccomp = seccompName(int32(tc.GetSeccompMode()))
	}
	t.Arch = strings.ToLower(core.GetMtype().String())
	if g := core.GetThreadInfo().GetGpregs(); g != nil {
		t.IP, t.SP = g.GetIp(), g.GetSp()
	} else if g := core.GetTiAarch64().GetGpregs(); g != nil {
		t.IP, t.SP = g.GetPc(), g.GetSp()
	}
	return t
}

// blockedSigs is the thread's blocked mask: the thread core's, or for old
// images the task core's.
func blockedSigs(core *criu_core.CoreEntry) uint64 {
	if tc := core.GetThreadCore(); tc != nil && tc.BlkSigset != nil {
		return tc.GetBlkSigset()
	}
	return core.GetTc().GetBlkSigset()
}

func (b *builder) readMM(p *Process) {
	name := fmt.Sprintf(imgMMFmt, p.PID)
	mme, ok := taskImage(b, p, name, decodeMM)
	if !ok {
		return
	}
	p.ArgStart, p.ArgEnd = mme.GetMmArgStart(), mme.GetMmArgEnd()
	p.EnvStart, p.EnvEnd = mme.GetMmEnvStart(), mme.GetMmEnvEnd()
	p.StartBrk, p.Brk, p.StartStack = mme.GetMmStartBrk(), mme.GetMmBrk(), mme.GetMmStartStack()
	p.Auxv = mme.GetMmSavedAuxv()
	if f := b.files[mme.GetExeFileId()]; f != nil && f.GetReg() != nil {
		p.Exe = f.GetReg().GetName()
		if t, ok := b.remaps[mme.GetExeFileId()]; ok && (t == remap.RemapType_GHOST || t == remap.RemapType_LINKED) {
			p.ExeOrigin = OriginDeleted
		}
	} else if mme.ExeFileId != nil {
		p.errorf(b.im.label(name), "exe file id %d is not a regular file of %s", mme.GetExeFileId(), imgFiles)
	}
	for _, v := range mme.GetVmas() {
		vm := VMA{Start: v.GetStart(), End: v.GetEnd(), Pgoff: v.GetPgoff(), Prot: v.GetProt(), Flags: v.GetFlags(), Status: v.GetStatus(), Shmid: v.GetShmid()}
		vm.Perms = permString(vm.Prot, vm.Flags)
		vm.Kind = vmaKind(vm.Status)
		if vm.Status&(VMAFilePrivate|VMAFileShared|VMAAreaMemfd) != 0 {
			id := uint32(v.GetShmid())
			vm.FileID = id
			if f := b.files[id]; f != nil {
				switch {
				case f.GetReg() != nil:
					vm.File = f.GetReg().GetName()
				case f.GetMemfd() != nil:
					vm.File = b.memfdName(f.GetMemfd().GetInodeId())
				}
			}
		}
		p.VMAs = append(p.VMAs, vm)
	}
	pm, err := b.im.Pagemap(p.PID)
	if err != nil && !isNotExist(err) {
		p.addError(err)
	}
	if pm == nil {
		return
	}
	// a damaged pagemap's runs before the damage still count
	p.PagesID = pm.PagesID
	p.PageCount = pm.PresentPages()
}

func (b *builder) memfdName(inode uint32) string {
	if m := b.memfds[inode]; m != nil {
		return "memfd:" + m.GetName()
	}
	return "memfd:"
}

func (b *builder) regName(id uint32) string {
	if f := b.files[id]; f != nil && f.GetReg() != nil {
		return f.GetReg().GetName()
	}
	return ""
}

func (b *builder) readFs(p *Process) {
	fse, ok := taskImage(b, p, fmt.Sprintf(imgFsFmt, p.PID), decodeFs)
	if !ok {
		return
	}
	p.Cwd = b.regName(fse.GetCwdId())
	p.Root = b.regName(fse.GetRootId())
	p.Umask = fse.GetUmask()
}
