// Package overlay is the merged, read-only view of a container's root
// filesystem, computed from its layers the way the kernel's overlayfs
// computes it, without mounting anything.
//
// A View is built from an ordered list of layers, upper first. A layer is a
// directory inside an evidence.Source (an overlayfs snapshot's fs/ dir: its
// sibling work/ dir is never content) or an OCI layer tar opened as an
// evidence.Archive. The view follows ovl_lookup: whiteouts (char 0:0, or a
// zero-size file with overlay.whiteout inside a dir marked overlay.opaque=x;
// .wh.NAME in tars) hide lower entries, opaque dirs (overlay.opaque=y;
// .wh..wh..opq) stop the merge, a non-directory hides lower directories,
// overlay.redirect makes a renamed directory merge the lower directories of
// its old name (absolute: path from the layer root; relative: name in the
// same parent), and overlay.metacopy files take their data from the lower
// file reached by redirect or by path. Overlay attributes are read from
// trusted.overlay.* and, for userxattr mounts, user.overlay.* (Options.Xattrs).
// Redirects and metacopy are always followed, as a mount with
// redirect_dir=follow,metacopy=on does; an invalid redirect is ignored with
// an anomaly, one with "." or ".." is an error for that entry. Xattr
// whiteouts count inside a directory marked opaque=x, as the kernel's
// readdir does. In a tar layer, .wh.* members are never content, and a
// parent directory the tar only implies keeps the lower directory's
// metadata.
//
// View implements io/fs (FS, StatFS, ReadDirFS, ReadLinkFS); LstatEntry and
// Walk give each entry with full metadata and the layer that supplied it.
// Symbolic links are resolved only inside the merged namespace (absolute
// targets from the container root, ".." stops at it, 40 hops), never on the
// host. ExportMerged and ExportUpper stream tars (the merged root, or the
// upper layer as an OCI diff) and yield each member's sha256 manifest entry
// as it is written.
//
// Nothing is written to the evidence. Walk and the exports stream: a
// merged directory is the k-way merge of its layer directories' sorted
// names, each name resolved when it is reached and dropped after, so
// memory holds one directory's names per level of the current path and a
// small directory cache, never an entry per file visited. Nesting deeper
// than MaxDepth (evidence.DefaultMaxDepth, the one bound of every walk) is
// yielded as an *evidence.DepthError and not descended; symlink loops,
// redirects with ".." and missing layers give errors naming the path and
// the layer, and the rest of the tree is still served. Walks and exports
// take a context and stop with its error when it is cancelled.
//
// A View is safe for concurrent use; an export (and a Walk) iterates on the
// caller's goroutine.
package overlay
