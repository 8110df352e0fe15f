// Package image reads container images out of a containerd content store
// inside the evidence, and verifies unpacked layers against their blobs.
//
// Store resolves an image record's target descriptor: OCI indexes and
// Docker manifest lists (picking linux/amd64, or a given platform, and
// saying which), OCI and Docker schema 2 manifests, and image configs
// (created, author, entrypoint, cmd, env, user, workdir, labels, history
// with empty_layer), joined into Layers with compressed digest and size,
// diff_id and chainID (containerd's identity.ChainID). A containerd
// checkpoint index (annotation containerd.io/checkpoint=true or a CRIU tar
// entry) is returned as Kind "checkpoint" with its CRIU tar, spec, RW diff
// and base image. Every JSON blob is read whole but bounded (MaxJSON,
// 4 MiB by default), hashed against its name, and its size checked against
// the descriptor; malformed JSON, unknown media types and digest mismatches
// are errors naming the blob and, where known, the byte offset. Blobs that
// are referenced but absent are listed in Image.MissingBlobs, never fatal.
//
// VerifyLayer streams one layer blob exactly once (gzip, zstd or plain,
// decompressed on a second goroutine with bounded ratio and total size),
// checks the blob digest, size and diff_id on the way, and compares every
// tar entry with the snapshot directory that containerd's overlayfs
// snapshotter unpacked it to: type, permission bits, owner, size and
// content (byte by byte), symlink target, device numbers, extended
// attributes (SCHILY.xattr records; security.selinux and overlay's own are
// ignored), hardlinks (same inode or same content as their target),
// whiteouts (.wh.NAME ⇔ a char 0:0 device NAME) and opaque markers
// (.wh..wh..opq ⇔ trusted.overlay.opaque=y). It then walks the snapshot for
// entries the tar does not have. Memory is bounded by a set of names with
// one byte of flags each (MaxNameBytes), never by the size of the layer's
// data; differences kept are capped (MaxDifferences) and counted beyond. The result is "verified", "tampered" with a list of
// Differences, or "unverifiable" with a reason (blob absent, corrupt
// stream, decompression bomb, unreadable entries).
//
// Reading symlink targets from a directory source moves their atime on a
// writable mount (readlinkat(2) ignores O_NOATIME): examine a read-only or
// noatime mount, or an archive.
//
// Mapping layers to snapshot directories (meta.db and the snapshotter's
// metadata.db) is the caller's business; this package only compares.
package image
