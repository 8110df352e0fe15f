package xfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"strings"
	"sync"

	"github.com/deadnode/deadnode/evidence/internal/lru"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/ptr"
)

var be = binary.BigEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options tune Open. The zero value is usable.
type Options struct {
	// Name describes the filesystem in messages and String (the host path
	// of the image, a partition of it). Default "xfs".
	Name string
	// CacheBytes bounds the metadata block cache (default 32 MiB).
	CacheBytes int64
	// InodeCache bounds the parsed inodes kept (default 16384).
	InodeCache int
}

// Info is what the superblock says of the filesystem.
type Info struct {
	Label      string   `json:"label"`
	UUID       string   `json:"uuid"`
	BlockSize  int      `json:"block_size"`
	Blocks     uint64   `json:"blocks"`
	Size       int64    `json:"size"`
	InodeSize  int      `json:"inode_size"`
	AGCount    uint32   `json:"ag_count"`
	DirBlock   int      `json:"dir_block_size"`
	Features   []string `json:"features"`
	RootInode  uint64   `json:"root_inode"`
	Inodes     uint64   `json:"inodes"`
	FreeBlocks uint64   `json:"free_blocks"`
}

// FS is a read-only XFS filesystem read through an io.ReaderAt. It is a
// vfs.Source and a vfs.Recoverer, safe for concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	name string
	info Info

	blockSize  int64
	blockLog   uint
	sectSize   int
	agBlocks   uint64
	agBlkLog   uint
	agCount    uint64
	dblocks    uint64
	inodeSize  int
	inoPBLog   uint
	dirBlkSize int
	dirFSBs    uint64 // fs blocks per directory block
	leafFSB    uint64 // first fs block of the directory leaf space
	rootIno    uint64
	logStart   uint64
	logBlocks  uint64
	uuid       [16]byte
	metaUUID   [16]byte
	ftype      bool
	borg       bool // ASCII case-insensitive names
	sparseIno  bool
	incompat   uint32

	blocks *lru.Cache[blockKey, []byte]
	inodes *lru.Cache[uint64, *inode]
	dirs   *lru.Cache[string, uint64] // resolved directory paths

	warnMu   sync.Mutex
	warnings []string
	warnSeen map[string]bool

	scanMu  sync.Mutex
	scanned struct { // the last directory looked up without its hash index
		ino  uint64
		ents []dirent // sorted by name; nil when none
		n    int      // directories read so (for tests)
		// refusedIno could not be read whole, or was too large to keep
		refused    bool
		refusedIno uint64
	}
}

var (
	_ vfs.Source    = (*FS)(nil)
	_ vfs.Recoverer = (*FS)(nil)
)

// maxWarnings bounds the warnings an FS keeps.
const maxWarnings = 1000

// Detect reports whether r starts with an XFS superblock magic.
func Detect(r io.ReaderAt) bool {
	var m [4]byte
	if _, err := r.ReadAt(m[:], 0); err != nil {
		return false
	}
	return be.Uint32(m[:]) == sbMagic
}

// Open reads the superblock of the XFS filesystem held by r (size bytes)
// and returns it ready to read. Only version 5 (CRC) filesystems are read;
// version 4 is refused.
func Open(r io.ReaderAt, size int64, opt *Options) (_ *FS, err error) {
	defer contain("xfs", &err)
	o := ptr.Value(opt)
	if o.Name == "" {
		o.Name = "xfs"
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 32 << 20
	}
	if o.InodeCache <= 0 {
		o.InodeCache = 16384
	}
	f := &FS{r: r, size: size, name: o.Name}
	if err := f.readSuperblock(); err != nil {
		return nil, err
	}
	f.blocks = lru.New[blockKey, []byte](o.CacheBytes)
	f.inodes = lru.New[uint64, *inode](int64(o.InodeCache))
	f.dirs = lru.New[string, uint64](4096)
	return f, nil
}

func sbErr(off int64, format string, args ...any) error {
	return &vfs.FormatError{File: "xfs superblock", Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func (f *FS) readSuperblock() error {
	if f.size < 512 {
		return sbErr(0, "device of %d bytes is too small for XFS", f.size)
	}
	b := make([]byte, 512)
	if _, err := f.r.ReadAt(b, 0); err != nil && !(err == io.EOF && f.size >= 512) {
		return &vfs.FormatError{File: "xfs superblock", Offset: 0, Msg: "read", Err: err}
	}
	if be.Uint32(b) != sbMagic {
		return sbErr(0, "no XFS superblock magic")
	}
	ver := be.Uint16(b[sbVersionnum:]) & versionNumMask
	switch {
	case ver == 4:
		return sbErr(sbVersionnum, "XFS version 4 (no metadata CRCs) is not supported; only version 5 filesystems are read")
	case ver != 5:
		return sbErr(sbVersionnum, "unknown XFS superblock version %d", ver)
	}
	bs := be.Uint32(b[sbBlocksize:])
	blog := b[sbBlocklog]
	if bs < 512 || bs > 65536 || bs&(bs-1) != 0 || uint32(1)<<blog != bs {
		return sbErr(sbBlocksize, "bad block size %d (log %d)", bs, blog)
	}
	ss := be.Uint16(b[sbSectsize:])
	if ss < 512 || ss > 32768 || ss&(ss-1) != 0 || uint16(1)<<b[sbSectlog] != ss || uint32(ss) > bs {
		return sbErr(sbSectsize, "bad sector size %d", ss)
	}
	sb := make([]byte, ss)
	if ss > 512 {
		if _, err := f.r.ReadAt(sb, 0); err != nil {
			return &vfs.FormatError{File: "xfs superblock", Offset: 0, Msg: "read", Err: err}
		}
	} else {
		copy(sb, b)
	}
	isz := be.Uint16(sb[sbInodesize:])
	if isz < 512 || isz > 2048 || isz&(isz-1) != 0 || uint16(1)<<sb[sbInodelog] != isz {
		return sbErr(sbInodesize, "bad inode size %d for a v5 filesystem", isz)
	}
	if uint32(isz) > bs || uint32(sb[sbInopblog]) != uint32(blog)-uint32(sb[sbInodelog]) ||
		uint32(be.Uint16(sb[sbInopblock:])) != bs/uint32(isz) {
		return sbErr(sbInopblock, "inodes per block %d (log %d) do not match block size %d and inode size %d",
			be.Uint16(sb[sbInopblock:]), sb[sbInopblog], bs, isz)
	}
	agb := be.Uint32(sb[sbAgblocks:])
	agc := be.Uint32(sb[sbAgcount:])
	agblog := sb[sbAgblklog]
	if agb < 64 || agblog > 31 || uint64(agb) > uint64(1)<<agblog || (agblog > 0 && uint64(agb) <= uint64(1)<<(agblog-1)) {
		return sbErr(sbAgblocks, "bad AG size %d blocks (log %d)", agb, agblog)
	}
	if agc == 0 || agc > 1<<20 {
		return sbErr(sbAgcount, "bad AG count %d", agc)
	}
	if uint(agblog)+uint(sb[sbInopblog]) > 32 {
		// inode numbers within an AG are 32-bit
		return sbErr(sbAgblklog, "AG block log %d with %d inodes per block overflows AG inode numbers", agblog, sb[sbInopblock])
	}
	db := be.Uint64(sb[sbDblocks:])
	if db == 0 || db > uint64(agc)*uint64(agb) || db <= uint64(agc-1)*uint64(agb) {
		return sbErr(sbDblocks, "%d data blocks do not fit %d AGs of %d blocks", db, agc, agb)
	}
	if bits.Len64(db)+int(blog) > 62 {
		return sbErr(sbDblocks, "filesystem of %d blocks of %d bytes is too large", db, bs)
	}
	dirlog := sb[sbDirblklog]
	if dirlog > 16 || uint64(bs)<<dirlog > 65536 {
		return sbErr(sbDirblklog, "directory block of %d bytes", uint64(bs)<<dirlog)
	}
	f.incompat = be.Uint32(sb[sbFeatIncompat:])
	if unk := f.incompat &^ incompatKnown; unk != 0 {
		return sbErr(sbFeatIncompat, "unknown incompatible features 0x%x", unk)
	}
	if !crcOK(sb, sbCRC) {
		f.warnf("xfs superblock: CRC mismatch, read on")
	}
	f.blockSize, f.blockLog = int64(bs), uint(blog)
	f.sectSize = int(ss)
	f.agBlocks, f.agBlkLog, f.agCount = uint64(agb), uint(agblog), uint64(agc)
	f.dblocks = db
	f.inodeSize, f.inoPBLog = int(isz), uint(sb[sbInopblog])
	f.dirBlkSize = int(bs) << dirlog
	f.dirFSBs = 1 << dirlog
	f.leafFSB = leafSpaceOff >> blog
	f.rootIno = be.Uint64(sb[sbRootino:])
	f.logStart = be.Uint64(sb[sbLogstart:])
	f.logBlocks = uint64(be.Uint32(sb[sbLogblocks:]))
	copy(f.uuid[:], sb[sbUUID:])
	copy(f.metaUUID[:], sb[sbMetaUUID:])
	if f.incompat&incompatMetaUUID == 0 {
		f.metaUUID = f.uuid
	}
	f.ftype = f.incompat&incompatFtype != 0
	f.sparseIno = f.incompat&incompatSpinodes != 0
	f.borg = be.Uint16(sb[sbVersionnum:])&versionBorgBit != 0
	if _, ok := f.inoPos(f.rootIno); !ok {
		return sbErr(sbRootino, "root inode number %d is outside the filesystem", f.rootIno)
	}
	if sb[sbInprogress] != 0 {
		f.warnf("xfs superblock: mkfs did not finish (sb_inprogress set)")
	}
	if f.incompat&incompatNeedsRep != 0 {
		f.warnf("xfs superblock: the filesystem is marked as needing xfs_repair")
	}
	if int64(db)<<blog > f.size {
		f.warnf("xfs superblock: the filesystem has %d bytes but the device only %d (truncated image?); reads past the end fail", int64(db)<<blog, f.size)
	}
	f.info = Info{
		Label:      strings.TrimRight(string(sb[sbFname:sbFname+12]), "\x00"),
		UUID:       uuidString(f.uuid),
		BlockSize:  int(bs),
		Blocks:     db,
		Size:       int64(db) << blog,
		InodeSize:  int(isz),
		AGCount:    agc,
		DirBlock:   f.dirBlkSize,
		Features:   featureNames(be.Uint32(sb[sbFeatROCompat:]), f.incompat, f.borg),
		RootInode:  f.rootIno,
		Inodes:     be.Uint64(sb[sbIcount:]),
		FreeBlocks: be.Uint64(sb[sbFdblocks:]),
	}
	return nil
}

func featureNames(ro, inc uint32, borg bool) []string {
	out := []string{"crc"}
	for _, f := range []struct {
		bit  uint32
		name string
	}{{incompatFtype, "ftype"}, {incompatSpinodes, "sparse_inodes"}, {incompatMetaUUID, "meta_uuid"},
		{incompatBigtime, "bigtime"}, {incompatNeedsRep, "needs_repair"}, {incompatNrext64, "nrext64"},
		{incompatExchrange, "exchange_range"}, {incompatParent, "parent"}, {incompatMetadir, "metadir"}} {
		if inc&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	for _, f := range []struct {
		bit  uint32
		name string
	}{{roCompatFinobt, "finobt"}, {roCompatRmapbt, "rmapbt"}, {roCompatReflnk, "reflink"}, {roCompatInobtc, "inobtcount"}} {
		if ro&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	if borg {
		out = append(out, "ascii_ci")
	}
	return out
}

func uuidString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// crcOf computes the XFS CRC32c of b with the 4-byte field at off taken as
// zero, in the form XFS stores (little-endian, already inverted).
func crcOf(b []byte, off int) uint32 {
	c := crc32.Update(0, castagnoli, b[:off])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	c = crc32.Update(c, castagnoli, b[off+4:])
	return c
}

// storedCRC reads a little-endian CRC field.
func storedCRC(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }

// crcOK checks the CRC field at off of a metadata block.
func crcOK(b []byte, off int) bool { return storedCRC(b, off) == crcOf(b, off) }

// Info describes the filesystem as its superblock does.
func (f *FS) Info() Info {
	i := f.info
	i.Features = append([]string(nil), i.Features...)
	return i
}

// String implements vfs.Source.
func (f *FS) String() string { return f.name }

// Close drops the caches. The ReaderAt belongs to the caller.
func (f *FS) Close() error {
	f.blocks.Reset()
	f.inodes.Reset()
	f.dirs.Reset()
	return nil
}

// Warnings lists what was odd but not fatal (CRC mismatches, skipped
// entries), at most maxWarnings of them.
func (f *FS) Warnings() []string {
	f.warnMu.Lock()
	defer f.warnMu.Unlock()
	return append([]string(nil), f.warnings...)
}

func (f *FS) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.warnMu.Lock()
	defer f.warnMu.Unlock()
	if f.warnSeen == nil {
		f.warnSeen = map[string]bool{}
	}
	if f.warnSeen[msg] || len(f.warnings) >= maxWarnings {
		return
	}
	f.warnSeen[msg] = true
	f.warnings = append(f.warnings, msg)
}

// fsbPos returns the device byte offset of a filesystem block number
// (agno<<agblklog | agbno) and whether it lies inside the filesystem.
func (f *FS) fsbPos(fsb uint64) (int64, bool) {
	agno := fsb >> f.agBlkLog
	agbno := fsb & (1<<f.agBlkLog - 1)
	if agno >= f.agCount || agbno >= f.agBlocks {
		return 0, false
	}
	lin := agno*f.agBlocks + agbno
	if lin >= f.dblocks {
		return 0, false
	}
	return int64(lin) << f.blockLog, true
}

// extentPos returns the device offset of an extent of count blocks at fsb,
// checking that it stays inside one AG and inside the filesystem.
func (f *FS) extentPos(fsb, count uint64) (int64, bool) {
	pos, ok := f.fsbPos(fsb)
	if !ok || count == 0 {
		return 0, false
	}
	agbno := fsb & (1<<f.agBlkLog - 1)
	if agbno+count > f.agBlocks || uint64(pos>>f.blockLog)+count > f.dblocks {
		return 0, false
	}
	return pos, true
}

// agPos returns the device offset of block agbno of AG agno.
func (f *FS) agPos(agno, agbno uint64) (int64, bool) {
	if agno >= f.agCount || agbno >= f.agBlocks {
		return 0, false
	}
	return f.fsbPos(agno<<f.agBlkLog | agbno)
}

// agLen returns the number of blocks of AG agno (the last may be short).
func (f *FS) agLen(agno uint64) uint64 {
	if agno == f.agCount-1 {
		return f.dblocks - agno*f.agBlocks
	}
	return f.agBlocks
}

// inoPos returns the device offset of inode ino.
func (f *FS) inoPos(ino uint64) (int64, bool) {
	agShift := f.agBlkLog + f.inoPBLog
	agno := ino >> agShift
	agino := ino & (1<<agShift - 1)
	agbno := agino >> f.inoPBLog
	if ino == 0 || agno >= f.agCount || agbno >= f.agLen(agno) {
		return 0, false
	}
	pos, ok := f.agPos(agno, agbno)
	if !ok {
		return 0, false
	}
	return pos + int64(agino&(1<<f.inoPBLog-1))*int64(f.inodeSize), true
}

// inoSplit returns the AG number and AG-relative inode number of ino.
func (f *FS) inoSplit(ino uint64) (agno uint64, agino uint32) {
	agShift := f.agBlkLog + f.inoPBLog
	return ino >> agShift, uint32(ino & (1<<agShift - 1))
}

// maxInoBits is the number of bits inode numbers of this filesystem use.
func (f *FS) maxInoBits() int {
	return bits.Len64(f.agCount-1) + int(f.agBlkLog+f.inoPBLog)
}

var errShort = errors.New("short read")

// containPanics makes the exported methods turn a panic (a bug this
// package's bounds missed, on some hostile image) into an error, so that
// one bad structure never brings a whole analysis down. The fuzz tests
// turn it off to see the panics.
var containPanics = true

func contain(what string, err *error) {
	if !containPanics {
		return
	}
	if r := recover(); r != nil {
		*err = &vfs.FormatError{File: what, Offset: -1, Msg: fmt.Sprintf("internal error reading a malformed structure: %v", r)}
	}
}

// readDev reads len(p) bytes at device offset off, refusing anything past
// the end of the device.
func (f *FS) readDev(p []byte, off int64, what loc) error {
	if off < 0 || off > f.size || int64(len(p)) > f.size-off {
		return &vfs.FormatError{File: what.String(), Offset: off, Msg: fmt.Sprintf("%d bytes past the end of the %d-byte device", off+int64(len(p))-f.size, f.size)}
	}
	n, err := f.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = errShort
	}
	return &vfs.FormatError{File: what.String(), Offset: off, Msg: "read", Err: err}
}

type blockKey struct {
	off int64
	n   int32
}

// meta returns n bytes of metadata at device offset off through the block
// cache. The slice is shared: callers never modify it.
func (f *FS) meta(off int64, n int, what loc) ([]byte, error) {
	return f.metaCRC(off, n, what, -1)
}

// metaCRC is meta for a block with a CRC at crcOff (-1: none), checked
// once, when the block is read from the device: a mismatch is a warning
// and the block is read on.
func (f *FS) metaCRC(off int64, n int, what loc, crcOff int) ([]byte, error) {
	k := blockKey{off, int32(n)}
	if b, ok := f.blocks.Get(k); ok {
		return b, nil
	}
	b := make([]byte, n)
	if err := f.readDev(b, off, what); err != nil {
		return nil, err
	}
	f.checkCRC(b, crcOff, what, off)
	f.blocks.Put(k, b, int64(n))
	return b, nil
}

func (f *FS) checkCRC(b []byte, crcOff int, what loc, off int64) {
	if crcOff >= 0 && crcOff+4 <= len(b) && !crcOK(b, crcOff) {
		f.warnf("%s: offset %d: CRC mismatch, read on", what, off)
	}
}

// fsBlock returns the filesystem block at fs block number fsb.
func (f *FS) fsBlock(fsb uint64, what loc, crcOff int) ([]byte, int64, error) {
	pos, ok := f.fsbPos(fsb)
	if !ok {
		return nil, -1, &vfs.FormatError{File: what.String(), Offset: -1, Msg: fmt.Sprintf("block %d is outside the filesystem", fsb)}
	}
	b, err := f.metaCRC(pos, int(f.blockSize), what, crcOff)
	return b, pos, err
}

func ferr(what loc, off int64, format string, args ...any) error {
	return &vfs.FormatError{File: what.String(), Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// loc names a structure for messages; it is formatted only when a
// message is made, so the hot paths never pay for it.
type loc struct {
	s    string
	kind byte // 'i': a structure of inode n; 'I': inode n itself; 'a': of AG n; 0: s alone
	n    uint64
}

func lc(s string) loc { return loc{s: s} }

func agLoc(s string, agno uint64) loc { return loc{s: s, kind: 'a', n: agno} }

func (l loc) String() string {
	switch l.kind {
	case 'i':
		return fmt.Sprintf("xfs %s (inode %d)", l.s, l.n)
	case 'I':
		return fmt.Sprintf("xfs inode %d", l.n)
	case 'a':
		return fmt.Sprintf("xfs %s (AG %d)", l.s, l.n)
	}
	return l.s
}
