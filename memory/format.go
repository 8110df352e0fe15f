package memory

// The kernel's and CRIU's numbers this package places pages by. Image
// names and decoding belong to package checkpoint; VMA status bits
// (criu/include/image.h) and pagemap flags (criu/include/pagemap.h) are
// its exported constants.

import "github.com/deadnode/deadnode/checkpoint"

// peKnown is every pagemap entry flag CRIU writes (checkpoint.Page*).
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
	// maxSpaceErrors bounds the problems kept for one address space.
	maxSpaceErrors = 256
)
