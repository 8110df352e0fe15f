// Package evidence is deadnode's read-only view of a seized filesystem.
//
// A Source is the handful of primitives that forensics needs from a node's
// evidence — Lstat with full metadata (mode, owner, size, all four times,
// device numbers), ReadDir, Readlink, Xattrs and Open — and nothing else.
// Two sources sit behind it: a directory (a mounted disk image), reached only
// through file descriptors opened with O_NOFOLLOW relative to the root so that
// no path, symlink or ".." ever resolves outside it, with O_NOATIME where the
// kernel allows; and a tar archive (plain, gzip or zstd), indexed in one pass
// and read in place afterwards.
//
// The primitives never follow symbolic links, not even in intermediate
// components: a name that crosses a link is an error. Resolve walks a name
// through the links of the evidence itself, inside the evidence's own
// namespace (an absolute target is relative to the root), with a hop limit.
// Nothing under the root is ever written, renamed, chmodded or locked.
//
// Errors are *fs.PathError values naming the operation and the path inside
// the evidence, or *FormatError values naming the evidence file and the byte
// offset of a malformed record.
package evidence
