// Package xfs reads an XFS filesystem (version 5, the one mkfs.xfs has made
// since 2015: metadata CRCs, ftype, bigtime, nrext64, sparse inodes, finobt,
// reflink and rmapbt all read) from an io.ReaderAt — a raw disk image, a
// partition or logical volume of one — with no mount, no root and no cgo,
// and presents it as a vfs.Source: Lstat with full metadata (mode, owner,
// size, links, XFS inode numbers, device numbers in XFS's SysV encoding,
// nanosecond atime/mtime/ctime and crtime as Btime), ReadDir (shortform,
// block, leaf, node and btree directories, sorted by name), Readlink (inline
// and remote targets), Xattrs (shortform, leaf, node and btree attribute
// forks with remote values; root, secure and user namespaces as trusted.*,
// security.* and user.*, POSIX ACLs also as system.posix_acl_* as the
// kernel shows them) and Open (extent and btree block maps; holes and
// unwritten extents read as zeros). Version 4 filesystems are refused, and
// files on a realtime device cannot be opened.
//
// The reader is read-only and treats the image as hostile: every length,
// count, offset and tree depth it reads is bounded, btree keys and records
// must increase (so a block reached twice is an error, not a loop), chains
// are followed with a visited set, and a directory shows only under the
// parent its ".." names, so the tree seen through the Source is a tree. A
// malformed structure is a *vfs.FormatError naming it and the inode
// ("xfs directory block (inode 131)") with the byte offset on the device,
// wrapped in an *fs.PathError for the path asked; a CRC mismatch is only a
// warning (Warnings) and reading goes on. Metadata goes through a bounded
// LRU block cache and a bounded inode cache; file data is read straight
// from the device, so memory does not grow with the image. An FS is safe
// for concurrent use. The log is not replayed: an image of a crashed
// system reads as the kernel would mount it with norecovery.
//
// Deleted lists what was deleted and still survives (vfs.Recoverer): XFS
// clears a freed inode's block map on disk, so the map is taken from the
// copies of the inode the log still holds (method journal), from freed
// inodes whose fork was left intact by older kernels (method inode), and
// from the AGI unlinked lists (files unlinked while open when the system
// went down); names come from shortform directories in the log and from
// entries left in the free space of directory blocks (method dirent).
// Nothing recovered is ever visible through the Source.
package xfs
