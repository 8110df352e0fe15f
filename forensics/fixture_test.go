package forensics

import (
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

const (
	ctrApp    = "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007"
	ctrReport = "f617888dbd39d44a9b551aa1d2562a8e3b6a4ea8b8706a48c3d608d6c52f183c"
	sbShop    = "6b5e31bbf0ef256672a4b8c7bd59379ebee1b390723bab836bf8c514f0209721"
	sbJobs    = "1cb04cd4472039e05df53c366c2fc24ab4159d4e8049a11dba7bd716fffe515d"
	snapDir   = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/"
)

func sd(n string) string { return snapDir + n + "/fs" }

type wantCtr struct {
	ns, id, kind, name, image string
	pod                       *model.PodRef
	sandbox                   string
	upper                     string
	lowers                    []string
	state                     string
	exit                      *int
}

var zero = 0

var shopPod = &model.PodRef{Namespace: "shop", Name: "shop-frontend-7d9c8b6f5-x2k4q", UID: "3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f"}
var jobsPod = &model.PodRef{Namespace: "jobs", Name: "report-job-28374651-q7wzt", UID: "9b8e7d6c-5a4f-4b3a-8c2d-1e0f9a8b7c6d"}

// The containers and sandboxes of GROUND_TRUTH.md, in the order Containers
// returns them.
var fixtureContainers = []wantCtr{
	{"default", "forge-default-cache", "container", "", "forge.local/library/busybox:1.35", nil, "", sd("9"), []string{sd("4")}, "stopped", nil},
	{"default", "forge-default-idle", "container", "", "forge.local/library/busybox:1.35", nil, "", sd("10"), []string{sd("4")}, "created", nil},
	{"k8s.io", ctrApp, "container", "app", "forge.local/shop/app:1.0", shopPod, sbShop, sd("6"), []string{sd("3"), sd("2")}, "running", nil},
	{"k8s.io", ctrReport, "container", "report", "forge.local/library/busybox:1.35", jobsPod, sbJobs, sd("8"), []string{sd("2")}, "exited", &zero},
	{"k8s.io", sbJobs, "sandbox", "report-job-28374651-q7wzt", "forge.local/pause:3.9", jobsPod, sbJobs, sd("7"), []string{sd("1")}, "running", nil},
	{"k8s.io", sbShop, "sandbox", "shop-frontend-7d9c8b6f5-x2k4q", "forge.local/pause:3.9", shopPod, sbShop, sd("5"), []string{sd("1")}, "running", nil},
}

func checkFixtureNode(t *testing.T, n *Node) {
	t.Helper()
	got := n.Containers()
	if len(got) != len(fixtureContainers) {
		t.Fatalf("%d containers, want %d", len(got), len(fixtureContainers))
	}
	for i, w := range fixtureContainers {
		c := got[i]
		if c.Namespace != w.ns || c.ID != w.id || c.Kind != w.kind || c.ContainerName != w.name || c.Image != w.image {
			t.Errorf("container %d = %s/%s %s %q %s, want %s/%s %s %q %s", i, c.Namespace, c.ID, c.Kind, c.ContainerName, c.Image, w.ns, w.id, w.kind, w.name, w.image)
		}
		if !reflect.DeepEqual(c.Pod, w.pod) {
			t.Errorf("%s: pod %+v, want %+v", w.id, c.Pod, w.pod)
		}
		if c.SandboxID != w.sandbox || c.SnapshotKey != w.id {
			t.Errorf("%s: sandbox %q key %q", w.id, c.SandboxID, c.SnapshotKey)
		}
		if c.UpperDir != w.upper || !reflect.DeepEqual(c.LowerDirs, w.lowers) {
			t.Errorf("%s: upper %s lowers %v, want %s %v", w.id, c.UpperDir, c.LowerDirs, w.upper, w.lowers)
		}
		if c.Status.State != w.state || !reflect.DeepEqual(c.Status.ExitCode, w.exit) {
			t.Errorf("%s: state %s exit %v, want %s %v", w.id, c.Status.State, c.Status.ExitCode, w.state, w.exit)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("%s: warnings %v", w.id, c.Warnings)
		}
	}
	app := got[2]
	if app.Status.Pid != 19714 || app.Status.StartedAt.UTC().Format(model.TimeLayout) != "2026-11-27T02:30:17.062786192Z" {
		t.Errorf("app status %+v", app.Status)
	}
	if app.CreatedAt.UTC().Format(model.TimeLayout) != "2026-11-27T02:30:16.962174262Z" {
		t.Errorf("app created %v", app.CreatedAt)
	}
	if app.ImageRef != "sha256:259696f574f3e9aafa0411eecec9cd90eda29444756aecab29b3f425f583d6a9" || app.Labels["org.opencontainers.image.title"] != "forge-shop-app" {
		t.Errorf("app image ref %q labels %v", app.ImageRef, app.Labels)
	}
	if app.Annotations["io.kubernetes.container.hash"] != "6c2f4b1e" || app.Annotations["io.kubernetes.pod.terminationGracePeriod"] != "30" {
		t.Errorf("app annotations %v", app.Annotations)
	}
	if s := app.Spec; s == nil || !reflect.DeepEqual(s.Args, []string{"/app/server.sh"}) || s.Cwd != "/app" || s.HostPID || s.HostNetwork || s.Privileged {
		t.Errorf("app spec %+v", app.Spec)
	}
	rep := got[3]
	if rep.Status.FinishedAt.UTC().Format(model.TimeLayout) != "2026-11-27T02:30:19.316863258Z" {
		t.Errorf("report finished %v", rep.Status.FinishedAt)
	}
	if got[0].Labels["com.example.role"] != "cache" || got[1].Labels["com.example.owner"] != "ops" {
		t.Errorf("default labels %v %v", got[0].Labels, got[1].Labels)
	}

	pods := n.Pods()
	if len(pods) != 2 {
		t.Fatalf("%d pods", len(pods))
	}
	wantPods := []struct {
		ns, name, uid, sb, ip, ctr, label, val string
	}{
		{"jobs", "report-job-28374651-q7wzt", "9b8e7d6c-5a4f-4b3a-8c2d-1e0f9a8b7c6d", sbJobs, "10.244.1.3", ctrReport, "job-name", "report-job-28374651"},
		{"shop", "shop-frontend-7d9c8b6f5-x2k4q", "3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f", sbShop, "10.244.1.2", ctrApp, "pod-template-hash", "7d9c8b6f5"},
	}
	for i, w := range wantPods {
		p := pods[i]
		if p.Namespace != w.ns || p.Name != w.name || p.UID != w.uid || p.SandboxID != w.sb || p.IP != w.ip || len(p.Containers) != 1 || p.Containers[0].ID != w.ctr || p.Labels[w.label] != w.val {
			t.Errorf("pod %d = %+v", i, p)
		}
	}
	if pods[1].CgroupParent != "/kubepods/besteffort/pod3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f" {
		t.Errorf("cgroup parent %q", pods[1].CgroupParent)
	}

	var ns []string
	for _, x := range n.Namespaces() {
		ns = append(ns, x.Name)
	}
	if !reflect.DeepEqual(ns, []string{"default", "k8s.io"}) {
		t.Errorf("namespaces %v", ns)
	}
	if n.containerdStore().DBVersion != 3 {
		t.Errorf("db version %d", n.containerdStore().DBVersion)
	}

	images := map[string]string{}
	for _, im := range n.Images() {
		images[im.Namespace+" "+im.Name] = im.Target.Digest
		if (im.Checkpoint) != (filepath.Dir(filepath.Dir(im.Name)) == "containerd.io") {
			t.Errorf("image %s checkpoint=%v", im.Name, im.Checkpoint)
		}
	}
	for k, v := range map[string]string{
		"k8s.io forge.local/shop/app:1.0":                                          "sha256:013186c8be0daeb5aba409480e2295e5afd755816f6a562a2d11169983737912",
		"k8s.io forge.local/library/busybox:1.35":                                  "sha256:76c06ca272948465b4b64383dd9bc40a781c6ef4338fda11380c37f6c7c48724",
		"k8s.io forge.local/pause:3.9":                                             "sha256:2cb17b016eff2d27c050ed673f71b4cde296bf3f579e05e78620681a4ff43ff0",
		"default forge.local/library/busybox:1.35":                                 "sha256:76c06ca272948465b4b64383dd9bc40a781c6ef4338fda11380c37f6c7c48724",
		"default containerd.io/checkpoint/forge-default-cache:11-27-2026-02:32:18": "sha256:d3d78e7b9623e022a3a060efa46f163236ebf1bb9195f9ef3d9b7876b96e73b1",
		"k8s.io containerd.io/checkpoint/" + ctrApp + ":11-27-2026-02:31:57":       "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96",
	} {
		if images[k] != v {
			t.Errorf("image %s = %q, want %s", k, images[k], v)
		}
	}

	// Snapshots: key -> numeric dir, per namespace, as the snapshotter DB says.
	snaps := map[string]string{}
	for _, s := range n.Snapshots() {
		snaps[s.Namespace+" "+s.Key] = s.ID + " " + s.Kind
	}
	for k, v := range map[string]string{
		"k8s.io sha256:b7311e45e868319daf97dd3368d17e631b5d9c4470d4156f0cf71bd01899c2af":  "1 committed",
		"k8s.io sha256:9086f7b050af0616c686578a9f2012b655bb8efb1b137cca405a01a1d377d16e":  "2 committed",
		"k8s.io sha256:104db5b53a3212e2ed51eb35f3e14cf310124f88f9c025faedf084e1a9390a1c":  "3 committed",
		"default sha256:9086f7b050af0616c686578a9f2012b655bb8efb1b137cca405a01a1d377d16e": "4 committed",
		"k8s.io " + sbShop:            "5 active",
		"k8s.io " + ctrApp:            "6 active",
		"k8s.io " + sbJobs:            "7 active",
		"k8s.io " + ctrReport:         "8 active",
		"default forge-default-cache": "9 active",
		"default forge-default-idle":  "10 active",
	} {
		if snaps[k] != v {
			t.Errorf("snapshot %s = %q, want %q", k, snaps[k], v)
		}
	}
	if len(snaps) != 10 {
		t.Errorf("%d snapshots, want 10", len(snaps))
	}

	// Content: every blob of the store is recorded and present, with its size.
	var present, total int
	sizes := map[string]int64{}
	for _, c := range n.Content() {
		total++
		if c.Present {
			present++
		}
		sizes[c.Digest] = c.BlobSize
	}
	if sizes["sha256:e0887a740405e8e82b548ba2e2a06fa92d61b1da04314b768ed186adad0a5d05"] != 480256 || sizes["sha256:42b65dc18ad7d0a1e2d79c437cfb324bdd4b8fd59d3cf4638c6b7ca7c5fac4cf"] != 1065188 {
		t.Errorf("checkpoint blob sizes %v", sizes)
	}
	if present != total || total == 0 {
		t.Errorf("%d of %d blobs present", present, total)
	}
	var keys []string
	for k := range sizes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 17 {
		t.Errorf("%d distinct blobs, want the 17 of the content store: %v", len(keys), keys)
	}
	if w := n.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}

func TestFixtureArchive(t *testing.T) {
	n, err := OpenPath(testfix.NodeArchive(t), &Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	checkFixtureNode(t, n)
}

func TestFixtureExtracted(t *testing.T) {
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	n, err := OpenPath(dir, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	checkFixtureNode(t, n)
	// And rooted at the node directory itself, with the root given.
	n2, err := OpenPath(filepath.Join(dir, "node"), &Options{Roots: map[string]string{"containerd": "/var/lib/containerd"}})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	checkFixtureNode(t, n2)
}

func TestFindContainer(t *testing.T) {
	n, err := OpenPath(testfix.NodeArchive(t), &Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for ref, want := range map[string]string{
		ctrApp:                                   ctrApp,
		"4b324c":                                 ctrApp,
		"shop/shop-frontend-7d9c8b6f5-x2k4q/app": ctrApp,
		"jobs/report-job-28374651-q7wzt/report":  ctrReport,
		"forge-default-idle":                     "forge-default-idle",
	} {
		c, err := n.FindContainer(ref)
		if err != nil || c.ID != want {
			t.Errorf("FindContainer(%q) = %v, %v; want %s", ref, c, err, want)
		}
	}
	if _, err := n.FindContainer("forge-default-"); err == nil {
		t.Error("ambiguous prefix accepted")
	}
	if _, err := n.FindContainer("nope"); err == nil {
		t.Error("unknown container found")
	}
}

func TestNamespaceFilter(t *testing.T) {
	n, err := OpenPath(testfix.NodeArchive(t), &Options{Namespaces: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if c := n.Containers(); len(c) != 2 || c[0].ID != "forge-default-cache" {
		t.Errorf("default namespace containers: %v", c)
	}
	if len(n.Pods()) != 0 {
		t.Errorf("pods in default: %v", n.Pods())
	}
}
