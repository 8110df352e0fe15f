package diskimage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/evidence/volume"
)

// memFS is a small in-memory vfs.Source for the hostile-configuration
// tests: paths to contents ("dir/" a directory, "->target" a link).
type memFS struct {
	name  string
	files map[string]string
}

func newMemFS(name string, files map[string]string) *memFS {
	m := &memFS{name: name, files: map[string]string{".": "/"}}
	for p, c := range files {
		p = strings.TrimSuffix(p, "/")
		if strings.HasSuffix(c, "/") || c == "" {
			c = "/"
		}
		m.files[p] = c
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			m.files[d] = "/"
		}
	}
	return m
}

func (m *memFS) stat(name string) (*vfs.Stat, error) {
	c, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
	}
	st := &vfs.Stat{Name: name, Mode: 0o644, Size: int64(len(c)), Mtime: time.Unix(1, 0)}
	switch {
	case c == "/":
		st.Mode, st.Size = fs.ModeDir|0o755, 0
	case strings.HasPrefix(c, "->"):
		st.Mode, st.Size = fs.ModeSymlink|0o777, int64(len(c)-2)
	}
	return st, nil
}

func (m *memFS) check(op, name string) (string, error) {
	c, err := vfs.Clean(name)
	if err != nil {
		return "", err
	}
	for d := path.Dir(c); d != "."; d = path.Dir(d) {
		if v, ok := m.files[d]; ok && strings.HasPrefix(v, "->") {
			return "", &fs.PathError{Op: op, Path: c, Err: vfs.ErrSymlinkInPath}
		}
	}
	return c, nil
}

func (m *memFS) Lstat(name string) (*vfs.Stat, error) {
	c, err := m.check("lstat", name)
	if err != nil {
		return nil, err
	}
	return m.stat(c)
}

func (m *memFS) ReadDir(name string) ([]*vfs.Stat, error) {
	c, err := m.check("readdir", name)
	if err != nil {
		return nil, err
	}
	if m.files[c] != "/" {
		return nil, &fs.PathError{Op: "readdir", Path: c, Err: fs.ErrInvalid}
	}
	var out []*vfs.Stat
	for p := range m.files {
		if p != "." && path.Dir(p) == c {
			st, _ := m.stat(p)
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *memFS) Readlink(name string) (string, error) {
	c, err := m.check("readlink", name)
	if err != nil {
		return "", err
	}
	if v := m.files[c]; strings.HasPrefix(v, "->") {
		return v[2:], nil
	}
	return "", &fs.PathError{Op: "readlink", Path: c, Err: fs.ErrInvalid}
}

func (m *memFS) Xattrs(string) (map[string][]byte, error) { return nil, nil }

func (m *memFS) Open(name string) (vfs.File, error) {
	c, err := m.check("open", name)
	if err != nil {
		return nil, err
	}
	v, ok := m.files[c]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: c, Err: fs.ErrNotExist}
	}
	if v == "/" || strings.HasPrefix(v, "->") {
		return nil, &fs.PathError{Op: "open", Path: c, Err: vfs.ErrNotRegular}
	}
	return memFile{strings.NewReader(v)}, nil
}

type memFile struct{ *strings.Reader }

func (memFile) Close() error { return nil }

func (m *memFS) String() string { return m.name }
func (m *memFS) Close() error   { return nil }

// memImage builds an Image over in-memory filesystems, one per volume
// ("p1", "p2", …, UUIDs "u1", "u2", …), picks the root and assembles it.
func memImage(t *testing.T, fss ...map[string]string) *Image {
	t.Helper()
	im := &Image{Path: "mem.img", Layout: &volume.Layout{Table: "gpt"}}
	for i, files := range fss {
		id := fmt.Sprintf("p%d", i+1)
		v := &volume.Volume{ID: id, Kind: "partition", Partition: i + 1, Readable: true,
			FS: &volume.Filesystem{Type: "ext4", UUID: fmt.Sprintf("u%d", i+1), Label: fmt.Sprintf("l%d", i+1)}}
		im.Layout.Volumes = append(im.Layout.Volumes, v)
		f := &Filesystem{Volume: id, Type: "ext4", UUID: v.FS.UUID, Label: v.FS.Label, Read: true, vol: v, src: newMemFS(id, files)}
		f.Holds = holds(f.src)
		im.Filesystems = append(im.Filesystems, f)
	}
	if err := im.pickRoot(&Options{}); err != nil {
		t.Fatal(err)
	}
	im.table = newMountTable(im.Path, im.Root)
	im.assemble()
	return im
}

func mountLines(im *Image) string {
	var out []string
	for _, m := range im.Mounts {
		out = append(out, fmt.Sprintf("%s %s %v %q", m.MountPoint, m.Volume, m.Mounted, m.Note))
	}
	return strings.Join(out, "\n")
}

// countWalk walks the whole namespace and returns the entries seen; a
// mount table that loops would never end (bounded here).
func countWalk(t *testing.T, src vfs.Source) int {
	t.Helper()
	n := 0
	var rec func(name string, depth int)
	rec = func(name string, depth int) {
		if depth > 64 || n > 10000 {
			t.Fatalf("the walk does not end (at %s)", name)
		}
		n++
		st, err := src.Lstat(name)
		if err != nil || !st.Mode.IsDir() {
			return
		}
		ents, err := src.ReadDir(name)
		if err != nil {
			t.Fatalf("readdir %s: %v", name, err)
		}
		for _, e := range ents {
			rec(e.Name, depth+1)
		}
	}
	rec(".", 0)
	return n
}

// TestHostileMountTables: a configuration pointing the root at itself,
// binding a directory below itself, mount points that loop through links
// or are files, more mounts than the bound, two volumes with one UUID —
// each ends in a note and a finite namespace.
func TestHostileMountTables(t *testing.T) {
	root := func(fstab string, extra map[string]string) map[string]string {
		m := map[string]string{"etc/fstab": fstab, "var/lib/containerd/": "", "var/lib/x/": "", "a": "->b", "b": "->a", "file": "x", "var/var/": ""}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	t.Run("root at /var and a bind below itself", func(t *testing.T) {
		im := memImage(t, root("UUID=u1 / ext4 defaults\nUUID=u1 /var ext4 defaults\n/var/lib /var/lib/x none bind\n/ /var/var none rbind\n", nil))
		want := `/ p1 true ""
/var p1 false "mounts the root filesystem again: skipped (it would show the root twice)"
/var/var p1 false "mounts the root filesystem again: skipped (it would show the root twice)"
/var/lib/x p1 true ""`
		if got := mountLines(im); got != want {
			t.Errorf("mounts:\n%s\nwant:\n%s", got, want)
		}
		// var/lib/x shows var/lib of the root filesystem, whose x is the
		// plain directory: one level, no loop.
		if n := countWalk(t, im); n != 13 {
			t.Errorf("walked %d entries", n)
		}
		if _, err := im.Lstat("var/lib/x/x/containerd"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("var/lib/x/x/containerd: %v", err)
		}
		if st, err := im.Lstat("var/lib/x/containerd"); err != nil || !st.Mode.IsDir() {
			t.Errorf("var/lib/x/containerd: %v", err)
		}
	})
	t.Run("link loops, files and missing points", func(t *testing.T) {
		im := memImage(t, root("UUID=u1 / ext4 defaults\nUUID=u2 /a ext4 defaults\nUUID=u2 /file ext4 defaults\nUUID=u2 /b/c ext4 defaults\nUUID=u2 /file/x ext4 defaults\n", nil),
			map[string]string{"data": "x"})
		want := `/ p1 true ""
/a p2 false "mount point: resolve /a: too many levels of symbolic links"
/file p2 false "mount point /file is a file, not a directory"
/b/c p2 false "mount point: resolve /b/c: too many levels of symbolic links"
/file/x p2 false "mount point /file/x does not exist in the node (systemd would create it; the kernel would refuse)"`
		if got := mountLines(im); got != want {
			t.Errorf("mounts:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("more mounts than the bound", func(t *testing.T) {
		var b strings.Builder
		extra := map[string]string{}
		for i := 0; i < maxMounts+10; i++ {
			fmt.Fprintf(&b, "UUID=u2 /m/%d ext4 defaults\n", i)
			extra[fmt.Sprintf("m/%d/", i)] = ""
		}
		im := memImage(t, root(b.String(), extra), map[string]string{"data": "x"})
		mounted, skipped := 0, 0
		for _, m := range im.Mounts[1:] {
			switch {
			case m.Mounted:
				mounted++
			case m.Note == fmt.Sprintf("more than %d mounts: skipped", maxMounts):
				skipped++
			}
		}
		if mounted != maxMounts || skipped != 10 {
			t.Errorf("%d mounted, %d skipped", mounted, skipped)
		}
		if n := countWalk(t, im); n != 12+(maxMounts+10)+maxMounts {
			t.Errorf("walked %d entries", n)
		}
	})
	t.Run("one UUID on two volumes", func(t *testing.T) {
		im := memImage(t, root("UUID=u1 / ext4 defaults\nLABEL=dup /var/lib/x ext4 defaults\n", nil), map[string]string{}, map[string]string{})
		im.Layout.Volumes[1].FS.Label, im.Layout.Volumes[2].FS.Label = "dup", "dup"
		im.Mounts = im.Mounts[:1]
		im.Notes = nil
		im.assemble()
		if got := mountLines(im); !strings.Contains(got, `/var/lib/x  false "not on this disk: \"LABEL=dup\": names 2 volumes (p2, p3)"`) {
			t.Errorf("mounts:\n%s", got)
		}
	})
	t.Run("automount", func(t *testing.T) {
		im := memImage(t, root("UUID=u2 /var/lib/x ext4 noauto,x-systemd.automount 0 0\n", nil), map[string]string{"data": "x"})
		if got := mountLines(im); got != "/ p1 true \"\"\n/var/lib/x p2 true \"\"" {
			t.Errorf("mounts:\n%s", got)
		}
	})
	t.Run("a huge fstab", func(t *testing.T) {
		big := strings.Repeat("# padding padding padding padding padding padding padding padding\n", (maxFstabBytes/64)+100)
		im := memImage(t, root(big+"UUID=u2 /var/lib/x ext4 defaults\n", nil), map[string]string{})
		if len(im.Mounts) != 1 || !strings.Contains(strings.Join(im.Notes, "\n"), "/etc/fstab: ") {
			t.Errorf("mounts %s notes %q", mountLines(im), im.Notes)
		}
	})
}

// TestRootPicking: the node's root is the filesystem holding /etc and a
// runtime; or /etc with an fstab mounting /var from another filesystem;
// ties go to the one whose fstab names itself, then to the first.
func TestRootPicking(t *testing.T) {
	cases := []struct {
		name string
		fss  []map[string]string
		root string
		note string
	}{
		{"runtime beats bare etc", []map[string]string{{"etc/": ""}, {"etc/": "", "var/lib/docker/": ""}}, "p2", "it holds /etc and /var/lib/docker"},
		{"separate /var", []map[string]string{{"lib/containerd/": ""}, {"etc/fstab": "UUID=u1 /var xfs defaults 0 0\n", "var/": ""}}, "p2", "it holds /etc, whose fstab mounts /var from another filesystem of the image"},
		{"runtime dir through a link", []map[string]string{{"etc/": "", "var/lib/kubelet": "->/data/kubelet", "data/kubelet/": ""}}, "p1", "it holds /etc and /var/lib/kubelet"},
		{"tie: the one whose fstab names itself", []map[string]string{{"etc/fstab": "UUID=u2 / ext4 defaults\n", "var/lib/containerd/": ""}, {"etc/fstab": "UUID=u2 / ext4 defaults\n", "var/lib/containerd/": ""}}, "p2", "other filesystems also look like a node's root (p1)"},
		{"only one filesystem", []map[string]string{{"data": "x"}}, "p1", "the only filesystem read (it holds no /etc)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			im := memImage(t, c.fss...)
			if im.Root.Volume != c.root || !strings.Contains(strings.Join(im.Notes, "\n"), c.note) {
				t.Errorf("root %s notes %q", im.Root.Volume, im.Notes)
			}
		})
	}
	im := &Image{Path: "mem.img", Layout: &volume.Layout{}}
	for i := 0; i < 2; i++ {
		im.Filesystems = append(im.Filesystems, &Filesystem{Volume: fmt.Sprintf("p%d", i+1), Type: "ext4", Read: true, src: newMemFS("x", map[string]string{"data": "x"})})
	}
	if err := im.pickRoot(&Options{}); !errors.Is(err, ErrNoRoot) || !strings.Contains(err.Error(), "p1: ext4; p2: ext4") {
		t.Errorf("two filesystems without /etc: %v", err)
	}
}

var _ io.Reader = memFile{}

// TestUnreadableVolumesListed: LVs device-mapper logic would be needed
// for (thin, RAID) and filesystems deadnode does not read are listed
// with the reason, never opened.
func TestUnreadableVolumesListed(t *testing.T) {
	im := &Image{Path: "mem.img", Layout: &volume.Layout{Volumes: []*volume.Volume{
		{ID: "vg0/thin", Kind: "lv", VG: "vg0", LV: "thin", Offset: -1, Note: "segment type thin needs device-mapper's logic: not read"},
		{ID: "vg0/mirror", Kind: "lv", Offset: -1, FS: &volume.Filesystem{Type: "ext4"}, Note: "segment type raid1 needs device-mapper's logic: not read"},
		{ID: "p3", Kind: "partition", Readable: true, FS: &volume.Filesystem{Type: "btrfs", UUID: "b"}},
		{ID: "p4", Kind: "partition", Readable: true, FS: &volume.Filesystem{Type: "crypto_LUKS"}},
	}}}
	im.openFilesystems(&Options{})
	want := []string{
		"vg0/thin: not readable: segment type thin needs device-mapper's logic: not read",
		"vg0/mirror (ext4): not readable: segment type raid1 needs device-mapper's logic: not read",
		"p3 (btrfs): skipped: btrfs is not read",
		"p4 (crypto_LUKS): skipped: LUKS-encrypted: not read (open it with cryptsetup and give the decrypted device)",
	}
	if strings.Join(im.Notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s", strings.Join(im.Notes, "\n"))
	}
	if len(im.Filesystems) != 3 || im.Filesystems[0].Read || im.Filesystems[0].Note == "" {
		t.Errorf("filesystems %+v", im.Filesystems)
	}
	if err := im.pickRoot(&Options{}); !errors.Is(err, ErrNoRoot) || !strings.Contains(err.Error(), "vg0/mirror: ext4 (not readable: segment type raid1") {
		t.Errorf("no root: %v", err)
	}
}

// A mount that hides an earlier one through a link to its point hides it
// for the record too: /data is a link to srv, so /srv from u3 hides /data
// from u2, which was still listed as mounted.
func TestHiddenThroughALinkedPoint(t *testing.T) {
	im := memImage(t, map[string]string{"etc/fstab": "UUID=u1 / ext4 defaults\nUUID=u2 /data ext4 defaults\nUUID=u3 /srv ext4 defaults\n",
		"var/lib/containerd/": "", "data": "->srv", "srv/": ""},
		map[string]string{"two": "x"}, map[string]string{"three": "x"})
	for _, m := range im.Mounts {
		if m.MountPoint == "/data" && m.Mounted {
			t.Errorf("/data still mounted, hidden by /srv:\n%s", mountLines(im))
		}
	}
	if _, err := im.Lstat("srv/three"); err != nil {
		t.Errorf("srv/three: %v", err)
	}
}
