// Package ext4 reads an ext2, ext3 or ext4 filesystem from an io.ReaderAt
// (a partition of a disk image) as a read-only evidence source, with no
// mount, no root and no cgo, and recovers what was deleted from it.
//
// Open checks the superblock and returns an *FS, which implements
// vfs.Source — Lstat, ReadDir, Readlink, Xattrs and Open with the metadata
// the kernel reports (mode, owner with the high 16 bits, size, links,
// inode number, device numbers in both encodings, a/m/c and birth times to
// the nanosecond with the epoch bits) — and vfs.Recoverer. Names are
// relative to the filesystem root ("." is the root) and no method follows
// a symbolic link in any component. It reads extents (uninitialized ones
// as zeros) and ext2/3 block maps, linear, htree and inline directories,
// inline files, fast and slow symlinks, extended attributes in the inode,
// in an external block and in EA inodes (listed as the kernel lists them,
// POSIX ACLs in their xattr form), 32- and 64-bit group descriptors,
// flex_bg, meta_bg and metadata_csum; a journal left with committed
// transactions (a node that died) is replayed in memory as the kernel
// would on mount. Encrypted directories and files are refused with
// ErrEncrypted.
//
// Nothing is ever written. Every length, count, offset and depth read from
// the image is checked against the structure holding it and the device
// (extent trees are walked by decreasing depth, so a loop cannot form; a
// directory met twice on a path is a loop), and caches of blocks, inodes
// and directories are bounded, so memory does not grow with the image. A
// malformed structure is a *vfs.FormatError naming it ("ext4 extent tree
// (inode 12)") and its byte offset on the device; checksum mismatches and
// damage skipped inside a directory are kept as Warnings, and reading goes
// on. An FS is safe for concurrent use.
//
// Deleted lists files the filesystem no longer links but still holds:
// names left in the rec_len slack of directory blocks, older copies of
// directory, inode table, extent and indirect blocks in the journal (the
// way back to files deleted by a current kernel, which wipes the name and
// clears the block map), and free inodes whose block maps still map
// blocks. Each record says how it was found, how many bytes its surviving
// map covers, and whether any of those blocks has been taken since;
// nothing recovered is ever shown by the Source methods.
package ext4
