package docker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deadnode/deadnode/forensics/internal/ondisk"
)

// configV2 is the part of containers/<id>/config.v2.json read here.
type configV2 struct {
	ID      string    `json:"ID"`
	Created time.Time `json:"Created"`
	Name    string    `json:"Name"`
	Path    string    `json:"Path"`
	Args    []string  `json:"Args"`
	Image   string    `json:"Image"`
	Driver  string    `json:"Driver"`
	LogPath string    `json:"LogPath"`
	State   struct {
		Running    bool      `json:"Running"`
		Paused     bool      `json:"Paused"`
		Restarting bool      `json:"Restarting"`
		OOMKilled  bool      `json:"OOMKilled"`
		Dead       bool      `json:"Dead"`
		Pid        int       `json:"Pid"`
		ExitCode   int       `json:"ExitCode"`
		Error      string    `json:"Error"`
		StartedAt  time.Time `json:"StartedAt"`
		FinishedAt time.Time `json:"FinishedAt"`
	} `json:"State"`
	Config struct {
		Hostname   string            `json:"Hostname"`
		User       string            `json:"User"`
		Env        []string          `json:"Env"`
		Cmd        []string          `json:"Cmd"`
		Entrypoint []string          `json:"Entrypoint"`
		Image      string            `json:"Image"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"Config"`
	MountPoints     map[string]mountPoint `json:"MountPoints"`
	AppArmorProfile string                `json:"AppArmorProfile"`
	RestartCount    int                   `json:"RestartCount"`
}

// mountPoint is a volume or bind mount of config.v2.json.
type mountPoint struct {
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	RW          bool   `json:"RW"`
	Name        string `json:"Name"`
	Driver      string `json:"Driver"`
	Type        string `json:"Type"`
	Propagation string `json:"Propagation"`
}

// hostConfigJSON is the part of containers/<id>/hostconfig.json read here.
type hostConfigJSON struct {
	Binds     []string `json:"Binds"`
	LogConfig struct {
		Type   string            `json:"Type"`
		Config map[string]string `json:"Config"`
	} `json:"LogConfig"`
	NetworkMode    string            `json:"NetworkMode"`
	IpcMode        string            `json:"IpcMode"`
	PidMode        string            `json:"PidMode"`
	UTSMode        string            `json:"UTSMode"`
	Privileged     bool              `json:"Privileged"`
	ReadonlyRootfs bool              `json:"ReadonlyRootfs"`
	SecurityOpt    []string          `json:"SecurityOpt"`
	CapAdd         []string          `json:"CapAdd"`
	CapDrop        []string          `json:"CapDrop"`
	CgroupParent   string            `json:"CgroupParent"`
	Runtime        string            `json:"Runtime"`
	Annotations    map[string]string `json:"Annotations"`
}

// imageConfig is an image's config blob (imagedb/content/sha256/<id>).
type imageConfig struct {
	Created      time.Time `json:"created"`
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Config       struct {
		User       string            `json:"User"`
		Env        []string          `json:"Env"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		Created    time.Time `json:"created"`
		CreatedBy  string    `json:"created_by"`
		Comment    string    `json:"comment"`
		EmptyLayer bool      `json:"empty_layer"`
	} `json:"history"`
}

// decodeConfigV2 decodes config.v2.json; a value of the wrong type (a
// pid past int64) returns the rest of the record with the error.
func decodeConfigV2(b []byte) (*configV2, error) {
	var c configV2
	if err := strictObject(b, &c); err != nil {
		if ondisk.TypeError(err) {
			return &c, err
		}
		return nil, err
	}
	return &c, nil
}

// decodeHostConfig decodes hostconfig.json, as decodeConfigV2 does.
func decodeHostConfig(b []byte) (*hostConfigJSON, error) {
	var h hostConfigJSON
	if err := strictObject(b, &h); err != nil {
		if ondisk.TypeError(err) {
			return &h, err
		}
		return nil, err
	}
	return &h, nil
}

func decodeImageConfig(b []byte) (*imageConfig, error) {
	var c imageConfig
	if err := strictObject(b, &c); err != nil {
		return nil, err
	}
	if len(c.RootFS.DiffIDs) > maxChain {
		return nil, fmt.Errorf("%d diff_ids, over the limit of %d", len(c.RootFS.DiffIDs), maxChain)
	}
	return &c, nil
}

// decodeRepositories decodes repositories.json: repository -> reference ->
// image id.
// A reference whose image id is not a string is left out (an error of
// the joined error returned), the others kept: one bad value lost every
// image's names.
func decodeRepositories(b []byte) (map[string]map[string]string, error) {
	var r struct {
		Repositories map[string]map[string]json.RawMessage `json:"Repositories"`
	}
	if err := strictObject(b, &r); err != nil {
		return nil, err
	}
	out := make(map[string]map[string]string, len(r.Repositories))
	var errs []error
	for repo, refs := range r.Repositories {
		m := make(map[string]string, len(refs))
		for ref, raw := range refs {
			var id string
			if err := json.Unmarshal(raw, &id); err != nil {
				errs = append(errs, fmt.Errorf("%s: not an image id (%s)", ref, bytes.TrimSpace(raw[:min(len(raw), 64)])))
				continue
			}
			m[ref] = id
		}
		out[repo] = m
	}
	return out, errors.Join(errs...)
}

// strictObject decodes one JSON object and refuses trailing data (a torn
// or concatenated file).
func strictObject(b []byte, v any) error { return ondisk.Object(b, v, "empty file") }

// parseLower splits an overlay lower file ("l/A:l/B:…", top first) into
// its l/<short> entries (see ondisk.ParseLower).
func parseLower(b []byte) ([]string, error) { return ondisk.ParseLower(b, linkDir, maxLowers) }

// plainName says whether s can be used as one path component.

// validDigest says whether d is "sha256:<64 lowercase hex>".
func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	return ok && validHex(h)
}

func validHex(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
