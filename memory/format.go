package memory

// On-disk schema names this package reads beyond what package checkpoint
// decodes: CRIU's shared-memory pagemaps and the parent link of incremental
// dumps. VMA status bits (criu/include/image.h) and pagemap flags
// (criu/include/pagemap.h) are checkpoint's exported constants.

import "github.com/deadnode/deadnode/checkpoint"

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

// peKnown is every pagemap entry flag CRIU writes (checkpoint.Page*);
// VMA status bits are checkpoint.VMA*.
const peKnown = checkpoint.PageParent | checkpoint.PageLazy | checkpoint.PagePresent

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
