package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// inode is a parsed dinode. It is immutable once made and shared through
// the inode cache.
type inode struct {
	ino          uint64
	pos          int64 // device offset of the dinode
	mode         uint16
	version      uint8
	format       uint8
	aformat      uint8
	uid, gid     uint32
	nlink        uint32
	size         int64
	nblocks      uint64
	nextents     uint64
	anextents    uint64
	forkoff      int // bytes from the literal area to the attribute fork; 0 when none
	flags        uint16
	flags2       uint64
	gen          uint32
	nextUnlinked uint32
	dino         uint64 // di_ino as recorded
	atime        time.Time
	mtime        time.Time
	ctime        time.Time
	crtime       time.Time
	dfork        []byte
	afork        []byte // nil when the inode has no attribute fork
}

func (ip *inode) what(structure string) loc { return loc{s: structure, kind: 'i', n: ip.ino} }

func (ip *inode) typ() uint16 { return ip.mode & sIFMT }

// errFree is returned for a directory entry that leads to a free inode.
var errFree = errors.New("inode is free")

// decodeTime reads an XFS timestamp (8 bytes) in byte order o.
func decodeTime(b []byte, o binary.ByteOrder, bigtime bool) time.Time {
	if bigtime {
		ns := o.Uint64(b)
		return time.Unix(int64(ns/1e9)-bigtimeEpochOffset, int64(ns%1e9)).UTC()
	}
	return time.Unix(int64(int32(o.Uint32(b))), int64(o.Uint32(b[4:]))).UTC()
}

// parseCore decodes the fields of an inode core (on-disk dinode or the
// log's copy of one, which has the same layout in host byte order). b
// holds at least the v3 core.
func parseCore(ip *inode, b []byte, o binary.ByteOrder) {
	ip.mode = o.Uint16(b[diMode:])
	ip.version = b[diVersion]
	ip.format = b[diFormat]
	ip.uid = o.Uint32(b[diUID:])
	ip.gid = o.Uint32(b[diGID:])
	ip.nlink = o.Uint32(b[diNlink:])
	ip.size = int64(o.Uint64(b[diSize:]))
	ip.nblocks = o.Uint64(b[diNblocks:])
	ip.forkoff = int(b[diForkoff]) << 3
	ip.aformat = b[diAformat]
	ip.flags = o.Uint16(b[diFlags:])
	ip.gen = o.Uint32(b[diGen:])
	ip.nextUnlinked = o.Uint32(b[diNextUnlinked:])
	ip.flags2 = o.Uint64(b[diFlags2:])
	ip.dino = o.Uint64(b[diIno:])
	if ip.flags2&diflag2Nrext64 != 0 {
		ip.nextents = o.Uint64(b[diBigNextents:])
		ip.anextents = uint64(o.Uint32(b[diNextents:]))
	} else {
		ip.nextents = uint64(o.Uint32(b[diNextents:]))
		ip.anextents = uint64(o.Uint16(b[diAnextents:]))
	}
	big := ip.flags2&diflag2Bigtime != 0
	ip.atime = decodeTime(b[diAtime:], o, big)
	ip.mtime = decodeTime(b[diMtime:], o, big)
	ip.ctime = decodeTime(b[diCtime:], o, big)
	ip.crtime = decodeTime(b[diCrtime:], o, big)
}

// splitForks sets the fork slices of ip from its literal area lit.
func (ip *inode) splitForks(lit []byte) error {
	if ip.forkoff == 0 {
		ip.dfork, ip.afork = lit, nil
		return nil
	}
	if ip.forkoff >= len(lit) {
		return fmt.Errorf("attribute fork offset %d is past the %d-byte literal area", ip.forkoff, len(lit))
	}
	ip.dfork, ip.afork = lit[:ip.forkoff], lit[ip.forkoff:]
	return nil
}

// getInode reads and checks the live inode ino.
func (f *FS) getInode(ino uint64) (*inode, error) {
	if ip, ok := f.inodes.Get(ino); ok {
		return ip, nil
	}
	ip, err := f.readInode(ino)
	if err != nil {
		return nil, err
	}
	if ip.mode == 0 {
		return nil, &vfs.FormatError{File: ip.what("inode").String(), Offset: ip.pos, Msg: "referenced but free", Err: errFree}
	}
	if err := f.checkInode(ip); err != nil {
		return nil, err
	}
	f.inodes.Put(ino, ip, 1)
	return ip, nil
}

// readInode reads the dinode ino, checking only what is needed to parse
// it (magic, version, its own number, fork offset). Free inodes parse too.
func (f *FS) readInode(ino uint64) (*inode, error) {
	pos, ok := f.inoPos(ino)
	what := loc{s: "inode", kind: 'I', n: ino}
	if !ok {
		return nil, ferr(what, -1, "inode number is outside the filesystem")
	}
	bpos := pos &^ (f.blockSize - 1)
	blk, err := f.meta(bpos, int(f.blockSize), what)
	if err != nil {
		return nil, err
	}
	b := blk[pos-bpos : pos-bpos+int64(f.inodeSize)]
	return f.parseInode(b, ino, pos)
}

// parseInode parses a dinode buffer b (inode size bytes) read at pos.
func (f *FS) parseInode(b []byte, ino uint64, pos int64) (*inode, error) {
	what := loc{s: "inode", kind: 'I', n: ino}
	if len(b) < dinodeV3Core || be.Uint16(b) != dinodeMagic {
		return nil, ferr(what, pos, "no inode magic")
	}
	if b[diVersion] != 3 {
		return nil, ferr(what, pos+diVersion, "inode version %d in a v5 filesystem", b[diVersion])
	}
	ip := &inode{ino: ino, pos: pos}
	parseCore(ip, b, be)
	if ip.dino != ino {
		return nil, ferr(what, pos+diIno, "the inode records number %d", ip.dino)
	}
	if !crcOK(b, diCRC) {
		f.warnf("%s: CRC mismatch, read on", what)
	}
	// The forks are copied: a cached inode must not pin its whole block.
	if err := ip.splitForks(append([]byte(nil), b[dinodeV3Core:]...)); err != nil {
		return nil, ferr(what, pos+diForkoff, "%v", err)
	}
	return ip, nil
}

// checkInode checks the fields of a live inode that the readers rely on.
func (f *FS) checkInode(ip *inode) error {
	what := ip.what("inode")
	if ip.size < 0 {
		return ferr(what, ip.pos+diSize, "negative size %d", ip.size)
	}
	var ok bool
	switch ip.typ() {
	case sIFREG:
		ok = ip.format == fmtExtents || ip.format == fmtBtree
	case sIFDIR, sIFLNK:
		ok = ip.format == fmtLocal || ip.format == fmtExtents || ip.format == fmtBtree
	case sIFCHR, sIFBLK, sIFIFO, sIFSOCK:
		ok = ip.format == fmtDev
	default:
		return ferr(what, ip.pos+diMode, "unknown file type in mode 0%o", ip.mode)
	}
	if !ok {
		return ferr(what, ip.pos+diFormat, "data fork format %d for mode 0%o", ip.format, ip.mode)
	}
	if ip.format == fmtDev && len(ip.dfork) < 4 {
		return ferr(what, ip.pos+diForkoff, "no room for a device number")
	}
	if ip.format == fmtLocal && ip.size > int64(len(ip.dfork)) {
		return ferr(what, ip.pos+diSize, "inline data of %d bytes in a %d-byte fork", ip.size, len(ip.dfork))
	}
	if ip.afork != nil {
		switch ip.aformat {
		case fmtLocal, fmtExtents, fmtBtree:
		default:
			return ferr(what, ip.pos+diAformat, "attribute fork format %d", ip.aformat)
		}
	}
	return nil
}

// rdev decodes the device number of a device inode: XFS keeps the 32-bit
// SysV encoding (14-bit major of which Linux uses 9, 18-bit minor).
func (ip *inode) rdev() (major, minor uint32) {
	if ip.format != fmtDev || len(ip.dfork) < 4 {
		return 0, 0
	}
	d := be.Uint32(ip.dfork)
	return (d >> 18) & 0x1ff, d & 0x3ffff
}

func (ip *inode) stat(name string) *vfs.Stat {
	st := &vfs.Stat{
		Name:  name,
		Mode:  vfs.FromInodeMode(ip.mode),
		UID:   ip.uid,
		GID:   ip.gid,
		Size:  ip.size,
		Nlink: uint64(ip.nlink),
		Ino:   ip.ino,
		Atime: ip.atime,
		Mtime: ip.mtime,
		Ctime: ip.ctime,
		Btime: ip.crtime,
	}
	if t := ip.typ(); t == sIFCHR || t == sIFBLK {
		st.DevMajor, st.DevMinor = ip.rdev()
	}
	return st
}
