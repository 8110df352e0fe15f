package forensics

import (
	"context"
	"errors"
	"sort"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
)

// The node's kubelet: its report read once and the joins of the runtimes'
// records with what the kubelet's directories say (volumes, tokens,
// static pod manifests). The host analyzer's joins belong beside these,
// in a file of their own.

// kubeletCache holds the node's kubelet report, read once.
type kubeletCache struct {
	done bool
	rep  *kube.KubeletReport
	err  error
}

// Kubelet reads the node's kubelet (kube.Kubelet with the runtimes' pods
// to name pod directories) once and returns the same report on every call;
// kube.ErrNoKubelet when the evidence holds none. Safe for concurrent use;
// a call cancelled through ctx is not remembered.
func (n *Node) Kubelet(ctx context.Context) (*kube.KubeletReport, error) {
	n.kubeMu.Lock()
	defer n.kubeMu.Unlock()
	if n.kube.done {
		return n.kube.rep, n.kube.err
	}
	r, err := kube.Kubelet(ctx, n.Src, kube.Options{RuntimePods: n.Pods()})
	if err != nil && ctx.Err() != nil {
		return r, err
	}
	n.kube = kubeletCache{done: true, rep: r, err: err}
	return r, err
}

// kubeletRoot is the kubelet's --root-dir as the node configures it ("" for
// the default).
func (n *Node) kubeletRoot() string {
	r, err := n.Kubelet(context.Background())
	if err != nil && !errors.Is(err, kube.ErrNoKubelet) || r == nil || r.Config == nil {
		return ""
	}
	return r.Config.RootDir.Value
}

// ContainerMounts returns the node content a container sees besides its
// layers: pod volumes, host paths and (with runtime) the files the runtime
// binds in (/etc/hosts, /etc/resolv.conf …), with the pod's writable
// volumes that its OCI spec omits (container path null). See
// kube.ContainerMounts.
func (n *Node) ContainerMounts(c *model.Container, runtime bool) ([]kube.Mount, []evidence.Warning) {
	ms, ws := kube.ContainerMounts(n.Src, c, kube.MountOptions{RootDir: n.kubeletRoot(), IncludeRuntime: runtime})
	return model.NonNil(ms), ws
}

// TokenClaims is what deadnode shows of a service-account token: where it
// lies, its key id, the sha256 of the token (to pivot on, e.g. against
// API server audit logs) and its decoded claims. The token itself is
// never kept nor printed, and its signature is not verified.
type TokenClaims struct {
	Path         string         `json:"path"`
	EvidencePath string         `json:"evidence_path"`
	Volume       string         `json:"volume"`
	Kid          string         `json:"kid"`
	TokenSHA256  string         `json:"token_sha256"`
	Claims       kube.JWTClaims `json:"claims"`
}

func tokenClaims(ts []kube.Token) []TokenClaims {
	out := []TokenClaims{}
	for _, t := range ts {
		if t.TokenSHA256 == "" {
			continue // not a readable JWT: the kubelet report says why
		}
		out = append(out, TokenClaims{Path: t.Path, EvidencePath: t.EvidencePath, Volume: t.Volume, Kid: t.Header.Kid, TokenSHA256: t.TokenSHA256, Claims: t.Claims})
	}
	return out
}

// PodDetail is a runtime pod with what the kubelet's directories say of
// it: its volumes, the claims of its service-account tokens, and the
// static pod manifest it was started from when it is a static pod's
// mirror (null otherwise).
type PodDetail struct {
	model.Pod
	Volumes              []kube.Volume `json:"volumes"`
	ServiceAccountTokens []TokenClaims `json:"service_account_tokens"`
	StaticPod            *string       `json:"static_pod"`
}

// kubePod is the kubelet's view of one pod.
type kubePod struct {
	dir    *kube.PodDir
	static *kube.StaticPod
}

// kubeletPod joins a pod (by uid, namespace and name) with the kubelet's
// pod directory and static pods. sandbox gives the pod's annotations.
func kubeletPod(r *kube.KubeletReport, ns, name, uid string, annotations map[string]string) kubePod {
	var kp kubePod
	if r == nil {
		return kp
	}
	for i := range r.Pods {
		if uid != "" && r.Pods[i].UID == uid {
			kp.dir = &r.Pods[i]
			break
		}
	}
	kp.static = kube.StaticPodFor(ns, name, annotations, r.StaticPods)
	return kp
}

// sandboxAnnotations maps pod uids to their sandbox's annotations.
func (n *Node) sandboxAnnotations() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, c := range n.Containers() {
		if c.Kind == model.KindSandbox && c.Pod != nil && c.Pod.UID != "" {
			out[c.Pod.UID] = c.Annotations
		}
	}
	return out
}

// PodDetails returns the runtimes' pods joined with the kubelet's pod
// directories and static pods (see PodDetail). Without a kubelet in the
// evidence the pods come with empty volumes and tokens and no warning.
func (n *Node) PodDetails(ctx context.Context) ([]PodDetail, []evidence.Warning) {
	r, err := n.Kubelet(ctx)
	var ws []evidence.Warning
	if err != nil && !errors.Is(err, kube.ErrNoKubelet) {
		ws = append(ws, evidence.WarningOf(err))
	}
	ann := n.sandboxAnnotations()
	out := []PodDetail{}
	for _, p := range n.Pods() {
		d := PodDetail{Pod: p, Volumes: []kube.Volume{}, ServiceAccountTokens: []TokenClaims{}}
		kp := kubeletPod(r, p.Namespace, p.Name, p.UID, ann[p.UID])
		if kp.dir != nil {
			d.Volumes = model.NonNil(kp.dir.Volumes)
			d.ServiceAccountTokens = tokenClaims(kp.dir.Tokens)
		}
		if kp.static != nil {
			s := kp.static.Path
			d.StaticPod = &s
		}
		out = append(out, d)
	}
	return out, ws
}

// ContainerDetail is a container with everything the node knows of it:
// its record (exec sessions joined, as Inspect gives it), its mounts
// (pod volumes, host paths, runtime files), the claims of its pod's
// service-account tokens, and the static pod manifest its pod was
// started from (null when none).
type ContainerDetail struct {
	model.Container
	Mounts               []kube.Mount  `json:"mounts"`
	ServiceAccountTokens []TokenClaims `json:"service_account_tokens"`
	StaticPod            *string       `json:"static_pod"`
}

// InspectDetail finds a container (see FindContainer) and joins what the
// node knows of it (see ContainerDetail). Warnings are about the kubelet's
// files, not the container.
func (n *Node) InspectDetail(ctx context.Context, ref string) (*ContainerDetail, []evidence.Warning, error) {
	c, err := n.Inspect(ref)
	if err != nil {
		return nil, nil, err
	}
	d := &ContainerDetail{Container: *c, ServiceAccountTokens: []TokenClaims{}}
	var ws []evidence.Warning
	d.Mounts, ws = n.ContainerMounts(c, true)
	r, err := n.Kubelet(ctx)
	if err != nil && !errors.Is(err, kube.ErrNoKubelet) {
		ws = append(ws, evidence.WarningOf(err))
	}
	if c.Pod != nil {
		kp := kubeletPod(r, c.Pod.Namespace, c.Pod.Name, c.Pod.UID, n.sandboxAnnotations()[c.Pod.UID])
		if kp.dir != nil {
			d.ServiceAccountTokens = tokenClaims(kp.dir.Tokens)
		}
		if kp.static != nil {
			s := kp.static.Path
			d.StaticPod = &s
		}
	}
	sort.SliceStable(d.Mounts, func(i, j int) bool { return mountAt(d.Mounts[i]) < mountAt(d.Mounts[j]) })
	return d, ws, nil
}
