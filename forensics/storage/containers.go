package storage

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"sort"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// readContainers reads containers.json (and the run root's
// volatile-containers.json), then the containers only libpod's state
// database still knows.
func (s *Store) readContainers() {
	seen := map[string]bool{}
	files := []string{s.listFile(s.graph, containersSuffix+"/"+containersJSON)}
	if s.run != "" {
		files = append(files, s.listFile(s.run, containersSuffix+"/"+volatileCtrsJSON))
	}
	for _, file := range files {
		s.readList(file, func(i int, raw json.RawMessage, at recordAt) {
			rec, err := decodeContainer(raw)
			if err != nil {
				s.Warnings = append(s.Warnings, at.warnf("record %d: %v", i, err))
				return
			}
			if !pathutil.PlainName(rec.ID) {
				s.Warnings = append(s.Warnings, at.warnf("record %d: container id %q is not a plain name", i, rec.ID))
				return
			}
			if seen[rec.ID] {
				s.Warnings = append(s.Warnings, at.warnf("container %s listed twice; the first is kept", rec.ID))
				return
			}
			seen[rec.ID] = true
			c := s.container(rec, at)
			s.Warnings = append(s.Warnings, c.Warnings...)
			s.Containers = append(s.Containers, c)
		})
	}
	if s.libpod != nil {
		for _, id := range s.libpod.order {
			if seen[id] || !pathutil.PlainName(id) {
				continue
			}
			c := s.container(&csContainer{ID: id}, recordAt{})
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "in libpod's state database but not in containers.json: its storage was removed; no layer directories"))
			s.Warnings = append(s.Warnings, c.Warnings...)
			s.Containers = append(s.Containers, c)
		}
	}
	sort.SliceStable(s.Containers, func(i, j int) bool { return s.Containers[i].ID < s.Containers[j].ID })
}

// readSpec reads a container's OCI spec from its userdata directory in the
// graph root, else the run root.
func (s *Store) readSpec(id string) ([]byte, string, []evidence.Warning) {
	var warn []evidence.Warning
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
			warn = append(warn, evidence.Warnf("/"+p, -1, "%v", err))
		}
	}
	return nil, "", warn
}

// container builds a container's record from its containers.json record,
// its libpod or CRI-O state, and its spec.
func (s *Store) container(rec *csContainer, at recordAt) model.Container {
	c := model.Container{
		Runtime:     model.RuntimePodman,
		ID:          rec.ID,
		Kind:        model.KindContainer,
		ImageRef:    rec.ImageID,
		Meta:        model.Meta{CreatedAt: model.T(rec.Created)},
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
		c.Warnings = append(c.Warnings, at.warnf("container %s: metadata JSON: %v", rec.ID, err))
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
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "not in libpod's state database: no recorded state (a Buildah container, or one libpod no longer knows)"))
		} else if s.libpodUnread {
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "libpod's state database is unreadable (see the store's warnings): no recorded state"))
		} else {
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "no libpod state database and no CRI-O metadata: no recorded state"))
		}
		if c.Pod == nil && c.Labels[labelPodName] != "" {
			// Named the kubelet way (k8s_<container>_<pod>_<ns>_<uid>_<attempt>)
			// with the labels the kubelet sets.
			c.Pod = &model.PodRef{Namespace: c.Labels[labelPodNamespace], Name: c.Labels[labelPodName], UID: c.Labels[labelPodUID]}
			if n := c.Labels[labelContainerName]; n != "" {
				c.Attempt = ondisk.K8sAttempt(c.ContainerName)
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
			c.Warnings = append(c.Warnings, ondisk.Warning(specFile, "OCI spec JSON", err))
		} else {
			c.Spec = sp
		}
	}
	if rec.LayerID != "" || lp == nil {
		s.containerLayers(&c, rec.LayerID)
	}
	return c
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
				c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "pod %s is not in libpod's state database", cfg.Pod))
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
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "libpod state says exit code %d, its exit-code bucket %d", code, *lp.exitCode))
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
