package image

// This file holds the records of images: descriptors, platforms,
// manifests, indexes, configs, layers and checkpoint indexes.

import (
	"fmt"
	"strings"
	"time"
)

// Descriptor is a reference to a blob.
type Descriptor struct {
	MediaType   string            `json:"media_type"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	URLs        []string          `json:"urls,omitempty"`
	// BlobPresent is set by Resolve when the blob is in the store.
	BlobPresent bool `json:"blob_present"`
}

// Platform is an os/architecture pair, as in an index.
type Platform struct {
	OS           string   `json:"os"`
	Architecture string   `json:"architecture"`
	Variant      string   `json:"variant,omitempty"`
	OSVersion    string   `json:"os_version,omitempty"`
	OSFeatures   []string `json:"os_features,omitempty"`
}

// String formats p as os/arch[/variant].
func (p *Platform) String() string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatform reads os/arch[/variant].
func ParsePlatform(s string) (*Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return nil, fmt.Errorf("platform %q: want os/arch[/variant]", s)
	}
	p := &Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// DefaultPlatform is the platform picked from multi-platform indexes when
// none is given.
var DefaultPlatform = Platform{OS: "linux", Architecture: "amd64"}

// Manifest is an image manifest (OCI or Docker schema 2).
type Manifest struct {
	Digest        string            `json:"digest"`
	MediaType     string            `json:"media_type"`
	SchemaVersion int64             `json:"schema_version"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	ArtifactType  string            `json:"artifact_type,omitempty"`
}

// Index is an image index (OCI) or manifest list (Docker).
type Index struct {
	Digest        string            `json:"digest"`
	MediaType     string            `json:"media_type"`
	SchemaVersion int64             `json:"schema_version"`
	Manifests     []Descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Config is an image configuration.
type Config struct {
	Digest       string            `json:"digest"`
	MediaType    string            `json:"media_type"`
	Created      *time.Time        `json:"created,omitempty"`
	Author       string            `json:"author,omitempty"`
	OS           string            `json:"os"`
	Architecture string            `json:"architecture"`
	Variant      string            `json:"variant,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	User         string            `json:"user,omitempty"`
	WorkingDir   string            `json:"working_dir,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	ExposedPorts []string          `json:"exposed_ports,omitempty"`
	Volumes      []string          `json:"volumes,omitempty"`
	StopSignal   string            `json:"stop_signal,omitempty"`
	Shell        []string          `json:"shell,omitempty"`
	Healthcheck  []string          `json:"healthcheck,omitempty"`
	OnBuild      []string          `json:"on_build,omitempty"`
	RootFSType   string            `json:"rootfs_type"`
	DiffIDs      []string          `json:"diff_ids"`
	History      []History         `json:"history,omitempty"`
}

// History is one build step of an image.
type History struct {
	Created    *time.Time `json:"created,omitempty"`
	CreatedBy  string     `json:"created_by,omitempty"`
	Author     string     `json:"author,omitempty"`
	Comment    string     `json:"comment,omitempty"`
	EmptyLayer bool       `json:"empty_layer,omitempty"`
	// Layer is the index of the layer this step made, -1 for an empty layer
	// (or when the history does not line up with the layers).
	Layer int `json:"layer"`
}

// Layer is one layer of an image, joined from the manifest and the config.
type Layer struct {
	MediaType   string            `json:"media_type"`
	Compression string            `json:"compression"` // none, gzip, zstd, or "" when unknown
	Digest      string            `json:"digest"`      // compressed digest (the blob's name)
	Size        int64             `json:"size"`
	DiffID      string            `json:"diff_id"`  // sha256 of the uncompressed tar
	ChainID     string            `json:"chain_id"` // identity of the layer stack up to here
	BlobPresent bool              `json:"blob_present"`
	URLs        []string          `json:"urls,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Error is set when the layer's descriptor is unusable (unknown media
	// type, missing diff_id).
	Error string `json:"error,omitempty"`
}

// Checkpoint is the content of a containerd checkpoint index.
type Checkpoint struct {
	ImageName string       `json:"image_name,omitempty"` // the image the container ran
	CRIU      *Descriptor  `json:"criu,omitempty"`       // tar of CRIU images
	PreDump   *Descriptor  `json:"pre_dump,omitempty"`
	Config    *Descriptor  `json:"config,omitempty"` // OCI spec as a protobuf Any
	Options   *Descriptor  `json:"options,omitempty"`
	RW        *Descriptor  `json:"rw,omitempty"`       // diff of the container's RW layer
	Manifest  *Descriptor  `json:"manifest,omitempty"` // the base image's manifest
	Others    []Descriptor `json:"others,omitempty"`
}

// Image is a resolved target: an image (through an index if needed), a
// checkpoint, or an index with no manifest for the wanted platform.
type Image struct {
	Digest    string `json:"digest"` // the target's digest
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	Kind      string `json:"kind"` // image, checkpoint or index
	// Index is set when the target is an index (multi-platform image,
	// checkpoint, or unresolvable index).
	Index *Index `json:"index,omitempty"`
	// Platform is the platform of the image (from the index entry chosen,
	// else from the config).
	Platform *Platform `json:"platform,omitempty"`
	// PlatformChoice says how the manifest was picked from an index.
	PlatformChoice string      `json:"platform_choice,omitempty"`
	Manifest       *Manifest   `json:"manifest,omitempty"`
	Config         *Config     `json:"config,omitempty"`
	Layers         []Layer     `json:"layers,omitempty"`
	Checkpoint     *Checkpoint `json:"checkpoint,omitempty"`
	// Base is the resolved base image of a checkpoint.
	Base *Image `json:"base,omitempty"`
	// MissingBlobs lists the digests referenced but absent from the store.
	MissingBlobs []string `json:"missing_blobs,omitempty"`
	// CorruptBlobs lists the blobs read (config, nested manifests) whose
	// content does not hash to their name, or whose size differs from the
	// descriptor: evidence of tampering with the store.
	CorruptBlobs []string `json:"corrupt_blobs,omitempty"`
	// Problems are non-fatal inconsistencies found while resolving.
	Problems []string `json:"problems,omitempty"`
}
