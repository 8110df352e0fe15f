package xfs

import (
	"io"
	"sort"
	"sync/atomic"
)

// extent is one record of a block map: count blocks of the fork starting
// at logical block off live at filesystem block fsb.
type extent struct {
	off       uint64
	fsb       uint64
	count     uint64
	unwritten bool
}

func (e extent) end() uint64 { return e.off + e.count }

// decodeExtent unpacks a 128-bit packed xfs_bmbt_rec.
func decodeExtent(b []byte) extent {
	l0, l1 := be.Uint64(b), be.Uint64(b[8:])
	return extent{
		unwritten: l0>>63 != 0,
		off:       (l0 & (1<<63 - 1)) >> 9,
		fsb:       (l0&0x1ff)<<43 | l1>>21,
		count:     l1 & (1<<21 - 1),
	}
}

// fork is the block map of an inode's data or attribute fork.
type fork struct {
	f      *FS
	ip     *inode
	name   string // "data fork" or "attribute fork"
	base   int64  // device offset of the fork's bytes in the inode
	format uint8
	ext    []extent // extents format
	root   []byte   // btree format: the in-inode root (bmdr block)
	level  int
	cur    atomic.Pointer[bmLeaf] // the last btree leaf used
}

// bmLeaf is a decoded bmbt leaf and the logical blocks [lo, hi) it maps.
type bmLeaf struct {
	lo, hi uint64
	recs   []extent
}

// dataFork and attrFork build the block map of a fork in extents or
// btree format.
func (f *FS) dataFork(ip *inode) (*fork, error) {
	return f.newFork(ip, false)
}

func (f *FS) attrFork(ip *inode) (*fork, error) {
	return f.newFork(ip, true)
}

func (f *FS) newFork(ip *inode, attr bool) (*fork, error) {
	fk := &fork{f: f, ip: ip, name: "data fork", base: ip.pos + dinodeV3Core, format: ip.format}
	b, n := ip.dfork, ip.nextents
	if attr {
		fk.name, fk.base, fk.format = "attribute fork", ip.pos+dinodeV3Core+int64(ip.forkoff), ip.aformat
		b, n = ip.afork, ip.anextents
	}
	what := ip.what(fk.name)
	switch fk.format {
	case fmtExtents:
		if n > uint64(len(b)/16) {
			return nil, ferr(what, fk.base, "%d extents do not fit the %d-byte fork", n, len(b))
		}
		ext, err := fk.decodeRecs(b[:n*16], fk.base, 0, maxFileOff)
		if err != nil {
			return nil, err
		}
		fk.ext = ext
	case fmtBtree:
		if len(b) < 4+16 {
			return nil, ferr(what, fk.base, "btree root does not fit a %d-byte fork", len(b))
		}
		fk.level = int(be.Uint16(b))
		nrecs := int(be.Uint16(b[2:]))
		maxrecs := (len(b) - 4) / 16
		if fk.level < 1 || fk.level > maxBmbtLevels {
			return nil, ferr(what, fk.base, "btree root of level %d", fk.level)
		}
		if nrecs < 1 || nrecs > maxrecs {
			return nil, ferr(what, fk.base+2, "btree root with %d records (room for %d)", nrecs, maxrecs)
		}
		fk.root = b
	default:
		return nil, ferr(what, fk.base, "fork format %d has no block map", fk.format)
	}
	return fk, nil
}

// decodeRecs decodes and checks packed extent records that must map
// logical blocks inside [lo, hi) in increasing order.
func (fk *fork) decodeRecs(b []byte, pos int64, lo, hi uint64) ([]extent, error) {
	out := make([]extent, 0, len(b)/16)
	prev := lo
	for i := 0; i+16 <= len(b); i += 16 {
		e := decodeExtent(b[i:])
		at := int64(-1) // a record from the log has no device offset
		if pos >= 0 {
			at = pos + int64(i)
		}
		if err := fk.checkExtent(e, at, prev, hi); err != nil {
			return nil, err
		}
		prev = e.end()
		out = append(out, e)
	}
	return out, nil
}

func (fk *fork) checkExtent(e extent, pos int64, prev, hi uint64) error {
	what := fk.ip.what(fk.name)
	switch {
	case e.count == 0:
		return ferr(what, pos, "extent of zero blocks")
	case e.off < prev:
		return ferr(what, pos, "extent at logical block %d overlaps or is out of order (previous ends at %d)", e.off, prev)
	case e.off >= hi || e.count > hi-e.off:
		return ferr(what, pos, "extent [%d,+%d) is outside the range [%d,%d) of its btree block", e.off, e.count, prev, hi)
	}
	if _, ok := fk.f.extentPos(e.fsb, e.count); !ok {
		return ferr(what, pos, "extent of %d blocks at block %d is past the end of the filesystem or crosses an AG", e.count, e.fsb)
	}
	return nil
}

// bmbtBlock reads a bmbt block at fs block fsb, expected at the given
// level, and returns it with its number of records.
func (fk *fork) bmbtBlock(fsb uint64, level int) ([]byte, int64, int, error) {
	f := fk.f
	what := fk.ip.what(fk.name)
	b, pos, err := f.fsBlock(fsb, what, lblockCRCOff)
	if err != nil {
		return nil, -1, 0, err
	}
	if be.Uint32(b) != bmbtMagic {
		return nil, pos, 0, ferr(what, pos, "no bmbt block magic")
	}
	if int(be.Uint16(b[4:])) != level {
		return nil, pos, 0, ferr(what, pos+4, "block of level %d where level %d was expected", be.Uint16(b[4:]), level)
	}
	n := int(be.Uint16(b[6:]))
	per := 16 // a leaf record, or a node key+pointer
	if n < 1 || n > (len(b)-lblockCRCLen)/per {
		return nil, pos, 0, ferr(what, pos+6, "%d records in a block", n)
	}
	if own := be.Uint64(b[lblockOwner:]); own != fk.ip.ino {
		return nil, pos, 0, ferr(what, pos+lblockOwner, "block belongs to inode %d", own)
	}
	if d := be.Uint64(b[lblockBlkno:]); d != uint64(pos>>9) {
		return nil, pos, 0, ferr(what, pos+lblockBlkno, "block records disk address %d, read at %d", d, pos>>9)
	}
	return b, pos, n, nil
}

// nodeKeys returns the keys and pointers of a bmbt node: the in-inode root
// (hdr 4 bytes, room computed from its size) or a block (72-byte header).
func nodeKeyPtr(b []byte, hdr, n int) (keys, ptrs []byte) {
	maxrecs := (len(b) - hdr) / 16
	return b[hdr : hdr+n*8], b[hdr+maxrecs*8 : hdr+maxrecs*8+n*8]
}

// leafFor descends the btree to the leaf that maps lblk.
func (fk *fork) leafFor(lblk uint64) (*bmLeaf, error) {
	if c := fk.cur.Load(); c != nil && lblk >= c.lo && lblk < c.hi {
		return c, nil
	}
	node, hdr, n := fk.root, 4, int(be.Uint16(fk.root[2:]))
	lo, hi := uint64(0), uint64(maxFileOff)
	for level := fk.level; ; level-- {
		keys, ptrs := nodeKeyPtr(node, hdr, n)
		i := sort.Search(n, func(i int) bool { return be.Uint64(keys[i*8:]) > lblk }) - 1
		if i < 0 {
			i = 0
		}
		if i > 0 {
			lo = max(lo, be.Uint64(keys[i*8:]))
		}
		if i+1 < n {
			if k := be.Uint64(keys[(i+1)*8:]); k < hi {
				hi = k
			}
		}
		if lo >= hi {
			return nil, ferr(fk.ip.what(fk.name+" btree"), -1, "keys out of order at level %d", level)
		}
		b, pos, cn, err := fk.bmbtBlock(be.Uint64(ptrs[i*8:]), level-1)
		if err != nil {
			return nil, err
		}
		if level-1 == 0 {
			recs, err := fk.decodeRecs(b[lblockCRCLen:lblockCRCLen+cn*16], pos+lblockCRCLen, lo, hi)
			if err != nil {
				return nil, err
			}
			l := &bmLeaf{lo: lo, hi: hi, recs: recs}
			fk.cur.Store(l)
			return l, nil
		}
		node, hdr, n = b, lblockCRCLen, cn
	}
}

// lookup finds the extent holding logical block lblk. When none does, it
// returns the first logical block past lblk that may be mapped.
func (fk *fork) lookup(lblk uint64) (e extent, found bool, next uint64, err error) {
	recs, hi := fk.ext, uint64(maxFileOff)
	if fk.format == fmtBtree {
		l, err := fk.leafFor(lblk)
		if err != nil {
			return extent{}, false, 0, err
		}
		recs, hi = l.recs, l.hi
	}
	i := sort.Search(len(recs), func(i int) bool { return recs[i].end() > lblk })
	if i == len(recs) {
		return extent{}, false, hi, nil
	}
	if recs[i].off <= lblk {
		return recs[i], true, 0, nil
	}
	return extent{}, false, recs[i].off, nil
}

// each calls fn for every extent of the fork in logical order. A btree is
// walked depth first; the strictly increasing order of records (checked
// across leaves) makes a block that is reached twice an error, so a
// corrupt tree cannot make the walk loop.
func (fk *fork) each(fn func(extent) error) error {
	if fk.format == fmtExtents {
		for _, e := range fk.ext {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	prev := uint64(0)
	var walk func(node []byte, hdr, n, level int, lo, hi uint64) error
	walk = func(node []byte, hdr, n, level int, lo, hi uint64) error {
		keys, ptrs := nodeKeyPtr(node, hdr, n)
		for i := 0; i < n; i++ {
			clo, chi := lo, hi
			if i > 0 {
				clo = max(clo, be.Uint64(keys[i*8:]))
			}
			if i+1 < n {
				if k := be.Uint64(keys[(i+1)*8:]); k < chi {
					chi = k
				}
			}
			if clo < prev || clo >= chi {
				return ferr(fk.ip.what(fk.name+" btree"), -1, "keys out of order at level %d", level)
			}
			b, pos, cn, err := fk.bmbtBlock(be.Uint64(ptrs[i*8:]), level-1)
			if err != nil {
				return err
			}
			if level-1 > 0 {
				if err := walk(b, lblockCRCLen, cn, level-1, clo, chi); err != nil {
					return err
				}
				continue
			}
			recs, err := fk.decodeRecs(b[lblockCRCLen:lblockCRCLen+cn*16], pos+lblockCRCLen, max(prev, clo), chi)
			if err != nil {
				return err
			}
			for _, e := range recs {
				if err := fn(e); err != nil {
					return err
				}
				prev = e.end()
			}
		}
		return nil
	}
	return walk(fk.root, 4, int(be.Uint16(fk.root[2:])), fk.level, 0, maxFileOff)
}

// readAt reads the fork's bytes [off, off+len(p)) up to size, holes and
// unwritten extents as zeros, the rest straight from the device.
func (fk *fork) readAt(p []byte, off, size int64) (int, error) {
	f := fk.f
	if off < 0 {
		return 0, ferr(fk.ip.what(fk.name), -1, "negative offset")
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= size {
			return n, io.EOF
		}
		want := min(int64(len(p)-n), size-pos)
		lblk := uint64(pos >> f.blockLog)
		e, found, next, err := fk.lookup(lblk)
		if err != nil {
			return n, err
		}
		sizeBlks := (uint64(size) + uint64(f.blockSize) - 1) >> f.blockLog
		if !found {
			run := min(want, f.blkBytes(min(next, sizeBlks))-pos)
			clear(p[n : n+int(run)])
			n += int(run)
			continue
		}
		run := min(want, f.blkBytes(min(e.end(), sizeBlks))-pos)
		if e.unwritten {
			clear(p[n : n+int(run)])
			n += int(run)
			continue
		}
		base, _ := f.extentPos(e.fsb, e.count)
		dev := base + int64(lblk-e.off)<<f.blockLog + pos&(f.blockSize-1)
		if err := f.readDev(p[n:n+int(run)], dev, fk.ip.what(fk.name)); err != nil {
			return n, err
		}
		n += int(run)
	}
	return n, nil
}

// blkBytes converts a block count to bytes, saturating at the int64 range.
func (f *FS) blkBytes(n uint64) int64 {
	if n >= 1<<(63-f.blockLog) {
		return 1<<63 - 1
	}
	return int64(n << f.blockLog)
}

// readBlocks reads count fs blocks of the fork from logical block lblk,
// through the metadata cache; every block must be mapped and written.
func (fk *fork) readBlocks(lblk, count uint64, crcOff int) ([]byte, int64, error) {
	f := fk.f
	what := fk.ip.what(fk.name)
	var out []byte
	first := int64(-1)
	for done := uint64(0); done < count; {
		e, found, _, err := fk.lookup(lblk + done)
		if err != nil {
			return nil, -1, err
		}
		if !found || e.unwritten {
			return nil, -1, ferr(what, -1, "logical block %d is not mapped", lblk+done)
		}
		base, _ := f.extentPos(e.fsb, e.count)
		pos := base + int64(lblk+done-e.off)<<f.blockLog
		run := min(count-done, e.end()-(lblk+done))
		if first < 0 {
			first = pos
		}
		if run == count {
			b, err := f.metaCRC(pos, int(run)<<f.blockLog, what, crcOff)
			return b, pos, err
		}
		b, err := f.meta(pos, int(run)<<f.blockLog, what)
		if err != nil {
			return nil, -1, err
		}
		out = append(out, b...)
		done += run
	}
	f.checkCRC(out, crcOff, what, first)
	return out, first, nil
}
