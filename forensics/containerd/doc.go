// Package containerd reads a containerd root out of a node's evidence and
// returns its namespaces, containers, pods, images, content, snapshots and
// leases as runtime-neutral records (package forensics/model).
//
// Contract:
//   - The root is the "root" of /etc/containerd/config.toml (or of the
//     k3s, rke2, microk8s and k0s config files), then the distributions'
//     default places (knownRoots in buckets.go), or Options.Root; a host
//     path that is not in the evidence as it is, is looked for with its
//     leading components dropped. The state directory ("state" of the
//     config, /run/containerd) is read when it was captured.
//   - meta.db is read with bbolt on a private, unnamed copy of the file
//     (package forensics/internal/boltdb): the copy's page graph is
//     checked first, a damaged subtree is left out with a warning naming
//     the bucket and the page (its byte offset), and every other record is
//     still read; a container whose bucket was left out is listed by its id.
//     The files are organised as containerd's own core/metadata is, by
//     bucket family: namespaces.go, containers.go, images.go, content.go,
//     snapshots.go (with the snapshotters' metadata.db), leases.go; the
//     schema is drawn once in buckets.go.
//   - Each container resolves to its layer directories through its
//     snapshot and the snapshotter's parent chain (bounded; a loop is a
//     warning). Its state is only what the evidence records (state.go,
//     README "State"): the CRI plugin's status file, runc's state.json, the
//     shim's bundle, or a captured state directory with no task for it.
//   - A damaged record becomes an evidence.Warning on that record (and on
//     the Store) naming the file and, where known, the byte offset; a root
//     that exists but may not be read is a *fs.PathError naming it
//     (errors.Is fs.ErrPermission), never ErrNotFound. Nothing is written
//     to the evidence, nothing outside it is followed, and every count,
//     size and chain read from it is bounded.
//   - A Store is read once by Open and is safe for concurrent reading
//     afterwards; Reader is safe for concurrent use.
package containerd
