package docker

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// tree writes files (and symlinks, for values starting with "->") below dir.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	hChain = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	hDiff  = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	hCache = "cache0000"
)

// dockerRoot is a minimal overlay2 data root with one image layer and one
// container per id, each with an -init layer, whose lower files and l/
// links are given by the caller.
func dockerRoot(ids ...string) map[string]string {
	r := "var/lib/docker/"
	f := map[string]string{
		r + "image/overlay2/repositories.json":                                 `{"Repositories":{}}`,
		r + "image/overlay2/layerdb/sha256/" + hChain[7:] + "/diff":            hDiff,
		r + "image/overlay2/layerdb/sha256/" + hChain[7:] + "/cache-id":        hCache,
		r + "image/overlay2/layerdb/sha256/" + hChain[7:] + "/size":            "10",
		r + "overlay2/" + hCache + "/diff/":                                    "",
		r + "overlay2/" + hCache + "/link":                                     "BASE",
		r + "overlay2/l/BASE":                                                  "->../" + hCache + "/diff",
		"etc/shadow":                                                           "root:secret",
		"etc/docker/daemon.json":                                               `{"data-root": "/var/lib/docker"}`,
		"var/lib/docker/containers/notadir":                                    "x",
		"var/lib/docker/image/overlay2/layerdb/sha256/not-a-chain-id/cache-id": "x",
	}
	for _, id := range ids {
		m := "m-" + id
		f[r+"containers/"+id+"/config.v2.json"] = `{"ID":"` + id + `","Name":"/` + id + `","Created":"2026-01-02T03:04:05Z","Driver":"overlay2","State":{"Running":false,"ExitCode":0,"StartedAt":"0001-01-01T00:00:00Z","FinishedAt":"0001-01-01T00:00:00Z"},"Config":{"Image":"img"},"Image":"sha256:` + strings.Repeat("a", 64) + `"}`
		f[r+"containers/"+id+"/hostconfig.json"] = `{"Runtime":"runc","Privileged":true,"NetworkMode":"host","PidMode":"host"}`
		f[r+"image/overlay2/layerdb/mounts/"+id+"/mount-id"] = m
		f[r+"image/overlay2/layerdb/mounts/"+id+"/init-id"] = m + "-init"
		f[r+"image/overlay2/layerdb/mounts/"+id+"/parent"] = hChain
		f[r+"overlay2/"+m+"/diff/"] = ""
		f[r+"overlay2/"+m+"-init/diff/"] = ""
		f[r+"overlay2/l/I"+id] = "->../" + m + "-init/diff"
		f[r+"overlay2/"+m+"/lower"] = "l/I" + id + ":l/BASE"
	}
	return f
}

func openTree(t *testing.T, files map[string]string) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	tree(t, dir, files)
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	s, err := Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func find(s *Store, id string) *model.Container {
	for i := range s.Containers {
		if s.Containers[i].ID == id {
			return &s.Containers[i]
		}
	}
	return nil
}

func hasWarning(ws []evidence.Warning, subs ...string) bool {
	for _, w := range ws {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(w.String(), s)
		}
		if ok {
			return true
		}
	}
	return false
}

// hasTyped says whether a warning names file at offset off.
func hasTyped(ws []evidence.Warning, file string, off int64) bool {
	for _, w := range ws {
		if w.File == file && w.Offset == off {
			return true
		}
	}
	return false
}

func TestHostileDockerRoot(t *testing.T) {
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(outside, "diff"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := dockerRoot("good", "abs", "dotdot", "hostabs", "badlower", "torn", "symup", "noid", "loop")
	r := "var/lib/docker/"
	// l/ links that leave overlay2/: absolute into the evidence's /etc,
	// ../../ up and out, and the absolute path of a directory of the host.
	files[r+"overlay2/l/Iabs"] = "->/etc"
	files[r+"overlay2/l/Idotdot"] = "->../../../../../../etc"
	files[r+"overlay2/l/Ihostabs"] = "->" + outside + "/diff"
	// A lower file naming a path rather than an l/ link.
	files[r+"overlay2/m-badlower/lower"] = "l/Ibadlower:../../../../etc"
	// A torn config.v2.json.
	files[r+"containers/torn/config.v2.json"] = `{"ID":"torn","Name":"/torn","State":{"Running":tr`
	// The upper directory's layer dir is a symlink out of overlay2/.
	delete(files, r+"overlay2/m-symup/diff/")
	delete(files, r+"overlay2/m-symup/lower")
	files[r+"overlay2/m-symup"] = "->/etc"
	// A mount-id that is a path, not a name.
	files[r+"image/overlay2/layerdb/mounts/noid/mount-id"] = "../../../etc"
	// A layer whose parent is itself.
	loop := "sha256:" + strings.Repeat("3", 64)
	files[r+"image/overlay2/layerdb/sha256/"+loop[7:]+"/diff"] = hDiff
	files[r+"image/overlay2/layerdb/sha256/"+loop[7:]+"/cache-id"] = hCache
	files[r+"image/overlay2/layerdb/sha256/"+loop[7:]+"/parent"] = loop
	files[r+"image/overlay2/layerdb/mounts/loop/parent"] = loop
	delete(files, r+"overlay2/m-loop/lower")
	// A container directory that is a link out of the data root.
	files[r+"containers/linked"] = "->/etc"
	// A torn repositories.json.
	files[r+"image/overlay2/repositories.json"] = `{"Repositories":{"x":{"x:1":"sha256:`

	s, dir := openTree(t, files)
	base := "/var/lib/docker/overlay2/" + hCache + "/diff"
	for _, c := range s.Containers {
		for _, d := range append([]string{c.UpperDir}, c.LowerDirs...) {
			if d != "" && !strings.HasPrefix(d, "/var/lib/docker/overlay2/") {
				t.Errorf("%s: directory %q outside overlay2/", c.ID, d)
			}
			if strings.Contains(d, outside) || strings.Contains(d, dir) {
				t.Errorf("%s: directory %q names the host", c.ID, d)
			}
		}
	}
	good := find(s, "good")
	if good == nil || good.UpperDir != "/var/lib/docker/overlay2/m-good/diff" || !reflect.DeepEqual(good.LowerDirs, []string{"/var/lib/docker/overlay2/m-good-init/diff", base}) || len(good.Warnings) != 0 {
		t.Fatalf("good container %+v", good)
	}
	if !good.Spec.Privileged || !good.Spec.HostNetwork || !good.Spec.HostPID || good.Spec.Seccomp || good.Status.State != model.StateCreated {
		t.Errorf("good spec %+v status %+v", good.Spec, good.Status)
	}
	// Refused links: the lowers fall back to layerdb's chain, with the
	// refusal named.
	for id, why := range map[string]string{
		"abs":      "link l/Iabs -> /etc leaves /var/lib/docker/overlay2 (resolves to /etc); refused",
		"dotdot":   "link l/Idotdot -> ../../../../../../etc leaves /var/lib/docker/overlay2 (resolves to /etc); refused",
		"hostabs":  "link l/Ihostabs -> " + outside + "/diff leaves /var/lib/docker/overlay2",
		"badlower": `/var/lib/docker/overlay2/m-badlower/lower: offset 12: lower file: lower entry "../../../../etc" is not an l/<short> link name`,
	} {
		c := find(s, id)
		if c == nil {
			t.Fatalf("%s missing", id)
		}
		if !hasWarning(c.Warnings, why) || !hasWarning(c.Warnings, "lower directories computed from layerdb") {
			t.Errorf("%s: warnings %q, want %q", id, c.Warnings, why)
		}
		if !reflect.DeepEqual(c.LowerDirs, []string{"/var/lib/docker/overlay2/m-" + id + "-init/diff", base}) {
			t.Errorf("%s: lowers %v", id, c.LowerDirs)
		}
	}
	// The warnings are typed: the file and the byte offset of the damage.
	if bl := find(s, "badlower"); bl == nil || !hasTyped(bl.Warnings, "/var/lib/docker/overlay2/m-badlower/lower", 12) {
		t.Errorf("badlower: no typed warning at offset 12: %#v", bl)
	}
	torn := find(s, "torn")
	if torn == nil || !hasWarning(torn.Warnings, "/var/lib/docker/containers/torn/config.v2.json", "container config JSON", "the container is known only by its directory") || torn.Status.State != model.StateUnknown {
		t.Errorf("torn %+v", torn)
	}
	if torn.UpperDir != "/var/lib/docker/overlay2/m-torn/diff" {
		t.Errorf("torn container's layers not resolved: %+v", torn)
	}
	symup := find(s, "symup")
	if symup.UpperDir != "" || !hasWarning(symup.Warnings, "upper directory /var/lib/docker/overlay2/m-symup/diff", "symbolic link") {
		t.Errorf("symup %q %q", symup.UpperDir, symup.Warnings)
	}
	noid := find(s, "noid")
	if noid.UpperDir != "" || len(noid.LowerDirs) != 0 || !hasWarning(noid.Warnings, `mount-id: "../../../etc" is not a plain name`) {
		t.Errorf("noid %+v", noid)
	}
	lp := find(s, "loop")
	if !hasWarning(lp.Warnings, "layer parent chain loops at "+loop) {
		t.Errorf("loop warnings %q", lp.Warnings)
	}
	if !hasWarning(s.Warnings, "/var/lib/docker/image/overlay2/repositories.json: offset 36: repositories JSON: torn") ||
		!hasWarning(s.Warnings, "not-a-chain-id: not a chain id; skipped") ||
		!hasWarning(s.Warnings, "/var/lib/docker/containers/linked is a symbolic link, not a container directory; not followed") {
		t.Errorf("store warnings %q", s.Warnings)
	}
	if len(s.Containers) != 9 {
		t.Errorf("%d containers", len(s.Containers))
	}
}

// An image config whose content does not hash to its id is reported.
func TestDockerImageConfigTampered(t *testing.T) {
	id := strings.Repeat("b", 64)
	files := dockerRoot()
	files["var/lib/docker/image/overlay2/repositories.json"] = `{"Repositories":{"r":{"r:1":"sha256:` + id + `","r@sha256:` + strings.Repeat("c", 64) + `":"sha256:` + id + `"}}}`
	files["var/lib/docker/image/overlay2/imagedb/content/sha256/"+id] = `{"created":"2024-01-01T00:00:00Z","rootfs":{"type":"layers","diff_ids":["` + hDiff + `","bogus"]}}`
	s, _ := openTree(t, files)
	if len(s.ImageConfigs) != 1 || len(s.Images) != 2 {
		t.Fatalf("images %+v", s.Images)
	}
	ic := s.ImageConfigs[0]
	if !hasWarning(ic.Warnings, "not the image id: the config was altered") || !hasWarning(ic.Warnings, `diff_id "bogus" is not a sha256 digest`) ||
		!reflect.DeepEqual(ic.ChainIDs, []string{hDiff}) || !hasWarning(ic.Warnings, "layer "+hDiff+" of image sha256:"+id+" is not in layerdb") {
		t.Errorf("image config %+v", ic)
	}
	if s.Images[0].Name != "r:1" || s.Images[1].Name != "r@sha256:"+strings.Repeat("c", 64) || s.Images[0].Target.Digest != "sha256:"+id {
		t.Errorf("images %+v", s.Images)
	}
}

// A dockershim pod: a sandbox container and a container naming it.
func TestDockerDockershimPod(t *testing.T) {
	files := dockerRoot("sb", "app")
	r := "var/lib/docker/containers/"
	files[r+"sb/config.v2.json"] = `{"ID":"sb","Name":"/k8s_POD_web-1_shop_u-1_2","Created":"2026-01-01T00:00:00Z","State":{"Running":true,"Pid":42,"StartedAt":"2026-01-01T00:00:01Z","FinishedAt":"0001-01-01T00:00:00Z"},"Config":{"Image":"pause:3.9","Labels":{"io.kubernetes.docker.type":"podsandbox","io.kubernetes.pod.name":"web-1","io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.uid":"u-1"}}}`
	files[r+"app/config.v2.json"] = `{"ID":"app","Name":"/k8s_app_web-1_shop_u-1_7","Created":"2026-01-01T00:00:02Z","State":{"Running":false,"ExitCode":137,"OOMKilled":true,"StartedAt":"2026-01-01T00:00:03Z","FinishedAt":"2026-01-01T00:00:09Z"},"Config":{"Image":"app:1","Labels":{"io.kubernetes.docker.type":"container","io.kubernetes.container.name":"app","io.kubernetes.sandbox.id":"sb","io.kubernetes.pod.name":"web-1","io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.uid":"u-1"}}}`
	s, _ := openTree(t, files)
	sb, app := find(s, "sb"), find(s, "app")
	if sb.Kind != model.KindSandbox || sb.SandboxID != "sb" || sb.ContainerName != "web-1" || sb.Attempt != 2 || sb.Status.State != model.StateRunning || sb.Status.Pid != 42 {
		t.Errorf("sandbox %+v", sb)
	}
	if app.Kind != model.KindContainer || app.SandboxID != "sb" || app.ContainerName != "app" || app.Attempt != 7 || app.Status.State != model.StateExited || *app.Status.ExitCode != 137 || app.Status.Reason != "OOMKilled" {
		t.Errorf("app %+v", app)
	}
	if len(s.Pods) != 1 || s.Pods[0].SandboxID != "sb" || s.Pods[0].State != model.StateRunning || len(s.Pods[0].Warnings) != 0 ||
		!reflect.DeepEqual(s.Pods[0].Containers, []model.PodContainer{{ID: "app", Name: "app", Image: "app:1", State: "exited"}}) {
		t.Errorf("pods %+v", s.Pods)
	}
	if s.Namespaces[0].Sandboxes != 1 || s.Namespaces[0].Containers != 1 {
		t.Errorf("namespaces %+v", s.Namespaces)
	}
}

func TestDockerNotFound(t *testing.T) {
	dir := t.TempDir()
	tree(t, dir, map[string]string{"etc/docker/daemon.json": `{"data-root": "/nowhere"}`, "var/lib/other/": ""})
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := Open(src, nil); err != ErrNotFound {
		t.Errorf("err %v", err)
	}
}

// What a removal left behind: a layer directory nothing owns, and the
// read-write layer of a container whose record is gone.
func TestDockerOrphans(t *testing.T) {
	files := dockerRoot("a")
	r := "var/lib/docker/"
	files[r+"overlay2/deadbeef/diff/x"] = "left behind"
	files[r+"image/overlay2/layerdb/mounts/gone/mount-id"] = "m-gone"
	files[r+"image/overlay2/layerdb/mounts/gone/parent"] = hChain
	files[r+"overlay2/m-gone/diff/evil"] = "x"
	files[r+"overlay2/m-gone/lower"] = "l/BASE"
	s, _ := openTree(t, files)
	want := []Orphan{
		{Runtime: "docker", Path: "/var/lib/docker/image/overlay2/layerdb/mounts/gone", Why: "read-write layer record of a container whose containers/gone directory is gone"},
		{Runtime: "docker", Path: "/var/lib/docker/overlay2/deadbeef", Why: "directory no image layer, container or -init layer refers to"},
	}
	got := append([]Orphan(nil), s.Orphans...)
	for i := range got {
		if got[i].Mtime.IsZero() {
			t.Errorf("orphan %s has no mtime", got[i].Path)
		}
		got[i].Mtime = model.Time{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("orphans %+v", s.Orphans)
	}
	if len(s.RWLayers) != 2 || s.RWLayers[1].ContainerID != "gone" || s.RWLayers[1].UpperDir != "/var/lib/docker/overlay2/m-gone/diff" ||
		len(s.RWLayers[1].Lowers) != 1 || !hasWarning(s.RWLayers[1].Warnings, "containers/gone is not in the data root") || len(s.Containers) != 1 {
		t.Errorf("rw layers %+v", s.RWLayers)
	}
}

// A rootless daemon's data root in a user's home is found.
func TestDockerRootless(t *testing.T) {
	files := map[string]string{}
	for k, v := range dockerRoot("a") {
		if rest, ok := strings.CutPrefix(k, "var/lib/docker/"); ok {
			k = "home/bob/.local/share/docker/" + rest
		}
		files[k] = v
	}
	delete(files, "etc/docker/daemon.json")
	s, _ := openTree(t, files)
	if s.Root != "/home/bob/.local/share/docker" || !reflect.DeepEqual(s.Notes, []string{"rootless Docker data root in /home/bob"}) || len(s.Containers) != 1 ||
		s.Containers[0].UpperDir != "/home/bob/.local/share/docker/overlay2/m-a/diff" || len(s.Containers[0].LowerDirs) != 2 {
		t.Errorf("root %s notes %q containers %+v", s.Root, s.Notes, s.Containers)
	}
}

// A directory of orphans that cannot be listed is a warning naming it, not
// silence: layerdb/mounts a regular file.
func TestDockerOrphansUnlisted(t *testing.T) {
	files := dockerRoot("a")
	r := "var/lib/docker/"
	for k := range files {
		if strings.HasPrefix(k, r+"image/overlay2/layerdb/mounts/") {
			delete(files, k)
		}
	}
	files[r+"image/overlay2/layerdb/mounts"] = "not a directory"
	s, _ := openTree(t, files)
	if !hasWarning(s.Warnings, "/var/lib/docker/image/overlay2/layerdb/mounts: ") {
		t.Errorf("warnings %q", s.Warnings)
	}
}

// One value of the wrong type costs that value, not the record: a pid past
// int64 lost the container's name, image, state and labels, and one
// reference whose id is a number lost every image's names.
func TestDockerWrongTypedValues(t *testing.T) {
	f := dockerRoot("a")
	r := "var/lib/docker/"
	f[r+"containers/a/config.v2.json"] = `{"ID":"a","Name":"/evil","Created":"2026-01-02T03:04:05Z","Driver":"overlay2","State":{"Running":true,"Pid":99999999999999999999,"StartedAt":"2026-01-02T03:04:05Z","FinishedAt":"0001-01-01T00:00:00Z"},"Config":{"Image":"evil:1","Labels":{"x":"y"}},"Image":"sha256:` + strings.Repeat("a", 64) + `"}`
	img := "sha256:" + strings.Repeat("3", 64)
	f[r+"image/overlay2/repositories.json"] = `{"Repositories":{"alpine":{"alpine:latest":"` + img + `"},"evil":{"evil:1":1}}}`
	s, _ := openTree(t, f)
	a := find(s, "a")
	if a.ContainerName != "evil" || a.Image != "evil:1" || a.Status.State != model.StateRunning || a.Labels["x"] != "y" ||
		!hasWarning(a.Warnings, "that value is left out, the rest read") {
		t.Errorf("a: name %q image %q state %q labels %v warnings %v", a.ContainerName, a.Image, a.Status.State, a.Labels, a.Warnings)
	}
	if !hasWarning(s.Warnings, "evil:1: not an image id (1)") {
		t.Errorf("store warnings %v", s.Warnings)
	}
	names := map[string]bool{}
	for _, im := range s.Images {
		names[im.Name] = true
	}
	if !names["alpine:latest"] {
		t.Errorf("images %v", names)
	}
}

// A container whose mount-id is another container's, or an image layer's
// directory, is said so: both showed the one writable layer as their own
// in silence.
func TestDockerSharedWritableLayer(t *testing.T) {
	f := dockerRoot("a", "b")
	r := "var/lib/docker/"
	f[r+"image/overlay2/layerdb/mounts/b/mount-id"] = "m-a"
	f[r+"image/overlay2/layerdb/mounts/b/init-id"] = "m-a-init"
	s, _ := openTree(t, f)
	a, b := find(s, "a"), find(s, "b")
	if a.UpperDir != b.UpperDir || !hasWarning(a.Warnings, "is also that of container b") || !hasWarning(b.Warnings, "is also that of container a") {
		t.Errorf("a %q %v; b %q %v", a.UpperDir, a.Warnings, b.UpperDir, b.Warnings)
	}
	f = dockerRoot("a")
	f[r+"image/overlay2/layerdb/mounts/a/mount-id"] = hCache
	s, _ = openTree(t, f)
	if a := find(s, "a"); !hasWarning(a.Warnings, "is the directory of image layer") {
		t.Errorf("a %q %v", a.UpperDir, a.Warnings)
	}
}
