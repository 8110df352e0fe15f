package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

// Values from testdata/runtimes-c1/GROUND_TRUTH.md (section 2),
// ground-truth/podman/storage.facts.json and inspect.json.
const (
	gr = "/var/lib/containers/storage"
	ov = gr + "/overlay/"

	ctrCart    = "015674db7f57680cac399505aa6e903f2837396a880b3e6bfa0ce13193fb8672"
	ctrMigrate = "19b28ec288f9f10d7133d2fc655d0e668d0ed2ab322badf3c7f987ce143d82e8"

	imgBbox = "c16b329598ef033aea6db6ded2b42dce53db990998b592c248f072c0b1e90e3a"
	imgWeb  = "6f3180eb0c21b56cfd66335b047a8a6feb180bc113d80999776000ef9c206d7e"

	layer1    = "03936a86dced807a48655bdb473b69bd3eb651a018fc8324fcb6f401d908a28a"
	layer2    = "6d685889260bde0ff56881468838d3c9316d39bf953ecb771b05d204d1762ae7"
	layer3    = "5018989548c7d4f1e2f6ac1b35dea695cb9152e864537d4c3c31c62d59708512"
	layerCart = "8b3f6761c8a638d70517e8ca7c41e7ebe9f2136d552f7ed92fe7e465c21807d9"
	layerMig  = "a8e9b5e6ae1626d86106b530f828f9c838b6126d16cd301cb0ed6a03b8c8498d"
)

func diffOf(id string) string { return ov + id + "/diff" }

type wantLayer struct {
	id, parent, cdigest, digest string
	size                        int64
	name, link                  string
	containers                  []string
}

// In layers.json order.
var fixtureLayers = []wantLayer{
	{layer1, "", "sha256:fb0623f20c17b7e606b60ccb6368f080accea666f1fb38bdd8fe9ae3606d9bfe", "sha256:03936a86dced807a48655bdb473b69bd3eb651a018fc8324fcb6f401d908a28a", 2150400, "", "PYD25FU2XEBDBSQ2XAJSXEIE5D", []string{}},
	{layer2, layer1, "sha256:5408898569abca2cb4a1c8953f7e7ca1eeb1fbccdff24e96e704c66db590edea", "sha256:3c43f322fa2404f6cdbc484bb98228243db8fda9fd3de140b88b83fbff2bffdc", 20480, "", "KXTDOSKWTDMBXO3VJRAR7FQHMF", []string{}},
	{layer3, layer2, "sha256:2ed854e366dc057b99aea75f89ecfd7ea31ef06c7a535890b8f55d9cdd5adc72", "sha256:05f080ab023a87c9d07454ec5f641163a44ddb7c277af83ad536f461c44bd0cd", 10240, "", "Y6ZDEPDWKQSVYIZHR4JK7OK5BG", []string{}},
	{layerCart, layer3, "", "", 0, "k8s_cart_cart-6b7c9d8f5-p4r2s_shop_8a2c4e6f-1b3d-4f5a-8c7e-9d0f1a2b3c4d_0-layer", "EC2TMGSSBTFTGQ2IM6OIDDB77N", []string{ctrCart}},
	{layerMig, layer1, "", "", 0, "cart-migrate-29110301-abcde-layer", "URQ66YG2452W2BKMDIJ5NTNI3S", []string{ctrMigrate}},
}

func checkStorageFixture(t *testing.T, src evidence.Source) {
	t.Helper()
	s, err := Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.GraphRoot != gr || s.RunRoot != "/run/containers/storage" || s.Driver != "overlay" || s.StateDB != gr+"/libpod/bolt_state.db" {
		t.Errorf("roots %s %s %s %s", s.GraphRoot, s.RunRoot, s.Driver, s.StateDB)
	}
	if !reflect.DeepEqual(s.Notes, []string{"graph root /var/lib/containers/storage from /etc/containers/storage.conf"}) || len(s.Warnings) != 0 || len(s.Orphans) != 0 {
		t.Errorf("notes %q warnings %q orphans %v", s.Notes, s.Warnings, s.Orphans)
	}
	if len(s.Layers) != len(fixtureLayers) {
		t.Fatalf("%d layers", len(s.Layers))
	}
	for i, w := range fixtureLayers {
		l := s.Layers[i]
		name := ""
		if len(l.Names) > 0 {
			name = l.Names[0]
		}
		if l.ID != w.id || l.Parent != w.parent || l.CompressedDigest != w.cdigest || l.DiffDigest != w.digest || l.DiffSize != w.size || name != w.name || l.Link != w.link || l.Dir != diffOf(w.id) || !reflect.DeepEqual(l.Containers, w.containers) {
			t.Errorf("layer %d = %+v, want %+v", i, l, w)
		}
	}
	if m := s.byLayer[layerCart].MountPoint; m != ov+layerCart+"/merged" {
		t.Errorf("cart layer mount point %q", m)
	}
	// Images.
	wantImgs := []ImageRecord{
		{ID: imgWeb, Digest: "sha256:776a7fedafff347e1df32718fa83101f36807a866c13cb18f89d840611b983b2", Names: []string{"forge.local/shop/web:1.4"}, TopLayer: layer3, Layers: []string{layer3, layer2, layer1}, ManifestSize: 713, ConfigDigest: "sha256:" + imgWeb},
		{ID: imgBbox, Digest: "sha256:214253e9fddcf4cb9cde8288d5fab750a4739cd38f062785f138f8ed63f59fad", Names: []string{"forge.local/base/bbox:1.35-c1"}, TopLayer: layer1, Layers: []string{layer1}, ManifestSize: 405, ConfigDigest: "sha256:" + imgBbox},
	}
	if len(s.ImageRecords) != 2 {
		t.Fatalf("%d image records", len(s.ImageRecords))
	}
	for i, w := range wantImgs {
		r := s.ImageRecords[i]
		if r.ID != w.ID || r.Digest != w.Digest || !reflect.DeepEqual(r.Names, w.Names) || r.TopLayer != w.TopLayer || !reflect.DeepEqual(r.Layers, w.Layers) ||
			r.ManifestSize != w.ManifestSize || r.ConfigDigest != w.ConfigDigest || r.ManifestMediaType != "application/vnd.oci.image.manifest.v1+json" || r.Created.String() != "2024-03-09T16:00:00.000000000Z" {
			t.Errorf("image %d = %+v", i, r)
		}
	}
	if len(s.Images) != 2 || s.Images[0].Name != "forge.local/base/bbox:1.35-c1" || s.Images[0].Target.Digest != wantImgs[1].Digest || s.Images[1].Name != "forge.local/shop/web:1.4" || s.Images[1].Runtime != "podman" {
		t.Errorf("images %+v", s.Images)
	}
	// Containers.
	zero := 0
	want := []struct {
		id, name, image, imageRef, created string
		state                              string
		pid                                int
		exit                               *int
		started, finished                  string
		layer                              string
		lowers                             []string
		pod                                *model.PodRef
		args                               []string
	}{
		{ctrCart, "cart", "forge.local/shop/web:1.4", imgWeb, "2026-11-27T03:51:06.744274062Z", model.StateRunning, 21706, nil, "2026-11-27T03:51:06.820621800Z", "-",
			layerCart, []string{diffOf(layer3), diffOf(layer2), diffOf(layer1)},
			&model.PodRef{Namespace: "shop", Name: "cart-6b7c9d8f5-p4r2s", UID: "8a2c4e6f-1b3d-4f5a-8c7e-9d0f1a2b3c4d"}, []string{"/opt/web/run.sh"}},
		{ctrMigrate, "cart-migrate-29110301-abcde", "forge.local/base/bbox:1.35-c1", imgBbox, "2026-11-27T03:51:06.851860588Z", model.StateExited, 0, &zero, "2026-11-27T03:51:06.931347237Z", "2026-11-27T03:51:06.932279969Z",
			layerMig, []string{diffOf(layer1)}, nil,
			[]string{"sh", "-c", "echo 'cart-migrate-29110301-abcde: migrate'; mkdir -p /var/lib/mig; echo v42 > /var/lib/mig/ver; rm -rf /home; echo 'done' >&2; exit 0"}},
	}
	if len(s.Containers) != len(want) {
		t.Fatalf("%d containers", len(s.Containers))
	}
	for i, w := range want {
		c := s.Containers[i]
		if c.ID != w.id || c.ContainerName != w.name || c.Image != w.image || c.ImageRef != w.imageRef || c.CreatedAt.String() != w.created || c.Runtime != "podman" || c.Kind != "container" || c.RuntimeHandler != "runc" {
			t.Errorf("container %d = %s %q %s %s %s %s %s", i, c.ID, c.ContainerName, c.Image, c.ImageRef, c.CreatedAt, c.Runtime, c.Kind)
		}
		st := c.Status
		if st.State != w.state || st.Pid != w.pid || !reflect.DeepEqual(st.ExitCode, w.exit) || st.StartedAt.String() != w.started || st.FinishedAt.String() != w.finished ||
			!reflect.DeepEqual(st.Sources, []string{gr + "/libpod/bolt_state.db"}) {
			t.Errorf("%s: status %+v", w.id, st)
		}
		if c.SnapshotKey != w.layer || c.UpperDir != diffOf(w.layer) || !reflect.DeepEqual(c.LowerDirs, w.lowers) {
			t.Errorf("%s: layer %s upper %s lowers %v", w.id, c.SnapshotKey, c.UpperDir, c.LowerDirs)
		}
		if !reflect.DeepEqual(c.Pod, w.pod) || c.LogPath != gr+"/overlay-containers/"+w.id+"/userdata/ctr.log" || len(c.Warnings) != 0 {
			t.Errorf("%s: pod %+v log %s warnings %q", w.id, c.Pod, c.LogPath, c.Warnings)
		}
		if c.Spec == nil || !reflect.DeepEqual(c.Spec.Args, w.args) || c.Spec.Privileged {
			t.Errorf("%s: spec %+v", w.id, c.Spec)
		}
	}
	cart := s.Containers[0]
	if cart.Labels["io.container.manager"] != "cri-o" || cart.Annotations["io.kubernetes.container.hash"] != "7a3e91c0" || cart.Spec.Hostname != "cart-6b7c9d8f5-p4r2s" || cart.Spec.Cwd != "/opt/web" {
		t.Errorf("cart labels %v annotations %v spec %+v", cart.Labels, cart.Annotations, cart.Spec)
	}
	// Pods: the cart pod, known from its container's labels only.
	if len(s.Pods) != 1 {
		t.Fatalf("%d pods", len(s.Pods))
	}
	p := s.Pods[0]
	if p.Runtime != "podman" || p.Namespace != "shop" || p.Name != "cart-6b7c9d8f5-p4r2s" || p.UID != "8a2c4e6f-1b3d-4f5a-8c7e-9d0f1a2b3c4d" || p.SandboxID != "" ||
		!reflect.DeepEqual(p.Containers, []model.PodContainer{{ID: ctrCart, Name: "cart", Image: "forge.local/shop/web:1.4", State: "running"}}) {
		t.Errorf("pod %+v", p)
	}
	// Snapshots: 3 committed image layers, 2 active container layers.
	if len(s.Snapshots) != 5 {
		t.Fatalf("%d snapshots", len(s.Snapshots))
	}
	for _, sp := range s.Snapshots {
		wantKind := "committed"
		if sp.Key == layerCart || sp.Key == layerMig {
			wantKind = "active"
		}
		if sp.Kind != wantKind || sp.ID != sp.Key || sp.Dir != diffOf(sp.Key) {
			t.Errorf("snapshot %+v", sp)
		}
	}
	if !reflect.DeepEqual(s.Namespaces, []model.Namespace{{Runtime: "podman", Name: "", Labels: map[string]string{}, Containers: 2, Images: 2, Snapshots: 5}}) {
		t.Errorf("namespaces %+v", s.Namespaces)
	}
	// The attack ran through podman exec; its session was deleted from
	// libpod's state when it ended, but two versions of its record (while
	// running, with the pid; stopped) are in the database's free pages,
	// with the whole attack script (ground-truth/podman/attack.sh, run as
	// sh -c "$(cat attack.sh)", which drops the last newline).
	script, err := os.ReadFile(testfix.Fixture(t, "runtimes-c1", "ground-truth", "podman", "attack.sh"))
	if err != nil {
		t.Fatal(err)
	}
	const execID = "5932e9b1813279d0525aac6ccf5401b8fdd8955b7f52564c05c61f3449bccbb7"
	wantExec := []struct {
		state  string
		pid    int
		offset int64
	}{{"stopped", 0, 54023}, {"running", 21789, 99223}}
	if len(s.Execs) != len(wantExec) {
		t.Fatalf("exec sessions %+v", s.Execs)
	}
	for i, w := range wantExec {
		x := s.Execs[i]
		if x.ID != execID || x.ContainerID != ctrCart || x.State != w.state || x.Pid != w.pid || x.Offset != w.offset || x.Live || x.Source != gr+"/libpod/bolt_state.db" ||
			len(x.Command) != 3 || x.Command[0] != "sh" || x.Command[1] != "-c" || x.Command[2]+"\n" != string(script) {
			t.Errorf("exec session %d = %+v", i, x)
		}
	}
}

func TestFixtureStorageArchive(t *testing.T) {
	a, err := evidence.OpenArchive(context.Background(), testfix.Fixture(t, "runtimes-c1", "storage-root.tar.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	checkStorageFixture(t, a)
}

func TestFixtureStorageExtracted(t *testing.T) {
	dir := testfix.Extract(t, testfix.Fixture(t, "runtimes-c1", "storage-root.tar.gz"))
	db := filepath.Join(dir, "var/lib/containers/storage/libpod/bolt_state.db")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	st0, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	d, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkStorageFixture(t, d)
	// The state database was read from a private copy: not a byte, nor its
	// times, changed in the evidence.
	after, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	st1, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) || len(after) != 131072 || !st0.ModTime().Equal(st1.ModTime()) {
		t.Errorf("bolt_state.db changed: %d -> %d bytes, mtime %v -> %v", len(before), len(after), st0.ModTime(), st1.ModTime())
	}
}

// The graph root named by storage.conf, in a copy where it was moved below
// another prefix: found with its leading components dropped, and every
// path of the records follows it.
func TestFixtureStorageGraphRootRebased(t *testing.T) {
	dir := testfix.Extract(t, testfix.Fixture(t, "runtimes-c1", "storage-root.tar.gz"))
	if err := os.MkdirAll(filepath.Join(dir, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "var/lib/containers/storage"), filepath.Join(dir, "srv/storage")); err != nil {
		t.Fatal(err)
	}
	conf := "[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\ngraphroot = \"/mnt/image/srv/storage\"\n"
	if err := os.WriteFile(filepath.Join(dir, "etc/containers/storage.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := Open(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.GraphRoot != "/srv/storage" || s.RunRoot != "/run/containers/storage" || s.StateDB != "/srv/storage/libpod/bolt_state.db" {
		t.Errorf("roots %s %s %s", s.GraphRoot, s.RunRoot, s.StateDB)
	}
	wantNotes := []string{
		"graph root /mnt/image/srv/storage from /etc/containers/storage.conf (not in the evidence as it is; found at /srv/storage)",
		"libpod state at /srv/storage/libpod/bolt_state.db was made for graph root /var/lib/containers/storage",
	}
	if !reflect.DeepEqual(s.Notes, wantNotes) || len(s.Warnings) != 0 {
		t.Errorf("notes %q warnings %q", s.Notes, s.Warnings)
	}
	if len(s.Containers) != 2 || s.Containers[0].UpperDir != "/srv/storage/overlay/"+layerCart+"/diff" ||
		!reflect.DeepEqual(s.Containers[0].LowerDirs, []string{"/srv/storage/overlay/" + layer3 + "/diff", "/srv/storage/overlay/" + layer2 + "/diff", "/srv/storage/overlay/" + layer1 + "/diff"}) ||
		s.Containers[0].Status.Pid != 21706 {
		t.Errorf("containers %+v", s.Containers)
	}
}
