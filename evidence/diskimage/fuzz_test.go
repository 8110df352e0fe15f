package diskimage

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/testfix"
)

// fixtureFstabs are the fstabs forge-disk.sh writes into the disk-image
// fixtures (GPT+ext4, MBR+LVM+XFS, a separate /var).
var fixtureFstabs = []string{
	"UUID=d15c0002-0000-4000-8000-000000000002\t/\text4\tdiscard,errors=remount-ro\t0 1\nUUID=D15C-0001\t/boot/efi\tvfat\tumask=0077\t0 1\n",
	"/dev/mapper/vg0-root\t/\txfs\tdefaults\t0 0\nUUID=d15c0004-0000-4000-8000-000000000004\t/boot\text4\tdefaults\t1 2\n/dev/mapper/vg0-swap\tnone\tswap\tdefaults\t0 0\n",
	"UUID=d15c0007-0000-4000-8000-000000000007\t/\text4\tdefaults\t0 1\nUUID=d15c0008-0000-4000-8000-000000000008\t/var\txfs\tdefaults\t0 0\n",
}

func entryLines(es []MountEntry) string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%s", e.Source, e.Point, e.Type, strings.Join(e.Options, ","), e.Origin))
	}
	return strings.Join(out, "\n")
}

// TestParseRealConfigs reads the example fstabs and units Debian ships.
func TestParseRealConfigs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "mount-example.fstab"))
	if err != nil {
		t.Fatal(err)
	}
	es, probs := ParseFstab(b, "/etc/fstab")
	want := `UUID=dcdeb525-ea16-4b14-96bc-52669f8b28f6|none|swap|sw|/etc/fstab line 17
UUID=b9ab10f7-0f4f-44f6-a35e-84a5ed7e2097|/|ext2|defaults|/etc/fstab line 22
UUID=ca647f3e-356f-4550-b714-7cd1d46f1628|/home|ext2|defaults|/etc/fstab line 23
UUID=c07a265e-014c-46e1-8f8a-5b65ba84eeb9|/var|ext2|defaults|/etc/fstab line 24
UUID=0da3d82a-00c6-44fe-8cba-cdd65cfeab19|/usr/local|ext2|defaults,bsdgroups|/etc/fstab line 25
/dev/cdrom|/cdrom|iso9660|defaults,noauto,ro,user|/etc/fstab line 30
/dev/fd0|/floppy|minix|defaults,noauto,user|/etc/fstab line 31
/dev/fd1|/floppy|minix|defaults,noauto,user|/etc/fstab line 32
server:/export/usr|/usr|nfs|defaults|/etc/fstab line 35`
	if got := entryLines(es); got != want || len(probs) != 0 {
		t.Errorf("entries:\n%s\nwant:\n%s\nproblems %q", got, want, probs)
	}
	b, err = os.ReadFile(filepath.Join("testdata", "tmp.mount"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseMountUnit(b, "/etc/systemd/system/tmp.mount")
	if err != nil || entryLines([]MountEntry{e}) != "tmpfs|/tmp|tmpfs|mode=1777,strictatime,nosuid,nodev,size=50%%,nr_inodes=1m|/etc/systemd/system/tmp.mount" {
		t.Errorf("tmp.mount: %+v %v", e, err)
	}
	// escapes, short lines, a relative mount point
	es, probs = ParseFstab([]byte("LABEL=My\\040Disk /mnt/my\\040disk ext4\n/dev/sdb1 /srv\nrelative data ext4 defaults\nonefield\n"), "fstab")
	if got := entryLines(es); got != "LABEL=My Disk|/mnt/my disk|ext4|defaults|fstab line 1\n/dev/sdb1|/srv|auto|defaults|fstab line 2" ||
		strings.Join(probs, "\n") != "fstab line 3: mount point \"data\" is not an absolute path\nfstab line 4: not an fstab entry (1 fields)" {
		t.Errorf("entries:\n%s\nproblems %q", got, probs)
	}
	if _, err := ParseMountUnit([]byte("[Mount]\nWhere=/x\n"), "u"); err == nil || err.Error() != "u: no What= in its [Mount] section" {
		t.Errorf("no What=: %v", err)
	}
	if _, err := ParseMountUnit([]byte("[Mount]\nWhat=/dev/x\nWhere=x\n"), "u"); err == nil || err.Error() != `u: Where="x" is not an absolute path` {
		t.Errorf("relative Where=: %v", err)
	}
}

func fstabSeeds(f *testing.F) {
	for _, s := range fixtureFstabs {
		f.Add([]byte(s))
	}
	for _, n := range []string{"util-linux-example.fstab", "mount-example.fstab"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(asmFstab))
}

// FuzzFstab parses an fstab and assembles a node from it over in-memory
// filesystems (p1 the root, p2 and p3 others): every entry ends mounted
// or with a reason, and the namespace stays finite.
func FuzzFstab(f *testing.F) {
	fstabSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		es, _ := ParseFstab(data, "/etc/fstab")
		if len(es) > maxMountLines {
			t.Fatalf("%d entries", len(es))
		}
		for _, e := range es {
			if e.Point != "none" && e.Point != "swap" && !strings.HasPrefix(e.Point, "/") {
				t.Fatalf("mount point %q", e.Point)
			}
		}
		im := memImage(t, map[string]string{"etc/fstab": string(data), "var/lib/containerd/": "", "var/log": "->/data", "data/x/": "", "l": "->l"},
			map[string]string{"docker/": "", "f": "x"}, map[string]string{"a/b/": ""})
		for _, m := range im.Mounts {
			if !m.Mounted && m.Note == "" && m.MountPoint != "/" {
				t.Fatalf("%+v: not mounted and no reason", m)
			}
		}
		countWalk(t, im)
	})
}

// FuzzMountUnit parses a systemd mount unit.
func FuzzMountUnit(f *testing.F) {
	for _, n := range []string{"tmp.mount", "dev-hugepages.mount"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[Mount]\nWhat=LABEL=units\nWhere=/srv/units\nType=ext4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseMountUnit(data, "u.mount")
		if err != nil {
			return
		}
		if e.Source == "" || !strings.HasPrefix(e.Point, "/") || len(e.Source) > maxFieldBytes {
			t.Fatalf("%+v", e)
		}
	})
}

// FuzzMatch: Match never panics on a short or odd head, and a tar header
// is never a disk.
func FuzzMatch(f *testing.F) {
	f.Add([]byte("QFI\xfb"))
	f.Add(make([]byte, 600))
	tar := make([]byte, 1200)
	copy(tar[257:], "ustar\x0000")
	tar[0x438], tar[0x439] = 0x53, 0xef
	f.Add(tar)
	f.Fuzz(func(t *testing.T, head []byte) {
		if Match(head) && vfs.IsTarHeader(head) {
			t.Fatal("a tar header matched")
		}
	})
}

// TestMatch: every disk form of the committed seeds (real images made by
// forge-disk.sh) is a disk; a tar of a file holding an ext4 superblock, a
// tar.gz and text are not.
func TestMatch(t *testing.T) {
	for _, n := range []string{"tiny-gpt.raw", "tiny-mbr-ext.raw", "tiny-lvm.raw", "tiny.qcow2", "tiny.v2.qcow2", "tiny.zstd.qcow2",
		"tiny.sparse.vmdk", "tiny.stream.vmdk", "tiny.gdend.vmdk", "tiny.descriptor.vmdk", "fs-ext4.head", "fs-xfs.head", "fs-ext2.head", "gpt-ext4.head", "gpt-xfs.head", "mbr-lvm-xfs.head", "mbr-lvm-xfs.pv.head"} {
		if !Match(head(testfix.DiskSeed(t, n))) {
			t.Errorf("%s is not matched", n)
		}
	}
	// a real tar (GNU tar's own header) whose member holds an ext4 superblock at the disk offset
	dir := t.TempDir()
	body := make([]byte, 2048)
	body[0x438-512], body[0x439-512] = 0x53, 0xef
	if err := os.WriteFile(filepath.Join(dir, "sb"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"gnu", "v7", "ustar", "pax"} {
		out, err := exec.Command("tar", "-C", dir, "--format="+format, "-cf", "-", "sb").Output()
		if err != nil {
			t.Fatal(err)
		}
		if Match(head(out)) {
			t.Errorf("a %s tar is matched", format)
		}
	}
	for _, n := range []string{"../../testdata/containerd-node/containerd-node.tar.gz", "testdata/tmp.mount"} {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if Match(head(b)) {
			t.Errorf("%s is matched", n)
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), ProbeBytes)] }
