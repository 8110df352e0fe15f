package docker

import (
	"encoding/json"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// readContainers reads containers/<id>: every container's record.
func (s *Store) readContainers() {
	dir := path.Join(s.root, containersDir)
	ents, warns := ondisk.List(s.src, dir, maxEntries, "containers")
	s.Warnings = append(s.Warnings, warns...)
	for _, e := range ents {
		id := path.Base(e.Name)
		if e.Mode&fs.ModeSymlink != 0 {
			s.Warnings = append(s.Warnings, evidence.Warnf("", -1, "/%s/%s is a symbolic link, not a container directory; not followed", dir, id))
			continue
		}
		if !e.Mode.IsDir() || !pathutil.PlainName(id) {
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
		if cfg, err = decodeConfigV2(b); err != nil {
			w := ondisk.Warning("/"+cfgFile, "container config JSON", err)
			if cfg == nil {
				w.Msg += "; the container is known only by its directory"
			} else {
				w.Msg += "; that value is left out, the rest read"
			}
			c.Warnings = append(c.Warnings, w)
		}
	} else {
		c.Warnings = append(c.Warnings, evidence.Warnf("/"+cfgFile, -1, "%v; the container is known only by its directory", err))
	}
	var hc *hostConfigJSON
	hcFile := path.Join(dir, hostConfig)
	if hb, err := evidence.ReadFile(s.src, hcFile, maxJSON); err == nil {
		if hc, err = decodeHostConfig(hb); err != nil {
			c.Warnings = append(c.Warnings, ondisk.Warning("/"+hcFile, "host config JSON", err))
		}
	} else if cfg != nil {
		c.Warnings = append(c.Warnings, evidence.Warnf("/"+hcFile, -1, "%v", err))
	}
	if cfg != nil {
		if cfg.ID != "" && cfg.ID != id {
			c.Warnings = append(c.Warnings, evidence.Warnf("/"+cfgFile, -1, "records id %q, not its directory's name", cfg.ID))
		}
		s.fillFromConfig(&c, cfg, hc, b, cfgFile)
		if cfg.Driver != "" && cfg.Driver != s.Driver {
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "container uses storage driver %q, not %q: layers not resolved", cfg.Driver, s.Driver))
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
		c.Attempt = ondisk.K8sAttempt(name)
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
