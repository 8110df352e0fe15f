package ext4

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"syscall"
	"time"

	"github.com/deadnode/deadnode/evidence/internal/lru"
	"github.com/deadnode/deadnode/evidence/vfs"
)

// Bounds of one Deleted call.
const (
	maxCoverageRuns   = 1 << 20 // runs of one recovered file's map walked
	maxCoverageBlocks = 1 << 24 // blocks of one recovered file checked against the bitmap
	maxRecoverNames   = 1 << 20 // names of deleted entries kept
	maxRecoverDirs    = 1 << 22 // live directories walked
	maxDirRounds      = 64      // nesting of deleted directories followed
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
// Inode numbers are reused: a file is one incarnation of a number (its
// generation), and a name found in the journal belongs to the incarnation
// the journal shows at that transaction. Today's files are never reported,
// whatever old name points at them. Names are reported only below dir;
// files known by no name only when dir is ".". Records are sorted by path,
// unnamed ones last.
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
		livePath: map[uint32]string{}, names: map[incarnation][]nameRef{}, cands: map[incarnation]*candidate{},
		live: map[uint32]bool{}, icopies: map[uint32][]inodeCopy{}, copies: lru.New[uint32, []byte](256),
	}
	if f.sb.journalInum != 0 && f.sb.hasCompat(compatHasJournal) {
		js, err := f.scanJournal()
		if err != nil {
			f.warnf("deleted files: journal not read: %v", err)
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
	if err := r.expandDeletedDirs(); err != nil {
		return nil, err
	}
	return r.records()
}

// incarnation is one file that had an inode number: the number and the
// generation the inode was given when allocated.
type incarnation struct {
	ino uint32
	gen uint32
}

// nameRef is one name a deleted file was found under.
type nameRef struct {
	parent incarnation
	name   string
	cur    bool   // from the slack of a live directory's block as it is now
	seq    uint32 // otherwise: the journal transaction of the copy it came from
}

// candidate is a deleted file and the version of its inode whose block
// map is used to recover its content.
type candidate struct {
	key      incarnation
	cur      *inode      // the inode on disk now, when it is still this file's
	ver      *inode      // the version used: cur, or a journal copy
	rd       blockReader // block reader for ver's map
	seq      uint32      // journal transaction of ver, when a copy
	fromJ    bool
	reused   bool      // the inode number has since been given to another file
	deleted  time.Time // dtime, from the inode on disk or a journal copy
	notes    []string
	dirsDone bool
}

type recovery struct {
	f        *FS
	ctx      context.Context
	js       *journalScan
	whole    bool
	livePath map[uint32]string // live directories below dir, by inode
	names    map[incarnation][]nameRef
	nNames   int
	cands    map[incarnation]*candidate
	live     map[uint32]bool // isLive memo
	itables  []itableRange
	icopies  map[uint32][]inodeCopy
	copies   *lru.Cache[uint32, []byte] // journal copies read, by log block
	paths    map[incarnation]foundPath  // pathOf's answers, once sure
	busy     map[incarnation]bool       // pathOf's keys being worked out
	steps    int                        // pathOf calls, against maxPathSteps
}

// foundPath is a path pathOf found (or, with p "", that it found none).
type foundPath struct {
	p   string
	ref *nameRef
}

// maxPathSteps bounds the work of naming deleted files through deleted
// directories in one recovery (the names of a crafted image can make
// many paths between them).
const maxPathSteps = 1 << 20

// inodeCopy is one journal copy of an inode.
type inodeCopy struct {
	v   *inode
	seq uint32
}

// inodeCopies returns the journal's copies of inode ino (those with a
// mode: the inode was in use or had been), newest first.
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
	if b, ok := r.copies.Get(c.pos); ok {
		return b, nil
	}
	b, err := r.js.readCopy(c)
	if err != nil {
		return nil, err
	}
	r.copies.Put(c.pos, b, 1)
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

// genAt returns the generation inode ino had when a name was seen: today's
// for a name in today's slack; for a name in a journal copy, that of the
// newest copy of the inode from the same transaction or before (or the
// oldest after, when the journal kept none before).
func (r *recovery) genAt(ino uint32, ref nameRef) (uint32, bool) {
	cur, err := r.f.inode(ino)
	if !ref.cur {
		cs := r.inodeCopies(ino)
		for _, c := range cs {
			if int32(c.seq-ref.seq) <= 0 {
				return c.v.gen, true
			}
		}
		if len(cs) > 0 {
			return cs[len(cs)-1].v.gen, true
		}
	}
	if err != nil {
		return 0, false
	}
	return cur.gen, true
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

// addName records a name found for inode ino, for the incarnation the
// inode had then, unless that is today's file (the name is then a stale
// copy of a live or renamed entry).
func (r *recovery) addName(ino uint32, name []byte, ref nameRef) {
	if ino < r.f.sb.firstIno || ino > r.f.sb.inodesCount || !validName(name) || r.nNames >= maxRecoverNames {
		return
	}
	gen, ok := r.genAt(ino, ref)
	if !ok {
		return
	}
	if r.isLive(ino) {
		if cur, err := r.f.inode(ino); err == nil && cur.gen == gen {
			return
		}
	}
	key := incarnation{ino, gen}
	for _, n := range r.names[key] {
		if n.parent == ref.parent && n.name == string(name) {
			return
		}
	}
	ref.name = string(name)
	r.names[key] = append(r.names[key], ref)
	r.nNames++
	r.candidate(key)
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

// scanBlock reads the names of a directory block: the live chain unless
// onlySlack, and whatever older entries the slack of each record still
// holds.
func (r *recovery) scanBlock(b []byte, onlySlack bool, ref nameRef) {
	r.f.walkDirBlock(b, func(off int, ino uint32, rlen int, name []byte, ftype uint8) {
		if !onlySlack && ino != 0 {
			r.addName(ino, name, ref)
		}
		used := (direntHeader + len(name) + 3) &^ 3
		if used < rlen {
			r.scanSlack(b[off+used:off+rlen], ref)
		}
	})
}

// scanSlack looks for whole entries in the unused tail of a record: an
// inode number in range, a rec_len and name length that fit, a name with
// no '/' or NUL and a known file type.
func (r *recovery) scanSlack(s []byte, ref nameRef) {
	for p := 0; p+12 <= len(s); {
		ino := le.Uint32(s[p:])
		rl := recLen(le.Uint16(s[p+4:]), int(r.f.bs))
		nl := int(s[p+6])
		ft := s[p+7]
		ok := ino != 0 && ino <= r.f.sb.inodesCount && nl > 0 && rl >= 12 && rl%4 == 0 &&
			direntHeader+nl <= rl && p+direntHeader+nl <= len(s) && ft <= ftSymlink &&
			(ft != ftUnknown || !r.f.sb.has(incompatFiletype))
		if ok && validName(s[p+direntHeader:p+direntHeader+nl]) {
			r.addName(ino, s[p+direntHeader:p+direntHeader+nl], ref)
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
		r.dirNames(in, r.f.readBlock, true, 0)
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

// livePathOf returns the path of a directory incarnation that is live
// today below dir.
func (r *recovery) livePathOf(dir incarnation) (string, bool) {
	p, ok := r.livePath[dir.ino]
	if !ok {
		return "", false
	}
	in, err := r.f.inode(dir.ino)
	return p, err == nil && in.gen == dir.gen
}

// dirNames reads the names a directory's blocks hold: for a live
// directory only the slack of its blocks as they are now (the live chain
// is live), for a deleted one (a recovered version, as of transaction seq)
// every entry; and every entry of the journal's copies of those blocks
// that were this directory's when copied.
func (r *recovery) dirNames(in *inode, rd blockReader, live bool, seq uint32) {
	parent := incarnation{in.ino, in.gen}
	if in.has(flagInlineData) {
		if live {
			r.inlineNames(in, true, nameRef{parent: parent, cur: true})
		} else {
			r.inlineNames(in, false, nameRef{parent: parent, seq: seq})
		}
		// An inline directory's older states are in the journal's copies
		// of its inode.
		for _, c := range r.inodeCopies(in.ino) {
			if c.v.has(flagInlineData) && c.v.isDir() && c.v.gen == in.gen {
				r.inlineNames(c.v, false, nameRef{parent: parent, seq: c.seq})
			}
		}
		return
	}
	r.f.dirBlocks(in, rd, nil, func(lblk, phys uint64, b []byte) error {
		if dxCountOffset(in, lblk, b) == 0 {
			switch {
			case live:
				r.scanBlock(b, true, nameRef{parent: parent, cur: true})
			case r.blockOwned(in, lblk, b):
				r.scanBlock(b, false, nameRef{parent: parent, seq: seq})
			}
		}
		if r.js != nil {
			for _, c := range r.js.copies[phys] {
				cb, err := r.readCopy(c)
				if err != nil || dxCountOffset(in, lblk, cb) != 0 || !r.copyOwned(in, lblk, cb, c.seq) {
					continue
				}
				r.scanBlock(cb, false, nameRef{parent: parent, seq: c.seq})
			}
		}
		return r.ctx.Err()
	})
}

// blockOwned reports whether a block read through a directory's map (a
// journal copy or the block as it is now) is that directory's: with
// metadata_csum its tail checksum, seeded by the directory's inode number
// and generation, must match; without, a first block must begin with the
// directory's own "." entry.
func (r *recovery) blockOwned(dir *inode, lblk uint64, b []byte) bool {
	if r.f.sb.metadataCsum() {
		return isDirTail(b) && crc32c(r.f.inodeSeed(dir), b[:len(b)-direntTailLen]) == le.Uint32(b[len(b)-4:])
	}
	return lblk != 0 || le.Uint32(b) == dir.ino
}

// copyOwned reports whether a journal copy of a block of directory dir
// (a version of it) was that directory's when the transaction was
// written: blocks pass from directory to directory and file to file over
// time. With metadata_csum the checksum decides. Without, the transaction
// must also have logged the directory's inode with the same generation
// (adding or removing an entry always updates the directory's inode).
func (r *recovery) copyOwned(dir *inode, lblk uint64, b []byte, seq uint32) bool {
	if !r.blockOwned(dir, lblk, b) {
		return false
	}
	if r.f.sb.metadataCsum() {
		return true
	}
	for _, c := range r.inodeCopies(dir.ino) {
		if c.seq == seq {
			return c.v.gen == dir.gen
		}
	}
	return false
}

// inlineNames scans the entries of an inline directory (a version of it).
func (r *recovery) inlineNames(in *inode, onlySlack bool, ref nameRef) {
	data, err := r.f.inlineDirData(in)
	if err != nil || len(data) < iBlockSize {
		return
	}
	r.scanBlock(data[4:iBlockSize], onlySlack, ref)
	if len(data) > iBlockSize {
		r.scanBlock(data[iBlockSize:], onlySlack, ref)
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
// table blocks for a file that is not in use today: each generation the
// copies show with a block map, today's file excepted.
func (r *recovery) scanJournalInodes() error {
	if r.js == nil {
		return nil
	}
	f := r.f
	blocks := make([]uint64, 0, len(r.js.copies))
	for b := range r.js.copies {
		blocks = append(blocks, b)
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i] < blocks[j] })
	for _, b := range blocks {
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
			var curGen uint32
			live := r.isLive(ino)
			if cur, err := f.inode(ino); err == nil {
				curGen = cur.gen
			}
			for _, c := range r.inodeCopies(ino) {
				if (live && c.v.gen == curGen) || !r.hasMap(c.v) {
					continue
				}
				r.candidate(incarnation{ino, c.v.gen})
			}
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
			if le.Uint16(raw[inMode:]) == 0 || r.isLive(ino) {
				continue
			}
			in, err := f.inode(ino)
			if err != nil || !r.hasMap(in) {
				continue
			}
			r.candidate(incarnation{ino, in.gen})
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

// candidate picks the version of a deleted file's inode to recover from:
// the inode on disk when it is still this file's and its block map is
// intact, else the newest journal copy of this generation that still has
// one, else the inode on disk as it is (its name is then all there is).
// Today's live file is no candidate (its version stays nil).
func (r *recovery) candidate(key incarnation) *candidate {
	if c, ok := r.cands[key]; ok {
		return c
	}
	f := r.f
	c := &candidate{key: key, rd: f.readBlock}
	r.cands[key] = c
	live := r.isLive(key.ino)
	cur, err := f.inode(key.ino)
	if err != nil {
		c.notes = append(c.notes, fmt.Sprintf("inode on disk unreadable: %v", err))
	}
	same := err == nil && cur.gen == key.gen && cur.mode != 0
	if same {
		if live {
			return c
		}
		c.cur = cur
		if cur.dtime != 0 {
			if inUse, _ := f.inodeInUse(key.ino); !inUse {
				c.deleted = time.Unix(int64(cur.dtime), 0).UTC()
			}
		}
		if r.hasMap(cur) {
			c.ver = cur
			return c
		}
	} else if err == nil && cur.mode != 0 {
		c.reused = true
		c.notes = append(c.notes, "the inode number has since been given to another file")
	}
	copies := r.inodeCopies(key.ino)
	if c.deleted.IsZero() {
		for _, d := range copies {
			if d.v.gen == key.gen && d.v.dtime != 0 && d.v.links == 0 {
				c.deleted = time.Unix(int64(d.v.dtime), 0).UTC()
				break
			}
		}
	}
	for _, jc := range copies {
		if jc.v.gen != key.gen || !r.hasMap(jc.v) {
			continue
		}
		c.ver, c.rd, c.seq, c.fromJ = jc.v, r.js.reader(jc.seq), jc.seq, true
		if t, ok := r.js.commits[jc.seq]; ok {
			c.notes = append(c.notes, fmt.Sprintf("inode as of journal transaction %d (committed %s)", jc.seq, t.Format(time.RFC3339)))
		} else {
			c.notes = append(c.notes, fmt.Sprintf("inode as of journal transaction %d", jc.seq))
		}
		return c
	}
	if same {
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
		for _, c := range r.cands {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			if c.dirsDone || c.ver == nil || !c.ver.isDir() || !r.hasMap(c.ver) {
				continue
			}
			c.dirsDone = true
			more = true
			r.dirNames(c.ver, c.rd, false, c.seq)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// pathOf returns the path of a deleted file through the names found for
// it: a live parent below dir, or a deleted parent with a path of its own.
func (r *recovery) pathOf(key incarnation, depth int) (string, *nameRef) {
	p, ref, _ := r.pathOfMemo(key, depth)
	return p, ref
}

// pathOfMemo works out pathOf once per key: an answer is kept when it is
// sure, that is, not cut short by a key already being worked out (a cycle
// of deleted directories naming each other), the depth, or the bound on
// steps. Without it, two deleted directories naming each other twice
// made the search exponential.
func (r *recovery) pathOfMemo(key incarnation, depth int) (string, *nameRef, bool) {
	if fp, ok := r.paths[key]; ok {
		return fp.p, fp.ref, true
	}
	if depth > maxDirRounds || r.busy[key] || r.ctx.Err() != nil {
		return "", nil, false
	}
	if r.steps++; r.steps > maxPathSteps {
		if r.steps == maxPathSteps+1 {
			r.f.warnf("deleted files: more than %d steps naming them through deleted directories; the rest are known by inode only", maxPathSteps)
		}
		return "", nil, false
	}
	if r.paths == nil {
		r.paths, r.busy = map[incarnation]foundPath{}, map[incarnation]bool{}
	}
	r.busy[key] = true
	defer delete(r.busy, key)
	found := func(p string, ref *nameRef) (string, *nameRef, bool) {
		r.paths[key] = foundPath{p, ref}
		return p, ref, true
	}
	sure := true
	refs := r.names[key]
	// Names in today's slack first, then from the newest journal copy.
	sort.SliceStable(refs, func(i, j int) bool {
		if refs[i].cur != refs[j].cur {
			return refs[i].cur
		}
		return int32(refs[i].seq-refs[j].seq) > 0
	})
	for i := range refs {
		n := &refs[i]
		if p, ok := r.livePathOf(n.parent); ok {
			return found(vfs.Join(p, n.name), n)
		}
		if n.parent == key {
			continue
		}
		p, _, ok := r.pathOfMemo(n.parent, depth+1)
		if p != "" {
			return found(vfs.Join(p, n.name), n)
		}
		sure = sure && ok
	}
	if sure {
		r.paths[key] = foundPath{}
	}
	return "", nil, sure
}

// records turns the candidates into vfs.Deleted values.
func (r *recovery) records() ([]vfs.Deleted, error) {
	var out []vfs.Deleted
	var spans []blockSpan
	var fresh []uint64 // how new each record's inode version is (the one on disk: newest)
	keys := make([]incarnation, 0, len(r.cands))
	for k := range r.cands {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].ino != keys[j].ino {
			return keys[i].ino < keys[j].ino
		}
		return keys[i].gen < keys[j].gen
	})
	for _, key := range keys {
		c := r.cands[key]
		if err := r.ctx.Err(); err != nil {
			return nil, err
		}
		if c.ver == nil {
			continue
		}
		p, ref := r.pathOf(key, 0)
		if p == "" && (!r.whole || !r.hasMap(c.ver)) {
			continue
		}
		v := c.ver
		d := vfs.Deleted{
			Path: p, Inode: uint64(key.ino), Size: int64(v.size), Mode: vfs.FromInodeMode(v.mode), UID: v.uid, GID: v.gid,
			Atime: v.atime, Mtime: v.mtime, Ctime: v.ctime, DeletedAt: c.deleted,
		}
		if v.hasCrtime {
			d.Btime = v.crtime
		}
		switch {
		case c.fromJ:
			d.Method = vfs.MethodJournal
		case ref != nil && ref.cur:
			d.Method = vfs.MethodDirent
		default:
			d.Method = vfs.MethodInode
		}
		d.Notes = append(d.Notes, c.notes...)
		if ref != nil && !ref.cur {
			d.Notes = append(d.Notes, fmt.Sprintf("name from the journal's copy of its directory block (transaction %d)", ref.seq))
		}
		if !r.hasMap(v) {
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
		fv := uint64(1) << 40
		if c.fromJ {
			fv = uint64(int64(int32(c.seq-r.js.j.seq)) + 1<<32) // by transaction, wrap-safe
		}
		fresh = append(fresh, fv)
		out = append(out, d)
	}
	r.f.overlaps(r.ctx, out, fresh, spans)
	sort.SliceStable(out, func(i, j int) bool {
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
	runs, checked := 0, 0
	for lblk := uint64(0); lblk < nblk; runs++ {
		if r.ctx.Err() != nil {
			break
		}
		if runs >= maxCoverageRuns {
			notes = append(notes, fmt.Sprintf("block map of more than %d runs: the rest is not checked", maxCoverageRuns))
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
			for b := run.phys; b < run.phys+n && checked < maxCoverageBlocks; b++ {
				checked++
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
	if checked >= maxCoverageBlocks {
		notes = append(notes, fmt.Sprintf("only the first %d mapped blocks were checked against the bitmap", maxCoverageBlocks))
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
// today (both are free). The earlier one is then not complete. A block
// passes from one file to the next only once the first is deleted, so the
// later file is later by every clock: birth (or change) time, then
// modification time, then deletion time, then the age of the inode
// version recovered (the one on disk is newer than any journal copy).
// Each record's runs are merged first, and a block mapped by several
// records is charged to each against the latest of them only, so that a
// crafted map (one block mapped 65,536 times, by many files) costs its
// size, not its square; the work is bounded all the same (maxOverlapWork)
// and the check stops, with a warning, at the bound or when ctx is done.
func (f *FS) overlaps(ctx context.Context, out []vfs.Deleted, fresh []uint64, spans []blockSpan) {
	born := func(i int) time.Time {
		if !out[i].Btime.IsZero() {
			return out[i].Btime
		}
		return out[i].Ctime
	}
	later := func(a, b int) bool {
		switch {
		case !born(a).Equal(born(b)):
			return born(a).After(born(b))
		case !out[a].Mtime.Equal(out[b].Mtime):
			return out[a].Mtime.After(out[b].Mtime)
		case !out[a].DeletedAt.Equal(out[b].DeletedAt):
			return out[a].DeletedAt.After(out[b].DeletedAt)
		}
		return fresh[a] > fresh[b]
	}
	// one record's runs, merged
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].rec != spans[j].rec {
			return spans[i].rec < spans[j].rec
		}
		return spans[i].start < spans[j].start
	})
	merged := spans[:0]
	for _, s := range spans {
		if n := len(merged); n > 0 && merged[n-1].rec == s.rec && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	sort.Slice(merged, func(i, j int) bool { return merged[i].start < merged[j].start })
	type pair struct{ loser, winner int }
	lost := map[pair]uint64{}
	// Sweep the elementary intervals between the runs' ends: in each, the
	// latest record covering it wins, each other loses its length.
	var active []blockSpan
	work := 0
	next := 0
	for at := uint64(0); next < len(merged) || len(active) > 0; {
		if len(active) == 0 {
			at = merged[next].start
		}
		for next < len(merged) && merged[next].start == at {
			active = append(active, merged[next])
			next++
		}
		end := ^uint64(0)
		for _, a := range active {
			end = min(end, a.end)
		}
		if next < len(merged) {
			end = min(end, merged[next].start)
		}
		if work += len(active); work > maxOverlapWork || ctx.Err() != nil {
			f.warnf("deleted files: the check of blocks two recovered files both map stopped after %d steps; records may be marked complete whose blocks another deleted file overwrote", work)
			break
		}
		if len(active) > 1 {
			w := active[0].rec
			for _, a := range active[1:] {
				if later(a.rec, w) {
					w = a.rec
				}
			}
			for _, a := range active {
				if a.rec != w {
					lost[pair{a.rec, w}] += end - at
				}
			}
		}
		keep := active[:0]
		for _, a := range active {
			if a.end > end {
				keep = append(keep, a)
			}
		}
		active, at = keep, end
	}
	for p, n := range lost {
		d := &out[p.loser]
		d.Complete = false
		w := out[p.winner]
		name := w.Path
		if name == "" {
			name = "unnamed"
		}
		d.Notes = append(d.Notes, fmt.Sprintf("%d blocks are also mapped by deleted inode %d (%s), made later: their content is that file's", n, w.Inode, name))
	}
}

// maxOverlapWork bounds the steps of one recovery's overlap check.
const maxOverlapWork = 1 << 24

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
