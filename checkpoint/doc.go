// Package checkpoint reads container checkpoints offline: what CRIU saved
// of a container's processes, and what the container engine saved around it.
//
// Sources are recognised by content, never by file name: Podman, CRI-O and
// kubelet archives (.tar, .tar.gz, .tar.zst, with config.dump, spec.dump,
// rootfs-diff.tar and a "checkpoint" directory of CRIU images), a raw
// directory of CRIU images, and containerd checkpoint images in a node's
// content store (an OCI index naming a tar of CRIU images, the OCI spec as
// a protobuf Any, and the RW layer). Open reads a checkpoint inside an
// evidence source, OpenPath one on the examiner's machine (opened without
// touching its access time), OpenKubelet and OpenContainerd the ones of a
// node. Archives are indexed once through package evidence and read in
// place; from compressed ones only the members that need random access
// (CRIU images and the engine's small files, and the pages images only on
// request: Options.Pages) are spilled to a private temp file. Nothing is
// ever extracted to a path taken from an archive. The command lines and
// environments of a compressed archive's tasks (which live in the pages
// images) are copied out by a second decompression of the archive that
// runs alongside the index pass and keeps only those byte ranges; a last
// sequential pass catches archives in an unusual order. A Pass reads a
// compressed archive once for a caller that needs each pages image once,
// in archive order (package memory's search): the pages go to the caller
// as they stream by, the rest is kept and decoded at the end. Options.Skip
// leaves out what a caller does not need (file descriptors, mounts,
// command lines, executables' origins). Every open takes a context and
// stops with ctx.Err() when it is cancelled.
//
// CRIU images are decoded with go-criu's generated protobuf types through a
// framing reader of our own over io.ReaderAt (magic, then u32 length +
// record), which bounds every length (16 MiB a record, 1 Mi records an
// image, 64 Ki tasks) and names the image and the offset of any bad record.
// The generated types stay inside the package: callers get Process,
// Pagemap, Registers and the other project types. pstree.img is always
// the starting point: per-task images of pids it does not list (stale
// files of a reused checkpoint directory) are reported in StaleImages and
// otherwise ignored; duplicate tasks are dropped and parent cycles broken
// in one linear pass, whatever the depth of the tree. A damaged per-task
// image becomes an entry of Process.Errors and the rest is still decoded;
// only an unreadable inventory.img or pstree.img fails Open. Problems are
// typed evidence.Warning values (file and message), which print and
// marshal as one line.
//
// Pagemap entries are normalised across CRIU versions: CRIU < 4.2 writes the
// page count in field 2 (compat_nr_pages), 4.2 and later in field 5
// (nr_pages); as CRIU does, a zero nr_pages falls back to compat_nr_pages.
// Package memory rebuilds address spaces through Checkpoint.Images (an
// ImageDir: pagemaps, shared memory pagemaps, pages images, the parent
// dump of an incremental checkpoint), Registers, MemfdShmid and
// RootfsDiffSource; the image names are this package's alone (names.go
// draws the layout).
//
// A Checkpoint's fields are filled by Open and only read afterwards; its
// methods decode on demand and are safe for concurrent use; ImageDir is
// too. The package returns typed data only (snake_case JSON tags);
// formatting is cmd/deadnode's job.
package checkpoint
