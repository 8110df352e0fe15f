package volume

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/testfix"
)

// Real disks made by sfdisk, sgdisk and lvm2, broken one structure at a time:
// the damaged item becomes a warning naming it, the rest is still listed.

func scanBytes(t *testing.T, b []byte) *Layout {
	t.Helper()
	l, err := Scan(bytes.NewReader(b), int64(len(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func partIDs(l *Layout) string {
	var s []string
	for _, p := range l.Partitions {
		s = append(s, fmt.Sprintf("%d:%d+%d", p.Index, p.FirstLBA, p.LastLBA-p.FirstLBA+1))
	}
	return strings.Join(s, " ")
}

func wantWarning(t *testing.T, l *Layout, item, text string) *Warning {
	t.Helper()
	for i, w := range l.Warnings {
		if strings.Contains(w.Item, item) && strings.Contains(w.Message, text) {
			return &l.Warnings[i]
		}
	}
	t.Fatalf("no warning on %q saying %q in %+v", item, text, l.Warnings)
	return nil
}

func TestEBRChainHostile(t *testing.T) {
	base := testfix.DiskSeed(t, "tiny-mbr-ext.raw")
	clean := scanBytes(t, base)
	if got := partIDs(clean); got != "1:64+128 2:256+1024 3:1536+256 5:320+128 6:512+128 7:768+200" {
		t.Fatalf("clean: %s", got)
	}
	le := binary.LittleEndian
	ext := int64(256)
	ebrs := []int64{ext}
	for {
		sec := base[ebrs[len(ebrs)-1]*512:]
		link := sec[446+16:]
		if link[4] == 0 {
			break
		}
		ebrs = append(ebrs, ext+int64(le.Uint32(link[8:])))
	}
	if len(ebrs) != 3 {
		t.Fatalf("EBRs at %v", ebrs)
	}
	t.Run("loop", func(t *testing.T) {
		b := bytes.Clone(base)
		last := b[ebrs[2]*512+446+16:]
		last[4] = 0x05
		le.PutUint32(last[8:], uint32(ebrs[1]-ext))
		le.PutUint32(last[12:], 8)
		l := scanBytes(t, b)
		if partIDs(l) != partIDs(clean) {
			t.Fatalf("with a loop: %s", partIDs(l))
		}
		w := wantWarning(t, l, "ebr", "loops")
		var fe *vfs.FormatError
		if !errors.As(w.Err, &fe) || fe.Offset != ebrs[1]*512 {
			t.Fatalf("warning %+v", w)
		}
	})
	t.Run("logical outside the extended partition", func(t *testing.T) {
		b := bytes.Clone(base)
		le.PutUint32(b[ebrs[1]*512+446+8:], 5000) // p6 starts 5000 sectors after its EBR
		l := scanBytes(t, b)
		w := wantWarning(t, l, "p6", "outside the extended partition")
		var fe *vfs.FormatError
		if !errors.As(w.Err, &fe) || fe.Offset != ebrs[1]*512+446 {
			t.Fatalf("warning %+v", w)
		}
		if !strings.Contains(partIDs(l), "7:768+200") {
			t.Fatalf("p7 lost: %s", partIDs(l))
		}
	})
	t.Run("link outside", func(t *testing.T) {
		b := bytes.Clone(base)
		le.PutUint32(b[ebrs[1]*512+446+16+8:], 1<<30)
		l := scanBytes(t, b)
		wantWarning(t, l, "ebr", "outside the extended partition")
		if got := partIDs(l); got != "1:64+128 2:256+1024 3:1536+256 5:320+128 6:512+128" {
			t.Fatalf("%s", got)
		}
	})
	t.Run("long chain", func(t *testing.T) {
		// a synthetic chain of 400 EBRs, each one sector after the last
		b := make([]byte, 1<<20)
		b[510], b[511] = 0x55, 0xaa
		e := b[446:]
		e[4] = 0x05
		le.PutUint32(e[8:], 2)
		le.PutUint32(e[12:], 1000)
		for i := int64(0); i < 400; i++ {
			s := b[(2+i)*512:]
			s[510], s[511] = 0x55, 0xaa
			s[446+16+4] = 0x05
			le.PutUint32(s[446+16+8:], uint32(i+1))
			le.PutUint32(s[446+16+12:], 1)
		}
		l := scanBytes(t, b)
		wantWarning(t, l, "ebr", "more than 256")
	})
	t.Run("overlapping primaries", func(t *testing.T) {
		b := bytes.Clone(base)
		le.PutUint32(b[446+2*16+8:], 100) // p3 starts inside p1
		l := scanBytes(t, b)
		wantWarning(t, l, "p3", "overlaps p1")
	})
}

func TestGPTHostile(t *testing.T) {
	base := testfix.DiskSeed(t, "tiny-gpt.raw")
	clean := scanBytes(t, base)
	want := "1:40+512 2:552+1024"
	if got := partIDs(clean); got != want || len(clean.Warnings) != 0 {
		t.Fatalf("clean: %s %+v", got, clean.Warnings)
	}
	last := int64(len(base)) - 512
	entries := int64(2 * 512)
	for _, c := range []struct {
		name     string
		mod      func(b []byte)
		item     string
		warning  string
		wantPart string
	}{
		{"primary header CRC", func(b []byte) { b[512+60] ^= 1 }, "gpt header", "partitions read from the backup header", want},
		{"primary entries CRC", func(b []byte) { b[entries+56] ^= 1 }, "gpt partition entries", "primary entries damaged", want},
		{"backup header missing", func(b []byte) { clear(b[last:]) }, "gpt backup header", "unusable", want},
		{"backup entries differ", func(b []byte) {
			// a consistent backup (entries and CRCs rewritten) that says otherwise
			bk := b[last:]
			be := int64(binary.LittleEndian.Uint64(bk[72:])) * 512
			b[be+56] = 'X'
			binary.LittleEndian.PutUint32(bk[88:], crc32IEEE(b[be:be+128*128]))
			clear(bk[16:20])
			binary.LittleEndian.PutUint32(bk[16:], crc32IEEE(bk[:92]))
		}, "gpt backup entries", "differ", want},
		{"start of the disk wiped", func(b []byte) { clear(b[:34*512]) }, "gpt header", "no MBR and no primary header", want},
		{"both headers broken", func(b []byte) { b[512+60] ^= 1; b[last+60] ^= 1 }, "gpt header", "no usable backup", ""},
		{"an entry with last < first", func(b []byte) {
			binary.LittleEndian.PutUint64(b[entries+128+40:], 10)
			syncGPT(b, entries, last)
		}, "p2", "make no partition", "1:40+512"},
		// its size wrapped negative, and probing the volume panicked
		{"an entry whose last LBA is past any disk", func(b []byte) {
			binary.LittleEndian.PutUint64(b[entries+128+40:], 1<<56)
			syncGPT(b, entries, last)
		}, "p2", "make no partition", "1:40+512"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(base)
			c.mod(b)
			l := scanBytes(t, b)
			if got := partIDs(l); got != c.wantPart || l.Table != "gpt" {
				t.Fatalf("%s partitions %q, want %q", l.Table, got, c.wantPart)
			}
			wantWarning(t, l, c.item, c.warning)
		})
	}
}

// syncGPT copies the primary entry array (at entries) to the backup's and
// rewrites both headers' CRCs, so that an edited entry reads as written.
func syncGPT(b []byte, entries, last int64) {
	for _, h := range []int64{512, last} {
		hb := b[h:]
		ea := int64(binary.LittleEndian.Uint64(hb[72:])) * 512
		copy(b[ea:ea+128*128], b[entries:entries+128*128])
		binary.LittleEndian.PutUint32(hb[88:], crc32IEEE(b[ea:ea+128*128]))
		clear(hb[16:20])
		binary.LittleEndian.PutUint32(hb[16:], crc32IEEE(hb[:92]))
	}
}

// patched is a disk with some byte ranges replaced.
type patched struct {
	r       io.ReaderAt
	patches map[int64][]byte
}

func (p *patched) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	for at, data := range p.patches {
		lo, hi := max(at, off), min(at+int64(len(data)), off+int64(len(b)))
		if lo < hi {
			copy(b[lo-off:hi-off], data[lo-at:hi-at])
		}
	}
	return n, err
}

// rewriteMetadata replaces the metadata text of the PV at pvOff with
// edit(text), its seqno raised so that it wins over the other PVs' copies,
// with every checksum recomputed as LVM would.
func rewriteMetadata(t *testing.T, d *patched, pvOff int64, edit func(string) string) {
	t.Helper()
	le := binary.LittleEndian
	label := make([]byte, 512)
	d.ReadAt(label, pvOff+512)
	if string(label[:8]) != lvmLabelID {
		t.Fatal("no label in sector 1")
	}
	ph := label[le.Uint32(label[20:]):]
	mdaOff := int64(le.Uint64(ph[40+2*16:])) // one data area, then the first metadata area
	h := make([]byte, 512)
	d.ReadAt(h, pvOff+mdaOff)
	rl := h[40:]
	off, size := int64(le.Uint64(rl)), int64(le.Uint64(rl[8:]))
	text := make([]byte, size)
	d.ReadAt(text, pvOff+mdaOff+off)
	s := strings.TrimRight(string(text), "\x00")
	s = regexp.MustCompile(`seqno = (\d+)`).ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.Atoi(strings.TrimPrefix(m, "seqno = "))
		return "seqno = " + strconv.Itoa(n+100)
	})
	ns := []byte(edit(s) + "\x00")
	le.PutUint64(rl[8:], uint64(len(ns)))
	le.PutUint32(rl[16:], lvmCRC(ns))
	le.PutUint32(h, lvmCRC(h[4:]))
	d.patches[pvOff+mdaOff+off] = ns
	d.patches[pvOff+mdaOff] = h
}

func TestLVMHostile(t *testing.T) {
	dir := testfix.DiskImages(t)
	f, err := os.Open(filepath.Join(dir, "lvm-striped.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	clean, err := Scan(f, fi.Size(), nil)
	if err != nil || len(clean.Warnings) != 0 {
		t.Fatalf("%v %+v", err, clean.Warnings)
	}
	pvOff := map[string]int64{}
	for _, v := range clean.Volumes {
		pvOff[v.ID] = v.Offset
	}
	scan := func(t *testing.T, mod func(d *patched)) (*Layout, map[string]*Volume) {
		t.Helper()
		d := &patched{r: f, patches: map[int64][]byte{}}
		mod(d)
		l, err := Scan(d, fi.Size(), nil)
		if err != nil {
			t.Fatal(err)
		}
		vols := map[string]*Volume{}
		for _, v := range l.Volumes {
			vols[v.ID] = v
		}
		return l, vols
	}
	unreadable := func(t *testing.T, vols map[string]*Volume, id, note string) {
		t.Helper()
		v := vols[id]
		if v == nil || v.Readable || !strings.Contains(v.Note, note) {
			t.Fatalf("%s: %+v, want unreadable: %q", id, v, note)
		}
		if _, err := v.Open(); err == nil {
			t.Fatalf("%s opens", id)
		}
	}
	readable := func(t *testing.T, vols map[string]*Volume, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if v := vols[id]; v == nil || !v.Readable || v.FS == nil {
				t.Fatalf("%s: %+v, want readable", id, v)
			}
		}
	}
	edit := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("metadata lacks %q:\n%s", old, s)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	spannedSeg2 := "segment2 {\nstart_extent = 8\nextent_count = 8\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv1\", 16\n]\n}"
	t.Run("overlapping segments", func(t *testing.T) {
		l, vols := scan(t, func(d *patched) {
			rewriteMetadata(t, d, pvOff["p1"], edit(spannedSeg2, strings.Replace(spannedSeg2, "start_extent = 8", "start_extent = 4", 1)))
		})
		unreadable(t, vols, "vgdata/spanned", "segment2 (extents 4-11) overlaps segment1 (extents 0-7)")
		readable(t, vols, "vgdata/striped", "vgother/solo")
		w := wantWarning(t, l, "vgdata/spanned", "overlaps")
		var fe *vfs.FormatError
		if !errors.As(w.Err, &fe) || !strings.Contains(fe.File, "lvm metadata (p1") {
			t.Fatalf("%+v", w)
		}
		wantWarning(t, l, "vg vgdata", "older copies")
	})
	t.Run("unknown PV", func(t *testing.T) {
		_, vols := scan(t, func(d *patched) {
			rewriteMetadata(t, d, pvOff["p1"], edit("\"pv1\", 0", "\"pv7\", 0"))
		})
		unreadable(t, vols, "vgdata/striped", `names pv "pv7", which the volume group does not list`)
		readable(t, vols, "vgdata/spanned")
	})
	t.Run("extents past the PV", func(t *testing.T) {
		_, vols := scan(t, func(d *patched) {
			rewriteMetadata(t, d, pvOff["p1"], edit("\"pv1\", 16", "\"pv1\", 60"))
		})
		unreadable(t, vols, "vgdata/spanned", "extents 60-67 of pv pv1, past its 63 extents")
	})
	t.Run("thin pool", func(t *testing.T) {
		_, vols := scan(t, func(d *patched) {
			rewriteMetadata(t, d, pvOff["p1"], edit(spannedSeg2, strings.Replace(spannedSeg2, `type = "striped"`, `type = "thin-pool"`, 1)))
		})
		unreadable(t, vols, "vgdata/spanned", "segment type thin-pool (thin provisioning) is not read")
	})
	t.Run("snapshot exception store", func(t *testing.T) {
		snap := "logical_volumes {\n\nsnapshot0 {\nid = \"snap-0\"\nstatus = [\"READ\"]\nflags = []\nsegment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 8\n\ntype = \"snapshot\"\nchunk_size = 8\norigin = \"striped\"\ncow_store = \"spanned\"\n}\n}\n"
		l, vols := scan(t, func(d *patched) {
			rewriteMetadata(t, d, pvOff["p1"], edit("logical_volumes {\n", snap))
		})
		unreadable(t, vols, "vgdata/spanned", "copy-on-write exception store of snapshot snapshot0 of striped")
		readable(t, vols, "vgdata/striped")
		var found bool
		for _, vg := range l.VolumeGroups {
			for _, lv := range vg.LVs {
				if lv.Name == "snapshot0" {
					found = !lv.Visible && !lv.Readable && strings.Contains(lv.Note, "a snapshot of striped")
				}
			}
		}
		if !found {
			t.Fatalf("snapshot0 not listed as a hidden, unreadable snapshot: %+v", l.VolumeGroups)
		}
	})
	t.Run("PV missing", func(t *testing.T) {
		l, vols := scan(t, func(d *patched) { d.patches[pvOff["p2"]+512] = make([]byte, 8) })
		unreadable(t, vols, "vgdata/striped", "pv pv1")
		unreadable(t, vols, "vgdata/spanned", "is not in this image")
		readable(t, vols, "vgother/solo")
		wantWarning(t, l, "vg vgdata", "is not in this image")
	})
	t.Run("label crc", func(t *testing.T) {
		l, vols := scan(t, func(d *patched) { d.patches[pvOff["p3"]+512+100] = []byte{0xff} })
		w := wantWarning(t, l, "pv p3", "crc")
		var fe *vfs.FormatError
		if !errors.As(w.Err, &fe) || fe.File != "lvm label" || fe.Offset != 512+16 {
			t.Fatalf("%+v", w)
		}
		if vols["vgother/solo"] != nil {
			t.Fatal("solo listed without its PV")
		}
		readable(t, vols, "vgdata/striped", "vgdata/spanned")
	})
	t.Run("metadata text crc", func(t *testing.T) {
		// p1's copy damaged: p2's copy of the same seqno describes vgdata
		l, vols := scan(t, func(d *patched) {
			rewriteMetadata(t, d, pvOff["p1"], edit("vgdata {", "vgdata {"))
			for at, b := range d.patches {
				if len(b) > 512 {
					b[20] ^= 1
					_ = at
				}
			}
		})
		wantWarning(t, l, "pv p1", "metadata text crc")
		readable(t, vols, "vgdata/striped", "vgdata/spanned")
	})
	t.Run("metadata garbage", func(t *testing.T) {
		l, vols := scan(t, func(d *patched) {
			rewriteMetadata(t, d, pvOff["p1"], func(s string) string { return strings.Replace(s, "}", "]", 3) })
		})
		w := wantWarning(t, l, "pv p1", "unexpected")
		var fe *vfs.FormatError
		if !errors.As(w.Err, &fe) || fe.Offset <= 0 {
			t.Fatalf("%+v", w)
		}
		readable(t, vols, "vgdata/striped", "vgdata/spanned")
	})
}

// TestTinyLVMWraps: the tiny seed's first metadata area has wrapped around
// its circular buffer (forge-disk.sh made it so), and reads.
func TestTinyLVMWraps(t *testing.T) {
	b := testfix.DiskSeed(t, "tiny-lvm.raw")
	l := scanBytes(t, b)
	var p1 *Volume
	for _, v := range l.Volumes {
		if v.ID == "p1" {
			p1 = v
		}
	}
	pv, err := readPV(p1)
	if err != nil {
		t.Fatal(err)
	}
	m := pv.mda[0]
	h := b[p1.Offset+m.offset:]
	off, size := int64(binary.LittleEndian.Uint64(h[40:])), int64(binary.LittleEndian.Uint64(h[48:]))
	if off+size <= m.size {
		t.Fatalf("metadata at %d+%d in an area of %d: not wrapped", off, size, m.size)
	}
	if len(l.VolumeGroups) != 1 || len(l.VolumeGroups[0].LVs) != 2 || len(l.Warnings) != 0 {
		t.Fatalf("%+v %+v", l.VolumeGroups, l.Warnings)
	}
}

func TestConfigParserErrors(t *testing.T) {
	for _, c := range []struct {
		text string
		off  int64
	}{
		{"vg0 {\nid = \"abc\n", 11},
		{"vg0 {\nseqno = 12a\n}", 14},
		{"vg0 {\nx = [1, [2]]\n}", 14},
		{"vg0 {\n", 6},
		{"}", 0},
		{"vg0 = ", 6},
		{strings.Repeat("a {", 40), 99},
	} {
		_, err := parseConfig(c.text, "text", 0)
		var fe *vfs.FormatError
		if !errors.As(err, &fe) || fe.Offset != c.off {
			t.Errorf("%q: %v, want an error at %d", c.text, err, c.off)
		}
	}
	n, err := parseConfig("vg0 {\n# c\ns = \"a\\\"b\" # c\nl = [\"x\", 1, -2, 0.5,]\n}\n", "text", 0)
	if err != nil {
		t.Fatal(err)
	}
	vg := n.sections()[0]
	if s, _ := vg.str("s"); s != `a"b` || len(vg.child("l").value.list) != 4 {
		t.Fatalf("%+v", vg.children)
	}
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// LVM metadata whose numbers multiply past 2^63: a stripe start near
// 2^63 mapped an LV onto its PV's label, and 2^31-sector extents times
// 2^40 extents gave an LV of a negative size, whose probe panicked. Such
// segments and PVs are refused.
func TestLVMOverflow(t *testing.T) {
	f, err := os.Open(filepath.Join(testfix.DiskImages(t), "lvm-striped.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	clean, err := Scan(f, fi.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pvOff := map[string]int64{}
	for _, v := range clean.Volumes {
		pvOff[v.ID] = v.Offset
	}
	for name, edit := range map[string]func(string) string{
		"stripe start near 2^63": func(s string) string {
			return strings.Replace(s, "\"pv1\", 16", "\"pv1\", 9223372036854775807", 1)
		},
		"extents times extent size": func(s string) string {
			s = strings.Replace(s, "extent_size = 2048", "extent_size = 2147483648", 1)
			s = strings.ReplaceAll(s, "pe_count = 63", "pe_count = 1099511627776")
			s = strings.Replace(s, "segment_count = 2", "segment_count = 1", 1)
			s = strings.Replace(s, "segment2 {", "zzz2 {", 1)
			return strings.Replace(s, "extent_count = 8\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv0\", 16", "extent_count = 8388609\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv0\", 16", 1)
		},
	} {
		d := &patched{r: f, patches: map[int64][]byte{}}
		rewriteMetadata(t, d, pvOff["p1"], edit)
		l, err := Scan(d, fi.Size(), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, v := range l.Volumes {
			if v.Kind == "lv" && v.Readable && (v.Size < 0 || v.ID == "vgdata/spanned") {
				t.Errorf("%s: lv %s readable, %d bytes", name, v.ID, v.Size)
			}
		}
	}
}

// A partition inside a larger one is an overlap even when another lies
// between them in order of start: p3 (30-40) inside p1 (0-100) was missed
// because only neighbours were compared.
func TestNestedOverlaps(t *testing.T) {
	s := &scanner{l: &Layout{Partitions: []Partition{{Index: 1, Start: 0, Size: 100}, {Index: 2, Start: 10, Size: 10}, {Index: 3, Start: 30, Size: 10}}}}
	s.checkOverlaps()
	var got []string
	for _, w := range s.l.Warnings {
		got = append(got, w.Item+": "+w.Message)
	}
	want := []string{"p2: overlaps p1 (bytes 0-100 and 10-20)", "p3: overlaps p1 (bytes 0-100 and 30-40)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
}
