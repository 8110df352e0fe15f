package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// billionLaughs is the YAML alias bomb: 9^9 strings from a few hundred bytes.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: bomb}\n")
	b.WriteString(`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		fmt.Fprintf(&b, "%s: &%s [%s]\n", n, n, strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ","))
		prev = n
	}
	return b.String()
}

func TestHostileManifests(t *testing.T) {
	deepFlow := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	deepMap := "spec: " + strings.Repeat("{a: ", 20000) + "1" + strings.Repeat("}", 20000)
	huge := "apiVersion: v1\nkind: Pod\nmetadata: {name: huge}\n# " + strings.Repeat("x", MaxConfigBytes) + "\n"
	// Under the library's own alias ratio, but a second of work and
	// ~60 MB per file: refused by our bound.
	wide := "a: &a [" + strings.TrimSuffix(strings.Repeat("x,", 100000), ",") + "]\nb: [" + strings.TrimSuffix(strings.Repeat("*a,", 100), ",") + "]\n"
	manyDocs := strings.Repeat("apiVersion: v1\nkind: Pod\nmetadata: {name: many}\nspec: {containers: [{name: c, image: x}]}\n---\n", 1000)
	for _, s := range trees(t, map[string]node{
		"etc/kubernetes/manifests/bomb.yaml":  file(billionLaughs()),
		"etc/kubernetes/manifests/deep.yaml":  file(deepFlow),
		"etc/kubernetes/manifests/deep2.yaml": file(deepMap),
		"etc/kubernetes/manifests/huge.yaml":  file(huge),
		"etc/kubernetes/manifests/wide.yaml":  file(wide),
		"etc/kubernetes/manifests/many.yaml":  file(manyDocs),
		"etc/kubernetes/manifests/null.yaml":  file("~\n"),
		"etc/kubernetes/manifests/list.yaml":  file("- 1\n- 2\n"),
		"etc/kubernetes/manifests/types.yaml": file("apiVersion: 1\nkind: [Pod]\nmetadata: {name: {x: 1}}\nspec: {hostPID: \"yes\", containers: {a: 1}, volumes: 3}\n"),
	}) {
		t.Run(s.name, func(t *testing.T) {
			pods, _ := StaticPods(context.Background(), s.src, StaticPodOptions{Configured: true})
			by := map[string][]StaticPod{}
			for _, p := range pods {
				by[filepath.Base(p.Path)] = append(by[filepath.Base(p.Path)], p)
			}
			if p := by["bomb.yaml"]; len(p) != 1 || p[0].Severity != model.SeverityLow || !strings.Contains(p[0].Warnings[0].String(), "excessive aliasing") {
				t.Errorf("bomb: %+v", p)
			} else if w := p[0].Warnings[0]; w.File != "/etc/kubernetes/manifests/bomb.yaml" || w.Offset != -1 || !strings.HasPrefix(w.Msg, "YAML document 0: ") {
				t.Errorf("bomb warning %#v", w)
			}
			if p := by["wide.yaml"]; len(p) != 1 || !strings.Contains(p[0].Warnings[0].String(), "100 YAML aliases in 200313 bytes could expand") {
				t.Errorf("wide: %+v", p)
			}
			for _, f := range []string{"deep.yaml", "deep2.yaml"} {
				if p := by[f]; len(p) != 1 || !strings.Contains(p[0].Warnings[0].String(), "exceeded max depth") {
					t.Errorf("%s: %+v", f, p)
				}
			}
			if p := by["huge.yaml"]; len(p) != 1 || p[0].Severity != model.SeverityMedium || !strings.Contains(p[0].Why, "over the 1048576-byte limit") {
				t.Errorf("huge: %+v", p)
			}
			m := by["many.yaml"]
			if len(m) != MaxDocuments+1 || !strings.Contains(m[MaxDocuments].Warnings[0].String(), "more than 64 YAML documents") {
				t.Errorf("many: %d", len(m))
			}
			for _, f := range []string{"null.yaml", "list.yaml"} {
				if p := by[f]; len(p) != 1 || p[0].Severity != model.SeverityLow {
					t.Errorf("%s: %+v", f, p)
				}
			}
			// Wrong types are read as absent, not as a crash.
			if p := by["types.yaml"]; len(p) != 1 || p[0].HostPID || p[0].Name != "" || len(p[0].Containers) != 0 {
				t.Errorf("types: %+v", p)
			}
		})
	}
}

func TestHostileConfigs(t *testing.T) {
	manyWords := "[Service]\nExecStart=/usr/bin/kubelet " + strings.Repeat("--v=1 ", MaxArgs+10) + "\n"
	for _, s := range trees(t, map[string]node{
		"etc/systemd/system/kubelet.service":                                         file(manyWords),
		"etc/systemd/system/kubelet.service.d/loop.conf":                             symlink("loop.conf"),
		"etc/systemd/system/kubelet.service.d/20-config.conf":                        file("[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --kubeconfig=/etc/kubernetes/kubelet.conf --read-only-port=abc\nEnvironmentFile=/etc/default/kubelet\n"),
		"etc/default/kubelet":                                                        file("A=" + strings.Repeat("y", MaxConfigBytes) + "\n"),
		"var/lib/kubelet/config.yaml":                                                file("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: \"10255\"\nauthentication: {anonymous: {enabled: 1}}\n"),
		"etc/kubernetes/kubelet.conf":                                                file(billionLaughs()),
		"etc/kubernetes/manifests":                                                   symlink("manifests"),
		"var/lib/kubelet/pods/" + podA + "/volumes/kubernetes.io~projected/t/..data": symlink("..data"),
		"var/lib/kubelet/pods/" + podA + "/volumes/kubernetes.io~projected/t/token":  symlink("..data/token"),
	}) {
		t.Run(s.name, func(t *testing.T) {
			r, err := Kubelet(context.Background(), s.src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			w := strings.Join(evidence.WarningLines(r.Warnings), "\n")
			for _, want := range []string{
				"loop.conf: too many levels of symbolic links",
				"/etc/default/kubelet: file is 1048579 bytes, over the 1048576-byte limit",
				"flag --read-only-port=\"abc\": strconv.ParseInt",
				"readOnlyPort is a string",
				"authentication.anonymous.enabled is a number",
				"static pod path /etc/kubernetes/manifests: resolve etc/kubernetes/manifests: too many levels of symbolic links",
			} {
				if !strings.Contains(w, want) {
					t.Errorf("no warning %q in\n%s", want, w)
				}
			}
			// A setting's own words name no file first: File stays empty;
			// a config file's key is about the file.
			for _, w := range r.Warnings {
				switch {
				case strings.HasPrefix(w.String(), "flag --read-only-port="):
					if w.File != "" || w.Offset != -1 {
						t.Errorf("flag warning %#v", w)
					}
				case strings.Contains(w.String(), "readOnlyPort is a string"):
					if w.File != "/var/lib/kubelet/config.yaml" || w.Offset != -1 || !strings.HasPrefix(w.Msg, "readOnlyPort is a string") {
						t.Errorf("config warning %#v", w)
					}
				}
			}
			if len(r.Pods) != 1 || !strings.Contains(strings.Join(evidence.WarningLines(r.Pods[0].Warnings), ""), "/t/token: resolve") {
				t.Errorf("pod warnings %+v", r.Pods)
			}
			// Bad values leave the kubelet's defaults.
			if r.Config.ReadOnlyPort.Value != 0 || r.Config.AnonymousAuth.Value {
				t.Errorf("config %+v", r.Config)
			}
			if len(r.Kubeconfigs) != 1 || !strings.Contains(strings.Join(evidence.WarningLines(r.Kubeconfigs[0].Warnings), ""), "excessive aliasing") {
				t.Errorf("kubeconfig %+v", r.Kubeconfigs)
			}
		})
	}
	// The over-long ExecStart alone.
	args, err := expandExec("/usr/bin/kubelet "+strings.Repeat("--v=1 ", MaxArgs+10), "/u", nil)
	if err == nil || len(args) > MaxArgs+2 {
		t.Errorf("%d args, %v", len(args), err)
	}
}

// A 100 MB token file is not read; a 50 MB log line is cut at the bound
// with memory staying flat.
func TestHostileSizes(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok := mk("var/lib/kubelet/pods/" + podA + "/volumes/kubernetes.io~secret/s/token")
	f, err := os.Create(tok)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(100 << 20) // sparse: 100 MB without the disk
	f.Close()
	const big = 50 << 20
	line := func(prefix, suffix string) []byte {
		b := make([]byte, 0, big+len(prefix)+len(suffix))
		b = append(b, prefix...)
		for len(b) < big {
			b = append(b, "0123456789abcdef"...)
		}
		return append(b, suffix...)
	}
	cri := line("2026-11-26T10:00:00Z stdout F ", "\n2026-11-26T10:00:01Z stdout F after\n")
	firstLen := int64(len(cri) - len("2026-11-26T10:00:01Z stdout F after\n"))
	if err := os.WriteFile(mk("var/log/pods/web_web-0_"+podA+"/app/0.log"), cri, 0o644); err != nil {
		t.Fatal(err)
	}
	dock := line(`{"log":"\u0041\n`, `\n","stream":"stderr","time":"2026-11-26T11:00:00Z"}`+"\n"+`{"log":"after\n","stream":"stdout","time":"2026-11-26T11:00:01Z"}`+"\n")
	if err := os.WriteFile(mk("var/lib/docker/containers/abc/abc-json.log"), dock, 0o644); err != nil {
		t.Fatal(err)
	}
	cri, dock = nil, nil
	src, err := evidence.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	pods, _ := Pods(context.Background(), src, PodOptions{})
	if len(pods) != 1 || len(pods[0].Tokens) != 1 || !strings.Contains(pods[0].Tokens[0].Warnings[0].String(), "104857600 bytes, over the 65536-byte limit") {
		t.Errorf("100 MB token: %+v", pods)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var lines []LogLine
	var lens []int
	for l, err := range Logs(context.Background(), src, LogFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		lens = append(lens, len(l.Text))
		l.Text = l.Text[:min(len(l.Text), 32)]
		lines = append(lines, l)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("reading two 50 MB lines allocated %d bytes", alloc)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	// The CRI line: the first MaxLineBytes bytes less its 30-byte prefix.
	if l := lines[0]; !l.Truncated || l.Text != "0123456789abcdef0123456789abcdef" || l.Stream != "stdout" || lens[0] != MaxLineBytes-30 {
		t.Errorf("cri line %+v", l)
	}
	if l := lines[1]; l.Text != "after" || l.Line != 2 || l.Offset != firstLen {
		t.Errorf("line after %+v", l)
	}
	if l := lines[2]; !l.Truncated || !strings.HasPrefix(l.Text, "A\n0123") || l.Stream != "stderr" || l.Time.String() != "2026-11-26T11:00:00.000000000Z" {
		t.Errorf("docker line %+v", l)
	}
	if l := lines[3]; l.Text != "after" || l.Truncated {
		t.Errorf("docker after %+v", l)
	}
	fs, _ := LogFindings(context.Background(), src, LogFilter{})
	if got := kinds(fs); got != "low:oversized_log_lines,low:oversized_log_lines" {
		t.Errorf("findings %s", got)
	}
}

// Flags as the kubelet reads them: "_" in a name is "-" (its flag set
// normalises words), and an int flag takes 0x, 0o, octal and _ as pflag
// does. --anonymous_auth=true was passed over (anonymous auth reported
// off, no finding) and --read-only-port=10_255 called refused.
func TestFlagsAsTheKubeletReadsThem(t *testing.T) {
	for _, s := range trees(t, map[string]node{
		"etc/systemd/system/kubelet.service": file("[Service]\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --anonymous_auth=true --read-only-port=10_255 --port 0x2800\n"),
		"var/lib/kubelet/config.yaml":        file("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: false\n"),
	}) {
		r, err := Kubelet(context.Background(), s.src, Options{NoPods: true})
		if err != nil {
			t.Fatal(err)
		}
		c := r.Config
		if c.AnonymousAuth.Value != true || c.AnonymousAuth.Source != "--anonymous_auth" && c.AnonymousAuth.Source != "--anonymous-auth" {
			t.Errorf("%s: anonymous auth %v from %+v", s.name, c.AnonymousAuth.Value, c.AnonymousAuth.Provenance)
		}
		if c.ReadOnlyPort.Value != int64(10255) || c.Port.Value != int64(10240) {
			t.Errorf("%s: read-only port %v (%s), port %v (%s)", s.name, c.ReadOnlyPort.Value, c.ReadOnlyPort.Origin, c.Port.Value, c.Port.Origin)
		}
	}
}

// The kubelet unit's drop-ins as systemd finds them: service.d/*.conf
// applies to every service, and /etc/systemd/system.control comes before
// /etc/systemd/system. An attacker's ExecStart= there was not read.
func TestKubeletDropInsWhereSystemdLooks(t *testing.T) {
	for _, s := range trees(t, map[string]node{
		"etc/systemd/system/kubelet.service":                     file("[Service]\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml\n"),
		"etc/systemd/system/service.d/10-x.conf":                 file("[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --anonymous-auth=true\n"),
		"etc/systemd/system.control/kubelet.service.d/50-y.conf": file("[Service]\nEnvironment=X=1\n"),
	}) {
		u := ReadUnit(s.src)
		if strings.Join(u.ExecStart, " ") != "/usr/bin/kubelet --anonymous-auth=true" || len(u.DropIns) != 2 ||
			len(u.Environment) != 1 || u.Environment[0].Name != "X" || u.Environment[0].From != "/etc/systemd/system.control/kubelet.service.d/50-y.conf" {
			t.Errorf("%s: exec %q, %d drop-ins, environment %+v", s.name, u.ExecStart, len(u.DropIns), u.Environment)
		}
	}
}

// --config-dir is walked as the kubelet walks it (filepath.WalkDir): a
// drop-in in a subdirectory applies too, after those before it in lexical
// order. It turned anonymous auth on and the read-only port open unseen.
func TestConfigDirWalked(t *testing.T) {
	for _, s := range trees(t, map[string]node{
		"etc/systemd/system/kubelet.service":         file("[Service]\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --config-dir=/etc/kubernetes/kubelet.conf.d\n"),
		"var/lib/kubelet/config.yaml":                file("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: false\n"),
		"etc/kubernetes/kubelet.conf.d/10-a.conf":    file("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: 10250\n"),
		"etc/kubernetes/kubelet.conf.d/zz/99-b.conf": file("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\nauthentication: {anonymous: {enabled: true}}\n"),
	}) {
		r, err := Kubelet(context.Background(), s.src, Options{NoPods: true})
		if err != nil {
			t.Fatal(err)
		}
		c := r.Config
		if len(c.DropIns) != 2 || c.AnonymousAuth.Value != true || c.ReadOnlyPort.Value != int64(10255) ||
			c.ReadOnlyPort.Source != "/etc/kubernetes/kubelet.conf.d/zz/99-b.conf" {
			t.Errorf("%s: %d drop-ins, anonymous %v, read-only port %v from %s", s.name, len(c.DropIns), c.AnonymousAuth.Value, c.ReadOnlyPort.Value, c.ReadOnlyPort.Source)
		}
	}
}
