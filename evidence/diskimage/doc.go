// Package diskimage opens a node's disk image as the node's filesystem:
// it reads the image (raw, split raw, qcow2, VMDK: package disk), its
// partition table and LVM volumes (package volume) and the ext2/3/4 and
// XFS filesystems on them, picks the filesystem that holds the node's
// root, and mounts the node's other filesystems where the root's
// /etc/fstab and enabled systemd .mount units put them — all in user
// space, with no mount, no loop device and no root.
//
// Open returns an *Image, which is a vfs.Source over the assembled
// namespace (and a vfs.Recoverer over the same names), together with
// what was found: the disk's Info, the Layout, every Filesystem with what
// it holds, the mount table with each configured entry that was not
// mounted and why, and Notes saying what was assembled ("root
// filesystem: p2 ext4 UUID …", "/var from p3 xfs UUID … (/etc/fstab line
// 2)"). List gives the same description (a Listing, what `deadnode disk
// ls` prints) of an image whose root cannot be found, too. Probe and
// Match tell a disk image by its content: a VM image header, a GPT or MBR
// partition table, an LVM label, or an ext or XFS superblock at the
// start, and never a tar header; never by its name.
//
// Root picking: a filesystem holding /etc and one of /var/lib/containerd,
// /var/lib/docker, /var/lib/containers or /var/lib/kubelet is a node's
// root; so is one holding /etc whose fstab mounts /var, /var/lib or one
// of those directories from another filesystem of the image. Among
// equals, the one whose own fstab mounts itself at / wins, then the
// first in the layout (with a note naming the others). Options.Volume
// names the root instead; Options.NoAssemble mounts nothing else.
//
// Assembly rules: entries are mounted parents first (as systemd orders
// them; entries of one depth in the configuration's order), by UUID=,
// LABEL=, PARTUUID=, PARTLABEL=, a device path or a bind mount's source
// directory. Mount points are resolved through the links of the
// namespace assembled so far, inside it, and must be existing
// directories. A later entry for a mount point already mounted hides the
// earlier one, as on the node. An entry mounting the root filesystem
// again is skipped, and a mount point is a name of the table, never
// resolved again, so no lookup can loop through the table; the table
// holds at most 256 mounts. Swap, pseudo filesystems (proc, tmpfs, …),
// network filesystems, noauto entries, sources not on this disk and
// filesystems not read (vfat, LUKS, btrfs, unreadable LVs such as thin
// pools or RAID) are not mounted; each is listed in Mounts with the
// reason, and all but swap and pseudo filesystems also in Notes.
//
// Promises: the image is only read. The Source never follows a symbolic
// link (names crossing one fail as vfs.ErrSymlinkInPath; link resolution
// is the caller's, through evidence.Resolve); a mount point's entry in
// ReadDir and its Lstat are the mounted filesystem's root, as the
// kernel's stat reports. At most 256 filesystems are opened, and
// everything read from the node's configuration is bounded (fstab 1 MiB
// and 4096 entries, 512 units of 64 KiB, fields of 4 KiB, 40 link hops).
// Errors from a filesystem carry the node's name of the entry. Deleted files are reached only through Deleted (below a
// directory, and on every filesystem mounted below it) and DeletedFS (the
// whole filesystem holding a name), with the node's names mapped back
// from each filesystem's; they are never shown by the Source methods. An
// Image is safe for concurrent use.
package diskimage
