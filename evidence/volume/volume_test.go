package volume_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/disk"
	"github.com/deadnode/deadnode/evidence/volume"
	"github.com/deadnode/deadnode/internal/testfix"
)

// rawImages are the raw disks forge-disk.sh makes.
var rawImages = []string{"gpt-ext4.raw", "gpt-xfs.raw", "mbr-lvm-xfs.raw", "mbr-ext.raw", "lvm-striped.raw", "gpt-var.raw",
	"seeds/tiny-gpt.raw", "seeds/tiny-mbr-ext.raw", "seeds/tiny-lvm.raw"}

func scanFile(t *testing.T, path string) (*volume.Layout, disk.Image) {
	t.Helper()
	img, err := disk.Open(path, &disk.Options{Backing: disk.BackingDir(filepath.Dir(path), nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	l, err := volume.Scan(img, img.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return l, img
}

func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		SectorSize int    `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// TestPartitionsAsSfdiskSeesThem: table type, disk id and every partition
// (number, start, size, type, GUID, name, boot flag) as sfdisk --json reads
// them, and the GPT type names as sgdisk names them.
func TestPartitionsAsSfdiskSeesThem(t *testing.T) {
	dir := testfix.DiskImages(t)
	for _, name := range rawImages {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			path := filepath.Join(dir, name)
			l, _ := scanFile(t, path)
			if len(l.Warnings) != 0 {
				t.Errorf("warnings on a clean disk: %+v", l.Warnings)
			}
			var sf sfdiskTable
			if err := json.Unmarshal([]byte(tool(t, "sfdisk", "--json", path)), &sf); err != nil {
				t.Fatal(err)
			}
			compareSfdisk(t, l, sf, path)
		})
	}
}

// compareSfdisk checks a layout against sfdisk --json's table; sgdisk -i
// names the GPT types when path is given (sgdisk reads files as 512-byte
// sectors).
func compareSfdisk(t *testing.T, l *volume.Layout, sf sfdiskTable, path string) {
	t.Helper()
	pt := sf.PartitionTable
	wantTable := map[string]string{"gpt": "gpt", "dos": "mbr"}[pt.Label]
	if l.Table != wantTable || l.SectorSize != pt.SectorSize {
		t.Fatalf("table %s/%d, sfdisk %s/%d", l.Table, l.SectorSize, pt.Label, pt.SectorSize)
	}
	if id := l.DiskGUID + l.DiskID; !strings.EqualFold(id, pt.ID) {
		t.Errorf("disk id %s, sfdisk %s", id, pt.ID)
	}
	if len(l.Partitions) != len(pt.Partitions) {
		t.Fatalf("%d partitions, sfdisk %d", len(l.Partitions), len(pt.Partitions))
	}
	byIndex := map[int]volume.Partition{}
	for _, p := range l.Partitions {
		byIndex[p.Index] = p
	}
	num := regexp.MustCompile(`(\d+)$`)
	for _, sp := range pt.Partitions {
		idx, _ := strconv.Atoi(num.FindString(sp.Node))
		p, ok := byIndex[idx]
		if !ok {
			t.Fatalf("sfdisk's partition %d missing", idx)
		}
		ss := int64(pt.SectorSize)
		typ := p.Type
		if p.Scheme == "mbr" {
			typ = strings.TrimPrefix(strings.TrimPrefix(p.Type, "0x"), "0")
		}
		if p.FirstLBA != sp.Start || p.Start != sp.Start*ss || p.Size != sp.Size*ss || p.LastLBA != sp.Start+sp.Size-1 ||
			!strings.EqualFold(typ, sp.Type) || !strings.EqualFold(p.GUID, sp.UUID) || p.Name != sp.Name || p.Bootable != sp.Bootable {
			t.Errorf("p%d: %+v\nsfdisk: %+v", idx, p, sp)
		}
		if p.Scheme == "mbr" {
			kind := "primary"
			if idx > 4 {
				kind = "logical"
			} else if sp.Type == "5" || sp.Type == "f" || sp.Type == "85" {
				kind = "extended"
			}
			if p.Kind != kind {
				t.Errorf("p%d kind %s, want %s", idx, p.Kind, kind)
			}
		}
		if p.Scheme == "gpt" && path != "" {
			// sgdisk -i: "Partition GUID code: 0FC63DAF-… (Linux filesystem)"
			info := tool(t, "sgdisk", "-i", strconv.Itoa(idx), path)
			m := regexp.MustCompile(`Partition GUID code: (\S+) \((.*)\)`).FindStringSubmatch(info)
			if m == nil || !strings.EqualFold(m[1], p.Type) || (p.TypeName != "" && p.TypeName != m[2]) {
				t.Errorf("p%d type %s %q; sgdisk %q", idx, p.Type, p.TypeName, m)
			}
			if p.TypeName == "" {
				t.Errorf("p%d: no name for type %s (sgdisk: %s)", idx, p.Type, m[2])
			}
		}
	}
}

// blkid runs blkid's low-level probe on a range of a file.
func blkid(t *testing.T, path string, off, size int64) map[string]string {
	t.Helper()
	cmd := exec.Command("blkid", "-p", "-o", "export", "-O", strconv.FormatInt(off, 10), "-S", strconv.FormatInt(size, 10), path)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 2 {
		return nil // nothing found
	}
	if err != nil {
		t.Fatalf("blkid: %v", err)
	}
	return parseExport(string(out))
}

func parseExport(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = strings.ReplaceAll(v, `\ `, " ")
		}
	}
	return m
}

func checkAgainstBlkid(t *testing.T, what string, fs *volume.Filesystem, b map[string]string) {
	t.Helper()
	if b == nil || b["TYPE"] == "" {
		if fs != nil {
			t.Errorf("%s: probe says %+v, blkid finds nothing", what, fs)
		}
		return
	}
	if fs == nil {
		t.Errorf("%s: probe finds nothing, blkid %v", what, b)
		return
	}
	if fs.Type != b["TYPE"] || fs.UUID != b["UUID"] || fs.Label != b["LABEL"] || (b["VERSION"] != "" && fs.Version != b["VERSION"]) {
		t.Errorf("%s: probe %+v\nblkid %v", what, fs, b)
	}
	if strings.HasPrefix(fs.Type, "ext") && strconv.Itoa(fs.BlockSize) != b["BLOCK_SIZE"] {
		t.Errorf("%s: block size %d, blkid %s", what, fs.BlockSize, b["BLOCK_SIZE"])
	}
}

// TestProbeAsBlkidSeesIt: every volume that is one range of the disk,
// probed by us and by blkid -p on the same bytes of the image file.
func TestProbeAsBlkidSeesIt(t *testing.T) {
	dir := testfix.DiskImages(t)
	checked := 0
	for _, name := range rawImages {
		path := filepath.Join(dir, name)
		l, _ := scanFile(t, path)
		for _, v := range l.Volumes {
			if v.Offset < 0 || v.ID == "whole" && l.Table != "none" {
				continue
			}
			checkAgainstBlkid(t, name+" "+v.ID, v.FS, blkid(t, path, v.Offset, v.Size))
			checked++
		}
	}
	if checked < 25 {
		t.Fatalf("only %d volumes checked", checked)
	}
}

// facts reads what forge-disk.sh recorded from the real tools.
func facts(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "facts", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func volumeByID(t *testing.T, l *volume.Layout, id string) *volume.Volume {
	t.Helper()
	for _, v := range l.Volumes {
		if v.ID == id {
			return v
		}
	}
	t.Fatalf("no volume %s in %+v", id, l.Volumes)
	return nil
}

func sha(t *testing.T, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestSuperblocksAsTheirToolsSeeThem: ext features, size, label, UUID as
// dumpe2fs -h printed them, XFS's as xfs_db printed them, on the devices the
// kernel mounted when the fixtures were made.
func TestSuperblocksAsTheirToolsSeeThem(t *testing.T) {
	dir := testfix.DiskImages(t)
	ext := []struct{ image, vol, facts string }{
		{"gpt-ext4.raw", "p2", "gpt-ext4.p2"},
		{"gpt-var.raw", "p1", "gpt-var.p1"},
		{"mbr-ext.raw", "p1", "mbr-ext.p1"},
		{"mbr-ext.raw", "p3", "mbr-ext.p3"},
		{"mbr-ext.raw", "p5", "mbr-ext.p5"},
		{"mbr-lvm-xfs.raw", "p1", "mbr-lvm-xfs.p1"},
		{"lvm-striped.raw", "vgdata/striped", "lvm-striped.striped"},
		{"lvm-striped.raw", "vgdata/spanned", "lvm-striped.spanned"},
		{"lvm-striped.raw", "vgother/solo", "lvm-striped.solo"},
	}
	field := func(text, key string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `:\s*(.*)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %q in dumpe2fs output", key)
		}
		return strings.TrimSpace(m[1])
	}
	for _, c := range ext {
		l, _ := scanFile(t, filepath.Join(dir, c.image))
		fs := volumeByID(t, l, c.vol).FS
		d := facts(t, dir, c.facts+".dumpe2fs")
		blocks, _ := strconv.ParseInt(field(d, "Block count"), 10, 64)
		bs, _ := strconv.Atoi(field(d, "Block size"))
		label := field(d, "Filesystem volume name")
		if label == "<none>" {
			label = ""
		}
		if fs == nil || strings.Join(fs.Features, " ") != field(d, "Filesystem features") || fs.Size != blocks*int64(bs) ||
			fs.BlockSize != bs || fs.UUID != field(d, "Filesystem UUID") || fs.Label != label {
			t.Errorf("%s %s: %+v\ndumpe2fs: features %q, %d blocks of %d, uuid %s, label %q", c.image, c.vol, fs,
				field(d, "Filesystem features"), blocks, bs, field(d, "Filesystem UUID"), label)
		}
		checkAgainstBlkid(t, c.image+" "+c.vol+" (facts)", fs, parseExport(facts(t, dir, c.facts+".blkid")))
	}
	xfs := []struct{ image, vol, facts string }{
		{"gpt-xfs.raw", "p1", "gpt-xfs.p1"},
		{"gpt-var.raw", "p2", "gpt-var.p2"},
		{"mbr-lvm-xfs.raw", "vg0/root", "mbr-lvm-xfs.vg0-root"},
	}
	for _, c := range xfs {
		l, _ := scanFile(t, filepath.Join(dir, c.image))
		fs := volumeByID(t, l, c.vol).FS
		d := facts(t, dir, c.facts+".xfs_db")
		get := func(key string) string {
			m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` = (.*)$`).FindStringSubmatch(d)
			if m == nil {
				t.Fatalf("no %q in xfs_db output", key)
			}
			return m[1]
		}
		dblocks, _ := strconv.ParseInt(get("dblocks"), 10, 64)
		bs, _ := strconv.ParseInt(get("blocksize"), 10, 64)
		fname := strings.TrimRight(strings.Trim(get("fname"), `"`), `\0`)
		version := regexp.MustCompile(`(?m)^versionnum \[[^]]*\] = (.*)$`).FindStringSubmatch(d)
		if fs == nil || version == nil || fs.UUID != get("uuid") || fs.Label != fname || fs.Size != dblocks*bs || int64(fs.BlockSize) != bs ||
			"V"+fs.Version+","+strings.Join(fs.Features, ",") != version[1] {
			t.Errorf("%s %s: %+v\nxfs_db:\n%s", c.image, c.vol, fs, d)
		}
		checkAgainstBlkid(t, c.image+" "+c.vol+" (facts)", fs, parseExport(facts(t, dir, c.facts+".blkid")))
	}
}

type lvsReport struct {
	Report []struct {
		LV []map[string]string `json:"lv"`
		PV []map[string]string `json:"pv"`
		VG []map[string]string `json:"vg"`
	} `json:"report"`
}

func lvmFacts(t *testing.T, dir, name string) []map[string]string {
	t.Helper()
	var r lvsReport
	if err := json.Unmarshal([]byte(facts(t, dir, name)), &r); err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, x := range r.Report {
		out = append(out, x.LV...)
		out = append(out, x.PV...)
		out = append(out, x.VG...)
	}
	return out
}

func bytesField(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "B"), 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// TestLVMAsLvsSeesIt: VGs, PVs, LVs and every segment's PE ranges as
// pvs/vgs/lvs --driverloaded n reported them when the fixtures were made.
func TestLVMAsLvsSeesIt(t *testing.T) {
	dir := testfix.DiskImages(t)
	for _, name := range []string{"mbr-lvm-xfs", "lvm-striped", "tiny-lvm"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".raw")
			if name == "tiny-lvm" {
				path = filepath.Join(dir, "seeds", name+".raw")
			}
			l, _ := scanFile(t, path)
			vgs := map[string]*volume.VolumeGroup{}
			for i := range l.VolumeGroups {
				vgs[l.VolumeGroups[i].Name] = &l.VolumeGroups[i]
			}
			fv := lvmFacts(t, dir, name+".vgs.json")
			if len(fv) != len(vgs) {
				t.Fatalf("%d VGs, vgs %d", len(vgs), len(fv))
			}
			for _, f := range fv {
				vg := vgs[f["vg_name"]]
				if vg == nil || vg.UUID != f["vg_uuid"] || vg.ExtentSize != bytesField(t, f["vg_extent_size"]) ||
					strconv.FormatInt(vg.Seqno, 10) != f["vg_seqno"] || strconv.Itoa(len(vg.PVs)) != f["pv_count"] {
					t.Errorf("vg %+v\nvgs %v", vg, f)
				}
			}
			for _, f := range lvmFacts(t, dir, name+".pvs.json") {
				vg := vgs[f["vg_name"]]
				var pv *volume.PhysicalVolume
				for i := range vg.PVs {
					if vg.PVs[i].UUID == f["pv_uuid"] {
						pv = &vg.PVs[i]
					}
				}
				if pv == nil || pv.Volume != f["pv_name"] || pv.PEStart != bytesField(t, f["pe_start"]) ||
					pv.DevSize != bytesField(t, f["dev_size"]) || strconv.FormatInt(pv.PECount, 10) != f["pv_pe_count"] {
					t.Errorf("pv %+v\npvs %v", pv, f)
				}
			}
			// lvs: one row per segment
			segs := map[string][]map[string]string{}
			for _, f := range lvmFacts(t, dir, name+".lvs.json") {
				segs[f["vg_name"]+"/"+f["lv_name"]] = append(segs[f["vg_name"]+"/"+f["lv_name"]], f)
			}
			nlv := 0
			for _, vg := range vgs {
				pvVol := map[string]string{}
				for _, pv := range vg.PVs {
					pvVol[pv.Name] = pv.Volume
				}
				for _, lv := range vg.LVs {
					nlv++
					rows := segs[vg.Name+"/"+lv.Name]
					if len(rows) != len(lv.Segments) || !lv.Readable {
						t.Errorf("%s/%s: %d segments (readable %v), lvs %d", vg.Name, lv.Name, len(lv.Segments), lv.Readable, len(rows))
						continue
					}
					for i, f := range rows {
						sg := lv.Segments[i]
						var ranges []string
						per := sg.ExtentCount / int64(len(sg.Stripes))
						for _, st := range sg.Stripes {
							ranges = append(ranges, fmt.Sprintf("%s:%d-%d", pvVol[st.PV], st.StartExtent, st.StartExtent+per-1))
						}
						if lv.UUID != f["lv_uuid"] || lv.Size != bytesField(t, f["lv_size"]) || sg.Type != f["segtype"] ||
							strconv.FormatInt(sg.StartExtent, 10) != f["seg_start_pe"] || strconv.FormatInt(sg.ExtentCount, 10) != f["seg_size_pe"] ||
							strconv.Itoa(len(sg.Stripes)) != f["stripes"] || sg.StripeSize != bytesField(t, f["stripe_size"]) ||
							strings.Join(ranges, " ") != f["seg_pe_ranges"] {
							t.Errorf("%s/%s segment %d: %+v ranges %q\nlvs %v", vg.Name, lv.Name, i, sg, ranges, f)
						}
					}
				}
			}
			if nlv != len(segs) {
				t.Errorf("%d LVs, lvs %d", nlv, len(segs))
			}
		})
	}
}

// TestLVContent: each LV read through our reader gives exactly the
// filesystem the kernel wrote: for the LVs that are one range of the disk,
// the bytes at the offset forge-disk.sh computed from pvs/lvs; for the
// striped and spanned ones, the filesystem file that was written into their
// extents (its sha256).
func TestLVContent(t *testing.T) {
	dir := testfix.DiskImages(t)
	l, _ := scanFile(t, filepath.Join(dir, "mbr-lvm-xfs.raw"))
	raw, err := os.Open(filepath.Join(dir, "mbr-lvm-xfs.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	sc := bufio.NewScanner(strings.NewReader(facts(t, dir, "mbr-lvm-xfs.lv-offsets")))
	n := 0
	for sc.Scan() {
		var id string
		var off, size int64
		if _, err := fmt.Sscan(sc.Text(), &id, &off, &size); err != nil {
			t.Fatal(err)
		}
		v := volumeByID(t, l, id)
		if v.Offset != off || v.Size != size {
			t.Errorf("%s at %d (%d bytes), forge-disk.sh computed %d (%d)", id, v.Offset, v.Size, off, size)
		}
		r, err := v.Open()
		if err != nil {
			t.Fatal(err)
		}
		if sha(t, r) != sha(t, io.NewSectionReader(raw, off, size)) {
			t.Errorf("%s: bytes differ from the image at %d", id, off)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d LV offsets", n)
	}
	// vg0/root read through the twoGbMaxExtentSparse VMDK of the same disk
	vl, _ := scanFile(t, filepath.Join(dir, "vmdk-2gb", "mbr-lvm-xfs.vmdk"))
	vr, err := volumeByID(t, vl, "vg0/root").Open()
	if err != nil {
		t.Fatal(err)
	}
	rr, _ := volumeByID(t, l, "vg0/root").Open()
	if sha(t, vr) != sha(t, rr) {
		t.Error("vg0/root through the VMDK differs from the raw disk's")
	}
	{
		l, _ := scanFile(t, filepath.Join(dir, "lvm-striped.raw"))
		for _, c := range []struct{ id, facts string }{{"vgdata/striped", "striped"}, {"vgdata/spanned", "spanned"}, {"vgother/solo", "solo"}} {
			v := volumeByID(t, l, c.id)
			r, err := v.Open()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sha(t, r), strings.TrimSpace(facts(t, dir, "lvm-striped."+c.facts+".sha256")); got != want {
				t.Errorf("%s: sha256 %s, the filesystem written into it %s", c.id, got, want)
			}
		}
		if v := volumeByID(t, l, "vgdata/striped"); v.Offset != -1 {
			t.Errorf("striped LV offset %d, want -1", v.Offset)
		}
	}
}

// TestVMFormatsScanAsTheirRawDisk: the layout read through qcow2, VMDK and
// split images is the raw disk's, and every partition's bytes hash as the
// raw file's bytes at the offsets partx gives.
func TestVMFormatsScanAsTheirRawDisk(t *testing.T) {
	dir := testfix.DiskImages(t)
	forms := map[string][]string{
		"gpt-ext4.raw":    {"gpt-ext4.qcow2", "gpt-ext4.zlib.qcow2", "gpt-ext4.zstd.qcow2", "gpt-ext4.v2.qcow2", "gpt-ext4.sparse.vmdk", "split/gpt-ext4.raw.001"},
		"gpt-xfs.raw":     {"gpt-xfs.vmdk", "gpt-xfs.gdend.vmdk"},
		"mbr-lvm-xfs.raw": {"vmdk-2gb/mbr-lvm-xfs.vmdk"},
		"mbr-ext.raw":     {"vmdk-flat/mbr-ext.vmdk", "vmdk-split/mbr-ext.vmdk"},
	}
	for rawName, vms := range forms {
		rawPath := filepath.Join(dir, rawName)
		want, _ := scanFile(t, rawPath)
		wantJSON, _ := json.Marshal(want)
		raw, err := os.Open(rawPath)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		// partx: NR START SECTORS
		partx := map[string][2]int64{}
		for _, line := range strings.Split(strings.TrimSpace(tool(t, "partx", "-g", "-o", "NR,START,SECTORS", rawPath)), "\n") {
			var nr, start, sectors int64
			fmt.Sscan(line, &nr, &start, &sectors)
			partx["p"+strconv.FormatInt(nr, 10)] = [2]int64{start * 512, sectors * 512}
		}
		for _, vm := range vms {
			got, img := scanFile(t, filepath.Join(dir, vm))
			gotJSON, _ := json.Marshal(got)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("%s scans as\n%s\n%s scans as\n%s", vm, gotJSON, rawName, wantJSON)
				continue
			}
			if img.Format() == disk.Raw {
				t.Fatalf("%s opened as raw", vm)
			}
			hashed := 0
			for _, v := range got.Volumes {
				if v.Kind != "partition" {
					continue
				}
				px, ok := partx[v.ID]
				if !ok || px[0] != v.Offset || px[1] != v.Size {
					t.Errorf("%s %s at %d (%d bytes), partx %v", vm, v.ID, v.Offset, v.Size, px)
					continue
				}
				r, err := v.Open()
				if err != nil {
					t.Fatal(err)
				}
				if sha(t, r) != sha(t, io.NewSectionReader(raw, px[0], px[1])) {
					t.Errorf("%s %s: bytes differ from %s at %d", vm, v.ID, rawName, px[0])
				}
				hashed++
			}
			if hashed == 0 {
				t.Errorf("%s: no partition hashed", vm)
			}
		}
	}
}

// TestVolumeIDs pins the ids, kinds and filesystems the lead's picker and
// `disk ls` rely on, for each fixture.
func TestVolumeIDs(t *testing.T) {
	dir := testfix.DiskImages(t)
	want := map[string][]string{
		"gpt-ext4.raw":    {"p1 partition vfat EFI", "p2 partition ext4 cloudimg-rootfs"},
		"gpt-xfs.raw":     {"p1 partition xfs /", "p128 partition -"},
		"mbr-lvm-xfs.raw": {"p1 partition ext4 boot", "p2 partition LVM2_member", "vg0/root lv xfs root", "vg0/swap lv swap swap"},
		"gpt-var.raw":     {"p1 partition ext4 root", "p2 partition xfs var"},
		"mbr-ext.raw":     {"p1 partition ext4 primary1", "p3 partition ext2 primary3", "p5 partition ext4 logical5", "p6 partition swap swap6", "p7 partition vfat LOGICAL7"},
		"lvm-striped.raw": {"p1 partition LVM2_member", "p2 partition LVM2_member", "p3 partition LVM2_member", "vgdata/spanned lv ext4 spanned", "vgdata/striped lv ext4 striped", "vgother/solo lv ext2 solo"},
	}
	for name, w := range want {
		l, _ := scanFile(t, filepath.Join(dir, name))
		var got []string
		for _, v := range l.Volumes {
			s := v.ID + " " + v.Kind
			if v.FS == nil {
				s += " -"
			} else {
				s += " " + v.FS.Type
				if v.FS.Label != "" {
					s += " " + v.FS.Label
				}
			}
			got = append(got, s)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %q, want %q", name, got, w)
		}
	}
}

// TestPVOnWholeDisk: a disk with no partition table that is one PV (here
// lvm-striped's third partition, read as a disk of its own).
func TestPVOnWholeDisk(t *testing.T) {
	dir := testfix.DiskImages(t)
	l, _ := scanFile(t, filepath.Join(dir, "lvm-striped.raw"))
	p3 := volumeByID(t, l, "p3")
	r, err := p3.Open()
	if err != nil {
		t.Fatal(err)
	}
	w, err := volume.Scan(r, r.Size(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Table != "none" || len(w.Warnings) != 0 || len(w.VolumeGroups) != 1 || w.VolumeGroups[0].PVs[0].Volume != "whole" {
		t.Fatalf("%+v", w)
	}
	solo := volumeByID(t, w, "vgother/solo")
	sr, err := solo.Open()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sha(t, sr), strings.TrimSpace(facts(t, dir, "lvm-striped.solo.sha256")); got != want || solo.Offset != volumeByID(t, l, "vgother/solo").Offset-p3.Offset {
		t.Fatalf("solo on the whole-disk PV: sha256 %s (want %s), offset %d", got, want, solo.Offset)
	}
}

// TestGPTOn4KnDisk: a GPT written by sgdisk on a loop device of 4096-byte
// sectors, compared with what sfdisk read from that device.
func TestGPTOn4KnDisk(t *testing.T) {
	dir := testfix.DiskImages(t)
	l, _ := scanFile(t, filepath.Join(dir, "gpt-4k.raw"))
	var sf sfdiskTable
	if err := json.Unmarshal([]byte(facts(t, dir, "gpt-4k.sfdisk.json")), &sf); err != nil {
		t.Fatal(err)
	}
	if sf.PartitionTable.SectorSize != 4096 || len(l.Warnings) != 0 {
		t.Fatalf("sfdisk sector size %d, warnings %+v", sf.PartitionTable.SectorSize, l.Warnings)
	}
	compareSfdisk(t, l, sf, "")
	checkAgainstBlkid(t, "gpt-4k p2", volumeByID(t, l, "p2").FS, parseExport(facts(t, dir, "gpt-4k.p2.blkid")))
	if fs := volumeByID(t, l, "p2").FS; fs == nil || fs.Label != "fourk" || fs.BlockSize != 4096 {
		t.Fatalf("%+v", fs)
	}
}

// TestLookup resolves the sources the fixtures' /etc/fstab files name (as
// forge-disk.sh wrote them) and the other forms fstab and crypttab use.
func TestLookup(t *testing.T) {
	dir := testfix.DiskImages(t)
	cases := map[string]map[string]string{
		"gpt-var.raw": {
			"UUID=d15c0007-0000-4000-8000-000000000007": "p1", // / ext4
			"UUID=d15c0008-0000-4000-8000-000000000008": "p2", // /var xfs
			"UUID=D15C0008-0000-4000-8000-000000000008": "p2",
			`LABEL="var"`:    "p2",
			"PARTLABEL=root": "p1",
			"PARTUUID=d15c9042-0000-4000-8000-000000000042":          "p2",
			"/dev/disk/by-uuid/d15c0008-0000-4000-8000-000000000008": "p2",
			"/dev/disk/by-partlabel/var":                             "p2",
			"/dev/nvme0n1p2":                                         "p2",
			"/dev/sda1":                                              "p1",
		},
		"gpt-ext4.raw": {
			"UUID=d15c0002-0000-4000-8000-000000000002": "p2",
			"UUID=D15C-0001":        "p1", // /boot/efi vfat
			"LABEL=cloudimg-rootfs": "p2",
			"/dev/xvda1":            "p1",
		},
		"mbr-lvm-xfs.raw": {
			"/dev/mapper/vg0-root":                      "vg0/root", // / xfs
			"UUID=d15c0004-0000-4000-8000-000000000004": "p1",       // /boot ext4
			"/dev/mapper/vg0-swap":                      "vg0/swap",
			"/dev/vg0/root":                             "vg0/root",
			"PARTUUID=d15c0003-02":                      "p2",
			"LABEL=root":                                "vg0/root",
		},
		"lvm-striped.raw": {"/dev/mapper/vgdata-striped": "vgdata/striped", "vgother/solo": "vgother/solo"},
	}
	// every partition by the PARTUUID partx gives it
	for _, name := range rawImages {
		path := filepath.Join(dir, name)
		l, _ := scanFile(t, path)
		for _, line := range strings.Split(strings.TrimSpace(tool(t, "partx", "-g", "-o", "NR,UUID", path)), "\n") {
			var nr, uuid string
			fmt.Sscan(line, &nr, &uuid)
			if l.Partitions[0].Scheme == "mbr" && (nr == "2" && name == "mbr-ext.raw" || nr == "2" && name == "seeds/tiny-mbr-ext.raw") {
				continue // the extended partition is no volume
			}
			if v, err := l.Lookup("PARTUUID=" + uuid); err != nil || v.ID != "p"+nr {
				t.Errorf("%s: PARTUUID=%s: %v %v, partx says p%s", name, uuid, v, err, nr)
			}
		}
	}
	for name, c := range cases {
		l, _ := scanFile(t, filepath.Join(dir, name))
		for src, want := range c {
			v, err := l.Lookup(src)
			if err != nil || v.ID != want {
				t.Errorf("%s: %s: %v %v, want %s", name, src, v, err, want)
			}
		}
		for _, bad := range []string{"UUID=00000000-0000-0000-0000-000000000000", "LABEL=nope", "/dev/mapper/nodash", "TMPFS=x", "/dev/sda9"} {
			if v, err := l.Lookup(bad); err == nil {
				t.Errorf("%s: %s found %s", name, bad, v.ID)
			}
		}
	}
}
