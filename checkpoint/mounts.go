package checkpoint

import (
	"fmt"
	"sort"
)

// loadMounts reads the mounts of the root task's mount namespace.
func (b *builder) loadMounts(rootPID uint32) {
	ns := b.inv.rootMntNs
	if ids, err := decodeImage(b.im, fmt.Sprintf(imgIDsFmt, rootPID), decodeIDs); err == nil && ids.MntNsId != nil {
		ns = ids.GetMntNsId()
	}
	if ids := b.readCore(&Process{}, rootPID).GetIds(); ids != nil && ids.MntNsId != nil {
		ns = ids.GetMntNsId()
	}
	for _, m := range optional(b, fmt.Sprintf(imgMountpointsFmt, ns), decodeMountpoints) {
		fst := m.GetFsname()
		if fst == "" {
			fst = fstypeNames[m.GetFstype()]
		}
		b.cp.Mounts = append(b.cp.Mounts, Mount{ID: m.GetMntId(), ParentID: m.GetParentMntId(), Mountpoint: m.GetMountpoint(), Root: m.GetRoot(),
			Source: m.GetSource(), FSType: fst, Options: m.GetOptions(), External: m.GetExtMount() || m.GetExtKey() != "", Deleted: m.GetDeleted()})
	}
	sort.SliceStable(b.cp.Mounts, func(i, j int) bool { return b.cp.Mounts[i].ID < b.cp.Mounts[j].ID })
}
