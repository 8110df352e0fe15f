package docker

import (
	"maps"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/records"
	"github.com/deadnode/deadnode/forensics/model"
)

// buildPods groups the containers dockershim or cri-dockerd made by pod.
func (s *Store) buildPods() {
	var pods records.Pods
	get := func(c *model.Container) *model.Pod {
		key := c.Pod.UID
		if key == "" {
			key = c.Pod.Namespace + "/" + c.Pod.Name
		}
		return pods.Get(key, func() *model.Pod {
			return &model.Pod{Runtime: model.RuntimeDocker, Namespace: c.Pod.Namespace, Name: c.Pod.Name, UID: c.Pod.UID, RuntimeNS: Namespace, State: model.StateUnknown}
		})
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
		maps.Copy(p.Labels, c.Labels)
		if c.Spec != nil {
			p.CgroupParent = c.Spec.CgroupsPath
		}
	}
	for i := range s.Containers {
		if c := &s.Containers[i]; c.Pod != nil && c.Kind == model.KindContainer {
			records.Add(get(c), c)
		}
	}
	pods.Each(func(p *model.Pod) {
		if p.SandboxID == "" {
			p.Warnings = append(p.Warnings, evidence.Warnf("", -1, "no pod sandbox container in the data root; pod known from its containers' labels"))
		}
	})
	s.Pods = pods.List()
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
