package storage

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/model"
)

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
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "annotation %s: %v", annCRIOLabels, err))
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
				c.Warnings = append(c.Warnings, evidence.Warnf("/"+p, -1, "%v", err))
			}
			continue
		}
		st, err := decodeCRIOState(b)
		if err != nil {
			c.Warnings = append(c.Warnings, ondisk.Warning("/"+p, "CRI-O state JSON", err))
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
		c.Warnings = append(c.Warnings, evidence.Warnf("/"+p, -1, "%v", err))
		return
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		c.Warnings = append(c.Warnings, evidence.Warnf("/"+p, -1, "%q is not an exit code", b))
		return
	}
	cs := &c.Status
	cs.Sources = append(cs.Sources, "/"+p)
	if cs.ExitCode != nil && *cs.ExitCode != code {
		c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "/%s says exit code %d, the state file %d", p, code, *cs.ExitCode))
	}
	cs.State, cs.Pid, cs.ExitCode = model.StateExited, 0, &code
	if cs.FinishedAt.IsZero() {
		cs.FinishedAt = model.T(st.Mtime)
	}
}
