package kube

import (
	"fmt"
	"strings"

	"github.com/deadnode/deadnode/forensics/model"
)

// A well-known static pod: one of the components that kubeadm and the
// common distributions run as static pods, recognised by its name (in
// kube-system) and by every image coming from the project's own registry
// under the component's repository name; with the host access it needs.
// A component pulled through a mirror is not recognised (it is judged as
// unknown, at least medium): the examiner can tell a mirror from an
// attacker's registry, deadnode cannot.
type component struct {
	name       string
	images     []string // repository paths under one of the registries
	registries []string
	// expected host access
	hostNetwork, hostPID, hostIPC, privileged bool
	caps                                      []string
	hostPaths                                 []string // prefixes
}

var k8sRegistries = []string{
	"registry.k8s.io", "k8s.gcr.io", "gcr.io/google_containers", "gcr.io/google-containers",
	"public.ecr.aws/eks-distro/kubernetes", "public.ecr.aws/eks-distro/etcd-io", "mcr.microsoft.com/oss/kubernetes",
}

var caPaths = []string{"/etc/ssl/certs", "/etc/pki", "/etc/ca-certificates", "/usr/share/ca-certificates", "/usr/local/share/ca-certificates"}

var knownComponents = []component{
	{name: "kube-apiserver", images: []string{"kube-apiserver"}, registries: k8sRegistries, hostNetwork: true,
		hostPaths: append([]string{"/etc/kubernetes", "/var/log/kubernetes", "/var/log/kube-apiserver"}, caPaths...)},
	{name: "kube-controller-manager", images: []string{"kube-controller-manager"}, registries: k8sRegistries, hostNetwork: true,
		hostPaths: append([]string{"/etc/kubernetes", "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"}, caPaths...)},
	{name: "kube-scheduler", images: []string{"kube-scheduler"}, registries: k8sRegistries, hostNetwork: true,
		hostPaths: []string{"/etc/kubernetes"}},
	{name: "etcd", images: []string{"etcd"}, registries: k8sRegistries, hostNetwork: true,
		hostPaths: []string{"/var/lib/etcd", "/etc/kubernetes/pki/etcd"}},
	{name: "kube-proxy", images: []string{"kube-proxy"}, registries: k8sRegistries, hostNetwork: true, privileged: true,
		hostPaths: []string{"/lib/modules", "/run/xtables.lock", "/var/lib/kube-proxy", "/etc/kubernetes", "/var/log"}},
	// Upstream's DaemonSet runs it privileged, with /var/log, /dev/kmsg
	// and /etc/localtime read-only.
	{name: "node-problem-detector", images: []string{"node-problem-detector/node-problem-detector", "node-problem-detector"},
		registries: k8sRegistries, hostNetwork: true, privileged: true, hostPaths: []string{"/var/log", "/dev/kmsg", "/etc/localtime", "/run/log"}},
	{name: "kube-vip", images: []string{"kube-vip/kube-vip"}, registries: []string{"ghcr.io", "docker.io/plndr"}, hostNetwork: true,
		caps: []string{"NET_ADMIN", "NET_RAW", "SYS_TIME"}, hostPaths: []string{"/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf"}},
}

// imageRepo normalises an image reference to registry/repository, without
// tag or digest (docker.io/library for bare names).
func imageRepo(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 && !strings.Contains(ref[i:], "/") {
		ref = ref[:i]
	}
	first, rest, ok := strings.Cut(ref, "/")
	if !ok {
		return "docker.io/library/" + ref
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + ref
	}
	return first + "/" + rest
}

func (c *component) matches(p *StaticPod) bool {
	if p.Namespace != "kube-system" || !(p.Name == c.name || strings.HasPrefix(p.Name, c.name+"-")) || len(p.Images) == 0 {
		return false
	}
	for _, im := range p.Images {
		repo := imageRepo(im)
		ok := false
		for _, r := range c.registries {
			for _, n := range c.images {
				if repo == r+"/"+n {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// sensitiveHostPaths give the node away when a container can write them
// (and its secrets when it can read them).
var sensitiveHostPaths = []string{
	"/etc", "/root", "/home", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/opt",
	"/proc", "/sys", "/dev", "/run", "/var/run",
	"/var/lib/kubelet", "/var/lib/containerd", "/var/lib/docker", "/var/lib/containers", "/var/lib/etcd",
	"/var/spool/cron",
}

func under(p, dir string) bool {
	p, dir = strings.TrimRight(p, "/"), strings.TrimRight(dir, "/")
	if dir == "" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func sensitive(p string) bool {
	for _, s := range sensitiveHostPaths {
		if under(p, s) || under(s, p) {
			return true
		}
	}
	return false
}

const (
	powerWeak = iota + 1
	powerModerate
	powerStrong
)

type power struct {
	level  int
	reason string
	// what a component's profile is checked against
	key, capName, hostPath string
}

var strongCaps = map[string]bool{"ALL": true, "SYS_ADMIN": true, "SYS_MODULE": true}
var moderateCaps = map[string]bool{"DAC_READ_SEARCH": true, "DAC_OVERRIDE": true, "SYS_RAWIO": true, "BPF": true, "PERFMON": true,
	"NET_ADMIN": true, "SYS_PTRACE": true, "SYS_BOOT": true, "SYS_TIME": true, "MAC_ADMIN": true, "MAC_OVERRIDE": true,
	"SYSLOG": true, "SETFCAP": true, "LINUX_IMMUTABLE": true, "NET_RAW": true}

func podPowers(p *StaticPod) []power {
	var out []power
	for _, c := range p.Containers {
		if c.Privileged {
			out = append(out, power{powerStrong, fmt.Sprintf("container %s is privileged (every capability, the host's devices, no seccomp/AppArmor)", c.Name), "privileged", "", ""})
		}
	}
	if p.HostPID {
		out = append(out, power{powerStrong, "hostPID: it sees every process of the node and can signal them, read their environment and enter their namespaces (nsenter -t 1)", "host_pid", "", ""})
	}
	if p.HostNetwork {
		out = append(out, power{powerModerate, "hostNetwork: it uses the node's network, reaching services bound to localhost", "host_network", "", ""})
	}
	if p.HostIPC {
		out = append(out, power{powerModerate, "hostIPC: it shares the node's System V IPC and /dev/shm", "host_ipc", "", ""})
	}
	for _, c := range p.Capabilities {
		lvl := powerWeak
		switch {
		case strongCaps[c]:
			lvl = powerStrong
		case c == "SYS_PTRACE" && p.HostPID:
			lvl = powerStrong
		case moderateCaps[c]:
			lvl = powerModerate
		}
		out = append(out, power{lvl, "adds capability " + c, "cap", c, ""})
	}
	for _, m := range p.HostPathMounts {
		mode := "read-write"
		if m.ReadOnly {
			mode = "read-only"
		}
		lvl := powerWeak
		what := ""
		switch {
		case strings.TrimRight(m.Path, "/") == "":
			lvl, what = powerStrong, ": the node's whole filesystem"
		case sensitive(m.Path) && !m.ReadOnly:
			lvl, what = powerStrong, ": a system or runtime directory it can change"
		case sensitive(m.Path):
			lvl, what = powerModerate, ": a system or runtime directory it can read"
		case !m.ReadOnly:
			lvl = powerModerate
		}
		out = append(out, power{lvl, fmt.Sprintf("hostPath %s mounted %s at %s in %s%s", m.Path, mode, m.MountPath, m.Container, what), "host_path", "", m.Path})
	}
	return out
}

func (c *component) expects(pw power) bool {
	switch pw.key {
	case "privileged":
		return c.privileged
	case "host_pid":
		return c.hostPID
	case "host_network":
		return c.hostNetwork
	case "host_ipc":
		return c.hostIPC
	case "cap":
		for _, x := range c.caps {
			if x == pw.capName {
				return true
			}
		}
	case "host_path":
		if strings.TrimRight(pw.hostPath, "/") == "" {
			return false
		}
		for _, h := range c.hostPaths {
			if under(pw.hostPath, h) {
				return true
			}
		}
	}
	return false
}

// powerSeverity ranks host access: two or more strong routes to the node
// (privileged, SYS_ADMIN/ALL/SYS_MODULE, hostPID, hostPath /, a writable
// system directory) are critical — the node is the pod's; one is high;
// namespaces and capabilities that widen reach without handing over the
// node (hostNetwork, hostIPC, NET_ADMIN, a read-only system directory, a
// writable ordinary directory) are medium; a read-only ordinary
// directory is low.
func powerSeverity(ps []power) model.Severity {
	strong, top := 0, 0
	for _, p := range ps {
		if p.level == powerStrong {
			strong++
		}
		top = max(top, p.level)
	}
	switch {
	case strong >= 2:
		return model.SeverityCritical
	case strong == 1:
		return model.SeverityHigh
	case top == powerModerate:
		return model.SeverityMedium
	case top == powerWeak:
		return model.SeverityLow
	}
	return model.SeverityInfo
}

func reasons(ps []power) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.reason)
	}
	return out
}

func judgeStaticPod(p *StaticPod) {
	ps := podPowers(p)
	p.Powers = reasons(ps)
	who := fmt.Sprintf("static pod %s/%s (%s)", p.Namespace, p.Name, strings.Join(p.Images, ", "))
	var comp *component
	for i := range knownComponents {
		if knownComponents[i].matches(p) {
			comp = &knownComponents[i]
			break
		}
	}
	if comp != nil {
		p.KnownComponent = comp.name
		var unexpected []power
		for _, pw := range ps {
			if !comp.expects(pw) {
				unexpected = append(unexpected, pw)
			}
		}
		if len(unexpected) == 0 {
			p.Severity = model.SeverityInfo
			if len(ps) == 0 {
				p.Why = fmt.Sprintf("%s is the well-known component %s from its own registry, with no host access", who, comp.name)
			} else {
				p.Why = fmt.Sprintf("%s is the well-known component %s from its own registry; its host access (%s) is what that component needs", who, comp.name, strings.Join(shortPowers(ps), ", "))
			}
		} else {
			p.Severity = max(powerSeverity(unexpected), model.SeverityMedium)
			p.Why = fmt.Sprintf("%s looks like the well-known %s but has host access that component does not need: %s", who, comp.name, strings.Join(reasons(unexpected), "; "))
		}
	} else {
		sev := powerSeverity(ps)
		p.Severity = max(sev, model.SeverityMedium)
		switch {
		case sev == model.SeverityCritical:
			p.Why = fmt.Sprintf("%s is not a well-known node component and holds the node: %s. The kubelet runs it outside the API server's admission control, and restarts it forever", who, strings.Join(p.Powers, "; "))
		case len(ps) > 0:
			p.Why = fmt.Sprintf("%s is not a well-known node component (the kubelet runs it without admission control and restarts it forever), with host access: %s", who, strings.Join(p.Powers, "; "))
		default:
			p.Why = fmt.Sprintf("%s is not a well-known node component: a manifest in the static pod directory is run by the kubelet without admission control and restarted forever, a known persistence route", who)
		}
	}
	if !p.Configured {
		p.Why += "; the kubelet configuration read here does not name this directory as staticPodPath, so it may not run"
	}
	if p.IgnoredByKubelet {
		if p.Severity > model.SeverityMedium {
			p.Severity = model.SeverityMedium
		}
		p.Severity = max(p.Severity, model.SeverityLow)
		p.Why += "; the kubelet ignores it (" + p.IgnoredWhy + "), so it is staged rather than running"
	}
}

func shortPowers(ps []power) []string {
	var out []string
	for _, p := range ps {
		switch p.key {
		case "privileged":
			out = append(out, "privileged")
		case "host_pid":
			out = append(out, "hostPID")
		case "host_network":
			out = append(out, "hostNetwork")
		case "host_ipc":
			out = append(out, "hostIPC")
		case "cap":
			out = append(out, "capability "+p.capName)
		case "host_path":
			out = append(out, "hostPath "+p.hostPath)
		}
	}
	return out
}

func judgeUnreadable(p *StaticPod, why string, sev model.Severity) {
	p.Severity = sev
	p.Why = fmt.Sprintf("%s in the static pod directory: %s", p.Path, why)
	if !p.Configured {
		p.Why += "; the kubelet configuration read here does not name this directory as staticPodPath"
	}
	if p.IgnoredByKubelet {
		p.Why += " (" + p.IgnoredWhy + ")"
	}
}

// Finding is the static pod's judgement.
func (p StaticPod) Finding() model.Finding {
	kind := "static_pod"
	switch {
	case p.Kind == "" && p.Name == "":
		kind = "unreadable_manifest"
	case p.KnownComponent == "":
		kind = "unknown_static_pod"
	case p.Severity > model.SeverityInfo:
		kind = "static_pod_unexpected_access"
	}
	pod := ""
	if p.Name != "" {
		pod = p.Namespace + "/" + p.Name
	}
	refs := []string{}
	if p.SHA256 != "" {
		refs = append(refs, "sha256:"+p.SHA256)
	}
	for _, im := range p.Images {
		refs = append(refs, "image:"+im)
	}
	if kind == "unknown_static_pod" {
		refs = append(refs, "attack:T1610") // Deploy Container
	}
	if p.Severity >= model.SeverityHigh {
		refs = append(refs, "attack:T1611") // Escape to Host
	}
	summary := fmt.Sprintf("static pod %s", pod)
	if pod == "" {
		summary = "static pod manifest " + p.Path
	}
	if len(p.Images) > 0 {
		summary += " image " + strings.Join(p.Images, ",")
	}
	if sp := shortPowers(podPowers(&p)); len(sp) > 0 {
		summary += ": " + strings.Join(sp, ", ")
	}
	if p.KnownComponent != "" {
		summary += " (known: " + p.KnownComponent + ")"
	}
	return model.Finding{Severity: p.Severity, Analyzer: "static_pod", Kind: kind, Why: p.Why, Pod: pod, Path: p.Path,
		Summary: summary, EvidencePath: p.EvidencePath, Refs: refs, Details: &p}
}
