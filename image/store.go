package image

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/deadnode/deadnode/evidence"
)

// DefaultMaxJSON bounds the size of a manifest, index or config blob.
const DefaultMaxJSON = 4 << 20

// MaxIndexDepth bounds the nesting of indexes inside indexes.
const MaxIndexDepth = 4

var (
	// ErrBlobMissing is returned when a referenced blob is not in the store.
	ErrBlobMissing = errors.New("blob absent from the content store")
	// ErrDigestMismatch is returned when a blob's content does not hash to its name.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnknownMediaType is returned for a media type this package does not read.
	ErrUnknownMediaType = errors.New("unknown media type")
	// ErrTooLarge is returned when a JSON blob exceeds the bound.
	ErrTooLarge = errors.New("blob exceeds the size bound")
	// ErrSizeMismatch is returned when a blob's size differs from its descriptor.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrMalformed is returned for a document that does not decode.
	ErrMalformed = errors.New("malformed document")
)

// Store reads blobs of a containerd content store inside the evidence.
type Store struct {
	Src evidence.Source
	// Dir is the content store root (…/io.containerd.content.v1.content);
	// a path ending in blobs/sha256 is accepted as well.
	Dir string
	// MaxJSON bounds manifests, indexes and configs (DefaultMaxJSON when 0).
	MaxJSON int64
}

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

func (s *Store) blobDir() string {
	d := strings.Trim(path.Clean("/"+s.Dir), "/")
	if d == "" {
		d = "."
	}
	if path.Base(d) == "sha256" && path.Base(path.Dir(d)) == ContentBlobsDir {
		return path.Dir(d)
	}
	return path.Join(d, ContentBlobsDir)
}

// ParseDigest validates a digest string ("sha256:<64 hex>", sha384 or
// sha512) and returns its algorithm and hex.
func ParseDigest(d string) (alg, hexPart string, err error) {
	h, err := v1.NewHash(d)
	if err != nil {
		return "", "", fmt.Errorf("digest %q: %w", d, err)
	}
	if h.Algorithm != "sha256" && h.Algorithm != "sha384" && h.Algorithm != "sha512" {
		return "", "", fmt.Errorf("digest %q: unsupported algorithm", d)
	}
	return h.Algorithm, h.Hex, nil
}

func newHasher(alg string) hash.Hash {
	switch alg {
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return sha256.New()
}

// BlobPath returns the name of a blob inside the evidence.
func (s *Store) BlobPath(dgst string) (string, error) {
	alg, hx, err := ParseDigest(dgst)
	if err != nil {
		return "", err
	}
	return path.Join(s.blobDir(), alg, hx), nil
}

// Blob opens a blob. A missing blob gives an error wrapping ErrBlobMissing.
func (s *Store) Blob(dgst string) (evidence.File, error) {
	p, err := s.BlobPath(dgst)
	if err != nil {
		return nil, err
	}
	f, err := s.Src.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %s: %w", s.Src.String(), p, ErrBlobMissing)
		}
		return nil, err
	}
	return f, nil
}

// HasBlob reports whether a blob is present.
func (s *Store) HasBlob(dgst string) bool {
	p, err := s.BlobPath(dgst)
	if err != nil {
		return false
	}
	st, err := s.Src.Lstat(p)
	return err == nil && st.Mode.IsRegular()
}

// ReadBlob reads a whole blob of at most max bytes, checking its size
// against want (when want >= 0) and its content against its digest.
func (s *Store) ReadBlob(dgst string, want, max int64) ([]byte, error) {
	alg, _, err := ParseDigest(dgst)
	if err != nil {
		return nil, err
	}
	p, _ := s.BlobPath(dgst)
	f, err := s.Blob(dgst)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if want >= 0 && f.Size() != want {
		return nil, &evidence.FormatError{File: p, Offset: -1, Msg: fmt.Sprintf("blob is %d bytes, descriptor says %d", f.Size(), want), Err: ErrSizeMismatch}
	}
	if f.Size() > max {
		return nil, &evidence.FormatError{File: p, Offset: -1, Msg: fmt.Sprintf("blob is %d bytes, limit %d", f.Size(), max), Err: ErrTooLarge}
	}
	buf := make([]byte, f.Size())
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, f.Size()), buf); err != nil {
		return nil, &evidence.FormatError{File: p, Offset: -1, Msg: "read", Err: err}
	}
	h := newHasher(alg)
	h.Write(buf)
	if got := alg + ":" + hex.EncodeToString(h.Sum(nil)); got != dgst {
		return nil, &evidence.FormatError{File: p, Offset: -1, Msg: "content hashes to " + got, Err: ErrDigestMismatch}
	}
	return buf, nil
}

// BlobCheck is the result of checking one blob's integrity.
type BlobCheck struct {
	Digest   string `json:"digest"`
	Present  bool   `json:"present"`
	Size     int64  `json:"size"`            // size on disk
	WantSize int64  `json:"want_size"`       // descriptor size, -1 when unknown
	Computed string `json:"computed"`        // digest of the content
	OK       bool   `json:"ok"`              // present, right size, right digest
	Error    string `json:"error,omitempty"` // why not OK
}

// CheckBlob hashes a whole blob in one pass and compares it with its
// name and with want (the descriptor size, or -1).
func (s *Store) CheckBlob(dgst string, want int64) BlobCheck {
	c := BlobCheck{Digest: dgst, WantSize: want}
	alg, _, err := ParseDigest(dgst)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	f, err := s.Blob(dgst)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	defer f.Close()
	c.Present = true
	c.Size = f.Size()
	h := newHasher(alg)
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
		c.Error = err.Error()
		return c
	}
	c.Computed = alg + ":" + hex.EncodeToString(h.Sum(nil))
	switch {
	case c.Computed != dgst:
		c.Error = "content hashes to " + c.Computed
	case want >= 0 && want != c.Size:
		c.Error = fmt.Sprintf("blob is %d bytes, descriptor says %d", c.Size, want)
	default:
		c.OK = true
	}
	return c
}

func (s *Store) maxJSON() int64 {
	if s.MaxJSON > 0 {
		return s.MaxJSON
	}
	return DefaultMaxJSON
}

// docKind sniffs a JSON document: "index", "manifest", or "" when unclear.
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

// ResolveDigest resolves a blob by digest alone, sniffing whether it is an
// index or a manifest.
func (s *Store) ResolveDigest(dgst string, platform *Platform) (*Image, error) {
	b, err := s.ReadBlob(dgst, -1, s.maxJSON())
	if err != nil {
		return nil, err
	}
	p, _ := s.BlobPath(dgst)
	var mt string
	switch docKind(b) {
	case "index":
		mt = MediaTypeOCIIndex
	case "manifest":
		mt = MediaTypeOCIManifest
	default:
		return nil, &evidence.FormatError{File: p, Offset: -1, Msg: "neither an image index nor a manifest", Err: ErrUnknownMediaType}
	}
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(b, &probe) == nil && probe.MediaType != "" {
		mt = probe.MediaType
	}
	return s.Resolve(Descriptor{MediaType: mt, Digest: dgst, Size: int64(len(b))}, platform)
}

// Resolve reads the target of an image record (an index or a manifest) and
// everything it references: for an index, the manifest of platform (or
// DefaultPlatform when nil); then the config and the layers. A checkpoint
// index gives Kind "checkpoint". The error is for an unusable target;
// problems with referenced blobs are listed in the Image.
func (s *Store) Resolve(target Descriptor, platform *Platform) (*Image, error) {
	if platform == nil {
		platform = &DefaultPlatform
	}
	return s.resolve(target, platform, 0)
}

func (s *Store) resolve(target Descriptor, platform *Platform, depth int) (*Image, error) {
	if err := checkDesc("target", "target", target); err != nil {
		return nil, err
	}
	img := &Image{Digest: target.Digest, MediaType: target.MediaType, Size: target.Size}
	mt := types.MediaType(target.MediaType)
	switch {
	case mt.IsIndex():
		return s.resolveIndex(img, target, platform, depth)
	case mt.IsImage():
		img.Kind = KindImage
		if err := s.resolveManifest(img, target); err != nil {
			return nil, err
		}
		return img, nil
	case mt.IsSchema1():
		return nil, fmt.Errorf("%s: Docker schema 1 manifests are not supported: %w", target.Digest, ErrUnknownMediaType)
	}
	return nil, fmt.Errorf("%s: media type %q: %w", target.Digest, target.MediaType, ErrUnknownMediaType)
}

func (s *Store) readDoc(d Descriptor) ([]byte, string, error) {
	p, err := s.BlobPath(d.Digest)
	if err != nil {
		return nil, "", err
	}
	want := d.Size
	if want == 0 {
		want = -1
	}
	b, err := s.ReadBlob(d.Digest, want, s.maxJSON())
	return b, p, err
}

func (s *Store) resolveIndex(img *Image, target Descriptor, platform *Platform, depth int) (*Image, error) {
	if depth >= MaxIndexDepth {
		return nil, fmt.Errorf("%s: indexes nested deeper than %d", target.Digest, MaxIndexDepth)
	}
	b, p, err := s.readDoc(target)
	if err != nil {
		return nil, err
	}
	ix, err := DecodeIndex(p, b)
	if err != nil {
		return nil, err
	}
	ix.Digest = target.Digest
	if ix.MediaType != target.MediaType {
		img.Problems = append(img.Problems, fmt.Sprintf("index mediaType %q but descriptor says %q", ix.MediaType, target.MediaType))
	}
	for i := range ix.Manifests {
		ix.Manifests[i].BlobPresent = s.HasBlob(ix.Manifests[i].Digest)
		if !ix.Manifests[i].BlobPresent {
			addMissing(img, ix.Manifests[i].Digest)
		}
	}
	img.Index = ix
	if target.Annotations[LabelCheckpoint] == "true" || IsCheckpointIndex(ix) {
		img.Kind = KindCheckpoint
		s.resolveCheckpoint(img, ix, platform, depth)
		return img, nil
	}
	// Pick the manifest for the platform.
	var cands []int
	for i, d := range ix.Manifests {
		if d.Annotations[AnnotationDockerReferenceType] != "" {
			continue // attestation manifest
		}
		if !types.MediaType(d.MediaType).IsImage() && !types.MediaType(d.MediaType).IsIndex() {
			continue
		}
		if d.Platform == nil {
			if len(ix.Manifests) == 1 {
				cands = append(cands, i)
			}
			continue
		}
		if d.Platform.OS == platform.OS && d.Platform.Architecture == platform.Architecture &&
			(platform.Variant == "" || platform.Variant == d.Platform.Variant) {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		img.Kind = KindIndex
		var have []string
		for _, d := range ix.Manifests {
			have = append(have, d.Platform.String())
		}
		img.PlatformChoice = fmt.Sprintf("no manifest for %s among %d (%s)", platform, len(ix.Manifests), strings.Join(have, ", "))
		return img, nil
	}
	// Prefer an entry without variant when none was asked for.
	pick := cands[0]
	for _, i := range cands {
		if ix.Manifests[i].Platform != nil && ix.Manifests[i].Platform.Variant == "" {
			pick = i
			break
		}
	}
	d := ix.Manifests[pick]
	if d.Platform != nil {
		img.PlatformChoice = fmt.Sprintf("picked %s (manifests[%d] of %d)", d.Platform, pick, len(ix.Manifests))
	} else {
		img.PlatformChoice = fmt.Sprintf("picked the only manifest (no platform), manifests[%d]", pick)
	}
	if types.MediaType(d.MediaType).IsIndex() {
		sub, err := s.resolve(d, platform, depth+1)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", target.Digest, err)
		}
		sub.Digest, sub.MediaType, sub.Size, sub.Index = img.Digest, img.MediaType, img.Size, ix
		sub.Problems = append(img.Problems, sub.Problems...)
		sub.MissingBlobs = append(img.MissingBlobs, sub.MissingBlobs...)
		sub.CorruptBlobs = append(img.CorruptBlobs, sub.CorruptBlobs...)
		return sub, nil
	}
	img.Kind = KindImage
	img.Platform = d.Platform
	if err := s.resolveManifest(img, d); err != nil {
		return nil, fmt.Errorf("index %s: %w", target.Digest, err)
	}
	return img, nil
}

func (s *Store) resolveCheckpoint(img *Image, ix *Index, platform *Platform, depth int) {
	cp := &Checkpoint{ImageName: ix.Annotations[AnnotationCheckpointImageName]}
	for i := range ix.Manifests {
		d := ix.Manifests[i]
		switch {
		case d.MediaType == MediaTypeCheckpointCRIU:
			cp.CRIU = &d
		case d.MediaType == MediaTypeCheckpointPreDump:
			cp.PreDump = &d
		case d.MediaType == MediaTypeCheckpointConfig:
			cp.Config = &d
		case d.MediaType == MediaTypeCheckpointOptions:
			cp.Options = &d
		case types.MediaType(d.MediaType).IsImage() && cp.Manifest == nil:
			cp.Manifest = &d
			if cp.ImageName == "" {
				cp.ImageName = d.Annotations[AnnotationImageName]
			}
		case (d.MediaType == MediaTypeCheckpointRW || layerCompression[d.MediaType] != "") && cp.RW == nil:
			cp.RW = &d
		default:
			cp.Others = append(cp.Others, d)
		}
	}
	img.Checkpoint = cp
	if cp.CRIU == nil {
		img.Problems = append(img.Problems, "checkpoint index without a CRIU tar ("+MediaTypeCheckpointCRIU+")")
	}
	if cp.Manifest != nil && cp.Manifest.BlobPresent {
		base, err := s.resolve(*cp.Manifest, platform, depth+1)
		if err != nil {
			img.Problems = append(img.Problems, "base image: "+err.Error())
		} else {
			img.Base = base
			img.Platform = base.Platform
		}
	}
	if cp.RW != nil {
		img.Platform = cp.RW.Platform
	}
}

func (s *Store) resolveManifest(img *Image, d Descriptor) error {
	b, p, err := s.readDoc(d)
	if err != nil {
		return err
	}
	m, err := DecodeManifest(p, b)
	if err != nil {
		return err
	}
	m.Digest = d.Digest
	if m.MediaType != d.MediaType {
		img.Problems = append(img.Problems, fmt.Sprintf("manifest mediaType %q but descriptor says %q", m.MediaType, d.MediaType))
	}
	img.Manifest = m
	cmt := types.MediaType(m.Config.MediaType)
	if !cmt.IsConfig() {
		img.Problems = append(img.Problems, fmt.Sprintf("config %s: media type %q is not an image config", m.Config.Digest, m.Config.MediaType))
	}
	m.Config.BlobPresent = s.HasBlob(m.Config.Digest)
	if !m.Config.BlobPresent {
		addMissing(img, m.Config.Digest)
	} else if cmt.IsConfig() {
		cb, cp, err := s.readDoc(m.Config)
		if err == nil {
			img.Config, err = DecodeConfig(cp, cb)
		}
		if err != nil {
			img.Problems = append(img.Problems, "config: "+err.Error())
			if errors.Is(err, ErrDigestMismatch) || errors.Is(err, ErrSizeMismatch) {
				img.CorruptBlobs = append(img.CorruptBlobs, m.Config.Digest)
			}
		} else {
			img.Config.Digest, img.Config.MediaType = m.Config.Digest, m.Config.MediaType
		}
	}
	if img.Platform == nil && img.Config != nil && img.Config.OS != "" {
		img.Platform = &Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant}
	}
	var diffIDs []string
	if img.Config != nil {
		diffIDs = img.Config.DiffIDs
		if len(diffIDs) != len(m.Layers) {
			img.Problems = append(img.Problems, fmt.Sprintf("manifest has %d layers but config has %d diff_ids", len(m.Layers), len(diffIDs)))
		}
	}
	var chain []string
	if len(diffIDs) == len(m.Layers) {
		chain = ChainIDs(diffIDs)
	}
	for i, ld := range m.Layers {
		l := Layer{MediaType: ld.MediaType, Compression: layerCompression[ld.MediaType], Digest: ld.Digest, Size: ld.Size,
			URLs: ld.URLs, Annotations: ld.Annotations}
		if chain != nil {
			l.DiffID, l.ChainID = diffIDs[i], chain[i]
		} else {
			l.Error = "no diff_id for this layer in the config"
		}
		if l.Compression == "" {
			l.Error = fmt.Sprintf("media type %q: %v", ld.MediaType, ErrUnknownMediaType)
			img.Problems = append(img.Problems, fmt.Sprintf("layers[%d] %s: %s", i, ld.Digest, l.Error))
		}
		l.BlobPresent = s.HasBlob(ld.Digest)
		m.Layers[i].BlobPresent = l.BlobPresent
		if !l.BlobPresent {
			addMissing(img, ld.Digest)
		}
		img.Layers = append(img.Layers, l)
	}
	return nil
}
