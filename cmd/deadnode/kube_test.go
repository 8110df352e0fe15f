package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/internal/testfix"
)

// The compromised host's facts (testdata/kube-host/GROUND_TRUTH.md),
// asserted through the CLI on the directory and on the .tar.zst.
const (
	hostApp       = "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007"
	hostSync      = "/(volume:scratch)/.cache/sync.sh"
	hostSyncSHA   = "1304b838da98ab1af297a69b7ebd7cae3caeed0aec3cd151136684a7c259859d"
	hostShopToken = "var/lib/kubelet/pods/3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f/volumes/kubernetes.io~projected/kube-api-access-02817/token"
	hostJobsToken = "var/lib/kubelet/pods/9b8e7d6c-5a4f-4b3a-8c2d-1e0f9a8b7c6d/volumes/kubernetes.io~projected/kube-api-access-c505f/token"
)

func hostRoots(t *testing.T) map[string]string {
	return map[string]string{"dir": testfix.KubeHost(t), "tar.zst": testfix.KubeHostArchive(t)}
}

// cli runs deadnode and returns its stdout; with stderr set, stderr too.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("deadnode %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

func cliAll(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("deadnode %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out + stderr
}

func jsonOf[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v: %.300s", err, s)
	}
	return v
}

func TestKubeHostKubelet(t *testing.T) {
	for name, root := range hostRoots(t) {
		t.Run(name, func(t *testing.T) {
			out, _, code := runCLI(t, "--root", root, "kubelet", "-o", "json")
			if code != 0 {
				t.Fatal(code)
			}
			type setting struct {
				Value  any    `json:"value"`
				Origin string `json:"origin"`
				Key    string `json:"key"`
			}
			r := jsonOf[struct {
				Config map[string]json.RawMessage `json:"config"`
				Static []struct {
					Path, Name, Namespace string
					Privileged            bool
					HostPID               bool                               `json:"host_pid"`
					HostNetwork           bool                               `json:"host_network"`
					HostPaths             []struct{ Path, MountPath string } `json:"host_path_mounts"`
					Severity              string
					KnownComponent        string `json:"known_component"`
				} `json:"static_pods"`
				Findings []struct{ Severity, Analyzer, Kind, Pod string }
			}](t, out)
			get := func(k string) setting {
				var s setting
				json.Unmarshal(r.Config[k], &s)
				return s
			}
			if s := get("anonymous_auth"); s.Value != true || s.Origin != "config_file" || s.Key != "authentication.anonymous.enabled" {
				t.Errorf("anonymous_auth %+v", s)
			}
			if s := get("read_only_port"); s.Value != float64(10255) || s.Key != "readOnlyPort" {
				t.Errorf("read_only_port %+v", s)
			}
			if s := get("authorization_mode"); s.Value != "Webhook" {
				t.Errorf("authorization_mode %+v", s)
			}
			if s := get("static_pod_path"); s.Value != "/etc/kubernetes/manifests" {
				t.Errorf("static_pod_path %+v", s)
			}
			if len(r.Static) != 2 {
				t.Fatalf("%d static pods", len(r.Static))
			}
			ls, npd := r.Static[0], r.Static[1]
			if ls.Path != "/etc/kubernetes/manifests/log-shipper.yaml" || ls.Namespace+"/"+ls.Name != "kube-system/log-shipper" || !ls.Privileged || !ls.HostPID || !ls.HostNetwork ||
				len(ls.HostPaths) != 1 || ls.HostPaths[0].Path != "/" || ls.Severity != "critical" {
				t.Errorf("log-shipper %+v", ls)
			}
			if npd.Name != "node-problem-detector" || npd.Privileged || npd.HostPID || !npd.HostNetwork || len(npd.HostPaths) != 1 || npd.HostPaths[0].Path != "/var/log/" ||
				npd.Severity != "info" || npd.KnownComponent != "node-problem-detector" {
				t.Errorf("node-problem-detector %+v", npd)
			}
			var above []string
			for _, f := range r.Findings {
				if f.Severity != "info" {
					above = append(above, f.Severity+" "+f.Analyzer+"/"+f.Kind+" "+f.Pod)
				}
			}
			if got, want := strings.Join(above, "; "), "critical static_pod/unknown_static_pod kube-system/log-shipper; high kubelet/anonymous_auth ; medium kubelet/read_only_port "; got != want {
				t.Errorf("findings above info: %s\nwant %s", got, want)
			}
			table := cli(t, "--root", root, "kubelet")
			for _, s := range []string{"anonymous_auth:                     true  [config file authentication.anonymous.enabled in /var/lib/kubelet/config.yaml]",
				"Static pod:  kube-system/log-shipper  critical", "Power:       hostPath / mounted read-write at /host in agent: the node's whole filesystem",
				"Token:                         /" + hostShopToken + ": system:serviceaccount:shop:shop-api, kid k8s-sa-key-1, issued 2026-11-27T03:00:00.000000000Z, expires 2027-11-27T03:00:00.000000000Z"} {
				if !strings.Contains(table, s) {
					t.Errorf("kubelet table lacks %q", s)
				}
			}
		})
	}
}

// The service-account tokens' claims are shown, never the token: no
// segment of either token appears in any output.
func TestKubeHostTokensNeverPrinted(t *testing.T) {
	dir := testfix.KubeHost(t)
	var segs []string
	for _, p := range []string{hostShopToken, hostJobsToken} {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(strings.TrimSpace(string(b)), ".")
		if len(parts) != 3 {
			t.Fatalf("%s: %d segments", p, len(parts))
		}
		for _, s := range parts {
			// A run long enough to be the token's, not a common prefix.
			segs = append(segs, s[len(s)/2:][:min(24, len(s)/2)])
		}
	}
	for name, root := range hostRoots(t) {
		t.Run(name, func(t *testing.T) {
			var outs []string
			for _, args := range [][]string{
				{"kubelet"}, {"kubelet", "-o", "json"}, {"inspect", "app"}, {"inspect", "app", "-o", "json"},
				{"ls", "pods"}, {"ls", "pods", "-o", "json"}, {"triage", "--no-memory", "-o", "json"}, {"timeline"},
				{"drift", "--all", "-o", "json"}, {"fs", "ls", "app", "/", "-R", "--volumes", "-o", "json"},
			} {
				outs = append(outs, cliAll(t, append([]string{"--root", root}, args...)...))
			}
			all := strings.Join(outs, "\n")
			if !strings.Contains(all, "system:serviceaccount:shop:shop-api") || !strings.Contains(all, "system:serviceaccount:jobs:default") {
				t.Error("the claims are not shown")
			}
			for _, s := range segs {
				if strings.Contains(all, s) {
					t.Errorf("a token segment (%s…) is printed", s[:8])
				}
			}
		})
	}
}

func TestKubeHostVolumeDrift(t *testing.T) {
	for name, root := range hostRoots(t) {
		t.Run(name, func(t *testing.T) {
			type entry struct {
				Path, Change, Volume, SHA256, Layer string
				ExecKind                            string `json:"exec_kind"`
				EvidencePath                        string `json:"evidence_path"`
				Flags                               []string
			}
			for _, args := range [][]string{{"drift", "app", "-o", "json"}, {"drift", hostApp, "--exec-only", "-o", "json"}, {"drift", "--pod", "shop/shop-frontend-7d9c8b6f5-x2k4q", "-o", "json"}} {
				es := jsonOf[[]entry](t, cli(t, append([]string{"--root", root}, args...)...))
				var got *entry
				for i := range es {
					if es[i].Path == hostSync {
						got = &es[i]
					}
				}
				if got == nil || got.Volume != "scratch" || got.Change != "added" || got.SHA256 != hostSyncSHA || got.ExecKind != "script" ||
					got.Layer != "/var/lib/kubelet/pods/3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f/volumes/kubernetes.io~empty-dir/scratch" {
					t.Errorf("%v: sync.sh %+v", args, got)
				}
			}
			cs := jsonOf[struct {
				Findings []struct{ Severity, Analyzer, Kind, Path, Pod, Summary string }
				Node     struct {
					Kubelet struct {
						AnonymousAuth     bool   `json:"anonymous_auth"`
						AuthorizationMode string `json:"authorization_mode"`
						ReadOnlyPort      int    `json:"read_only_port"`
						StaticPodPath     string `json:"static_pod_path"`
					}
				}
				Containers []struct{ ID, Risk string }
				Timeline   []struct{ Time, Source, What, Message string }
			}](t, cli(t, "--root", root, "triage", "--no-memory", "-o", "json"))
			sev := map[string]string{}
			for _, f := range cs.Findings {
				sev[f.Analyzer+"/"+f.Kind+" "+f.Pod+" "+f.Path] = f.Severity
			}
			for k, want := range map[string]string{
				"drift/added_script shop/shop-frontend-7d9c8b6f5-x2k4q " + hostSync:                                "medium",
				"static_pod/unknown_static_pod kube-system/log-shipper /etc/kubernetes/manifests/log-shipper.yaml": "critical",
				"kubelet/anonymous_auth  /var/lib/kubelet/config.yaml":                                             "high",
				"kubelet/read_only_port  /var/lib/kubelet/config.yaml":                                             "medium",
			} {
				if sev[k] != want {
					t.Errorf("triage: %s is %q, want %s", k, sev[k], want)
				}
			}
			k := cs.Node.Kubelet
			if !k.AnonymousAuth || k.AuthorizationMode != "Webhook" || k.ReadOnlyPort != 10255 || k.StaticPodPath != "/etc/kubernetes/manifests" {
				t.Errorf("node.kubelet %+v", k)
			}
			if cs.Containers[0].ID != hostApp || cs.Containers[0].Risk != "high" {
				t.Errorf("first container %+v", cs.Containers[0])
			}
			planted := 0
			for _, e := range cs.Timeline {
				if e.What == "log_line" && strings.Contains(e.Message, "fetched /tmp/.x/miner from 198.51.100.7") {
					planted++
				}
			}
			if planted != 1 {
				t.Errorf("the planted log line is %d times in the case's timeline", planted)
			}
			if out := cli(t, "--root", root, "fs", "cat", "app", hostSync, "--volumes"); !strings.Contains(out, "# HOST-A-EMPTYDIR-3f81\n") {
				t.Errorf("fs cat --volumes: %q", out)
			}
			ls := jsonOf[[]struct{ Path, Origin, SHA256 string }](t, cli(t, "--root", root, "fs", "ls", "app", "/(volume:scratch)", "-R", "--hash", "--volumes", "-o", "json"))
			if len(ls) != 3 || ls[2].Path != hostSync || ls[2].Origin != "volume:scratch" || ls[2].SHA256 != hostSyncSHA {
				t.Errorf("fs ls --volumes %+v", ls)
			}
		})
	}
}

func TestKubeHostLogs(t *testing.T) {
	planted := []string{
		"2026-11-26T21:13:58.120004511Z stdout fetched /tmp/.x/miner from 198.51.100.7",
		"2026-11-26T21:14:02.881230017Z stderr sh: can't create /proc/sys/kernel/core_pattern: Read-only file system",
	}
	for name, root := range hostRoots(t) {
		t.Run(name, func(t *testing.T) {
			type line struct {
				Time, Stream, Text, Pod, Container string
				ContainerID                        string `json:"container_id"`
				EvidencePath                       string `json:"evidence_path"`
				Line                               int
			}
			for _, args := range [][]string{{"logs", "app"}, {"logs", hostApp[:8]}, {"logs", "shop/shop-frontend-7d9c8b6f5-x2k4q/app"}, {"logs", "--grep", "miner|core_pattern"}, {"logs", "--since", "2026-11-26", "--until", "2026-11-26T21:15:00Z"}} {
				out := cli(t, append(append([]string{"--root", root}, args...), "-o", "jsonl")...)
				var got []string
				for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
					ll := jsonOf[line](t, l)
					if ll.ContainerID != hostApp || ll.Pod != "shop/shop-frontend-7d9c8b6f5-x2k4q" || ll.Container != "app" ||
						ll.EvidencePath != "/var/log/pods/shop_shop-frontend-7d9c8b6f5-x2k4q_3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f/app/0.log" {
						t.Errorf("%v: %+v", args, ll)
					}
					got = append(got, ll.Time+" "+ll.Stream+" "+ll.Text)
				}
				if strings.Join(got, "\n") != strings.Join(planted, "\n") {
					t.Errorf("%v:\n%s", args, strings.Join(got, "\n"))
				}
			}
			table := cli(t, "--root", root, "logs")
			for _, p := range planted {
				f := strings.SplitN(p, " ", 3)
				if !strings.Contains(table, f[0]+"  "+f[1]+"  shop/shop-frontend-7d9c8b6f5-x2k4q  app        "+f[2]) {
					t.Errorf("logs table lacks %s", p)
				}
			}
			tl := cli(t, "--root", root, "timeline")
			for _, p := range planted {
				f := strings.SplitN(p, " ", 3)
				if !strings.Contains(tl, `{"time":"`+f[0]+`","source":"log","what":"log_line","message":"shop/shop-frontend-7d9c8b6f5-x2k4q/app `+f[1]+": "+f[2]+`"`) {
					t.Errorf("timeline lacks %s", p)
				}
			}
		})
	}
}

// Log text is the container's, hostile: controls never reach the
// terminal.
func TestLogsTableCleansText(t *testing.T) {
	dir := t.TempDir()
	ld := filepath.Join(dir, "var/log/pods/ns_pod_0b7e6f3a-1111-2222-3333-444455556666/c")
	if err := os.MkdirAll(ld, 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	line := "2026-01-02T03:04:05.000000000Z stdout F evil \x1b]0;owned\x07\x1b[2J text\n"
	if err := os.WriteFile(filepath.Join(ld, "0.log"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "--root", dir, "logs")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `evil \x1b]0;owned\a\x1b[2J text`) {
		t.Errorf("table: %q", out)
	}
	js, _, _ := runCLI(t, "--root", dir, "logs", "-o", "json")
	if !strings.Contains(js, `"text":"evil \u001b]0;owned\u0007\u001b[2J text"`) {
		t.Errorf("json: %q", js)
	}
}

func TestParseLogTime(t *testing.T) {
	for s, want := range map[string]string{
		"2026-11-26T21:00:00Z": "2026-11-26T21:00:00Z 0s", "2026-11-26T22:00:00.5+01:00": "2026-11-26T21:00:00.5Z 0s",
		"2026-11-26": "2026-11-26T00:00:00Z 0s", "2h": "0001-01-01T00:00:00Z 2h0m0s", "1.5d": "0001-01-01T00:00:00Z 36h0m0s", "90m": "0001-01-01T00:00:00Z 1h30m0s",
	} {
		abs, rel, err := parseLogTime(s)
		if got := abs.Format(time.RFC3339Nano) + " " + rel.String(); err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", s, got, err, want)
		}
	}
	for _, s := range []string{"yesterday", "-2h", "2", "1e9d", "d", "2026-13-01"} {
		if _, _, err := parseLogTime(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzParseLogTime(f *testing.F) {
	for _, s := range []string{"2026-11-26T21:00:00Z", "2026-11-26", "2h", "1.5d", "90m", "-1d", "NaNd", "1e400d", "Infd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		abs, rel, err := parseLogTime(s)
		if err == nil && rel < 0 {
			t.Fatalf("%q: negative %v", s, rel)
		}
		if err == nil && !abs.IsZero() && rel != 0 {
			t.Fatalf("%q: both %v and %v", s, abs, rel)
		}
	})
}

// A host without a container runtime still has a timeline: its logs and
// its kubelet.
func TestTimelineWithoutRuntime(t *testing.T) {
	dir := t.TempDir()
	ld := filepath.Join(dir, "var/log/pods/ns_pod_0b7e6f3a-1111-2222-3333-444455556666/c")
	if err := os.MkdirAll(ld, 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	if err := os.WriteFile(filepath.Join(ld, "0.log"), []byte("2026-01-02T03:04:05.000000000Z stdout F hello\n2026-01-02T03:04:06.000000000Z stderr F bye\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := cli(t, "--root", dir, "timeline")
	want := `{"time":"2026-01-02T03:04:05.000000000Z","source":"log","what":"log_line","message":"ns/pod/c stdout: hello","pod":"ns/pod","path":"c","evidence_path":"/var/log/pods/ns_pod_0b7e6f3a-1111-2222-3333-444455556666/c/0.log"}
{"time":"2026-01-02T03:04:06.000000000Z","source":"log","what":"log_line","message":"ns/pod/c stderr: bye","pod":"ns/pod","path":"c","evidence_path":"/var/log/pods/ns_pod_0b7e6f3a-1111-2222-3333-444455556666/c/0.log"}
`
	if out != want {
		t.Errorf("timeline:\n%s\nwant\n%s", out, want)
	}
}
