package xfs

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// xfsDB runs xfs_db read-only on img and returns its "field = value"
// lines.
func xfsDB(t *testing.T, img string, cmds ...string) map[string]string {
	t.Helper()
	args := []string{"-r"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("xfs_db", append(args, img)...).CombinedOutput()
	if err != nil {
		t.Fatalf("xfs_db %v: %v\n%s", cmds, err, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " = "); ok {
			m[k] = v
		}
	}
	return m
}

// num reads the leading number of an xfs_db value ("3 (btree)", "0x8").
func num(t *testing.T, v string) uint64 {
	t.Helper()
	f := strings.Fields(v)
	if len(f) == 0 {
		t.Fatalf("xfs_db value %q", v)
	}
	n, err := strconv.ParseUint(f[0], 0, 64)
	if err != nil {
		t.Fatalf("xfs_db value %q: %v", v, err)
	}
	return n
}

// TestXFSDB checks the superblock and the inode cores of a sample of
// entries against xfs_db, and that every directory, attribute and block
// map format the package reads is present in the fixtures (so that the
// kernel comparison covers them).
func TestXFSDB(t *testing.T) {
	for _, name := range []string{"v5", "small", "legacy"} {
		t.Run(name, func(t *testing.T) {
			img := FixtureImage(t, name)
			f := OpenFixture(t, name)
			sb := xfsDB(t, img, "sb 0", "print")
			for _, c := range []struct {
				field string
				got   uint64
			}{
				{"blocksize", uint64(f.blockSize)}, {"dblocks", f.dblocks}, {"agcount", f.agCount},
				{"agblocks", f.agBlocks}, {"inodesize", uint64(f.inodeSize)}, {"rootino", f.rootIno},
				{"logstart", f.logStart}, {"logblocks", f.logBlocks}, {"features_incompat", uint64(f.incompat)},
			} {
				if w := num(t, sb[c.field]); w != c.got {
					t.Errorf("superblock %s: %d, xfs_db %d", c.field, c.got, w)
				}
			}
			if sb["uuid"] != f.Info().UUID || !strings.HasSuffix(sb["crc"], "(correct)") || !crcOK(mustSB(t, f), sbCRC) {
				t.Errorf("uuid %s crc %s, ours %s", sb["uuid"], sb["crc"], f.Info().UUID)
			}
			if got, want := f.Info().Label, "dn-"+name; got != want || !strings.Contains(sb["fname"], want) {
				t.Errorf("label %q (xfs_db %s), want %q", got, sb["fname"], want)
			}
			type check struct {
				path    string
				format  uint8
				aformat uint8 // 0xff: not checked
				magic   func(*testing.T, *FS, *inode) []string
			}
			checks := []check{
				{"edge/dirs/short", fmtLocal, 0xff, nil},
				{"edge/dirs/block", fmtExtents, 0xff, dirMagic(0, 0)},
				{"edge/dirs/leaf", fmtExtents, 0xff, dirMagic(1, 8)},
				{"edge/dirs/node", fmtBtree, 0xff, dirMagic(1, 8)},
				{"edge/dirs/btree", fmtBtree, 0xff, nil},
				{"edge/files/fragmented", fmtBtree, 0xff, bmbtDepth},
				{"edge/files/sparse", fmtExtents, 0xff, nil},
				{"edge/attrs/local", fmtExtents, fmtLocal, nil},
				{"edge/attrs/leaf", fmtExtents, fmtExtents, attrMagic},
				{"edge/attrs/node", fmtExtents, 0xff, attrMagic},
				{"edge/attrs/remote", fmtExtents, fmtExtents, attrMagic},
				{"edge/attrs/btree", fmtExtents, fmtBtree, attrMagic},
				{"edge/links/short", fmtLocal, 0xff, nil},
				{"edge/links/long", fmtExtents, 0xff, nil},
				{"edge/links/max", fmtExtents, 0xff, nil},
				{"edge/special/maxdev", fmtDev, 0xff, nil},
				{upperPath + "/etc/motd", fmtDev, 0xff, nil},
			}
			magics := map[string]bool{}
			for _, c := range checks {
				_, ip, err := f.resolve("check", c.path)
				if err != nil {
					t.Fatal(err)
				}
				db := xfsDB(t, img, "inode "+strconv.FormatUint(ip.ino, 10), "print")
				for _, fc := range []struct {
					field string
					got   uint64
				}{
					{"core.mode", uint64(ip.mode)}, {"core.format", uint64(ip.format)}, {"core.aformat", uint64(ip.aformat)},
					{"core.uid", uint64(ip.uid)}, {"core.gid", uint64(ip.gid)}, {"core.nlinkv2", uint64(ip.nlink)},
					{"core.size", uint64(ip.size)}, {"core.nblocks", ip.nblocks}, {"core.nextents", ip.nextents},
					{"core.naextents", ip.anextents}, {"core.forkoff", uint64(ip.forkoff / 8)}, {"core.gen", uint64(ip.gen)},
					{"v3.flags2", ip.flags2}, {"v3.inumber", ip.ino},
				} {
					v, ok := db[fc.field]
					if !ok {
						t.Fatalf("xfs_db inode %d: no %s", ip.ino, fc.field)
					}
					w := num(t, v)
					if fc.field == "core.mode" {
						w, _ = strconv.ParseUint(strings.Fields(v)[0], 8, 32)
					}
					if w != fc.got {
						t.Errorf("%s (inode %d) %s: %d, xfs_db %s", c.path, ip.ino, fc.field, fc.got, v)
					}
				}
				if ip.format != c.format || c.aformat != 0xff && ip.aformat != c.aformat {
					t.Errorf("%s: formats %d/%d, want %d/%d", c.path, ip.format, ip.aformat, c.format, c.aformat)
				}
				if c.magic != nil {
					for _, m := range c.magic(t, f, ip) {
						magics[m] = true
					}
				}
				big := ip.flags2&diflag2Bigtime != 0
				if big != (name != "legacy") || (ip.flags2&diflag2Nrext64 != 0) != (name == "small") {
					t.Errorf("%s: flags2 0x%x on %s", c.path, ip.flags2, name)
				}
			}
			for _, m := range []string{"dir block", "dir leaf1", "dir node", "attr leaf", "attr node", "attr remote", "bmbt depth 2+"} {
				if !magics[m] {
					t.Errorf("no %s in the fixture (saw %v)", m, magics)
				}
			}
			// The device numbers xfs_db sees.
			_, ip, _ := f.resolve("check", "edge/special/maxdev")
			if ma, mi := ip.rdev(); ma != 511 || mi != 262143 {
				t.Errorf("maxdev %d:%d", ma, mi)
			}
		})
	}
}

const upperPath = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs"

func mustSB(t *testing.T, f *FS) []byte {
	b := make([]byte, f.sectSize)
	if err := f.readDev(b, 0, lc("sb")); err != nil {
		t.Fatal(err)
	}
	return b
}

// dirMagic names the kind of block at the start of the data (space 0) or
// leaf (space 1) space of a directory.
func dirMagic(space, off int) func(*testing.T, *FS, *inode) []string {
	return func(t *testing.T, f *FS, ip *inode) []string {
		fk, err := f.dataFork(ip)
		if err != nil {
			t.Fatal(err)
		}
		lb := uint64(0)
		if space == 1 {
			lb = f.leafFSB
		}
		b, _, err := fk.readBlocks(lb, f.dirFSBs, -1)
		if err != nil {
			t.Fatal(err)
		}
		if off == 0 {
			if be.Uint32(b) == dir3BlockMagic {
				return []string{"dir block"}
			}
			return []string{"dir data"}
		}
		switch be.Uint16(b[off:]) {
		case dir3Leaf1Magic:
			return []string{"dir leaf1"}
		case da3NodeMagic:
			return []string{"dir node"}
		}
		return nil
	}
}

// attrMagic names the root block of an attribute tree; a remote value
// counts too.
func attrMagic(t *testing.T, f *FS, ip *inode) []string {
	fk, err := f.attrFork(ip)
	if err != nil {
		t.Fatal(err)
	}
	remote := false
	fk.each(func(e extent) error {
		for i := uint64(0); i < e.count; i++ {
			b, _, err := fk.readBlocks(e.off+i, 1, -1)
			if err == nil && be.Uint32(b) == attr3RmtMagic {
				remote = true
			}
		}
		return nil
	})
	var out []string
	if remote {
		out = append(out, "attr remote")
	}
	b, _, err := fk.readBlocks(0, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	switch be.Uint16(b[8:]) {
	case attr3LeafMagic:
		out = append(out, "attr leaf")
	case da3NodeMagic:
		out = append(out, "attr node")
	}
	return out
}

func bmbtDepth(t *testing.T, f *FS, ip *inode) []string {
	fk, err := f.dataFork(ip)
	if err != nil {
		t.Fatal(err)
	}
	if fk.level >= 2 {
		return []string{"bmbt depth 2+"}
	}
	return nil
}

// TestLogScan reads the fixtures' logs: every record found is whole (the
// logs have not wrapped), the small image's 256 KiB log buffers give
// records with extended headers, and the dropper's inode copies are
// there with their block map.
func TestLogScan(t *testing.T) {
	for _, name := range []string{"v5", "small", "legacy"} {
		f := OpenFixture(t, name)
		ls, err := f.scanLog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		base, _ := f.extentPos(f.logStart, f.logBlocks)
		nbb := f.logBlocks << (f.blockLog - 9)
		h := make([]byte, 512)
		ext := 0
		for bb := uint64(0); bb < nbb; bb++ {
			if err := f.readDev(h, base+int64(bb*512), lc("log")); err != nil {
				t.Fatal(err)
			}
			if r, ok := f.logHeader(h, bb, nbb); ok && be.Uint32(h) == logMagic && r.hblks > 1 {
				ext++
			}
		}
		if ls.records < 20 || ls.torn != 0 || (ext > 0) != (name == "small") {
			t.Errorf("%s: %d records, %d torn, %d with extended headers", name, ls.records, ls.torn, ext)
		}
		found := 0
		for _, c := range ls.copies {
			if c.core != nil && c.core.size == 1982256 && c.fork != nil {
				if use, err := f.inodeInUse(c.ino64); err == nil && !use {
					found++
				}
			}
		}
		if found != 1 {
			t.Errorf("%s: %d copies of the deleted dropper in the log", name, found)
		}
	}
}
