package image

// This file decodes indexes, manifests and configs, bounded and checked.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/deadnode/deadnode/evidence"
)

func docKind(b []byte) string {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
		Layers    json.RawMessage `json:"layers"`
		FSLayers  json.RawMessage `json:"fsLayers"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		mt := types.MediaType(probe.MediaType)
		if mt.IsIndex() {
			return "index"
		}
		if mt.IsImage() {
			return "manifest"
		}
		return ""
	case probe.Manifests != nil:
		return "index"
	case probe.Config != nil && probe.Layers != nil:
		return "manifest"
	}
	return ""
}

// kindErr reads as err and matches both err and kind with errors.Is.
type kindErr struct{ kind, err error }

func (e kindErr) Error() string   { return e.err.Error() }
func (e kindErr) Unwrap() []error { return []error{e.kind, e.err} }

func addMissing(img *Image, d string) {
	for _, m := range img.MissingBlobs {
		if m == d {
			return
		}
	}
	img.MissingBlobs = append(img.MissingBlobs, d)
}

func malformed(file, what string, err error) error {
	off := int64(-1)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	return &evidence.FormatError{File: file, Offset: off, Msg: "malformed " + what, Err: kindErr{ErrMalformed, err}}
}

func convDesc(d v1.Descriptor) Descriptor {
	out := Descriptor{
		MediaType:   string(d.MediaType),
		Digest:      d.Digest.String(),
		Size:        d.Size,
		Annotations: d.Annotations,
		URLs:        d.URLs,
	}
	if d.Digest.Algorithm == "" {
		out.Digest = ""
	}
	if d.Platform != nil {
		out.Platform = &Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant,
			OSVersion: d.Platform.OSVersion, OSFeatures: d.Platform.OSFeatures}
	}
	return out
}

func checkDesc(file, where string, d Descriptor) error {
	if d.Digest == "" {
		return &evidence.FormatError{File: file, Offset: -1, Msg: where + ": descriptor without digest", Err: ErrMalformed}
	}
	if _, _, err := ParseDigest(d.Digest); err != nil {
		return &evidence.FormatError{File: file, Offset: -1, Msg: where, Err: kindErr{ErrMalformed, err}}
	}
	if d.Size < 0 {
		return &evidence.FormatError{File: file, Offset: -1, Msg: fmt.Sprintf("%s: negative size %d", where, d.Size), Err: ErrMalformed}
	}
	return nil
}

// DecodeIndex decodes an OCI index or Docker manifest list. file names the
// blob in errors.
func DecodeIndex(file string, b []byte) (*Index, error) {
	var m v1.IndexManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, malformed(file, "index", err)
	}
	if m.SchemaVersion != 2 {
		return nil, &evidence.FormatError{File: file, Offset: -1, Msg: fmt.Sprintf("index schemaVersion %d, want 2", m.SchemaVersion), Err: ErrMalformed}
	}
	if m.MediaType != "" && !m.MediaType.IsIndex() {
		return nil, &evidence.FormatError{File: file, Offset: -1, Msg: fmt.Sprintf("mediaType %q is not an index", m.MediaType), Err: ErrUnknownMediaType}
	}
	ix := &Index{MediaType: string(m.MediaType), SchemaVersion: m.SchemaVersion, Annotations: m.Annotations}
	if ix.MediaType == "" {
		ix.MediaType = MediaTypeOCIIndex
	}
	for i, d := range m.Manifests {
		cd := convDesc(d)
		if err := checkDesc(file, fmt.Sprintf("manifests[%d]", i), cd); err != nil {
			return nil, err
		}
		ix.Manifests = append(ix.Manifests, cd)
	}
	return ix, nil
}

// DecodeManifest decodes an OCI image manifest or Docker schema 2 manifest.
func DecodeManifest(file string, b []byte) (*Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, malformed(file, "manifest", err)
	}
	if m.SchemaVersion != 2 {
		return nil, &evidence.FormatError{File: file, Offset: -1, Msg: fmt.Sprintf("manifest schemaVersion %d, want 2", m.SchemaVersion), Err: ErrMalformed}
	}
	if m.MediaType != "" && !m.MediaType.IsImage() {
		return nil, &evidence.FormatError{File: file, Offset: -1, Msg: fmt.Sprintf("mediaType %q is not an image manifest", m.MediaType), Err: ErrUnknownMediaType}
	}
	out := &Manifest{MediaType: string(m.MediaType), SchemaVersion: m.SchemaVersion, Annotations: m.Annotations, ArtifactType: m.ArtifactType}
	if out.MediaType == "" {
		out.MediaType = MediaTypeOCIManifest
	}
	out.Config = convDesc(m.Config)
	if err := checkDesc(file, "config", out.Config); err != nil {
		return nil, err
	}
	for i, d := range m.Layers {
		cd := convDesc(d)
		if err := checkDesc(file, fmt.Sprintf("layers[%d]", i), cd); err != nil {
			return nil, err
		}
		out.Layers = append(out.Layers, cd)
	}
	if m.Subject != nil {
		sd := convDesc(*m.Subject)
		out.Subject = &sd
	}
	return out, nil
}

// DecodeConfig decodes an image configuration (OCI or Docker).
func DecodeConfig(file string, b []byte) (*Config, error) {
	var c v1.ConfigFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, malformed(file, "config", err)
	}
	out := &Config{
		Author: c.Author, OS: c.OS, Architecture: c.Architecture, Variant: c.Variant,
		Entrypoint: c.Config.Entrypoint, Cmd: c.Config.Cmd, Env: c.Config.Env, User: c.Config.User,
		WorkingDir: c.Config.WorkingDir, Labels: c.Config.Labels, StopSignal: c.Config.StopSignal,
		Shell: c.Config.Shell, OnBuild: c.Config.OnBuild, RootFSType: c.RootFS.Type,
	}
	if !c.Created.IsZero() {
		t := c.Created.UTC()
		out.Created = &t
	}
	if c.Config.Healthcheck != nil {
		out.Healthcheck = c.Config.Healthcheck.Test
	}
	out.ExposedPorts = sortedKeys(c.Config.ExposedPorts)
	out.Volumes = sortedKeys(c.Config.Volumes)
	if c.RootFS.Type != "" && c.RootFS.Type != "layers" {
		return nil, &evidence.FormatError{File: file, Offset: -1, Msg: fmt.Sprintf("rootfs.type %q, want \"layers\"", c.RootFS.Type), Err: ErrMalformed}
	}
	for _, d := range c.RootFS.DiffIDs {
		out.DiffIDs = append(out.DiffIDs, d.String())
	}
	layer := 0
	for _, h := range c.History {
		oh := History{CreatedBy: h.CreatedBy, Author: h.Author, Comment: h.Comment, EmptyLayer: h.EmptyLayer, Layer: -1}
		if !h.Created.IsZero() {
			t := h.Created.UTC()
			oh.Created = &t
		}
		if !h.EmptyLayer {
			oh.Layer = layer
			layer++
		}
		out.History = append(out.History, oh)
	}
	if len(c.History) > 0 && layer != len(out.DiffIDs) {
		for i := range out.History {
			out.History[i].Layer = -1
		}
	}
	return out, nil
}

func sortedKeys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ChainIDs computes containerd's identity.ChainIDs of a list of diff_ids:
// chain[0] = diff[0], chain[i] = sha256(chain[i-1] + " " + diff[i]).
func ChainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// IsCheckpointIndex reports whether an index is a containerd checkpoint:
// it carries the containerd.io/checkpoint annotation or a CRIU checkpoint
// entry.
func IsCheckpointIndex(ix *Index) bool {
	if ix.Annotations[LabelCheckpoint] == "true" {
		return true
	}
	for _, d := range ix.Manifests {
		if d.MediaType == MediaTypeCheckpointCRIU || d.MediaType == MediaTypeCheckpointPreDump || d.MediaType == MediaTypeCheckpointConfig {
			return true
		}
	}
	return false
}
