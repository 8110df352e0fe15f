package model

import (
	"encoding/json"
)

// Spec is the part of a container's OCI runtime spec an examiner reads
// first, plus the whole spec as recorded.
type Spec struct {
	Args            []string        `json:"args"`
	Env             []string        `json:"env"`
	Cwd             string          `json:"cwd"`
	User            SpecUser        `json:"user"`
	Hostname        string          `json:"hostname"`
	Mounts          []SpecMount     `json:"mounts"`
	Capabilities    []string        `json:"capabilities"` // effective set
	Privileged      bool            `json:"privileged"`
	HostPID         bool            `json:"host_pid"`
	HostNetwork     bool            `json:"host_network"`
	HostIPC         bool            `json:"host_ipc"`
	ReadonlyRootfs  bool            `json:"readonly_rootfs"`
	Seccomp         bool            `json:"seccomp"`
	AppArmorProfile string          `json:"apparmor_profile"`
	CgroupsPath     string          `json:"cgroups_path"`
	Raw             json.RawMessage `json:"raw"`
}

// SpecUser is the process user.
type SpecUser struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additional_gids"`
	Username       string   `json:"username,omitempty"`
}

// SpecMount is a mount of the spec.
type SpecMount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options"`
}

// ParseSpec decodes an OCI runtime spec (JSON) into a Spec. privileged is
// what the orchestrator recorded (CRI's security context), since the spec
// itself has no such flag.
func ParseSpec(raw []byte, privileged bool) (*Spec, error) {
	var s ociSpec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	out := &Spec{Hostname: s.Hostname, Raw: json.RawMessage(raw), Privileged: privileged}
	if p := s.Process; p != nil {
		out.Args, out.Env, out.Cwd = p.Args, p.Env, p.Cwd
		out.User = SpecUser{UID: p.User.UID, GID: p.User.GID, AdditionalGids: p.User.AdditionalGids, Username: p.User.Username}
		if p.Capabilities != nil {
			out.Capabilities = p.Capabilities.Effective
		}
		out.AppArmorProfile = p.ApparmorProfile
	}
	if s.Root != nil {
		out.ReadonlyRootfs = s.Root.Readonly
	}
	for _, m := range s.Mounts {
		out.Mounts = append(out.Mounts, SpecMount{Destination: m.Destination, Type: m.Type, Source: m.Source, Options: m.Options})
	}
	if l := s.Linux; l != nil {
		out.HostPID, out.HostNetwork, out.HostIPC = true, true, true
		for _, ns := range l.Namespaces {
			switch ns.Type {
			case "pid":
				out.HostPID = ns.Path != "" && isHostNS(ns.Path)
			case "network":
				out.HostNetwork = ns.Path != "" && isHostNS(ns.Path)
			case "ipc":
				out.HostIPC = ns.Path != "" && isHostNS(ns.Path)
			}
		}
		out.Seccomp = len(l.Seccomp) > 0 && string(l.Seccomp) != "null"
		out.CgroupsPath = l.CgroupsPath
		if !privileged && out.Capabilities != nil && len(out.Capabilities) >= 38 && !out.Seccomp {
			// Every capability and no seccomp filter: what a privileged
			// container looks like when nothing else recorded it.
			out.Privileged = true
		}
	}
	return out, nil
}

// isHostNS says whether a namespace path joins the host's namespace (pid 1).
func isHostNS(p string) bool {
	return len(p) > 8 && p[:8] == "/proc/1/"
}

// ociSpec is the subset of github.com/opencontainers/runtime-spec we read;
// declared here so that a field of an unexpected type in hostile evidence
// does not fail the whole decode of what we need.
type ociSpec struct {
	Hostname string `json:"hostname"`
	Process  *struct {
		Args []string `json:"args"`
		Env  []string `json:"env"`
		Cwd  string   `json:"cwd"`
		User struct {
			UID            uint32   `json:"uid"`
			GID            uint32   `json:"gid"`
			AdditionalGids []uint32 `json:"additionalGids"`
			Username       string   `json:"username"`
		} `json:"user"`
		Capabilities *struct {
			Effective []string `json:"effective"`
		} `json:"capabilities"`
		ApparmorProfile string `json:"apparmorProfile"`
	} `json:"process"`
	Root *struct {
		Readonly bool `json:"readonly"`
	} `json:"root"`
	Mounts []struct {
		Destination string   `json:"destination"`
		Type        string   `json:"type"`
		Source      string   `json:"source"`
		Options     []string `json:"options"`
	} `json:"mounts"`
	Linux *struct {
		Namespaces []struct {
			Type string `json:"type"`
			Path string `json:"path"`
		} `json:"namespaces"`
		Seccomp     json.RawMessage `json:"seccomp"`
		CgroupsPath string          `json:"cgroupsPath"`
	} `json:"linux"`
}
