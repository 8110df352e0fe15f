package diskimage

import (
	"github.com/deadnode/deadnode/evidence/disk"
	"github.com/deadnode/deadnode/evidence/volume"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Listing is what a disk image holds, for `deadnode disk ls`: the image
// container, the partition table, the LVM volume groups, every volume
// with its filesystem probe, the filesystems with what they hold, the
// root picked and the mount table assembled. Field names are stable
// snake_case JSON.
type Listing struct {
	Image        disk.Info            `json:"image"`
	Table        string               `json:"table"` // "gpt", "mbr" or "none"
	Size         int64                `json:"size"`  // the virtual disk's size in bytes
	SectorSize   int                  `json:"sector_size"`
	DiskGUID     string               `json:"disk_guid,omitempty"` // GPT
	DiskID       string               `json:"disk_id,omitempty"`   // MBR disk signature
	Partitions   []volume.Partition   `json:"partitions"`
	VolumeGroups []volume.VolumeGroup `json:"volume_groups"`
	Volumes      []*volume.Volume     `json:"volumes"`
	Filesystems  []*Filesystem        `json:"filesystems"`
	// Root is the volume id of the root filesystem; empty when none was
	// found (Notes say why).
	Root     string           `json:"root"`
	Mounts   []Mount          `json:"mounts"`
	Warnings []volume.Warning `json:"warnings"`
	Notes    []string         `json:"notes"`
}

// List opens the disk image at path and returns what it holds (see
// Listing). Unlike Open, an image with no node's root is listed, with a
// note; Options.Volume and NoAssemble apply as in Open.
func List(path string, opt *Options) (*Listing, error) {
	o := ptr.Value(opt)
	o.listOnly = true
	img, err := openDisk(path, o.Disk)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	im, err := openImage(img, path, &o)
	if err != nil {
		return nil, err
	}
	defer im.closeFilesystems()
	return im.Listing(), nil
}

// Listing describes the opened image (see List).
func (im *Image) Listing() *Listing {
	l := im.Layout
	out := &Listing{
		Image: im.Disk, Table: l.Table, Size: l.Size, SectorSize: l.SectorSize, DiskGUID: l.DiskGUID, DiskID: l.DiskID,
		Partitions: l.Partitions, VolumeGroups: l.VolumeGroups, Volumes: l.Volumes, Filesystems: im.Filesystems,
		Mounts: im.Mounts, Warnings: l.Warnings, Notes: im.Notes,
	}
	if im.Root != nil {
		out.Root = im.Root.Volume
	}
	if out.Filesystems == nil {
		out.Filesystems = []*Filesystem{}
	}
	if out.Mounts == nil {
		out.Mounts = []Mount{}
	}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	return out
}
