package checkpoint

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	criu_core "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	remap "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
)

// state shared while the processes are assembled.
type builder struct {
	cp      *Checkpoint
	im      *images
	inv     *inventoryInfo
	files   map[uint32]*fdinfo.FileEntry
	remaps  map[uint32]remap.RemapType
	ttys    map[uint32]*tty.TtyInfoEntry
	memfds  map[uint32]*memfd.MemfdInodeEntry
	fdinfos map[uint32][]*fdinfo.FdinfoEntry
}

type inventoryInfo struct {
	fdinfoPerID bool
	rootMntNs   uint32
}

func (b *builder) warnf(format string, args ...any) {
	if len(b.cp.Warnings) < 1000 {
		b.cp.Warnings = append(b.cp.Warnings, fmt.Sprintf(format, args...))
	}
}

// decodeImages fills cp from the CRIU images of im. Only a missing or
// unreadable inventory.img or pstree.img is fatal; anything else becomes a
// warning or a per-process error.
func decodeImages(cp *Checkpoint, im *images) error {
	b := &builder{cp: cp, im: im, inv: &inventoryInfo{}}
	ir, c, err := im.open(imgInventory)
	if err != nil {
		return err
	}
	inv, err := DecodeInventory(ir)
	c.Close()
	if err != nil {
		return err
	}
	cp.ImageVersion = inv.GetImgVersion()
	cp.CRIURunID = inv.GetDumpCriuRunId()
	b.inv.fdinfoPerID = inv.GetFdinfoPerId()
	b.inv.rootMntNs = inv.GetRootIds().GetMntNsId()

	ir, c, err = im.open(imgPstree)
	if err != nil {
		return err
	}
	tree, err := DecodePstree(ir)
	c.Close()
	if err != nil {
		if len(tree) == 0 {
			return err
		}
		b.warnf("%v (the tasks before it are kept)", err)
	}
	tree = b.checkTree(tree)

	b.loadFiles()
	b.loadStaleImages(tree)
	if im.exists(imgStatsDump) {
		b.loadStats(imgStatsDump)
	}
	for _, e := range tree {
		cp.Processes = append(cp.Processes, b.process(e))
	}
	if len(cp.Processes) > 0 {
		b.loadMounts(cp.Processes[0].PID)
	}
	b.cmdlines()
	return nil
}

// checkTree drops duplicate pids and breaks parent cycles, so that every
// consumer can walk the tree from its roots.
func (b *builder) checkTree(tree []*pstree.PstreeEntry) []*pstree.PstreeEntry {
	seen := make(map[uint32]bool, len(tree))
	out := tree[:0]
	for _, e := range tree {
		if seen[e.GetPid()] || e.GetPid() == 0 {
			b.warnf("%s: task %d listed again or invalid, ignored", b.im.label(imgPstree), e.GetPid())
			continue
		}
		seen[e.GetPid()] = true
		out = append(out, e)
	}
	parent := make(map[uint32]uint32, len(out))
	for _, e := range out {
		parent[e.GetPid()] = e.GetPpid()
	}
	for _, e := range out {
		// Walk up at most len(out) steps; coming back to the task is a cycle.
		p, steps := e.GetPpid(), 0
		for p != 0 && steps <= len(out) {
			if p == e.GetPid() {
				b.warnf("%s: task %d is its own ancestor (parent cycle); read as a root", b.im.label(imgPstree), e.GetPid())
				e.Ppid = new(uint32)
				parent[e.GetPid()] = 0
				break
			}
			p = parent[p]
			steps++
		}
	}
	return out
}

func (b *builder) loadFiles() {
	b.files = map[uint32]*fdinfo.FileEntry{}
	add := func(l []*fdinfo.FileEntry) {
		for _, f := range l {
			b.files[f.GetId()] = f
		}
	}
	if b.im.exists(imgFiles) {
		if ir, c, err := b.im.open(imgFiles); err != nil {
			b.warnf("%v", err)
		} else {
			l, err := DecodeFiles(ir)
			c.Close()
			if err != nil {
				b.warnf("%v", err)
			}
			add(l)
		}
	}
	for _, legacy := range []string{imgRegFiles, imgInetSk, imgUnixSk, imgPipes} {
		if !b.im.exists(legacy) {
			continue
		}
		ir, c, err := b.im.open(legacy)
		if err != nil {
			b.warnf("%v", err)
			continue
		}
		l, err := decodeLegacyFiles(ir)
		c.Close()
		if err != nil {
			b.warnf("%v", err)
		}
		for _, f := range l {
			if _, ok := b.files[f.GetId()]; !ok {
				b.files[f.GetId()] = f
			}
		}
	}
	b.remaps = map[uint32]remap.RemapType{}
	if b.im.exists(imgRemapFpath) {
		if ir, c, err := b.im.open(imgRemapFpath); err != nil {
			b.warnf("%v", err)
		} else {
			l, err := DecodeRemaps(ir)
			c.Close()
			if err != nil {
				b.warnf("%v", err)
			}
			for _, r := range l {
				b.remaps[r.GetOrigId()] = r.GetRemapType()
			}
		}
	}
	b.ttys = map[uint32]*tty.TtyInfoEntry{}
	if b.im.exists(imgTtyInfo) {
		if ir, c, err := b.im.open(imgTtyInfo); err != nil {
			b.warnf("%v", err)
		} else {
			l, err := DecodeTtyInfo(ir)
			c.Close()
			if err != nil {
				b.warnf("%v", err)
			}
			for _, t := range l {
				b.ttys[t.GetId()] = t
			}
		}
	}
	b.memfds = map[uint32]*memfd.MemfdInodeEntry{}
	if b.im.exists(imgMemfdInode) {
		if ir, c, err := b.im.open(imgMemfdInode); err != nil {
			b.warnf("%v", err)
		} else {
			l, err := DecodeMemfdInodes(ir)
			c.Close()
			if err != nil {
				b.warnf("%v", err)
			}
			for _, m := range l {
				b.memfds[uint32(m.GetInodeId())] = m
			}
		}
	}
	b.fdinfos = map[uint32][]*fdinfo.FdinfoEntry{}
}

var perTaskImage = regexp.MustCompile(`^(core|fs|ids|mm|pagemap)-([0-9]+)\.img$`)

// loadStaleImages lists per-task images of pids not in pstree.img.
func (b *builder) loadStaleImages(tree []*pstree.PstreeEntry) {
	known := map[uint64]bool{}
	for _, e := range tree {
		known[uint64(e.GetPid())] = true
		for _, t := range e.Threads {
			known[uint64(t)] = true
		}
	}
	ents, err := b.im.src.ReadDir(b.im.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := path.Base(e.Name)
		m := perTaskImage.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		id, err := strconv.ParseUint(m[2], 10, 32)
		if err != nil || known[id] {
			continue
		}
		b.cp.StaleImages = append(b.cp.StaleImages, name)
	}
}

func (b *builder) loadStats(name string) {
	ir, c, err := b.im.open(name)
	if err != nil {
		b.warnf("%v", err)
		return
	}
	defer c.Close()
	st, err := DecodeStats(ir)
	if err != nil {
		b.warnf("%v", err)
		return
	}
	if d := st.GetDump(); d != nil {
		b.cp.Stats = &DumpStats{
			FreezingTimeUs: d.GetFreezingTime(), FrozenTimeUs: d.GetFrozenTime(),
			MemdumpTimeUs: d.GetMemdumpTime(), MemwriteTimeUs: d.GetMemwriteTime(),
			PagesScanned: d.GetPagesScanned(), PagesWritten: d.GetPagesWritten(), PagesLazy: d.GetPagesLazy(),
		}
	}
}

func (b *builder) readCore(p *Process, tid uint32) *criu_core.CoreEntry {
	name := fmt.Sprintf(imgCoreFmt, tid)
	ir, c, err := b.im.open(name)
	if err != nil {
		p.Errors = append(p.Errors, err.Error())
		return nil
	}
	defer c.Close()
	core, err := DecodeCore(ir)
	if err != nil {
		p.Errors = append(p.Errors, err.Error())
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
		p.State = taskState(tc.GetTaskState())
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
	for _, tid := range tids {
		var tcore *criu_core.CoreEntry
		if tid == p.PID {
			tcore = core
		} else {
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
	ids := core.GetIds()
	if ids == nil {
		if ir, c, err := b.im.open(fmt.Sprintf(imgIDsFmt, p.PID)); err == nil {
			ids, err = DecodeIDs(ir)
			c.Close()
			if err != nil {
				p.Errors = append(p.Errors, err.Error())
			}
		} else if !isNotExist(err) {
			p.Errors = append(p.Errors, err.Error())
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
		t.State = taskState(core.GetTc().GetTaskState())
	}
	t.BlockedSigs = tc.GetBlkSigset()
	if tc == nil || tc.BlkSigset == nil {
		t.BlockedSigs = core.GetTc().GetBlkSigset()
	}
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

func (b *builder) readMM(p *Process) {
	name := fmt.Sprintf(imgMMFmt, p.PID)
	ir, c, err := b.im.open(name)
	if err != nil {
		p.Errors = append(p.Errors, err.Error())
		return
	}
	mme, err := DecodeMM(ir)
	c.Close()
	if err != nil {
		p.Errors = append(p.Errors, err.Error())
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
		p.Errors = append(p.Errors, fmt.Sprintf("%s: exe file id %d is not a regular file of %s", b.im.label(name), mme.GetExeFileId(), imgFiles))
	}
	for _, v := range mme.GetVmas() {
		vm := VMA{Start: v.GetStart(), End: v.GetEnd(), Pgoff: v.GetPgoff(), Prot: v.GetProt(), Flags: v.GetFlags(), Status: v.GetStatus()}
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
	pm, err := b.pagemap(p.PID)
	if err != nil {
		if !isNotExist(err) {
			p.Errors = append(p.Errors, err.Error())
		}
		return
	}
	p.PagesID = pm.PagesID
	p.PageCount = pm.PresentPages()
}

func (b *builder) pagemap(pid uint32) (*Pagemap, error) {
	ir, c, err := b.im.open(fmt.Sprintf(imgPagemapFmt, pid))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	pm, err := DecodePagemap(ir)
	if pm != nil {
		pm.PID = pid
	}
	return pm, err
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
	ir, c, err := b.im.open(fmt.Sprintf(imgFsFmt, p.PID))
	if err != nil {
		p.Errors = append(p.Errors, err.Error())
		return
	}
	fse, err := DecodeFs(ir)
	c.Close()
	if err != nil {
		p.Errors = append(p.Errors, err.Error())
		return
	}
	p.Cwd = b.regName(fse.GetCwdId())
	p.Root = b.regName(fse.GetRootId())
	p.Umask = fse.GetUmask()
}

func (b *builder) readFDs(p *Process, filesID uint32) {
	l, ok := b.fdinfos[filesID]
	if !ok {
		ir, c, err := b.im.open(fmt.Sprintf(imgFdinfoFmt, filesID))
		if err != nil {
			p.Errors = append(p.Errors, err.Error())
			return
		}
		l, err = DecodeFdinfo(ir)
		c.Close()
		if err != nil {
			p.Errors = append(p.Errors, err.Error())
		}
		b.fdinfos[filesID] = l
	}
	for _, fi := range l {
		fd := FD{FD: fi.GetFd(), ID: fi.GetId(), CloExec: fi.GetFlags()&1 != 0}
		f := b.files[fi.GetId()]
		t := fi.GetType()
		fd.Type = strings.ToLower(t.String())
		if f == nil && t != fdinfo.FdTypes_CTL_TTY {
			p.Errors = append(p.Errors, fmt.Sprintf("fd %d: file id %d (%s) is not in %s", fd.FD, fd.ID, t, imgFiles))
			p.FDs = append(p.FDs, fd)
			continue
		}
		switch t {
		case fdinfo.FdTypes_REG:
			r := f.GetReg()
			fd.Type = "reg"
			fd.Path, fd.Pos, fd.Size, fd.Mode = r.GetName(), r.GetPos(), r.GetSize(), r.GetMode()
			fd.Flags = OpenFlags(r.GetFlags())
			if rt, ok := b.remaps[fd.ID]; ok {
				fd.Deleted = rt == remap.RemapType_GHOST || rt == remap.RemapType_LINKED
				fd.Ghost = rt == remap.RemapType_GHOST
			}
		case fdinfo.FdTypes_PIPE:
			fd.PipeID = f.GetPipe().GetPipeId()
			fd.Path = fmt.Sprintf("pipe:[%d]", fd.PipeID)
			fd.Flags = OpenFlags(f.GetPipe().GetFlags())
		case fdinfo.FdTypes_FIFO:
			fd.PipeID = f.GetFifo().GetPipeId()
			fd.Path = b.regName(f.GetFifo().GetRegfId())
		case fdinfo.FdTypes_INETSK:
			s := inetSocket(fd.FD, f)
			fd.Type, fd.Path, fd.Inode, fd.Detail = "inet", fmt.Sprintf("socket:[%d]", s.Inode), s.Inode, s.summary()
			fd.Flags = OpenFlags(f.GetIsk().GetFlags())
			p.Sockets = append(p.Sockets, s)
		case fdinfo.FdTypes_UNIXSK:
			s := unixSocket(fd.FD, f)
			fd.Type, fd.Path, fd.Inode, fd.Detail = "unix", fmt.Sprintf("socket:[%d]", s.Inode), s.Inode, s.summary()
			fd.Flags = OpenFlags(f.GetUsk().GetFlags())
			p.Sockets = append(p.Sockets, s)
		case fdinfo.FdTypes_PACKETSK:
			fd.Type, fd.Path = "packet", fmt.Sprintf("socket:[%d]", f.GetPsk().GetId())
			p.Sockets = append(p.Sockets, Socket{FD: fd.FD, Family: "packet", Type: sockTypeName(f.GetPsk().GetType()), Protocol: fmt.Sprintf("0x%04x", f.GetPsk().GetProtocol())})
		case fdinfo.FdTypes_NETLINKSK:
			nl := f.GetNlsk()
			fd.Type, fd.Inode = "netlink", nl.GetIno()
			fd.Path = fmt.Sprintf("socket:[%d]", nl.GetIno())
			p.Sockets = append(p.Sockets, Socket{FD: fd.FD, Family: "netlink", Type: "raw", Protocol: strconv.Itoa(int(nl.GetProtocol())), State: tcpStateName(nl.GetState()), Inode: nl.GetIno()})
		case fdinfo.FdTypes_EVENTFD:
			fd.Path = "anon_inode:[eventfd]"
			fd.Detail = fmt.Sprintf("counter=%d", f.GetEfd().GetCounter())
			fd.Flags = OpenFlags(f.GetEfd().GetFlags())
		case fdinfo.FdTypes_EVENTPOLL:
			fd.Path = "anon_inode:[eventpoll]"
			var tfds []string
			for i, t := range f.GetEpfd().GetTfd() {
				if i >= 64 {
					tfds = append(tfds, "…")
					break
				}
				tfds = append(tfds, strconv.Itoa(int(t.GetTfd())))
			}
			fd.Detail = "watches fds " + strings.Join(tfds, ",")
		case fdinfo.FdTypes_SIGNALFD:
			fd.Path = "anon_inode:[signalfd]"
			fd.Detail = fmt.Sprintf("sigmask=0x%x", f.GetSgfd().GetSigmask())
		case fdinfo.FdTypes_INOTIFY:
			fd.Path = "anon_inode:inotify"
			var w []string
			for i, wd := range f.GetIfy().GetWd() {
				if i >= 64 {
					w = append(w, "…")
					break
				}
				w = append(w, fmt.Sprintf("ino=%d mask=0x%x", wd.GetIIno(), wd.GetMask()))
			}
			fd.Detail = strings.Join(w, "; ")
		case fdinfo.FdTypes_FANOTIFY:
			fd.Path = "anon_inode:[fanotify]"
			fd.Detail = fmt.Sprintf("%d marks", len(f.GetFfy().GetMark()))
		case fdinfo.FdTypes_TIMERFD:
			fd.Path = "anon_inode:[timerfd]"
			fd.Detail = fmt.Sprintf("clockid=%d", f.GetTfd().GetClockid())
		case fdinfo.FdTypes_MEMFD:
			fd.Path = b.memfdName(f.GetMemfd().GetInodeId())
			fd.Pos = f.GetMemfd().GetPos()
			fd.Flags = OpenFlags(f.GetMemfd().GetFlags())
		case fdinfo.FdTypes_TTY:
			tf := f.GetTty()
			fd.Flags = OpenFlags(tf.GetFlags())
			if info := b.ttys[tf.GetTtyInfoId()]; info != nil {
				switch info.GetType() {
				case tty.TtyType_PTY:
					fd.Path = fmt.Sprintf("/dev/pts/%d", info.GetPty().GetIndex())
				default:
					fd.Path = "tty:" + strings.ToLower(info.GetType().String())
				}
				fd.Detail = fmt.Sprintf("sid=%d pgrp=%d", info.GetSid(), info.GetPgrp())
			}
			if fd.Path == "" {
				fd.Path = b.regName(tf.GetRegfId())
			}
		case fdinfo.FdTypes_NS:
			fd.Path = fmt.Sprintf("ns:[%d]", f.GetNsf().GetNsId())
		case fdinfo.FdTypes_TUNF:
			fd.Path = "/dev/net/tun"
			fd.Detail = f.GetTunf().GetNetdev()
		case fdinfo.FdTypes_PIDFD:
			fd.Path = "anon_inode:[pidfd]"
			fd.Detail = fmt.Sprintf("pid=%d", f.GetPidfd().GetNspid())
		case fdinfo.FdTypes_BPFMAP:
			fd.Path = "anon_inode:bpf-map"
		case fdinfo.FdTypes_EXT:
			fd.Path = "external"
		}
		p.FDs = append(p.FDs, fd)
	}
	sort.Slice(p.FDs, func(i, j int) bool { return p.FDs[i].FD < p.FDs[j].FD })
	sort.SliceStable(p.Sockets, func(i, j int) bool { return p.Sockets[i].FD < p.Sockets[j].FD })
}

func inetSocket(fd uint32, f *fdinfo.FileEntry) Socket {
	sk := f.GetIsk()
	s := Socket{FD: fd, Family: familyName(sk.GetFamily()), Type: sockTypeName(sk.GetType()), Protocol: protoName(sk.GetProto()),
		State: tcpStateName(sk.GetState()), SrcPort: sk.GetSrcPort(), DstPort: sk.GetDstPort(), Backlog: sk.GetBacklog(), Inode: sk.GetIno()}
	if s.Type == "dgram" && s.State == "CLOSE" {
		s.State = "UNCONN"
	}
	if a, ok := sockAddr(sk.GetFamily(), sk.GetSrcAddr()); ok {
		s.SrcAddr = a.String()
		s.Src = netip.AddrPortFrom(a, uint16(s.SrcPort)).String()
	}
	if a, ok := sockAddr(sk.GetFamily(), sk.GetDstAddr()); ok {
		s.DstAddr = a.String()
		if !a.IsUnspecified() || s.DstPort != 0 {
			s.Dst = netip.AddrPortFrom(a, uint16(s.DstPort)).String()
		}
	}
	return s
}

func unixSocket(fd uint32, f *fdinfo.FileEntry) Socket {
	sk := f.GetUsk()
	s := Socket{FD: fd, Family: "unix", Type: sockTypeName(sk.GetType()), State: tcpStateName(sk.GetState()), Backlog: sk.GetBacklog(), Inode: sk.GetIno(), Peer: sk.GetPeer()}
	name := sk.GetName()
	switch {
	case len(name) == 0:
	case name[0] == 0:
		s.Src = "@" + strings.ToValidUTF8(string(bytes.TrimRight(name[1:], "\x00")), "\uFFFD")
	default:
		n := strings.ToValidUTF8(string(bytes.TrimRight(name, "\x00")), "\uFFFD")
		if d := sk.GetNameDir(); d != "" && !strings.HasPrefix(n, "/") {
			n = path.Join(d, n)
		}
		s.Src = n
	}
	if sk.GetDeleted() && s.Src != "" {
		s.Src += " (deleted)"
	}
	return s
}

func (s Socket) summary() string {
	switch s.Family {
	case "unix":
		out := s.Type + " " + s.State
		if s.Src != "" {
			out += " " + s.Src
		}
		if s.Peer != 0 {
			out += fmt.Sprintf(" peer=%d", s.Peer)
		}
		return out
	}
	out := s.Protocol + " " + s.State + " " + s.Src
	if s.Dst != "" {
		out += " -> " + s.Dst
	}
	return out
}

func (b *builder) loadMounts(rootPID uint32) {
	ns := b.inv.rootMntNs
	if ir, c, err := b.im.open(fmt.Sprintf(imgIDsFmt, rootPID)); err == nil {
		if ids, err := DecodeIDs(ir); err == nil && ids.MntNsId != nil {
			ns = ids.GetMntNsId()
		}
		c.Close()
	}
	if ids := b.readCore(&Process{}, rootPID).GetIds(); ids != nil && ids.MntNsId != nil {
		ns = ids.GetMntNsId()
	}
	name := fmt.Sprintf(imgMountpointsFmt, ns)
	if !b.im.exists(name) {
		return
	}
	ir, c, err := b.im.open(name)
	if err != nil {
		b.warnf("%v", err)
		return
	}
	defer c.Close()
	l, err := DecodeMountpoints(ir)
	if err != nil {
		b.warnf("%v", err)
	}
	for _, m := range l {
		fst := m.GetFsname()
		if fst == "" {
			fst = fstypeNames[m.GetFstype()]
		}
		b.cp.Mounts = append(b.cp.Mounts, Mount{ID: m.GetMntId(), ParentID: m.GetParentMntId(), Mountpoint: m.GetMountpoint(), Root: m.GetRoot(),
			Source: m.GetSource(), FSType: fst, Options: m.GetOptions(), External: m.GetExtMount() || m.GetExtKey() != "", Deleted: m.GetDeleted()})
	}
	sort.SliceStable(b.cp.Mounts, func(i, j int) bool { return b.cp.Mounts[i].ID < b.cp.Mounts[j].ID })
}

// cmdlines reads argv and the environment of each task from its pages when
// the pages image can be opened (directories, plain tar archives, and
// compressed archives opened with Options.Pages); streamArgs does it for
// the other compressed archives.
func (b *builder) cmdlines() {
	for i := range b.cp.Processes {
		p := &b.cp.Processes[i]
		if p.PageCount == 0 {
			continue
		}
		pm, err := b.pagemap(p.PID)
		if err != nil {
			continue
		}
		f, err := b.im.src.Open(b.im.path(fmt.Sprintf(imgPagesFmt, pm.PagesID)))
		if err != nil {
			continue
		}
		p.Cmdline = readStrings(f, pm, p.ArgStart, p.ArgEnd)
		p.Environ = readStrings(f, pm, p.EnvStart, p.EnvEnd)
		f.Close()
	}
}

// span is a byte range of a pages image.
type span struct{ off, n int64 }

// spans lists where [start,end) of a task's memory lies in its pages
// image, bounded to maxArgBytes; it stops at the first page not stored.
func spans(pm *Pagemap, start, end uint64) []span {
	if end <= start || start == 0 {
		return nil
	}
	if end-start > maxArgBytes {
		end = start + maxArgBytes
	}
	var out []span
	for va := start; va < end; {
		e, ok := pm.Lookup(va)
		if !ok || e.Flags&PagePresent == 0 {
			break
		}
		// e.NrPages < 2^52, so the run's length does not overflow even
		// when the run ends at the top of the address space.
		n := min(end-va, e.NrPages*pageSize-(va-e.Vaddr))
		out = append(out, span{e.Offset + int64(va-e.Vaddr), int64(n)})
		va += n
	}
	return out
}

// readStrings reads the NUL-separated strings in [start,end) of a task's
// memory.
func readStrings(pages io.ReaderAt, pm *Pagemap, start, end uint64) []string {
	var buf []byte
	for _, s := range spans(pm, start, end) {
		chunk := make([]byte, s.n)
		if _, err := pages.ReadAt(chunk, s.off); err != nil {
			break
		}
		buf = append(buf, chunk...)
	}
	buf = bytes.TrimRight(buf, "\x00")
	if len(buf) == 0 {
		return nil
	}
	var out []string
	for _, s := range bytes.Split(buf, []byte{0}) {
		out = append(out, strings.ToValidUTF8(string(s), "\uFFFD"))
	}
	return out
}
