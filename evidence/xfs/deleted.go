package xfs

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"syscall"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// Bounds of a Deleted pass.
const (
	maxDeleted     = 1 << 16 // entries reported
	maxDirWalk     = 1 << 20 // directories visited
	maxUnlinkChain = 1 << 16 // inodes on one AGI unlinked list
)

// Deleted implements vfs.Recoverer. It reports, below dir:
//
//   - files whose inode is free now (or was reused by a new file) but
//     whose last block map survives in the log (method journal): XFS
//     clears a freed inode's data fork on disk, while the log keeps the
//     copies of the inode written when its blocks were mapped and when
//     it was unlinked;
//   - freed inodes whose on-disk data fork still holds extent records,
//     as older kernels leave them (method inode; the size is then lost
//     and given in whole blocks);
//   - files unlinked but still open when the system went down or the
//     disk was snapshotted, on an AGI unlinked list with all their blocks
//     (method inode);
//   - names of deleted entries left in the free space of directory data
//     blocks (method dirent), which also name the files above.
//
// Names come from directory blocks and from shortform directories in the
// log; a file whose name cannot be told has Path "" and is only listed
// for dir ".". Complete is true when every byte is mapped and no mapped
// block is in use now (the free space btree says so).
func (f *FS) Deleted(ctx context.Context, dir string) (_ []vfs.Deleted, err error) {
	defer contain(f.name, &err)
	clean, dip, err := f.resolve("deleted", dir)
	if err != nil {
		return nil, err
	}
	if dip.typ() != sIFDIR {
		return nil, pathErr("deleted", clean, syscall.ENOTDIR)
	}
	r := &recovery{f: f, ctx: ctx, dirs: map[uint64]string{}, byIno: map[uint64]*vfs.Deleted{}}
	if err := r.walkDirs(clean, dip); err != nil {
		return nil, pathErr("deleted", clean, err)
	}
	ls, err := f.scanLog(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		r.notef("the log could not be read: %v", err)
		ls = newLogScan()
	}
	r.log = ls
	if err := r.fromLog(); err != nil {
		return nil, err
	}
	if err := r.fromInodes(); err != nil {
		return nil, err
	}
	r.fromDirents()
	var out []vfs.Deleted
	for _, d := range r.list {
		if clean != "." && (d.Path == "" || !strings.HasPrefix(d.Path, clean+"/")) {
			continue
		}
		if d.Path != "" {
			if st, err := f.Lstat(d.Path); err == nil {
				d.Notes = append(d.Notes, fmt.Sprintf("the name belongs to a live file now (inode %d)", st.Ino))
			}
		}
		out = append(out, *d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Inode < out[j].Inode
	})
	return out, nil
}

type recovery struct {
	f      *FS
	ctx    context.Context
	log    *logScan
	dirs   map[uint64]string // directory inode -> path
	gaps   []gapName         // names left in directory free space
	list   []*vfs.Deleted
	byIno  map[uint64]*vfs.Deleted
	global []string
}

// gapName is a deleted entry found in a directory block's free space.
type gapName struct {
	path string
	ino  uint64 // 0 when its high half is lost and the filesystem needs it
	low  uint32
}

func (r *recovery) notef(format string, args ...any) {
	r.global = append(r.global, fmt.Sprintf(format, args...))
}

// walkDirs maps the directories below the start to their paths and
// collects the names left in their free space.
func (r *recovery) walkDirs(start string, sip *inode) error {
	f := r.f
	type item struct {
		path string
		ip   *inode
	}
	queue := []item{{start, sip}}
	r.dirs[sip.ino] = start
	for len(queue) > 0 {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		it := queue[0]
		queue = queue[1:]
		if len(r.dirs) > maxDirWalk {
			return ferr(lc("xfs directory tree"), -1, "more than %d directories", maxDirWalk)
		}
		var subs []dirent
		err := f.dirEach(it.ip, func(name []byte, ino uint64, ft uint8) error {
			if ft == ftDir || ft == ftUnknown {
				subs = append(subs, dirent{name: string(name), ino: ino, ftype: ft})
			}
			return nil
		})
		if err != nil {
			f.warnf("deleted files: directory %s: %v", it.path, err)
			continue
		}
		if it.ip.format != fmtLocal {
			r.dirGaps(it.path, it.ip)
		}
		for _, s := range subs {
			if _, seen := r.dirs[s.ino]; seen {
				continue
			}
			cip, err := f.getInode(s.ino)
			if err != nil || cip.typ() != sIFDIR {
				continue
			}
			p := vfs.Join(it.path, s.name)
			r.dirs[s.ino] = p
			queue = append(queue, item{p, cip})
		}
	}
	return nil
}

// dirGaps looks for entries in the free regions of a directory's data
// blocks. Freeing an entry overwrites its first four bytes (the high half
// of the inode number) with the free tag and length, and its last two
// with a tag; the name and the low half of the inode number survive. An
// old entry is taken only when its own tag still names its offset (or the
// region's, after a merge).
func (r *recovery) dirGaps(path string, ip *inode) {
	f := r.f
	fk, err := f.dataFork(ip)
	if err != nil {
		return
	}
	live := map[string]uint64{}
	f.dirEach(ip, func(name []byte, ino uint64, _ uint8) error {
		live[string(name)] = ino
		return nil
	})
	full := f.maxInoBits() <= 32
	f.dataBlocksEach(ip, fk, func(b []byte, pos int64, end int) error {
		for p := dir3DataHdr; p+8 <= end; {
			if be.Uint16(b[p:]) != dirDataFreeTag {
				if p+16 > end {
					return nil
				}
				nl := int(b[p+8])
				if nl == 0 {
					return nil
				}
				p += f.dataEntSize(nl)
				continue
			}
			l := int(be.Uint16(b[p+2:]))
			if l < 8 || l%8 != 0 || p+l > end {
				return nil
			}
			for q := p; q+16 <= p+l; {
				nl := int(b[q+8])
				sz := f.dataEntSize(nl)
				if nl == 0 || q+sz > p+l {
					q += 8
					continue
				}
				name := b[q+9 : q+9+nl]
				tag := int(be.Uint16(b[q+sz-2:]))
				ft := uint8(0)
				if f.ftype {
					ft = b[q+9+nl]
				}
				if !validName(name) || (tag != q && tag != p) || ft > 8 {
					q += 8
					continue
				}
				low := be.Uint32(b[q+4:])
				var ino uint64
				switch {
				case full:
					ino = uint64(low)
				case q != p:
					ino = be.Uint64(b[q:])
				}
				if old, ok := live[string(name)]; (!ok || old != ino) && len(r.gaps) < maxDeleted {
					r.gaps = append(r.gaps, gapName{path: vfs.Join(path, string(name)), ino: ino, low: low})
				}
				q += sz
			}
			p += l
		}
		return nil
	})
}

// pathOf names a deleted inode: from the log's shortform directories
// (the latest name logged while the incarnation lived, between the LSNs
// of its first and last copies; 0, 0: any), or from a directory block's
// free space.
func (r *recovery) pathOf(ino, from, to uint64) string {
	names := r.log.names[ino]
	for i := len(names) - 1; i >= 0; i-- {
		n := names[i]
		if to != 0 && (n.lsn > to || n.lsn < from) {
			continue
		}
		if d, ok := r.dirs[n.dir]; ok {
			return vfs.Join(d, n.name)
		}
	}
	var found []string
	for _, g := range r.gaps {
		if g.ino == ino || g.ino == 0 && uint64(g.low) == ino&0xffffffff {
			found = append(found, g.path)
		}
	}
	if len(found) == 1 {
		return found[0]
	}
	return ""
}

// state tells whether inode ino is in use now, and its generation.
func (r *recovery) state(ino uint64) (inUse bool, gen uint32, freed *inode) {
	f := r.f
	use, err := f.inodeInUse(ino)
	if err != nil {
		return true, 0, nil // unknown: take it as used
	}
	ip, err := f.readInode(ino)
	if err != nil {
		return use, 0, nil
	}
	if !use {
		return false, ip.gen, ip
	}
	return true, ip.gen, nil
}

// fromLog reports regular files the log still maps whose inode is free or
// was reused.
func (r *recovery) fromLog() error {
	f := r.f
	keys := make([][2]uint64, 0, len(r.log.copies))
	for k, c := range r.log.copies {
		if c.core != nil && c.fork != nil {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return r.log.copies[keys[i]].coreLSN < r.log.copies[keys[j]].coreLSN
	})
	for _, k := range keys {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		c := r.log.copies[k]
		inUse, gen, freed := r.state(c.ino64)
		var notes []string
		if inUse {
			if gen == c.core.gen {
				continue // the same file, still there
			}
			notes = append(notes, fmt.Sprintf("inode %d now belongs to a newer file (generation %d, this one %d)", c.ino64, gen, c.core.gen))
		}
		fk, err := f.forkFromLog(c)
		if err != nil {
			notes = append(notes, fmt.Sprintf("logged block map unusable: %v", err))
			fk = nil
		}
		d := r.entry(c.core, c.firstLSN, c.lastLSN, vfs.MethodJournal, fk, notes)
		switch {
		case !c.unlinked.IsZero():
			d.DeletedAt = c.unlinked
		case freed != nil && freed.mode == 0:
			d.DeletedAt = freed.ctime
		}
		r.add(d)
	}
	return nil
}

// entry builds a report for inode core ip with block map fk.
func (r *recovery) entry(ip *inode, from, to uint64, method string, fk *fork, notes []string) *vfs.Deleted {
	d := &vfs.Deleted{
		Path:   r.pathOf(ip.ino, from, to),
		Inode:  ip.ino,
		Size:   ip.size,
		Mode:   vfs.FromInodeMode(ip.mode),
		UID:    ip.uid,
		GID:    ip.gid,
		Atime:  ip.atime,
		Mtime:  ip.mtime,
		Ctime:  ip.ctime,
		Btime:  ip.crtime,
		Method: method,
		Notes:  notes,
	}
	if fk != nil {
		r.mapped(d, fk, true)
	}
	d.Complete = d.Complete && d.Recoverable == d.Size
	return d
}

// mapped fills Recoverable, Complete and Open from a block map: the bytes
// of [0, Size) its extents cover, and whether all their blocks are free
// space now (when mustBeFree).
func (r *recovery) mapped(d *vfs.Deleted, fk *fork, mustBeFree bool) {
	f := r.f
	sizeBlks := (uint64(d.Size) + uint64(f.blockSize) - 1) >> f.blockLog
	var have int64
	reused := 0
	err := fk.each(func(e extent) error {
		if e.off >= sizeBlks {
			return errStop
		}
		n := min(e.count, sizeBlks-e.off)
		have += min(f.blkBytes(e.off+n), d.Size) - f.blkBytes(e.off)
		if mustBeFree && !e.unwritten {
			if free, err := f.blocksFree(e.fsb, n); err != nil || !free {
				reused++
			}
		}
		return nil
	})
	if err != nil && err != errStop {
		d.Notes = append(d.Notes, fmt.Sprintf("block map: %v", err))
		return
	}
	d.Recoverable = have
	d.Complete = reused == 0
	if reused > 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("%d extents are no longer (all) free space: their blocks may hold other data now", reused))
	}
	if have > 0 {
		size := d.Size
		d.Open = func() (io.ReaderAt, error) {
			return &file{fk: fk, size: size, name: fmt.Sprintf("deleted inode %d", fk.ip.ino)}, nil
		}
	}
}

func (r *recovery) add(d *vfs.Deleted) {
	if len(r.list) >= maxDeleted {
		return
	}
	if d.Path == "" && len(r.global) > 0 {
		d.Notes = append(d.Notes, r.global...)
	}
	r.list = append(r.list, d)
	if _, ok := r.byIno[d.Inode]; !ok {
		r.byIno[d.Inode] = d
	}
}

// fromInodes scans the free slots of the allocated inode chunks for freed
// inodes whose data fork still maps blocks, and the AGI unlinked lists for
// files unlinked while open.
func (r *recovery) fromInodes() error {
	f := r.f
	for agno := uint64(0); agno < f.agCount; agno++ {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		root, levels, err := f.inobtRoot(agno)
		if err != nil {
			r.notef("AG %d: %v", agno, err)
			continue
		}
		err = f.sbtreeEach(inobtTree, agno, root, levels, func(rec []byte) error {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			ir := f.decodeInobt(rec)
			for i := 0; i < inodesPerRec; i++ {
				if !ir.exists(i) || ir.free&(1<<i) == 0 {
					continue
				}
				ino := agno<<(f.agBlkLog+f.inoPBLog) | uint64(ir.start+uint32(i))
				if _, ok := r.byIno[ino]; ok {
					continue
				}
				ip, err := f.readInode(ino)
				if err != nil || ip.mode != 0 || ip.format != fmtExtents {
					continue
				}
				r.freedInode(ip)
			}
			return nil
		})
		if err != nil {
			if r.ctx.Err() != nil {
				return err
			}
			r.notef("AG %d inode btree: %v", agno, err)
		}
		r.unlinkedLists(agno)
	}
	return nil
}

// freedInode reports a free inode whose data fork still holds plausible
// extent records.
func (r *recovery) freedInode(ip *inode) {
	f := r.f
	fk := &fork{f: f, ip: ip, name: "data fork", base: ip.pos + dinodeV3Core, format: fmtExtents}
	prev := uint64(0)
	for i := 0; i+16 <= len(ip.dfork); i += 16 {
		rec := ip.dfork[i : i+16]
		if be.Uint64(rec) == 0 && be.Uint64(rec[8:]) == 0 {
			break
		}
		e := decodeExtent(rec)
		if fk.checkExtent(e, -1, prev, maxFileOff) != nil {
			break
		}
		fk.ext = append(fk.ext, e)
		prev = e.end()
	}
	if len(fk.ext) == 0 {
		return
	}
	core := *ip
	last := fk.ext[len(fk.ext)-1]
	core.size = f.blkBytes(last.end())
	d := r.entry(&core, 0, 0, vfs.MethodInode, fk, []string{"freed inode: the size is lost, content is given in whole blocks"})
	d.Mode = 0
	d.DeletedAt = ip.ctime
	if l, ok := r.log.latest[ip.ino]; ok {
		d.Mode, d.UID, d.GID = vfs.FromInodeMode(l.mode), l.uid, l.gid
	}
	r.add(d)
}

// unlinkedLists reports the inodes on the AGI unlinked lists of agno:
// unlinked while open, their blocks still theirs.
func (r *recovery) unlinkedLists(agno uint64) {
	f := r.f
	agi, _, err := f.agHeader(agno, 2, agiMagic, agiCRC)
	if err != nil {
		return
	}
	seen := map[uint32]bool{}
	for b := 0; b < agiBuckets; b++ {
		agino := be.Uint32(agi[agiUnlinked+4*b:])
		for n := 0; agino != 0xffffffff && n < maxUnlinkChain && !seen[agino]; n++ {
			seen[agino] = true
			ino := agno<<(f.agBlkLog+f.inoPBLog) | uint64(agino)
			ip, err := f.readInode(ino)
			if err != nil {
				break
			}
			if ip.mode != 0 && ip.nlink == 0 && ip.typ() == sIFREG {
				if _, dup := r.byIno[ino]; !dup {
					var fk *fork
					var notes []string
					if k, err := f.dataFork(ip); err == nil {
						fk = k
					} else {
						notes = append(notes, fmt.Sprintf("block map: %v", err))
					}
					d := r.entry(ip, 0, 0, vfs.MethodInode, nil, append(notes, "unlinked while open (on the AGI unlinked list): the blocks are still the inode's"))
					if fk != nil {
						r.mapped(d, fk, false)
						d.Complete = d.Complete && d.Recoverable == d.Size
					}
					d.DeletedAt = ip.ctime
					r.add(d)
				}
			}
			agino = ip.nextUnlinked
		}
	}
}

// fromDirents reports the names found in directory free space that no
// other report carries, when their inode is free now.
func (r *recovery) fromDirents() {
	named := map[string]bool{}
	for _, d := range r.list {
		if d.Path != "" {
			named[d.Path] = true
		}
	}
	for _, g := range r.gaps {
		if named[g.path] {
			continue
		}
		named[g.path] = true
		d := &vfs.Deleted{Path: g.path, Inode: g.ino, Method: vfs.MethodDirent, Complete: false}
		if g.ino != 0 {
			if inUse, _, freed := r.state(g.ino); inUse {
				continue // renamed, or the slot was reused: not a deleted file
			} else if freed != nil && freed.mode == 0 {
				d.DeletedAt = freed.ctime
				d.Atime, d.Mtime, d.Ctime, d.Btime = freed.atime, freed.mtime, freed.ctime, freed.crtime
			}
			if l, ok := r.log.latest[g.ino]; ok {
				d.Mode, d.UID, d.GID, d.Size = vfs.FromInodeMode(l.mode), l.uid, l.gid, l.size
				d.Atime, d.Mtime, d.Btime = l.atime, l.mtime, l.crtime
			}
			d.Complete = d.Size == 0
			if d.Size > 0 {
				d.Notes = append(d.Notes, "only the name survives: no block map of this inode was found")
			}
		} else {
			d.Notes = append(d.Notes, fmt.Sprintf("only the low half of the inode number survives (%d)", g.low))
		}
		r.add(d)
	}
}
