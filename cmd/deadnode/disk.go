package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/diskimage"
	"github.com/deadnode/deadnode/evidence/volume"
	"github.com/deadnode/deadnode/render"
)

func init() {
	register(&command{
		name:    "disk ls",
		args:    "IMAGE (or --root IMAGE)",
		summary: "what a disk image holds: partition table, LVM volumes, filesystems, the node's root and what its fstab mounts",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			return runDiskLs
		},
	})
}

func runDiskLs(a *app, args []string) error {
	path := a.root
	switch {
	case len(args) == 1 && a.root == "":
		path = args[0]
	case len(args) > 1 || (len(args) == 1 && a.root != ""):
		return usagef("disk ls takes one disk image (IMAGE or --root IMAGE)")
	case path == "":
		return usagef("name the disk image (IMAGE or --root IMAGE)")
	}
	// What the file is is decided by content, as for --root: a collection
	// or an unknown file is not listed as a "raw disk" of one volume.
	switch kind, err := evidence.Identify(path); {
	case err != nil:
		return err
	case kind == evidence.KindDir:
		return fmt.Errorf("%s: a directory, not a disk image (give it as --root to read it)", path)
	case kind != evidence.KindDisk:
		return fmt.Errorf("%s: a %s collection, not a disk image (give it as --root to read it)", path, kind)
	}
	l, err := diskimage.List(path, a.diskOptions())
	if err != nil {
		return err // every error of the disk layers names the image
	}
	for _, n := range l.Notes {
		render.Line(a.stderr, "note: ", n)
	}
	if a.output != "table" {
		return a.show(l, nil)
	}
	o := a.renderOptions()
	info := l.Image
	head := render.KeyValue()
	head.KV("Image", strings.Join(info.Files, ", "))
	head.KV("Format", joinNonEmpty(", ", string(info.Format), sizeNote("cluster", info.ClusterSize), info.Compression))
	head.KV("Size", fmt.Sprintf("%d bytes", l.Size))
	head.KV("Table", joinNonEmpty(" ", l.Table, l.DiskGUID, l.DiskID))
	head.KV("Sector size", l.SectorSize)
	head.KV("Root", firstOfStr(l.Root, "none found"))
	if err := render.WriteTable(a.stdout, head, o); err != nil {
		return err
	}
	vols := render.Cols("VOLUME", "KIND", "OFFSET=", "SIZE=", "PART TYPE", "PART NAME", "FS", "LABEL", "UUID", "MOUNTED AT/", "NOTE")
	for _, v := range l.Volumes {
		var ptype, pname string
		if p := volume.PartitionOf(l.Partitions, v); p != nil {
			ptype, pname = firstOfStr(p.TypeName, p.Type), p.Name
		}
		var fsType, label, uuid string
		if v.FS != nil {
			fsType, label, uuid = v.FS.Type, v.FS.Label, v.FS.UUID
		}
		var at, note string
		for _, f := range l.Filesystems {
			if f.Volume == v.ID {
				at, note = f.MountPoint, f.Note
			}
		}
		if note == "" {
			note = v.Note
		}
		var off any = v.Offset
		if v.Offset < 0 {
			off = "-" // not one contiguous range (striped, or on several PVs)
		}
		vols.Row(v.ID, v.Kind, off, v.Size, ptype, pname, fsType, label, uuid, at, note)
	}
	fmt.Fprintln(a.stdout)
	if err := render.WriteTable(a.stdout, vols, o); err != nil {
		return err
	}
	if len(l.VolumeGroups) > 0 {
		lvs := render.Cols("VG", "LV", "SIZE=", "READABLE=", "SEGMENTS", "NOTE")
		for _, vg := range l.VolumeGroups {
			for _, lv := range vg.LVs {
				var segs []string
				for _, s := range lv.Segments {
					var st []string
					for _, x := range s.Stripes {
						st = append(st, fmt.Sprintf("%s:%d", x.PV, x.StartExtent))
					}
					segs = append(segs, fmt.Sprintf("%d+%d %s %s", s.StartExtent, s.ExtentCount, s.Type, strings.Join(st, ",")))
				}
				lvs.Row(vg.Name, lv.Name, lv.Size, lv.Readable, strings.Join(segs, "; "), lv.Note)
			}
		}
		fmt.Fprintln(a.stdout)
		if err := render.WriteTable(a.stdout, lvs, o); err != nil {
			return err
		}
	}
	if len(l.Mounts) > 0 {
		mt := render.Cols("MOUNT POINT/", "SOURCE", "TYPE", "VOLUME", "FS", "MOUNTED=", "ORIGIN", "NOTE")
		for _, m := range l.Mounts {
			mt.Row(m.MountPoint, m.Source, m.Type, m.Volume, m.FSType, m.Mounted, m.Origin, m.Note)
		}
		fmt.Fprintln(a.stdout)
		if err := render.WriteTable(a.stdout, mt, o); err != nil {
			return err
		}
	}
	return nil
}

func sizeNote(what string, n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%s %d", what, n)
}
