package xfs

import (
	"sort"
)

// agHeader reads the AGF (sector 1) or AGI (sector 2) of AG agno.
func (f *FS) agHeader(agno uint64, sector int, magic uint32, crcOff int) ([]byte, int64, error) {
	name := "AGF"
	if magic == agiMagic {
		name = "AGI"
	}
	what := agLoc(name, agno)
	base, ok := f.agPos(agno, 0)
	if !ok {
		return nil, -1, ferr(what, -1, "AG %d is outside the filesystem", agno)
	}
	pos := base + int64(sector*f.sectSize)
	b, err := f.metaCRC(pos, f.sectSize, what, crcOff)
	if err != nil {
		return nil, pos, err
	}
	if be.Uint32(b) != magic {
		return nil, pos, ferr(what, pos, "no %s magic", name)
	}
	if seq := be.Uint32(b[8:]); uint64(seq) != agno {
		return nil, pos, ferr(what, pos+8, "header of AG %d", seq)
	}
	if l := be.Uint32(b[12:]); uint64(l) != f.agLen(agno) {
		return nil, pos, ferr(what, pos+12, "AG of %d blocks, the superblock says %d", l, f.agLen(agno))
	}
	return b, pos, nil
}

// sbtree describes a short-form (AG) btree: magic, record and key sizes.
type sbtree struct {
	name   string
	magic  uint32
	recLen int
	keyLen int
}

var (
	inobtTree = sbtree{"inode btree", inobtMagic, inobtRecLen, 4}
	bnobtTree = sbtree{"free space btree", bnobtMagic, 8, 8}
)

// sblock reads a short-form btree block of AG agno at agbno, expected at
// the given level, and returns it with its record count.
func (f *FS) sblock(t sbtree, agno uint64, agbno uint32, level int) ([]byte, int64, int, error) {
	what := agLoc(t.name, agno)
	pos, ok := f.agPos(agno, uint64(agbno))
	if !ok {
		return nil, -1, 0, ferr(what, -1, "block %d is outside the AG", agbno)
	}
	b, err := f.metaCRC(pos, int(f.blockSize), what, sblockCRCOff)
	if err != nil {
		return nil, pos, 0, err
	}
	if be.Uint32(b) != t.magic {
		return nil, pos, 0, ferr(what, pos, "no %s block magic", t.name)
	}
	if l := int(be.Uint16(b[4:])); l != level {
		return nil, pos, 0, ferr(what, pos+4, "block of level %d where level %d was expected", l, level)
	}
	n := int(be.Uint16(b[6:]))
	per := t.recLen
	if level > 0 {
		per = t.keyLen + 4
	}
	if n > (len(b)-sblockCRCLen)/per {
		return nil, pos, 0, ferr(what, pos+6, "%d records in a block", n)
	}
	if own := be.Uint32(b[sblockOwner:]); uint64(own) != agno {
		return nil, pos, 0, ferr(what, pos+sblockOwner, "block belongs to AG %d", own)
	}
	if d := be.Uint64(b[sblockBlkno:]); d != uint64(pos>>9) {
		return nil, pos, 0, ferr(what, pos+sblockBlkno, "block records disk address %d, read at %d", d, pos>>9)
	}
	return b, pos, n, nil
}

// sbtreeFind descends a short-form btree to the leaf record with the
// largest key not above key (compared on the first 4 bytes), or nil.
func (f *FS) sbtreeFind(t sbtree, agno uint64, root uint32, levels int, key uint32) ([]byte, error) {
	if levels < 1 || levels > maxAGBtreeLvl {
		return nil, ferr(agLoc(t.name, agno), -1, "%d levels", levels)
	}
	ptr := root
	for level := levels - 1; ; level-- {
		b, _, n, err := f.sblock(t, agno, ptr, level)
		if err != nil {
			return nil, err
		}
		if level == 0 {
			recs := b[sblockCRCLen : sblockCRCLen+n*t.recLen]
			i := sort.Search(n, func(i int) bool { return be.Uint32(recs[i*t.recLen:]) > key }) - 1
			if i < 0 {
				return nil, nil
			}
			return recs[i*t.recLen : (i+1)*t.recLen], nil
		}
		if n == 0 {
			return nil, nil
		}
		maxrecs := (len(b) - sblockCRCLen) / (t.keyLen + 4)
		keys := b[sblockCRCLen:]
		ptrs := b[sblockCRCLen+maxrecs*t.keyLen:]
		i := sort.Search(n, func(i int) bool { return be.Uint32(keys[i*t.keyLen:]) > key }) - 1
		if i < 0 {
			i = 0
		}
		ptr = be.Uint32(ptrs[i*4:])
	}
}

// sbtreeEach calls fn for every leaf record of a short-form btree, in key
// order. Blocks are visited once (a block seen twice is an error).
func (f *FS) sbtreeEach(t sbtree, agno uint64, root uint32, levels int, fn func(rec []byte) error) error {
	what := agLoc(t.name, agno)
	if levels < 1 || levels > maxAGBtreeLvl {
		return ferr(what, -1, "%d levels", levels)
	}
	seen := map[uint32]bool{}
	var walk func(ptr uint32, level int) error
	walk = func(ptr uint32, level int) error {
		if seen[ptr] {
			return ferr(what, -1, "block %d is reached twice", ptr)
		}
		seen[ptr] = true
		b, _, n, err := f.sblock(t, agno, ptr, level)
		if err != nil {
			return err
		}
		if level == 0 {
			for i := 0; i < n; i++ {
				if err := fn(b[sblockCRCLen+i*t.recLen : sblockCRCLen+(i+1)*t.recLen]); err != nil {
					return err
				}
			}
			return nil
		}
		maxrecs := (len(b) - sblockCRCLen) / (t.keyLen + 4)
		ptrs := b[sblockCRCLen+maxrecs*t.keyLen:]
		for i := 0; i < n; i++ {
			if err := walk(be.Uint32(ptrs[i*4:]), level-1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, levels-1)
}

// inobtRec is an inode btree record: a chunk of 64 inodes.
type inobtRec struct {
	start    uint32 // AG inode number of the chunk's first inode
	holemask uint16 // sparse chunks: bit i set = inodes 4i..4i+3 do not exist
	free     uint64 // bit i set = inode start+i is free
}

func (f *FS) decodeInobt(rec []byte) inobtRec {
	r := inobtRec{start: be.Uint32(rec), free: be.Uint64(rec[8:])}
	if f.sparseIno {
		r.holemask = be.Uint16(rec[4:])
	}
	return r
}

// exists reports whether slot i of the chunk is backed by inode blocks.
func (r inobtRec) exists(i int) bool { return r.holemask&(1<<(i/4)) == 0 }

func (f *FS) inobtRoot(agno uint64) (uint32, int, error) {
	agi, _, err := f.agHeader(agno, 2, agiMagic, agiCRC)
	if err != nil {
		return 0, 0, err
	}
	return be.Uint32(agi[agiRoot:]), int(be.Uint32(agi[agiLevel:])), nil
}

// inodeInUse reports whether inode ino is allocated, as the inode btree
// of its AG tells.
func (f *FS) inodeInUse(ino uint64) (bool, error) {
	agno, agino := f.inoSplit(ino)
	root, levels, err := f.inobtRoot(agno)
	if err != nil {
		return false, err
	}
	rec, err := f.sbtreeFind(inobtTree, agno, root, levels, agino)
	if err != nil || rec == nil {
		return false, err
	}
	r := f.decodeInobt(rec)
	if agino < r.start || agino-r.start >= inodesPerRec {
		return false, nil
	}
	i := int(agino - r.start)
	return r.exists(i) && r.free&(1<<i) == 0, nil
}

// blocksFree reports whether the count blocks at fs block fsb are all
// free space, as the free space btree (by block number) of their AG
// tells.
func (f *FS) blocksFree(fsb, count uint64) (bool, error) {
	agno := fsb >> f.agBlkLog
	agbno := fsb & (1<<f.agBlkLog - 1)
	agf, _, err := f.agHeader(agno, 1, agfMagic, agfCRC)
	if err != nil {
		return false, err
	}
	rec, err := f.sbtreeFind(bnobtTree, agno, be.Uint32(agf[agfRoots:]), int(be.Uint32(agf[agfLevels:])), uint32(agbno))
	if err != nil || rec == nil {
		return false, err
	}
	start, n := uint64(be.Uint32(rec)), uint64(be.Uint32(rec[4:]))
	return agbno >= start && agbno+count <= start+n, nil
}
