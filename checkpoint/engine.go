package checkpoint

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"time"

	"github.com/deadnode/deadnode/evidence"
)

// What Podman, CRI-O and the kubelet write around the CRIU images: the
// container's config and spec, its network, deleted files, and CRIU's log.

// configDump is what Podman and CRI-O write to config.dump (the fields
// both use; Podman's file is its whole container config).
type configDump struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	RootfsImage     string            `json:"rootfsImage"`
	RootfsImageRef  string            `json:"rootfsImageRef"`
	RootfsImageName string            `json:"rootfsImageName"`
	RootfsImageID   string            `json:"rootfsImageID"`
	Runtime         string            `json:"runtime"`
	OCIRuntime      string            `json:"ociRuntime"`
	CreatedTime     time.Time         `json:"createdTime"`
	CheckpointedAt  time.Time         `json:"checkpointedTime"`
	Labels          map[string]string `json:"labels"`
}

type specDump struct {
	Annotations map[string]string `json:"annotations"`
	Hostname    string            `json:"hostname"`
	Process     *struct {
		Args []string `json:"args"`
	} `json:"process"`
	Linux *struct {
		CgroupsPath string `json:"cgroupsPath"`
	} `json:"linux"`
}

// readEngineFiles reads what the engine wrote around the CRIU images.
func readEngineFiles(cp *Checkpoint, opt *Options) {
	c, top := &cp.Container, cp.top
	warn := func(err error) {
		if err != nil && !isNotExist(err) {
			cp.warn(err)
		}
	}
	// read decodes one JSON file; what is not JSON of the wanted shape is
	// a warning.
	read := func(name, what string, v any) bool {
		b, err := top.readFile(name, maxMetadata)
		if err != nil {
			warn(err)
			return false
		}
		if err := json.Unmarshal(b, v); err != nil {
			warn(&evidence.FormatError{File: top.label(name), Offset: -1, Msg: what, Err: err})
			return false
		}
		return true
	}
	var cfg configDump
	if read(fileConfigDump, "not a container config", &cfg) {
		c.ID, c.Name, c.Runtime, c.CreatedAt = cfg.ID, cfg.Name, firstOf(cfg.Runtime, cfg.OCIRuntime), cfg.CreatedTime
		c.Image = firstOf(cfg.RootfsImageName, cfg.RootfsImage)
		c.ImageID = firstOf(cfg.RootfsImageID, cfg.RootfsImageRef)
		c.Labels = cfg.Labels
		if !cfg.CheckpointedAt.IsZero() {
			c.CheckpointedAt, c.CheckpointedAtSource = cfg.CheckpointedAt, fileConfigDump
		}
		cp.Format = "cri-o"
	}
	var sp specDump
	if read(fileSpecDump, "not an OCI spec", &sp) {
		applySpec(c, &sp)
		if sp.Annotations[annContainerManager] == "libpod" {
			cp.Format = "podman"
		} else if cp.Format == "criu" {
			cp.Format = "cri-o"
		}
	}
	switch cp.Format {
	case "podman":
		c.Engine = "podman"
	case "cri-o":
		c.Engine = "cri-o"
	}
	if b, err := top.readFile(fileDeletedFiles, maxMetadata); err == nil {
		var l []string
		if err := json.Unmarshal(b, &l); err != nil {
			warn(&evidence.FormatError{File: top.label(fileDeletedFiles), Offset: -1, Msg: "not a JSON list", Err: err})
		}
		cp.DeletedFiles = l
	} else {
		warn(err)
	}
	if b, err := top.readFile(fileNetworkStatus, maxMetadata); err == nil {
		cp.Network = parseNetwork(b)
	} else {
		warn(err)
	}
	if !cp.imgs.exists(imgStatsDump) && top.exists(imgStatsDump) {
		loadStats(cp, top)
	}
	if v := criuVersion(top); v != "" {
		cp.CRIUVersion = v
	}
}

func applySpec(c *Container, sp *specDump) {
	a := sp.Annotations
	c.Annotations = a
	c.Hostname = sp.Hostname
	if sp.Process != nil {
		c.Args = sp.Process.Args
	}
	c.Pod = firstOf(c.Labels[annKubePodName], a[annKubePodName], a[annCRISandboxName])
	c.Namespace = firstOf(c.Labels[annKubePodNamespace], a[annKubePodNamespace], a[annCRISandboxNs])
	if c.Name == "" {
		c.Name = firstOf(a[annKubeContainerName], a[annCRIContainerName], a[annCRIOName])
	}
	if c.Image == "" {
		c.Image = firstOf(a[annCRIImageName], a[annCRIOImageName])
	}
	if c.CreatedAt.IsZero() {
		if t, err := time.Parse(time.RFC3339Nano, a[annCRIOCreated]); err == nil {
			c.CreatedAt = t
		}
	}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// parseNetwork reads the IPs and MACs of network.status (Podman's map of
// networks, or CNI results as a list); the raw text is kept when small.
func parseNetwork(b []byte) *Network {
	n := &Network{}
	if len(b) <= 4096 {
		n.Raw = string(bytes.TrimSpace(b))
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return n
	}
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 16 {
			return
		}
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if s, ok := x.(string); ok {
					switch k {
					case "ipnet", "address":
						n.IPs = append(n.IPs, s)
					case "mac_address", "mac":
						n.MACs = append(n.MACs, s)
					}
				}
				walk(x, depth+1)
			}
		case []any:
			for _, x := range t {
				walk(x, depth+1)
			}
		}
	}
	walk(v, 0)
	sort.Strings(n.IPs)
	sort.Strings(n.MACs)
	return n
}

var criuVersionLine = regexp.MustCompile(`\) Version: ([0-9][0-9A-Za-z.+~-]*)`)

// criuVersion finds "Version: X" near the start of dump.log, next to the
// images or beside them (containerd's work dir is elsewhere).
func criuVersion(im *ImageDir) string {
	f, err := im.src.Open(im.path(fileDumpLog))
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, min(f.Size(), maxDumpLogHead))
	n, _ := f.ReadAt(buf, 0)
	if m := criuVersionLine.FindSubmatch(buf[:n]); m != nil {
		return string(m[1])
	}
	return ""
}
