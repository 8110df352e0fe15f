package ext4

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// dirent is one live directory entry.
type dirent struct {
	name  string
	ino   uint32
	ftype uint8
}

// dirIndex is a parsed directory: its live entries sorted by name (without
// "." and ".."), its parent, and the damage met while reading it.
type dirIndex struct {
	ents   []dirent
	parent uint32
	damage []error
}

// MaxDirEntries bounds the entries read from one directory.
const MaxDirEntries = 1 << 22

// maxDirBlocks bounds the blocks read for one directory (a 3-level htree
// of 4 KiB blocks stays well below).
const maxDirBlocks = 1 << 24

// maxDamage bounds the errors kept per directory.
const maxDamage = 16

// ErrEncrypted is returned for names inside an encrypted (fscrypt)
// directory and for the content of encrypted files: without the key they
// are ciphertext.
var ErrEncrypted = errors.New("encrypted (fscrypt) entry: not readable without the key")

// recLen decodes a dirent's rec_len (with 64 KiB blocks, 0 and 65535 mean
// the whole block and the low two bits carry bits 16-17).
func recLen(v uint16, bs int) int {
	if bs < 65536 {
		return int(v)
	}
	if v == 65535 || v == 0 {
		return bs
	}
	return int(v&65532) | int(v&3)<<16
}

// direntVisitor is called for every entry of a directory block in rec_len
// order: its offset in the block, inode, record length, name and type.
type direntVisitor func(off int, ino uint32, rlen int, name []byte, ftype uint8)

// walkDirBlock follows the rec_len chain of one directory block (or inline
// region) of size len(b), checking each record as the kernel does: at
// least 12 bytes, a multiple of 4, room for its name, inside the block,
// an inode number in range. It stops at the first bad record.
func (f *FS) walkDirBlock(b []byte, visit direntVisitor) error {
	off := 0
	for off < len(b) {
		if len(b)-off < direntHeader {
			return fmt.Errorf("offset %d: %d bytes left, short of an entry header", off, len(b)-off)
		}
		ino := le.Uint32(b[off:])
		rlen := recLen(le.Uint16(b[off+4:]), len(b))
		nameLen := int(b[off+6])
		ftype := b[off+7]
		switch {
		case rlen < 12:
			return fmt.Errorf("offset %d: rec_len %d is smaller than an entry", off, rlen)
		case rlen%4 != 0:
			return fmt.Errorf("offset %d: rec_len %d is not a multiple of 4", off, rlen)
		case rlen < direntHeader+nameLen:
			return fmt.Errorf("offset %d: rec_len %d is too small for a %d-byte name", off, rlen, nameLen)
		case rlen > len(b)-off:
			return fmt.Errorf("offset %d: rec_len %d runs past the block", off, rlen)
		case ino > f.sb.inodesCount:
			return fmt.Errorf("offset %d: inode %d out of range", off, ino)
		}
		visit(off, ino, rlen, b[off+direntHeader:off+direntHeader+nameLen], ftype)
		off += rlen
	}
	return nil
}

// isDirTail reports whether the last 12 bytes of a directory block are the
// metadata_csum tail (a fake entry holding the block's checksum).
func isDirTail(b []byte) bool {
	if len(b) < direntTailLen {
		return false
	}
	t := b[len(b)-direntTailLen:]
	return le.Uint32(t) == 0 && le.Uint16(t[4:]) == direntTailLen && t[6] == 0 && t[7] == direntTailFT
}

// dxCountOffset returns where the count/limit header of an htree index
// block sits (32 in the root, after the fake "." and ".." entries and the
// root info; 8 in an interior node, after its one fake empty entry), or 0
// when b is not an index block of directory in.
func dxCountOffset(in *inode, lblk uint64, b []byte) int {
	if !in.has(flagIndex) || len(b) < 40 {
		return 0
	}
	if lblk == 0 {
		if le.Uint16(b[4:]) == 12 && b[0x1D] == 8 {
			return 0x20
		}
		return 0
	}
	if le.Uint32(b) == 0 && recLen(le.Uint16(b[4:]), len(b)) == len(b) && b[6] == 0 {
		return 8
	}
	return 0
}

// checkDirBlock verifies the metadata_csum checksum of a directory block:
// the tail entry of a leaf, or the dx_tail of an htree index block.
func (f *FS) checkDirBlock(in *inode, seed uint32, lblk, phys uint64, b []byte) {
	ok := true
	if co := dxCountOffset(in, lblk, b); co != 0 {
		limit, count := int(le.Uint16(b[co:])), int(le.Uint16(b[co+2:]))
		tail := co + 8*limit
		if count > limit || tail+8 > len(b) {
			return
		}
		c := crc32c(seed, b[:co+8*count])
		c = crc32c(c, b[tail:tail+4])
		c = crc32c(c, []byte{0, 0, 0, 0})
		ok = c == le.Uint32(b[tail+4:])
	} else if isDirTail(b) {
		ok = crc32c(seed, b[:len(b)-direntTailLen]) == le.Uint32(b[len(b)-4:])
	}
	if !ok {
		f.warnf("ext4 directory (inode %d): offset %d: checksum mismatch", in.ino, int64(phys)*f.bs)
	}
}

// dirBlocks calls fn for each block of a directory, in logical order,
// with its physical block number (holes are skipped). A block that cannot
// be mapped or read is given to damaged, when not nil, and the walk goes
// on with the next; otherwise its error ends the walk.
func (f *FS) dirBlocks(in *inode, rd blockReader, damaged func(error), fn func(lblk, phys uint64, b []byte) error) error {
	if rd == nil {
		rd = f.readBlock
	}
	nblk := (in.size + uint64(f.bs) - 1) / uint64(f.bs)
	if nblk > maxDirBlocks || nblk > f.sb.blocksCount || nblk > f.deviceBlocks() {
		return formatErr("directory", in.ino, in.off+inSizeLo, fmt.Sprintf("size %d is more than %d blocks", in.size, maxDirBlocks))
	}
	for lblk := uint64(0); lblk < nblk; {
		r, err := f.mapBlock(in, lblk, rd)
		if err != nil {
			if damaged == nil {
				return err
			}
			damaged(err)
			lblk++
			continue
		}
		n := min(r.n, nblk-lblk)
		if r.phys != 0 && !r.uninit {
			for i := uint64(0); i < n; i++ {
				b, err := rd(r.phys+i, "directory", in.ino)
				if err != nil {
					if damaged == nil {
						return err
					}
					damaged(err)
					continue
				}
				if err := fn(lblk+i, r.phys+i, b); err != nil {
					return err
				}
			}
		}
		lblk += n
	}
	return nil
}

// dir returns the parsed live entries of a directory inode, through the
// directory cache. Damaged blocks are skipped (and kept in damage); only a
// directory that cannot be read at all is an error.
func (f *FS) dir(in *inode) (*dirIndex, error) {
	if d, ok := f.dirs.Get(in.ino); ok {
		return d, nil
	}
	if in.has(flagEncrypt) {
		return nil, ErrEncrypted
	}
	d := &dirIndex{}
	add := func(ino uint32, name []byte, ftype uint8) error {
		if ino == 0 || len(name) == 0 {
			return nil
		}
		if string(name) == "." {
			return nil
		}
		if string(name) == ".." {
			if d.parent == 0 {
				d.parent = ino
			}
			return nil
		}
		if bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0 {
			d.addDamage(fmt.Errorf("entry %q names inode %d with a '/' or NUL in its name", name, ino))
			return nil
		}
		if len(d.ents) >= MaxDirEntries {
			return fmt.Errorf("more than %d entries", MaxDirEntries)
		}
		d.ents = append(d.ents, dirent{name: string(name), ino: ino, ftype: ftype})
		return nil
	}
	var stop error
	visit := func(_ int, ino uint32, _ int, name []byte, ftype uint8) {
		if stop == nil {
			stop = add(ino, name, ftype)
		}
	}
	if in.has(flagInlineData) {
		data, err := f.inlineDirData(in)
		if err != nil {
			return nil, err
		}
		d.parent = le.Uint32(data[0:])
		if err := f.walkDirBlock(data[4:iBlockSize], visit); err != nil {
			d.addDamage(formatErr("inline directory", in.ino, in.off+inBlock, err.Error()))
		}
		if len(data) > iBlockSize {
			if err := f.walkDirBlock(data[iBlockSize:], visit); err != nil {
				d.addDamage(formatErr("inline directory", in.ino, in.off, "system.data: "+err.Error()))
			}
		}
	} else {
		seed := uint32(0)
		if f.sb.metadataCsum() {
			seed = f.inodeSeed(in)
		}
		var firstBad error
		read := 0
		damaged := func(err error) {
			if firstBad == nil {
				firstBad = err
			}
			d.addDamage(err)
		}
		err := f.dirBlocks(in, nil, damaged, func(lblk, phys uint64, b []byte) error {
			read++
			if f.sb.metadataCsum() {
				f.checkDirBlock(in, seed, lblk, phys, b)
			}
			if err := f.walkDirBlock(b, visit); err != nil {
				d.addDamage(formatErr("directory", in.ino, int64(phys)*f.bs, fmt.Sprintf("block %d: %v", lblk, err)))
			}
			return stop
		})
		if err == nil && read == 0 {
			err = firstBad // not one block could be read: the directory cannot be
		}
		if err != nil {
			if len(d.ents) == 0 && (read == 0 || len(d.damage) == 0) {
				return nil, err
			}
			d.addDamage(err)
		}
	}
	if stop != nil {
		d.addDamage(formatErr("directory", in.ino, in.off, stop.Error()))
	}
	sort.SliceStable(d.ents, func(i, j int) bool { return d.ents[i].name < d.ents[j].name }) // stable: the first of a name twice is kept
	// A damaged directory may name an entry twice; keep the first.
	if len(d.ents) > 1 {
		out := d.ents[:1]
		for _, e := range d.ents[1:] {
			if e.name == out[len(out)-1].name {
				d.addDamage(formatErr("directory", in.ino, in.off, fmt.Sprintf("name %q appears twice", e.name)))
				continue
			}
			out = append(out, e)
		}
		d.ents = out
	}
	for _, e := range d.damage {
		f.warnErr(e)
	}
	f.dirs.Put(in.ino, d, int64(len(d.ents)+1))
	return d, nil
}

func (d *dirIndex) addDamage(err error) {
	if len(d.damage) < maxDamage {
		d.damage = append(d.damage, err)
	}
}

// inlineDirData returns the inline content of a directory: 4 bytes of
// parent inode and entries in i_block, more entries in system.data.
func (f *FS) inlineDirData(in *inode) ([]byte, error) {
	data := append([]byte(nil), in.block[:]...)
	var total int
	ents, err := f.ibodyXattrs(in, &total)
	if err != nil {
		return nil, err
	}
	return append(data, inlineData(ents)...), nil
}

// lookup finds name in a directory: an exact match, or in a casefolded
// directory a case-insensitive one.
func (d *dirIndex) lookup(name string, casefold bool) (dirent, bool) {
	i := sort.Search(len(d.ents), func(i int) bool { return d.ents[i].name >= name })
	if i < len(d.ents) && d.ents[i].name == name {
		return d.ents[i], true
	}
	if casefold {
		for _, e := range d.ents {
			if strings.EqualFold(e.name, name) {
				return e, true
			}
		}
	}
	return dirent{}, false
}
