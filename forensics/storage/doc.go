// Package storage reads a containers-storage graph root (the store shared
// by Podman, CRI-O and Buildah; overlay driver) out of a node's evidence,
// with Podman's libpod state database and CRI-O's per-container files, and
// returns containers, pods, images and layers as runtime-neutral records
// (package forensics/model).
//
// Contract:
//   - Graph roots are the "graphroot" of /etc/containers/storage.conf,
//     /var/lib/containers/storage, and the rootless stores
//     ~/.local/share/containers/storage of /root and /home/*, found inside
//     the evidence (an absolute path of the seized host that is not in the
//     evidence as it is, is looked for with leading components dropped).
//     OpenAll reads every one; Open the first (or Options.GraphRoot).
//   - Containers come from overlay-containers/containers.json (CRI-O's
//     "metadata" JSON string inside it gives pod name, pod id, namespace,
//     container name, attempt), layers from overlay-layers/layers.json,
//     images from overlay-images/images.json and each image's manifest.
//     A torn JSON list keeps the records before the tear and says where it
//     broke.
//   - State (running, pid, exit code, started, finished) and pod membership
//     come from Podman's libpod/bolt_state.db (BoltDB) or libpod/db.sql
//     (SQLite, Podman 4.5+; read with modernc.org/sqlite, its write-ahead
//     log included), each copied to a private temp file and opened
//     read-only; the bolt copy is unnamed and its page graph is checked
//     before bbolt walks it (a damaged subtree is left out with a warning
//     naming the bucket and page, package forensics/internal/boltdb), and
//     a database that cannot be read is a store warning naming it, never a
//     panic; or from CRI-O's userdata/state.json and conmon's exit file
//     (/run/crio/exits/<id>: exit code, mtime = when).
//   - A container's spec is its userdata/config.json (the OCI spec given to
//     the OCI runtime), else the spec libpod recorded.
//   - Runtime is "cri-o" when CRI-O made the container (CRI-O metadata, or
//     the io.kubernetes.cri-o.ContainerType annotation), else "podman".
//   - UpperDir is overlay/<layer>/diff; LowerDirs come from
//     overlay/<layer>/lower, whose l/<short> links are resolved inside the
//     evidence and inside overlay/ only, cross-checked against the
//     layers.json parent chain. Paths are inside the evidence, with a
//     leading "/".
//   - ExecSessions are libpod's exec session records (podman exec: the
//     full command, pid, state), live ones and deleted ones carved from the
//     state database's free pages, each with its file offset.
//   - Orphans lists what a removal left behind: overlay/<id> directories
//     not in layers.json, overlay-containers/<id> directories of
//     containers not in containers.json.
//   - A damaged record becomes an evidence.Warning on that record (naming
//     the file and the record's byte offset) and everything else is still
//     read; a graph root that exists but may not be read is a *fs.PathError
//     naming it (errors.Is fs.ErrPermission), never ErrNotFound. Nothing is
//     written to the evidence.
//   - A Store is read once by Open and is safe for concurrent reading
//     afterwards; Reader is safe for concurrent use.
package storage
