// Package checkpoint reads container checkpoints offline: what CRIU saved
// of a container's processes, and what the container engine saved around it.
//
// Sources are recognised by content, never by file name: Podman, CRI-O and
// kubelet archives (.tar, .tar.gz, .tar.zst, with config.dump, spec.dump,
// rootfs-diff.tar and a "checkpoint" directory of CRIU images), a raw
// directory of CRIU images, and containerd checkpoint images in a node's
// content store (an OCI index naming a tar of CRIU images, the OCI spec as
// a protobuf Any, and the RW layer). Archives are indexed once through
// package evidence and read in place; from compressed ones only the members
// that need random access (CRIU images and the engine's small files, and
// the pages images only on request) are spilled to a private temp file.
// Nothing is ever extracted to a path taken from an archive. The command
// lines and environments of a compressed archive's tasks (which live in
// the pages images) are copied out by a second decompression of the
// archive that runs alongside the index pass and keeps only those byte
// ranges; a last sequential pass catches archives in an unusual order.
//
// CRIU images are decoded with go-criu's generated protobuf types through a
// framing reader of our own over io.ReaderAt (magic, then u32 length +
// record), which bounds every length (16 MiB a record, 1 Mi records an
// image, 64 Ki tasks) and names the image and the offset of any bad record.
// pstree.img is always the starting point: per-task images of pids it does
// not list (stale files of a reused checkpoint directory) are reported in
// StaleImages and otherwise ignored. A damaged per-task image becomes an
// entry of Process.Errors and the rest is still decoded; only an unreadable
// inventory.img or pstree.img fails Open.
//
// Pagemap entries are normalised across CRIU versions: CRIU < 4.2 writes the
// page count in field 2 (compat_nr_pages), 4.2 and later in field 5
// (nr_pages); as CRIU does, a zero nr_pages falls back to compat_nr_pages.
// Checkpoint.Pagemap and Checkpoint.Pages give the memory package what it
// needs to rebuild address spaces.
//
// The package returns typed data only (snake_case JSON tags); formatting
// is cmd/deadnode's job.
package checkpoint
