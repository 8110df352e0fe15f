package docker

import (
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

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
			p = &model.Pod{Runtime: model.RuntimeDocker, Namespace: c.Pod.Namespace, Name: c.Pod.Name, UID: c.Pod.UID, RuntimeNS: Namespace, Labels: map[string]string{}, State: model.StateUnknown, Containers: []model.PodContainer{}, Warnings: []evidence.Warning{}}
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
			p.Warnings = append(p.Warnings, evidence.Warnf("", -1, "more than one sandbox container (%s, %s)", p.SandboxID, c.ID))
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
			p.Warnings = append(p.Warnings, evidence.Warnf("", -1, "no pod sandbox container in the data root; pod known from its containers' labels"))
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
				ID: rw.InitID, Dir: rw.InitDir, Labels: map[string]string{}, Containers: []string{}, Warnings: []evidence.Warning{},
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
