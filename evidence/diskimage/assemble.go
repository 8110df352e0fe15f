package diskimage

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// pseudo are filesystem types that hold nothing on a disk: mounted by the
// node at boot, absent from the image, and nothing to say about them.
var pseudo = map[string]bool{
	"proc": true, "sysfs": true, "devpts": true, "devtmpfs": true, "tmpfs": true, "ramfs": true,
	"cgroup": true, "cgroup2": true, "securityfs": true, "debugfs": true, "tracefs": true, "mqueue": true,
	"hugetlbfs": true, "configfs": true, "pstore": true, "bpf": true, "efivarfs": true, "fusectl": true,
	"binfmt_misc": true, "autofs": true, "rpc_pipefs": true, "nfsd": true, "selinuxfs": true, "none": false,
}

// network are filesystem types that live elsewhere than on this disk.
var network = map[string]bool{
	"nfs": true, "nfs4": true, "cifs": true, "smb3": true, "smbfs": true, "glusterfs": true, "ceph": true,
	"9p": true, "virtiofs": true, "lustre": true, "fuse.sshfs": true, "fuse.s3fs": true, "fuse.glusterfs": true,
	"efs": true, "fuse.efs": true,
}

// mountUnitDir is where the administrator's systemd mount units live;
// units there take effect when a .wants or .requires directory of the
// same place links them.
const mountUnitDir = "etc/systemd/system"

// configEntries reads the root's /etc/fstab and its enabled systemd mount
// units.
func (im *Image) configEntries() []MountEntry {
	src := im.Root.src
	ents, probs := readFstab(src)
	for _, p := range probs {
		im.Notes = append(im.Notes, p)
	}
	units, probs := mountUnits(src)
	for _, p := range probs {
		im.Notes = append(im.Notes, p)
	}
	return append(ents, units...)
}

// mountUnits reads the .mount units of etc/systemd/system that a .wants
// or .requires directory there enables.
func mountUnits(src vfs.Source) ([]MountEntry, []string) {
	dir, err := vfs.Resolve(src, mountUnitDir, true)
	if err != nil {
		return nil, nil
	}
	ents, err := src.ReadDir(dir)
	if err != nil {
		return nil, nil
	}
	enabled := map[string]bool{}
	var units []string
	for _, e := range ents {
		base := path.Base(e.Name)
		switch {
		case strings.HasSuffix(base, ".mount") && (e.Mode.IsRegular() || e.Mode&fs.ModeSymlink != 0):
			units = append(units, base)
		case e.Mode.IsDir() && (strings.HasSuffix(base, ".wants") || strings.HasSuffix(base, ".requires")):
			sub, err := src.ReadDir(e.Name)
			if err != nil {
				continue
			}
			for _, s := range sub {
				if b := path.Base(s.Name); strings.HasSuffix(b, ".mount") {
					enabled[b] = true
				}
			}
		}
	}
	var out []MountEntry
	var probs []string
	for _, u := range units {
		if len(out) >= maxUnits {
			probs = append(probs, fmt.Sprintf("/%s: more than %d mount units, the rest ignored", mountUnitDir, maxUnits))
			break
		}
		file := "/" + mountUnitDir + "/" + u
		if !enabled[u] {
			probs = append(probs, fmt.Sprintf("%s: not enabled (no .wants or .requires link): not mounted", file))
			continue
		}
		data, err := readSmall(src, mountUnitDir+"/"+u, maxUnitBytes)
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v", file, err))
			continue
		}
		e, err := ParseMountUnit(data, file)
		if err != nil {
			probs = append(probs, err.Error())
			continue
		}
		out = append(out, e)
	}
	return out, probs
}

// depth counts the components of a mount point ("/" is 0).
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// assemble mounts what the root's configuration names, parents before
// children (as systemd orders mounts by their paths; entries at one depth
// in the configuration's order). An entry for a mount point already
// mounted replaces it, as a later mount over the same point hides the
// earlier one on the node, with a note.
func (im *Image) assemble() {
	ents := im.configEntries()
	sort.SliceStable(ents, func(i, j int) bool { return depth(ents[i].Point) < depth(ents[j].Point) })
	mounted := 0
	for _, e := range ents {
		mt := Mount{MountPoint: e.Point, Source: e.Source, Type: e.Type, Options: strings.Join(e.Options, ","), Origin: e.Origin}
		note := im.mountOne(e, &mt, &mounted)
		if e.Point == "/" && note == "" {
			// the configuration names the root read: one row for it
			r := &im.Mounts[0]
			r.Source, r.Type, r.Options, r.Origin = mt.Source, mt.Type, mt.Options, r.Origin+"; "+mt.Origin
			continue
		}
		if note != "" {
			mt.Note = note
			if !mt.Mounted && !quiet(e) {
				im.Notes = append(im.Notes, fmt.Sprintf("%s: %s on %s not mounted: %s", e.Origin, e.Source, e.Point, note))
			}
		}
		im.Mounts = append(im.Mounts, mt)
	}
}

// quiet entries are not worth a note: pseudo filesystems, swap.
func quiet(e MountEntry) bool {
	return pseudo[e.Type] || e.Type == "swap" || e.Point == "none"
}

// mountOne mounts one configured entry, filling mt; it returns a note
// (why it was not mounted, or what is odd).
func (im *Image) mountOne(e MountEntry, mt *Mount, mounted *int) string {
	switch {
	case e.Type == "swap" || e.Point == "none":
		if v, err := im.Layout.Lookup(e.Source); err == nil {
			mt.Volume = v.ID
			if v.FS != nil {
				mt.FSType, mt.UUID = v.FS.Type, v.FS.UUID
			}
		}
		if e.Type == "swap" {
			return "swap"
		}
		return "no mount point (none)"
	case pseudo[e.Type]:
		return e.Type + ": held in memory, not on the disk"
	case network[e.Type] || strings.HasPrefix(e.Source, "//") || (strings.Contains(e.Source, ":/") && !strings.HasPrefix(e.Source, "/")):
		return "a network filesystem: not in this image"
	case e.Has("noauto") && !e.Has("x-systemd.automount"):
		return "noauto: not mounted at boot" // an automount is mounted on first access: it is mounted here
	}
	bind := e.Has("bind") || e.Has("rbind")
	var fsys *Filesystem
	sub := "."
	if bind {
		mt.BindSource = e.Source
		src, err := vfs.Resolve(im, e.Source, true)
		if err != nil {
			return "bind source: " + err.Error()
		}
		st, err := im.Lstat(src)
		if err != nil || !st.Mode.IsDir() {
			return "bind source " + e.Source + " is not a directory of the node"
		}
		m, rel := im.table.locate(src)
		fsys, sub = m.fs, rel
		if m.sub != "." {
			sub = rel
		}
		mt.Volume, mt.FSType, mt.UUID = fsys.Volume, fsys.Type, fsys.UUID
	} else {
		v, err := im.Layout.Lookup(e.Source)
		if err != nil {
			return "not on this disk: " + err.Error()
		}
		fsys = im.Filesystem(v.ID)
		mt.Volume = v.ID
		if fsys == nil {
			return fmt.Sprintf("volume %s holds no filesystem signature", v.ID)
		}
		mt.FSType, mt.UUID = fsys.Type, fsys.UUID
		if !fsys.Read {
			return fsys.Note
		}
	}
	if e.Point == "/" {
		if fsys == im.Root && sub == "." {
			return "" // the root, already there
		}
		return fmt.Sprintf("names %s for /, but the root read is %s", fsys.Volume, im.Root.Volume)
	}
	if fsys == im.Root && sub == "." {
		return "mounts the root filesystem again: skipped (it would show the root twice)"
	}
	if *mounted >= maxMounts {
		return fmt.Sprintf("more than %d mounts: skipped", maxMounts)
	}
	point, err := vfs.Resolve(im, e.Point, true)
	if err != nil {
		return "mount point: " + err.Error()
	}
	if point == "." {
		return "mount point " + e.Point + " resolves to the root"
	}
	st, err := im.Lstat(point)
	if err != nil {
		return fmt.Sprintf("mount point %s does not exist in the node (systemd would create it; the kernel would refuse)", e.Point)
	}
	if !st.Mode.IsDir() {
		return fmt.Sprintf("mount point %s is a %s, not a directory", e.Point, vfs.TypeName(st.Mode))
	}
	var note string
	if old := im.table.mounts[point]; old != nil {
		note = fmt.Sprintf("mounted over %s (from %s), which it hides", slash(point), old.fs.Volume)
		for i := range im.Mounts {
			if im.Mounts[i].Mounted && im.Mounts[i].point == point { // resolved: a point reached through a link hides alike
				im.Mounts[i].Mounted = false
				im.Mounts[i].Note = "hidden by a later mount on the same point (" + e.Origin + ")"
			}
		}
		if old.fs.MountPoint == slash(point) {
			old.fs.MountPoint = ""
		}
	}
	if point != strings.TrimPrefix(e.Point, "/") {
		if note != "" {
			note += "; "
		}
		note += "mount point " + e.Point + " resolves to " + slash(point)
	}
	im.table.add(&mount{point: point, fs: fsys, sub: sub})
	*mounted++
	mt.Mounted, mt.point = true, point
	if fsys.MountPoint == "" {
		fsys.MountPoint = slash(point)
	}
	what := fmt.Sprintf("%s from %s %s", slash(point), fsys.Volume, fsys.Type)
	if fsys.UUID != "" {
		what += " UUID " + fsys.UUID
	}
	if bind {
		what += " (bind of " + e.Source + ")"
	}
	im.Notes = append(im.Notes, fmt.Sprintf("%s (%s)", what, e.Origin))
	return note
}
