package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/conf"
	"github.com/deadnode/deadnode/forensics/model"
)

// kubeadm's own drop-in (kubernetes/release, cmd/krel/templates/latest/kubeadm/10-kubeadm.conf).
const kubeadmDropIn = `# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`

const kubeletUnitFile = `[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`

const safeConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
readOnlyPort: 0
staticPodPath: /etc/kubernetes/manifests
`

func kinds(fs []model.Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Severity.String()+":"+f.Kind)
	}
	return strings.Join(s, ",")
}

// The kubeadm layout, the unit from the package (/usr/lib), and an
// attacker's extra args in /etc/default/kubelet: flags beat the file.
func TestFlagsOverConfig(t *testing.T) {
	for _, s := range trees(t, map[string]node{
		"usr/lib/systemd/system/kubelet.service":                     file(kubeletUnitFile),
		"usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf":   file(kubeadmDropIn),
		"etc/systemd/system/multi-user.target.wants/kubelet.service": symlink("/usr/lib/systemd/system/kubelet.service"),
		"var/lib/kubelet/kubeadm-flags.env":                          file(`KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9"` + "\n"),
		"etc/default/kubelet":                                        fileAt("KUBELET_EXTRA_ARGS=--anonymous-auth --authorization-mode AlwaysAllow\n", time.Date(2026, 11, 26, 21, 14, 5, 0, time.UTC)),
		"var/lib/kubelet/config.yaml":                                file(safeConfig),
		"etc/kubernetes/manifests":                                   {dir: true},
	}) {
		t.Run(s.name, func(t *testing.T) {
			r, err := Kubelet(context.Background(), s.src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			u := r.Unit
			if u.Fragment == nil || u.Fragment.Path != "/usr/lib/systemd/system/kubelet.service" || !u.Enabled {
				t.Errorf("unit %+v", u)
			}
			want := "/usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml --container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.9 --anonymous-auth --authorization-mode AlwaysAllow"
			if got := strings.Join(u.ExecStart, " "); got != want {
				t.Errorf("ExecStart\n got %s\nwant %s", got, want)
			}
			if len(u.EnvironmentFiles) != 2 || !u.EnvironmentFiles[0].Exists || !u.EnvironmentFiles[0].Optional || !u.EnvironmentFiles[1].Referenced {
				t.Errorf("environment files %+v", u.EnvironmentFiles)
			}
			c := r.Config
			a := c.AnonymousAuth
			if !a.Value || a.Origin != OriginFlag || a.Source != "--anonymous-auth" || a.DefinedIn != "/etc/default/kubelet" || a.Var != "KUBELET_EXTRA_ARGS" {
				t.Errorf("anonymous_auth %+v", a)
			}
			if len(a.Shadowed) != 1 || a.Shadowed[0].Value != false || a.Shadowed[0].Source != "/var/lib/kubelet/config.yaml" || a.Shadowed[0].Key != "authentication.anonymous.enabled" {
				t.Errorf("anonymous_auth shadowed %+v", a.Shadowed)
			}
			if c.AuthorizationMode.Value != "AlwaysAllow" || c.AuthorizationMode.Origin != OriginFlag {
				t.Errorf("authorization_mode %+v", c.AuthorizationMode)
			}
			if c.ReadOnlyPort.Value != 0 || c.ReadOnlyPort.Origin != OriginConfigFile {
				t.Errorf("read_only_port %+v", c.ReadOnlyPort)
			}
			if c.ContainerRuntimeEndpoint.Value != "unix:///var/run/containerd/containerd.sock" || c.ContainerRuntimeEndpoint.DefinedIn != "/var/lib/kubelet/kubeadm-flags.env" {
				t.Errorf("container_runtime_endpoint %+v", c.ContainerRuntimeEndpoint)
			}
			if c.BootstrapKubeconfig.Value != "/etc/kubernetes/bootstrap-kubelet.conf" || len(r.Kubeconfigs) != 2 || r.Kubeconfigs[0].Exists {
				t.Errorf("kubeconfigs %+v", r.Kubeconfigs)
			}
			if got := kinds(r.Findings); got != "critical:authorization_always_allow,high:anonymous_auth" {
				t.Errorf("findings %s", got)
			}
			if r.Findings[0].Path != "/etc/default/kubelet" || !strings.Contains(r.Findings[0].Why, "anyone who reaches the node") {
				t.Errorf("finding %+v", r.Findings[0])
			}
			var unknown []string
			for _, f := range r.Flags {
				if !f.Known {
					unknown = append(unknown, f.Raw)
				}
			}
			if strings.Join(unknown, ",") != "--pod-infra-container-image=registry.k8s.io/pause:3.9" {
				t.Errorf("unknown flags %q", unknown)
			}
		})
	}
}

// A kubelet on flags alone gets the command line's legacy defaults.
func TestFlagsOnly(t *testing.T) {
	for _, s := range trees(t, map[string]node{
		"etc/systemd/system/kubelet.service": file("[Service]\nExecStart=/usr/local/bin/kubelet \\\n  --kubeconfig=/etc/k.conf \\\n  --pod-manifest-path=/etc/kubernetes/static\n"),
	}) {
		t.Run(s.name, func(t *testing.T) {
			r, err := Kubelet(context.Background(), s.src, Options{})
			if err != ErrNoKubelet && err != nil {
				t.Fatal(err)
			}
			c := r.Config
			if !c.FlagsOnly || c.ConfigFile != nil {
				t.Errorf("flags only: %+v", c)
			}
			if !c.AnonymousAuth.Value || c.AnonymousAuth.Origin != OriginFlagDefault || c.AuthorizationMode.Value != "AlwaysAllow" ||
				c.ReadOnlyPort.Value != 10255 || c.WebhookAuthn.Value || c.StaticPodPath.Value != "/etc/kubernetes/static" || c.StaticPodPath.Origin != OriginFlag {
				t.Errorf("legacy defaults: %+v", c)
			}
			if got := kinds(r.Findings); got != "critical:authorization_always_allow,high:anonymous_auth,medium:no_client_ca,medium:read_only_port,medium:webhook_authn_disabled" {
				t.Errorf("findings %s", got)
			}
			if r.StaticPodPath != "/etc/kubernetes/static" || !r.StaticPodPathConfigured {
				t.Errorf("static pod path %s", r.StaticPodPath)
			}
		})
	}
}

// An earlier copy of the config tells what the setting was before.
func TestBefore(t *testing.T) {
	weak := strings.Replace(strings.Replace(safeConfig, "enabled: false", "enabled: true", 1), "readOnlyPort: 0", "readOnlyPort: 10255", 1)
	old := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, s := range trees(t, map[string]node{
		"etc/systemd/system/kubelet.service": file("[Service]\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml\n"),
		"var/lib/kubelet/config.yaml":        fileAt(weak, time.Date(2026, 11, 26, 21, 14, 5, 0, time.UTC)),
		"var/lib/kubelet/config.yaml.bak":    fileAt(safeConfig, old),
		"var/lib/kubelet/config.yamlx":       file("not a copy"),
	}) {
		t.Run(s.name, func(t *testing.T) {
			r, _ := Kubelet(context.Background(), s.src, Options{})
			c := r.Config
			if len(c.PriorCopies) != 1 || c.PriorCopies[0].Path != "/var/lib/kubelet/config.yaml.bak" {
				t.Fatalf("prior copies %+v", c.PriorCopies)
			}
			b := c.AnonymousAuth.Before
			if b == nil || b.Value != false || b.Source != "/var/lib/kubelet/config.yaml.bak" || !b.Mtime.Equal(old) {
				t.Errorf("anonymous before %+v", b)
			}
			if b := c.ReadOnlyPort.Before; b == nil || b.Value != int64(0) {
				t.Errorf("read-only port before %+v", b)
			}
			if c.AuthorizationMode.Before != nil {
				t.Errorf("authorization mode unchanged, before %+v", c.AuthorizationMode.Before)
			}
			if got := kinds(r.Findings); got != "critical:anonymous_auth,high:read_only_port" {
				t.Errorf("findings %s", got)
			}
			js, _ := json.Marshal(r.Config.ReadOnlyPort)
			if !strings.Contains(string(js), `"before":{"value":0,"origin":"config_file","source":"/var/lib/kubelet/config.yaml.bak"`) {
				t.Errorf("json %s", js)
			}
		})
	}
}

// --config-dir drop-ins go over the file, in name order; kubeadm's
// upgrade backup is a prior copy.
func TestConfigDirAndMasking(t *testing.T) {
	for _, s := range trees(t, map[string]node{
		"usr/lib/systemd/system/kubelet.service":                   file(kubeletUnitFile),
		"usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": file(kubeadmDropIn),
		// Same name in /etc: hides the package's drop-in.
		"etc/systemd/system/kubelet.service.d/10-kubeadm.conf":                     file("[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --config-dir=/etc/kubernetes/kubelet.conf.d\n"),
		"var/lib/kubelet/config.yaml":                                              file(safeConfig),
		"etc/kubernetes/kubelet.conf.d/20-b.conf":                                  file("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\n"),
		"etc/kubernetes/kubelet.conf.d/10-a.conf":                                  file("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 4194\nauthentication:\n  webhook:\n    enabled: false\n"),
		"etc/kubernetes/kubelet.conf.d/ignored.yaml":                               file("readOnlyPort: 1\n"),
		"etc/kubernetes/tmp/kubeadm-kubelet-config2026-11-01-10-00-00/config.yaml": file(safeConfig),
	}) {
		t.Run(s.name, func(t *testing.T) {
			r, _ := Kubelet(context.Background(), s.src, Options{})
			u := r.Unit
			if len(u.DropIns) != 1 || u.DropIns[0].Path != "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf" {
				t.Errorf("drop-ins %+v", u.DropIns)
			}
			c := r.Config
			if len(c.DropIns) != 2 || c.DropIns[0].Path != "/etc/kubernetes/kubelet.conf.d/10-a.conf" {
				t.Errorf("config drop-ins %+v", c.DropIns)
			}
			p := c.ReadOnlyPort
			if p.Value != 10255 || p.Origin != OriginConfigDropIn || p.Source != "/etc/kubernetes/kubelet.conf.d/20-b.conf" || len(p.Shadowed) != 2 || p.Shadowed[1].Value != int64(4194) {
				t.Errorf("read_only_port %+v", p)
			}
			if c.WebhookAuthn.Value || c.WebhookAuthn.Origin != OriginConfigDropIn {
				t.Errorf("webhook %+v", c.WebhookAuthn)
			}
			if len(c.PriorCopies) != 1 || !strings.HasPrefix(c.PriorCopies[0].Path, "/etc/kubernetes/tmp/kubeadm-kubelet-config") {
				t.Errorf("prior copies %+v", c.PriorCopies)
			}
			// Drop-in values are not the file's: no "before" from the backup.
			if p.Before != nil {
				t.Errorf("before %+v", p.Before)
			}
			if got := kinds(r.Findings); got != "medium:read_only_port,low:webhook_authn_disabled" {
				t.Errorf("findings %s", got)
			}
		})
	}
}

func TestMaskedUnit(t *testing.T) {
	for _, s := range trees(t, map[string]node{
		"etc/systemd/system/kubelet.service":     symlink("/dev/null"),
		"usr/lib/systemd/system/kubelet.service": file(kubeletUnitFile),
	}) {
		u := ReadUnit(s.src)
		if !u.Masked || u.Fragment != nil || len(u.ExecStart) != 0 {
			t.Errorf("%s: masked unit %+v", s.name, u)
		}
	}
}

func TestExpandExec(t *testing.T) {
	env := map[string]EnvVar{
		"A":  {Name: "A", Value: "--x=1 --y='two words'", From: "/a"},
		"B":  {Name: "B", Value: "b c", From: "/b"},
		"NO": {Name: "NO", Value: "", From: "/n"},
	}
	args, err := expandExec(`-@/usr/bin/kubelet argv0 $A "--z=${B}" $UNSET ${B}x $NO "quoted arg" \"esc`, "/unit", env)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range args {
		got = append(got, fmt.Sprintf("%s<%s|%s>", a.Value, a.Var, a.From))
	}
	want := []string{"/usr/bin/kubelet<|/unit>", "--x=1<A|/a>", "--y=two words<A|/a>", "--z=b c<B|/b>", "b cx<B|/b>", "quoted arg<|/unit>", `"esc<|/unit>`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	vars := parseEnvFile("# c\n; c\nexport A=\"q \\\"x\\\"\"\nB='s $x'\nC=plain # comment\nBAD LINE\nD=cont\\\ninued\n")
	var kv []string
	for _, v := range vars {
		kv = append(kv, v.Name+"="+v.Value)
	}
	if strings.Join(kv, "|") != `A=q "x"|B=s $x|C=plain|D=continued` {
		t.Errorf("env file %q", kv)
	}
}

// A drop-in padded past the assignments ParseUnit reads hides what comes
// after from the report, so the unit says so instead of staying silent.
func TestUnitDropInPastBound(t *testing.T) {
	pad := "[Service]\n" + strings.Repeat("X=1\n", conf.MaxDirectives) + "ExecStart=\nExecStart=/tmp/.x/kubelet\n"
	for _, s := range trees(t, map[string]node{
		"usr/lib/systemd/system/kubelet.service":              file(kubeletUnitFile),
		"etc/systemd/system/kubelet.service.d/99-hidden.conf": file(pad),
	}) {
		u := ReadUnit(s.src)
		want := "/etc/systemd/system/kubelet.service.d/99-hidden.conf: a line over 1048576 bytes, a value over 1048576 bytes or more than 65536 assignments: the rest was not read as systemd would"
		if !slices.Contains(evidence.WarningLines(u.Warnings), want) {
			t.Errorf("%s: warnings %q", s.name, u.Warnings)
		}
		if i := slices.IndexFunc(u.Warnings, func(w evidence.Warning) bool { return w.String() == want }); i >= 0 {
			if w := u.Warnings[i]; w.File != "/etc/systemd/system/kubelet.service.d/99-hidden.conf" || w.Offset != -1 || !strings.HasPrefix(w.Msg, "a line over") {
				t.Errorf("%s: warning %#v", s.name, w)
			}
		}
	}
}
