package docker

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

// Values from testdata/runtimes-c1/GROUND_TRUTH.md (section 1)
// and ground-truth/docker/docker.facts.json.
const (
	ov = "/var/lib/docker/overlay2/"

	ctrWeb     = "f8a96d9431afcdcda37c334276774b7f696bc5c5c20c89182ad28a3f450eaed5"
	ctrReport  = "cea7943353fc7725d626fedcabd42b1ad24c3ef83f66e62bf700ff40ac2dfeda"
	ctrStandby = "ae8a27921e342404f085ed6b9129f92a8187418cd62a0f49d95e5912e49a0b0c"

	imgBbox = "sha256:c16b329598ef033aea6db6ded2b42dce53db990998b592c248f072c0b1e90e3a"
	imgWeb  = "sha256:6f3180eb0c21b56cfd66335b047a8a6feb180bc113d80999776000ef9c206d7e"

	chain1 = "sha256:03936a86dced807a48655bdb473b69bd3eb651a018fc8324fcb6f401d908a28a"
	chain2 = "sha256:772138b4353d57006567059f9daf64a82fdbdd5cc1d5cd5a320f44c0859ce6fb"
	chain3 = "sha256:4a179c12d9d5f1c4b99221d6bed782b450547e253c7c3eb54f2d2b0e2e9b0f9a"
	diff1  = "sha256:03936a86dced807a48655bdb473b69bd3eb651a018fc8324fcb6f401d908a28a"
	diff2  = "sha256:3c43f322fa2404f6cdbc484bb98228243db8fda9fd3de140b88b83fbff2bffdc"
	diff3  = "sha256:05f080ab023a87c9d07454ec5f641163a44ddb7c277af83ad536f461c44bd0cd"
	cache1 = "c3897d149a97c0b0779003e593018649467d3ed40855942427bb8b51039ca24b"
	cache2 = "c11a9394ea514c94d4de78c3f032fc385b525270e8ffc7c69f46d23aa0df4fbe"
	cache3 = "cb29272f884950e111c71e21b44ee8171b5660d48cd1afea7d5ba3be0b35bcf2"

	mountWeb     = "6134f5f8d91859135e6aee0b6bd600b9ee32b26ef35cef934196411b424e63a3"
	mountReport  = "35e297517b15626475b695929ec0817a9e5a56b5059f577a4c9d77137dd5d822"
	mountStandby = "1be18ea72217129ccb69abefa556651fb968f353b53d77a1014cc6899e81d61d"
)

func diffOf(id string) string { return ov + id + "/diff" }

type wantLayer struct {
	chain, diff, parent string
	size                int64
	cache, link         string
}

var fixtureLayers = []wantLayer{
	{chain1, diff1, "", 1986247, cache1, "OB5IPSEUBRU54UHO4XKQZKCFAQ"},
	{chain3, diff3, chain2, 47, cache3, "62CPJY63WXGUEGNE6JI2AGTXWP"},
	{chain2, diff2, chain1, 386, cache2, "AGGD2MHB7JUAGYQ7L7CTLO6F3J"},
}

type wantDockerCtr struct {
	id, name, image, imageRef string
	state                     string
	pid                       int
	exit                      *int
	started, finished         string
	created                   string
	mount, parent             string
	shorts                    []string // the lower file's entries
	lowers                    []string
	logPath                   string
	labels                    map[string]string
	args                      []string
}

var three = 3

var fixtureDockerCtrs = []wantDockerCtr{
	{ctrStandby, "standby-cache", "forge.local/base/bbox:1.35-c1", imgBbox, model.StateCreated, 0, nil, "-", "-", "2026-11-27T03:50:58.353529522Z",
		mountStandby, chain1, []string{"l/ZMKUZHSEOWAQVMULMPQBMKS7C6", "l/OB5IPSEUBRU54UHO4XKQZKCFAQ"},
		[]string{diffOf(mountStandby + "-init"), diffOf(cache1)}, "",
		map[string]string{"com.example.role": "standby"}, []string{"sleep", "3600"}},
	{ctrReport, "report-job", "forge.local/base/bbox:1.35-c1", imgBbox, model.StateExited, 0, &three, "2026-11-27T03:50:58.324358569Z", "2026-11-27T03:50:58.328656500Z", "2026-11-27T03:50:58.143274684Z",
		mountReport, chain1, []string{"l/OQH77HBYCK2HLLZCNVIGEIUDLR", "l/OB5IPSEUBRU54UHO4XKQZKCFAQ"},
		[]string{diffOf(mountReport + "-init"), diffOf(cache1)},
		"/var/lib/docker/containers/" + ctrReport + "/" + ctrReport + "-json.log",
		map[string]string{"com.example.job": "report-job"},
		[]string{"sh", "-c", "echo 'report-job: start'; mkdir -p /var/log/job; echo done > /var/log/job/state; rm -f /etc/profile; echo 'warn: partial' >&2; exit 3"}},
	{ctrWeb, "web", "forge.local/shop/web:1.4", imgWeb, model.StateRunning, 21155, nil, "2026-11-27T03:50:58.119745320Z", "-", "2026-11-27T03:50:57.954565602Z",
		mountWeb, chain3, []string{"l/OMNSVJOPL3C4AESJCZGEGEX6EX", "l/62CPJY63WXGUEGNE6JI2AGTXWP", "l/AGGD2MHB7JUAGYQ7L7CTLO6F3J", "l/OB5IPSEUBRU54UHO4XKQZKCFAQ"},
		[]string{diffOf(mountWeb + "-init"), diffOf(cache3), diffOf(cache2), diffOf(cache1)},
		"/var/lib/docker/containers/" + ctrWeb + "/" + ctrWeb + "-json.log",
		map[string]string{
			"annotation.io.kubernetes.container.hash":         "5f2c9a1e",
			"annotation.io.kubernetes.container.restartCount": "0",
			"io.kubernetes.container.name":                    "web",
			"io.kubernetes.docker.type":                       "container",
			"io.kubernetes.pod.name":                          "web-7d9f8b6c5-x2k4q",
			"io.kubernetes.pod.namespace":                     "shop",
			"io.kubernetes.pod.uid":                           "3f6b2a10-8c4d-4e7f-9a15-b2c7d8e9f012",
			"org.opencontainers.image.title":                  "web",
			"org.opencontainers.image.version":                "1.4",
		}, []string{"/opt/web/run.sh"}},
}

func checkDockerFixture(t *testing.T, src evidence.Source) {
	t.Helper()
	s, err := Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Root != "/var/lib/docker" || s.Driver != "overlay2" {
		t.Errorf("root %s driver %s", s.Root, s.Driver)
	}
	if len(s.Warnings) != 0 || len(s.Orphans) != 0 {
		t.Errorf("warnings: %q orphans %v", s.Warnings, s.Orphans)
	}
	// Layers.
	if len(s.Layers) != len(fixtureLayers) {
		t.Fatalf("%d layers, want %d", len(s.Layers), len(fixtureLayers))
	}
	for i, w := range fixtureLayers {
		l := s.Layers[i]
		if l.ChainID != w.chain || l.DiffID != w.diff || l.Parent != w.parent || l.Size != w.size || l.CacheID != w.cache || l.Link != w.link || l.Dir != diffOf(w.cache) {
			t.Errorf("layer %d = %+v, want %+v", i, l, w)
		}
	}
	// Images.
	wantImgs := []struct{ name, id string }{{"forge.local/base/bbox:1.35-c1", imgBbox}, {"forge.local/shop/web:1.4", imgWeb}}
	if len(s.Images) != 2 {
		t.Fatalf("%d images", len(s.Images))
	}
	for i, w := range wantImgs {
		im := s.Images[i]
		if im.Name != w.name || im.Target.Digest != w.id || im.Target.MediaType != mediaTypeImageConfig || im.Runtime != "docker" || im.CreatedAt.String() != "2024-03-09T16:00:00.000000000Z" {
			t.Errorf("image %d = %+v", i, im)
		}
	}
	if s.Images[0].Target.Size != 364 || s.Images[1].Target.Size != 829 {
		t.Errorf("config sizes %d %d", s.Images[0].Target.Size, s.Images[1].Target.Size)
	}
	if len(s.ImageConfigs) != 2 {
		t.Fatalf("%d image configs", len(s.ImageConfigs))
	}
	web := s.ImageConfigs[0] // sorted by id: 6f31… before c16b…
	if web.ID != imgWeb || !reflect.DeepEqual(web.DiffIDs, []string{diff1, diff2, diff3}) || !reflect.DeepEqual(web.ChainIDs, []string{chain1, chain2, chain3}) ||
		!reflect.DeepEqual(web.Entrypoint, []string{"/opt/web/run.sh"}) || web.WorkingDir != "/opt/web" || len(web.History) != 3 || web.History[2].CreatedBy != "forge-c: layer l3" {
		t.Errorf("web image config %+v", web)
	}
	bbox := s.ImageConfigs[1]
	if bbox.ID != imgBbox || !reflect.DeepEqual(bbox.ChainIDs, []string{chain1}) || !reflect.DeepEqual(bbox.Names, []string{"forge.local/base/bbox:1.35-c1"}) {
		t.Errorf("bbox image config %+v", bbox)
	}
	// Containers.
	if len(s.Containers) != len(fixtureDockerCtrs) || len(s.RWLayers) != len(fixtureDockerCtrs) {
		t.Fatalf("%d containers, %d rw layers", len(s.Containers), len(s.RWLayers))
	}
	for i, w := range fixtureDockerCtrs {
		c := s.Containers[i]
		if c.ID != w.id || c.ContainerName != w.name || c.Image != w.image || c.ImageRef != w.imageRef || c.Runtime != "docker" || c.Namespace != "moby" || c.Kind != "container" {
			t.Errorf("container %d = %s %q %s %s %s/%s/%s", i, c.ID, c.ContainerName, c.Image, c.ImageRef, c.Runtime, c.Namespace, c.Kind)
		}
		st := c.Status
		if st.State != w.state || st.Pid != w.pid || !reflect.DeepEqual(st.ExitCode, w.exit) || st.StartedAt.String() != w.started || st.FinishedAt.String() != w.finished {
			t.Errorf("%s: status %+v", w.id, st)
		}
		if !reflect.DeepEqual(st.Sources, []string{"/var/lib/docker/containers/" + w.id + "/config.v2.json"}) {
			t.Errorf("%s: sources %v", w.id, st.Sources)
		}
		if c.CreatedAt.String() != w.created || c.LogPath != w.logPath || !reflect.DeepEqual(c.Labels, w.labels) || c.RuntimeHandler != "runc" {
			t.Errorf("%s: created %s log %q labels %v handler %s", w.id, c.CreatedAt, c.LogPath, c.Labels, c.RuntimeHandler)
		}
		if c.UpperDir != diffOf(w.mount) || !reflect.DeepEqual(c.LowerDirs, w.lowers) || c.Snapshotter != "overlay2" || c.SnapshotKey != w.id {
			t.Errorf("%s: upper %s lowers %v", w.id, c.UpperDir, c.LowerDirs)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("%s: warnings %q", w.id, c.Warnings)
		}
		if c.Spec == nil || !reflect.DeepEqual(c.Spec.Args, w.args) || c.Spec.Privileged || c.Spec.HostNetwork || c.Spec.HostPID || !c.Spec.Seccomp {
			t.Errorf("%s: spec %+v", w.id, c.Spec)
		}
		rw := s.RWLayers[i]
		if rw.ContainerID != w.id || rw.MountID != w.mount || rw.InitID != w.mount+"-init" || rw.Parent != w.parent || rw.InitDir != diffOf(w.mount+"-init") {
			t.Errorf("%s: rw layer %+v", w.id, rw)
		}
		for j, l := range rw.Lowers {
			if l.Short != w.shorts[j] || l.Dir != w.lowers[j] || l.Init != (j == 0) {
				t.Errorf("%s: lower %d = %+v", w.id, j, l)
			}
			if j > 0 && s.byChain[l.ChainID].CacheID != l.CacheID {
				t.Errorf("%s: lower %d chain %s does not own cache %s", w.id, j, l.ChainID, l.CacheID)
			}
		}
	}
	webc := s.Containers[2]
	if !reflect.DeepEqual(webc.Pod, &model.PodRef{Namespace: "shop", Name: "web-7d9f8b6c5-x2k4q", UID: "3f6b2a10-8c4d-4e7f-9a15-b2c7d8e9f012"}) ||
		!reflect.DeepEqual(webc.Annotations, map[string]string{"io.kubernetes.container.hash": "5f2c9a1e", "io.kubernetes.container.restartCount": "0"}) {
		t.Errorf("web pod %+v annotations %v", webc.Pod, webc.Annotations)
	}
	if webc.Spec.Cwd != "/opt/web" || webc.Spec.Hostname != "web-7d9f8b6c5-x2k4q" || !reflect.DeepEqual(webc.Spec.Env, []string{"K8S_NS=shop", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_ENV=prod"}) {
		t.Errorf("web spec %+v", webc.Spec)
	}
	if !strings.Contains(string(webc.Spec.Raw), `"NetworkMode":"none"`) {
		t.Errorf("raw spec lacks the host config: %.200s", webc.Spec.Raw)
	}
	// Pods.
	if len(s.Pods) != 1 {
		t.Fatalf("%d pods", len(s.Pods))
	}
	p := s.Pods[0]
	if p.Namespace != "shop" || p.Name != "web-7d9f8b6c5-x2k4q" || p.UID != "3f6b2a10-8c4d-4e7f-9a15-b2c7d8e9f012" || p.SandboxID != "" || p.State != model.StateUnknown ||
		!reflect.DeepEqual(p.Containers, []model.PodContainer{{ID: ctrWeb, Name: "web", Image: "forge.local/shop/web:1.4", State: "running"}}) || len(p.Warnings) != 1 {
		t.Errorf("pod %+v", p)
	}
	// Snapshots: 3 layers + 3 rw + 3 init.
	if len(s.Snapshots) != 9 {
		t.Fatalf("%d snapshots", len(s.Snapshots))
	}
	kinds := map[string]int{}
	for _, sp := range s.Snapshots {
		kinds[sp.Kind]++
		if sp.Key == ctrWeb && (sp.ID != mountWeb || sp.Dir != diffOf(mountWeb) || sp.Parent != chain3 || !reflect.DeepEqual(sp.Containers, []string{ctrWeb})) {
			t.Errorf("web rw snapshot %+v", sp)
		}
		if sp.Key == chain2 && (sp.ID != cache2 || sp.Dir != diffOf(cache2) || sp.Parent != chain1 || sp.Size != 386) {
			t.Errorf("layer snapshot %+v", sp)
		}
	}
	if !reflect.DeepEqual(kinds, map[string]int{"committed": 3, "active": 3, "init": 3}) {
		t.Errorf("snapshot kinds %v", kinds)
	}
	if !reflect.DeepEqual(s.Namespaces, []model.Namespace{{Runtime: "docker", Name: "moby", Labels: map[string]string{}, Containers: 3, Images: 2, Snapshots: 9}}) {
		t.Errorf("namespaces %+v", s.Namespaces)
	}
}

func TestFixtureDockerArchive(t *testing.T) {
	a, err := evidence.OpenArchive(context.Background(), testfix.Fixture(t, "runtimes-c1", "docker-root.tar.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	checkDockerFixture(t, a)
}

func TestFixtureDockerExtracted(t *testing.T) {
	dir := testfix.Extract(t, testfix.Fixture(t, "runtimes-c1", "docker-root.tar.gz"))
	d, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checkDockerFixture(t, d)
}

// The data root found through daemon.json's data-root, in a copy where it
// was moved below another prefix, as a triage copy would have it.
func TestFixtureDockerDataRootRebased(t *testing.T) {
	dir := testfix.Extract(t, testfix.Fixture(t, "runtimes-c1", "docker-root.tar.gz"))
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "var/lib/docker"), filepath.Join(dir, "data/docker")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/docker/daemon.json"), []byte(`{"data-root": "/mnt/node/data/docker"}`), 0o644); err != nil {
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
	if s.Root != "/data/docker" || !reflect.DeepEqual(s.Notes, []string{"Docker data root /mnt/node/data/docker from /etc/docker/daemon.json (not in the evidence as it is; found at /data/docker)"}) {
		t.Errorf("root %s notes %q", s.Root, s.Notes)
	}
	if len(s.Containers) != 3 || s.Containers[2].UpperDir != "/data/docker/overlay2/"+mountWeb+"/diff" || len(s.Containers[2].LowerDirs) != 4 || s.Containers[2].LowerDirs[3] != "/data/docker/overlay2/"+cache1+"/diff" {
		t.Errorf("containers %+v", s.Containers)
	}
	if len(s.Warnings) != 0 {
		t.Errorf("warnings %q", s.Warnings)
	}
}
