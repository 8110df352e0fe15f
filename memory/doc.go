// Package memory reads the memory of checkpointed processes offline, with
// CRIU's restore semantics, and says where every byte comes from.
//
// A Reader wraps a checkpoint.Checkpoint (Open, or OpenPath for a path on
// the examiner's machine); Reader.Space builds one task's address space
// from its mm VMAs and pagemap. Every image is reached through package
// checkpoint (Checkpoint.Images: pagemaps, shared memory pagemaps, pages
// images and the parent dump; Registers; MemfdShmid; RootfsDiffSource):
// this package knows no image name and decodes no image. Only the
// pagemaps are indexed (a slice of ranges); bytes are read from the images
// on demand, so memory use does not grow with the size of the process.
// Each byte range has a Provenance:
//
//   - dumped: PE_PRESENT runs, at their cumulative offsets in
//     pages-<pages_id>.img (compat_nr_pages of CRIU < 4.2 and nr_pages of
//     4.2+ are normalised by package checkpoint);
//   - parent: PE_PARENT runs, found in the chain of parent images of an
//     incremental dump (the "parent" link next to the images); a parent
//     run shorter than the child's range splits it, and pages no parent
//     holds are not_captured;
//   - file: pages of a file mapping absent from the pagemap, taken from
//     the mapped file in the container's own filesystem (the checkpoint's
//     rootfs-diff.tar, or Options.Files / Options.FS);
//   - zero: anonymous private pages absent from the pagemap, holes of a
//     shared memory object, and the tail of a file's last page;
//   - not_captured: PE_LAZY-only runs, vdso/vvar/vsyscall/socket/aio
//     mappings, file pages with no copy of the file, pages past a file's
//     end, shared memory without its pagemap, and what a missing, short or
//     compressed pages image cannot give.
//
// Shared anonymous memory, memfd and SysV shm are read from
// pagemap-shmem-<shmid>.img (object offsets as addresses). A pages image
// shorter than its pagemap needs is reported (as compressed when it starts
// with a gzip, zstd or lz4 magic): CRIU writes pages uncompressed and this
// package reads no other encoding; unknown pagemap flags likewise.
//
// Space.ReadAt reads by virtual address and stops at the first byte that
// is not captured (an *AddrError wrapping ErrNotCaptured); zero and file
// fills are returned as bytes, so callers that care check Space.Regions.
//
// SearchPath does the same over a host archive or directory, opened
// without touching its access time; a compressed archive is then
// decompressed once (checkpoint.Pass), its pages searched as they stream
// by and never spilled to disk (the file-backed ranges are searched
// afterwards). Options.NoPageData opens a
// checkpoint for its mappings and provenance alone: a compressed archive
// then keeps none of its pages.
//
// Mapping kinds come from CRIU's VMA status; CRIU does not flag the stack,
// so, as crit does, the anonymous mapping holding mm's start_stack (or one
// growing down) is called "stack".
//
// Search streams a pattern (bytes, string, hex, UTF-16LE, or a Go regexp)
// over the readable ranges of each task, with an overlap between windows
// so that matches across pages, runs, mappings and chunks are found; no
// byte is altered before matching. A literal is searched on several
// goroutines over large spaces, each scanning pieces of the pages images
// mapped read-only where they lie in a host file; the hits are the same,
// in the same order. Space.Strings extracts ASCII and UTF-16LE text,
// Space.Dump writes ranges to files with a manifest of sha256 and
// provenance (zero and not-captured bytes as holes, within a bound past
// which they are listed as skipped), and Reader.WriteCore writes an ELF
// core file (x86-64) that gdb and readelf read, with uncaptured ranges as
// PT_LOADs of file size 0 and zero ranges as holes (within a bound past
// which they get no file bytes either). Everything that can take long takes a context
// and stops with ctx.Err() when it is cancelled; results stream as
// iter.Seq2.
//
// A Reader caches what it opened and is not safe for concurrent use; a
// Space, once built, is (its reads go to the evidence's files, which allow
// concurrent ReadAt). Nothing here writes to the evidence.
package memory
