package kube

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// StaticPod is one pod of a static pod manifest: what it runs and what it
// can do to the node.
type StaticPod struct {
	FileInfo
	Document int `json:"document"` // 0-based YAML document of the file
	// Configured is true when the directory is the kubelet's
	// staticPodPath (false: the default directory, read although the
	// config read here does not name it).
	Configured bool `json:"configured"`
	// IgnoredByKubelet says the kubelet does not run this document (a
	// hidden file, a document after the first, not a Pod), and why.
	IgnoredByKubelet bool   `json:"ignored_by_kubelet"`
	IgnoredWhy       string `json:"ignored_why,omitempty"`

	APIVersion  string          `json:"api_version"`
	Kind        string          `json:"kind"`
	Name        string          `json:"name"`
	Namespace   string          `json:"namespace"`
	UID         string          `json:"uid,omitempty"`
	Images      []string        `json:"images"`
	Containers  []ContainerSpec `json:"containers"`
	Privileged  bool            `json:"privileged"` // any container
	HostPID     bool            `json:"host_pid"`
	HostNetwork bool            `json:"host_network"`
	HostIPC     bool            `json:"host_ipc"`
	// Capabilities are the capabilities added by any container.
	Capabilities   []string        `json:"capabilities"`
	HostPathMounts []HostPathMount `json:"host_path_mounts"`
	// Command is the first container's command and args.
	Command []string `json:"command"`

	// KnownComponent names the well-known component this pod is (by name
	// and image registry), or "".
	KnownComponent string `json:"known_component"`
	// Powers say what the pod can do to the node, one reason each.
	Powers   []string           `json:"powers"`
	Severity model.Severity     `json:"severity"`
	Why      string             `json:"why"`
	Warnings []evidence.Warning `json:"warnings"`
}

// ContainerSpec is a container of a manifest.
type ContainerSpec struct {
	Name                     string            `json:"name"`
	Image                    string            `json:"image"`
	Init                     bool              `json:"init"`
	Command                  []string          `json:"command"`
	Args                     []string          `json:"args"`
	Privileged               bool              `json:"privileged"`
	AllowPrivilegeEscalation *bool             `json:"allow_privilege_escalation"`
	RunAsUser                *int64            `json:"run_as_user"`
	CapabilitiesAdded        []string          `json:"capabilities_added"`
	VolumeMounts             []VolumeMountSpec `json:"volume_mounts"`
}

// VolumeMountSpec is a container's volumeMount.
type VolumeMountSpec struct {
	Name      string `json:"name"`
	MountPath string `json:"mount_path"`
	ReadOnly  bool   `json:"read_only"`
	SubPath   string `json:"sub_path,omitempty"`
}

// HostPathMount is a hostPath volume as a container mounts it.
type HostPathMount struct {
	Volume    string `json:"volume"`
	Path      string `json:"path"` // on the host
	Type      string `json:"type,omitempty"`
	MountPath string `json:"mount_path"`
	Container string `json:"container"`
	ReadOnly  bool   `json:"read_only"`
}

// StaticPodOptions tune StaticPods.
type StaticPodOptions struct {
	// Path is the static pod path (a directory or one file) as the node
	// names it; default /etc/kubernetes/manifests.
	Path string
	// Configured says Path is the kubelet's configured staticPodPath.
	Configured bool
}

// StaticPods reads every manifest of the static pod path: each file (not
// subdirectories, as the kubelet), every YAML document of it, bounded.
func StaticPods(ctx context.Context, src evidence.Source, opt StaticPodOptions) ([]StaticPod, []evidence.Warning) {
	p := opt.Path
	if p == "" {
		p = pathutil.Abs(defaultStaticPodPath)
	}
	var out []StaticPod
	var warns []evidence.Warning
	name, err := hostPath(p, "/")
	if err != nil {
		return nil, []evidence.Warning{evidence.Warnf("", -1, "static pod path %q: %v", p, err)}
	}
	_, res, st, err := statPath(src, name)
	if err != nil {
		return nil, []evidence.Warning{evidence.Warnf("", -1, "static pod path %s: %v", pathutil.Abs(name), err)}
	}
	if st == nil {
		return nil, nil
	}
	var files []string
	if st.Mode.IsDir() {
		ents, err := src.ReadDir(res)
		if err != nil {
			return nil, []evidence.Warning{evidence.Warnf("", -1, "static pod path %s: %v", pathutil.Abs(name), err)}
		}
		for _, e := range ents {
			files = append(files, name+"/"+path.Base(e.Name))
		}
	} else {
		files = []string{name}
	}
	for i, f := range files {
		if ctx.Err() != nil {
			warns = append(warns, evidence.WarningOf(ctx.Err()))
			break
		}
		if i >= MaxManifests {
			warns = append(warns, evidence.Warnf("", -1, "static pod path %s: more than %d files, the rest not read", pathutil.Abs(name), MaxManifests))
			break
		}
		pods, w := readManifest(src, f, opt.Configured)
		out = append(out, pods...)
		warns = append(warns, w...)
	}
	nonNil(&out)
	return out, warns
}

func readManifest(src evidence.Source, name string, configured bool) ([]StaticPod, []evidence.Warning) {
	base := StaticPod{Configured: configured}
	fi, _, st, err := statPath(src, name)
	base.FileInfo = fi
	if err != nil {
		return nil, []evidence.Warning{evidence.Warnf(pathutil.Abs(name), -1, "%v", err)}
	}
	if st == nil {
		return nil, []evidence.Warning{evidence.Warnf(pathutil.Abs(name), -1, "dangling link to %s", fi.EvidencePath)}
	}
	if st.Mode.IsDir() {
		// The kubelet does not recurse; neither do we, but say so.
		return nil, []evidence.Warning{evidence.Warnf(pathutil.Abs(name), -1, "a directory in the static pod path (the kubelet does not read it)")}
	}
	if !st.Mode.IsRegular() {
		return nil, []evidence.Warning{evidence.Warnf(pathutil.Abs(name), -1, "not a regular file (%s)", st.Mode)}
	}
	hidden := strings.HasPrefix(path.Base(name), ".")
	if hidden {
		base.IgnoredByKubelet, base.IgnoredWhy = true, "hidden file: the kubelet reads only names not starting with a dot"
	}
	b, rfi, err := readSmall(src, name, MaxConfigBytes)
	if err != nil {
		p := base
		p.Warnings = append(p.Warnings, evidence.WarningOf(err))
		judgeUnreadable(&p, fmt.Sprintf("deadnode did not read it: %v; the kubelet may still run it", err), model.SeverityMedium)
		return []StaticPod{p}, nil
	}
	base.FileInfo = rfi
	docs := splitYAMLDocuments(b)
	var out []StaticPod
	first := true
	for i, d := range docs {
		if i >= MaxDocuments {
			out = append(out, base)
			out[len(out)-1].Warnings = []evidence.Warning{evidence.Warnf("", -1, "more than %d YAML documents, the rest not read", MaxDocuments)}
			break
		}
		if isBlankYAML(d) {
			continue
		}
		p := base
		p.Document = i
		if !first && !p.IgnoredByKubelet {
			p.IgnoredByKubelet, p.IgnoredWhy = true, "a document after the first: the kubelet decodes one pod per file"
		}
		first = false
		doc, err := decodeYAML(d)
		if err != nil || doc == nil {
			if err == nil {
				err = fmt.Errorf("empty document")
			}
			p.Warnings = append(p.Warnings, evidence.WarningOf(&evidence.FormatError{File: pathutil.Abs(name), Offset: -1, Msg: fmt.Sprintf("YAML document %d", i), Err: err}))
			judgeUnreadable(&p, fmt.Sprintf("document %d is not a readable pod (%v); the kubelet cannot decode it either", i, err), model.SeverityLow)
			out = append(out, p)
			continue
		}
		parsePodManifest(&p, doc)
		if p.Kind != "Pod" && !p.IgnoredByKubelet {
			p.IgnoredByKubelet, p.IgnoredWhy = true, fmt.Sprintf("kind %q: the kubelet runs only Pod manifests", p.Kind)
		}
		judgeStaticPod(&p)
		out = append(out, p)
	}
	return out, nil
}

// splitYAMLDocuments splits at "---" separator lines, as apimachinery's
// YAML reader does.
func splitYAMLDocuments(b []byte) [][]byte {
	var docs [][]byte
	start := 0
	for i := 0; i <= len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		end := len(b)
		if j >= 0 {
			end = i + j
		}
		line := bytes.TrimRight(b[i:end], "\r")
		if bytes.HasPrefix(line, []byte("---")) && (len(line) == 3 || line[3] == ' ' || line[3] == '\t') {
			docs = append(docs, b[start:i])
			start = end + 1
		}
		if j < 0 {
			break
		}
		i = end + 1
	}
	if start <= len(b) {
		docs = append(docs, b[min(start, len(b)):])
	}
	return docs
}

func isBlankYAML(d []byte) bool {
	for _, l := range bytes.Split(d, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

func parsePodManifest(p *StaticPod, doc map[string]any) {
	p.APIVersion, p.Kind = getString(doc, "apiVersion"), getString(doc, "kind")
	p.Name, p.Namespace, p.UID = getString(doc, "metadata", "name"), getString(doc, "metadata", "namespace"), getString(doc, "metadata", "uid")
	if p.Namespace == "" {
		p.Namespace = "default" // the kubelet defaults a static pod's namespace
	}
	spec := getMap(doc, "spec")
	p.HostPID, _ = getBool(spec, "hostPID")
	p.HostNetwork, _ = getBool(spec, "hostNetwork")
	p.HostIPC, _ = getBool(spec, "hostIPC")
	hostPaths := map[string][2]string{} // volume -> path, type
	for _, v := range getList(spec, "volumes") {
		vm, _ := v.(map[string]any)
		if hp := getMap(vm, "hostPath"); hp != nil {
			hostPaths[getString(vm, "name")] = [2]string{getString(hp, "path"), getString(hp, "type")}
		}
	}
	caps := map[string]bool{}
	images := map[string]bool{}
	for _, list := range []struct {
		key  string
		init bool
	}{{"initContainers", true}, {"containers", false}, {"ephemeralContainers", false}} {
		for _, cv := range getList(spec, list.key) {
			cm, _ := cv.(map[string]any)
			c := ContainerSpec{Name: getString(cm, "name"), Image: getString(cm, "image"), Init: list.init,
				Command: getStrings(cm, "command"), Args: getStrings(cm, "args")}
			c.Privileged, _ = getBool(cm, "securityContext", "privileged")
			if b, ok := getBool(cm, "securityContext", "allowPrivilegeEscalation"); ok {
				c.AllowPrivilegeEscalation = &b
			}
			if n, ok := getInt(cm, "securityContext", "runAsUser"); ok {
				c.RunAsUser = &n
			}
			for _, capName := range getStrings(cm, "securityContext", "capabilities", "add") {
				c.CapabilitiesAdded = append(c.CapabilitiesAdded, capName)
				caps[normCap(capName)] = true
			}
			for _, mv := range getList(cm, "volumeMounts") {
				mm, _ := mv.(map[string]any)
				vmnt := VolumeMountSpec{Name: getString(mm, "name"), MountPath: getString(mm, "mountPath"), SubPath: getString(mm, "subPath")}
				vmnt.ReadOnly, _ = getBool(mm, "readOnly")
				c.VolumeMounts = append(c.VolumeMounts, vmnt)
				if hp, ok := hostPaths[vmnt.Name]; ok {
					hpath := hp[0]
					if vmnt.SubPath != "" {
						hpath = path.Join(hpath, vmnt.SubPath)
					}
					p.HostPathMounts = append(p.HostPathMounts, HostPathMount{Volume: vmnt.Name, Path: hpath, Type: hp[1],
						MountPath: vmnt.MountPath, Container: c.Name, ReadOnly: vmnt.ReadOnly})
				}
			}
			p.Privileged = p.Privileged || c.Privileged
			if c.Image != "" && !images[c.Image] {
				images[c.Image] = true
				p.Images = append(p.Images, c.Image)
			}
			if p.Command == nil && !c.Init {
				p.Command = append(append([]string{}, c.Command...), c.Args...)
			}
			p.Containers = append(p.Containers, c)
		}
	}
	for c := range caps {
		p.Capabilities = append(p.Capabilities, c)
	}
	sort.Strings(p.Capabilities)
}

// normCap writes a capability as the kubelet's users do: without CAP_.
func normCap(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}

// Annotations the kubelet puts on a static pod's sandbox (and mirror pod).
const (
	annotationConfigSource = "kubernetes.io/config.source" // "file" for a static pod from the manifest path, "http" from the URL
	annotationConfigHash   = "kubernetes.io/config.hash"
)

// StaticPodFor returns the manifest a runtime pod came from: a pod whose
// sandbox annotations say config.source "file" (or, without annotations,
// a pod in the manifest's namespace), named as the manifest or as the
// manifest's name with the node name appended (the kubelet's naming of
// static pods). Nil when no manifest read here matches.
func StaticPodFor(namespace, name string, annotations map[string]string, pods []StaticPod) *StaticPod {
	if src, ok := annotations[annotationConfigSource]; ok && src != "file" {
		return nil
	}
	var best *StaticPod
	for i := range pods {
		p := &pods[i]
		if p.Name == "" || p.IgnoredByKubelet || p.Namespace != namespace {
			continue
		}
		if name == p.Name || strings.HasPrefix(name, p.Name+"-") {
			if best == nil || len(p.Name) > len(best.Name) {
				best = p
			}
		}
	}
	return best
}

// EventTime is when the manifest last changed (its mtime): where a ranked
// case (forensics.Triage) places the finding in time.
func (p *StaticPod) EventTime() time.Time { return p.Mtime.Time }
