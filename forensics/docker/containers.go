package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/model"
)

func (s *Store) readContainers() {
	dir := path.Join(s.root, containersDir)
	ents, err := s.src.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: %v", dir, err))
		}
		return
	}
	for i, e := range ents {
		if i >= maxEntries {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: more than %d containers; the rest is not read", dir, maxEntries))
			break
		}
		id := path.Base(e.Name)
		if e.Mode&fs.ModeSymlink != 0 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s/%s is a symbolic link, not a container directory; not followed", dir, id))
			continue
		}
		if !e.Mode.IsDir() || !plainName(id) {
			continue
		}
		c := s.readContainer(path.Join(dir, id), id)
		s.Warnings = append(s.Warnings, c.Warnings...)
		s.Containers = append(s.Containers, c)
	}
}

func (s *Store) readContainer(dir, id string) model.Container {
	c := model.Container{
		Runtime:     model.RuntimeDocker,
		ID:          id,
		Namespace:   Namespace,
		Kind:        model.KindContainer,
		Snapshotter: s.Driver,
		SnapshotKey: id,
		LowerDirs:   []string{},
		Status:      model.Status{State: model.StateUnknown, Sources: []string{}},
	}
	cfgFile := path.Join(dir, configV2File)
	b, err := evidence.ReadFile(s.src, cfgFile, maxJSON)
	var cfg *configV2
	if err == nil {
		cfg, err = decodeConfigV2(b)
		if err != nil {
			err = &evidence.FormatError{File: "/" + cfgFile, Offset: -1, Msg: "container config JSON", Err: err}
		}
	} else {
		err = fmt.Errorf("/%s: %w", cfgFile, err)
	}
	if err != nil {
		c.Warnings = append(c.Warnings, err.Error()+"; the container is known only by its directory")
	}
	var hc *hostConfigJSON
	hcFile := path.Join(dir, hostConfig)
	if hb, err := evidence.ReadFile(s.src, hcFile, maxJSON); err == nil {
		if hc, err = decodeHostConfig(hb); err != nil {
			c.Warnings = append(c.Warnings, (&evidence.FormatError{File: "/" + hcFile, Offset: -1, Msg: "host config JSON", Err: err}).Error())
		}
	} else if cfg != nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("/%s: %v", hcFile, err))
	}
	if cfg != nil {
		if cfg.ID != "" && cfg.ID != id {
			c.Warnings = append(c.Warnings, fmt.Sprintf("/%s: records id %q, not its directory's name", cfgFile, cfg.ID))
		}
		s.fillFromConfig(&c, cfg, hc, b, cfgFile)
		if cfg.Driver != "" && cfg.Driver != s.Driver {
			c.Warnings = append(c.Warnings, fmt.Sprintf("container uses storage driver %q, not %q: layers not resolved", cfg.Driver, s.Driver))
			c.Snapshotter = cfg.Driver
			return c
		}
	}
	if hc != nil {
		c.RuntimeHandler = hc.Runtime
		if len(hc.Annotations) > 0 {
			if c.Annotations == nil {
				c.Annotations = map[string]string{}
			}
			for k, v := range hc.Annotations {
				c.Annotations[k] = v
			}
		}
	}
	if s.Driver == driverOverlay2 {
		rw := s.readRWLayer(id)
		c.UpperDir = rw.UpperDir
		for _, l := range rw.Lowers {
			c.LowerDirs = append(c.LowerDirs, l.Dir)
		}
		c.Warnings = append(c.Warnings, rw.Warnings...)
		s.RWLayers = append(s.RWLayers, rw)
	}
	return c
}

// fillFromConfig maps config.v2.json (and hostconfig.json) onto the record.
func (s *Store) fillFromConfig(c *model.Container, cfg *configV2, hc *hostConfigJSON, raw []byte, cfgFile string) {
	c.CreatedAt = model.T(cfg.Created)
	c.Image = cfg.Config.Image
	c.ImageRef = cfg.Image
	if c.Image == "" {
		c.Image = cfg.Image
	}
	c.LogPath = cfg.LogPath
	c.Labels = cfg.Config.Labels
	for k, v := range c.Labels {
		// dockershim and cri-dockerd keep pod annotations as labels.
		if a, ok := strings.CutPrefix(k, annotationPrefix); ok {
			if c.Annotations == nil {
				c.Annotations = map[string]string{}
			}
			c.Annotations[a] = v
		}
	}
	name := strings.TrimPrefix(cfg.Name, "/")
	c.ContainerName = name
	if l := c.Labels; l[labelPodName] != "" || l[labelPodUID] != "" {
		c.Pod = &model.PodRef{Namespace: l[labelPodNamespace], Name: l[labelPodName], UID: l[labelPodUID]}
		if l[labelDockerType] == dockerTypeSandbox {
			c.Kind = model.KindSandbox
			c.SandboxID = c.ID
			c.ContainerName = l[labelPodName]
		} else {
			c.SandboxID = l[labelSandboxID]
			if n := l[labelContainerName]; n != "" {
				c.ContainerName = n
			}
		}
		c.Attempt = k8sAttempt(name)
	}
	st := &c.Status
	st.Sources = append(st.Sources, "/"+cfgFile)
	ds := cfg.State
	switch {
	case ds.Running:
		st.State = model.StateRunning
		st.Pid = ds.Pid
		switch {
		case ds.Paused:
			st.Reason = "paused"
		case ds.Restarting:
			st.Reason = "restarting"
		}
	case !ds.FinishedAt.IsZero():
		st.State = model.StateExited
		code := ds.ExitCode
		st.ExitCode = &code
	case ds.StartedAt.IsZero():
		st.State = model.StateCreated
	default:
		// Started, not running, never recorded as finished: the daemon
		// died with it.
		st.State = model.StateStopped
	}
	st.StartedAt = model.T(ds.StartedAt)
	st.FinishedAt = model.T(ds.FinishedAt)
	switch {
	case ds.OOMKilled:
		st.Reason = "OOMKilled"
	case ds.Dead:
		st.Reason = "dead"
	case ds.Error != "":
		st.Reason = ds.Error
	}
	c.Spec = buildSpec(cfg, hc, raw)
}

// k8sAttempt is the attempt of a dockershim name
// k8s_<container>_<pod>_<namespace>_<uid>_<attempt>.
func k8sAttempt(name string) uint32 {
	if !strings.HasPrefix(name, k8sNamePrefix) {
		return 0
	}
	i := strings.LastIndexByte(name, '_')
	n, err := strconv.ParseUint(name[i+1:], 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// buildSpec gives what Docker persisted of the container's runtime
// configuration in the shape of an OCI spec (Docker keeps no OCI spec on
// disk: runc's config.json lives under the exec root). Raw holds both
// files as recorded.
func buildSpec(cfg *configV2, hc *hostConfigJSON, raw []byte) *model.Spec {
	sp := &model.Spec{
		Args:            append([]string{cfg.Path}, cfg.Args...),
		Env:             cfg.Config.Env,
		Cwd:             cfg.Config.WorkingDir,
		Hostname:        cfg.Config.Hostname,
		AppArmorProfile: cfg.AppArmorProfile,
		Seccomp:         true,
	}
	if cfg.Path == "" {
		sp.Args = append(append([]string{}, cfg.Config.Entrypoint...), cfg.Config.Cmd...)
	}
	sp.User = parseUser(cfg.Config.User)
	dests := make([]string, 0, len(cfg.MountPoints))
	for d := range cfg.MountPoints {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		mp := cfg.MountPoints[d]
		opt := "rw"
		if !mp.RW {
			opt = "ro"
		}
		opts := []string{opt}
		if mp.Propagation != "" {
			opts = append(opts, mp.Propagation)
		}
		typ := mp.Type
		if typ == "" {
			typ = "bind"
		}
		dst := mp.Destination
		if dst == "" {
			dst = d
		}
		sp.Mounts = append(sp.Mounts, model.SpecMount{Destination: dst, Type: typ, Source: mp.Source, Options: opts})
	}
	rawHC := json.RawMessage("null")
	if hc != nil {
		sp.Privileged = hc.Privileged
		sp.HostPID = hc.PidMode == "host"
		sp.HostNetwork = hc.NetworkMode == "host"
		sp.HostIPC = hc.IpcMode == "host"
		sp.ReadonlyRootfs = hc.ReadonlyRootfs
		sp.Seccomp = !hc.Privileged
		for _, o := range hc.SecurityOpt {
			if o == "seccomp=unconfined" || o == "seccomp:unconfined" {
				sp.Seccomp = false
			}
			if p, ok := strings.CutPrefix(o, "apparmor="); ok && sp.AppArmorProfile == "" {
				sp.AppArmorProfile = p
			}
		}
		sp.CgroupsPath = hc.CgroupParent
		if b, err := json.Marshal(hc); err == nil {
			rawHC = b
		}
	}
	if b, err := json.Marshal(map[string]json.RawMessage{"config.v2.json": json.RawMessage(compact(raw)), "hostconfig.json": rawHC}); err == nil {
		sp.Raw = b
	}
	return sp
}

// compact returns raw as valid compact JSON ("null" when it is not JSON).
func compact(raw []byte) []byte {
	var v json.RawMessage
	if json.Unmarshal(raw, &v) != nil {
		return []byte("null")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}

// parseUser reads Docker's "user[:group]" (names or numbers).
func parseUser(u string) model.SpecUser {
	var su model.SpecUser
	name, group, _ := strings.Cut(u, ":")
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		su.UID = uint32(n)
	} else {
		su.Username = name
	}
	if n, err := strconv.ParseUint(group, 10, 32); err == nil {
		su.GID = uint32(n)
	}
	return su
}

// readRWLayer resolves a container's read-write layer and its lowers.
func (s *Store) readRWLayer(id string) RWLayer {
	rw := RWLayer{ContainerID: id, Lowers: []Lower{}}
	md := path.Join(s.imageStore(), layerDBMounts, id)
	warn := func(format string, a ...any) { rw.Warnings = append(rw.Warnings, fmt.Sprintf(format, a...)) }
	v, err := s.readSmall(path.Join(md, mountIDFile))
	if err != nil {
		warn("/%s/%s: %v; no layer directories", md, mountIDFile, err)
		return rw
	}
	if !plainName(v) {
		warn("/%s/%s: %q is not a plain name; no layer directories", md, mountIDFile, v)
		return rw
	}
	rw.MountID = v
	if v, err := s.readSmall(path.Join(md, initIDFile)); err == nil {
		if plainName(v) {
			rw.InitID = v
		} else {
			warn("/%s/%s: %q is not a plain name", md, initIDFile, v)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		warn("/%s/%s: %v", md, initIDFile, err)
	}
	if v, err := s.readSmall(path.Join(md, parentFile)); err == nil {
		if validDigest(v) {
			rw.Parent = v
		} else {
			warn("/%s/%s: %q is not a chain id", md, parentFile, v)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		warn("/%s/%s: %v", md, parentFile, err)
	}
	if s.driverDir == "" {
		return rw
	}
	up := path.Join(s.driverDir, rw.MountID, diffDir)
	if st, err := s.src.Lstat(up); err != nil {
		warn("upper directory /%s: %v", up, err)
	} else if !st.Mode.IsDir() {
		warn("upper directory /%s is not a directory", up)
	} else {
		rw.UpperDir = "/" + up
	}
	if rw.InitID != "" {
		rw.InitDir = "/" + path.Join(s.driverDir, rw.InitID, diffDir)
	}
	want, wwarn := s.chainLowers(rw)
	lowerName := path.Join(s.driverDir, rw.MountID, lowerFile)
	got, err := s.lowerFromFile(lowerName, rw.InitID)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist) && len(want) == 0:
		// A container made from scratch has no lowers.
	case err != nil:
		warn("%v; lower directories computed from layerdb", err)
		rw.Warnings = append(rw.Warnings, wwarn...)
		rw.Lowers = want
	default:
		rw.Lowers = got
		if !sameDirs(got, want) && len(wwarn) == 0 {
			warn("/%s and layerdb disagree on the lower directories (lower file: %s; layerdb: %s); the lower file is what was mounted", lowerName, dirs(got), dirs(want))
		}
	}
	return rw
}

// chainLowers computes the lowers from layerdb: the init layer, then the
// parent chain's cache directories.
func (s *Store) chainLowers(rw RWLayer) ([]Lower, []string) {
	var out []Lower
	var warn []string
	if rw.InitID != "" {
		out = append(out, Lower{Dir: rw.InitDir, CacheID: rw.InitID, Init: true})
	}
	seen := map[string]bool{}
	for p := rw.Parent; p != ""; {
		if seen[p] || len(seen) >= maxChain {
			warn = append(warn, fmt.Sprintf("layer parent chain loops at %s; lower layers cut there", p))
			break
		}
		seen[p] = true
		l := s.byChain[p]
		if l == nil {
			warn = append(warn, fmt.Sprintf("layer %s is not in layerdb; lower layers incomplete", p))
			break
		}
		out = append(out, Lower{Dir: l.Dir, CacheID: l.CacheID, ChainID: l.ChainID})
		p = l.Parent
	}
	return out, warn
}

// lowerFromFile reads and resolves an overlay2 lower file.
func (s *Store) lowerFromFile(name, initID string) ([]Lower, error) {
	b, err := evidence.ReadFile(s.src, name, maxLowerFile)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", name, err)
	}
	entries, err := parseLower(b)
	if err != nil {
		return nil, &evidence.FormatError{File: "/" + name, Offset: -1, Msg: "lower file", Err: err}
	}
	out := make([]Lower, 0, len(entries))
	for _, e := range entries {
		r, ok := s.links[e]
		if !ok {
			r.dir, r.id, r.err = ondisk.ResolveShort(s.src, s.driverDir, e, linkDir, diffDir)
			s.links[e] = r
		}
		dir, id, err := r.dir, r.id, r.err
		if err != nil {
			return nil, fmt.Errorf("/%s: %w", name, err)
		}
		out = append(out, Lower{Short: e, Dir: dir, CacheID: id, ChainID: s.byCache[id], Init: id == initID && initID != ""})
	}
	return out, nil
}

func sameDirs(a, b []Lower) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Dir != b[i].Dir {
			return false
		}
	}
	return true
}

func dirs(l []Lower) string {
	var d []string
	for _, x := range l {
		d = append(d, x.Dir)
	}
	return strings.Join(d, ":")
}

// findOrphans lists the overlay2 directories no layer, container or -init
// layer owns, and the layerdb/mounts records of containers whose
// containers/<id> directory is gone.
func (s *Store) findOrphans() {
	known := map[string]bool{}
	for _, c := range s.Containers {
		known[c.ID] = true
	}
	md := path.Join(s.imageStore(), layerDBMounts)
	if ents, err := s.src.ReadDir(md); err == nil {
		for i, e := range ents {
			if i >= maxEntries {
				break
			}
			id := path.Base(e.Name)
			if e.Mode.IsDir() && plainName(id) && !known[id] {
				s.Orphans = append(s.Orphans, Orphan{Runtime: model.RuntimeDocker, Mtime: model.T(e.Mtime), Path: "/" + path.Join(md, id), Why: "read-write layer record of a container whose containers/" + id + " directory is gone"})
				if s.Driver == driverOverlay2 {
					rw := s.readRWLayer(id)
					rw.Warnings = append(rw.Warnings, "the container's record is gone: containers/"+id+" is not in the data root")
					s.RWLayers = append(s.RWLayers, rw)
				}
			}
		}
	}
	if s.driverDir == "" {
		return
	}
	owned := map[string]bool{linkDir: true}
	for _, l := range s.Layers {
		owned[l.CacheID] = true
	}
	for _, rw := range s.RWLayers {
		owned[rw.MountID], owned[rw.InitID] = true, true
	}
	ents, err := s.src.ReadDir(s.driverDir)
	if err != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: %v", s.driverDir, err))
		return
	}
	for i, e := range ents {
		if i >= maxEntries {
			break
		}
		n := path.Base(e.Name)
		if !owned[n] {
			what := "directory"
			if !e.Mode.IsDir() {
				what = e.Mode.Type().String() + " entry"
			}
			s.Orphans = append(s.Orphans, Orphan{Runtime: model.RuntimeDocker, Mtime: model.T(e.Mtime), Path: "/" + path.Join(s.driverDir, n), Why: what + " no image layer, container or -init layer refers to"})
		}
	}
}

// buildPods groups the containers dockershim or cri-dockerd made by pod.
func (s *Store) buildPods() {
	byKey := map[string]*model.Pod{}
	var order []string
	key := func(c *model.Container) string {
		if c.Pod.UID != "" {
			return c.Pod.UID
		}
		return c.Pod.Namespace + "/" + c.Pod.Name
	}
	get := func(c *model.Container) *model.Pod {
		k := key(c)
		p := byKey[k]
		if p == nil {
			p = &model.Pod{Runtime: model.RuntimeDocker, Namespace: c.Pod.Namespace, Name: c.Pod.Name, UID: c.Pod.UID, RuntimeNS: Namespace, Labels: map[string]string{}, State: model.StateUnknown, Containers: []model.PodContainer{}, Warnings: []string{}}
			byKey[k] = p
			order = append(order, k)
		}
		return p
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Pod == nil || c.Kind != model.KindSandbox {
			continue
		}
		p := get(c)
		if p.SandboxID != "" {
			p.Warnings = append(p.Warnings, fmt.Sprintf("more than one sandbox container (%s, %s)", p.SandboxID, c.ID))
			if c.CreatedAt.Before(s.createdOf(p.SandboxID).Time) {
				continue
			}
		}
		p.SandboxID, p.CreatedAt, p.State = c.ID, c.CreatedAt, c.Status.State
		for k, v := range c.Labels {
			p.Labels[k] = v
		}
		if c.Spec != nil {
			p.CgroupParent = c.Spec.CgroupsPath
		}
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Pod == nil || c.Kind != model.KindContainer {
			continue
		}
		p := get(c)
		p.Containers = append(p.Containers, model.PodContainer{ID: c.ID, Name: c.ContainerName, Image: c.Image, State: c.Status.State})
	}
	for _, k := range order {
		p := byKey[k]
		if p.SandboxID == "" {
			p.Warnings = append(p.Warnings, "no pod sandbox container in the data root; pod known from its containers' labels")
		}
		model.SortPodContainers(p.Containers)
		s.Pods = append(s.Pods, *p)
	}
	model.SortPods(s.Pods)
}

func (s *Store) createdOf(id string) model.Time {
	for _, c := range s.Containers {
		if c.ID == id {
			return c.CreatedAt
		}
	}
	return model.Time{}
}

// buildSnapshots lists image layers (committed), containers' read-write
// layers (active) and their -init layers (kind "init").
func (s *Store) buildSnapshots() {
	for _, l := range s.Layers {
		s.Snapshots = append(s.Snapshots, model.Snapshot{
			Runtime: model.RuntimeDocker, Namespace: Namespace, Snapshotter: s.Driver,
			Key: l.ChainID, Name: l.ChainID, Parent: l.Parent, Kind: "committed",
			ID: l.CacheID, Dir: l.Dir, Size: l.Size, Labels: map[string]string{}, Containers: []string{}, Warnings: l.Warnings,
		})
	}
	for _, rw := range s.RWLayers {
		if rw.MountID == "" {
			continue
		}
		s.Snapshots = append(s.Snapshots, model.Snapshot{
			Runtime: model.RuntimeDocker, Namespace: Namespace, Snapshotter: s.Driver,
			Key: rw.ContainerID, Name: rw.ContainerID, Parent: rw.Parent, Kind: "active",
			ID: rw.MountID, Dir: rw.UpperDir, Labels: map[string]string{}, Containers: []string{rw.ContainerID}, Warnings: rw.Warnings,
		})
		if rw.InitID != "" {
			s.Snapshots = append(s.Snapshots, model.Snapshot{
				Runtime: model.RuntimeDocker, Namespace: Namespace, Snapshotter: s.Driver,
				Key: rw.ContainerID + initSuffix, Name: rw.ContainerID + initSuffix, Parent: rw.Parent, Kind: "init",
				ID: rw.InitID, Dir: rw.InitDir, Labels: map[string]string{}, Containers: []string{}, Warnings: []string{},
			})
		}
	}
}

func (s *Store) countNamespace() {
	ns := model.Namespace{Runtime: model.RuntimeDocker, Name: Namespace, Labels: map[string]string{}, Images: len(s.Images), Snapshots: len(s.Snapshots)}
	for _, c := range s.Containers {
		if c.Kind == model.KindSandbox {
			ns.Sandboxes++
		} else {
			ns.Containers++
		}
	}
	s.Namespaces = []model.Namespace{ns}
}

// normalise makes empty lists print as [] rather than null.
func (s *Store) normalise() {
	for i := range s.Containers {
		s.Containers[i].Warnings = model.NonNil(s.Containers[i].Warnings)
		s.Containers[i].Labels = model.NonNilMap(s.Containers[i].Labels)
	}
	for i := range s.Images {
		s.Images[i].Warnings = model.NonNil(s.Images[i].Warnings)
		s.Images[i].Labels = model.NonNilMap(s.Images[i].Labels)
	}
	for i := range s.Snapshots {
		s.Snapshots[i].Warnings = model.NonNil(s.Snapshots[i].Warnings)
	}
	for i := range s.Layers {
		s.Layers[i].Warnings = model.NonNil(s.Layers[i].Warnings)
	}
	for i := range s.RWLayers {
		s.RWLayers[i].Warnings = model.NonNil(s.RWLayers[i].Warnings)
	}
	for i := range s.ImageConfigs {
		s.ImageConfigs[i].Warnings = model.NonNil(s.ImageConfigs[i].Warnings)
	}
}
