package kube

import (
	"context"
	"fmt"
	"io/fs"
	"iter"
	"path"
	"slices"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// Mount kinds.
const (
	MountVolume   = "volume"    // a pod volume under the kubelet's pods directory
	MountHostPath = "host_path" // a directory or file of the node
	MountRuntime  = "runtime"   // a file the runtime or kubelet makes for every container (/etc/hosts, /dev/shm, termination log)
)

// Mount is node content a container sees at a path of its own: a pod
// volume, a host path, or a runtime-made file.
type Mount struct {
	ContainerID string `json:"container_id"`
	PodUID      string `json:"pod_uid"`
	// ContainerPath is where the container sees it; null when the spec
	// does not say (a writable volume of the pod attributed to the
	// container although its spec does not list it).
	ContainerPath *string `json:"container_path"`
	// Origin is "volume:<name>", "host:<path>" or "runtime:<what>".
	Origin     string `json:"origin"`
	Kind       string `json:"kind"`
	Volume     string `json:"volume,omitempty"`
	Plugin     string `json:"plugin,omitempty"`
	VolumeKind string `json:"volume_kind,omitempty"`
	// EvidencePath is where the content lies in the evidence ("" when it
	// is not there).
	EvidencePath string `json:"evidence_path"`
	Exists       bool   `json:"exists"`
	// SpecSource is the source as the OCI spec records it.
	SpecSource string `json:"spec_source,omitempty"`
	ReadOnly   bool   `json:"read_only"`
	// Writable is true when the container could write node content here:
	// a read-write emptyDir or host path.
	Writable bool   `json:"writable"`
	FromSpec bool   `json:"from_spec"`
	Note     string `json:"note,omitempty"`
}

// ContainerPathOf returns the container path of a file at rel inside the
// mount, or "" when the mount's container path is unknown.
func (m Mount) ContainerPathOf(rel string) string {
	if m.ContainerPath == nil {
		return ""
	}
	if rel == "" || rel == "." {
		return *m.ContainerPath
	}
	return path.Join(*m.ContainerPath, rel)
}

// MountOptions tune ContainerMounts.
type MountOptions struct {
	// RootDir is the kubelet's --root-dir (default /var/lib/kubelet).
	RootDir string
	// IncludeRuntime keeps the runtime-made files (/etc/hosts,
	// /etc/resolv.conf, /dev/shm, the termination log).
	IncludeRuntime bool
}

// runtimeDirs mark a bind source as the runtime's own.
var runtimeDirs = []string{
	"/io.containerd.grpc.v1.cri/sandboxes/", "/io.containerd.grpc.v1.cri/containers/", "/io.containerd.runtime.v2.task/",
	"/var/lib/docker/containers/", "/run/containers/storage/", "/var/run/containers/storage/",
	"/var/lib/containers/storage/overlay-containers/", "/run/containerd/", "/var/run/containerd/", "/run/crio/", "/var/run/crio/",
}

// ContainerMounts returns the node content a container sees: the bind
// mounts of its OCI spec classified (pod volume, host path, runtime file),
// and the pod's writable volumes (emptyDir) that the spec does not list,
// attributed with a null container path (containers created outside the
// kubelet, e.g. with crictl, lack the mount a kubelet would add).
func ContainerMounts(src evidence.Source, c *model.Container, opt MountOptions) ([]Mount, []evidence.Warning) {
	var out []Mount
	var warns []evidence.Warning
	root := PodOptions{RootDir: opt.RootDir}.rootDir()
	uid := ""
	if c.Pod != nil {
		uid = c.Pod.UID
	}
	listed := map[string]bool{} // volume names the spec mounts
	if c.Spec != nil {
		for _, sm := range c.Spec.Mounts {
			if !isBind(sm) {
				continue
			}
			m := classifyMount(src, sm, uid, root)
			m.ContainerID, m.PodUID = c.ID, uid
			if m.Kind == MountRuntime && !opt.IncludeRuntime {
				continue
			}
			if m.Volume != "" {
				listed[m.Plugin+"/"+m.Volume] = true
			}
			out = append(out, m)
		}
	}
	if uid == "" || c.Kind == model.KindSandbox {
		return out, warns
	}
	vols, err := podVolumes(src, root, uid)
	if err != nil {
		if !notExist(err) {
			warns = append(warns, evidence.WarningOf(err))
		}
		return out, warns
	}
	for _, v := range vols {
		if !v.Writable || listed[v.Plugin+"/"+v.Name] {
			continue
		}
		out = append(out, Mount{ContainerID: c.ID, PodUID: uid, Origin: "volume:" + v.Name, Kind: MountVolume, Volume: v.Name,
			Plugin: v.Plugin, VolumeKind: v.Kind, EvidencePath: v.Dir.EvidencePath, Exists: true, Writable: true,
			Note: "the container's OCI spec does not list this " + v.Kind + " volume (a container created outside the kubelet, e.g. with crictl, lacks the mount a kubelet adds): attributed to every container of the pod, container path unknown"})
	}
	return out, warns
}

// PodMounts is ContainerMounts for each container of a pod (sandboxes
// skipped), by container id.
func PodMounts(src evidence.Source, containers []model.Container, opt MountOptions) (map[string][]Mount, []evidence.Warning) {
	out := map[string][]Mount{}
	var warns []evidence.Warning
	for i := range containers {
		c := &containers[i]
		if c.Kind == model.KindSandbox {
			continue
		}
		m, w := ContainerMounts(src, c, opt)
		out[c.ID] = m
		warns = append(warns, w...)
	}
	return out, warns
}

func isBind(m model.SpecMount) bool {
	if m.Type == "bind" || m.Type == "rbind" {
		return true
	}
	return slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// classifyMount places one bind mount of a spec.
func classifyMount(src evidence.Source, sm model.SpecMount, uid, root string) Mount {
	dst := sm.Destination
	m := Mount{ContainerPath: &dst, SpecSource: sm.Source, FromSpec: true, ReadOnly: slices.Contains(sm.Options, "ro")}
	s := sm.Source
	if uid != "" {
		if i := strings.Index(s, "/pods/"+uid+"/"); i >= 0 {
			rel := s[i+len("/pods/"+uid+"/"):]
			ev := root + "/pods/" + uid + "/" + rel
			parts := strings.Split(rel, "/")
			switch {
			case len(parts) >= 3 && parts[0] == "volumes":
				m.Kind, m.Plugin, m.Volume = MountVolume, parts[1], parts[2]
				m.VolumeKind = pluginKinds[m.Plugin]
				if m.VolumeKind == "" {
					m.VolumeKind = VolOther
				}
				m.Origin = "volume:" + m.Volume
				m.Writable = !m.ReadOnly && (m.VolumeKind == VolEmptyDir || m.VolumeKind == VolHostPath)
			case len(parts) >= 2 && parts[0] == "volume-subpaths":
				m.Kind, m.Volume, m.Origin = MountVolume, parts[1], "volume:"+parts[1]
				m.Note = "a subPath of the volume: the bind source is a mount point; the content is in the volume's directory"
			case parts[0] == "containers":
				m.Kind, m.Origin = MountRuntime, "runtime:termination-log"
			case parts[0] == "etc-hosts":
				m.Kind, m.Origin = MountRuntime, "runtime:etc-hosts"
			default:
				m.Kind, m.Origin = MountRuntime, "runtime:"+parts[0]
			}
			if st, err := src.Lstat(ev); err == nil && st != nil {
				m.EvidencePath, m.Exists = pathutil.Abs(ev), true
			}
			if !strings.HasPrefix(s, pathutil.Abs(root)+"/") {
				m.Note = strings.TrimPrefix(m.Note+"; ", "; ") + fmt.Sprintf("the spec's source is under %s, read at the kubelet root %s", s[:i], pathutil.Abs(root))
			}
			return m
		}
	}
	for _, d := range runtimeDirs {
		if strings.Contains(s, d) {
			m.Kind, m.Origin = MountRuntime, "runtime:"+path.Base(s)
			m.EvidencePath, m.Exists, m.Note = locate(src, s)
			return m
		}
	}
	m.Kind, m.Origin = MountHostPath, "host:"+s
	m.Writable = !m.ReadOnly
	if n, err := hostPath(s, "/"); err == nil {
		if res, err := evidence.Resolve(src, n, true); err == nil {
			if _, err := src.Lstat(res); err == nil {
				m.EvidencePath, m.Exists = pathutil.Abs(res), true
			}
		}
	}
	return m
}

// locate finds a runtime file the spec names: as written, else from its
// /var/lib/, /run/ or /var/run/ component on (a spec written under another
// root than the evidence's).
func locate(src evidence.Source, s string) (string, bool, string) {
	try := func(p string) (string, bool) {
		n, err := hostPath(p, "/")
		if err != nil {
			return "", false
		}
		res, err := evidence.Resolve(src, n, true)
		if err != nil {
			return "", false
		}
		if _, err := src.Lstat(res); err != nil {
			return "", false
		}
		return pathutil.Abs(res), true
	}
	if p, ok := try(s); ok {
		return p, true, ""
	}
	for _, anchor := range []string{"/var/lib/", "/var/run/", "/run/"} {
		if i := strings.Index(s, anchor); i > 0 {
			if p, ok := try(s[i:]); ok {
				return p, true, fmt.Sprintf("the spec's source is under %s; found at %s", s[:i], p)
			}
		}
	}
	return "", false, ""
}

// podVolumes lists a pod's volumes without reading them.
func podVolumes(src evidence.Source, root, uid string) ([]Volume, error) {
	dir := root + "/pods/" + uid + "/volumes"
	res, err := evidence.Resolve(src, dir, true)
	if err != nil {
		return nil, err
	}
	plugins, err := src.ReadDir(res)
	if err != nil {
		return nil, err
	}
	var out []Volume
	for v, err := range pluginVolumes(src, plugins) {
		if err != nil {
			continue
		}
		out = append(out, Volume{Name: path.Base(v.st.Name), Plugin: v.plugin, Kind: v.kind, Writable: v.kind == VolEmptyDir && v.st.Mode.IsDir(), Dir: statInfo(v.st.Name, v.st.Name, v.st)})
	}
	return out, nil
}

// pluginVolume is an entry volumes/<plugin>/<name> of a pod's directory.
type pluginVolume struct {
	plugin string // the plugin's directory name (kubernetes.io~empty-dir)
	kind   string // the plugin's Vol… kind
	st     *evidence.Stat
}

// pluginVolumes yields the entries of the plugin directories among a
// pod's volumes directory's entries (plugins). A plugin directory that
// cannot be listed is yielded with its error, st being its own entry.
func pluginVolumes(src evidence.Source, plugins []*evidence.Stat) iter.Seq2[pluginVolume, error] {
	return func(yield func(pluginVolume, error) bool) {
		for _, pl := range plugins {
			if !pl.Mode.IsDir() {
				continue
			}
			plugin := path.Base(pl.Name)
			kind, ok := pluginKinds[plugin]
			if !ok {
				kind = VolOther
			}
			vols, err := src.ReadDir(pl.Name)
			if err != nil {
				if !yield(pluginVolume{plugin, kind, pl}, err) {
					return
				}
				continue
			}
			for _, v := range vols {
				if !yield(pluginVolume{plugin, kind, v}, nil) {
					return
				}
			}
		}
	}
}

// VolumeFile is an entry below a mount's content in the evidence.
type VolumeFile struct {
	EvidencePath string         `json:"evidence_path"`
	RelPath      string         `json:"relative_path"` // "" for a mount of a single file
	Stat         *evidence.Stat `json:"-"`
}

// VolumeFiles walks a mount's content in the evidence (lexical order,
// links not followed), yielding every entry below it; an error is about
// one directory and the walk goes on. Stop by breaking out of the loop.
func VolumeFiles(src evidence.Source, m Mount) iter.Seq2[VolumeFile, error] {
	return WalkDir(src, m.EvidencePath)
}

// WalkDir yields every entry below dir (a path of the evidence).
func WalkDir(src evidence.Source, dir string) iter.Seq2[VolumeFile, error] {
	return func(yield func(VolumeFile, error) bool) {
		if dir == "" {
			yield(VolumeFile{}, fmt.Errorf("the mount's content is not in the evidence"))
			return
		}
		root, err := evidence.Clean(dir)
		if err != nil {
			yield(VolumeFile{EvidencePath: dir}, err)
			return
		}
		_ = evidence.Walk(context.Background(), src, root, func(st *evidence.Stat, err error) error {
			if err != nil {
				name := root
				if st != nil {
					name = st.Name
				}
				if !yield(VolumeFile{EvidencePath: pathutil.Abs(name)}, err) {
					return fs.SkipAll
				}
				return nil
			}
			if st.Name == root {
				if st.Mode.IsDir() {
					return nil
				}
				if !yield(VolumeFile{EvidencePath: pathutil.Abs(st.Name), Stat: st}, nil) {
					return fs.SkipAll
				}
				return nil
			}
			rel := strings.TrimPrefix(st.Name, root+"/")
			if root == "." {
				rel = st.Name
			}
			if !yield(VolumeFile{EvidencePath: pathutil.Abs(st.Name), RelPath: rel, Stat: st}, nil) {
				return fs.SkipAll
			}
			return nil
		})
	}
}
