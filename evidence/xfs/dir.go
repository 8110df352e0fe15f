package xfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"sort"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// direntFunc receives one directory entry; name is only valid during the
// call.
type direntFunc func(name []byte, ino uint64, ftype uint8) error

// errStop ends an iteration early without error.
var errStop = errors.New("stop")

// dirEach calls fn for each live entry of directory ip, "." and ".." left
// out, in on-disk order.
func (f *FS) dirEach(ip *inode, fn direntFunc) error {
	if ip.format == fmtLocal {
		return f.sfEach(ip, fn)
	}
	fk, err := f.dataFork(ip)
	if err != nil {
		return err
	}
	return f.dataBlocksEach(ip, fk, func(b []byte, pos int64, end int) error {
		return f.blockEntries(ip, b, pos, end, func(_ int, name []byte, ino uint64, ft uint8) error {
			if isDot(name) {
				return nil
			}
			return fn(name, ino, ft)
		})
	})
}

func isDot(name []byte) bool {
	return len(name) == 1 && name[0] == '.' || len(name) == 2 && name[0] == '.' && name[1] == '.'
}

// validName reports whether a name read from disk can be a path component.
func validName(name []byte) bool {
	return len(name) > 0 && bytes.IndexByte(name, '/') < 0 && bytes.IndexByte(name, 0) < 0 && !isDot(name)
}

// sfEach walks a shortform directory (entries inline in the data fork).
func (f *FS) sfEach(ip *inode, fn direntFunc) error {
	what := ip.what("shortform directory")
	b := ip.dfork[:ip.size]
	if len(b) < 6 {
		return ferr(what, ip.pos+dinodeV3Core, "%d bytes cannot hold a header", len(b))
	}
	count, i8 := int(b[0]), b[1]
	inoLen := 4
	if i8 > 0 {
		inoLen = 8
	}
	p := 2 + inoLen
	if p > len(b) {
		return ferr(what, ip.pos+dinodeV3Core, "header past the %d-byte fork", len(b))
	}
	ftLen := 0
	if f.ftype {
		ftLen = 1
	}
	for i := 0; i < count; i++ {
		at := ip.pos + dinodeV3Core + int64(p)
		if p+3 > len(b) {
			return ferr(what, at, "entry %d of %d past the end of the %d-byte directory", i, count, len(b))
		}
		nl := int(b[p])
		if nl == 0 || p+3+nl+ftLen+inoLen > len(b) {
			return ferr(what, at, "entry %d (name of %d bytes) past the end of the directory", i, nl)
		}
		p += 3
		name := b[p : p+nl]
		p += nl
		var ft uint8
		if f.ftype {
			ft = b[p]
			p++
		}
		var ino uint64
		if inoLen == 8 {
			ino = be.Uint64(b[p:])
		} else {
			ino = uint64(be.Uint32(b[p:]))
		}
		p += inoLen
		if !validName(name) {
			f.warnf("%s: offset %d: entry name %q skipped", what, at, name)
			continue
		}
		if err := fn(name, ino, ft); err != nil {
			return err
		}
	}
	return nil
}

// dirBlockFunc receives one directory data block, its device offset and
// the end of its entry area.
type dirBlockFunc func(b []byte, pos int64, end int) error

// dataBlocksEach calls fn for each data block of a block, leaf, node or
// btree directory: the directory blocks mapped below the leaf space, and
// below di_size.
func (f *FS) dataBlocksEach(ip *inode, fk *fork, fn dirBlockFunc) error {
	if uint64(ip.size) > leafSpaceOff {
		return ferr(ip.what("directory"), ip.pos+diSize, "data space of %d bytes", ip.size)
	}
	limit := min(f.leafFSB, (uint64(ip.size)+uint64(f.blockSize)-1)>>f.blockLog)
	n := 0
	// past the data space: its own sentinel, so that fn's errStop (a name
	// found) reaches the caller
	errPast := errors.New("past the data space")
	err := fk.each(func(e extent) error {
		if e.off >= limit {
			return errPast
		}
		for lb := (e.off + f.dirFSBs - 1) &^ (f.dirFSBs - 1); lb < e.end() && lb < limit; lb += f.dirFSBs {
			if n++; n > maxDirBlocks {
				return ferr(ip.what("directory"), ip.pos, "more than %d data blocks", maxDirBlocks)
			}
			b, pos, end, err := f.dirDataBlock(ip, fk, lb)
			if err != nil {
				return err
			}
			if err := fn(b, pos, end); err != nil {
				return err
			}
		}
		return nil
	})
	if err == errPast {
		return nil
	}
	return err
}

// maxDirBlocks bounds the data blocks of one directory (32 GiB of 4 KiB
// blocks is the format's own limit).
const maxDirBlocks = 1 << 23

// dirDataBlock reads and checks the directory data block at logical fs
// block lb; end is where its entries stop (the leaf of a single-block
// directory, or the block's end).
func (f *FS) dirDataBlock(ip *inode, fk *fork, lb uint64) ([]byte, int64, int, error) {
	what := ip.what("directory block")
	b, pos, err := fk.readBlocks(lb, f.dirFSBs, 4)
	if err != nil {
		return nil, -1, 0, err
	}
	if err := f.checkHdr(ip, b, pos, 40, 4, 8, what); err != nil {
		return nil, pos, 0, err
	}
	switch be.Uint32(b) {
	case dir3DataMagic:
		return b, pos, len(b), nil
	case dir3BlockMagic:
		count := be.Uint32(b[len(b)-8:])
		if uint64(count) > uint64(len(b)-dir3DataHdr-8)/8 {
			return nil, pos, 0, ferr(what, pos+int64(len(b))-8, "%d leaf entries in a single-block directory", count)
		}
		return b, pos, len(b) - 8 - int(count)*8, nil
	}
	return nil, pos, 0, ferr(what, pos, "no directory data block magic (0x%08x)", be.Uint32(b))
}

// checkHdr checks the self-describing part of a v5 metadata block header:
// the owner at ownerOff, the CRC at crcOff and the disk address at
// blknoOff.
func (f *FS) checkHdr(ip *inode, b []byte, pos int64, ownerOff, crcOff, blknoOff int, what loc) error {
	if own := be.Uint64(b[ownerOff:]); own != ip.ino {
		return ferr(what, pos+int64(ownerOff), "block belongs to inode %d", own)
	}
	if d := be.Uint64(b[blknoOff:]); d != uint64(pos>>9) {
		return ferr(what, pos+int64(blknoOff), "block records disk address %d, read at %d", d, pos>>9)
	}
	return nil
}

// dataEntSize is the size of a data entry with a name of nl bytes.
func (f *FS) dataEntSize(nl int) int {
	n := 8 + 1 + nl + 2
	if f.ftype {
		n++
	}
	return (n + 7) &^ 7
}

// blockEntries walks the entries of a directory data block up to end;
// fn gets each entry's offset in the block.
func (f *FS) blockEntries(ip *inode, b []byte, pos int64, end int, fn func(off int, name []byte, ino uint64, ft uint8) error) error {
	what := ip.what("directory block")
	for p := dir3DataHdr; p < end; {
		if p+8 > end {
			return ferr(what, pos+int64(p), "entry area ends inside a record")
		}
		if be.Uint16(b[p:]) == dirDataFreeTag {
			l := int(be.Uint16(b[p+2:]))
			if l < 8 || l%8 != 0 || p+l > end {
				return ferr(what, pos+int64(p), "free region of %d bytes", l)
			}
			p += l
			continue
		}
		if p+16 > end {
			return ferr(what, pos+int64(p), "entry area ends inside an entry")
		}
		nl := int(b[p+8])
		sz := f.dataEntSize(nl)
		if nl == 0 || p+sz > end {
			return ferr(what, pos+int64(p), "entry with a %d-byte name runs past the entry area", nl)
		}
		name := b[p+9 : p+9+nl]
		var ft uint8
		if f.ftype {
			ft = b[p+9+nl]
		}
		if !validName(name) && !isDot(name) {
			f.warnf("%s: offset %d: entry name %q skipped", what, pos+int64(p), name)
		} else if err := fn(p, name, be.Uint64(b[p:]), ft); err != nil {
			return err
		}
		p += sz
	}
	return nil
}

// daHash is the directory and attribute name hash (xfs_da_hashname).
func daHash(name []byte) uint32 {
	var h uint32
	for ; len(name) >= 4; name = name[4:] {
		h = uint32(name[0])<<21 ^ uint32(name[1])<<14 ^ uint32(name[2])<<7 ^ uint32(name[3]) ^ bits.RotateLeft32(h, 7*4)
	}
	switch len(name) {
	case 3:
		return uint32(name[0])<<14 ^ uint32(name[1])<<7 ^ uint32(name[2]) ^ bits.RotateLeft32(h, 7*3)
	case 2:
		return uint32(name[0])<<7 ^ uint32(name[1]) ^ bits.RotateLeft32(h, 7*2)
	case 1:
		return uint32(name[0]) ^ bits.RotateLeft32(h, 7)
	}
	return h
}

// dirLookup finds name in directory ip. A missing name is fs.ErrNotExist.
// Block, leaf and node directories are searched through their hash index;
// where the index cannot be read the data blocks are scanned instead,
// once per directory (see scannedDir).
func (f *FS) dirLookup(ip *inode, name string) (uint64, error) {
	if ip.format == fmtLocal {
		return f.scanLookup(ip, name) // in the inode: small
	}
	if !f.borg {
		ino, err := f.hashLookup(ip, []byte(name))
		var fe *vfs.FormatError
		if err == nil || !errors.As(err, &fe) {
			return ino, err
		}
		f.warnf("%v; scanning the directory's data blocks instead", err)
	}
	if ents, ok := f.scannedDir(ip); ok {
		i := sort.Search(len(ents), func(i int) bool { return ents[i].name >= name })
		if i < len(ents) && ents[i].name == name {
			return ents[i].ino, nil
		}
		return 0, fs.ErrNotExist
	}
	return f.scanLookup(ip, name)
}

// scanLookup finds name by reading the directory's entries in order.
func (f *FS) scanLookup(ip *inode, name string) (uint64, error) {
	var found uint64
	err := f.dirEach(ip, func(n []byte, ino uint64, _ uint8) error {
		if string(n) == name {
			found = ino
			return errStop
		}
		return nil
	})
	if err == errStop {
		return found, nil
	}
	if err != nil {
		return 0, err
	}
	return 0, fs.ErrNotExist
}

// scannedDir returns the entries of a directory searched without its hash
// index, sorted by name (stable: of two entries with one name, the first
// in the directory comes first, as a scan finds it), reading them once
// for the last such directory: looking up each of its names by a scan of
// its own would make a walk of it quadratic. ok is false when the
// directory cannot be read whole (a damaged block) or is too large to
// keep (maxScannedEntries, maxScannedNames): the caller scans, which may
// still find a name before the damage. A directory found so is
// remembered, so that it is not read whole again for every lookup.
func (f *FS) scannedDir(ip *inode) (ents []dirent, ok bool) {
	f.scanMu.Lock()
	defer f.scanMu.Unlock()
	switch {
	case f.scanned.ents != nil && f.scanned.ino == ip.ino:
		return f.scanned.ents, true
	case f.scanned.refused && f.scanned.refusedIno == ip.ino:
		return nil, false
	}
	out, err := f.dirNames(ip)
	names := 0
	for _, e := range out {
		names += len(e.name)
	}
	if err != nil || len(out) > maxScannedEntries || names > maxScannedNames {
		f.scanned.refused, f.scanned.refusedIno = true, ip.ino
		return nil, false
	}
	if out == nil {
		out = []dirent{}
	}
	f.scanned.ino, f.scanned.ents = ip.ino, out
	f.scanned.n++
	return out, true
}

// Bounds on the directory scannedDir keeps: past them, each lookup scans.
const (
	maxScannedEntries = 1 << 20
	maxScannedNames   = 64 << 20 // bytes of names
)

func (f *FS) hashLookup(ip *inode, name []byte) (uint64, error) {
	fk, err := f.dataFork(ip)
	if err != nil {
		return 0, err
	}
	h := daHash(name)
	b0, pos0, _, err := f.dirDataBlock(ip, fk, 0)
	if err == nil && be.Uint32(b0) == dir3BlockMagic {
		count := int(be.Uint32(b0[len(b0)-8:]))
		ents := b0[len(b0)-8-count*8 : len(b0)-8]
		ino, found, _, err := f.searchLeaf(ip, fk, ents, h, name, pos0)
		if err != nil || found {
			return ino, err
		}
		return 0, fs.ErrNotExist
	}
	// Leaf or node directory: the index starts at the leaf space.
	lb := f.leafFSB
	what := ip.what("directory leaf")
	for depth := 0; ; depth++ {
		if depth > daMaxDepth {
			return 0, ferr(what, -1, "index deeper than %d levels", daMaxDepth)
		}
		b, pos, err := fk.readBlocks(lb, f.dirFSBs, 12)
		if err != nil {
			return 0, err
		}
		if err := f.checkHdr(ip, b, pos, 48, 12, 16, what); err != nil {
			return 0, err
		}
		switch magic := be.Uint16(b[8:]); magic {
		case dir3Leaf1Magic, dir3LeafNMagic:
			for hops := 0; ; hops++ {
				count := int(be.Uint16(b[da3BlkinfoLen:]))
				if count > (len(b)-dir3LeafHdr)/8 {
					return 0, ferr(what, pos+da3BlkinfoLen, "%d entries in a leaf block", count)
				}
				ino, found, more, err := f.searchLeaf(ip, fk, b[dir3LeafHdr:dir3LeafHdr+count*8], h, name, pos)
				if err != nil || found {
					return ino, err
				}
				forw := uint64(be.Uint32(b))
				if !more || magic != dir3LeafNMagic || forw == 0 || hops > 64 {
					return 0, fs.ErrNotExist
				}
				if b, pos, err = fk.readBlocks(forw, f.dirFSBs, 12); err != nil {
					return 0, err
				}
				if err := f.checkHdr(ip, b, pos, 48, 12, 16, what); err != nil {
					return 0, err
				}
				if be.Uint16(b[8:]) != dir3LeafNMagic {
					return 0, ferr(what, pos+8, "sibling is not a leaf block")
				}
			}
		case da3NodeMagic:
			count := int(be.Uint16(b[da3BlkinfoLen:]))
			if count < 1 || count > (len(b)-da3NodeHdr)/8 {
				return 0, ferr(what, pos+da3BlkinfoLen, "%d entries in a node block", count)
			}
			ents := b[da3NodeHdr : da3NodeHdr+count*8]
			i := sort.Search(count, func(i int) bool { return be.Uint32(ents[i*8:]) >= h })
			if i == count {
				i = count - 1
			}
			lb = uint64(be.Uint32(ents[i*8+4:]))
			if lb < f.leafFSB {
				return 0, ferr(what, pos+da3NodeHdr+int64(i*8), "node points at block %d in the data space", lb)
			}
		default:
			return 0, ferr(what, pos+8, "no leaf or node magic (0x%04x)", magic)
		}
	}
}

// searchLeaf looks for name among the (hash, address) entries of a leaf;
// more is true when the run of equal hashes reaches the end of ents.
func (f *FS) searchLeaf(ip *inode, fk *fork, ents []byte, h uint32, name []byte, pos int64) (ino uint64, found, more bool, err error) {
	n := len(ents) / 8
	i := sort.Search(n, func(i int) bool { return be.Uint32(ents[i*8:]) >= h })
	for ; i < n && be.Uint32(ents[i*8:]) == h; i++ {
		addr := be.Uint32(ents[i*8+4:])
		if addr == 0 {
			continue // stale
		}
		ino, ok, err := f.entryAt(ip, fk, uint64(addr)<<3, name)
		if err != nil {
			return 0, false, false, err
		}
		if ok {
			return ino, true, false, nil
		}
	}
	return 0, false, i == n, nil
}

// entryAt reads the data entry at byte address a of the directory and
// compares its name with name.
func (f *FS) entryAt(ip *inode, fk *fork, a uint64, name []byte) (uint64, bool, error) {
	what := ip.what("directory leaf")
	db := a / uint64(f.dirBlkSize)
	off := int(a % uint64(f.dirBlkSize))
	lb := db * f.dirFSBs
	if lb >= f.leafFSB {
		return 0, false, ferr(what, -1, "leaf entry points at %d, past the data space", a)
	}
	b, pos, end, err := f.dirDataBlock(ip, fk, lb)
	if err != nil {
		return 0, false, err
	}
	if off < dir3DataHdr || off+16 > end || be.Uint16(b[off:]) == dirDataFreeTag {
		return 0, false, ferr(what, pos+int64(off), "leaf entry points at no data entry")
	}
	nl := int(b[off+8])
	if off+f.dataEntSize(nl) > end {
		return 0, false, ferr(what, pos+int64(off), "data entry runs past its block")
	}
	if !bytes.Equal(b[off+9:off+9+nl], name) {
		return 0, false, nil
	}
	return be.Uint64(b[off:]), true, nil
}

// dirParent returns the inode number a directory names as its parent
// (its ".." entry).
func (f *FS) dirParent(ip *inode) (uint64, error) {
	if ip.format == fmtLocal {
		b := ip.dfork[:ip.size]
		if len(b) < 6 {
			return 0, ferr(ip.what("shortform directory"), ip.pos+dinodeV3Core, "no header")
		}
		if b[1] > 0 {
			if len(b) < 10 {
				return 0, ferr(ip.what("shortform directory"), ip.pos+dinodeV3Core, "no header")
			}
			return be.Uint64(b[2:]), nil
		}
		return uint64(be.Uint32(b[2:])), nil
	}
	fk, err := f.dataFork(ip)
	if err != nil {
		return 0, err
	}
	b, pos, end, err := f.dirDataBlock(ip, fk, 0)
	if err != nil {
		return 0, err
	}
	var parent uint64
	err = f.blockEntries(ip, b, pos, end, func(_ int, name []byte, ino uint64, _ uint8) error {
		if string(name) == ".." {
			parent = ino
			return errStop
		}
		return nil
	})
	if err == errStop {
		return parent, nil
	}
	if err == nil {
		err = ferr(ip.what("directory block"), pos, "no \"..\" entry")
	}
	return 0, err
}

// dirNames lists the entries of a directory (sorted by name), bounded by
// maxDirEntries.
func (f *FS) dirNames(ip *inode) ([]dirent, error) {
	var out []dirent
	err := f.dirEach(ip, func(name []byte, ino uint64, ft uint8) error {
		if len(out) >= maxDirEntries {
			return fmt.Errorf("more than %d entries", maxDirEntries)
		}
		out = append(out, dirent{name: string(name), ino: ino, ftype: ft})
		return nil
	})
	// stable: of two entries with one name, the first in the directory
	// comes first, as a scan finds it
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, err
}

type dirent struct {
	name  string
	ino   uint64
	ftype uint8
}

// maxDirEntries bounds the entries ReadDir returns for one directory.
const maxDirEntries = 1 << 22
