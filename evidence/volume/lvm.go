package volume

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// LVM2 on-disk format (lib/format_text/layout.h, lib/label/label.h), little-endian:
//
//	label, in one of sectors 0-3:  0 "LABELONE"  8 sector number (u64)  16 crc (u32, of bytes 20-511)
//	                              20 offset of the PV header from the label (u32)  24 "LVM2 001"
//	PV header:  0 PV UUID (32 chars)  32 device size (u64, bytes)
//	            40 disk_locn list of data areas {offset u64, size u64}, zero-terminated,
//	               then the same for metadata areas (offsets and sizes in bytes from the PV start)
//	metadata area header (512 bytes at the area's start):  0 crc (u32, of bytes 4-511)
//	            4 magic " LVM2 x[5A%r0N*>"  20 version (1)  24 start (u64)  32 size (u64)
//	            40 raw_locn list {offset u64 (from the area start), size u64, crc u32, flags u32}
//	the first raw_locn is the current metadata text; the area after its header is a
//	circular buffer, so the text may wrap from the area's end to just after the header.
//
// LVM's crc is CRC-32 (IEEE, reflected) seeded with 0xf597a6cf and not inverted.
const (
	lvmLabelID      = "LABELONE"
	lvmType         = "LVM2 001"
	lvmMDAMagic     = " LVM2 x[5A%r0N*>"
	lvmInitialCRC   = 0xf597a6cf
	lvmMDAHeader    = 512
	lvmMaxLocns     = 16
	lvmMaxMetadata  = 16 << 20
	lvmRawIgnored   = 1
	lvmMaxStripes   = 128
	lvmMaxSegments  = 100000
	lvmMaxExtentB   = 1 << 40 // bytes in one extent
	lvmMaxBytes     = 1 << 56 // bytes of one LV or PV's extents (64 PiB): extents times their size stay far from overflow
	lvmSector       = 512
	lvmRawLocnSize  = 24
	lvmDiskLocnSize = 16
)

func lvmCRC(b []byte) uint32 {
	return ^crc32.Update(^uint32(lvmInitialCRC), crc32.IEEETable, b)
}

// lvmUUID formats a 32-character LVM id as LVM prints it (6-4-4-4-4-4-6).
func lvmUUID(b []byte) string {
	s := cstring(b)
	if len(s) != 32 {
		return s
	}
	return strings.Join([]string{s[0:6], s[6:10], s[10:14], s[14:18], s[18:22], s[22:26], s[26:32]}, "-")
}

// VolumeGroup is an LVM2 volume group, as its newest metadata describes it.
type VolumeGroup struct {
	Name       string           `json:"name"`
	UUID       string           `json:"uuid"`
	Seqno      int64            `json:"seqno"`
	ExtentSize int64            `json:"extent_size"` // bytes
	Status     []string         `json:"status"`
	PVs        []PhysicalVolume `json:"pvs"`
	LVs        []LogicalVolume  `json:"lvs"`
}

// PhysicalVolume is one PV of a volume group.
type PhysicalVolume struct {
	Name    string `json:"name"` // "pv0", as the metadata names it
	UUID    string `json:"uuid"`
	Device  string `json:"device,omitempty"` // the device LVM last saw it on ("/dev/sda2")
	Volume  string `json:"volume,omitempty"` // the volume of this image holding it ("p2"); empty: not in this image
	PEStart int64  `json:"pe_start"`         // bytes from the PV's start to its first extent
	PECount int64  `json:"pe_count"`
	DevSize int64  `json:"dev_size"` // bytes
}

// LogicalVolume is one LV of a volume group.
type LogicalVolume struct {
	Name         string    `json:"name"`
	UUID         string    `json:"uuid"`
	Status       []string  `json:"status"`
	Visible      bool      `json:"visible"`
	Size         int64     `json:"size"`                    // bytes
	CreationTime int64     `json:"creation_time,omitempty"` // unix seconds, as LVM recorded it
	CreationHost string    `json:"creation_host,omitempty"`
	Segments     []Segment `json:"segments"`
	Readable     bool      `json:"readable"`
	Note         string    `json:"note,omitempty"`
}

// Segment maps a run of an LV's extents onto PVs.
type Segment struct {
	StartExtent int64    `json:"start_extent"`
	ExtentCount int64    `json:"extent_count"`
	Type        string   `json:"type"`                  // "linear", "striped", or LVM's type name (thin, raid1, …)
	StripeSize  int64    `json:"stripe_size,omitempty"` // bytes
	Stripes     []Stripe `json:"stripes,omitempty"`
}

// Stripe is one area of a segment: extents of one PV.
type Stripe struct {
	PV          string `json:"pv"` // the PV's name in the metadata
	StartExtent int64  `json:"start_extent"`
	Offset      int64  `json:"offset"` // byte offset on the disk; -1 when the PV is not in this image
}

type diskLocn struct{ offset, size int64 }

type pvLabel struct {
	vol       *Volume
	uuid      string
	devSize   int64
	data, mda []diskLocn
	texts     []metaText
}

type metaText struct {
	text string
	at   int64 // byte offset of the text's start in the PV
	what string
}

// readPV reads the label, PV header and metadata areas of a PV volume.
func readPV(v *Volume) (*pvLabel, error) {
	head := make([]byte, 4*lvmSector)
	if err := readAt(v.r, head, 0); err != nil {
		return nil, &vfs.FormatError{File: "lvm label", Offset: 0, Err: err}
	}
	le := binary.LittleEndian
	for sec := int64(0); sec < 4; sec++ {
		lb := head[sec*lvmSector : (sec+1)*lvmSector]
		if string(lb[:8]) != lvmLabelID {
			continue
		}
		at := sec * lvmSector
		bad := func(what string, off int64, format string, args ...any) error {
			return &vfs.FormatError{File: "lvm " + what, Offset: off, Msg: fmt.Sprintf(format, args...)}
		}
		if n := int64(le.Uint64(lb[8:])); n != sec {
			return nil, bad("label", at+8, "says it lies in sector %d, found in sector %d", n, sec)
		}
		if got, want := lvmCRC(lb[20:]), le.Uint32(lb[16:]); got != want {
			return nil, bad("label", at+16, "crc %#08x, computed %#08x", want, got)
		}
		if string(lb[24:32]) != lvmType {
			return nil, bad("label", at+24, "type %q (%q is read)", lb[24:32], lvmType)
		}
		hoff := int64(le.Uint32(lb[20:]))
		if hoff < 32 || hoff+40+2*lvmDiskLocnSize > lvmSector {
			return nil, bad("label", at+20, "PV header offset %d out of range", hoff)
		}
		ph := lb[hoff:]
		pv := &pvLabel{vol: v, uuid: lvmUUID(ph[:32]), devSize: int64(le.Uint64(ph[32:]))}
		pos := int64(40)
		for list := 0; list < 2; list++ {
			for n := 0; ; n++ {
				if hoff+pos+lvmDiskLocnSize > lvmSector || n > lvmMaxLocns {
					return nil, bad("pv header", at+hoff+pos, "area list not terminated within the label sector")
				}
				off, size := le.Uint64(ph[pos:]), le.Uint64(ph[pos+8:])
				pos += lvmDiskLocnSize
				if off == 0 {
					break
				}
				if off > uint64(v.Size) || size > uint64(v.Size) {
					return nil, bad("pv header", at+hoff+pos-lvmDiskLocnSize, "area at %d (%d bytes) lies outside the volume (%d bytes)", off, size, v.Size)
				}
				d := diskLocn{int64(off), int64(size)}
				if list == 0 {
					pv.data = append(pv.data, d)
				} else {
					pv.mda = append(pv.mda, d)
				}
			}
		}
		var errs []error
		for i, m := range pv.mda {
			t, err := readMDA(v, m, fmt.Sprintf("metadata area %d", i))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if t != nil {
				pv.texts = append(pv.texts, *t)
			}
		}
		if len(pv.texts) == 0 && len(errs) > 0 {
			return pv, errs[0]
		}
		return pv, nil
	}
	return nil, &vfs.FormatError{File: "lvm label", Offset: 0, Msg: "no LABELONE in sectors 0-3"}
}

// readMDA reads the current metadata text of one metadata area (nil when the
// area holds none: a PV outside any VG, or an ignored area).
func readMDA(v *Volume, m diskLocn, what string) (*metaText, error) {
	bad := func(off int64, format string, args ...any) error {
		return &vfs.FormatError{File: "lvm " + what, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	if m.size < 2*lvmMDAHeader || m.offset+m.size > v.Size {
		return nil, bad(m.offset, "%d bytes at %d: too small, or past the volume's end (%d bytes)", m.size, m.offset, v.Size)
	}
	h := make([]byte, lvmMDAHeader)
	if err := readAt(v.r, h, m.offset); err != nil {
		return nil, &vfs.FormatError{File: "lvm " + what, Offset: m.offset, Err: err}
	}
	le := binary.LittleEndian
	if string(h[4:20]) != lvmMDAMagic {
		return nil, bad(m.offset+4, "no metadata area magic")
	}
	if got, want := lvmCRC(h[4:]), le.Uint32(h); got != want {
		return nil, bad(m.offset, "header crc %#08x, computed %#08x", want, got)
	}
	if ver := le.Uint32(h[20:]); ver != 1 {
		return nil, bad(m.offset+20, "version %d (1 is read)", ver)
	}
	start, size := int64(le.Uint64(h[24:])), int64(le.Uint64(h[32:]))
	if start != m.offset || size != m.size {
		return nil, bad(m.offset+24, "header says %d bytes at %d, the PV header %d at %d", size, start, m.size, m.offset)
	}
	rl := h[40:]
	off, tlen, crc, flags := int64(le.Uint64(rl)), int64(le.Uint64(rl[8:])), le.Uint32(rl[16:]), le.Uint32(rl[20:])
	if off == 0 || flags&lvmRawIgnored != 0 {
		return nil, nil
	}
	if off < lvmMDAHeader || off >= size || tlen <= 0 || tlen > size-lvmMDAHeader || tlen > lvmMaxMetadata {
		return nil, bad(m.offset+40, "metadata text of %d bytes at %d does not fit the %d-byte area", tlen, off, size)
	}
	text := make([]byte, tlen)
	first := min(tlen, size-off)
	if err := readAt(v.r, text[:first], m.offset+off); err != nil {
		return nil, &vfs.FormatError{File: "lvm " + what + " text", Offset: m.offset + off, Err: err}
	}
	if first < tlen { // the circular buffer wrapped: the rest follows the header
		if err := readAt(v.r, text[first:], m.offset+lvmMDAHeader); err != nil {
			return nil, &vfs.FormatError{File: "lvm " + what + " text", Offset: m.offset + lvmMDAHeader, Err: err}
		}
	}
	if got := lvmCRC(text); got != crc {
		return nil, bad(m.offset+40, "metadata text crc %#08x, computed %#08x", crc, got)
	}
	return &metaText{text: strings.TrimRight(string(text), "\x00"), at: m.offset + off, what: what}, nil
}

// The parsed metadata of one VG.
type vgMeta struct {
	name, id   string
	seqno      int64
	extent     int64 // sectors
	status     []string
	pvs        []*pvMeta
	lvs        []*lvMeta
	from       *pvLabel
	textAt     int64
	textWhat   string
	otherSeqno []string
}

type pvMeta struct {
	name, id, device          string
	devSize, peStart, peCount int64 // sectors, sectors, extents
	label                     *pvLabel
}

type lvMeta struct {
	name, id     string
	status       []string
	ctime        int64
	chost        string
	segs         []*segMeta
	segCount     int64
	off          int
	cowOf        string // this LV is the exception store of a snapshot of that origin
	cowSnapshot  string
	declaredSegs int64
}

type segMeta struct {
	name                    string
	start, count            int64 // extents
	typ                     string
	stripeCount, stripeSize int64 // stripe size in sectors
	stripes                 []stripeMeta
	origin, cowStore        string
	off                     int
}

type stripeMeta struct {
	pv    string
	start int64
}

func parseVGMeta(t metaText, from *pvLabel) (*vgMeta, error) {
	what := fmt.Sprintf("lvm metadata (%s %s, text at byte %d of the PV)", from.vol.ID, t.what, t.at)
	root, err := parseConfig(t.text, what, 0)
	if err != nil {
		return nil, err
	}
	secs := root.sections()
	if len(secs) != 1 {
		return nil, &vfs.FormatError{File: what, Offset: 0, Msg: fmt.Sprintf("%d top-level sections, one volume group expected", len(secs))}
	}
	sec := secs[0]
	bad := func(n *cfgNode, format string, args ...any) error {
		off := int64(0)
		if n != nil {
			off = int64(n.off)
		}
		return &vfs.FormatError{File: what, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	vg := &vgMeta{name: sec.name, from: from, textAt: t.at, textWhat: what}
	vg.id, _ = sec.str("id")
	vg.seqno, _ = sec.int("seqno")
	vg.status = sec.strings("status")
	var ok bool
	if vg.extent, ok = sec.int("extent_size"); !ok || vg.extent <= 0 || vg.extent*lvmSector > lvmMaxExtentB {
		return nil, bad(sec.child("extent_size"), "vg %s: extent_size %d sectors out of range", vg.name, vg.extent)
	}
	if pvs := sec.child("physical_volumes"); pvs != nil {
		for _, p := range pvs.sections() {
			pm := &pvMeta{name: p.name}
			pm.id, _ = p.str("id")
			pm.device, _ = p.str("device")
			pm.devSize, _ = p.int("dev_size")
			pm.peStart, _ = p.int("pe_start")
			pm.peCount, _ = p.int("pe_count")
			if pm.devSize < 0 || pm.devSize > 1<<50 || pm.peStart < 0 || pm.peStart > 1<<50 || pm.peCount < 0 || pm.peCount > 1<<40 {
				return nil, bad(p, "pv %s: dev_size %d, pe_start %d or pe_count %d out of range", pm.name, pm.devSize, pm.peStart, pm.peCount)
			}
			vg.pvs = append(vg.pvs, pm)
		}
	}
	nsegs := 0
	if lvs := sec.child("logical_volumes"); lvs != nil {
		for _, l := range lvs.sections() {
			lm := &lvMeta{name: l.name, off: l.off}
			lm.id, _ = l.str("id")
			lm.status = l.strings("status")
			lm.ctime, _ = l.int("creation_time")
			lm.chost, _ = l.str("creation_host")
			lm.declaredSegs, _ = l.int("segment_count")
			for _, sg := range l.sections() {
				if !strings.HasPrefix(sg.name, "segment") {
					continue
				}
				nsegs++
				if nsegs > lvmMaxSegments {
					return nil, bad(sg, "more than %d segments", lvmMaxSegments)
				}
				sm := &segMeta{name: sg.name, off: sg.off}
				sm.start, _ = sg.int("start_extent")
				sm.count, _ = sg.int("extent_count")
				sm.typ, _ = sg.str("type")
				sm.stripeCount, _ = sg.int("stripe_count")
				sm.stripeSize, _ = sg.int("stripe_size")
				sm.origin, _ = sg.str("origin")
				sm.cowStore, _ = sg.str("cow_store")
				if c := sg.child("stripes"); c != nil && c.value != nil && c.value.kind == 'l' {
					list := c.value.list
					if len(list) > 2*lvmMaxStripes {
						return nil, bad(c, "lv %s %s: more than %d stripes", lm.name, sg.name, lvmMaxStripes)
					}
					for i := 0; i+1 < len(list); i += 2 {
						if list[i].kind != 's' || list[i+1].kind != 'i' {
							return nil, bad(c, "lv %s %s: stripes must pair a PV name with an extent", lm.name, sg.name)
						}
						sm.stripes = append(sm.stripes, stripeMeta{pv: list[i].s, start: list[i+1].i})
					}
					if len(list)%2 != 0 {
						return nil, bad(c, "lv %s %s: odd stripes list", lm.name, sg.name)
					}
				}
				lm.segs = append(lm.segs, sm)
			}
			vg.lvs = append(vg.lvs, lm)
		}
	}
	return vg, nil
}

// scanLVM reads the PVs among the volumes found so far and adds their VGs
// and LVs.
func (s *scanner) scanLVM() {
	var labels []*pvLabel
	for _, v := range s.l.Volumes {
		if v.FS == nil || v.FS.Type != "LVM2_member" {
			continue
		}
		pv, err := readPV(v)
		if err != nil {
			s.warn("pv "+v.ID, "", err)
		}
		if pv != nil {
			labels = append(labels, pv)
		}
	}
	// the newest metadata of each VG, by its id
	byID := map[string]*vgMeta{}
	var order []string
	for _, pv := range labels {
		for _, t := range pv.texts {
			vg, err := parseVGMeta(t, pv)
			if err != nil {
				s.warn("pv "+pv.vol.ID, "", err)
				continue
			}
			key := vg.id
			if key == "" {
				key = vg.name
			}
			old, ok := byID[key]
			switch {
			case !ok:
				byID[key] = vg
				order = append(order, key)
			case vg.seqno > old.seqno:
				vg.otherSeqno = append(old.otherSeqno, fmt.Sprintf("%d on %s", old.seqno, old.from.vol.ID))
				byID[key] = vg
			case vg.seqno < old.seqno:
				old.otherSeqno = append(old.otherSeqno, fmt.Sprintf("%d on %s", vg.seqno, pv.vol.ID))
			}
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := byID[order[i]], byID[order[j]]
		if a.name != b.name {
			return a.name < b.name
		}
		return a.id < b.id
	})
	names := map[string]int{}
	for _, k := range order {
		names[byID[k].name]++
	}
	for _, k := range order {
		vg := byID[k]
		label := vg.name
		if names[vg.name] > 1 {
			label = vg.name + "(" + vg.id + ")"
			s.warn("vg "+vg.name, fmt.Sprintf("%d volume groups are named %s: their volumes are told apart by id", names[vg.name], vg.name), nil)
		}
		if len(vg.otherSeqno) > 0 {
			s.warn("vg "+label, fmt.Sprintf("metadata seqno %d read from %s; older copies: %s", vg.seqno, vg.from.vol.ID, strings.Join(vg.otherSeqno, ", ")), nil)
		}
		s.addVG(vg, label, labels)
	}
}

func (s *scanner) addVG(vg *vgMeta, label string, labels []*pvLabel) {
	es := vg.extent * lvmSector
	out := VolumeGroup{Name: vg.name, UUID: vg.id, Seqno: vg.seqno, ExtentSize: es, Status: nonNil(vg.status), PVs: []PhysicalVolume{}, LVs: []LogicalVolume{}}
	pvByName := map[string]*pvMeta{}
	for _, pm := range vg.pvs {
		pvByName[pm.name] = pm
		for _, lb := range labels {
			if lb.uuid == pm.id {
				pm.label = lb
				if lb.devSize != pm.devSize*lvmSector && pm.devSize != 0 {
					s.warn("pv "+lb.vol.ID, fmt.Sprintf("the label says %d bytes, the metadata of vg %s %d", lb.devSize, vg.name, pm.devSize*lvmSector), nil)
				}
				break
			}
		}
		rec := PhysicalVolume{Name: pm.name, UUID: pm.id, Device: pm.device, PEStart: pm.peStart * lvmSector, PECount: pm.peCount, DevSize: pm.devSize * lvmSector}
		if pm.label != nil {
			rec.Volume = pm.label.vol.ID
			if pm.peCount > lvmMaxBytes/es {
				s.warn("vg "+label, fmt.Sprintf("pv %s: %d extents of %d bytes, more than %d bytes: its LVs are not read", pm.name, pm.peCount, es, int64(lvmMaxBytes)), nil)
			} else if end := pm.peStart*lvmSector + pm.peCount*es; end > pm.label.vol.Size {
				s.warn("vg "+label, fmt.Sprintf("pv %s: %d extents from byte %d end past its volume %s (%d bytes)", pm.name, pm.peCount, pm.peStart*lvmSector, pm.label.vol.ID, pm.label.vol.Size), nil)
			}
		} else {
			s.warn("vg "+label, fmt.Sprintf("pv %s (%s, last seen as %s) is not in this image", pm.name, pm.id, pm.device), nil)
		}
		out.PVs = append(out.PVs, rec)
	}
	// snapshots: the exception store is an LV of its own, readable as bytes but not as a filesystem
	lvByName := map[string]*lvMeta{}
	for _, lm := range vg.lvs {
		lvByName[lm.name] = lm
	}
	for _, lm := range vg.lvs {
		for _, sg := range lm.segs {
			if sg.typ == "snapshot" && sg.cowStore != "" {
				if c := lvByName[sg.cowStore]; c != nil {
					c.cowOf, c.cowSnapshot = sg.origin, lm.name
				}
			}
		}
	}
	type alloc struct {
		start, end int64
		lv         string
	}
	allocs := map[string][]alloc{}
	sort.SliceStable(vg.lvs, func(i, j int) bool { return vg.lvs[i].name < vg.lvs[j].name })
	for _, lm := range vg.lvs {
		rec, r, err := buildLV(vg, lm, pvByName, label)
		if err != nil {
			s.warn(label+"/"+lm.name, "", err)
			rec.Readable, rec.Note = false, err.Error()
		}
		for _, sg := range rec.Segments {
			n := sg.ExtentCount
			if len(sg.Stripes) > 0 {
				n /= int64(len(sg.Stripes))
			}
			for _, st := range sg.Stripes {
				allocs[st.PV] = append(allocs[st.PV], alloc{st.StartExtent, st.StartExtent + n, lm.name})
			}
		}
		out.LVs = append(out.LVs, rec)
		if !rec.Visible {
			continue
		}
		v := &Volume{ID: label + "/" + lm.name, Kind: "lv", VG: vg.name, LV: lm.name, Offset: -1, Size: rec.Size, Readable: rec.Readable, Note: rec.Note}
		if rec.Readable {
			v.r = r
			if len(rec.Segments) == 1 && len(rec.Segments[0].Stripes) == 1 {
				v.Offset = rec.Segments[0].Stripes[0].Offset
			}
			v.FS = s.probe(v, v.ID)
		}
		s.l.Volumes = append(s.l.Volumes, v)
	}
	for pv, as := range allocs {
		sort.SliceStable(as, func(i, j int) bool { return as[i].start < as[j].start })
		for i, far := 1, 0; i < len(as); i++ { // against the allocation reaching furthest so far
			if as[i].start < as[far].end {
				s.warn("vg "+label, fmt.Sprintf("pv %s: extents %d-%d of lv %s overlap extents %d-%d of lv %s", pv, as[i].start, as[i].end-1, as[i].lv, as[far].start, as[far].end-1, as[far].lv), nil)
			}
			if as[i].end > as[far].end {
				far = i
			}
		}
	}
	s.l.VolumeGroups = append(s.l.VolumeGroups, out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// readableSegment types are the ones read here; the rest need
// device-mapper's logic (and metadata of their own).
func segmentTypeName(t string, stripes int64) string {
	if t == "striped" && stripes == 1 {
		return "linear"
	}
	return t
}

// buildLV checks an LV's segments and builds its reader. The record is
// filled as far as the metadata allows even when err says why it cannot be
// read.
func buildLV(vg *vgMeta, lm *lvMeta, pvs map[string]*pvMeta, label string) (LogicalVolume, io.ReaderAt, error) {
	es := vg.extent * lvmSector
	rec := LogicalVolume{Name: lm.name, UUID: lm.id, Status: nonNil(lm.status), CreationTime: lm.ctime, CreationHost: lm.chost, Segments: []Segment{}}
	for _, st := range lm.status {
		if st == "VISIBLE" {
			rec.Visible = true
		}
	}
	bad := func(off int, format string, args ...any) error {
		return &vfs.FormatError{File: vg.textWhat, Offset: int64(off), Msg: fmt.Sprintf("lv %s/%s: ", label, lm.name) + fmt.Sprintf(format, args...)}
	}
	segs := append([]*segMeta(nil), lm.segs...)
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].start < segs[j].start })
	var total int64
	var problem error
	note := func(err error) {
		if problem == nil {
			problem = err
		}
	}
	r := &lvReader{}
	for i, sg := range segs {
		seg := Segment{StartExtent: sg.start, ExtentCount: sg.count, Type: segmentTypeName(sg.typ, sg.stripeCount), Stripes: []Stripe{}}
		if sg.stripeCount > 1 {
			seg.StripeSize = sg.stripeSize * lvmSector
		}
		for _, st := range sg.stripes {
			seg.Stripes = append(seg.Stripes, Stripe{PV: st.pv, StartExtent: st.start, Offset: -1})
		}
		rec.Segments = append(rec.Segments, seg)
		if sg.start < 0 || sg.count <= 0 || sg.start > 1<<40 || sg.count > 1<<40 || sg.start > lvmMaxBytes/es || sg.count > lvmMaxBytes/es-sg.start {
			note(bad(sg.off, "%s: extents %d+%d out of range", sg.name, sg.start, sg.count))
			continue
		}
		switch {
		case i == 0 && sg.start != 0:
			note(bad(sg.off, "%s starts at extent %d: extents 0-%d are mapped by no segment", sg.name, sg.start, sg.start-1))
		case i > 0 && sg.start < segs[i-1].start+segs[i-1].count:
			note(bad(sg.off, "%s (extents %d-%d) overlaps %s (extents %d-%d)", sg.name, sg.start, sg.start+sg.count-1, segs[i-1].name, segs[i-1].start, segs[i-1].start+segs[i-1].count-1))
		case i > 0 && sg.start > segs[i-1].start+segs[i-1].count:
			note(bad(sg.off, "%s starts at extent %d, leaving extents %d-%d unmapped", sg.name, sg.start, segs[i-1].start+segs[i-1].count, sg.start-1))
		}
		total = max(total, sg.start+sg.count)
		rs := lvSegment{start: sg.start * es, size: sg.count * es}
		switch sg.typ {
		case "striped", "linear":
			n := sg.stripeCount
			if sg.typ == "linear" && n == 0 {
				n = 1
			}
			if n < 1 || n > lvmMaxStripes || int64(len(sg.stripes)) != n {
				note(bad(sg.off, "%s: stripe_count %d with %d stripes listed", sg.name, sg.stripeCount, len(sg.stripes)))
				continue
			}
			if sg.count%n != 0 {
				note(bad(sg.off, "%s: %d extents do not divide into %d stripes", sg.name, sg.count, n))
				continue
			}
			if n > 1 {
				ss := sg.stripeSize * lvmSector
				if ss <= 0 || ss&(ss-1) != 0 || ss > es || es%ss != 0 {
					note(bad(sg.off, "%s: stripe_size %d sectors (a power of two dividing the %d-sector extent)", sg.name, sg.stripeSize, vg.extent))
					continue
				}
				rs.stripe = ss
			}
			per := sg.count / n
			for k, st := range sg.stripes {
				pm := pvs[st.pv]
				if pm == nil {
					note(bad(sg.off, "%s: stripe %d names pv %q, which the volume group does not list", sg.name, k, st.pv))
					continue
				}
				if st.start < 0 || st.start > pm.peCount || per > pm.peCount-st.start || pm.peCount > lvmMaxBytes/es {
					note(bad(sg.off, "%s: stripe %d, extents %d-%d of pv %s, past its %d extents", sg.name, k, st.start, st.start+per-1, st.pv, pm.peCount))
					continue
				}
				if pm.label == nil {
					note(fmt.Errorf("lv %s/%s: pv %s (%s) is not in this image", label, lm.name, pm.name, pm.id))
					continue
				}
				pvOff := pm.peStart*lvmSector + st.start*es
				if pvOff+per*es > pm.label.vol.Size {
					note(bad(sg.off, "%s: stripe %d ends at byte %d of pv %s, past its volume %s (%d bytes)", sg.name, k, pvOff+per*es, pm.name, pm.label.vol.ID, pm.label.vol.Size))
					continue
				}
				rs.areas = append(rs.areas, lvArea{r: pm.label.vol.r, off: pvOff})
				if pm.label.vol.Offset >= 0 {
					rec.Segments[len(rec.Segments)-1].Stripes[k].Offset = pm.label.vol.Offset + pvOff
				}
			}
		case "zero":
			// reads as zeros
		default:
			what := "segment type " + sg.typ
			switch {
			case strings.HasPrefix(sg.typ, "thin"):
				what += " (thin provisioning)"
			case strings.HasPrefix(sg.typ, "raid") || sg.typ == "mirror":
				what += " (RAID/mirror)"
			case sg.typ == "snapshot":
				what += fmt.Sprintf(" (a snapshot of %s, exceptions in %s)", sg.origin, sg.cowStore)
			case strings.HasPrefix(sg.typ, "cache") || sg.typ == "writecache":
				what += " (cache)"
			}
			note(fmt.Errorf("%s is not read: it needs device-mapper's logic", what))
			continue
		}
		r.segs = append(r.segs, rs)
	}
	if lm.declaredSegs != 0 && lm.declaredSegs != int64(len(lm.segs)) {
		note(bad(lm.off, "segment_count %d, but %d segments listed", lm.declaredSegs, len(lm.segs)))
	}
	rec.Size = total * es
	r.size = rec.Size
	if lm.cowOf != "" && problem == nil {
		rec.Note = fmt.Sprintf("the copy-on-write exception store of snapshot %s of %s: not a filesystem", lm.cowSnapshot, lm.cowOf)
		return rec, nil, nil
	}
	if len(segs) == 0 {
		note(bad(lm.off, "no segments"))
	}
	if problem != nil {
		return rec, nil, problem
	}
	rec.Readable = true
	return rec, r, nil
}

// lvReader reads an LV through its segments: linear areas, or stripes of
// stripe bytes dealt round-robin over the areas (device-mapper's striped
// target: chunk i lies in area i mod n, at row i div n).
type lvReader struct {
	size int64
	segs []lvSegment // sorted, contiguous from 0
}

type lvSegment struct {
	start, size int64
	stripe      int64 // bytes; 0: linear (one area)
	areas       []lvArea
}

type lvArea struct {
	r   io.ReaderAt
	off int64 // byte offset of the area's first extent in r
}

func (l *lvReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	if off >= l.size {
		return 0, io.EOF
	}
	eof := false
	if rem := l.size - off; int64(len(p)) > rem {
		p, eof = p[:rem], true
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].start+l.segs[i].size > pos })
		if i == len(l.segs) || l.segs[i].start > pos {
			return done, fmt.Errorf("lv offset %d is mapped by no segment", pos)
		}
		sg := l.segs[i]
		in := pos - sg.start
		chunk := p[done:]
		if rem := sg.size - in; int64(len(chunk)) > rem {
			chunk = chunk[:rem]
		}
		var a lvArea
		var at int64
		switch {
		case len(sg.areas) == 0: // a zero segment
			clear(chunk)
			done += len(chunk)
			continue
		case sg.stripe == 0:
			a, at = sg.areas[0], in
		default:
			n := int64(len(sg.areas))
			c := in / sg.stripe
			a = sg.areas[c%n]
			at = (c/n)*sg.stripe + in%sg.stripe
			if rem := sg.stripe - in%sg.stripe; int64(len(chunk)) > rem {
				chunk = chunk[:rem]
			}
		}
		if err := readAt(a.r, chunk, a.off+at); err != nil {
			return done, err
		}
		done += len(chunk)
	}
	if eof {
		return done, io.EOF
	}
	return done, nil
}
