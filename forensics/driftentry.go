package forensics

// This file judges one entry of a drift source against the image: its
// change class, content, executable kind, flags and identical copies.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/overlay"
)

func (d *job) entry(st *evidence.Stat) error {
	p := st.Name
	if d.ds.Upper.Kind == overlay.LayerTar {
		kind, target := overlay.ParseWhiteoutName(path.Base(p))
		switch kind {
		case overlay.Whiteout:
			d.whiteout(path.Join(path.Dir(p), target), st, "")
			return nil
		case overlay.OpaqueWhiteout:
			d.opaque(path.Dir(p), st)
			return nil
		case overlay.WhiteoutMeta:
			return nil
		}
	}
	// xattrs of every kind of upper layer: a tar's (rootfs-diff.tar, a
	// checkpoint's RW layer) are its PAX records, where an added
	// security.capability is as telling as on a directory's file
	xs, err := d.up.Xattrs(p)
	if err != nil {
		d.warn("%s: xattrs: %v", p, err)
	}
	if d.ds.Upper.Kind == overlay.LayerDir {
		if st.IsWhiteout() {
			d.whiteout(p, st, "")
			return nil
		}
		if _, ok := d.overlayXattr(xs, overlay.XattrWhiteout); ok && st.Mode.IsRegular() && st.Size == 0 {
			d.whiteout(p, st, "xattr whiteout")
			return nil
		}
	}
	lo, err := d.lowerEntry(p)
	if err != nil {
		d.warn("%s: lower lookup: %v", p, err)
	}
	f := d.base(p, st)
	if st.Mode.IsDir() {
		opq, _ := d.overlayXattr(xs, overlay.XattrOpaque)
		switch {
		case lo != nil && lo.Stat.Mode.IsDir() && len(opq) == 1 && opq[0] == overlay.OpaqueYes:
			f.Change = ChangeOpaqueDir
			f.Hides = d.countLower(p)
			f.LowerType = "dir"
			d.emit(f, st, nil)
		case lo == nil:
			f.Change = d.addedChange()
			d.emit(f, st, nil)
		case !lo.Stat.Mode.IsDir():
			f.Change = ChangeTypeChanged
			f.LowerType = lo.Type()
			d.emit(f, st, nil)
		default:
			// A copied-up parent: a finding only when its own mode or
			// owner changed (its times move with every child).
			if ch := metaDiff(st, lo.Stat, false); len(ch) > 0 {
				f.Change = ChangeMetadataOnly
				f.MetadataChanged = ch
				f.LowerType = "dir"
				d.emit(f, st, nil)
			}
		}
		return nil
	}
	if st.Mode&fs.ModeSymlink != 0 {
		if f.LinkTarget, err = d.up.Readlink(p); err != nil {
			d.warn("%s: readlink: %v", p, err)
		}
	}
	switch {
	case lo == nil:
		f.Change = d.addedChange()
	case lo.Type() != f.Type:
		f.Change = ChangeTypeChanged
		f.LowerType = lo.Type()
		f.LowerLinkTarget = lo.LinkTarget
	default:
		f.LowerType = lo.Type()
		f.LowerLinkTarget = lo.LinkTarget
		f.Change = ChangeModified
		if st.Mode&fs.ModeSymlink != 0 {
			if f.LinkTarget == lo.LinkTarget {
				f.Change = ChangeMetadataOnly
			}
		}
	}
	var meta bool
	if st.Mode.IsRegular() {
		_, meta = d.overlayXattr(xs, overlay.XattrMetacopy)
	}
	d.content(&f, st, lo, meta)
	if f.Change == ChangeMetadataOnly {
		f.MetadataChanged = metaDiff(st, lo.Stat, true)
		if d.lower != nil {
			if lx, err := d.lower.Xattrs(lo); err == nil && !sameXattrs(xs, lx) {
				f.MetadataChanged = append(f.MetadataChanged, "xattrs")
			}
		}
	}
	d.emit(f, st, xs)
	return nil
}

func (d *drifter) addedChange() string {
	if d.lower == nil {
		return ChangeAddedOrModified
	}
	return ChangeAdded
}

// content hashes a regular file, compares it with the lower one, and
// recognises executables.
func (d *job) content(f *DriftEntry, st *evidence.Stat, lo *overlay.Entry, metacopy bool) {
	if !st.Mode.IsRegular() {
		return
	}
	if metacopy {
		// Metadata-only copy-up: the data is the lower file's.
		f.Note = "overlay metacopy: data is the lower file's"
		if lo != nil && f.Change == ChangeModified {
			f.Change = ChangeMetadataOnly
		}
		if lo != nil {
			f.SHA256 = d.hashLower(lo)
			f.LowerSHA256 = f.SHA256
			d.classifyLower(f, lo)
		}
		return
	}
	file, err := d.up.Open(st.Name)
	if err != nil {
		f.Note = "unreadable: " + err.Error()
		return
	}
	defer file.Close()
	d.classify(f, file)
	if d.opt.NoHash {
		if lo != nil && f.Change == ChangeModified && lo.Stat.Size == st.Size {
			f.Note = "content not compared (--no-hash); same size as the image's"
		}
		return
	}
	f.SHA256, err = d.hashReader(io.NewSectionReader(file, 0, file.Size()))
	if err != nil {
		f.Note = "read error: " + err.Error()
		return
	}
	if lo != nil && lo.Stat.Mode.IsRegular() {
		f.LowerSHA256 = d.hashLower(lo)
		if f.Change == ChangeModified && f.LowerSHA256 == f.SHA256 && f.SHA256 != "" {
			f.Change = ChangeMetadataOnly
		}
		if d.opt.Diff && f.Change == ChangeModified {
			if lf, err := d.lower.OpenEntry(lo); err == nil {
				f.Diff = textDiff(f.Path, lf, file, f.LowerSHA256, f.SHA256)
				lf.Close()
			}
		}
	}
	if (f.Change == ChangeAdded || f.Change == ChangeModified || f.Change == ChangeTypeChanged) && st.Size > 0 && (f.ExecKind != "" || d.opt.IdenticalAll) {
		f.IdenticalTo = d.identical(st.Size, f.SHA256, "/"+st.Name)
	}
}

func (d *job) hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, r, d.buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (d *job) hashLower(lo *overlay.Entry) string {
	d.mu.Lock()
	h, ok := d.lowerHash[lo.Path]
	d.mu.Unlock()
	if ok {
		return h
	}
	if f, err := d.lower.OpenEntry(lo); err == nil {
		h, _ = d.hashReader(io.NewSectionReader(f, 0, f.Size()))
		f.Close()
	}
	d.mu.Lock()
	d.lowerHash[lo.Path] = h
	d.mu.Unlock()
	return h
}

// identical finds an image file with the same content (e.g. a renamed
// copy of /bin/busybox): image files are indexed by size once, and only
// those of the same size are hashed.
func (d *job) identical(size int64, sum, self string) string {
	if d.lower == nil || sum == "" {
		return ""
	}
	d.sizeOnce.Do(func() {
		d.bySize = map[int64][]string{}
		for e, err := range d.lower.Walk(d.ctx, ".") {
			if err != nil || e == nil || !e.Stat.Mode.IsRegular() || e.Stat.Size == 0 {
				continue
			}
			d.bySize[e.Stat.Size] = append(d.bySize[e.Stat.Size], e.Path)
		}
	})
	cands := d.bySize[size]
	for i, p := range cands {
		if i >= d.opt.MaxIdentical {
			break
		}
		e, err := d.lower.LstatEntry(p)
		if err != nil {
			continue
		}
		if d.hashLower(e) == sum && "/"+p != self {
			return "/" + p
		}
	}
	return ""
}

// countLower counts the entries of the lower view below p.
func (d *drifter) countLower(p string) int {
	if d.lower == nil {
		return 0
	}
	n := 0
	for e, err := range d.lower.Walk(d.ctx, p) {
		if err == nil && e != nil && e.Path != p {
			n++
		}
	}
	return n
}

func (d *job) whiteout(p string, st *evidence.Stat, note string) {
	f := d.base(p, st)
	f.Type = "whiteout"
	f.Note = note
	lo, err := d.lowerEntry(p)
	if err != nil {
		d.warn("%s: lower lookup: %v", p, err)
	}
	switch {
	case d.lower == nil:
		f.Change = ChangeDeleted
		f.Note = strings.TrimPrefix(note+"; image not at hand", "; ")
	case lo == nil:
		f.Change = ChangeDeleted
		f.Note = strings.TrimPrefix(note+"; the image has nothing here to delete", "; ")
	case lo.Stat.Mode.IsDir():
		f.Change = ChangeDeletedDir
		f.LowerType = "dir"
		f.Hides = d.countLower(p)
	default:
		f.Change = ChangeDeleted
		f.LowerType = lo.Type()
		if lo.Stat.Mode.IsRegular() && !d.opt.NoHash {
			f.LowerSHA256 = d.hashLower(lo)
		}
		f.LowerLinkTarget = lo.LinkTarget
	}
	d.emit(f, st, nil)
}

func (d *job) opaque(p string, st *evidence.Stat) {
	lo, _ := d.lowerEntry(p)
	if lo == nil || !lo.Stat.Mode.IsDir() {
		return // a new directory: its entries speak for it
	}
	f := d.base(p, st)
	f.Type, f.Change, f.LowerType = "dir", ChangeOpaqueDir, "dir"
	f.Hides = d.countLower(p)
	d.emit(f, nil, nil)
}

func (d *job) emit(f DriftEntry, st *evidence.Stat, xs map[string][]byte) {
	f.Flags = append(f.Flags, classify.PathFlags(f.Path)...)
	if st != nil {
		if st.Mode&fs.ModeSetuid != 0 {
			f.Flags = append(f.Flags, classify.FlagSetuid)
		}
		if st.Mode&fs.ModeSetgid != 0 && !st.Mode.IsDir() {
			f.Flags = append(f.Flags, classify.FlagSetgid)
		}
		if st.Mode&0o002 != 0 && st.Mode&fs.ModeSymlink == 0 && st.Mode&fs.ModeSticky == 0 {
			f.Flags = append(f.Flags, classify.FlagWorldWrite)
		}
		if st.Mode.IsRegular() && st.Size == 0 && classify.RuntimeMountPoint(f.Path) && (f.Change == ChangeAdded || f.Change == ChangeAddedOrModified || f.Change == ChangeModified || f.Change == ChangeMetadataOnly) {
			f.Flags = append(f.Flags, classify.FlagBenign)
		}
	}
	if _, ok := xs["security.capability"]; ok {
		f.Flags = append(f.Flags, classify.FlagCapability)
	}
	d.out = append(d.out, f)
}

// volumeEntry classifies an entry of a writable volume: added, with the
// same content checks as an upper layer's file.
func (d *job) volumeEntry(m *kube.Mount, rel string, st *evidence.Stat) {
	p := m.ContainerPathOf(rel)
	if p == "" {
		p = path.Join(PseudoPath(*m), rel)
	}
	f := d.base(strings.TrimPrefix(p, "/"), nil)
	f.Change = ChangeAdded
	f.Type = overlay.TypeOf(st.Mode)
	f.Size = st.Size
	f.Mode = evidence.ModeString(st.Mode)
	f.UID, f.GID = st.UID, st.GID
	f.Atime, f.FileTimes = model.T(st.Atime), model.TimesOf(st)
	f.EvidencePath = "/" + st.Name
	f.Layer = m.EvidencePath
	f.Volume = m.Volume
	if m.Kind == kube.MountHostPath || f.Volume == "" {
		f.Volume = m.Origin
	}
	if m.ContainerPath == nil {
		f.Note = "in volume " + m.Volume + " (" + m.VolumeKind + "), which the container's OCI spec does not list: container path unknown"
	}
	src := d.ds.VolumeSource
	xs, err := src.Xattrs(st.Name)
	if err != nil {
		d.warn("%s: xattrs: %v", st.Name, err)
	}
	switch {
	case st.Mode&fs.ModeSymlink != 0:
		if f.LinkTarget, err = src.Readlink(st.Name); err != nil {
			d.warn("%s: readlink: %v", st.Name, err)
		}
	case st.Mode.IsRegular():
		file, err := src.Open(st.Name)
		if err != nil {
			f.Note = strings.TrimPrefix(f.Note+"; unreadable: "+err.Error(), "; ")
			break
		}
		d.classify(&f, file)
		if !d.opt.NoHash {
			if f.SHA256, err = d.hashReader(io.NewSectionReader(file, 0, file.Size())); err != nil {
				f.Note = strings.TrimPrefix(f.Note+"; read error: "+err.Error(), "; ")
			} else if st.Size > 0 && (f.ExecKind != "" || d.opt.IdenticalAll) {
				f.IdenticalTo = d.identical(st.Size, f.SHA256, "")
			}
		}
		file.Close()
	}
	d.emit(f, st, xs)
}

// metaDiff names what differs between two entries' metadata.
func metaDiff(a, b *evidence.Stat, times bool) []string {
	var out []string
	if a.Mode.Perm() != b.Mode.Perm() || a.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != b.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) {
		out = append(out, "mode")
	}
	if a.UID != b.UID || a.GID != b.GID {
		out = append(out, "owner")
	}
	if times && !a.Mtime.Equal(b.Mtime) {
		out = append(out, "mtime")
	}
	return out
}

// sameXattrs compares xattrs other than overlay's own bookkeeping.
func sameXattrs(a, b map[string][]byte) bool {
	clean := func(m map[string][]byte) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if strings.HasPrefix(k, overlay.XattrTrustedPrefix) || strings.HasPrefix(k, overlay.XattrUserPrefix) {
				continue
			}
			out[k] = string(v)
		}
		return out
	}
	ca, cb := clean(a), clean(b)
	if len(ca) != len(cb) {
		return false
	}
	for k, v := range ca {
		if cb[k] != v {
			return false
		}
	}
	return true
}

// classify recognises an executable from its first bytes and mode.
func (d *job) classify(f *DriftEntry, file evidence.File) {
	hdr := make([]byte, MaxHeader)
	n, _ := file.ReadAt(hdr, 0)
	hdr = hdr[:n]
	classifyBytes(f, hdr, file)
}

func classifyBytes(f *DriftEntry, hdr []byte, r io.ReaderAt) {
	var mode uint32
	fmt.Sscanf(f.Mode, "%o", &mode)
	e := classify.File(hdr, r, fs.FileMode(mode&0o777))
	f.ExecKind, f.ELF, f.Interpreter = e.Kind, e.ELF, e.Interpreter
}

func (d *job) classifyLower(f *DriftEntry, lo *overlay.Entry) {
	file, err := d.lower.OpenEntry(lo)
	if err != nil {
		return
	}
	defer file.Close()
	d.classify(f, file)
}

// tooDeep reports a directory whose tree goes deeper than a walk
// descends: what lies below is not examined.
func (d *job) tooDeep(st *evidence.Stat) {
	f := d.base(st.Name, st)
	f.Change = ChangeTooDeep
	f.Note = fmt.Sprintf("the tree below goes deeper than %d levels; it was not examined", evidence.DefaultMaxDepth)
	d.out = append(d.out, f)
}

// EventTime is when the file last changed (its mtime; zero when deleted):
// where a ranked case (Triage) places the finding in time.
func (e DriftEntry) EventTime() time.Time { return e.Mtime.Time }
