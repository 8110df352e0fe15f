package xfs

// The on-disk schema of XFS v5 as this package reads it, in one place. All
// on-disk integers are big-endian except the CRC fields (little-endian) and
// the log's item payloads (the byte order of the host that wrote the log).
//
//	device:  AG 0 | AG 1 | ... | AG agcount-1          (agblocks blocks each)
//	AG:      sector 0 superblock | 1 AGF | 2 AGI | 3 AGFL | btrees, inodes, data
//	inode number:  agno << (agblklog+inopblog) | agbno << inopblog | slot
//	fs block number (extents, bmbt pointers):  agno << agblklog | agbno
//	directory address space (in bytes of the data fork):
//	         [0, 32 GiB) data blocks | [32, 64 GiB) leaf/node blocks | [64 GiB, ...) free index
const (
	sbMagic = 0x58465342 // "XFSB"
	sbSize  = 264        // v5 superblock through sb_meta_uuid

	// superblock field offsets
	sbBlocksize    = 4
	sbDblocks      = 8
	sbRblocks      = 16
	sbUUID         = 32
	sbLogstart     = 48
	sbRootino      = 56
	sbAgblocks     = 84
	sbAgcount      = 88
	sbLogblocks    = 96
	sbVersionnum   = 100
	sbSectsize     = 102
	sbInodesize    = 104
	sbInopblock    = 106
	sbFname        = 108
	sbBlocklog     = 120
	sbSectlog      = 121
	sbInodelog     = 122
	sbInopblog     = 123
	sbAgblklog     = 124
	sbInprogress   = 126
	sbIcount       = 128
	sbIfree        = 136
	sbFdblocks     = 144
	sbDirblklog    = 192
	sbLogsectlog   = 193
	sbFeatures2    = 200
	sbFeatCompat   = 208
	sbFeatROCompat = 212
	sbFeatIncompat = 216
	sbFeatLogInc   = 220
	sbCRC          = 224
	sbMetaUUID     = 248

	versionNumMask = 0x000f
	versionBorgBit = 0x4000 // ASCII case-insensitive names

	// incompatible features (sb_features_incompat)
	incompatFtype     = 1 << 0
	incompatSpinodes  = 1 << 1
	incompatMetaUUID  = 1 << 2
	incompatBigtime   = 1 << 3
	incompatNeedsRep  = 1 << 4
	incompatNrext64   = 1 << 5
	incompatExchrange = 1 << 6
	incompatParent    = 1 << 7
	incompatMetadir   = 1 << 8
	incompatKnown     = incompatFtype | incompatSpinodes | incompatMetaUUID | incompatBigtime |
		incompatNeedsRep | incompatNrext64 | incompatExchrange | incompatParent | incompatMetadir

	// read-only compatible features (sb_features_ro_compat)
	roCompatFinobt = 1 << 0
	roCompatRmapbt = 1 << 1
	roCompatReflnk = 1 << 2
	roCompatInobtc = 1 << 3

	// AG headers
	agfMagic    = 0x58414746 // "XAGF"
	agiMagic    = 0x58414749 // "XAGI"
	agfRoots    = 16         // bnobt root at 16, cntbt at 20
	agfLevels   = 28
	agfLength   = 12
	agfCRC      = 216
	agiLength   = 12
	agiRoot     = 20
	agiLevel    = 24
	agiUnlinked = 40 // 64 bucket heads
	agiCRC      = 312
	agiBuckets  = 64

	// short-form (AG) btree blocks
	bnobtMagic    = 0x41423342 // "AB3B"
	inobtMagic    = 0x49414233 // "IAB3"
	sblockCRCLen  = 56         // v5 short block header
	sblockCRCOff  = 52
	sblockOwner   = 48
	sblockBlkno   = 16
	lblockCRCLen  = 72 // v5 long block header (bmbt)
	lblockCRCOff  = 64
	lblockOwner   = 56
	lblockBlkno   = 24
	bmbtMagic     = 0x424d4133 // "BMA3"
	inobtRecLen   = 16
	inodesPerRec  = 64
	maxAGBtreeLvl = 10

	// inodes
	dinodeMagic    = 0x494e // "IN"
	dinodeV3Core   = 176    // literal area offset of a v3 inode
	diMode         = 2
	diVersion      = 4
	diFormat       = 5
	diUID          = 8
	diGID          = 12
	diNlink        = 16
	diBigNextents  = 24
	diAtime        = 32
	diMtime        = 40
	diCtime        = 48
	diSize         = 56
	diNblocks      = 64
	diNextents     = 76
	diAnextents    = 80
	diForkoff      = 82
	diAformat      = 83
	diFlags        = 90
	diGen          = 92
	diNextUnlinked = 96
	diCRC          = 100
	diFlags2       = 120
	diCrtime       = 144
	diIno          = 152

	fmtDev     = 0
	fmtLocal   = 1
	fmtExtents = 2
	fmtBtree   = 3

	diflagRealtime = 1 << 0
	diflag2Bigtime = 1 << 3
	diflag2Nrext64 = 1 << 4

	bigtimeEpochOffset = 1 << 31 // seconds from 1901-12-13T20:45:52Z to the Unix epoch

	// S_IFMT values of di_mode
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000

	maxBmbtLevels = 9       // XFS_BM_MAXLEVELS for 64-bit extent counts, with margin
	maxFileOff    = 1 << 54 // XFS_MAX_FILEOFF + 1, in blocks

	// directories
	dir3BlockMagic = 0x58444233 // "XDB3": single-block directory
	dir3DataMagic  = 0x58444433 // "XDD3": data block of a leaf/node directory
	dir3DataHdr    = 64
	dirDataFreeTag = 0xffff
	leafSpaceOff   = 1 << 35 // XFS_DIR2_LEAF_OFFSET (bytes)
	dir3Leaf1Magic = 0x3df1
	dir3LeafNMagic = 0x3dff
	da3NodeMagic   = 0x3ebe
	da3BlkinfoLen  = 56
	da3NodeHdr     = 64
	dir3LeafHdr    = 64
	daMaxDepth     = 5 // XFS_DA_NODE_MAXDEPTH

	// extended attributes
	attr3LeafMagic = 0x3bee
	attr3LeafHdr   = 80
	attr3RmtMagic  = 0x5841524d // "XARM"
	attr3RmtHdr    = 56
	attrLocal      = 1 << 0
	attrRoot       = 1 << 1
	attrSecure     = 1 << 2
	attrParent     = 1 << 3
	attrIncomplete = 1 << 7
	maxXattrValue  = 64 << 10 // XATTR_SIZE_MAX

	// symbolic links
	symlinkMagic  = 0x58534c4d // "XSLM"
	symlinkHdr    = 56
	symlinkMaxLen = 1024

	// posix ACLs as XFS keeps them (trusted namespace, big-endian)
	aclFileName    = "SGI_ACL_FILE"
	aclDefaultName = "SGI_ACL_DEFAULT"
)

// Directory entry file types (ftype feature, XFS_DIR3_FT_*); only the ones
// read here: the rest come from the inode's mode.
const (
	ftUnknown = 0
	ftDir     = 2
)
