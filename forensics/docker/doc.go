// Package docker reads a Docker Engine data root (overlay2 storage driver)
// out of a node's evidence and returns its containers, pods, images and
// layers as runtime-neutral records (package forensics/model).
//
// Contract:
//   - The data root is the "data-root" (legacy "graph") of
//     /etc/docker/daemon.json, /var/lib/docker, the snap's data root, or a
//     rootless daemon's ~/.local/share/docker (/root, /home/*), found
//     inside the evidence (an absolute
//     path of the seized host that is not in the evidence as it is, is
//     looked for with its leading components dropped), or Options.Root.
//   - Containers come from containers/<id>/config.v2.json and
//     hostconfig.json exactly as the daemon persisted them: the state
//     (running, pid, exit code, started, finished) is the last one dockerd
//     wrote, which on a live-restore node may be "running" though no daemon
//     was up when the evidence was taken.
//   - Each container's layers come from image/overlay2/layerdb/mounts/<id>
//     (mount-id, init-id, parent chain) and overlay2/<mount-id>/lower, whose
//     l/<short> links are resolved inside the evidence only; a link that
//     leaves overlay2/ is refused with a warning. UpperDir is
//     overlay2/<mount-id>/diff; LowerDirs are the -init layer (made by
//     dockerd, not by the image: see Mount.Lowers[i].Init) then the image
//     layers top to bottom. Paths are inside the evidence, with a leading "/".
//   - Images come from image/overlay2/repositories.json and imagedb (config
//     and history, the config's digest checked); layers from
//     image/overlay2/layerdb/sha256/<chainID>/{diff,cache-id,parent,size}.
//   - Orphans lists what a removal left behind: overlay2 directories no
//     layer, container or -init layer owns, and layerdb/mounts records of
//     containers whose containers/<id> is gone (their layers are still
//     resolved, in RWLayers).
//   - A damaged record becomes an evidence.Warning on that record (naming
//     the file, and the byte offset of bad JSON) and everything else is
//     still read; a data root that exists but may not be read is a
//     *fs.PathError naming it (errors.Is fs.ErrPermission), never
//     ErrNotFound. Nothing is written to the evidence and nothing is
//     followed outside it. Only the overlay2 driver's layers are resolved;
//     other drivers' containers are listed with a warning.
//   - A Store is read once by Open and is safe for concurrent reading
//     afterwards; Reader is safe for concurrent use.
package docker
