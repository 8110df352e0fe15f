package ext4

import (
	"fmt"
	"time"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// inode is what the reader keeps of one inode record. It is immutable once
// made and shared through the inode cache.
type inode struct {
	ino        uint32
	off        int64 // byte offset of the record on the device (-1 for a journal copy)
	mode       uint16
	uid, gid   uint32
	size       uint64
	links      uint16
	flags      uint32
	blocks512  uint64 // i_blocks in 512-byte units
	fileACL    uint64 // external xattr block, 0 when none
	gen        uint32
	dtime      uint32
	extraIsize uint16
	block      [iBlockSize]byte // i_block: extent root, block map, inline data, fast symlink or device number
	atime      time.Time
	mtime      time.Time
	ctime      time.Time
	crtime     time.Time
	hasCrtime  bool
	ibody      []byte // the in-inode xattr area (from the ibody header magic on), nil when none
}

func (in *inode) typ() uint16        { return in.mode & sIFMT }
func (in *inode) isDir() bool        { return in.typ() == sIFDIR }
func (in *inode) isReg() bool        { return in.typ() == sIFREG }
func (in *inode) isSymlink() bool    { return in.typ() == sIFLNK }
func (in *inode) has(fl uint32) bool { return in.flags&fl != 0 }

// parseInode decodes one inode record (raw is the whole record, the
// superblock's inode size). It fails only where the kernel refuses the
// inode as corrupt; ino names it in errors.
func parseInode(sb *superblock, ino uint32, raw []byte, off int64) (*inode, error) {
	if len(raw) < goodOldInode {
		return nil, formatErr("inode", ino, off, fmt.Sprintf("record of %d bytes", len(raw)))
	}
	in := &inode{
		ino:   ino,
		off:   off,
		mode:  le.Uint16(raw[inMode:]),
		uid:   uint32(le.Uint16(raw[inUID:])) | uint32(le.Uint16(raw[inUIDHigh:]))<<16,
		gid:   uint32(le.Uint16(raw[inGID:])) | uint32(le.Uint16(raw[inGIDHigh:]))<<16,
		links: le.Uint16(raw[inLinks:]),
		flags: le.Uint32(raw[inFlags:]),
		gen:   le.Uint32(raw[inGeneration:]),
		dtime: le.Uint32(raw[inDtime:]),
	}
	copy(in.block[:], raw[inBlock:inBlock+iBlockSize])
	in.size = uint64(le.Uint32(raw[inSizeLo:]))
	if sb.has(incompatLargeDir) || in.typ() == sIFREG {
		in.size |= uint64(le.Uint32(raw[inSizeHigh:])) << 32
	}
	if in.size > 1<<62 {
		return nil, formatErr("inode", ino, off+inSizeHigh, fmt.Sprintf("size %d", in.size))
	}
	in.blocks512 = uint64(le.Uint32(raw[inBlocksLo:]))
	if sb.hasRO(roCompatHugeFile) {
		in.blocks512 |= uint64(le.Uint16(raw[inBlocksHi:])) << 32
		if in.has(flagHugeFile) {
			in.blocks512 *= uint64(sb.blockSize / 512)
		}
	}
	in.fileACL = uint64(le.Uint32(raw[inFileACLLo:]))
	if sb.has(incompat64bit) {
		in.fileACL |= uint64(le.Uint16(raw[inFileACLHi:])) << 32
	}
	if len(raw) > goodOldInode {
		in.extraIsize = le.Uint16(raw[inExtraIsize:])
		if goodOldInode+int(in.extraIsize) > len(raw) || in.extraIsize&3 != 0 {
			return nil, formatErr("inode", ino, off+inExtraIsize, fmt.Sprintf("extra size %d in a %d-byte inode", in.extraIsize, len(raw)))
		}
	}
	fits := func(end int) bool { return end <= goodOldInode+int(in.extraIsize) }
	xtime := func(base, extra int) time.Time {
		sec := int64(int32(le.Uint32(raw[base:])))
		var nsec int64
		if fits(extra + 4) {
			x := le.Uint32(raw[extra:])
			sec += int64(x&3) << 32
			nsec = int64(x >> 2)
		}
		return time.Unix(sec, nsec).UTC()
	}
	in.atime = xtime(inAtime, inAtimeExtra)
	in.mtime = xtime(inMtime, inMtimeExtra)
	in.ctime = xtime(inCtime, inCtimeExtra)
	if fits(inCrtime + 4) {
		in.crtime, in.hasCrtime = xtime(inCrtime, inCrtimeExtra), true
	}
	if start := goodOldInode + int(in.extraIsize); len(raw) > goodOldInode && start+4 <= len(raw) && le.Uint32(raw[start:]) == xattrMagic {
		in.ibody = append([]byte(nil), raw[start:]...)
	}
	return in, nil
}

// inodeOffset returns the byte offset of inode ino's record, or -1.
func (f *FS) inodeOffset(ino uint32) int64 {
	if ino == 0 || ino > f.sb.inodesCount {
		return -1
	}
	gd, err := f.group(f.sb.groupOf(ino))
	if err != nil {
		return -1
	}
	return int64(gd.inodeTable)*f.bs + int64(f.sb.indexOf(ino))*int64(f.sb.inodeSize)
}

// inodeRaw returns the raw record of inode ino (a slice of a shared cached
// block: never modify it) and its byte offset.
func (f *FS) inodeRaw(ino uint32) ([]byte, int64, error) {
	sb := f.sb
	if ino == 0 || ino > sb.inodesCount {
		return nil, -1, formatErr("inode", ino, -1, fmt.Sprintf("inode number %d out of range 1..%d", ino, sb.inodesCount))
	}
	gd, err := f.group(sb.groupOf(ino))
	if err != nil {
		return nil, -1, err
	}
	rel := int64(sb.indexOf(ino)) * int64(sb.inodeSize)
	blk := gd.inodeTable + uint64(rel/f.bs)
	b, err := f.readBlock(blk, "inode table", ino)
	if err != nil {
		return nil, -1, err
	}
	o := rel % f.bs
	return b[o : o+int64(sb.inodeSize)], int64(blk)*f.bs + o, nil
}

// inode returns inode ino, through the inode cache. A checksum mismatch is
// a warning; the inode is still read.
func (f *FS) inode(ino uint32) (*inode, error) {
	if in, ok := f.inodes.Get(ino); ok {
		return in, nil
	}
	raw, off, err := f.inodeRaw(ino)
	if err != nil {
		return nil, err
	}
	in, err := parseInode(f.sb, ino, raw, off)
	if err != nil {
		return nil, err
	}
	if f.sb.metadataCsum() && !f.inodeCsumOK(ino, raw, in) && !allZero(raw) {
		f.warnf("ext4 inode %d: offset %d: checksum mismatch", ino, off)
	}
	f.inodes.Put(ino, in, 1)
	return in, nil
}

// allZero reports whether a record was never written (e2fsprogs, too,
// takes an all-zero inode's checksum as valid).
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// inodeCsumOK verifies the metadata_csum checksum of an inode record.
func (f *FS) inodeCsumOK(ino uint32, raw []byte, in *inode) bool {
	var b [4]byte
	le.PutUint32(b[:], ino)
	c := crc32c(f.sb.csumSeed, b[:])
	le.PutUint32(b[:], in.gen)
	c = crc32c(c, b[:])
	zero := []byte{0, 0}
	c = crc32c(c, raw[:inChecksumLo])
	c = crc32c(c, zero)
	c = crc32c(c, raw[inChecksumLo+2:goodOldInode])
	hiFits := false
	if len(raw) > goodOldInode {
		c = crc32c(c, raw[goodOldInode:inChecksumHi])
		next := inChecksumHi
		if goodOldInode+int(in.extraIsize) >= inChecksumHi+2 {
			c = crc32c(c, zero)
			next += 2
			hiFits = true
		}
		c = crc32c(c, raw[next:])
	}
	want := uint32(le.Uint16(raw[inChecksumLo:]))
	if hiFits {
		want |= uint32(le.Uint16(raw[inChecksumHi:])) << 16
		return c == want
	}
	return c&0xFFFF == want
}

// inodeSeed is the checksum seed of the metadata blocks owned by an inode
// (extent blocks, directory blocks).
func (f *FS) inodeSeed(in *inode) uint32 {
	var b [4]byte
	le.PutUint32(b[:], in.ino)
	c := crc32c(f.sb.csumSeed, b[:])
	le.PutUint32(b[:], in.gen)
	return crc32c(c, b[:])
}

// device decodes the device number of a character or block device inode:
// the old 16-bit encoding in i_block[0] when set, else the new one in
// i_block[1].
func (in *inode) device() (major, minor uint32) {
	if old := le.Uint32(in.block[0:]); old != 0 {
		return (old >> 8) & 0xff, old & 0xff
	}
	d := le.Uint32(in.block[4:])
	return (d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00)
}

// stat builds the Stat of an inode under a name.
func (in *inode) stat(name string) *vfs.Stat {
	st := &vfs.Stat{
		Name:  name,
		Mode:  vfs.FromInodeMode(in.mode),
		UID:   in.uid,
		GID:   in.gid,
		Size:  int64(in.size),
		Nlink: uint64(in.links),
		Ino:   uint64(in.ino),
		Atime: in.atime,
		Mtime: in.mtime,
		Ctime: in.ctime,
	}
	if in.hasCrtime {
		st.Btime = in.crtime
	}
	if t := in.typ(); t == sIFCHR || t == sIFBLK {
		st.DevMajor, st.DevMinor = in.device()
	}
	return st
}
