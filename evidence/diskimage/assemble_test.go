package diskimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/testfix"
)

// Fixed ids of the assembly disk.
const (
	asmRootUUID = "d15ca001-0000-4000-8000-000000000001"
	asmCtrGUID  = "d15ca003-0000-4000-8000-000000000003"
)

// asmFstab exercises every rule: by UUID, LABEL, PARTUUID, a bind mount
// over a mounted filesystem, a mount point through a symlink, two entries
// at one point, and each kind of entry that is not mounted.
var asmFstab = `# assembly test
UUID=` + asmRootUUID + `	/	ext4	defaults	0 1
LABEL=data	/data	ext4	defaults	0 2
PARTUUID=` + asmCtrGUID + `	/var/lib/containerd	ext4	defaults,nofail	0 2
/data/docker	/var/lib/docker	none	bind	0 0
PARTLABEL=swap	none	swap	sw	0 0
tmpfs	/tmp	tmpfs	defaults	0 0
proc	/proc	proc	defaults	0 0
nfs.example:/export	/mnt/nfs	nfs	defaults	0 0
LABEL=data	/mnt/noauto	ext4	noauto	0 0
UUID=` + asmRootUUID + `	/mnt/again	ext4	defaults	0 0
UUID=deadbeef-0000-4000-8000-000000000000	/home	ext4	defaults	0 0
LABEL=data	/srv/missing	ext4	defaults	0 0
LABEL=logs	/var/log/app	ext4	defaults	0 0
LABEL=data	/opt/x	ext4	defaults	0 0
LABEL=logs	/opt/x	ext4	defaults	0 0
/dev/mapper/vg0-nope	/srv/lv	ext4	defaults	0 0
this line is not an fstab entry at all, but has many fields
`

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// assemblyDisk makes the assembly disk with mke2fs -d and sgdisk.
func assemblyDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	tree := func(name string, files map[string]string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		writeTree(t, p, files)
		return p
	}
	root := tree("root", map[string]string{
		"etc/fstab":                          asmFstab,
		"etc/systemd/system/srv-units.mount": "[Unit]\nDescription=units\n[Mount]\nWhat=LABEL=units\nWhere=/srv/units\nType=ext4\n[Install]\nWantedBy=local-fs.target\n",
		"etc/systemd/system/local-fs.target.wants/srv-units.mount": "->/etc/systemd/system/srv-units.mount",
		"etc/systemd/system/srv-off.mount":                         "[Mount]\nWhat=LABEL=data\nWhere=/srv/off\n",
		"var/lib/containerd/":                                      "", "var/lib/docker/": "", "data/": "", "tmp/": "", "proc/": "",
		"mnt/nfs/": "", "mnt/noauto/": "", "mnt/again/": "", "srv/units/": "", "srv/off/": "", "srv/lv/": "",
		"applog/": "", "var/log/app": "->../../applog", "opt/x/": "", "home/": "",
		"var/lib/containerd/hidden-by-the-mount": "root fs\n",
	})
	data := tree("data", map[string]string{"hello.txt": "on data\n", "docker/marker": "docker on data\n", "docker/image/": ""})
	ctr := tree("ctr", map[string]string{"io.containerd.content.v1.content/blobs/": "", "marker": "containerd on p3\n"})
	logs := tree("logs", map[string]string{"app.log": "log line\n"})
	units := tree("units", map[string]string{"unit.txt": "mounted by a unit\n"})
	return testfix.MakeDisk(t, dir, "assembly.raw", "d15ca000-0000-4000-8000-000000000000", []testfix.Part{
		{Name: "root", MiB: 8, FS: "ext4", Label: "root", UUID: asmRootUUID, Tree: root},
		{Name: "data", MiB: 4, FS: "ext4", Label: "data", UUID: "d15ca002-0000-4000-8000-000000000002", Tree: data},
		{Name: "ctr", GUID: asmCtrGUID, MiB: 4, FS: "ext4", Label: "ctr", UUID: "d15ca013-0000-4000-8000-000000000013", Tree: ctr},
		{Name: "swap", TypeCode: "8200", MiB: 1, FS: "swap", Label: "swap"},
		{Name: "logs", MiB: 4, FS: "ext4", Label: "logs", UUID: "d15ca005-0000-4000-8000-000000000005", Tree: logs},
		{Name: "units", MiB: 4, FS: "ext4", Label: "units", UUID: "d15ca006-0000-4000-8000-000000000006", Tree: units},
	})
}

func TestAssembly(t *testing.T) {
	img := assemblyDisk(t)
	im, err := Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	var got []string
	for _, m := range im.Mounts {
		got = append(got, fmt.Sprintf("%s %s %v %s %q", m.MountPoint, m.Volume, m.Mounted, m.Origin, m.Note))
	}
	want := []string{
		`/ p1 true picked; /etc/fstab line 2 ""`,
		`none p4 false /etc/fstab line 6 "swap"`,
		`/data p2 true /etc/fstab line 3 ""`,
		`/tmp  false /etc/fstab line 7 "tmpfs: held in memory, not on the disk"`,
		`/proc  false /etc/fstab line 8 "proc: held in memory, not on the disk"`,
		`/home  false /etc/fstab line 12 "not on this disk: \"UUID=deadbeef-0000-4000-8000-000000000000\": no such volume on this disk"`,
		`/mnt/nfs  false /etc/fstab line 9 "a network filesystem: not in this image"`,
		`/mnt/noauto  false /etc/fstab line 10 "noauto: not mounted at boot"`,
		`/mnt/again p1 false /etc/fstab line 11 "mounts the root filesystem again: skipped (it would show the root twice)"`,
		`/srv/missing p2 false /etc/fstab line 13 "mount point /srv/missing does not exist in the node (systemd would create it; the kernel would refuse)"`,
		`/opt/x p2 false /etc/fstab line 15 "hidden by a later mount on the same point (/etc/fstab line 16)"`,
		`/opt/x p5 true /etc/fstab line 16 "mounted over /opt/x (from p2), which it hides"`,
		`/srv/lv  false /etc/fstab line 17 "not on this disk: \"/dev/mapper/vg0-nope\": no such volume on this disk"`,
		`/srv/units p6 true /etc/systemd/system/srv-units.mount ""`,
		`/var/lib/containerd p3 true /etc/fstab line 4 ""`,
		`/var/lib/docker p2 true /etc/fstab line 5 ""`,
		`/var/log/app p5 true /etc/fstab line 14 "mount point /var/log/app resolves to /applog"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mounts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	notes := strings.Join(im.Notes, "\n")
	for _, n := range []string{
		"root filesystem: p1 ext4 UUID " + asmRootUUID + " (label root): it holds /etc and /var/lib/containerd",
		`/etc/fstab line 18: mount point "line" is not an absolute path`,
		"p4 (swap): skipped: swap space: not a filesystem",
		"/etc/systemd/system/srv-off.mount: not enabled (no .wants or .requires link): not mounted",
		"/var/lib/containerd from p3 ext4 UUID d15ca013-0000-4000-8000-000000000013 (/etc/fstab line 4)",
		"/var/lib/docker from p2 ext4 UUID d15ca002-0000-4000-8000-000000000002 (bind of /data/docker) (/etc/fstab line 5)",
		"/srv/units from p6 ext4 UUID d15ca006-0000-4000-8000-000000000006 (/etc/systemd/system/srv-units.mount)",
		"/etc/fstab line 11: UUID=" + asmRootUUID + " on /mnt/again not mounted: mounts the root filesystem again",
	} {
		if !strings.Contains(notes, n) {
			t.Errorf("no note %q in\n%s", n, notes)
		}
	}
	if strings.Contains(notes, "/tmp") || strings.Contains(notes, "/proc") || strings.Contains(notes, "PARTLABEL=swap") {
		t.Errorf("notes about pseudo filesystems or a swap entry:\n%s", notes)
	}
	read := func(name string) string {
		t.Helper()
		f, err := im.Open(name)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for name, content := range map[string]string{
		"data/hello.txt":            "on data\n",
		"var/lib/docker/marker":     "docker on data\n",
		"var/lib/containerd/marker": "containerd on p3\n",
		"applog/app.log":            "log line\n",
		"opt/x/app.log":             "log line\n",
		"srv/units/unit.txt":        "mounted by a unit\n",
		"mnt/again/../../etc/fstab"[len("mnt/again/../../"):]: asmFstab,
	} {
		if got := read(name); got != content {
			t.Errorf("%s: %q, want %q", name, got, content)
		}
	}
	// the root filesystem's file under a mount point is hidden
	if _, err := im.Lstat("var/lib/containerd/hidden-by-the-mount"); !os.IsNotExist(err) {
		t.Errorf("a file under a mount point is seen: %v", err)
	}
	// errors name the node's path
	_, err = im.Lstat("var/lib/containerd/nope")
	if pe, ok := err.(*os.PathError); !ok || pe.Path != "var/lib/containerd/nope" {
		t.Errorf("error %#v names the filesystem's path", err)
	}
	// the Source never follows a link, not even to a mount
	if _, err := im.Lstat("var/log/app/app.log"); err == nil || !strings.Contains(err.Error(), vfs.ErrSymlinkInPath.Error()) {
		t.Errorf("a name through a link: %v", err)
	}
	// a mount point's entry is the mounted root
	ents, err := im.ReadDir("var/lib")
	if err != nil {
		t.Fatal(err)
	}
	ctr, _ := im.Lstat("var/lib/containerd")
	docker, _ := im.Lstat("var/lib/docker")
	if len(ents) != 2 || ents[0].Name != "var/lib/containerd" || ents[0].Ino != 2 || *ents[0] != *ctr || ents[1].Name != "var/lib/docker" || *ents[1] != *docker || docker.Ino == 2 {
		t.Errorf("readdir var/lib: %+v %+v; lstat %+v %+v", ents[0], ents[1], ctr, docker)
	}
	if names, err := im.ReadDirNames("var/lib"); err != nil || strings.Join(names, ",") != "containerd,docker" {
		t.Errorf("names of var/lib: %q %v", names, err)
	}
	if names, err := im.ReadDirNames("var/lib/docker"); err != nil || strings.Join(names, ",") != "image,marker" {
		t.Errorf("names of var/lib/docker: %q %v", names, err)
	}
	if mp, err := im.MountPoint("var/lib/docker/image"); err != nil || mp != "var/lib/docker" {
		t.Errorf("mount point %q %v", mp, err)
	}
	if f, rel, err := im.MountOf("var/lib/docker/image"); err != nil || f.Volume != "p2" || rel != "docker/image" {
		t.Errorf("mount of: %v %q %v", f, rel, err)
	}
	compareKernel(t, img, im)
}

// compareKernel mounts what im mounted the way the node's kernel would
// (loop devices over the partitions, read-only; bind mounts), and compares
// every entry's metadata — the full lstat, birth time included — and
// every file's content with im's view. Root only (CI runs as root).
func compareKernel(t *testing.T, img string, im *Image) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("comparing with the kernel's mounts needs root (CI runs as root)")
	}
	mnt := t.TempDir()
	var mounted []string
	var loops []string
	t.Cleanup(func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			syscall.Unmount(mounted[i], syscall.MNT_DETACH)
		}
		for _, l := range loops {
			exec.Command("losetup", "-d", l).Run()
		}
	})
	sh := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, m := range im.Mounts {
		if !m.Mounted {
			continue
		}
		point := filepath.Join(mnt, m.MountPoint)
		if r, err := vfs.Resolve(im, m.MountPoint, true); err == nil {
			point = filepath.Join(mnt, r)
		}
		if m.BindSource != "" {
			sh("mount", "--bind", filepath.Join(mnt, m.BindSource), point)
			mounted = append(mounted, point)
			sh("mount", "-o", "remount,bind,ro", point)
			continue
		}
		var v = im.Filesystem(m.Volume).vol
		l := sh("losetup", "--show", "-f", "-r", "-o", fmt.Sprint(v.Offset), "--sizelimit", fmt.Sprint(v.Size), img)
		loops = append(loops, l)
		sh("mount", "-o", "ro", "-t", v.FS.Type, l, point)
		mounted = append(mounted, point)
	}
	kernel, err := openDirForTest(mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Close()
	kl, ks := listing(t, kernel)
	ol, os_ := listing(t, im)
	if kl != ol {
		t.Errorf("listing differs from the kernel's mounts: %s", firstDiff(kl, ol))
	}
	if ks != os_ {
		t.Errorf("contents differ from the kernel's mounts: %s", firstDiff(ks, os_))
	}
	n := 0
	walk(t, im, ".", func(st *vfs.Stat) {
		n++
		kst, err := kernel.Lstat(st.Name)
		if err != nil {
			t.Errorf("kernel: %v", err)
			return
		}
		if *kst != *st {
			t.Errorf("%s: kernel %+v\nours   %+v", st.Name, *kst, *st)
		}
	})
	if n < 40 {
		t.Errorf("only %d entries walked", n)
	}
}

// countingRecoverer counts the listings of what was deleted, and fails
// them when told to.
type countingRecoverer struct {
	vfs.Source
	n    *int
	fail error
}

func (c countingRecoverer) Deleted(ctx context.Context, dir string) ([]vfs.Deleted, error) {
	*c.n++
	if c.fail != nil {
		return nil, c.fail
	}
	return c.Source.(vfs.Recoverer).Deleted(ctx, dir)
}

// DeletedFS reads a filesystem once however many of the names lie on it,
// through one mount or a bind mount of it (/data and /var/lib/docker are
// both p2); a filesystem that cannot be read is an error naming its
// volume, and the others are still listed.
func TestDeletedFSOncePerFilesystem(t *testing.T) {
	im, err := Open(assemblyDisk(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	p2, p3 := im.Filesystem("p2"), im.Filesystem("p3")
	var n2, n3 int
	p2.src = countingRecoverer{Source: p2.src, n: &n2}
	p3.src = countingRecoverer{Source: p3.src, n: &n3, fail: &vfs.FormatError{File: "ext4 inode 11", Offset: 512, Msg: "damaged"}}
	_, err = im.DeletedFS(context.Background(), "data", "var/lib/docker", "data/docker", "var/lib/containerd")
	if n2 != 1 || n3 != 1 {
		t.Errorf("p2 read %d times, p3 %d", n2, n3)
	}
	if want := "volume p3 (ext4, mounted at /var/lib/containerd): ext4 inode 11: offset 512: damaged"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// A mount unit's name must be its Where= escaped, as systemd-escape --path
// writes it, or systemd refuses the unit and mounts nothing.
func TestMountUnitNameMatchesWhere(t *testing.T) {
	for _, p := range []string{"/var/lib/x", "/", "/srv/my.dir/a-b", "/a b/.hid", "/data/docker", "/.dot/ü"} {
		out, err := exec.Command("systemd-escape", "--path", p).Output()
		if err != nil {
			t.Fatalf("systemd-escape: %v", err)
		}
		if want := strings.TrimSpace(string(out)); unitNameFromPath(p) != want {
			t.Errorf("%q: %q, systemd-escape says %q", p, unitNameFromPath(p), want)
		}
	}
	unit := []byte("[Mount]\nWhat=/dev/sdb1\nWhere=/var/lib/x\n")
	if _, err := ParseMountUnit(unit, "/etc/systemd/system/var-lib-x.mount"); err != nil {
		t.Errorf("matching unit: %v", err)
	}
	if _, err := ParseMountUnit(unit, "/etc/systemd/system/foo.mount"); err == nil || !strings.Contains(err.Error(), "does not match the unit's name (systemd refuses it: it would be var-lib-x.mount)") {
		t.Errorf("foo.mount: %v", err)
	}
}
