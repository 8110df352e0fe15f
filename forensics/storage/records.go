package storage

import (
	"maps"
	"path"
	"slices"
	"sort"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/records"
	"github.com/deadnode/deadnode/forensics/model"
)

// findOrphans lists the overlay/<id> directories no layer record owns and
// the overlay-containers/<id> directories (userdata: spec, logs) of
// containers no longer in containers.json.
func (s *Store) findOrphans() {
	scan := func(dir string, owned map[string]bool, why string) {
		ents, warns := ondisk.List(s.src, dir, maxRecords, "directories")
		s.Warnings = append(s.Warnings, warns...)
		for _, e := range ents {
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
	var pods records.Pods
	get := func(key, runtime string) *model.Pod {
		return pods.Get(key, func() *model.Pod { return &model.Pod{Runtime: runtime, State: model.StateUnknown} })
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
		maps.Copy(p.Labels, c.Labels)
		if c.Spec != nil {
			p.CgroupParent = c.Spec.CgroupsPath
		}
	}
	if s.libpod != nil {
		for _, id := range slices.Sorted(maps.Keys(s.libpod.pods)) {
			lp := s.libpod.pods[id]
			key := "uid:" + id
			if lp.state != nil && lp.state.InfraContainerID != "" {
				key = "sb:" + lp.state.InfraContainerID
			}
			p := get(key, model.RuntimePodman)
			p.Namespace, p.Name, p.UID, p.RuntimeNS = lp.config.Namespace, lp.config.Name, lp.config.ID, lp.config.Namespace
			p.CreatedAt = model.T(lp.config.Created)
			maps.Copy(p.Labels, lp.config.Labels)
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
		if !pods.Has(key) && c.Pod.UID != "" && pods.Has("uid:"+c.Pod.UID) {
			key = "uid:" + c.Pod.UID
		}
		p := get(key, c.Runtime)
		if p.Name == "" && p.UID == "" {
			p.Namespace, p.Name, p.UID, p.RuntimeNS = c.Pod.Namespace, c.Pod.Name, c.Pod.UID, c.Namespace
			if c.SandboxID != "" {
				p.SandboxID = c.SandboxID
				p.Warnings = append(p.Warnings, evidence.Warnf("", -1, "sandbox %s is not in the store; pod known from its containers", c.SandboxID))
			} else {
				p.Warnings = append(p.Warnings, evidence.Warnf("", -1, "no pod sandbox in the store; pod known from its containers' labels"))
			}
		}
		records.Add(p, c)
	}
	s.Pods = pods.List()
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
				Runtime: s.runtime, Name: n, Meta: model.Meta{CreatedAt: r.Created, Labels: map[string]string{}}, Warnings: r.Warnings,
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
