package volume

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// Seeds are real disks and heads of real disks (forge-disk.sh's seeds/):
// GPT and MBR tables with their EBR chain, PV labels with their metadata
// areas (one wrapped), and the first 72 KiB of each kind of filesystem.

func FuzzScan(f *testing.F) {
	for _, n := range []string{"tiny-gpt.raw", "tiny-mbr-ext.raw", "gpt-ext4.head", "gpt-xfs.head", "mbr-lvm-xfs.head", "mbr-lvm-xfs.pv.head", "lvm-striped.pv.head"} {
		f.Add(testfix.DiskSeed(f, n))
	}
	// the LVM seed trimmed to its two PVs' labels and metadata areas
	lvm := testfix.DiskSeed(f, "tiny-lvm.raw")
	f.Add(lvm[:256<<10])
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Scan(bytes.NewReader(data), int64(len(data)), nil)
		if err != nil {
			return
		}
		if _, err := json.Marshal(l); err != nil {
			t.Fatal(err)
		}
		for _, v := range l.Volumes {
			r, err := v.Open()
			if err != nil {
				if v.Readable {
					t.Fatalf("%s readable but: %v", v.ID, err)
				}
				continue
			}
			if r.Size() != v.Size || v.Size < 0 {
				t.Fatalf("%s: size %d, reader %d", v.ID, v.Size, r.Size())
			}
			buf := make([]byte, 4096)
			for _, off := range []int64{0, v.Size / 3, v.Size - 100} {
				if off < 0 {
					continue
				}
				if n, err := r.ReadAt(buf, off); n > len(buf) || (err == nil && n != len(buf)) {
					t.Fatalf("%s: ReadAt %d: %d %v", v.ID, off, n, err)
				}
			}
		}
	})
}

func FuzzLVMText(f *testing.F) {
	for _, n := range []string{"mbr-lvm-xfs.pv.head", "lvm-striped.pv.head"} {
		b := testfix.DiskSeed(f, n)
		v := &Volume{ID: n, Size: 1 << 30, r: bytes.NewReader(b)} // the head of a larger PV
		pv, err := readPV(v)
		if err != nil || len(pv.texts) == 0 {
			f.Fatalf("%s: %v", n, err)
		}
		f.Add(pv.texts[0].text)
	}
	f.Add("vg0 {\nid = \"x\"\nextent_size = 8\nphysical_volumes {\npv0 {\nid = \"p\"\npe_start = 8\npe_count = 4\n}\n}\nlogical_volumes {\nlv {\nstatus = [\"VISIBLE\"]\nsegment1 {\nstart_extent = 0\nextent_count = 4\ntype = \"striped\"\nstripe_count = 2\nstripe_size = 8\nstripes = [\"pv0\", 0, \"pv0\", 2]\n}\n}\n}\n}\n")
	f.Fuzz(func(t *testing.T, text string) {
		pvb := make([]byte, 64<<10)
		v := &Volume{ID: "p1", Kind: "partition", Size: int64(len(pvb)), Readable: true, r: bytes.NewReader(pvb)}
		vg, err := parseVGMeta(metaText{text: text, what: "fuzz"}, &pvLabel{vol: v})
		if err != nil {
			return
		}
		// every PV of the metadata is this 64 KiB volume
		for _, pm := range vg.pvs {
			pm.label = &pvLabel{vol: v, uuid: pm.id}
		}
		s := &scanner{r: v.r, size: v.Size, l: &Layout{}}
		labels := []*pvLabel{}
		s.addVG(vg, vg.name, labels)
		for _, vol := range s.l.Volumes {
			if r, err := vol.Open(); err == nil {
				io.Copy(io.Discard, io.NewSectionReader(r, 0, min(r.Size(), 1<<20)))
			}
		}
	})
}

func FuzzProbe(f *testing.F) {
	for _, n := range testfix.DiskSeeds(f, "fs-*.head") {
		f.Add(testfix.DiskSeed(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := Probe(bytes.NewReader(data), int64(len(data)))
		if err != nil || fs == nil {
			return
		}
		if fs.Type == "" {
			t.Fatalf("a filesystem without a type: %+v", fs)
		}
	})
}

func FuzzLookup(f *testing.F) {
	for _, s := range []string{"UUID=d15c0002-0000-4000-8000-000000000002", `LABEL="root"`, "PARTUUID=d15c0007-05", "/dev/mapper/vg--a-lv--b", "/dev/disk/by-label/a\\x2fb", "/dev/nvme0n1p2", "p5"} {
		f.Add(s)
	}
	l, err := Scan(bytes.NewReader(testfix.DiskSeed(f, "tiny-mbr-ext.raw")), 1<<20, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if v, err := l.Lookup(src); err == nil && v == nil {
			t.Fatal("nil volume without an error")
		}
	})
}
