package ext4

// The on-disk schema of ext2/3/4 and of its journal (jbd2), in one place:
// every structure offset, magic and flag this package reads. Multi-byte
// fields are little-endian, except in the journal, which is big-endian.
//
//	byte 0      1024          1024+1024
//	| boot area | superblock  | (block size 1024: group descriptors from block 2;
//	                             larger blocks: from block 1)
//
// A block group holds (where present) a superblock backup and descriptor
// table copy, the block bitmap, the inode bitmap, the inode table and data;
// with flex_bg the bitmaps and tables of several groups are packed together,
// so every location is read from the group descriptor, never computed.

const (
	superblockOffset = 1024
	superblockSize   = 1024
	magicExt         = 0xEF53

	rootIno    = 2
	journalIno = 8

	// Superblock field offsets.
	sbInodesCount      = 0x00
	sbBlocksCountLo    = 0x04
	sbFreeBlocksLo     = 0x0C
	sbFreeInodes       = 0x10
	sbFirstDataBlock   = 0x14
	sbLogBlockSize     = 0x18
	sbLogClusterSize   = 0x1C
	sbBlocksPerGroup   = 0x20
	sbClustersPerGroup = 0x24
	sbInodesPerGroup   = 0x28
	sbMtime            = 0x2C
	sbWtime            = 0x30
	sbMagic            = 0x38
	sbState            = 0x3A
	sbRevLevel         = 0x4C
	sbFirstIno         = 0x54
	sbInodeSize        = 0x58
	sbFeatureCompat    = 0x5C
	sbFeatureIncompat  = 0x60
	sbFeatureROCompat  = 0x64
	sbUUID             = 0x68
	sbVolumeName       = 0x78
	sbLastMounted      = 0x88
	sbJournalUUID      = 0xD0
	sbJournalInum      = 0xE0
	sbJournalDev       = 0xE4
	sbLastOrphan       = 0xE8
	sbHashSeed         = 0xEC
	sbDefHashVersion   = 0xFC
	sbDescSize         = 0xFE
	sbFirstMetaBg      = 0x104
	sbMkfsTime         = 0x108
	sbBlocksCountHi    = 0x150
	sbFreeBlocksHi     = 0x158
	sbMinExtraIsize    = 0x15C
	sbFlags            = 0x160
	sbLogGroupsPerFlex = 0x174
	sbChecksumType     = 0x175
	sbBackupBgs        = 0x24C
	sbChecksumSeed     = 0x270
	sbEncoding         = 0x27C
	sbChecksum         = 0x3FC

	// s_flags: the directory hash of this filesystem is the unsigned variant.
	sbFlagUnsignedHash = 0x2

	// Compatible features (informational for a reader).
	compatDirPrealloc  = 0x1
	compatImagicInodes = 0x2
	compatHasJournal   = 0x4
	compatExtAttr      = 0x8
	compatResizeInode  = 0x10
	compatDirIndex     = 0x20
	compatSparseSuper2 = 0x200
	compatFastCommit   = 0x400
	compatStableInodes = 0x800
	compatOrphanFile   = 0x1000

	// Incompatible features: a reader must understand each one set.
	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBg      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBg      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	incompatKnown = incompatFiletype | incompatRecover | incompatJournalDev | incompatMetaBg |
		incompatExtents | incompat64bit | incompatMMP | incompatFlexBg | incompatEAInode |
		incompatCsumSeed | incompatLargeDir | incompatInlineData | incompatEncrypt | incompatCasefold

	// Read-only compatible features (a reader may ignore unknown ones).
	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatBtreeDir     = 0x4
	roCompatHugeFile     = 0x8
	roCompatGdtCsum      = 0x10
	roCompatDirNlink     = 0x20
	roCompatExtraIsize   = 0x40
	roCompatQuota        = 0x100
	roCompatBigalloc     = 0x200
	roCompatMetadataCsum = 0x400
	roCompatReadonly     = 0x1000
	roCompatProject      = 0x2000
	roCompatVerity       = 0x8000
	roCompatOrphan       = 0x10000

	// Group descriptor field offsets (32 bytes; 64 with the 64bit feature).
	gdBlockBitmapLo = 0x00
	gdInodeBitmapLo = 0x04
	gdInodeTableLo  = 0x08
	gdFlags         = 0x12
	gdItableUnusedL = 0x1C
	gdChecksum      = 0x1E
	gdBlockBitmapHi = 0x20
	gdInodeBitmapHi = 0x24
	gdInodeTableHi  = 0x28
	gdItableUnusedH = 0x32

	bgInodeUninit = 0x1
	bgBlockUninit = 0x2

	// Inode field offsets.
	inMode        = 0x00
	inUID         = 0x02
	inSizeLo      = 0x04
	inAtime       = 0x08
	inCtime       = 0x0C
	inMtime       = 0x10
	inDtime       = 0x14
	inGID         = 0x18
	inLinks       = 0x1A
	inBlocksLo    = 0x1C
	inFlags       = 0x20
	inBlock       = 0x28 // i_block[15], 60 bytes
	inGeneration  = 0x64
	inFileACLLo   = 0x68
	inSizeHigh    = 0x6C
	inBlocksHi    = 0x74
	inFileACLHi   = 0x76
	inUIDHigh     = 0x78
	inGIDHigh     = 0x7A
	inChecksumLo  = 0x7C
	inExtraIsize  = 0x80
	inChecksumHi  = 0x82
	inCtimeExtra  = 0x84
	inMtimeExtra  = 0x88
	inAtimeExtra  = 0x8C
	inCrtime      = 0x90
	inCrtimeExtra = 0x94
	goodOldInode  = 128
	iBlockSize    = 60

	// Inode flags.
	flagSecrm      = 0x1
	flagIndex      = 0x1000 // hashed (htree) directory
	flagEncrypt    = 0x800
	flagHugeFile   = 0x40000
	flagExtents    = 0x80000
	flagVerity     = 0x100000
	flagEAInode    = 0x200000
	flagInlineData = 0x10000000
	flagCasefold   = 0x40000000

	// Inode mode types.
	sIFMT   = 0xF000
	sIFSOCK = 0xC000
	sIFLNK  = 0xA000
	sIFREG  = 0x8000
	sIFBLK  = 0x6000
	sIFDIR  = 0x4000
	sIFCHR  = 0x2000
	sIFIFO  = 0x1000

	// Extent tree.
	extentMagic    = 0xF30A
	extentMaxDepth = 5
	extentInitMax  = 32768 // ee_len above this marks an uninitialized extent

	// Legacy block map: 12 direct pointers, then single, double and triple
	// indirect blocks.
	nDirect     = 12
	indBlock    = 12
	dindBlock   = 13
	tindBlock   = 14
	maxSymlinks = 4096 // PATH_MAX: the longest symlink target read

	// Directory entries (ext4_dir_entry_2).
	direntHeader  = 8
	direntTailLen = 12
	direntTailFT  = 0xDE

	// File type byte (the kernel's FT_*); only the ones read here.
	ftUnknown = 0
	ftDir     = 2
	ftSymlink = 7

	// Extended attributes.
	xattrMagic      = 0xEA020000
	xattrBlockHdr   = 32
	xattrEntryHdr   = 16
	xattrMaxValue   = 65536 // XATTR_SIZE_MAX
	xattrIdxUser    = 1
	xattrIdxACLAcc  = 2
	xattrIdxACLDef  = 3
	xattrIdxTrusted = 4
	xattrIdxLustre  = 5
	xattrIdxSec     = 6
	xattrIdxSystem  = 7 // system.data (inline data)
	xattrIdxRichACL = 8
	xattrIdxEncrypt = 9
	xattrIdxHurd    = 10

	// jbd2 (big-endian).
	jbdMagic          = 0xC03B3998
	jbdDescriptor     = 1
	jbdCommit         = 2
	jbdSuperV1        = 3
	jbdSuperV2        = 4
	jbdRevoke         = 5
	jbdFlagEscape     = 1
	jbdFlagSameUUID   = 2
	jbdFlagDeleted    = 4
	jbdFlagLastTag    = 8
	jbdCompatChecksum = 0x1
	jbdIncompatRevoke = 0x1
	jbdIncompat64bit  = 0x2
	jbdIncompatAsync  = 0x4
	jbdIncompatCsumV2 = 0x8
	jbdIncompatCsumV3 = 0x10
	jbdIncompatFC     = 0x20
)
