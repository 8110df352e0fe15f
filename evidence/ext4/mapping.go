package ext4

import (
	"fmt"
)

// run is the mapping of a run of logical blocks starting at the one asked
// for: n blocks at physical block phys (phys 0: a hole), read as zeros
// when uninit (an extent allocated but never written).
type run struct {
	phys   uint64
	n      uint64
	uninit bool
}

// blockReader reads a metadata block for the block map walkers: the FS's
// own cached reader, or for a recovered inode one that prefers the
// journal's copies of the time.
type blockReader func(b uint64, what string, ino uint32) ([]byte, error)

// maxLogical is one past the highest logical block ext4 addresses (32 bits).
const maxLogical = 1 << 32

// holeToEnd is the length of a hole that runs to the end of any file.
const holeToEnd = 1 << 40

// mapBlock returns the run holding logical block lblk of in, through its
// extent tree or its legacy block map.
func (f *FS) mapBlock(in *inode, lblk uint64, rd blockReader) (run, error) {
	if rd == nil {
		rd = f.readBlock
	}
	if lblk >= maxLogical {
		return run{n: holeToEnd}, nil
	}
	if in.has(flagExtents) {
		return f.extentMap(in, lblk, rd)
	}
	return f.indirectMap(in, lblk, rd)
}

// extentHeader is an ext4_extent_header.
type extentHeader struct {
	entries, max, depth uint16
}

func parseExtentHeader(b []byte) (extentHeader, bool) {
	if len(b) < 12 || le.Uint16(b) != extentMagic {
		return extentHeader{}, false
	}
	return extentHeader{entries: le.Uint16(b[2:]), max: le.Uint16(b[4:]), depth: le.Uint16(b[6:])}, true
}

// extentMap walks the extent tree of in from its root in i_block down to
// the leaf covering lblk. Every level is checked: magic, entry counts that
// fit the node, a depth one less than its parent's (so the walk is bounded
// and cannot loop), and children and extents inside the filesystem.
func (f *FS) extentMap(in *inode, lblk uint64, rd blockReader) (run, error) {
	node := in.block[:]
	nodeOff := in.off + inBlock
	limit := uint64(maxLogical) // first logical block past the current subtree
	wantDepth := -1
	for level := 0; ; level++ {
		h, ok := parseExtentHeader(node)
		bad := func(format string, args ...any) error {
			return formatErr("extent tree", in.ino, nodeOff, fmt.Sprintf(format, args...))
		}
		if !ok {
			return run{}, bad("bad extent header magic %#04x", le.Uint16(node))
		}
		if wantDepth < 0 {
			if h.depth > extentMaxDepth {
				return run{}, bad("depth %d (at most %d)", h.depth, extentMaxDepth)
			}
		} else if int(h.depth) != wantDepth {
			return run{}, bad("node of depth %d where %d was expected (a loop or a misplaced block)", h.depth, wantDepth)
		}
		if 12+12*int(h.max) > len(node) || h.entries > h.max {
			return run{}, bad("%d of %d entries do not fit a %d-byte node", h.entries, h.max, len(node))
		}
		n := int(h.entries)
		key := func(i int) uint64 { return uint64(le.Uint32(node[12+12*i:])) }
		// The last entry whose first logical block is at or before lblk.
		lo, hi := 0, n
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if key(m) <= lblk {
				lo = m + 1
			} else {
				hi = m
			}
		}
		i := lo - 1
		if i+1 < n {
			if k := key(i + 1); k > lblk && k < limit {
				limit = k
			}
		}
		if i < 0 {
			return run{n: max(limit-lblk, 1)}, nil
		}
		e := node[12+12*i:]
		if h.depth == 0 {
			start := key(i)
			ln := uint64(le.Uint16(e[4:]))
			uninit := false
			if ln > extentInitMax {
				ln -= extentInitMax
				uninit = true
			}
			phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if lblk >= start+ln {
				return run{n: max(limit-lblk, 1)}, nil
			}
			if phys == 0 || phys >= f.sb.blocksCount || f.sb.blocksCount-phys < ln {
				return run{}, pastErr("extent tree", in.ino, nodeOff+int64(12+12*i),
					fmt.Sprintf("extent of %d blocks at block %d past the end of the filesystem (%d blocks)", ln, phys, f.sb.blocksCount))
			}
			return run{phys: phys + (lblk - start), n: start + ln - lblk, uninit: uninit}, nil
		}
		if level >= extentMaxDepth {
			return run{}, bad("extent tree deeper than %d", extentMaxDepth)
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		if !f.validBlock(child) {
			return run{}, pastErr("extent tree", in.ino, nodeOff+int64(12+12*i),
				fmt.Sprintf("index points at block %d outside the filesystem (%d blocks)", child, f.sb.blocksCount))
		}
		b, err := rd(child, "extent tree", in.ino)
		if err != nil {
			return run{}, err
		}
		if f.sb.metadataCsum() {
			f.checkExtentTail(in, b, child)
		}
		node, nodeOff, wantDepth = b, int64(child)*f.bs, int(h.depth)-1
	}
}

func (f *FS) checkExtentTail(in *inode, b []byte, blk uint64) {
	h, ok := parseExtentHeader(b)
	if !ok {
		return
	}
	end := 12 + 12*int(h.max)
	if end+4 > len(b) {
		return
	}
	if crc32c(f.inodeSeed(in), b[:end]) != le.Uint32(b[end:]) {
		f.warnf("ext4 extent tree (inode %d): offset %d: checksum mismatch", in.ino, int64(blk)*f.bs)
	}
}

// indirectMap resolves lblk through the ext2/3 block map: 12 direct
// pointers, then a single, a double and a triple indirect block. The depth
// is fixed by the logical block number, so no walk can loop. Contiguous
// pointers in one block are merged into one run.
func (f *FS) indirectMap(in *inode, lblk uint64, rd blockReader) (run, error) {
	ppb := uint64(f.bs / 4)
	ptr := func(b []byte, i uint64) uint64 { return uint64(le.Uint32(b[4*i:])) }
	if lblk < nDirect {
		return f.ptrRun(in, in.block[:4*nDirect], lblk, in.off+inBlock)
	}
	rel := lblk - nDirect
	var root uint64
	var levels int
	switch {
	case rel < ppb:
		root, levels = ptr(in.block[:], indBlock), 1
	case rel-ppb < ppb*ppb:
		rel -= ppb
		root, levels = ptr(in.block[:], dindBlock), 2
	default:
		rel -= ppb + ppb*ppb
		if rel >= ppb*ppb*ppb {
			return run{n: holeToEnd}, nil // past what a block map addresses
		}
		root, levels = ptr(in.block[:], tindBlock), 3
	}
	span := uint64(1)
	for i := 1; i < levels; i++ {
		span *= ppb
	}
	p, pOff := root, in.off+inBlock
	for lvl := levels; ; lvl-- {
		if p == 0 {
			return run{n: span*ppb - rel%(span*ppb)}, nil
		}
		if !f.validBlock(p) {
			return run{}, pastErr("block map", in.ino, pOff,
				fmt.Sprintf("indirect block %d outside the filesystem (%d blocks)", p, f.sb.blocksCount))
		}
		b, err := rd(p, "block map", in.ino)
		if err != nil {
			return run{}, err
		}
		idx := rel / span
		rel %= span
		if lvl == 1 {
			return f.ptrRun(in, b, idx, int64(p)*f.bs)
		}
		pOff = int64(p)*f.bs + int64(4*idx)
		p = ptr(b, idx)
		span /= ppb
	}
}

// ptrRun makes a run from the pointer array ptrs starting at index i:
// a hole over the zero pointers, or the physical blocks that follow one
// another.
func (f *FS) ptrRun(in *inode, ptrs []byte, i uint64, off int64) (run, error) {
	n := uint64(len(ptrs) / 4)
	p := uint64(le.Uint32(ptrs[4*i:]))
	j := i + 1
	if p == 0 {
		for j < n && le.Uint32(ptrs[4*j:]) == 0 {
			j++
		}
		return run{n: j - i}, nil
	}
	if p >= f.sb.blocksCount {
		return run{}, pastErr("block map", in.ino, off+int64(4*i),
			fmt.Sprintf("block %d past the end of the filesystem (%d blocks)", p, f.sb.blocksCount))
	}
	for j < n && uint64(le.Uint32(ptrs[4*j:])) == p+(j-i) && p+(j-i) < f.sb.blocksCount {
		j++
	}
	return run{phys: p, n: j - i}, nil
}
