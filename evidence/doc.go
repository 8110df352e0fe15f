// Package evidence is deadnode's read-only view of a seized filesystem,
// and the one place that decides what a path of evidence is.
//
// Open takes a path of the examiner's machine and decides by its content,
// never by its name, what it is: a directory (a mounted image or an
// extracted copy), or a tar collection — plain (read in place), gzip or
// zstd (decompressed once) — or a disk image. A list of probes makes that
// decision; disk images (raw, split raw, qcow2, VMDK, then their volumes
// and ext4/XFS filesystems) are the first probe, package diskimage, which
// picks the node's root filesystem and mounts the rest from its fstab
// (Evidence.Disk; Kind "disk:raw", "disk:qcow2", …). Anything else is an
// *UnsupportedError saying what was
// seen. The result, an *Evidence, carries the kind, the Source, and typed
// notes: how the evidence was read (a collection's single top-level
// directory read as the root; which access times a writable mount can let
// move) and what was odd in it (archive damage, duplicate or refused
// members, what was left out to stay within bounds).
//
// A Source is the handful of primitives forensics needs — Lstat with full
// metadata, ReadDir (and ReadDirNames), Readlink, Xattrs and Open — and
// nothing else. A directory is reached only through file descriptors
// opened with O_NOFOLLOW relative to the root, so that no path, symlink or
// ".." ever resolves outside it, with O_NOATIME where the kernel allows
// and, with CAP_SYS_ADMIN, through a private read-only, noatime clone of
// the mount. The primitives never follow symbolic links, not even in
// intermediate components; Resolve (and FollowLinks, for other namespaces)
// walks a name through the evidence's own links, inside its own namespace,
// with a hop limit. Nothing under the root is ever written, renamed,
// chmodded or locked.
//
// An archive is indexed in one pass (TarStream, TarStreamAt) into a tree
// of compact entries, linear in the names' length: at most
// DefaultMaxMembers members, MaxArchiveDepth components a name, extended
// attributes bounded per value, per member and in all (the overlay and
// capability attributes forensics reads are kept first), sparse members
// read through their maps. The data of a compressed archive's members is
// written once to a sparse spill file (runs of zeros and holes are holes),
// bounded by ArchiveOptions.MaxSpill and 90% of the free space there; a
// *SpaceError names the space that ran out. Open keeps that work in a
// cache ($XDG_CACHE_HOME/deadnode or OpenOptions.CacheDir): private to the
// user, never inside the evidence (device and inode of every ancestor),
// bounded (least recently used entries evicted), built in a temporary
// sibling and renamed into place under a file lock, keyed by the evidence
// file's identity, and validated (checksum, bounds of every count, id and
// offset) before reuse. A command on the same collection reuses it.
//
// Walk visits a tree in lexical order holding one directory's names per
// level, never a Stat per entry, and stops descending at DefaultMaxDepth
// with a *DepthError (errors.Is(err, ErrTooDeep)): a tree that deep is
// itself a finding. Long calls (Open, archive indexing, Walk) take a
// context and stop with its error when it is cancelled.
//
// Errors are *fs.PathError values naming the operation and the path inside
// the evidence, or *FormatError values naming the evidence file and the
// byte offset of a malformed record; warnings are Warning values (file,
// offset, message) that print as one line.
//
// Concurrency: a Dir, an Archive (immutable once indexed), a Sub of
// either and an opened Evidence are safe for concurrent use; a File is
// not (one reader at a time, or ReadAt from many). TarStream and
// TarStreamAt iterate on the caller's goroutine.
package evidence
