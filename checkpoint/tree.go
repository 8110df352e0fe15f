package checkpoint

import (
	"context"
	"path"
	"regexp"
	"sort"
	"strconv"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	remap "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"github.com/deadnode/deadnode/evidence"
	"google.golang.org/protobuf/proto"
)

// builder is the state shared while the processes are assembled.
type builder struct {
	cp      *Checkpoint
	im      *ImageDir
	opt     *Options
	inv     inventoryInfo
	files   map[uint32]*fdinfo.FileEntry
	remaps  map[uint32]remap.RemapType
	ttys    map[uint32]*tty.TtyInfoEntry
	memfds  map[uint32]*memfd.MemfdInodeEntry
	fdinfos map[uint32][]*fdinfo.FdinfoEntry
	// treeSteps counts the parent links checkTree followed (a test shows
	// it linear).
	treeSteps int
}

type inventoryInfo struct {
	fdinfoPerID bool
	rootMntNs   uint32
}

// decodeImages fills cp from its CRIU images. Only a missing or unreadable
// inventory.img or pstree.img is fatal; anything else becomes a warning or
// a per-process error.
func decodeImages(ctx context.Context, cp *Checkpoint, opt *Options) error {
	b := &builder{cp: cp, im: cp.imgs, opt: opt}
	inv, err := decodeImage(b.im, imgInventory, decodeInventory)
	if err != nil {
		return err
	}
	cp.ImageVersion = inv.GetImgVersion()
	cp.CRIURunID = inv.GetDumpCriuRunId()
	b.inv = inventoryInfo{fdinfoPerID: inv.GetFdinfoPerId(), rootMntNs: inv.GetRootIds().GetMntNsId()}

	tree, err := decodeImage(b.im, imgPstree, decodePstree)
	if err != nil {
		if len(tree) == 0 {
			return err
		}
		w := warningOf(err)
		w.Msg += " (the tasks before it are kept)"
		cp.addWarning(w)
	}
	tree = b.checkTree(tree)

	b.loadFiles()
	b.loadStaleImages(tree)
	if b.im.exists(imgStatsDump) {
		loadStats(cp, b.im)
	}
	if len(tree) > 0 {
		cp.Processes = make([]Process, 0, len(tree))
	}
	for i, e := range tree {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		cp.Processes = append(cp.Processes, b.process(e))
	}
	if len(cp.Processes) > 0 && !opt.skips(PartMounts) {
		b.loadMounts(cp.Processes[0].PID)
	}
	if !opt.skips(PartCmdlines) {
		b.cmdlines()
	}
	return ctx.Err()
}

// checkTree drops duplicate pids and breaks parent cycles, so that every
// consumer can walk the tree from its roots. Of each cycle, the task that
// comes first in pstree.img becomes a root. It is linear in the number of
// tasks whatever the depth of the tree: each task is walked once.
func (b *builder) checkTree(tree []*pstree.PstreeEntry) []*pstree.PstreeEntry {
	seen := make(map[uint32]bool, len(tree))
	out := tree[:0]
	for _, e := range tree {
		if seen[e.GetPid()] || e.GetPid() == 0 {
			b.cp.addWarning(evidence.Warnf(b.im.label(imgPstree), -1, "task %d listed again or invalid, ignored", e.GetPid()))
			continue
		}
		seen[e.GetPid()] = true
		out = append(out, e)
	}
	index := make(map[uint32]int32, len(out))
	for i, e := range out {
		index[e.GetPid()] = int32(i)
	}
	parent := func(i int32) int32 {
		if j, ok := index[out[i].GetPpid()]; ok && out[i].GetPpid() != 0 {
			return j
		}
		return -1
	}
	// Each task has at most one parent: following parents from a task not
	// yet visited either ends at a root, reaches a task visited before
	// (done), or comes back to a task of the current walk (a new cycle).
	const onWalk, done = 1, 2
	state := make([]uint8, len(out))
	at := make([]int32, len(out)) // a task's position in the current walk
	var walk, breaks []int32
	for i := range out {
		walk = walk[:0]
		j := int32(i)
		for j >= 0 && state[j] == 0 {
			b.treeSteps++
			state[j], at[j] = onWalk, int32(len(walk))
			walk = append(walk, j)
			j = parent(j)
		}
		if j >= 0 && state[j] == onWalk {
			first := j
			for _, k := range walk[at[j]:] {
				first = min(first, k)
			}
			breaks = append(breaks, first)
		}
		for _, k := range walk {
			state[k] = done
		}
	}
	sort.Slice(breaks, func(i, j int) bool { return breaks[i] < breaks[j] })
	for _, i := range breaks {
		e := out[i]
		b.cp.addWarning(evidence.Warnf(b.im.label(imgPstree), -1, "task %d is its own ancestor (parent cycle); read as a root", e.GetPid()))
		e.Ppid = new(uint32)
	}
	return out
}

// optional decodes an image the checkpoint may lack; its problems become
// warnings, and what was decoded before a damaged record is kept.
func optional[R any](b *builder, name string, dec decoder[R]) R {
	var zero R
	if !b.im.exists(name) {
		return zero
	}
	r, err := decodeImage(b.im, name, dec)
	if err != nil {
		b.cp.warn(err)
	}
	return r
}

func (b *builder) loadFiles() {
	b.files = map[uint32]*fdinfo.FileEntry{}
	for _, f := range optional(b, imgFiles, decodeFiles) {
		b.files[f.GetId()] = f
	}
	for _, legacy := range []string{imgRegFiles, imgInetSk, imgUnixSk, imgPipes} {
		for _, f := range optional(b, legacy, decodeLegacyFiles) {
			if _, ok := b.files[f.GetId()]; !ok {
				b.files[f.GetId()] = f
			}
		}
	}
	// A regular file's name is cut at PATH_MAX, once, here: every task's
	// mappings, fds and exe share it, and a 16 MiB name repeated over
	// 900 K mappings would otherwise reach every report and core.
	cut := 0
	for _, f := range b.files {
		if r := f.GetReg(); r != nil && len(r.GetName()) > maxPath {
			r.Name = proto.String(r.GetName()[:maxPath])
			cut++
		}
	}
	if cut > 0 {
		b.cp.addWarning(evidence.Warnf(b.im.label(imgFiles), -1, "file names longer than PATH_MAX (%d bytes), which the kernel never gives, cut there: %d", maxPath, cut))
	}
	b.remaps = map[uint32]remap.RemapType{}
	for _, r := range optional(b, imgRemapFpath, decodeRemaps) {
		b.remaps[r.GetOrigId()] = r.GetRemapType()
	}
	b.ttys = map[uint32]*tty.TtyInfoEntry{}
	for _, t := range optional(b, imgTtyInfo, decodeTtyInfo) {
		b.ttys[t.GetId()] = t
	}
	b.memfds = map[uint32]*memfd.MemfdInodeEntry{}
	cut = 0
	for _, m := range optional(b, imgMemfdInode, decodeMemfdInodes) {
		if len(m.GetName()) > maxMemfdName { // shared by every mapping of it, as regular names are
			m.Name = proto.String(m.GetName()[:maxMemfdName])
			cut++
		}
		b.memfds[uint32(m.GetInodeId())] = m
	}
	if cut > 0 {
		b.cp.addWarning(evidence.Warnf(b.im.label(imgMemfdInode), -1, "memfd names longer than the kernel's %d bytes cut there: %d", maxMemfdName, cut))
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

// loadStats reads CRIU's dump statistics (stats-dump) of dir.
func loadStats(cp *Checkpoint, dir *ImageDir) {
	st, err := decodeImage(dir, imgStatsDump, decodeStats)
	if err != nil {
		cp.warn(err)
		return
	}
	if d := st.GetDump(); d != nil {
		cp.Stats = &DumpStats{
			FreezingTimeUs: d.GetFreezingTime(), FrozenTimeUs: d.GetFrozenTime(),
			MemdumpTimeUs: d.GetMemdumpTime(), MemwriteTimeUs: d.GetMemwriteTime(),
			PagesScanned: d.GetPagesScanned(), PagesWritten: d.GetPagesWritten(), PagesLazy: d.GetPagesLazy(),
		}
	}
}

// addError records a problem with one of a task's images.
func (p *Process) addError(err error) { p.Errors = append(p.Errors, warningOf(err)) }

func (p *Process) errorf(file, format string, args ...any) {
	p.Errors = append(p.Errors, evidence.Warnf(file, -1, format, args...))
}
