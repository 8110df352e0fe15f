package ext4

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"syscall"
	"time"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// Bounds of one Deleted call.
const (
	maxRecoverNames = 1 << 20 // names of deleted entries kept
	maxRecoverDirs  = 1 << 22 // live directories walked
	maxDirRounds    = 64      // nesting of deleted directories followed
)

// Deleted implements vfs.Recoverer. It lists what was deleted below dir
// that the filesystem still holds, from three sources:
//
//   - directory-entry gaps: a live directory block's entries whose rec_len
//     covers slack still holding an older entry (its name and inode number;
//     kernels before 5.19 and e2fsprogs leave them, newer kernels wipe them);
//   - the journal: older copies of directory blocks (names) and of inode
//     table, extent and indirect blocks (the inode as it was, with its
//     block map) — the way back to files deleted by a current kernel, which
//     clears the inode's block map;
//   - inode tables (for the whole filesystem only, dir "."): free inodes
//     whose block map still maps blocks.
//
// An inode that is in use today is never reported, whatever old name
// points at it. Names are reported only below dir; inodes known by no name
// only when dir is ".". Records are sorted by path, unnamed ones last.
func (f *FS) Deleted(ctx context.Context, dir string) ([]vfs.Deleted, error) {
	root, clean, err := f.resolve("deleted", dir)
	if err != nil {
		return nil, err
	}
	if !root.isDir() {
		return nil, &fs.PathError{Op: "deleted", Path: clean, Err: syscall.ENOTDIR}
	}
	r := &recovery{
		f: f, ctx: ctx, whole: clean == ".",
		livePath: map[uint32]string{}, names: map[uint32][]nameRef{}, cands: map[uint32]*candidate{},
		live: map[uint32]bool{}, icopies: map[uint32][]inodeCopy{}, copies: newLRU[uint32, []byte](256),
	}
	if f.sb.journalInum != 0 && f.sb.hasCompat(compatHasJournal) {
		js, err := f.scanJournal()
		if err != nil {
			r.notes = append(r.notes, fmt.Sprintf("journal not read: %v", err))
		} else {
			r.js = js
		}
	}
	if err := r.walkLive(root, clean); err != nil {
		return nil, err
	}
	if r.whole {
		if err := r.scanJournalInodes(); err != nil {
			return nil, err
		}
		if err := r.scanInodeTables(); err != nil {
			return nil, err
		}
	}
	for ino := range r.names {
		r.candidate(ino)
	}
	if err := r.expandDeletedDirs(); err != nil {
		return nil, err
	}
	return r.records()
}

// nameRef is one name a deleted inode was found under.
type nameRef struct {
	parent uint32
	name   string
	slack  bool   // from the slack of a directory block as it is on disk now
	seq    uint32 // the journal transaction of the copy it came from (slack false)
	cur    bool   // from a block as it is on disk now
}

// candidate is a deleted inode and the version of it whose block map is
// used to recover its content.
type candidate struct {
	ino      uint32
	cur      *inode      // the inode on disk now (nil when unreadable)
	ver      *inode      // the version used: cur, or a journal copy
	rd       blockReader // block reader for ver's map
	seq      uint32      // journal transaction of ver, when a copy
	fromJ    bool
	reused   bool   // the inode number is in use today by another file
	endSeq   uint32 // reused: the first transaction showing today's file
	hasEnd   bool
	deleted  time.Time // reused: the dtime a journal copy recorded
	notes    []string
	dirsDone bool
}

type recovery struct {
	f        *FS
	ctx      context.Context
	js       *journalScan
	whole    bool
	livePath map[uint32]string // live directories below dir
	names    map[uint32][]nameRef
	nNames   int
	cands    map[uint32]*candidate
	live     map[uint32]bool // inUse memo
	notes    []string
	itables  []itableRange
	icopies  map[uint32][]inodeCopy
	copies   *lru[uint32, []byte] // journal copies read, by log block
}

// inodeCopy is one journal copy of an inode.
type inodeCopy struct {
	v   *inode
	seq uint32
}

// inodeCopies returns the journal's copies of inode ino, newest first.
func (r *recovery) inodeCopies(ino uint32) []inodeCopy {
	if r.js == nil {
		return nil
	}
	if cs, ok := r.icopies[ino]; ok {
		return cs
	}
	f := r.f
	var out []inodeCopy
	if gd, err := f.group(f.sb.groupOf(ino)); err == nil {
		rel := int64(f.sb.indexOf(ino)) * int64(f.sb.inodeSize)
		blk := gd.inodeTable + uint64(rel/f.bs)
		o := rel % f.bs
		cs := r.js.copies[blk]
		for i := len(cs) - 1; i >= 0; i-- {
			cb, err := r.readCopy(cs[i])
			if err != nil {
				continue
			}
			v, err := parseInode(f.sb, ino, cb[o:o+int64(f.sb.inodeSize)], int64(cs[i].phys)*f.bs+o)
			if err != nil || v.mode == 0 {
				continue
			}
			out = append(out, inodeCopy{v, cs[i].seq})
		}
	}
	r.icopies[ino] = out
	return out
}

// readCopy reads a journal copy through a small cache (a copy of an inode
// table block is read for each of its inodes).
func (r *recovery) readCopy(c jcopy) ([]byte, error) {
	if b, ok := r.copies.get(c.pos); ok {
		return b, nil
	}
	b, err := r.js.readCopy(c)
	if err != nil {
		return nil, err
	}
	r.copies.put(c.pos, b, 1)
	return b, nil
}

// isLive reports whether inode ino is in use today: allocated in its
// group's bitmap, with a mode and links.
func (r *recovery) isLive(ino uint32) bool {
	if v, ok := r.live[ino]; ok {
		return v
	}
	v := false
	if in, err := r.f.inode(ino); err == nil && in.mode != 0 && in.links > 0 {
		v, _ = r.f.inodeInUse(ino)
	}
	r.live[ino] = v
	return v
}

// inodeInUse reads inode ino's bit in its group's inode bitmap.
func (f *FS) inodeInUse(ino uint32) (bool, error) {
	g := f.sb.groupOf(ino)
	gd, err := f.group(g)
	if err != nil {
		return false, err
	}
	if gd.flags&bgInodeUninit != 0 && (f.sb.metadataCsum() || f.sb.hasRO(roCompatGdtCsum)) {
		return false, nil
	}
	b, err := f.readBlock(gd.inodeBitmap, fmt.Sprintf("inode bitmap of group %d", g), 0)
	if err != nil {
		return false, err
	}
	i := f.sb.indexOf(ino)
	return b[i/8]&(1<<(i%8)) != 0, nil
}

// blockInUse reads block b's bit in its group's block bitmap (a cluster's
// with bigalloc).
func (f *FS) blockInUse(b uint64) (bool, error) {
	if b < uint64(f.sb.firstDataBlock) || b >= f.sb.blocksCount {
		return false, nil
	}
	g := uint32((b - uint64(f.sb.firstDataBlock)) / uint64(f.sb.blocksPerGroup))
	gd, err := f.group(g)
	if err != nil {
		return false, err
	}
	if gd.flags&bgBlockUninit != 0 && (f.sb.metadataCsum() || f.sb.hasRO(roCompatGdtCsum)) {
		return false, nil
	}
	bm, err := f.readBlock(gd.blockBitmap, fmt.Sprintf("block bitmap of group %d", g), 0)
	if err != nil {
		return false, err
	}
	i := (b - f.sb.groupFirstBlock(g)) / uint64(f.sb.clusterSize/f.sb.blockSize)
	if i/8 >= uint64(len(bm)) {
		return false, nil
	}
	return bm[i/8]&(1<<(i%8)) != 0, nil
}

// addName records a name found for inode ino in directory parent, unless
// the inode is in use today (the name is then a stale copy of a live or
// renamed entry, or the number was reused) or reserved.
func (r *recovery) addName(ino, parent uint32, name []byte, ref nameRef) {
	if ino < r.f.sb.firstIno || ino > r.f.sb.inodesCount || !validName(name) || r.nNames >= maxRecoverNames {
		return
	}
	if r.isLive(ino) {
		// A name for an inode in use today is a deleted file's only when it
		// comes from the journal, from before today's file took the number,
		// and is not one of today's file's own names.
		if ref.cur {
			return
		}
		c := r.candidate(ino)
		if c.ver == nil || !c.reused || (c.hasEnd && int32(ref.seq-c.endSeq) >= 0) || r.liveEntry(parent, name, ino) {
			return
		}
	}
	for _, n := range r.names[ino] {
		if n.parent == parent && n.name == string(name) {
			return
		}
	}
	ref.parent, ref.name = parent, string(name)
	r.names[ino] = append(r.names[ino], ref)
	r.nNames++
}

// liveEntry reports whether live directory parent names ino by name today.
func (r *recovery) liveEntry(parent uint32, name []byte, ino uint32) bool {
	in, err := r.f.inode(parent)
	if err != nil || !in.isDir() {
		return false
	}
	d, err := r.f.dir(in)
	if err != nil {
		return false
	}
	e, ok := d.lookup(string(name), false)
	return ok && e.ino == ino
}

func validName(name []byte) bool {
	if len(name) == 0 || string(name) == "." || string(name) == ".." {
		return false
	}
	for _, c := range name {
		if c == 0 || c == '/' {
			return false
		}
	}
	return true
}

// scanBlock reads the names of a directory block of directory parent: the
// live chain unless onlySlack, and whatever older entries the slack of
// each record still holds.
func (r *recovery) scanBlock(b []byte, parent uint32, onlySlack bool, ref nameRef) {
	r.f.walkDirBlock(b, func(off int, ino uint32, rlen int, name []byte, ftype uint8) {
		if !onlySlack && ino != 0 {
			r.addName(ino, parent, name, ref)
		}
		used := (direntHeader + len(name) + 3) &^ 3
		if used < rlen {
			sref := ref
			sref.slack = ref.cur
			r.scanSlack(b[off+used:off+rlen], parent, sref)
		}
	})
}

// scanSlack looks for whole entries in the unused tail of a record: an
// inode number in range, a rec_len and name length that fit, a name with
// no '/' or NUL and a known file type.
func (r *recovery) scanSlack(s []byte, parent uint32, ref nameRef) {
	for p := 0; p+12 <= len(s); {
		ino := le.Uint32(s[p:])
		rl := recLen(le.Uint16(s[p+4:]), int(r.f.bs))
		nl := int(s[p+6])
		ft := s[p+7]
		ok := ino != 0 && ino <= r.f.sb.inodesCount && nl > 0 && rl >= 12 && rl%4 == 0 &&
			direntHeader+nl <= rl && p+direntHeader+nl <= len(s) && ft <= ftSymlink &&
			(ft != ftUnknown || !r.f.sb.has(incompatFiletype))
		if ok && validName(s[p+direntHeader:p+direntHeader+nl]) {
			r.addName(ino, parent, s[p+direntHeader:p+direntHeader+nl], ref)
			p += (direntHeader + nl + 3) &^ 3
			continue
		}
		p += 4
	}
}

// walkLive visits the live directories below root: the slack of their
// blocks, and the journal's older copies of those blocks.
func (r *recovery) walkLive(root *inode, path string) error {
	type item struct {
		ino  uint32
		path string
	}
	queue := []item{{root.ino, path}}
	r.livePath[root.ino] = path
	for len(queue) > 0 {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		it := queue[0]
		queue = queue[1:]
		in, err := r.f.inode(it.ino)
		if err != nil || !in.isDir() || in.has(flagEncrypt) {
			continue
		}
		r.dirNames(in, r.f.readBlock, true)
		d, err := r.f.dir(in)
		if err != nil {
			continue
		}
		for _, e := range d.ents {
			if e.ftype != ftDir && e.ftype != ftUnknown {
				continue
			}
			if _, seen := r.livePath[e.ino]; seen || len(r.livePath) >= maxRecoverDirs {
				continue
			}
			c, err := r.f.liveInode(e.ino)
			if err != nil || !c.isDir() {
				continue
			}
			p := vfs.Join(it.path, e.name)
			r.livePath[e.ino] = p
			queue = append(queue, item{e.ino, p})
		}
	}
	return nil
}

// dirNames reads the names a directory's blocks hold: for a live
// directory only the slack of its blocks as they are now (the live chain
// is live), for a deleted one every entry; and every entry of the
// journal's copies of those blocks.
func (r *recovery) dirNames(in *inode, rd blockReader, live bool) {
	if in.has(flagInlineData) {
		r.inlineNames(in, live, nameRef{cur: true})
		// An inline directory's older states are in the journal's copies
		// of its inode.
		for _, c := range r.inodeCopies(in.ino) {
			if c.v.has(flagInlineData) && c.v.isDir() && c.v.gen == in.gen {
				r.inlineNames(c.v, false, nameRef{seq: c.seq})
			}
		}
		return
	}
	r.f.dirBlocks(in, rd, func(lblk, phys uint64, b []byte) error {
		if dxCountOffset(in, lblk, b) == 0 {
			r.scanBlock(b, in.ino, live, nameRef{cur: true})
		}
		if r.js != nil {
			for _, c := range r.js.copies[phys] {
				cb, err := r.js.readCopy(c)
				if err != nil || dxCountOffset(in, lblk, cb) != 0 {
					continue
				}
				r.scanBlock(cb, in.ino, false, nameRef{seq: c.seq})
			}
		}
		return r.ctx.Err()
	})
}

// inlineNames scans the entries of an inline directory (a version of it).
func (r *recovery) inlineNames(in *inode, onlySlack bool, ref nameRef) {
	data, err := r.f.inlineDirData(in)
	if err != nil || len(data) < iBlockSize {
		return
	}
	r.scanBlock(data[4:iBlockSize], in.ino, onlySlack, ref)
	if len(data) > iBlockSize {
		r.scanBlock(data[iBlockSize:], in.ino, onlySlack, ref)
	}
}

// itableRange is the inode table of one group.
type itableRange struct {
	start, end uint64 // blocks
	group      uint32
}

// itableOf returns the group whose inode table holds block b.
func (r *recovery) itableOf(b uint64) (uint32, bool) {
	if r.itables == nil {
		f := r.f
		per := (uint64(f.sb.inodesPerGroup)*uint64(f.sb.inodeSize) + uint64(f.bs) - 1) / uint64(f.bs)
		r.itables = []itableRange{}
		for g := uint32(0); g < f.scanGroups(); g++ {
			gd, err := f.group(g)
			if err != nil {
				continue
			}
			r.itables = append(r.itables, itableRange{gd.inodeTable, gd.inodeTable + per, g})
		}
		sort.Slice(r.itables, func(i, j int) bool { return r.itables[i].start < r.itables[j].start })
	}
	i := sort.Search(len(r.itables), func(i int) bool { return r.itables[i].end > b })
	if i < len(r.itables) && r.itables[i].start <= b {
		return r.itables[i].group, true
	}
	return 0, false
}

// scanJournalInodes looks at every inode in the journal's copies of inode
// table blocks for a file that is not in use today.
func (r *recovery) scanJournalInodes() error {
	if r.js == nil {
		return nil
	}
	f := r.f
	for b := range r.js.copies {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		g, ok := r.itableOf(b)
		if !ok {
			continue
		}
		gd, err := f.group(g)
		if err != nil {
			continue
		}
		per := uint32(f.bs) / f.sb.inodeSize
		first := g*f.sb.inodesPerGroup + uint32(b-gd.inodeTable)*per + 1
		for i := uint32(0); i < per; i++ {
			ino := first + i
			if ino < f.sb.firstIno || ino > f.sb.inodesCount {
				continue
			}
			r.candidate(ino)
		}
	}
	return nil
}

// scanInodeTables looks at every inode the groups have ever used for one
// free (or unlinked) whose block map still maps blocks.
func (r *recovery) scanInodeTables() error {
	f := r.f
	for g := uint32(0); g < f.scanGroups(); g++ {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		gd, err := f.group(g)
		if err != nil {
			continue
		}
		csums := f.sb.metadataCsum() || f.sb.hasRO(roCompatGdtCsum)
		if gd.flags&bgInodeUninit != 0 && csums {
			continue
		}
		n := f.sb.inodesPerGroup
		if csums {
			n -= gd.itableUnused
		}
		for i := uint32(0); i < n; i++ {
			ino := g*f.sb.inodesPerGroup + i + 1
			if ino < f.sb.firstIno {
				continue
			}
			raw, _, err := f.inodeRaw(ino)
			if err != nil {
				break
			}
			if le.Uint16(raw[inMode:]) == 0 {
				continue
			}
			if r.isLive(ino) {
				continue
			}
			in, err := f.inode(ino)
			if err != nil || !r.hasMap(in) {
				continue
			}
			r.candidate(ino)
		}
	}
	return nil
}

// hasMap reports whether an inode version still maps content: inline
// data, a fast symlink, or an extent tree or block map with an entry.
func (r *recovery) hasMap(in *inode) bool {
	if in.mode == 0 || in.size == 0 || in.has(flagEAInode) {
		return false
	}
	switch {
	case in.has(flagInlineData):
		return true
	case in.isSymlink() && r.f.isFastSymlink(in):
		return true
	case in.typ() != sIFREG && in.typ() != sIFDIR && in.typ() != sIFLNK:
		return false
	case in.has(flagExtents):
		h, ok := parseExtentHeader(in.block[:])
		return ok && h.entries > 0
	}
	for i := 0; i < 15; i++ {
		if le.Uint32(in.block[4*i:]) != 0 {
			return true
		}
	}
	return false
}

// candidate picks the version of a deleted inode to recover from: the
// inode on disk when its block map is intact, else the newest journal
// copy of it that still has one, else the inode on disk as it is (its
// name is then all there is).
func (r *recovery) candidate(ino uint32) *candidate {
	if c, ok := r.cands[ino]; ok {
		return c
	}
	f := r.f
	c := &candidate{ino: ino, rd: f.readBlock}
	r.cands[ino] = c
	cur, err := f.inode(ino)
	if err != nil {
		c.notes = append(c.notes, fmt.Sprintf("inode on disk unreadable: %v", err))
	} else {
		c.cur = cur
	}
	live := r.isLive(ino)
	if !live && cur != nil && r.hasMap(cur) {
		c.ver = cur
		return c
	}
	copies := r.inodeCopies(ino)
	if live && cur != nil {
		// The oldest copy showing today's file bounds what is older.
		for _, jc := range copies {
			if jc.v.gen == cur.gen {
				c.endSeq, c.hasEnd = jc.seq, true
			}
		}
	}
	for _, jc := range copies {
		v := jc.v
		if !r.hasMap(v) || (live && cur != nil && v.gen == cur.gen) {
			continue
		}
		c.ver, c.rd, c.seq, c.fromJ = v, r.js.reader(jc.seq), jc.seq, true
		if t, ok := r.js.commits[jc.seq]; ok {
			c.notes = append(c.notes, fmt.Sprintf("inode as of journal transaction %d (committed %s)", jc.seq, t.Format(time.RFC3339)))
		} else {
			c.notes = append(c.notes, fmt.Sprintf("inode as of journal transaction %d", jc.seq))
		}
		if live {
			c.reused = true
			c.notes = append(c.notes, "the inode number is in use today by another file")
			for _, d := range copies {
				if d.v.gen == v.gen && d.v.dtime != 0 && d.v.links == 0 {
					c.deleted = time.Unix(int64(d.v.dtime), 0).UTC()
					break
				}
			}
		}
		return c
	}
	if !live && cur != nil && cur.mode != 0 {
		c.ver = cur
	}
	return c
}

// expandDeletedDirs reads the blocks of deleted directories (through the
// version of their inode recovered) for the names of what they held, until
// no new deleted directory turns up.
func (r *recovery) expandDeletedDirs() error {
	for round := 0; round < maxDirRounds; round++ {
		more := false
		for ino := range r.names {
			r.candidate(ino)
		}
		for _, c := range r.cands {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			if c.dirsDone || c.ver == nil || !c.ver.isDir() || !r.hasMap(c.ver) {
				continue
			}
			c.dirsDone = true
			before := r.nNames
			r.dirNames(c.ver, c.rd, false)
			if r.nNames > before {
				more = true
			}
		}
		if !more {
			return nil
		}
	}
	return nil
}

// pathOf returns the path of a deleted inode through the names found for
// it: a live parent below dir, or a deleted parent with a path of its own.
func (r *recovery) pathOf(ino uint32, depth int) (string, *nameRef) {
	if depth > maxDirRounds {
		return "", nil
	}
	refs := r.names[ino]
	// Names in today's slack first, then from the newest journal copy.
	sort.SliceStable(refs, func(i, j int) bool {
		if refs[i].cur != refs[j].cur {
			return refs[i].cur
		}
		return int32(refs[i].seq-refs[j].seq) > 0
	})
	for i := range refs {
		n := &refs[i]
		if p, ok := r.livePath[n.parent]; ok {
			return vfs.Join(p, n.name), n
		}
		if n.parent == ino {
			continue
		}
		if p, _ := r.pathOf(n.parent, depth+1); p != "" {
			return vfs.Join(p, n.name), n
		}
	}
	return "", nil
}

// records turns the candidates into vfs.Deleted values.
func (r *recovery) records() ([]vfs.Deleted, error) {
	f := r.f
	var out []vfs.Deleted
	var spans []blockSpan
	for ino, c := range r.cands {
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
		if c.ver == nil {
			continue
		}
		p, ref := r.pathOf(ino, 0)
		if p == "" && !r.whole {
			continue
		}
		if p == "" && !r.hasMap(c.ver) {
			continue
		}
		v := c.ver
		d := vfs.Deleted{
			Path: p, Inode: uint64(ino), Size: int64(v.size), Mode: fileMode(v.mode), UID: v.uid, GID: v.gid,
			Atime: v.atime, Mtime: v.mtime, Ctime: v.ctime,
		}
		if v.hasCrtime {
			d.Btime = v.crtime
		}
		switch {
		case c.reused:
			d.DeletedAt = c.deleted
		case c.cur != nil && c.cur.dtime != 0:
			if inUse, _ := f.inodeInUse(ino); !inUse {
				d.DeletedAt = time.Unix(int64(c.cur.dtime), 0).UTC()
			}
		}
		switch {
		case c.fromJ:
			d.Method = vfs.MethodJournal
		case ref != nil && ref.slack:
			d.Method = vfs.MethodDirent
		default:
			d.Method = vfs.MethodInode
		}
		d.Notes = append(d.Notes, c.notes...)
		if ref != nil && !ref.cur {
			d.Notes = append(d.Notes, fmt.Sprintf("name from the journal's copy of its directory block (transaction %d)", ref.seq))
		}
		if d.Method == vfs.MethodDirent && !r.hasMap(v) {
			d.Notes = append(d.Notes, "the inode's block map is cleared and the journal holds no older copy: only the name survives")
		}
		if v.isReg() || v.isSymlink() {
			rec, complete, notes, sp := r.coverage(c)
			d.Recoverable, d.Complete = rec, complete
			d.Notes = append(d.Notes, notes...)
			for _, s := range sp {
				s.rec = len(out)
				spans = append(spans, s)
			}
			if rec > 0 {
				d.Open = r.opener(c)
			}
		}
		out = append(out, d)
	}
	overlaps(out, spans)
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Path == "") != (out[j].Path == "") {
			return out[i].Path != ""
		}
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Inode < out[j].Inode
	})
	return out, nil
}

// coverage walks a version's block map over its size: the bytes it maps,
// and whether any mapped block is allocated today (to another file).
func (r *recovery) coverage(c *candidate) (int64, bool, []string, []blockSpan) {
	f, v := r.f, c.ver
	size := int64(v.size)
	if size == 0 {
		return 0, true, nil, nil
	}
	if v.has(flagInlineData) {
		if _, err := f.inlineContent(v); err != nil {
			return 0, false, []string{fmt.Sprintf("inline data unreadable: %v", err)}, nil
		}
		return size, true, nil, nil
	}
	if v.isSymlink() && f.isFastSymlink(v) {
		if size >= iBlockSize {
			return iBlockSize - 1, false, []string{fmt.Sprintf("a fast symlink of %d bytes: only %d fit in the inode", size, iBlockSize-1)}, nil
		}
		return size, true, nil, nil
	}
	var spans []blockSpan
	var mapped, inUse int64
	var notes []string
	// The map's own blocks (indirect, extent tree) count as the file's too:
	// a later file may have taken one for its data or its own map.
	meta := map[uint64]bool{}
	rd := func(b uint64, what string, ino uint32) ([]byte, error) {
		if len(meta) < maxSpans {
			meta[b] = true
		}
		return c.rd(b, what, ino)
	}
	nblk := uint64((size + f.bs - 1) / f.bs)
	for lblk := uint64(0); lblk < nblk; {
		if r.ctx.Err() != nil {
			break
		}
		run, err := f.mapBlock(v, lblk, rd)
		if err != nil {
			notes = append(notes, fmt.Sprintf("block map unreadable from logical block %d: %v", lblk, err))
			break
		}
		n := min(run.n, nblk-lblk)
		if run.phys != 0 {
			bytes := int64(n) * f.bs
			if end := int64(lblk+n) * f.bs; end > size {
				bytes -= end - size
			}
			mapped += bytes
			if len(spans) < maxSpans {
				spans = append(spans, blockSpan{start: run.phys, end: run.phys + n})
			}
			for b := run.phys; b < run.phys+n; b++ {
				if u, _ := f.blockInUse(b); u {
					inUse++
				}
			}
		}
		lblk += n
	}
	for b := range meta {
		spans = append(spans, blockSpan{start: b, end: b + 1})
	}
	if mapped < size {
		notes = append(notes, fmt.Sprintf("%d of %d bytes are not mapped (holes or a lost map); they read as zeros", size-mapped, size))
	}
	if inUse > 0 {
		notes = append(notes, fmt.Sprintf("%d mapped blocks are allocated today (reused by another file): their content is not this file's", inUse))
	}
	return mapped, mapped == size && inUse == 0 && len(notes) == 0, notes, spans
}

// blockSpan is a run of physical blocks a recovered version maps.
type blockSpan struct {
	start, end uint64
	rec        int // index of the record
}

// maxSpans bounds the runs of one file checked for overlaps.
const maxSpans = 1 << 16

// overlaps finds blocks that two recovered files both map: the file made
// later wrote over the earlier one's content, whatever the bitmap says
// today (both are free). The earlier one is then not complete.
func overlaps(out []vfs.Deleted, spans []blockSpan) {
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	born := func(i int) time.Time {
		if !out[i].Btime.IsZero() {
			return out[i].Btime
		}
		return out[i].Ctime
	}
	type pair struct{ loser, winner int }
	lost := map[pair]uint64{}
	var active []blockSpan
	for _, s := range spans {
		keep := active[:0]
		for _, a := range active {
			if a.end > s.start {
				keep = append(keep, a)
			}
		}
		active = keep
		for _, a := range active {
			if a.rec == s.rec {
				continue
			}
			n := min(a.end, s.end) - s.start
			p := pair{a.rec, s.rec}
			if born(a.rec).After(born(s.rec)) {
				p = pair{s.rec, a.rec}
			}
			lost[p] += n
		}
		active = append(active, s)
	}
	for p, n := range lost {
		d := &out[p.loser]
		d.Complete = false
		d.Notes = append(d.Notes, fmt.Sprintf("%d blocks are also mapped by deleted inode %d, made later: their content is that file's", n, out[p.winner].Inode))
	}
}

// opener returns the Open function of a record: the content through the
// recovered version's block map.
func (r *recovery) opener(c *candidate) func() (io.ReaderAt, error) {
	f, v, rd := r.f, c.ver, c.rd
	return func() (io.ReaderAt, error) {
		fl := &file{f: f, in: v, name: fmt.Sprintf("<deleted inode %d>", v.ino), size: int64(v.size), rd: rd}
		switch {
		case v.has(flagInlineData):
			data, err := f.inlineContent(v)
			if err != nil {
				return nil, err
			}
			fl.inline = data
		case v.isSymlink() && f.isFastSymlink(v):
			fl.inline = append([]byte(nil), v.block[:min(int(v.size), iBlockSize-1)]...)
			fl.size = int64(len(fl.inline))
		}
		return fl, nil
	}
}
