package image

// This file resolves an image record through its index to a manifest,
// config and layers (and a checkpoint index to its parts).

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/deadnode/deadnode/evidence"
)

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
