package ext4

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"time"
)

var le = binary.LittleEndian
var be = binary.BigEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the checksum ext4 and jbd2 use: CRC-32C with the caller's seed
// and no final inversion (Linux's crc32c()).
func crc32c(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

// superblock is what the reader keeps of the primary superblock.
type superblock struct {
	inodesCount     uint32
	blocksCount     uint64
	freeBlocks      uint64
	freeInodes      uint32
	firstDataBlock  uint32
	blockSize       uint32
	clusterSize     uint32
	blocksPerGroup  uint32
	clustersPerGrp  uint32
	inodesPerGroup  uint32
	inodeSize       uint32
	firstIno        uint32
	revLevel        uint32
	compat          uint32
	incompat        uint32
	roCompat        uint32
	uuid            [16]byte
	volumeName      string
	lastMounted     string
	journalInum     uint32
	journalDev      uint32
	lastOrphan      uint32
	hashSeed        [4]uint32
	defHashVersion  uint8
	descSize        uint32
	firstMetaBg     uint32
	flags           uint32
	logGroupsPerFlx uint8
	backupBgs       [2]uint32
	encoding        uint16
	mkfsTime        time.Time
	mtime, wtime    time.Time
	state           uint16
	csumSeed        uint32 // seed of every metadata checksum (metadata_csum)
	groupCount      uint32
	csumOK          bool // the superblock's own checksum matched (metadata_csum)
}

func (sb *superblock) has(incompat uint32) bool  { return sb.incompat&incompat != 0 }
func (sb *superblock) hasRO(ro uint32) bool      { return sb.roCompat&ro != 0 }
func (sb *superblock) hasCompat(c uint32) bool   { return sb.compat&c != 0 }
func (sb *superblock) metadataCsum() bool        { return sb.hasRO(roCompatMetadataCsum) }
func (sb *superblock) groupOf(ino uint32) uint32 { return (ino - 1) / sb.inodesPerGroup }
func (sb *superblock) indexOf(ino uint32) uint32 { return (ino - 1) % sb.inodesPerGroup }
func (sb *superblock) descPerBlock() uint32      { return sb.blockSize / sb.descSize }
func (sb *superblock) groupFirstBlock(g uint32) uint64 {
	return uint64(g)*uint64(sb.blocksPerGroup) + uint64(sb.firstDataBlock)
}

// maxBlockSize is the largest block size ext4 allows (64 KiB).
const maxBlockSize = 65536

// parseSuperblock decodes and validates the 1024 bytes of a superblock.
// size is the device size in bytes; every count is checked against it so
// that nothing later allocates or loops by an absurd number.
func parseSuperblock(b []byte, size int64) (*superblock, error) {
	bad := func(off int, format string, args ...any) error {
		return formatErr("superblock", 0, superblockOffset+int64(off), fmt.Sprintf(format, args...))
	}
	if len(b) < superblockSize {
		return nil, bad(0, "short superblock (%d bytes)", len(b))
	}
	if m := le.Uint16(b[sbMagic:]); m != magicExt {
		return nil, bad(sbMagic, "bad magic %#04x (not ext2/3/4)", m)
	}
	sb := &superblock{
		inodesCount:     le.Uint32(b[sbInodesCount:]),
		blocksCount:     uint64(le.Uint32(b[sbBlocksCountLo:])),
		freeBlocks:      uint64(le.Uint32(b[sbFreeBlocksLo:])),
		freeInodes:      le.Uint32(b[sbFreeInodes:]),
		firstDataBlock:  le.Uint32(b[sbFirstDataBlock:]),
		blocksPerGroup:  le.Uint32(b[sbBlocksPerGroup:]),
		clustersPerGrp:  le.Uint32(b[sbClustersPerGroup:]),
		inodesPerGroup:  le.Uint32(b[sbInodesPerGroup:]),
		revLevel:        le.Uint32(b[sbRevLevel:]),
		compat:          le.Uint32(b[sbFeatureCompat:]),
		incompat:        le.Uint32(b[sbFeatureIncompat:]),
		roCompat:        le.Uint32(b[sbFeatureROCompat:]),
		volumeName:      cString(b[sbVolumeName : sbVolumeName+16]),
		lastMounted:     cString(b[sbLastMounted : sbLastMounted+64]),
		journalInum:     le.Uint32(b[sbJournalInum:]),
		journalDev:      le.Uint32(b[sbJournalDev:]),
		lastOrphan:      le.Uint32(b[sbLastOrphan:]),
		defHashVersion:  b[sbDefHashVersion],
		firstMetaBg:     le.Uint32(b[sbFirstMetaBg:]),
		flags:           le.Uint32(b[sbFlags:]),
		logGroupsPerFlx: b[sbLogGroupsPerFlex],
		encoding:        le.Uint16(b[sbEncoding:]),
		state:           le.Uint16(b[sbState:]),
		mkfsTime:        time.Unix(int64(le.Uint32(b[sbMkfsTime:])), 0).UTC(),
		mtime:           time.Unix(int64(le.Uint32(b[sbMtime:])), 0).UTC(),
		wtime:           time.Unix(int64(le.Uint32(b[sbWtime:])), 0).UTC(),
	}
	copy(sb.uuid[:], b[sbUUID:sbUUID+16])
	for i := range sb.hashSeed {
		sb.hashSeed[i] = le.Uint32(b[sbHashSeed+4*i:])
	}
	sb.backupBgs = [2]uint32{le.Uint32(b[sbBackupBgs:]), le.Uint32(b[sbBackupBgs+4:])}

	logBS := le.Uint32(b[sbLogBlockSize:])
	if logBS > 6 {
		return nil, bad(sbLogBlockSize, "block size 2^(10+%d) is out of range", logBS)
	}
	sb.blockSize = 1024 << logBS
	sb.clusterSize = sb.blockSize
	if sb.hasRO(roCompatBigalloc) {
		logCS := le.Uint32(b[sbLogClusterSize:])
		if logCS < logBS || logCS > 29 {
			return nil, bad(sbLogClusterSize, "cluster size 2^(10+%d) is out of range", logCS)
		}
		sb.clusterSize = 1024 << logCS
	}
	if sb.has(incompat64bit) {
		sb.blocksCount |= uint64(le.Uint32(b[sbBlocksCountHi:])) << 32
		sb.freeBlocks |= uint64(le.Uint32(b[sbFreeBlocksHi:])) << 32
	}
	if sb.blocksCount == 0 {
		return nil, bad(sbBlocksCountLo, "zero blocks")
	}
	if want := (wantFirstData(sb.blockSize)); sb.firstDataBlock != want && !(sb.blockSize == 1024 && sb.firstDataBlock == 0 && sb.hasRO(roCompatBigalloc)) {
		return nil, bad(sbFirstDataBlock, "first data block %d, want %d for %d-byte blocks", sb.firstDataBlock, want, sb.blockSize)
	}
	if sb.firstDataBlock >= uint32(min(sb.blocksCount, 1<<32-1)) {
		return nil, bad(sbFirstDataBlock, "first data block %d past the %d blocks", sb.firstDataBlock, sb.blocksCount)
	}
	if sb.blocksPerGroup == 0 || sb.blocksPerGroup > 8*sb.blockSize*(sb.clusterSize/sb.blockSize) {
		return nil, bad(sbBlocksPerGroup, "%d blocks per group (at most %d)", sb.blocksPerGroup, 8*sb.blockSize)
	}
	if sb.inodesPerGroup == 0 || sb.inodesPerGroup > 8*sb.blockSize {
		return nil, bad(sbInodesPerGroup, "%d inodes per group (at most %d)", sb.inodesPerGroup, 8*sb.blockSize)
	}
	groups := (sb.blocksCount - uint64(sb.firstDataBlock) + uint64(sb.blocksPerGroup) - 1) / uint64(sb.blocksPerGroup)
	if groups == 0 || groups > 1<<32-1 {
		return nil, bad(sbBlocksCountLo, "%d block groups", groups)
	}
	sb.groupCount = uint32(groups)
	if uint64(sb.inodesCount) != uint64(sb.groupCount)*uint64(sb.inodesPerGroup) {
		return nil, bad(sbInodesCount, "%d inodes, but %d groups of %d", sb.inodesCount, sb.groupCount, sb.inodesPerGroup)
	}
	if sb.revLevel == 0 {
		sb.inodeSize, sb.firstIno = goodOldInode, 11
	} else {
		sb.inodeSize = uint32(le.Uint16(b[sbInodeSize:]))
		sb.firstIno = le.Uint32(b[sbFirstIno:])
		if sb.inodeSize < goodOldInode || sb.inodeSize > sb.blockSize || sb.inodeSize&(sb.inodeSize-1) != 0 {
			return nil, bad(sbInodeSize, "inode size %d", sb.inodeSize)
		}
		if sb.firstIno < 3 || sb.firstIno > sb.inodesCount {
			return nil, bad(sbFirstIno, "first non-reserved inode %d", sb.firstIno)
		}
	}
	sb.descSize = 32
	if sb.has(incompat64bit) {
		ds := uint32(le.Uint16(b[sbDescSize:]))
		if ds < 64 || ds > 1024 || ds&(ds-1) != 0 {
			return nil, bad(sbDescSize, "group descriptor size %d with the 64bit feature", ds)
		}
		sb.descSize = ds
	}
	if sb.has(incompatMetaBg) && sb.firstMetaBg > (sb.groupCount+sb.descPerBlock()-1)/sb.descPerBlock() {
		return nil, bad(sbFirstMetaBg, "first meta group %d past the %d descriptor blocks", sb.firstMetaBg, (sb.groupCount+sb.descPerBlock()-1)/sb.descPerBlock())
	}
	if size > 0 && int64(sb.firstDataBlock+1)*int64(sb.blockSize) > size {
		return nil, bad(sbBlocksCountLo, "device of %d bytes is smaller than the first block group", size)
	}
	if sb.metadataCsum() {
		if t := b[sbChecksumType]; t != 1 {
			return nil, bad(sbChecksumType, "checksum type %d (only crc32c is defined)", t)
		}
		sb.csumOK = crc32c(^uint32(0), b[:sbChecksum]) == le.Uint32(b[sbChecksum:])
		if sb.has(incompatCsumSeed) {
			sb.csumSeed = le.Uint32(b[sbChecksumSeed:])
		} else {
			sb.csumSeed = crc32c(^uint32(0), sb.uuid[:])
		}
	}
	return sb, nil
}

func wantFirstData(bs uint32) uint32 {
	if bs == 1024 {
		return 1
	}
	return 0
}

func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// hasSuper reports whether block group g holds a superblock backup (and so
// a copy of the descriptor table).
func (sb *superblock) hasSuper(g uint32) bool {
	if g == 0 {
		return true
	}
	if sb.hasCompat(compatSparseSuper2) {
		return g == sb.backupBgs[0] || g == sb.backupBgs[1]
	}
	if g <= 1 || !sb.hasRO(roCompatSparseSuper) {
		return true
	}
	if g&1 == 0 {
		return false
	}
	return isPower(g, 3) || isPower(g, 5) || isPower(g, 7)
}

func isPower(n, base uint32) bool {
	for n%base == 0 {
		n /= base
	}
	return n == 1
}

// descBlock returns the block holding descriptor block number nr (the
// nr-th block of the descriptor table, or with meta_bg the descriptor
// block of meta group nr).
func (sb *superblock) descBlock(nr uint32) uint64 {
	sbBlock := uint64(sb.firstDataBlock)
	if !sb.has(incompatMetaBg) || nr < sb.firstMetaBg {
		return sbBlock + uint64(nr) + 1
	}
	g := nr * sb.descPerBlock()
	var hs uint64
	if sb.hasSuper(g) {
		hs = 1
	}
	if sb.blockSize == 1024 && nr == 0 && sb.firstDataBlock == 0 {
		hs++
	}
	return sb.groupFirstBlock(g) + hs
}

// featureNames lists the features set, by their e2fsprogs names.
func (sb *superblock) featureNames() []string {
	var out []string
	add := func(set uint32, names map[uint32]string) {
		for bit := uint32(1); bit != 0; bit <<= 1 {
			if set&bit == 0 {
				continue
			}
			if n, ok := names[bit]; ok {
				out = append(out, n)
			} else {
				out = append(out, fmt.Sprintf("FEATURE_%#x", bit))
			}
		}
	}
	add(sb.compat, map[uint32]string{compatDirPrealloc: "dir_prealloc", compatImagicInodes: "imagic_inodes",
		compatHasJournal: "has_journal", compatExtAttr: "ext_attr", compatResizeInode: "resize_inode",
		compatDirIndex: "dir_index", 0x40: "lazy_bg", 0x100: "exclude_bitmap", compatSparseSuper2: "sparse_super2",
		compatFastCommit: "fast_commit", compatStableInodes: "stable_inodes", compatOrphanFile: "orphan_file"})
	add(sb.incompat, map[uint32]string{incompatCompression: "compression", incompatFiletype: "filetype",
		incompatRecover: "needs_recovery", incompatJournalDev: "journal_dev", incompatMetaBg: "meta_bg",
		incompatExtents: "extent", incompat64bit: "64bit", incompatMMP: "mmp", incompatFlexBg: "flex_bg",
		incompatEAInode: "ea_inode", incompatDirData: "dirdata", incompatCsumSeed: "metadata_csum_seed",
		incompatLargeDir: "large_dir", incompatInlineData: "inline_data", incompatEncrypt: "encrypt",
		incompatCasefold: "casefold"})
	add(sb.roCompat, map[uint32]string{roCompatSparseSuper: "sparse_super", roCompatLargeFile: "large_file",
		roCompatBtreeDir: "btree_dir", roCompatHugeFile: "huge_file", roCompatGdtCsum: "uninit_bg",
		roCompatDirNlink: "dir_nlink", roCompatExtraIsize: "extra_isize", 0x80: "snapshot", roCompatQuota: "quota",
		roCompatBigalloc: "bigalloc", roCompatMetadataCsum: "metadata_csum", 0x800: "replica",
		roCompatReadonly: "read-only", roCompatProject: "project", 0x4000: "shared_blocks", roCompatVerity: "verity",
		roCompatOrphan: "orphan_present"})
	return out
}
