package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/model"
)

func (s *Store) readContainers() {
	seen := map[string]bool{}
	files := []string{s.listFile(s.graph, containersSuffix+"/"+containersJSON)}
	if s.run != "" {
		files = append(files, s.listFile(s.run, containersSuffix+"/"+volatileCtrsJSON))
	}
	for _, file := range files {
		s.readList(file, func(i int, off int64, raw json.RawMessage) {
			rec, err := decodeContainer(raw)
			if err != nil {
				s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: offset %d: record %d: %v", file, off, i, err))
				return
			}
			if !plainName(rec.ID) {
				s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: offset %d: record %d: container id %q is not a plain name", file, off, i, rec.ID))
				return
			}
			if seen[rec.ID] {
				s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: offset %d: container %s listed twice; the first is kept", file, off, rec.ID))
				return
			}
			seen[rec.ID] = true
			c := s.container(rec, fmt.Sprintf("/%s: offset %d", file, off))
			s.Warnings = append(s.Warnings, c.Warnings...)
			s.Containers = append(s.Containers, c)
		})
	}
	if s.libpod != nil {
		for _, id := range s.libpod.order {
			if seen[id] || !plainName(id) {
				continue
			}
			c := s.container(&csContainer{ID: id}, "")
			c.Warnings = append(c.Warnings, "in libpod's state database but not in containers.json: its storage was removed; no layer directories")
			s.Warnings = append(s.Warnings, c.Warnings...)
			s.Containers = append(s.Containers, c)
		}
	}
	sort.SliceStable(s.Containers, func(i, j int) bool { return s.Containers[i].ID < s.Containers[j].ID })
}

// readSpec reads a container's OCI spec from its userdata directory in the
// graph root, else the run root.
func (s *Store) readSpec(id string) ([]byte, string, []string) {
	var warn []string
	for _, base := range []string{s.graph, s.run} {
		if base == "" {
			continue
		}
		p := path.Join(s.listFile(base, containersSuffix), id, userdataDir, ociConfigFile)
		b, err := evidence.ReadFile(s.src, p, maxJSON)
		if err == nil {
			return b, "/" + p, warn
		}
		if !errors.Is(err, fs.ErrNotExist) {
			warn = append(warn, fmt.Sprintf("/%s: %v", p, err))
		}
	}
	return nil, "", warn
}

// container builds a container's record from its containers.json record,
// its libpod or CRI-O state, and its spec.
func (s *Store) container(rec *csContainer, where string) model.Container {
	c := model.Container{
		Runtime:     model.RuntimePodman,
		ID:          rec.ID,
		Kind:        model.KindContainer,
		ImageRef:    rec.ImageID,
		CreatedAt:   model.T(rec.Created),
		Snapshotter: s.Driver,
		SnapshotKey: rec.LayerID,
		LowerDirs:   []string{},
		Status:      model.Status{State: model.StateUnknown, Sources: []string{}},
	}
	if len(rec.Names) > 0 {
		c.ContainerName = rec.Names[0]
	}
	md, err := decodeMetadata(rec.Metadata)
	if err != nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: container %s: metadata JSON: %v", where, rec.ID, err))
		md = &crioMetadata{}
	}
	c.Image = md.ImageName
	rawSpec, specFile, w := s.readSpec(rec.ID)
	c.Warnings = append(c.Warnings, w...)
	var ann map[string]string
	if rawSpec != nil {
		var sa specAnnotations
		if err := json.Unmarshal(rawSpec, &sa); err == nil {
			ann = sa.Annotations
		}
	}
	var lp *lpContainer
	if s.libpod != nil {
		lp = s.libpod.containers[rec.ID]
	}
	privileged := md.Privileged
	crio := lp == nil && (md.isCRIO() || ann[annCRIOContainerType] != "")
	switch {
	case crio:
		s.fillCRIO(&c, md, ann)
	default:
		if lp != nil {
			c.Warnings = append(c.Warnings, lp.warnings...)
			if cfg := lp.config; cfg != nil {
				privileged = privileged || cfg.Privileged
				if rawSpec == nil && len(cfg.Spec) > 0 && string(cfg.Spec) != "null" {
					rawSpec, specFile = cfg.Spec, s.StateDB
				}
			}
			s.fillLibpod(&c, lp)
		} else if s.libpod != nil {
			c.Warnings = append(c.Warnings, "not in libpod's state database: no recorded state (a Buildah container, or one libpod no longer knows)")
		} else if s.libpodUnread {
			c.Warnings = append(c.Warnings, "libpod's state database is unreadable (see the store's warnings): no recorded state")
		} else {
			c.Warnings = append(c.Warnings, "no libpod state database and no CRI-O metadata: no recorded state")
		}
		if c.Pod == nil && c.Labels[labelPodName] != "" {
			// Named the kubelet way (k8s_<container>_<pod>_<ns>_<uid>_<attempt>)
			// with the labels the kubelet sets.
			c.Pod = &model.PodRef{Namespace: c.Labels[labelPodNamespace], Name: c.Labels[labelPodName], UID: c.Labels[labelPodUID]}
			if n := c.Labels[labelContainerName]; n != "" {
				c.Attempt = k8sAttempt(c.ContainerName)
				c.ContainerName = n
			}
		}
		if len(ann) > 0 {
			c.Annotations = ann
		}
	}
	if rawSpec != nil {
		sp, err := model.ParseSpec(rawSpec, privileged)
		if err != nil {
			c.Warnings = append(c.Warnings, (&evidence.FormatError{File: specFile, Offset: -1, Msg: "OCI spec JSON", Err: err}).Error())
		} else {
			c.Spec = sp
		}
	}
	if rec.LayerID != "" || lp == nil {
		s.containerLayers(&c, rec.LayerID)
	}
	return c
}

// fillCRIO maps CRI-O's metadata, annotations and state file.
func (s *Store) fillCRIO(c *model.Container, md *crioMetadata, ann map[string]string) {
	c.Runtime = model.RuntimeCRIO
	c.Annotations = ann
	if md.Pod || ann[annCRIOContainerType] == crioTypeSandbox {
		c.Kind = model.KindSandbox
	}
	if n := md.MetadataName; n != "" {
		c.ContainerName = n
	} else if n := ann[annCRIOContainerName]; n != "" {
		c.ContainerName = n
	}
	c.Attempt = md.Attempt
	first := func(v ...string) string {
		for _, x := range v {
			if x != "" {
				return x
			}
		}
		return ""
	}
	c.SandboxID = first(md.PodID, ann[annCRIOSandboxID])
	if c.Kind == model.KindSandbox && c.SandboxID == "" {
		c.SandboxID = c.ID
	}
	pod := model.PodRef{Namespace: first(md.Namespace, ann[annPodNamespace]), Name: first(md.PodName, ann[annPodName]), UID: first(md.UID, ann[annPodUID])}
	if pod != (model.PodRef{}) {
		c.Pod = &pod
	}
	if c.Image == "" {
		c.Image = ann[annCRIOImageName]
	}
	c.LogPath = ann[annCRIOLogPath]
	if l := ann[annCRIOLabels]; l != "" {
		var labels map[string]string
		if err := json.Unmarshal([]byte(l), &labels); err != nil {
			c.Warnings = append(c.Warnings, fmt.Sprintf("annotation %s: %v", annCRIOLabels, err))
		} else {
			c.Labels = labels
		}
	}
	if md.CreatedAt > 0 && c.CreatedAt.IsZero() {
		c.CreatedAt = model.T(time.Unix(md.CreatedAt, 0).UTC())
	}
	for _, base := range []string{s.graph, s.run} {
		if base == "" {
			continue
		}
		p := path.Join(s.listFile(base, containersSuffix), c.ID, userdataDir, crioStateFile)
		b, err := evidence.ReadFile(s.src, p, maxJSON)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				c.Warnings = append(c.Warnings, fmt.Sprintf("/%s: %v", p, err))
			}
			continue
		}
		st, err := decodeCRIOState(b)
		if err != nil {
			c.Warnings = append(c.Warnings, (&evidence.FormatError{File: "/" + p, Offset: -1, Msg: "CRI-O state JSON", Err: err}).Error())
			continue
		}
		cs := &c.Status
		cs.Sources = append(cs.Sources, "/"+p)
		cs.StartedAt, cs.FinishedAt = model.T(st.Started), model.T(st.Finished)
		switch st.Status {
		case "running", "paused":
			cs.State, cs.Pid = model.StateRunning, st.Pid
			if st.Status == "paused" {
				cs.Reason = "paused"
			}
		case "created":
			cs.State = model.StateCreated
		case "stopped":
			if !st.Finished.IsZero() || st.ExitCode != nil {
				cs.State = model.StateExited
				code := 0
				if st.ExitCode != nil {
					code = int(*st.ExitCode)
				}
				cs.ExitCode = &code
			} else {
				cs.State = model.StateStopped
			}
		}
		if st.OOMKilled {
			cs.Reason = "OOMKilled"
		} else if st.Error != "" {
			cs.Reason = st.Error
		}
		break
	}
	s.crioExitFile(c)
}

// crioExitFile reads the exit file conmon writes when a CRI-O container's
// process ends (/run/crio/exits/<id>: the exit code; its mtime is when).
// It is newer than a state.json that still says running.
func (s *Store) crioExitFile(c *model.Container) {
	r, err := evidence.Resolve(s.src, crioExitsDir, true)
	if err != nil {
		return
	}
	p := path.Join(r, c.ID)
	st, err := s.src.Lstat(p)
	if err != nil || !st.Mode.IsRegular() {
		return
	}
	b, err := evidence.ReadFile(s.src, p, maxSmallFile)
	if err != nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("/%s: %v", p, err))
		return
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("/%s: %q is not an exit code", p, b))
		return
	}
	cs := &c.Status
	cs.Sources = append(cs.Sources, "/"+p)
	if cs.ExitCode != nil && *cs.ExitCode != code {
		c.Warnings = append(c.Warnings, fmt.Sprintf("/%s says exit code %d, the state file %d", p, code, *cs.ExitCode))
	}
	cs.State, cs.Pid, cs.ExitCode = model.StateExited, 0, &code
	if cs.FinishedAt.IsZero() {
		cs.FinishedAt = model.T(st.Mtime)
	}
}

// fillLibpod maps libpod's config and state.
func (s *Store) fillLibpod(c *model.Container, lp *lpContainer) {
	if cfg := lp.config; cfg != nil {
		if cfg.Name != "" {
			c.ContainerName = cfg.Name
		}
		if cfg.RootfsImageName != "" {
			c.Image = cfg.RootfsImageName
		}
		if cfg.RootfsImageID != "" {
			c.ImageRef = cfg.RootfsImageID
		}
		if !cfg.CreatedTime.IsZero() {
			c.CreatedAt = model.T(cfg.CreatedTime)
		}
		c.Namespace = cfg.Namespace
		c.Labels = cfg.Labels
		c.LogPath = cfg.LogPath
		c.RuntimeHandler = cfg.OCIRuntime
		if cfg.Pod != "" {
			if p := s.libpod.pods[cfg.Pod]; p != nil {
				c.Pod = &model.PodRef{Namespace: p.config.Namespace, Name: p.config.Name, UID: p.config.ID}
				if p.state != nil {
					c.SandboxID = p.state.InfraContainerID
				}
			} else {
				c.Pod = &model.PodRef{UID: cfg.Pod}
				c.Warnings = append(c.Warnings, fmt.Sprintf("pod %s is not in libpod's state database", cfg.Pod))
			}
			if cfg.IsInfra || (c.SandboxID != "" && c.SandboxID == c.ID) {
				c.Kind = model.KindSandbox
				c.SandboxID = c.ID
			}
		}
	} else if lp.name != "" {
		c.ContainerName = lp.name
	}
	st := lp.state
	if st == nil {
		return
	}
	cs := &c.Status
	cs.Sources = append(cs.Sources, s.StateDB)
	cs.StartedAt, cs.FinishedAt = model.T(st.StartedTime), model.T(st.FinishedTime)
	exit := func() {
		code := int(st.ExitCode)
		if lp.exitCode != nil && *lp.exitCode != code {
			c.Warnings = append(c.Warnings, fmt.Sprintf("libpod state says exit code %d, its exit-code bucket %d", code, *lp.exitCode))
		}
		cs.ExitCode = &code
	}
	switch st.State {
	case lpRunning, lpPaused, lpStopping:
		cs.State, cs.Pid = model.StateRunning, st.Pid
		if st.State == lpPaused {
			cs.Reason = "paused"
		} else if st.State == lpStopping {
			cs.Reason = "stopping"
		}
	case lpExited, lpStopped:
		if st.Exited || !st.FinishedTime.IsZero() {
			cs.State = model.StateExited
			exit()
		} else {
			cs.State = model.StateStopped
		}
	case lpConfigured, lpCreated:
		cs.State = model.StateCreated
	case lpRemoving:
		cs.Reason = "removing"
	}
	if st.OOMKilled {
		cs.Reason = "OOMKilled"
	} else if st.Error != "" {
		cs.Reason = st.Error
	}
}

// containerLayers resolves a container's layer directories.
func (s *Store) containerLayers(c *model.Container, layerID string) {
	if layerID == "" {
		c.Warnings = append(c.Warnings, "no container layer recorded")
		return
	}
	l := s.byLayer[layerID]
	if l == nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("container layer %s is not in layers.json", layerID))
		return
	}
	l.Containers = append(l.Containers, c.ID)
	if s.driverDir == "" || s.Driver != driverOverlay {
		return
	}
	c.UpperDir = l.Dir
	ids, warn := s.chain(l.Parent)
	var want []string
	for _, id := range ids {
		want = append(want, s.byLayer[id].Dir)
	}
	lowerName := path.Join(s.driverDir, layerID, lowerFile)
	got, err := s.lowerFromFile(lowerName)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist) && len(want) == 0:
		// A layer with no parent has no lower file.
	case err != nil:
		c.Warnings = append(c.Warnings, fmt.Sprintf("%v; lower directories computed from layers.json", err))
		c.Warnings = append(c.Warnings, warn...)
		c.LowerDirs = append(c.LowerDirs, want...)
	default:
		c.LowerDirs = got
		if !equal(got, want) && len(warn) == 0 {
			c.Warnings = append(c.Warnings, fmt.Sprintf("/%s and layers.json disagree on the lower directories (lower file: %s; layers.json: %s); the lower file is what was mounted", lowerName, strings.Join(got, ":"), strings.Join(want, ":")))
		}
	}
}

// k8sAttempt is the attempt of a kubelet-style name
// k8s_<container>_<pod>_<namespace>_<uid>_<attempt>.
func k8sAttempt(name string) uint32 {
	if !strings.HasPrefix(name, "k8s_") {
		return 0
	}
	n, err := strconv.ParseUint(name[strings.LastIndexByte(name, '_')+1:], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lowerFromFile reads and resolves an overlay lower file.
func (s *Store) lowerFromFile(name string) ([]string, error) {
	b, err := evidence.ReadFile(s.src, name, maxLowerFile)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", name, err)
	}
	entries, err := parseLower(b)
	if err != nil {
		return nil, &evidence.FormatError{File: "/" + name, Offset: -1, Msg: "lower file", Err: err}
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		r, ok := s.links[e]
		if !ok {
			r.dir, _, r.err = ondisk.ResolveShort(s.src, s.driverDir, e, linkDir, diffDir)
			s.links[e] = r
		}
		dir, err := r.dir, r.err
		if err != nil {
			return nil, fmt.Errorf("/%s: %w", name, err)
		}
		out = append(out, dir)
	}
	return out, nil
}

// findOrphans lists the overlay/<id> directories no layer record owns and
// the overlay-containers/<id> directories (userdata: spec, logs) of
// containers no longer in containers.json.
func (s *Store) findOrphans() {
	scan := func(dir string, owned map[string]bool, why string) {
		ents, err := s.src.ReadDir(dir)
		if err != nil {
			return
		}
		for i, e := range ents {
			if i >= maxRecords {
				break
			}
			if n := path.Base(e.Name); e.Mode.IsDir() && !owned[n] {
				s.Orphans = append(s.Orphans, Orphan{Runtime: s.runtime, Mtime: model.T(e.Mtime), Path: "/" + path.Join(dir, n), Why: why})
			}
		}
	}
	if s.driverDir != "" {
		owned := map[string]bool{linkDir: true}
		for _, l := range s.Layers {
			owned[l.ID] = true
		}
		scan(s.driverDir, owned, "layer directory not in layers.json")
	}
	owned := map[string]bool{}
	for _, c := range s.Containers {
		owned[c.ID] = true
	}
	for _, base := range []string{s.graph, s.run} {
		if base != "" {
			scan(s.listFile(base, containersSuffix), owned, "container directory of a container not in containers.json")
		}
	}
}

// buildPods gathers pods: CRI-O sandboxes, libpod pods, and containers
// whose io.kubernetes.pod.* labels name a pod.
func (s *Store) buildPods() {
	byKey := map[string]*model.Pod{}
	var order []string
	get := func(key, runtime string) *model.Pod {
		p := byKey[key]
		if p == nil {
			p = &model.Pod{Runtime: runtime, Labels: map[string]string{}, State: model.StateUnknown, Containers: []model.PodContainer{}, Warnings: []string{}}
			byKey[key] = p
			order = append(order, key)
		}
		return p
	}
	podKey := func(c *model.Container) string {
		if c.SandboxID != "" {
			return "sb:" + c.SandboxID
		}
		if c.Pod.UID != "" {
			return "uid:" + c.Pod.UID
		}
		return "name:" + c.Pod.Namespace + "/" + c.Pod.Name
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Kind != model.KindSandbox {
			continue
		}
		p := get("sb:"+c.ID, c.Runtime)
		p.SandboxID, p.RuntimeNS, p.CreatedAt, p.State = c.ID, c.Namespace, c.CreatedAt, c.Status.State
		if c.Pod != nil {
			p.Namespace, p.Name, p.UID = c.Pod.Namespace, c.Pod.Name, c.Pod.UID
		}
		for k, v := range c.Labels {
			p.Labels[k] = v
		}
		if c.Spec != nil {
			p.CgroupParent = c.Spec.CgroupsPath
		}
	}
	if s.libpod != nil {
		ids := make([]string, 0, len(s.libpod.pods))
		for id := range s.libpod.pods {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			lp := s.libpod.pods[id]
			key := "uid:" + id
			if lp.state != nil && lp.state.InfraContainerID != "" {
				key = "sb:" + lp.state.InfraContainerID
			}
			p := get(key, model.RuntimePodman)
			p.Namespace, p.Name, p.UID, p.RuntimeNS = lp.config.Namespace, lp.config.Name, lp.config.ID, lp.config.Namespace
			p.CreatedAt = model.T(lp.config.Created)
			for k, v := range lp.config.Labels {
				p.Labels[k] = v
			}
			if lp.state != nil {
				p.SandboxID, p.CgroupParent = lp.state.InfraContainerID, lp.state.CgroupPath
			}
		}
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Kind != model.KindContainer || (c.Pod == nil && c.SandboxID == "") {
			continue
		}
		if c.Pod == nil {
			c.Pod = &model.PodRef{}
		}
		key := podKey(c)
		if _, ok := byKey[key]; !ok && c.Pod.UID != "" {
			if _, ok := byKey["uid:"+c.Pod.UID]; ok {
				key = "uid:" + c.Pod.UID
			}
		}
		p := get(key, c.Runtime)
		if p.Name == "" && p.UID == "" {
			p.Namespace, p.Name, p.UID, p.RuntimeNS = c.Pod.Namespace, c.Pod.Name, c.Pod.UID, c.Namespace
			if c.SandboxID != "" {
				p.SandboxID = c.SandboxID
				p.Warnings = append(p.Warnings, fmt.Sprintf("sandbox %s is not in the store; pod known from its containers", c.SandboxID))
			} else {
				p.Warnings = append(p.Warnings, "no pod sandbox in the store; pod known from its containers' labels")
			}
		}
		p.Containers = append(p.Containers, model.PodContainer{ID: c.ID, Name: c.ContainerName, Image: c.Image, State: c.Status.State})
	}
	for _, k := range order {
		p := byKey[k]
		model.SortPodContainers(p.Containers)
		s.Pods = append(s.Pods, *p)
	}
	model.SortPods(s.Pods)
}

// buildSnapshots lists the layers (active when a container's, else
// committed) and the images.
func (s *Store) buildSnapshots() {
	runtimes := map[string]bool{}
	for _, c := range s.Containers {
		runtimes[c.Runtime] = true
	}
	if runtimes[model.RuntimeCRIO] && !runtimes[model.RuntimePodman] && s.libpod == nil {
		s.runtime = model.RuntimeCRIO
	}
	for _, l := range s.Layers {
		kind := "committed"
		if len(l.Containers) > 0 {
			kind = "active"
		}
		name := l.ID
		if len(l.Names) > 0 {
			name = l.Names[0]
		}
		s.Snapshots = append(s.Snapshots, model.Snapshot{
			Runtime: s.runtime, Snapshotter: s.Driver, Key: l.ID, Name: name, Parent: l.Parent, Kind: kind,
			ID: l.ID, Dir: l.Dir, CreatedAt: l.Created, Labels: map[string]string{}, Size: l.DiffSize, Containers: l.Containers, Warnings: l.Warnings,
		})
	}
	for _, r := range s.ImageRecords {
		names := r.Names
		if len(names) == 0 {
			names = []string{r.ID}
		}
		for _, n := range names {
			s.Images = append(s.Images, model.Image{
				Runtime: s.runtime, Name: n, CreatedAt: r.Created, Labels: map[string]string{}, Warnings: r.Warnings,
				Target: model.Descriptor{Digest: r.Digest, MediaType: r.ManifestMediaType, Size: r.ManifestSize},
			})
		}
	}
	sort.SliceStable(s.Images, func(i, j int) bool { return s.Images[i].Name < s.Images[j].Name })
}

func (s *Store) countNamespaces() {
	idx := map[string]*model.Namespace{}
	var order []string
	get := func(rt, ns string) *model.Namespace {
		k := rt + "\x00" + ns
		if idx[k] == nil {
			idx[k] = &model.Namespace{Runtime: rt, Name: ns, Labels: map[string]string{}}
			order = append(order, k)
		}
		return idx[k]
	}
	for _, c := range s.Containers {
		n := get(c.Runtime, c.Namespace)
		if c.Kind == model.KindSandbox {
			n.Sandboxes++
		} else {
			n.Containers++
		}
	}
	n := get(s.runtime, "")
	n.Images, n.Snapshots = len(s.Images), len(s.Snapshots)
	sort.Strings(order)
	for _, k := range order {
		s.Namespaces = append(s.Namespaces, *idx[k])
	}
}

// normalise makes empty lists print as [] rather than null.
func (s *Store) normalise() {
	for i := range s.Containers {
		c := &s.Containers[i]
		c.Warnings = model.NonNil(c.Warnings)
		c.Labels = model.NonNilMap(c.Labels)
	}
	for i := range s.Images {
		s.Images[i].Warnings = model.NonNil(s.Images[i].Warnings)
	}
	for i := range s.Snapshots {
		s.Snapshots[i].Warnings = model.NonNil(s.Snapshots[i].Warnings)
	}
	for i := range s.Layers {
		s.Layers[i].Warnings = model.NonNil(s.Layers[i].Warnings)
	}
	for i := range s.ImageRecords {
		s.ImageRecords[i].Warnings = model.NonNil(s.ImageRecords[i].Warnings)
	}
}
