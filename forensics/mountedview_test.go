package forensics

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/overlay"
)

// mountedFixture lays out, in a temp dir taken as the evidence, a
// container's upper layer and the contents of its mounts:
//
//	upper/   etc/passwd, etc/link -> /data/f, var/run -> /run, run/, usr/bin/sh, bin -> usr/bin
//	vol/     f, sub/g, up -> ../.., abs -> /etc/passwd
//	loopy/   loop -> loop
//	hostfile
//
// /etc/passwd exists only in the layer, never at the evidence's root: a
// link that resolved in the evidence's namespace would not find it.
func mountedFixture(t testing.TB) evidence.Source {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"upper/etc/passwd": "root:x:0:0\n", "upper/usr/bin/sh": "#!sh\n", "vol/f": "vol-file\n", "vol/sub/g": "g\n", "hostfile": "single file\n",
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"upper/run", "upper/var", "loopy"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"upper/etc/link": "/data/f", "upper/var/run": "/run", "upper/bin": "usr/bin",
		"vol/up": "../..", "vol/abs": "/etc/passwd", "loopy/loop": "loop",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func strp(s string) *string { return &s }

func testMountedView(t testing.TB, src evidence.Source, loopy bool) *MountedView {
	t.Helper()
	root, err := overlay.New([]overlay.Layer{{Source: src, Dir: "upper", Kind: overlay.LayerDir, Name: "/upper"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := []kube.Mount{
		{ContainerPath: strp("/data"), Origin: "volume:data", Kind: kube.MountVolume, Volume: "data", VolumeKind: kube.VolEmptyDir, EvidencePath: "/vol", Exists: true, Writable: true},
		{ContainerPath: strp("/etc/hostfile"), Origin: "host:/hostfile", Kind: kube.MountHostPath, EvidencePath: "/hostfile", Exists: true, Writable: true},
		{ContainerPath: strp("/var/run/secrets/x"), Origin: "volume:x", Kind: kube.MountVolume, Volume: "x", VolumeKind: kube.VolSecret, EvidencePath: "/vol/sub", Exists: true, ReadOnly: true},
		{Origin: "volume:scratch", Kind: kube.MountVolume, Volume: "scratch", VolumeKind: kube.VolEmptyDir, EvidencePath: "/vol", Exists: true, Writable: true},
		{ContainerPath: strp("/missing"), Origin: "volume:gone", Kind: kube.MountVolume, Volume: "gone"},
	}
	if loopy {
		ms = append(ms, kube.Mount{ContainerPath: strp("/loopy"), Origin: "volume:loopy", Kind: kube.MountVolume, EvidencePath: "/loopy", Exists: true})
	}
	v, ws := newMountedView(src, root, ms)
	if len(ws) != 0 {
		t.Errorf("warnings: %v", ws)
	}
	return v
}

func readAll(t *testing.T, v *MountedView, name string) string {
	t.Helper()
	f, err := v.OpenFile(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMountedViewResolvesInTheContainer(t *testing.T) {
	v := testMountedView(t, mountedFixture(t), true)
	// Mounts placed where the runtime put them: /var/run is a link to /run
	// in the layers, so the secret is at /run/secrets/x.
	var at []string
	for _, m := range v.Mounts {
		at = append(at, m.At)
	}
	if got, want := strings.Join(at, " "), "/(volume:scratch) /data /etc/hostfile /loopy /missing /run/secrets/x"; got != want {
		t.Errorf("mounts at %s, want %s", got, want)
	}
	for name, want := range map[string]string{
		"/data/f":                   "vol-file\n",
		"/etc/link":                 "vol-file\n",   // a layer's link into a mount
		"/data/abs":                 "root:x:0:0\n", // a mount's absolute link into the layers
		"/data/../../../etc/passwd": "root:x:0:0\n", // ".." stops at the container's root
		"/data/up/etc/passwd":       "root:x:0:0\n", // a relative link climbs to the container's root, not the evidence's
		"/etc/hostfile":             "single file\n",
		"/var/run/secrets/x/g":      "g\n",
		"/run/secrets/x/g":          "g\n",
		"/(volume:scratch)/f":       "vol-file\n",
		"(volume:scratch)/sub/../f": "vol-file\n",
		"/bin/sh":                   "#!sh\n",
		"/(volume:scratch)/up/(volume:scratch)/sub/g": "g\n",
	} {
		if got := readAll(t, v, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]struct{ origin, evidence, path string }{
		"/data/f":            {"volume:data", "/vol/f", "data/f"},
		"/etc/passwd":        {OriginLayer, "", "etc/passwd"},
		"/etc/hostfile":      {"host:/hostfile", "/hostfile", "etc/hostfile"},
		"/run/secrets":       {OriginMountPoint, "", "run/secrets"},
		"/run/secrets/x/g":   {"volume:x", "/vol/sub/g", "run/secrets/x/g"},
		"/(volume:scratch)":  {"volume:scratch", "/vol", "(volume:scratch)"},
		"/missing":           {"volume:gone", "", "missing"},
		"/":                  {OriginLayer, "", "."},
		"/data/up":           {"volume:data", "/vol/up", "data/up"},
		"/data/sub/../../..": {OriginLayer, "", "."},
	} {
		e, err := v.LstatEntry(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if e.Origin != want.origin || e.EvidencePath != want.evidence || e.Path != want.path {
			t.Errorf("%s: origin %s evidence %q path %q, want %+v", name, e.Origin, e.EvidencePath, e.Path, want)
		}
	}
	if e, _ := v.LstatEntry("/data/up"); e == nil || e.LinkTarget != "../.." || e.Stat.Mode&fs.ModeSymlink == 0 {
		t.Errorf("lstat of a link: %+v", e)
	}
	if e, _ := v.LstatEntry("/missing"); e == nil || !e.Stat.Mode.IsDir() || e.Note == "" {
		t.Errorf("a mount whose content is not in the evidence: %+v", e)
	}
	for name, want := range map[string]error{
		"/missing/x":         fs.ErrNotExist,
		"/data/nope":         fs.ErrNotExist,
		"/loopy/loop":        evidence.ErrTooManyLinks,
		"/etc/passwd/x":      syscall.ENOTDIR,
		"/etc/hostfile/x":    syscall.ENOTDIR,
		"/(volume:nope)/f":   fs.ErrNotExist,
		"/data/abs/x":        syscall.ENOTDIR,
		"/var/run/secrets/y": fs.ErrNotExist,
	} {
		_, err := v.StatEntry(name)
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
		var pe *fs.PathError
		if err != nil && (!errors.As(err, &pe) || pe.Path != name) {
			t.Errorf("%s: the error names %v, not the container path", name, err)
		}
	}
	// Listings: the mounts replace or add the entries of their names.
	names := func(dir string) string {
		es, err := v.ReadDirEntries(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Path+"="+e.Origin)
		}
		return strings.Join(out, " ")
	}
	for dir, want := range map[string]string{
		"/":         "(volume:scratch)=volume:scratch bin=layer data=volume:data etc=layer loopy=volume:loopy missing=volume:gone run=layer usr=layer var=layer",
		"/etc":      "etc/hostfile=host:/hostfile etc/link=layer etc/passwd=layer",
		"/var/run":  "run/secrets=mount_point",
		"/data":     "data/abs=volume:data data/f=volume:data data/sub=volume:data data/up=volume:data",
		"/data/sub": "data/sub/g=volume:data",
		"/missing":  "",
	} {
		if got := names(dir); got != want {
			t.Errorf("ls %s = %s\nwant %s", dir, got, want)
		}
	}
	// The walk: every entry once, directories before their contents.
	var walked []string
	for e, err := range v.Walk("/run") {
		if err != nil {
			t.Errorf("walk: %v", err)
			continue
		}
		walked = append(walked, e.ContainerPath())
	}
	if got, want := strings.Join(walked, " "), "/run /run/secrets /run/secrets/x /run/secrets/x/g"; got != want {
		t.Errorf("walk = %s, want %s", got, want)
	}
	if r, err := v.Resolve("/var/run/secrets/x/g"); err != nil || r != "/run/secrets/x/g" {
		t.Errorf("resolve: %q %v", r, err)
	}
}

// The view is a well-behaved io/fs file system.
func TestMountedViewFS(t *testing.T) {
	v := testMountedView(t, mountedFixture(t), false)
	if err := fstest.TestFS(v, "etc/passwd", "etc/hostfile", "data/f", "data/sub/g", "run/secrets/x/g", "(volume:scratch)/sub/g"); err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(v, "etc/link")
	if err != nil || string(b) != "vol-file\n" {
		t.Errorf("ReadFile etc/link = %q, %v", b, err)
	}
	if _, err := v.Open("/etc/passwd"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("an absolute name: %v", err)
	}
}

// Hostile names (the user's, and link targets from the evidence) never
// panic nor lead out of the container's namespace: every entry of a
// mount lies under that mount's content.
func FuzzMountedViewResolve(f *testing.F) {
	for _, s := range []string{"/data/f", "/etc/link", "/data/up/etc/passwd", "/data/../../../etc/passwd", "/loopy/loop", "/var/run/secrets/x/g",
		"(volume:scratch)/sub/../f", "/missing/x", "/etc/passwd/x", "//data//./up/..//f", "/(volume:scratch)/up/(volume:scratch)/abs", "", "/", ".."} {
		f.Add(s)
	}
	src := mountedFixture(f)
	f.Fuzz(func(t *testing.T, name string) {
		v := testMountedView(t, src, true)
		check := func(e *MountedEntry) {
			if e == nil {
				return
			}
			if e.Mount != nil && e.EvidencePath != "" && e.EvidencePath != e.Mount.EvidencePath && !strings.HasPrefix(e.EvidencePath, e.Mount.EvidencePath+"/") {
				t.Fatalf("%q: %s lies outside its mount %s", name, e.EvidencePath, e.Mount.EvidencePath)
			}
			if strings.Contains("/"+e.Path+"/", "/../") {
				t.Fatalf("%q: path %q", name, e.Path)
			}
		}
		e, _ := v.StatEntry(name)
		check(e)
		e, _ = v.LstatEntry(name)
		check(e)
		es, _ := v.ReadDirEntries(name)
		for _, e := range es {
			check(e)
		}
	})
}
