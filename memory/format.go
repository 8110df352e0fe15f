package memory

// On-disk schema names this package reads beyond what package checkpoint
// decodes: CRIU's shared-memory pagemaps, the parent link of incremental
// dumps, VMA status bits (criu/include/image.h) and pagemap flags
// (criu/include/pagemap.h).

// CRIU image names.
const (
	imgPagemapFmt      = "pagemap-%d.img"
	imgPagemapShmemFmt = "pagemap-shmem-%d.img" // anon shared, memfd and SysV shm pages
	imgMMFmt           = "mm-%d.img"
	imgCoreFmt         = "core-%d.img"
	imgPagesFmt        = "pages-%d.img"
	imgFiles           = "files.img"
	imgMemfd           = "memfd.img"
	// parentLink is the symlink (or directory) of an incremental dump that
	// names the images of the previous (pre-)dump.
	parentLink = "parent"
	// rootfsDiff is the container's changed files, next to the "checkpoint"
	// directory of Podman, CRI-O and kubelet archives.
	rootfsDiff = "rootfs-diff.tar"
)

// Pagemap entry flags.
const (
	peParent  uint32 = 1 << 0 // PE_PARENT
	peLazy    uint32 = 1 << 1 // PE_LAZY
	pePresent uint32 = 1 << 2 // PE_PRESENT
	peKnown          = peParent | peLazy | pePresent
)

// VMA status bits.
const (
	vmaAreaStack    uint32 = 1 << 1
	vmaAreaVsyscall uint32 = 1 << 2
	vmaAreaVdso     uint32 = 1 << 3
	vmaAreaHeap     uint32 = 1 << 5
	vmaFilePrivate  uint32 = 1 << 6
	vmaFileShared   uint32 = 1 << 7
	vmaAnonShared   uint32 = 1 << 8
	vmaAnonPrivate  uint32 = 1 << 9
	vmaAreaSysvipc  uint32 = 1 << 10
	vmaAreaSocket   uint32 = 1 << 11
	vmaAreaVvar     uint32 = 1 << 12
	vmaAreaAio      uint32 = 1 << 13
	vmaAreaMemfd    uint32 = 1 << 14
	vmaUnsupp       uint32 = 1 << 31
)

// mmap flags.
const mapGrowsdown uint32 = 0x0100

const (
	pageSize = 4096
	// maxParentDepth bounds the chain of parent images (and breaks loops).
	maxParentDepth = 64
	// maxSegments bounds the index of one address space (a hostile
	// pagemap of millions of one-page runs still fits in memory).
	maxSegments = 1 << 22
)
