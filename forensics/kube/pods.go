package kube

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// PodDir is a pod's directory under the kubelet's root
// (/var/lib/kubelet/pods/<uid>): its volumes by plugin, one termination
// file per container start, its /etc/hosts, and the service-account tokens
// its volumes hold.
type PodDir struct {
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// NameFrom says where the namespace and name were read: "runtime" (a
	// runtime's pod record), "log_dir" (/var/log/pods/<ns>_<name>_<uid>),
	// "token" (a token's pod claims), or "" when nothing names the pod.
	NameFrom   string            `json:"name_from"`
	Dir        FileInfo          `json:"dir"`
	Volumes    []Volume          `json:"volumes"`
	Containers []PodDirContainer `json:"containers"`
	EtcHosts   *FileInfo         `json:"etc_hosts"`
	Plugins    []string          `json:"plugins"`
	// VolumeSubpaths are the subPath bind sources (volume-subpaths/<volume>/<container>/<n>).
	VolumeSubpaths []string           `json:"volume_subpaths"`
	Tokens         []Token            `json:"tokens"`
	Other          []string           `json:"other"` // entries the kubelet does not make
	Warnings       []evidence.Warning `json:"warnings"`
}

// Volume is one volume of a pod as the kubelet laid it out.
type Volume struct {
	Name   string `json:"name"`
	Plugin string `json:"plugin"` // the plugin directory, "kubernetes.io~empty-dir"
	Kind   string `json:"kind"`   // empty_dir, projected, secret, configmap, downward_api, csi, host_path, local, nfs, other
	// Writable is true for the volumes a container writes into and whose
	// content lies in this directory: emptyDir. (CSI, local and NFS
	// volumes are mount points: their content is elsewhere.)
	Writable bool     `json:"writable"`
	Dir      FileInfo `json:"dir"`
	// Files and Bytes count the regular files below (up to MaxVolumeScan
	// entries; Truncated when there were more).
	Files     int      `json:"files"`
	Bytes     int64    `json:"bytes"`
	Truncated bool     `json:"truncated"`
	Entries   []string `json:"entries"` // top-level names the pod sees (atomic-writer ..data dirs hidden)
	// Namespace is the content of a service-account volume's namespace file.
	Namespace string `json:"namespace,omitempty"`
}

// PodDirContainer is containers/<name>: one file per start of the
// container (the kubelet's termination-message file).
type PodDirContainer struct {
	Name   string           `json:"name"`
	Starts []ContainerStart `json:"starts"`
}

// ContainerStart is one termination-message file.
type ContainerStart struct {
	FileInfo
	Message          string `json:"message,omitempty"` // up to the kubelet's 4096 bytes
	MessageTruncated bool   `json:"message_truncated,omitempty"`
}

// Token is a service-account token found in a pod's volume.
type Token struct {
	FileInfo
	PodUID  string `json:"pod_uid"`
	Pod     string `json:"pod"` // namespace/name of the directory's pod, when known
	Volume  string `json:"volume"`
	Plugin  string `json:"plugin"`
	RelPath string `json:"relative_path"`
	// TokenSHA256 is the sha256 of the token itself (whitespace trimmed):
	// the pivot; the token is never printed.
	TokenSHA256    string             `json:"token_sha256"`
	Header         JWTHeader          `json:"header"`
	Claims         JWTClaims          `json:"claims"`
	SignatureBytes int                `json:"signature_bytes"`
	Warnings       []evidence.Warning `json:"warnings"`
}

// PodOptions tune Pods.
type PodOptions struct {
	// RootDir is the kubelet's --root-dir as the node names it (default
	// /var/lib/kubelet).
	RootDir string
	// PodLogsDir is where pod logs are (default /var/log/pods): its
	// directory names give pods' namespaces and names.
	PodLogsDir string
	// Runtime are the runtimes' pods, to name pod directories by uid.
	Runtime []model.Pod
	// UID keeps only this pod.
	UID string
}

func (o PodOptions) rootDir() string {
	if o.RootDir == "" {
		return defaultRootDir
	}
	n, err := hostPath(o.RootDir, "/")
	if err != nil {
		return defaultRootDir
	}
	return n
}

// Pods reads every pod directory under the kubelet's root.
func Pods(ctx context.Context, src evidence.Source, opt PodOptions) ([]PodDir, []evidence.Warning) {
	root := opt.rootDir() + "/pods"
	res, err := evidence.Resolve(src, root, true)
	if err != nil {
		return nil, []evidence.Warning{evidence.Warnf(pathutil.Abs(root), -1, "%v", err)}
	}
	ents, err := src.ReadDir(res)
	if err != nil {
		if notExist(err) {
			return nil, nil
		}
		return nil, []evidence.Warning{evidence.Warnf(pathutil.Abs(root), -1, "%v", err)}
	}
	names := podNames(src, opt)
	var out []PodDir
	var warns []evidence.Warning
	for i, e := range ents {
		if ctx.Err() != nil {
			warns = append(warns, evidence.WarningOf(ctx.Err()))
			break
		}
		if i >= MaxPods {
			warns = append(warns, evidence.Warnf(pathutil.Abs(root), -1, "more than %d pod directories, the rest not read", MaxPods))
			break
		}
		uid := path.Base(e.Name)
		if !e.Mode.IsDir() || (opt.UID != "" && uid != opt.UID) {
			continue
		}
		p := readPodDir(ctx, src, res+"/"+uid, uid, e)
		if n, ok := names[uid]; ok {
			p.Namespace, p.Name, p.NameFrom = n[0], n[1], n[2]
		} else {
			for _, t := range p.Tokens {
				if t.Claims.PodUID == uid && t.Claims.PodName != "" {
					p.Namespace, p.Name, p.NameFrom = t.Claims.Namespace, t.Claims.PodName, "token"
					break
				}
			}
		}
		if p.Name != "" {
			for i := range p.Tokens {
				p.Tokens[i].Pod = p.Namespace + "/" + p.Name
			}
		}
		out = append(out, p)
	}
	nonNil(&out)
	return out, warns
}

// podNames maps pod uids to [namespace, name, from] from the runtimes'
// records and the pod log directories.
func podNames(src evidence.Source, opt PodOptions) map[string][3]string {
	m := map[string][3]string{}
	logs := defaultPodLogsDir
	if opt.PodLogsDir != "" {
		if n, err := hostPath(opt.PodLogsDir, "/"); err == nil {
			logs = n
		}
	}
	if res, err := evidence.Resolve(src, logs, true); err == nil {
		if ents, err := src.ReadDir(res); err == nil {
			for _, e := range ents {
				if ns, name, uid, ok := splitPodLogDir(path.Base(e.Name)); ok {
					m[uid] = [3]string{ns, name, "log_dir"}
				}
			}
		}
	}
	for _, p := range opt.Runtime {
		if p.UID != "" && p.Name != "" {
			m[p.UID] = [3]string{p.Namespace, p.Name, "runtime"}
		}
	}
	return m
}

// splitPodLogDir splits "<namespace>_<name>_<uid>" (names and namespaces
// are DNS labels: no underscores).
func splitPodLogDir(b string) (ns, name, uid string, ok bool) {
	parts := strings.Split(b, "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// warn adds a warning about file (a path of the node) to the pod directory.
func (p *PodDir) warn(file, format string, a ...any) {
	p.Warnings = append(p.Warnings, evidence.Warnf(file, -1, format, a...))
}

func readPodDir(ctx context.Context, src evidence.Source, dir, uid string, st *evidence.Stat) PodDir {
	p := PodDir{UID: uid, Dir: statInfo(dir, dir, st)}
	ents, err := src.ReadDir(dir)
	if err != nil {
		p.warn(pathutil.Abs(dir), "%v", err)
		return p
	}
	for _, e := range ents {
		b := path.Base(e.Name)
		switch b {
		case "volumes":
			p.Volumes = readVolumes(ctx, src, e.Name, &p)
		case "containers":
			p.Containers = readPodContainers(src, e.Name, &p)
		case "etc-hosts":
			fi := statInfo(e.Name, e.Name, e)
			p.EtcHosts = &fi
		case "plugins":
			if pl, err := src.ReadDir(e.Name); err == nil {
				for _, x := range pl {
					p.Plugins = append(p.Plugins, path.Base(x.Name))
				}
			}
		case "volume-subpaths":
			visited := 0
			_ = evidence.Walk(ctx, src, e.Name, func(s *evidence.Stat, err error) error {
				if err != nil || s == nil {
					return nil
				}
				// Bounded by entries visited, not only by results: a
				// tree wide at its first two levels yields none.
				if visited++; visited > MaxVolumeScan {
					return fs.SkipAll
				}
				rel := strings.TrimPrefix(s.Name, e.Name+"/")
				if strings.Count(rel, "/") == 2 {
					p.VolumeSubpaths = append(p.VolumeSubpaths, pathutil.Abs(s.Name))
					return fs.SkipDir
				}
				return nil
			})
		default:
			p.Other = append(p.Other, pathutil.Abs(e.Name))
		}
	}
	return p
}

func readPodContainers(src evidence.Source, dir string, p *PodDir) []PodDirContainer {
	ents, err := src.ReadDir(dir)
	if err != nil {
		p.warn(pathutil.Abs(dir), "%v", err)
		return nil
	}
	var out []PodDirContainer
	for _, e := range ents {
		if !e.Mode.IsDir() {
			continue
		}
		c := PodDirContainer{Name: path.Base(e.Name)}
		files, err := src.ReadDir(e.Name)
		if err != nil {
			p.warn(pathutil.Abs(e.Name), "%v", err)
		}
		for i, f := range files {
			if i >= MaxVolumeScan {
				break
			}
			s := ContainerStart{FileInfo: statInfo(f.Name, f.Name, f)}
			if f.Mode.IsRegular() && f.Size > 0 {
				if fh, err := src.Open(f.Name); err == nil {
					buf := make([]byte, min(f.Size, MaxTerminationMessage))
					n, _ := fh.ReadAt(buf, 0)
					fh.Close()
					s.Message = string(buf[:n])
					s.MessageTruncated = f.Size > MaxTerminationMessage
				}
			}
			c.Starts = append(c.Starts, s)
		}
		// Oldest first.
		sort.SliceStable(c.Starts, func(i, j int) bool { return c.Starts[i].Mtime.Before(c.Starts[j].Mtime.Time) })
		out = append(out, c)
	}
	return out
}

func readVolumes(ctx context.Context, src evidence.Source, dir string, p *PodDir) []Volume {
	plugins, err := src.ReadDir(dir)
	if err != nil {
		p.warn(pathutil.Abs(dir), "%v", err)
		return nil
	}
	var out []Volume
	for pv, err := range pluginVolumes(src, plugins) {
		v := pv.st
		if err != nil {
			p.warn(pathutil.Abs(v.Name), "%v", err)
			continue
		}
		if ctx.Err() != nil {
			return out
		}
		vol := Volume{Name: path.Base(v.Name), Plugin: pv.plugin, Kind: pv.kind, Writable: pv.kind == VolEmptyDir, Dir: statInfo(v.Name, v.Name, v)}
		if !v.Mode.IsDir() {
			p.warn(pathutil.Abs(v.Name), "a volume that is not a directory (%s)", v.Mode)
			out = append(out, vol)
			continue
		}
		countVolume(ctx, src, &vol)
		if pv.kind == VolProjected || pv.kind == VolSecret {
			p.Tokens = append(p.Tokens, findTokens(src, &vol, p)...)
		}
		out = append(out, vol)
	}
	return out
}

// countVolume lists a volume's top-level names and counts its files.
func countVolume(ctx context.Context, src evidence.Source, v *Volume) {
	dir := strings.TrimPrefix(v.Dir.EvidencePath, "/")
	if ents, err := src.ReadDir(dir); err == nil {
		for _, e := range ents {
			b := path.Base(e.Name)
			if strings.HasPrefix(b, "..") {
				continue // the atomic writer's ..data and ..<timestamp>
			}
			v.Entries = append(v.Entries, b)
		}
	}
	seen := 0
	_ = evidence.Walk(ctx, src, dir, func(st *evidence.Stat, err error) error {
		if err != nil || st == nil {
			return nil
		}
		seen++
		if seen > MaxVolumeScan {
			v.Truncated = true
			return fs.SkipAll
		}
		if st.Mode.IsRegular() {
			v.Files++
			v.Bytes += st.Size
		}
		return nil
	})
}

// findTokens reads the JWTs of a projected or secret volume: every file
// the pod sees (links of the atomic writer followed inside the volume)
// that decodes as a JWT, and any file named "token".
func findTokens(src evidence.Source, v *Volume, p *PodDir) []Token {
	dir := strings.TrimPrefix(v.Dir.EvidencePath, "/")
	var out []Token
	scanned := 0
	var visit func(rel string, depth int)
	visit = func(rel string, depth int) {
		if scanned >= MaxVolumeScan || depth > MaxVolumeDepth {
			return
		}
		scanned++
		name := dir + "/" + rel
		res, err := evidence.Resolve(src, name, true)
		if err != nil {
			p.warn(pathutil.Abs(name), "%v", err)
			return
		}
		if res != dir && !strings.HasPrefix(res, dir+"/") {
			p.warn(pathutil.Abs(name), "a link out of the volume, to %s (not read)", pathutil.Abs(res))
			return
		}
		st, err := src.Lstat(res)
		if err != nil {
			return
		}
		if st.Mode.IsDir() {
			ents, err := src.ReadDir(res)
			if err != nil {
				return
			}
			for _, e := range ents {
				b := path.Base(e.Name)
				if strings.HasPrefix(b, "..") {
					continue
				}
				visit(rel+"/"+b, depth+1)
			}
			return
		}
		if !st.Mode.IsRegular() {
			return
		}
		base := path.Base(rel)
		if base == "namespace" && st.Size <= 253 {
			if b, err := evidence.ReadFile(src, res, 253); err == nil {
				v.Namespace = strings.TrimSpace(string(b))
			}
			return
		}
		t := Token{FileInfo: statInfo(name, res, st), PodUID: p.UID, Volume: v.Name, Plugin: v.Plugin, RelPath: rel}
		if st.Size > MaxTokenBytes {
			if base == "token" {
				t.Warnings = append(t.Warnings, evidence.Warnf("", -1, "token file is %d bytes, over the %d-byte limit: not read", st.Size, MaxTokenBytes))
				out = append(out, t)
			}
			return
		}
		b, err := evidence.ReadFile(src, res, MaxTokenBytes)
		if err != nil {
			if base == "token" {
				t.Warnings = append(t.Warnings, evidence.WarningOf(err))
				out = append(out, t)
			}
			return
		}
		if base != "token" && !bytes.HasPrefix(bytes.TrimSpace(b), []byte("eyJ")) {
			return
		}
		j, err := DecodeJWT(b)
		if err != nil {
			t.Warnings = append(t.Warnings, evidence.WarningOf(&evidence.FormatError{File: pathutil.Abs(res), Offset: 0, Msg: "token", Err: err}))
			if j == nil || errors.Is(err, ErrNotJWT) {
				if base == "token" {
					out = append(out, t)
				}
				return
			}
		}
		t.TokenSHA256, t.Header, t.Claims, t.SignatureBytes = j.SHA256, j.Header, j.Claims, j.SignatureBytes
		out = append(out, t)
	}
	if ents, err := src.ReadDir(dir); err == nil {
		for _, e := range ents {
			b := path.Base(e.Name)
			if strings.HasPrefix(b, "..") {
				continue
			}
			visit(b, 1)
		}
	}
	return out
}
