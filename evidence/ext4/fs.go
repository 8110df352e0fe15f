package ext4

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/deadnode/deadnode/evidence/internal/lru"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// Name describes the filesystem in messages and String() (the image
	// path and partition, say). Default "ext4".
	Name string
	// CacheBytes bounds the metadata block cache (default 32 MiB). Inodes
	// and directories have caches of their own, bounded by count.
	CacheBytes int64
	// NoReplay reads the filesystem as it is on disk, without applying the
	// committed transactions a journal still holds (a filesystem not
	// cleanly unmounted). By default they are applied in memory, as the
	// kernel would on mount; nothing is ever written.
	NoReplay bool
}

// FS is an ext2/3/4 filesystem read from an io.ReaderAt. It implements
// vfs.Source and vfs.Recoverer and is safe for concurrent use.
type FS struct {
	r    io.ReaderAt
	size int64
	name string
	sb   *superblock
	bs   int64 // block size in bytes

	blocks *lru.Cache[uint64, []byte]
	inodes *lru.Cache[uint32, *inode]
	dirs   *lru.Cache[uint32, *dirIndex]
	groups *lru.Cache[uint32, groupDesc]

	// replay maps a filesystem block to the journal block (a physical
	// block number) holding its newest committed copy, when the journal
	// was not checkpointed; nil when there is nothing to replay.
	replay  map[uint64]uint64
	escaped map[uint64]bool // replayed copies whose first four bytes were escaped in the log

	jmu     sync.Mutex
	journal *journalScan // the journal's log, scanned on first use (Deleted)
	jerr    error

	wmu      sync.Mutex
	warnings []string
	dropped  int
	warned   map[string]bool
}

var (
	_ vfs.Source    = (*FS)(nil)
	_ vfs.Recoverer = (*FS)(nil)
)

// maxWarnings bounds the warnings an FS keeps; the rest are counted.
const maxWarnings = 1000

// Open reads the superblock of the ext2/3/4 filesystem held in the first
// size bytes of r and returns it as a Source. r must stay valid while the
// FS is used. A malformed superblock or feature this reader cannot honour
// is a *vfs.FormatError; checksum mismatches and other damage found later
// are warnings (Warnings) or errors of the call that met them.
func Open(r io.ReaderAt, size int64, opt *Options) (*FS, error) {
	o := ptr.Value(opt)
	if o.Name == "" {
		o.Name = "ext4"
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 32 << 20
	}
	buf := make([]byte, superblockSize)
	if size < superblockOffset+superblockSize {
		return nil, formatErr("superblock", 0, superblockOffset, fmt.Sprintf("device of %d bytes is too small", size))
	}
	if err := readFull(r, buf, superblockOffset); err != nil {
		return nil, formatErr("superblock", 0, superblockOffset, "unreadable: "+err.Error())
	}
	sb, err := parseSuperblock(buf, size)
	if err != nil {
		return nil, err
	}
	if unk := sb.incompat &^ incompatKnown; unk != 0 {
		return nil, formatErr("superblock", 0, superblockOffset+sbFeatureIncompat, fmt.Sprintf("unsupported incompatible features %#x", unk))
	}
	if sb.has(incompatJournalDev) {
		return nil, formatErr("superblock", 0, superblockOffset+sbFeatureIncompat, "this is an external journal device, not a filesystem")
	}
	f := &FS{r: r, size: size, name: o.Name, sb: sb, bs: int64(sb.blockSize)}
	blocks := o.CacheBytes / f.bs
	f.blocks = lru.New[uint64, []byte](max(blocks, 64))
	f.inodes = lru.New[uint32, *inode](16384)
	// Room for the largest directory read (MaxDirEntries): one that did
	// not fit was read again, whole, for each of its names looked up.
	f.dirs = lru.New[uint32, *dirIndex](MaxDirEntries + 1)
	f.groups = lru.New[uint32, groupDesc](8192)
	if sb.metadataCsum() && !sb.csumOK {
		f.warnf("ext4 superblock: offset %d: checksum mismatch", superblockOffset+sbChecksum)
	}
	if dev := int64(sb.blocksCount) * f.bs; dev > size {
		f.warnf("ext4 superblock: the filesystem has %d blocks (%d bytes) but the device holds %d bytes: the image is truncated", sb.blocksCount, dev, size)
	}
	if sb.has(incompatRecover) {
		if sb.journalInum == 0 {
			f.warnf("ext4 superblock: the filesystem needs recovery from an external journal, which is not available: read as it is on disk")
		} else if o.NoReplay {
			f.warnf("ext4 journal: the filesystem was not cleanly unmounted; committed transactions left in the journal are not applied (NoReplay)")
		} else if err := f.replayJournal(); err != nil {
			f.warnf("ext4 journal: the filesystem was not cleanly unmounted and its journal cannot be replayed, read as it is on disk: %v", err)
		}
	}
	root, err := f.inode(rootIno)
	if err != nil {
		return nil, err
	}
	if !root.isDir() {
		return nil, formatErr("inode", rootIno, f.inodeOffset(rootIno), fmt.Sprintf("root inode is not a directory (mode %#o)", root.mode))
	}
	return f, nil
}

// Probe reports whether r holds an ext2/3/4 superblock at its usual place.
func Probe(r io.ReaderAt) bool {
	var m [2]byte
	if _, err := r.ReadAt(m[:], superblockOffset+sbMagic); err != nil {
		return false
	}
	return le.Uint16(m[:]) == magicExt
}

func (f *FS) String() string { return f.name }

// Close drops the caches and the journal index; the ReaderAt is the
// caller's to close. The FS stays usable (it reads again as needed).
func (f *FS) Close() error {
	f.blocks.Reset()
	f.inodes.Reset()
	f.dirs.Reset()
	f.groups.Reset()
	f.jmu.Lock()
	f.journal, f.jerr = nil, nil
	f.jmu.Unlock()
	return nil
}

// Warnings returns what was found doubtful while reading: checksum
// mismatches, skipped damaged records, a truncated image, a journal
// applied in memory.
func (f *FS) Warnings() []string {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	out := append([]string(nil), f.warnings...)
	if f.dropped > 0 {
		out = append(out, fmt.Sprintf("%d more warnings not kept", f.dropped))
	}
	return out
}

func (f *FS) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.warned[msg] {
		return
	}
	if len(f.warnings) >= maxWarnings {
		f.dropped++
		return
	}
	if f.warned == nil {
		f.warned = map[string]bool{}
	}
	f.warned[msg] = true
	f.warnings = append(f.warnings, msg)
}

func (f *FS) warnErr(err error) { f.warnf("%v", err) }

// Info describes the filesystem (for a listing of volumes).
type Info struct {
	Type         string    `json:"type"` // "ext2", "ext3" or "ext4"
	Label        string    `json:"label"`
	UUID         string    `json:"uuid"`
	BlockSize    int64     `json:"block_size"`
	Blocks       uint64    `json:"blocks"`
	FreeBlocks   uint64    `json:"free_blocks"`
	Inodes       uint32    `json:"inodes"`
	FreeInodes   uint32    `json:"free_inodes"`
	Size         int64     `json:"size"`
	Features     []string  `json:"features"`
	LastMounted  string    `json:"last_mounted"`
	Created      time.Time `json:"created"`
	LastMount    time.Time `json:"last_mount"`
	LastWrite    time.Time `json:"last_write"`
	Clean        bool      `json:"clean"`         // unmounted cleanly and no journal recovery pending
	JournalInode uint32    `json:"journal_inode"` // 0 when there is no internal journal
}

// Info returns the superblock's description of the filesystem.
func (f *FS) Info() Info {
	sb := f.sb
	typ := "ext2"
	if sb.hasCompat(compatHasJournal) {
		typ = "ext3"
	}
	if sb.incompat&^(incompatFiletype|incompatRecover|incompatMetaBg|incompatJournalDev) != 0 || sb.roCompat&^(roCompatSparseSuper|roCompatLargeFile|roCompatBtreeDir) != 0 {
		typ = "ext4"
	}
	var u [36]byte
	hex.Encode(u[0:8], sb.uuid[0:4])
	u[8] = '-'
	hex.Encode(u[9:13], sb.uuid[4:6])
	u[13] = '-'
	hex.Encode(u[14:18], sb.uuid[6:8])
	u[18] = '-'
	hex.Encode(u[19:23], sb.uuid[8:10])
	u[23] = '-'
	hex.Encode(u[24:36], sb.uuid[10:16])
	return Info{
		Type: typ, Label: sb.volumeName, UUID: string(u[:]), BlockSize: f.bs, Blocks: sb.blocksCount,
		FreeBlocks: sb.freeBlocks, Inodes: sb.inodesCount, FreeInodes: sb.freeInodes,
		Size: int64(sb.blocksCount) * f.bs, Features: sb.featureNames(), LastMounted: sb.lastMounted,
		Created: sb.mkfsTime, LastMount: sb.mtime, LastWrite: sb.wtime,
		Clean: sb.state&1 != 0 && !sb.has(incompatRecover), JournalInode: sb.journalInum,
	}
}

// formatErr names an ext4 structure (and the inode it belongs to) with the
// byte offset of the damaged record.
func formatErr(structure string, ino uint32, off int64, msg string) *vfs.FormatError {
	name := "ext4 " + structure
	if ino != 0 {
		name += fmt.Sprintf(" (inode %d)", ino)
	}
	return &vfs.FormatError{File: name, Offset: off, Msg: msg}
}

func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// ErrOutside is wrapped by the FormatError of a block number outside the
// filesystem or the device (an extent or block pointer past the end, a
// truncated image).
var ErrOutside = errors.New("outside the filesystem")

// pastErr is a FormatError about a block outside the filesystem.
func pastErr(structure string, ino uint32, off int64, msg string) *vfs.FormatError {
	e := formatErr(structure, ino, off, msg)
	e.Err = ErrOutside
	return e
}

// validBlock reports whether physical block b can hold data: inside the
// filesystem and not block 0 (the boot area or superblock).
func (f *FS) validBlock(b uint64) bool { return b != 0 && b < f.sb.blocksCount }

// readBlock returns physical block b (shared: never modify it), through
// the journal replay map and the block cache. what and ino name the
// structure for errors.
func (f *FS) readBlock(b uint64, what string, ino uint32) ([]byte, error) {
	if b >= f.sb.blocksCount {
		return nil, &vfs.FormatError{File: errName(what, ino), Offset: int64(min(b, 1<<62/uint64(f.bs))) * f.bs,
			Msg: fmt.Sprintf("block %d past the end of the filesystem (%d blocks)", b, f.sb.blocksCount), Err: ErrOutside}
	}
	if v, ok := f.blocks.Get(b); ok {
		return v, nil
	}
	src := b
	if j, ok := f.replay[b]; ok {
		src = j
	}
	off := int64(src) * f.bs
	if off+f.bs > f.size {
		return nil, &vfs.FormatError{File: errName(what, ino), Offset: off, Msg: fmt.Sprintf("block %d past the end of the device (%d bytes)", src, f.size), Err: ErrOutside}
	}
	buf := make([]byte, f.bs)
	if err := readFull(f.r, buf, off); err != nil {
		return nil, &vfs.FormatError{File: errName(what, ino), Offset: off, Msg: "read error", Err: err}
	}
	if f.escaped[b] {
		be.PutUint32(buf, jbdMagic)
	}
	f.blocks.Put(b, buf, 1)
	return buf, nil
}

func errName(what string, ino uint32) string {
	if ino != 0 {
		return fmt.Sprintf("ext4 %s (inode %d)", what, ino)
	}
	return "ext4 " + what
}

// deviceBlocks is the number of whole blocks the device holds.
func (f *FS) deviceBlocks() uint64 { return uint64(f.size / f.bs) }

// scanGroups is the number of block groups a scan of the whole filesystem
// visits: those that start inside the device (a truncated image or a
// hostile block count must not make a scan run over billions of groups).
func (f *FS) scanGroups() uint32 {
	devBlocks := uint64(f.size / f.bs)
	if devBlocks <= uint64(f.sb.firstDataBlock) {
		return 0
	}
	n := (devBlocks - uint64(f.sb.firstDataBlock) + uint64(f.sb.blocksPerGroup) - 1) / uint64(f.sb.blocksPerGroup)
	return uint32(min(n, uint64(f.sb.groupCount)))
}

// groupDesc is what the reader uses of a block group descriptor.
type groupDesc struct {
	blockBitmap  uint64
	inodeBitmap  uint64
	inodeTable   uint64
	flags        uint16
	itableUnused uint32
}

// group returns the descriptor of block group g.
func (f *FS) group(g uint32) (groupDesc, error) {
	if gd, ok := f.groups.Get(g); ok {
		return gd, nil
	}
	sb := f.sb
	if g >= sb.groupCount {
		return groupDesc{}, formatErr("group descriptor", 0, -1, fmt.Sprintf("group %d of %d", g, sb.groupCount))
	}
	blk := sb.descBlock(g / sb.descPerBlock())
	b, err := f.readBlock(blk, fmt.Sprintf("group descriptor %d", g), 0)
	if err != nil {
		return groupDesc{}, err
	}
	o := (g % sb.descPerBlock()) * sb.descSize
	d := b[o : o+sb.descSize]
	gd := groupDesc{
		blockBitmap:  uint64(le.Uint32(d[gdBlockBitmapLo:])),
		inodeBitmap:  uint64(le.Uint32(d[gdInodeBitmapLo:])),
		inodeTable:   uint64(le.Uint32(d[gdInodeTableLo:])),
		flags:        le.Uint16(d[gdFlags:]),
		itableUnused: uint32(le.Uint16(d[gdItableUnusedL:])),
	}
	if sb.descSize >= 64 {
		gd.blockBitmap |= uint64(le.Uint32(d[gdBlockBitmapHi:])) << 32
		gd.inodeBitmap |= uint64(le.Uint32(d[gdInodeBitmapHi:])) << 32
		gd.inodeTable |= uint64(le.Uint32(d[gdInodeTableHi:])) << 32
		gd.itableUnused |= uint32(le.Uint16(d[gdItableUnusedH:])) << 16
	}
	off := int64(blk)*f.bs + int64(o)
	if sb.metadataCsum() {
		var gn [4]byte
		le.PutUint32(gn[:], g)
		c := crc32c(sb.csumSeed, gn[:])
		c = crc32c(c, d[:gdChecksum])
		c = crc32c(c, []byte{0, 0})
		if len(d) > gdChecksum+2 {
			c = crc32c(c, d[gdChecksum+2:])
		}
		if uint16(c) != le.Uint16(d[gdChecksum:]) {
			f.warnf("ext4 group descriptor %d: offset %d: checksum mismatch", g, off)
		}
	}
	tableBlocks := (uint64(sb.inodesPerGroup)*uint64(sb.inodeSize) + uint64(f.bs) - 1) / uint64(f.bs)
	if gd.inodeTable < uint64(sb.firstDataBlock) || gd.inodeTable >= sb.blocksCount || sb.blocksCount-gd.inodeTable < tableBlocks {
		return groupDesc{}, formatErr(fmt.Sprintf("group descriptor %d", g), 0, off, fmt.Sprintf("inode table at block %d (%d blocks) is outside the %d blocks", gd.inodeTable, tableBlocks, sb.blocksCount))
	}
	if gd.itableUnused > sb.inodesPerGroup {
		gd.itableUnused = 0
	}
	f.groups.Put(g, gd, 1)
	return gd, nil
}
