package containerd

import (
	"maps"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/records"
	"github.com/deadnode/deadnode/forensics/model"
	bolt "go.etcd.io/bbolt"
)

// ctrExtra is what a container's record holds beyond the model's fields.
type ctrExtra struct {
	runcRoot string
	cri      *criMetadata
}

// readContainers reads a namespace's containers/<id> buckets. A container
// whose bucket the database's page check cut out is still listed, by its
// id, with the damage as its warnings.
func (s *Store) readContainers(ns string, nb *bolt.Bucket, w where) {
	eachRecord(nb, bucketContainers, w, true, func(k []byte, b *bolt.Bucket, cw where) {
		c := model.Container{
			Runtime:   model.RuntimeContainerd,
			ID:        string(k),
			Namespace: ns,
			Kind:      model.KindContainer,
			Meta:      model.Meta{Labels: map[string]string{}},
			LowerDirs: []string{},
			Status:    model.Status{State: model.StateUnknown, Sources: []string{}},
		}
		ex := &ctrExtra{}
		if b != nil {
			c.Warnings = s.fillContainer(&c, ex, b, cw)
			s.Warnings = append(s.Warnings, c.Warnings...)
		}
		// Damage inside the record's bucket is already a store warning.
		c.Warnings = append(c.Warnings, cw.damage()...)
		s.extra[ns+"/"+c.ID] = ex
		s.Containers = append(s.Containers, c)
	})
}

// fillContainer maps a container's bucket onto its record.
func (s *Store) fillContainer(c *model.Container, ex *ctrExtra, b *bolt.Bucket, cw where) []evidence.Warning {
	var warn []evidence.Warning
	c.Image = string(b.Get([]byte(keyImage)))
	c.CreatedAt, c.UpdatedAt, c.Labels = stamps(b, cw, &warn)
	c.Snapshotter = string(b.Get([]byte(keySnapshotter)))
	c.SnapshotKey = string(b.Get([]byte(keySnapshotKey)))
	c.SandboxID = string(b.Get([]byte(keySandboxID)))
	if rb := b.Bucket([]byte(bucketRuntime)); rb != nil {
		c.RuntimeHandler = string(rb.Get([]byte(keyName)))
		if o := rb.Get([]byte(keyOptions)); o != nil {
			if _, val, err := decodeAny(o); err != nil {
				warn = append(warn, cw.warnf("runtime options: %v", err))
			} else {
				_, ex.runcRoot = runcOptions(val)
			}
		}
	}
	if eb := b.Bucket([]byte(bucketExtensions)); eb != nil {
		for _, key := range []string{criContainerMeta, criSandboxMeta} {
			if v := eb.Get([]byte(key)); v != nil {
				m, err := decodeCRIMetadata(v)
				if err != nil {
					warn = append(warn, cw.warnf("extension %s: %v", key, err))
					continue
				}
				ex.cri = m
			}
		}
	}
	if c.Labels[labelCRIKind] == model.KindSandbox {
		c.Kind = model.KindSandbox
	}
	if m := ex.cri; m != nil {
		md := m.Metadata
		c.ContainerName = md.Config.Metadata.Name
		if c.Kind == model.KindSandbox {
			c.Pod = &model.PodRef{Namespace: md.Config.Metadata.Namespace, Name: md.Config.Metadata.Name, UID: md.Config.Metadata.UID}
			c.SandboxID = c.ID
			c.LogPath = md.Config.LogDirectory
		} else {
			if c.SandboxID == "" {
				c.SandboxID = md.SandboxID
			}
			c.LogPath = md.LogPath
		}
		c.Attempt = md.Config.Metadata.Attempt
		c.ImageRef = md.ImageRef
		c.Annotations = md.Config.Annotations
		if c.RuntimeHandler == "" {
			c.RuntimeHandler = md.RuntimeHandler
		}
	}
	if c.ContainerName == "" {
		c.ContainerName = c.Labels[labelCtrName]
	}
	if c.Pod == nil && c.Labels[labelPodName] != "" {
		c.Pod = &model.PodRef{Namespace: c.Labels[labelPodNS], Name: c.Labels[labelPodName], UID: c.Labels[labelPodUID]}
	}
	if c.Kind == model.KindSandbox && c.SandboxID == "" {
		c.SandboxID = c.ID
	}
	if sp := b.Get([]byte(keySpec)); sp != nil {
		_, val, err := decodeAny(sp)
		if err == nil {
			priv := ex.cri != nil && ex.cri.Metadata.Config.Linux.SecurityContext.Privileged
			c.Spec, err = model.ParseSpec(val, priv)
		}
		if err != nil {
			warn = append(warn, cw.warnf("spec: %v", err))
		}
	}
	return warn
}

// criManaged says whether the CRI plugin made the container (its status
// is then the plugin's to record).
func (ex *ctrExtra) criManaged(c *model.Container) bool {
	return ex != nil && ex.cri != nil || c.Labels[labelCRIKind] != ""
}

// resolveContainers joins each container with its snapshot and the
// snapshot's layer directories.
func (s *Store) resolveContainers() {
	idx := map[string]int{}
	for i, sp := range s.Snapshots {
		idx[sp.Namespace+"\x00"+sp.Snapshotter+"\x00"+sp.Key] = i
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.SnapshotKey == "" {
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "no snapshot key: the container has no root filesystem snapshot"))
			continue
		}
		j, ok := idx[c.Namespace+"\x00"+c.Snapshotter+"\x00"+c.SnapshotKey]
		if !ok {
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "snapshot %q (%s) is not in the metadata database", c.SnapshotKey, c.Snapshotter))
			continue
		}
		sp := &s.Snapshots[j]
		sp.Containers = append(sp.Containers, c.ID)
		up, lo, warn := s.layers(c.Snapshotter, sp.Name)
		c.UpperDir = up
		if lo != nil {
			c.LowerDirs = lo
		}
		c.Warnings = append(c.Warnings, warn...)
	}
}

// buildPods gathers the pods of the CRI plugin's sandboxes and of the
// containers whose sandbox is gone.
func (s *Store) buildPods() {
	var pods records.Pods
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Kind != model.KindSandbox {
			continue
		}
		p := pods.Get(c.Namespace+"/"+c.ID, func() *model.Pod {
			return &model.Pod{Runtime: model.RuntimeContainerd, SandboxID: c.ID, RuntimeNS: c.Namespace, CreatedAt: c.CreatedAt, State: c.Status.State}
		})
		if c.Pod != nil {
			p.Namespace, p.Name, p.UID = c.Pod.Namespace, c.Pod.Name, c.Pod.UID
		}
		maps.Copy(p.Labels, c.Labels)
		if ex := s.extra[c.Namespace+"/"+c.ID]; ex != nil && ex.cri != nil {
			p.IP = ex.cri.Metadata.IP
			p.CgroupParent = ex.cri.Metadata.Config.Linux.CgroupParent
		}
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Kind != model.KindContainer || (c.SandboxID == "" && c.Pod == nil) {
			continue
		}
		p := pods.Get(c.Namespace+"/"+c.SandboxID, func() *model.Pod {
			// The sandbox is gone from the database: keep the pod as the
			// container's labels name it.
			p := &model.Pod{Runtime: model.RuntimeContainerd, SandboxID: c.SandboxID, RuntimeNS: c.Namespace, State: model.StateUnknown,
				Warnings: []evidence.Warning{evidence.Warnf("", -1, "sandbox %q is not in the metadata database; pod known from its containers", c.SandboxID)}}
			if c.Pod != nil {
				p.Namespace, p.Name, p.UID = c.Pod.Namespace, c.Pod.Name, c.Pod.UID
			}
			return p
		})
		records.Add(p, c)
	}
	s.Pods = pods.List()
}
