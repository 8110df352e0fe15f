package volume

import (
	"fmt"
	"regexp"
	"strings"
)

// Lookup finds the volume an /etc/fstab (or crypttab, or kernel command
// line) source names: UUID=, LABEL=, PARTUUID=, PARTLABEL= (quotes
// allowed), /dev/disk/by-uuid|by-label|by-partuuid|by-partlabel/…,
// /dev/mapper/VG-LV and /dev/VG/LV, a partition device (/dev/sda2,
// /dev/vda2, /dev/xvda2, /dev/nvme0n1p2, /dev/mmcblk0p2 — read as this
// disk's partition 2, which is what they were on the node only if this
// image is that disk), or a volume id ("p2", "vg0/root"). UUIDs compare
// without regard to case, as blkid prints vfat's upper-case and ext4's
// lower-case. Several volumes matching (a cloned filesystem) is an error.
func (l *Layout) Lookup(source string) (*Volume, error) {
	src := strings.TrimSpace(source)
	key, val, ok := strings.Cut(src, "=")
	if !ok || strings.HasPrefix(src, "/") {
		key, val = "", src
	}
	val = strings.Trim(val, `"'`)
	if key == "" {
		for _, p := range []struct{ prefix, key string }{
			{"/dev/disk/by-uuid/", "UUID"}, {"/dev/disk/by-label/", "LABEL"},
			{"/dev/disk/by-partuuid/", "PARTUUID"}, {"/dev/disk/by-partlabel/", "PARTLABEL"},
		} {
			if rest, ok := strings.CutPrefix(val, p.prefix); ok {
				key, val = p.key, unescapeUdev(rest)
			}
		}
	}
	var match func(v *Volume) bool
	switch strings.ToUpper(key) {
	case "UUID":
		match = func(v *Volume) bool { return v.FS != nil && v.FS.UUID != "" && strings.EqualFold(v.FS.UUID, val) }
	case "LABEL":
		match = func(v *Volume) bool { return v.FS != nil && v.FS.Label != "" && v.FS.Label == val }
	case "PARTUUID":
		match = func(v *Volume) bool { p := l.partition(v); return p != nil && strings.EqualFold(l.partUUID(p), val) }
	case "PARTLABEL":
		match = func(v *Volume) bool { p := l.partition(v); return p != nil && p.Name != "" && p.Name == val }
	case "":
		id, err := l.deviceID(val)
		if err != nil {
			return nil, err
		}
		match = func(v *Volume) bool { return v.ID == id }
	default:
		return nil, fmt.Errorf("%q: %s= names no volume here", source, key)
	}
	var found []*Volume
	for _, v := range l.Volumes {
		if match(v) {
			found = append(found, v)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%q: no such volume on this disk", source)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, v := range found {
		ids[i] = v.ID
	}
	return nil, fmt.Errorf("%q: names %d volumes (%s)", source, len(found), strings.Join(ids, ", "))
}

func (l *Layout) partition(v *Volume) *Partition { return PartitionOf(l.Partitions, v) }

// PartitionOf returns the entry of parts that volume v is, or nil when v is
// not a partition (an LV, a whole disk) or is not among parts.
func PartitionOf(parts []Partition, v *Volume) *Partition {
	if v == nil || v.Kind != "partition" {
		return nil
	}
	for i := range parts {
		if parts[i].Index == v.Partition {
			return &parts[i]
		}
	}
	return nil
}

// partUUID is the PARTUUID blkid gives a partition: the GPT partition GUID,
// or for MBR the disk signature and the partition number ("d15c0003-05").
func (l *Layout) partUUID(p *Partition) string {
	if p.Scheme == "gpt" {
		return p.GUID
	}
	return fmt.Sprintf("%s-%02x", strings.TrimPrefix(l.DiskID, "0x"), p.Index)
}

var partDevice = regexp.MustCompile(`^/dev/(?:(?:[shv]d|xvd)[a-z]+([0-9]+)|(?:nvme[0-9]+n[0-9]+|mmcblk[0-9]+|loop[0-9]+)p([0-9]+))$`)

// deviceID turns a device path or volume id into a volume id.
func (l *Layout) deviceID(dev string) (string, error) {
	if m := partDevice.FindStringSubmatch(dev); m != nil {
		return "p" + m[1] + m[2], nil
	}
	if rest, ok := strings.CutPrefix(dev, "/dev/mapper/"); ok {
		// device-mapper doubles the dashes inside VG and LV names: vg--a-lv--b is vg-a/lv-b
		for i := 0; i < len(rest); i++ {
			if rest[i] != '-' {
				continue
			}
			if i+1 < len(rest) && rest[i+1] == '-' {
				i++
				continue
			}
			return strings.ReplaceAll(rest[:i], "--", "-") + "/" + strings.ReplaceAll(rest[i+1:], "--", "-"), nil
		}
		return "", fmt.Errorf("%q: not a VG-LV device-mapper name", dev)
	}
	if rest, ok := strings.CutPrefix(dev, "/dev/"); ok {
		if parts := strings.Split(rest, "/"); len(parts) == 2 {
			return rest, nil
		}
		return "", fmt.Errorf("%q: not a device of this disk that deadnode can name", dev)
	}
	return dev, nil
}

// unescapeUdev undoes udev's \x2f-style escapes in /dev/disk/by-* names.
func unescapeUdev(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			var c byte
			if _, err := fmt.Sscanf(s[i+2:i+4], "%02x", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
