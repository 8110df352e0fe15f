// Package volume finds the volumes of a disk: it reads the partition table
// (MBR with its extended and logical partitions, GPT with its backup
// header), the LVM2 physical volumes on the disk or its partitions (label,
// PV header, the metadata area's circular buffer, and the text metadata,
// parsed by a small parser of this package: volume groups, physical
// volumes, linear and striped logical volumes), and probes each volume for
// a filesystem by its magic numbers (ext2/3/4, xfs, vfat, btrfs, swap,
// LVM2 PV, LUKS, iso9660, squashfs, ntfs): type, label, UUID, size and,
// for ext4 and XFS, the feature names of their superblocks.
//
// Scan is the one entry point:
//
//	layout, err := volume.Scan(img, img.Size(), nil)
//	for _, v := range layout.Volumes {        // "whole", "p2", "vg0/root"
//		if v.FS != nil && v.FS.Type == "xfs" {
//			r, err := v.Open()               // *io.SectionReader over the volume's bytes
//			fs, err := xfs.Open(r, ...)
//		}
//	}
//
// It returns typed records with stable snake_case JSON names — what
// `deadnode disk ls -o json` shows: the table type ("gpt", "mbr", "none"),
// the partitions (index as Linux numbers them, start, size, type GUID or
// MBR type id, name), the volume groups with their PVs and LVs and each
// LV's segments, and the flat list of Volumes with their probe results,
// which /etc/fstab's UUID= and LABEL= entries are matched against:
// Layout.Lookup resolves an fstab source (UUID=, LABEL=, PARTUUID=,
// PARTLABEL=, /dev/disk/by-*/…, /dev/mapper/VG-LV, /dev/VG/LV, /dev/sda2,
// /dev/nvme0n1p2) to its volume.
//
// Promises: the disk is only read, through io.ReaderAt. Every count, size
// and offset read from a table or label is checked against the disk's size
// and fixed maxima (GPT entries, the EBR chain's length and loops, LVM
// metadata size, parser depth and node count, segment and stripe counts);
// a damaged item becomes a Warning naming the structure and its byte offset
// (a *vfs.FormatError inside) and the other items are still listed. An LV
// whose metadata is inconsistent (overlapping segments, extents past its
// PV, an unknown or absent PV) or whose segment type needs device-mapper's
// logic (thin pools, RAID, mirrors, snapshots, caches, VDO) is listed with
// Readable false and a Note, never read. Scan returns an error only when
// the disk cannot be read at all.
package volume
