package containerd

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// Bounds on the state files read.
const (
	maxCRIStatus = 1 << 20
	maxRuncState = 4 << 20
)

// criStatus is the CRI plugin's io.containerd.grpc.v1.cri/containers/<id>/status.
type criStatus struct {
	Version    string `json:"Version"`
	Pid        int    `json:"Pid"`
	CreatedAt  int64  `json:"CreatedAt"`
	StartedAt  int64  `json:"StartedAt"`
	FinishedAt int64  `json:"FinishedAt"`
	ExitCode   int    `json:"ExitCode"`
	Reason     string `json:"Reason"`
	Message    string `json:"Message"`
	Removing   bool   `json:"Removing"`
	Unknown    bool   `json:"Unknown"`
}

// runcState is the part of runc's state.json we read.
type runcState struct {
	ID      string    `json:"id"`
	InitPid int       `json:"init_process_pid"`
	Created time.Time `json:"created"`
}

// readStatus fills each container's status from what the evidence holds
// (README, "State"): the CRI plugin's status file, runc's state.json, the
// shim's task bundle, and for a container the CRI plugin did not make, a
// captured state directory that holds no task for it.
func (s *Store) readStatus() {
	tasks := s.capturedTasks()
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.Kind == model.KindContainer && pathutil.PlainName(c.ID) {
			s.readCRIStatus(c)
		}
		if s.StateDir == "" || !pathutil.PlainName(c.ID) || !pathutil.PlainName(c.Namespace) {
			continue
		}
		ex := s.extra[c.Namespace+"/"+c.ID]
		if s.readTask(c, ex) || tasks == "" {
			continue
		}
		if c.Status.State == model.StateUnknown && len(c.Status.Sources) == 0 && c.Kind == model.KindContainer && !ex.criManaged(c) {
			// Created and never given a task (or its task was deleted):
			// what containerd's clients call "Created".
			c.Status.State = model.StateCreated
			c.Status.Sources = append(c.Status.Sources, tasks)
		}
	}
}

// capturedTasks is the shim's task directory of the state directory when
// the state directory was captured ("" when not, or when it may not be
// read: a store warning then says so).
func (s *Store) capturedTasks() string {
	if s.StateDir == "" {
		return ""
	}
	d := path.Join(s.StateDir, taskV2Dir)
	_, err := s.src.ReadDir(s.rel(d))
	if err == nil {
		return d
	}
	if errors.Is(err, fs.ErrPermission) {
		s.Warnings = append(s.Warnings, evidence.WarningOf(pathutil.Denied(s.src, s.rel(d), err)))
	}
	return ""
}

// readState reads a state file of a container; one that may not be read
// is also a warning on the container.
func (s *Store) readState(c *model.Container, p string, max int64) ([]byte, error) {
	b, err := evidence.ReadFile(s.src, s.rel(p), max)
	if err != nil && errors.Is(err, fs.ErrPermission) {
		c.Warnings = append(c.Warnings, evidence.WarningOf(pathutil.Denied(s.src, s.rel(p), err)))
	}
	return b, err
}

// readCRIStatus reads the CRI plugin's status file of a container.
func (s *Store) readCRIStatus(c *model.Container) {
	p := path.Join(s.Root, criStateDir, "containers", c.ID, "status")
	b, err := s.readState(c, p, maxCRIStatus)
	if err != nil {
		return
	}
	var cs criStatus
	if err := json.Unmarshal(b, &cs); err != nil {
		c.Warnings = append(c.Warnings, ondisk.Warning(p, "CRI status JSON", ondisk.JSONErr(err, 0)))
		if !ondisk.TypeError(err) {
			return
		}
		// a value of the wrong type: the rest of the status stands
	}
	st := &c.Status
	st.Sources = append(st.Sources, p)
	st.Pid = cs.Pid
	st.Reason = cs.Reason
	if cs.StartedAt > 0 {
		st.StartedAt = model.T(time.Unix(0, cs.StartedAt).UTC())
	}
	switch {
	case cs.FinishedAt > 0:
		st.State = model.StateExited
		st.FinishedAt = model.T(time.Unix(0, cs.FinishedAt).UTC())
		code := cs.ExitCode
		st.ExitCode = &code
	case cs.StartedAt > 0:
		st.State = model.StateRunning
	case cs.CreatedAt > 0:
		st.State = model.StateCreated
	}
}

// readTask reads what the state directory holds of a container's task:
// runc's state.json, else the shim's bundle. It says whether either was
// there (or could not be read).
func (s *Store) readTask(c *model.Container, ex *ctrExtra) bool {
	st := &c.Status
	isDir := func(r string) bool {
		fi, err := s.src.Lstat(r)
		return err == nil && fi.Mode.IsDir()
	}
	runcRoot := path.Join(s.StateDir, defaultRuncRoot)
	if ex != nil && ex.runcRoot != "" {
		if r, _ := pathutil.Rebase(s.src, ex.runcRoot, isDir); r != "" {
			runcRoot = "/" + r
		}
	}
	sp := path.Join(runcRoot, c.Namespace, c.ID, "state.json")
	b, err := s.readState(c, sp, maxRuncState)
	if err == nil {
		var rs runcState
		if err := json.Unmarshal(b, &rs); err != nil {
			c.Warnings = append(c.Warnings, ondisk.Warning(sp, "runc state JSON", ondisk.JSONErr(err, 0)))
		} else {
			st.Sources = append(st.Sources, sp)
			if st.State == model.StateUnknown || st.State == model.StateCreated {
				st.State = model.StateRunning
			}
			if st.Pid == 0 && st.State == model.StateRunning {
				st.Pid = rs.InitPid
			}
		}
		return true
	}
	if errors.Is(err, fs.ErrPermission) {
		return true
	}
	for _, dir := range []string{taskV2Dir, taskV1Dir} {
		bundle := path.Join(s.StateDir, dir, c.Namespace, c.ID)
		_, err := s.src.Lstat(s.rel(bundle))
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				c.Warnings = append(c.Warnings, evidence.WarningOf(pathutil.Denied(s.src, s.rel(bundle), err)))
				return true
			}
			continue
		}
		if dir == taskV2Dir {
			if _, err := s.src.Lstat(s.rel(path.Join(bundle, "config.json"))); err == nil {
				st.Sources = append(st.Sources, bundle)
				if st.State == model.StateUnknown {
					// The shim still held a task, but runc had no state for it.
					st.State = model.StateStopped
				}
			}
		}
		return true
	}
	return false
}
