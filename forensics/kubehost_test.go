package forensics

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

// The compromised host's facts (testdata/kube-host/GROUND_TRUTH.md).
const (
	hostShopUID  = "3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f"
	hostSyncPath = "/(volume:scratch)/.cache/sync.sh"
	hostSyncEv   = "/var/lib/kubelet/pods/3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f/volumes/kubernetes.io~empty-dir/scratch/.cache/sync.sh"
	hostSyncSHA  = "1304b838da98ab1af297a69b7ebd7cae3caeed0aec3cd151136684a7c259859d"
	hostTokenIat = 1795748400
	hostTokenExp = 1827284400
)

var hostArchive struct {
	sync.Mutex
	n *Node
}

// hostNodes opens the host fixture as a directory and as its .tar.zst
// (the archive, indexed once, is shared by the tests of the binary).
func hostNodes(t *testing.T) []struct {
	name string
	n    *Node
} {
	t.Helper()
	dir, err := OpenPath(testfix.KubeHost(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	hostArchive.Lock()
	defer hostArchive.Unlock()
	if hostArchive.n == nil {
		a, err := OpenPath(testfix.KubeHostArchive(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		hostArchive.n = a
	}
	return []struct {
		name string
		n    *Node
	}{{"dir", dir}, {"tar.zst", hostArchive.n}}
}

func TestKubeHostJoins(t *testing.T) {
	ctx := context.Background()
	for _, hn := range hostNodes(t) {
		t.Run(hn.name, func(t *testing.T) {
			n := hn.n
			r, err := n.Kubelet(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r2, _ := n.Kubelet(ctx); r2 != r {
				t.Error("the kubelet report is read again")
			}
			pods, ws := n.PodDetails(ctx)
			if len(ws) != 0 || len(pods) != 2 {
				t.Fatalf("%d pods, warnings %v", len(pods), ws)
			}
			for _, p := range pods {
				if p.StaticPod != nil {
					t.Errorf("pod %s/%s: static pod %s", p.Namespace, p.Name, *p.StaticPod)
				}
				if p.UID != hostShopUID {
					continue
				}
				var vols []string
				for _, v := range p.Volumes {
					vols = append(vols, v.Name+":"+v.Kind)
				}
				slices.Sort(vols)
				if got := strings.Join(vols, " "); got != "kube-api-access-02817:projected scratch:empty_dir" {
					t.Errorf("shop volumes %s", got)
				}
				if len(p.ServiceAccountTokens) != 1 {
					t.Fatalf("shop tokens %+v", p.ServiceAccountTokens)
				}
				tk := p.ServiceAccountTokens[0]
				c := tk.Claims
				if c.Subject != "system:serviceaccount:shop:shop-api" || c.ServiceAccount != "shop-api" || c.Namespace != "shop" || c.PodUID != hostShopUID ||
					c.IssuedAt.Unix() != hostTokenIat || c.Expires.Unix() != hostTokenExp || tk.Kid != "k8s-sa-key-1" || tk.Volume != "kube-api-access-02817" || len(tk.TokenSHA256) != 64 {
					t.Errorf("shop token %+v", tk)
				}
			}
			d, ws, err := n.InspectDetail(ctx, "app")
			if err != nil || len(ws) != 0 {
				t.Fatal(err, ws)
			}
			var scratch *kube.Mount
			for i := range d.Mounts {
				if d.Mounts[i].Volume == "scratch" {
					scratch = &d.Mounts[i]
				}
			}
			if scratch == nil || scratch.ContainerPath != nil || !scratch.Writable || scratch.VolumeKind != kube.VolEmptyDir {
				t.Errorf("scratch mount %+v", scratch)
			}
			if len(d.ServiceAccountTokens) != 1 || d.ServiceAccountTokens[0].Claims.ServiceAccount != "shop-api" || d.StaticPod != nil {
				t.Errorf("app: tokens %+v, static pod %v", d.ServiceAccountTokens, d.StaticPod)
			}

			// The emptyDir file is drift of the attacked container.
			c, err := n.FindContainer("app")
			if err != nil {
				t.Fatal(err)
			}
			ds, err := n.ContainerDrift(c)
			if err != nil {
				t.Fatal(err)
			}
			es, warns, err := DriftAll(ctx, ds, nil)
			if err != nil || len(warns) != 0 {
				t.Fatal(err, warns)
			}
			var sync *DriftEntry
			upperDone := false
			for i, e := range es {
				if e.Volume != "" {
					upperDone = true
				} else if upperDone {
					t.Errorf("entry %d %s of the upper layer after the volumes'", i, e.Path)
				}
				if e.Path == hostSyncPath {
					sync = &es[i]
				}
			}
			if sync == nil {
				t.Fatalf("no %s in the drift", hostSyncPath)
			}
			if sync.Volume != "scratch" || sync.Change != ChangeAdded || sync.SHA256 != hostSyncSHA || sync.ExecKind != classify.ExecScript ||
				sync.EvidencePath != hostSyncEv || sync.Size != 102 || sync.Mode != "0755" || !slices.Contains(sync.Flags, classify.FlagHidden) || sync.Mtime.Unix() != 1795727645 {
				t.Errorf("sync.sh drift %+v", sync)
			}
			f := sync.Finding()
			if f.Severity < model.SeverityMedium || f.ContainerID != ctrApp || !strings.Contains(f.Why, "volume scratch") {
				t.Errorf("sync.sh finding %+v", f)
			}
			// Read-write host paths only when asked: the app has none.
			es2, _, _ := DriftAll(ctx, ds, &DriftOptions{HostPaths: true, NoHash: true})
			if len(es2) != len(es) {
				t.Errorf("%d entries with host paths, %d without", len(es2), len(es))
			}

			// The container as its processes saw it.
			v, ws, err := n.MountedView(c)
			if err != nil || len(ws) != 0 {
				t.Fatal(err, ws)
			}
			fh, err := v.OpenFile(hostSyncPath)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(io.NewSectionReader(fh, 0, fh.Size()))
			fh.Close()
			if !strings.Contains(string(b), "HOST-A-EMPTYDIR-3f81") {
				t.Errorf("sync.sh reads %q", b)
			}
			if e, err := v.StatEntry("/etc/hostname"); err != nil || e.Origin != "runtime:hostname" || e.Stat.Size != 30 {
				t.Errorf("/etc/hostname: %+v %v", e, err)
			}
		})
	}
}

func TestKubeHostTimeline(t *testing.T) {
	for _, hn := range hostNodes(t) {
		t.Run(hn.name, func(t *testing.T) {
			evs, _, err := hn.n.TimelineAll(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{
				"2026-11-26T21:13:58.120004511Z log log_line " + ctrApp + " shop/shop-frontend-7d9c8b6f5-x2k4q/app stdout: fetched /tmp/.x/miner from 198.51.100.7":                                         false,
				"2026-11-26T21:14:02.881230017Z log log_line " + ctrApp + " shop/shop-frontend-7d9c8b6f5-x2k4q/app stderr: sh: can't create /proc/sys/kernel/core_pattern: Read-only file system":           false,
				"2026-11-26T21:14:05.000000000Z static_pod mtime  static pod kube-system/log-shipper (docker.io/logshipr/agent:0.9, critical) manifest mtime of /etc/kubernetes/manifests/log-shipper.yaml": false,
				"2026-11-26T21:14:05.000000000Z kubelet mtime  kubelet config mtime of /var/lib/kubelet/config.yaml":                                                                                        false,
				"2026-11-27T03:00:00.000000000Z sa_token iat  service-account token for system:serviceaccount:shop:shop-api (kid k8s-sa-key-1) in shop/shop-frontend-7d9c8b6f5-x2k4q issued":                false,
				"2027-11-27T03:00:00.000000000Z sa_token exp  service-account token for system:serviceaccount:shop:shop-api (kid k8s-sa-key-1) in shop/shop-frontend-7d9c8b6f5-x2k4q expires":               false,
				"2026-11-26T21:14:05.000000000Z file mtime " + ctrApp + " mtime added /(volume:scratch)/.cache/sync.sh (file hidden) in 4b324cab2548":                                                       false,
			}
			logs := 0
			for _, e := range evs {
				k := e.Time.String() + " " + e.Source + " " + e.What + " " + e.ContainerID + " " + e.Message
				if _, ok := want[k]; ok {
					want[k] = true
				}
				if e.What == "log_line" {
					logs++
				}
			}
			for k, ok := range want {
				if !ok {
					t.Errorf("no event %s", k)
				}
			}
			if logs != 4 {
				t.Errorf("%d log lines, want every one of the 4", logs)
			}
		})
	}
}

func TestKubeHostTriage(t *testing.T) {
	for _, hn := range hostNodes(t) {
		t.Run(hn.name, func(t *testing.T) {
			cs, err := Triage(context.Background(), hn.n, &TriageOptions{NoMemory: true})
			if err != nil {
				t.Fatal(err)
			}
			k, ok := cs.Node.Kubelet.(*KubeletSummary)
			if !ok || !k.AnonymousAuth || k.AuthorizationMode != "Webhook" || k.ReadOnlyPort != 10255 || k.StaticPodPath != "/etc/kubernetes/manifests" ||
				k.ConfigFile != "/var/lib/kubelet/config.yaml" || strings.Join(k.StaticPods, " ") != "kube-system/log-shipper kube-system/node-problem-detector" || k.ServiceAccountTokens != 2 {
				t.Errorf("node.kubelet %+v", cs.Node.Kubelet)
			}
			has := func(sev model.Severity, analyzer, kind, pod, path string) bool {
				for _, f := range cs.Findings {
					if f.Severity == sev && f.Analyzer == analyzer && f.Kind == kind && f.Pod == pod && (path == "" || f.Path == path) {
						return true
					}
				}
				return false
			}
			for _, w := range []struct {
				sev                       model.Severity
				analyzer, kind, pod, path string
			}{
				{model.SeverityCritical, "static_pod", "unknown_static_pod", "kube-system/log-shipper", "/etc/kubernetes/manifests/log-shipper.yaml"},
				{model.SeverityHigh, "kubelet", "anonymous_auth", "", ""},
				{model.SeverityMedium, "kubelet", "read_only_port", "", ""},
				{model.SeverityMedium, AnalyzerDrift, "added_script", "shop/shop-frontend-7d9c8b6f5-x2k4q", hostSyncPath},
				{model.SeverityInfo, "kube_pod", "service_account_token", "shop/shop-frontend-7d9c8b6f5-x2k4q", ""},
			} {
				if !has(w.sev, w.analyzer, w.kind, w.pod, w.path) {
					t.Errorf("no %s %s/%s finding for %s %s", w.sev, w.analyzer, w.kind, w.pod, w.path)
				}
			}
			if cs.Containers[0].ID != ctrApp {
				t.Errorf("first container %s", cs.Containers[0].ID)
			}
			// The planted log lines lie in the case's window.
			n := 0
			for _, e := range cs.Timeline {
				if e.What == "log_line" && e.ContainerID == ctrApp && e.Time.Before(mustTime("2026-11-26T21:15:00Z")) {
					n++
				}
			}
			if n != 2 {
				t.Errorf("%d planted log lines in the case's timeline", n)
			}
			// No default analyzers: no kubelet in the case.
			cs2, err := Triage(context.Background(), hn.n, &TriageOptions{NoMemory: true, Analyzers: []Analyzer{}})
			if err != nil {
				t.Fatal(err)
			}
			if cs2.Node.Kubelet != nil || len(cs2.Findings) >= len(cs.Findings) {
				t.Errorf("without analyzers: kubelet %v, %d findings (%d with)", cs2.Node.Kubelet, len(cs2.Findings), len(cs.Findings))
			}
		})
	}
}

// A node without a kubelet: no error where the kubelet is optional.
func TestNoKubelet(t *testing.T) {
	n, err := OpenPath(testfix.NodeArchive(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	if _, err := n.Kubelet(ctx); !errors.Is(err, kube.ErrNoKubelet) {
		t.Errorf("kubelet: %v", err)
	}
	pods, ws := n.PodDetails(ctx)
	if len(pods) != 2 || len(ws) != 0 || len(pods[0].Volumes) != 0 || pods[0].Volumes == nil || pods[0].ServiceAccountTokens == nil {
		t.Errorf("pods %+v, warnings %v", pods, ws)
	}
	r, err := KubeletAnalyzer().Analyze(ctx, n)
	if err != nil || r.Kubelet != nil {
		t.Errorf("analyzer: %+v %v", r, err)
	}
}

// Node.Kubelet stops when cancelled, and a cancelled read is not kept.
func TestKubeletCancel(t *testing.T) {
	n, err := OpenPath(testfix.KubeHost(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Kubelet(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := KubeletAnalyzer().Analyze(ctx, n); !errors.Is(err, context.Canceled) {
		t.Errorf("analyzer cancelled: %v", err)
	}
	r, err := n.Kubelet(context.Background())
	if err != nil || len(r.StaticPods) != 2 {
		t.Errorf("after a cancelled read: %v", err)
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Cancelled between the upper layer and the volumes: no volume entry
// follows, the walk ends with the context's error.
func TestDriftVolumesCancel(t *testing.T) {
	n := hostNodes(t)[0].n
	c, err := n.FindContainer("app")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := n.ContainerDrift(c)
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := DriftAll(context.Background(), ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	upper := 0
	for _, e := range all {
		if e.Volume == "" {
			upper++
		}
	}
	if upper == len(all) {
		t.Fatal("no volume entries")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := 0
	var last error
	for e, err := range Drift(ctx, ds, nil) {
		if err != nil {
			last = err
			break
		}
		if e.Volume != "" {
			t.Errorf("volume entry %s after cancelling", e.Path)
		}
		k++
		if k == upper {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) {
		t.Errorf("drift ended with %v", last)
	}
}

// A runtime pod is a static pod's mirror when its sandbox says it came
// from a file (or says nothing) and its name is the manifest's, with the
// node's name appended.
func TestStaticPodJoin(t *testing.T) {
	r := &kube.KubeletReport{StaticPods: []kube.StaticPod{{Name: "kube-apiserver", Namespace: "kube-system", FileInfo: kube.FileInfo{Path: "/etc/kubernetes/manifests/kube-apiserver.yaml"}}}}
	if kp := kubeletPod(r, "kube-system", "kube-apiserver-node-a", "u1", map[string]string{"kubernetes.io/config.source": "file"}); kp.static == nil || kp.static.Path != "/etc/kubernetes/manifests/kube-apiserver.yaml" {
		t.Errorf("mirror pod: %+v", kp.static)
	}
	if kp := kubeletPod(r, "kube-system", "kube-apiserver-node-a", "u1", map[string]string{"kubernetes.io/config.source": "api"}); kp.static != nil {
		t.Errorf("an API pod named like a static one: %+v", kp.static)
	}
	if kp := kubeletPod(r, "default", "kube-apiserver-node-a", "u1", nil); kp.static != nil {
		t.Errorf("another namespace: %+v", kp.static)
	}
}
