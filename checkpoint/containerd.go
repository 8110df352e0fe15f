package checkpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"google.golang.org/protobuf/encoding/protowire"
)

var digestRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ociIndex is the part of an OCI index (or manifest list) we read.
type ociIndex struct {
	SchemaVersion int `json:"schemaVersion"`
	Manifests     []struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	} `json:"manifests"`
	Annotations map[string]string `json:"annotations"`
}

func blobPath(contentDir, digest string) (string, error) {
	if !digestRe.MatchString(digest) {
		return "", fmt.Errorf("%q is not a sha256 digest", digest)
	}
	return path.Join(contentDir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")), nil
}

// ContainerdOptions adds what the node's metadata knows about a containerd
// checkpoint image, which the image's blobs do not hold.
type ContainerdOptions struct {
	Options
	// ImageName is the checkpoint image's name in meta.db
	// (containerd.io/checkpoint/<container id>:<MM-DD-YYYY-hh:mm:ss>); it
	// gives the container id and the checkpoint time.
	ImageName string
}

// OpenContainerd opens a containerd checkpoint image from a node's content
// store: contentDir is the io.containerd.content.v1.content directory
// inside src, indexDigest the image's target (an OCI index whose manifests
// include the CRIU tar, the spec and the RW layer). The CRIU tar is read in
// place. Close the Checkpoint.
func OpenContainerd(src evidence.Source, contentDir, indexDigest string, opt *ContainerdOptions) (*Checkpoint, error) {
	if opt == nil {
		opt = &ContainerdOptions{}
	}
	contentDir, err := evidence.Clean(contentDir)
	if err != nil {
		return nil, err
	}
	idx, err := readIndex(src, contentDir, indexDigest)
	if err != nil {
		return nil, err
	}
	var criuDigest, configDigest, layerDigest, layerType, image string
	for _, m := range idx.Manifests {
		switch m.MediaType {
		case mediaTypeCriuTar:
			criuDigest = m.Digest
		case mediaTypeCheckpointConfig:
			configDigest = m.Digest
		case mediaTypeLayerGzip, mediaTypeLayerTar:
			layerDigest, layerType = m.Digest, m.MediaType
		case mediaTypeImageManifest:
			image = firstOf(m.Annotations[annotationContainerdName], image)
		}
	}
	if criuDigest == "" {
		return nil, fmt.Errorf("%s: index %s has no %s manifest: not a checkpoint image", src, indexDigest, mediaTypeCriuTar)
	}
	bp, err := blobPath(contentDir, criuDigest)
	if err != nil {
		return nil, err
	}
	f, err := src.Open(bp)
	if err != nil {
		return nil, err
	}
	label := src.String() + ":" + bp
	a, err := evidence.NewArchive(context.TODO(), f, f.Size(), label, archiveOptions(&opt.Options))
	if err != nil {
		f.Close()
		return nil, err
	}
	cp, err := Open(a, "", &opt.Options)
	if err != nil {
		a.Close()
		f.Close()
		return nil, err
	}
	cp.closer = func() error { a.Close(); return f.Close() }
	cp.Source = src.String() + ":" + indexDigest
	cp.Format = "containerd"
	cp.Warnings = append(evidence.WarningLines(a.Warnings()), cp.Warnings...)
	c := &cp.Container
	c.Engine = "containerd"
	c.Image = firstOf(idx.Annotations[annotationIndexImageName], image)
	if configDigest != "" {
		if sp, err := readCheckpointConfig(src, contentDir, configDigest); err != nil {
			cp.Warnings = append(cp.Warnings, err.Error())
		} else {
			applySpec(c, sp)
			c.Image = firstOf(c.Image, sp.Annotations[annCRIImageName])
			if sp.Linux != nil && sp.Linux.CgroupsPath != "" {
				// runc names the container's cgroup after its id, last.
				c.ID = path.Base(strings.ReplaceAll(sp.Linux.CgroupsPath, ":", "/"))
			}
		}
	}
	if n := opt.ImageName; strings.HasPrefix(n, containerdCheckpointPrefix) {
		rest := strings.TrimPrefix(n, containerdCheckpointPrefix)
		if i := strings.Index(rest, ":"); i > 0 {
			c.ID = rest[:i]
			if t, err := time.Parse(containerdCheckpointTimeFmt, rest[i+1:]); err == nil {
				c.CheckpointedAt, c.CheckpointedAtSource = t, "image_name"
			}
		} else {
			c.ID = rest
		}
	}
	if layerDigest != "" {
		lp, err := blobPath(contentDir, layerDigest)
		if err == nil {
			var lf evidence.File
			if lf, err = src.Open(lp); err == nil {
				var have map[string]bool
				var info *RootfsDiff
				have, info, err = scanDiff(lf, lf.Size(), src.String()+":"+lp, exePaths(cp), layerType == mediaTypeLayerGzip)
				lf.Close()
				info.Member = layerDigest
				cp.RootfsDiff = info
				setOrigins(cp, have, &opt.Options)
			}
		}
		if err != nil {
			cp.Warnings = append(cp.Warnings, fmt.Sprintf("RW layer %s: %v", layerDigest, err))
		}
	}
	return cp, nil
}

func readIndex(src evidence.Source, contentDir, digest string) (*ociIndex, error) {
	bp, err := blobPath(contentDir, digest)
	if err != nil {
		return nil, err
	}
	b, err := evidence.ReadFile(src, bp, maxIndex)
	if err != nil {
		return nil, err
	}
	var idx ociIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, &evidence.FormatError{File: src.String() + ":" + bp, Offset: -1, Msg: "not an OCI index", Err: err}
	}
	return &idx, nil
}

// readCheckpointConfig decodes the checkpoint config blob: a protobuf Any
// (field 1 type_url, field 2 value) whose value is the OCI spec as JSON.
func readCheckpointConfig(src evidence.Source, contentDir, digest string) (*specDump, error) {
	bp, err := blobPath(contentDir, digest)
	if err != nil {
		return nil, err
	}
	b, err := evidence.ReadFile(src, bp, maxMetadata)
	if err != nil {
		return nil, err
	}
	label := src.String() + ":" + bp
	value, err := anyValue(b)
	if err != nil {
		return nil, &evidence.FormatError{File: label, Offset: -1, Msg: "not a protobuf Any", Err: err}
	}
	var sp specDump
	if err := json.Unmarshal(value, &sp); err != nil {
		return nil, &evidence.FormatError{File: label, Offset: -1, Msg: "Any value is not an OCI spec", Err: err}
	}
	return &sp, nil
}

// anyValue returns the value (field 2) of a serialized google.protobuf.Any.
func anyValue(b []byte) ([]byte, error) {
	var value []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			if num == 2 {
				value = v
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
	}
	if value == nil {
		return nil, fmt.Errorf("no value field")
	}
	return value, nil
}

// ContainerdCheckpoint is a checkpoint image index found in a content store.
type ContainerdCheckpoint struct {
	Digest string `json:"digest"` // the OCI index
	Image  string `json:"image,omitempty"`
	// CriuTar is the digest of the CRIU images tar and CriuTarSize its size.
	CriuTar     string `json:"criu_tar"`
	CriuTarSize int64  `json:"criu_tar_size"`
	RWLayer     string `json:"rw_layer,omitempty"`
}

// FindContainerd scans a content store for checkpoint image indexes by
// content: small JSON blobs that are OCI indexes with a CRIU tar manifest.
// The node's meta.db (read elsewhere) names them; this needs no database.
func FindContainerd(src evidence.Source, contentDir string) ([]ContainerdCheckpoint, error) {
	contentDir, err := evidence.Clean(contentDir)
	if err != nil {
		return nil, err
	}
	dir := path.Join(contentDir, "blobs", "sha256")
	ents, err := src.ReadDir(dir)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []ContainerdCheckpoint
	for _, e := range ents {
		if !e.Mode.IsRegular() || e.Size > maxIndex || e.Size < 2 {
			continue
		}
		f, err := src.Open(e.Name)
		if err != nil {
			continue
		}
		var first [1]byte
		_, err = f.ReadAt(first[:], 0)
		f.Close()
		if err != nil || first[0] != '{' {
			continue
		}
		d := "sha256:" + path.Base(e.Name)
		idx, err := readIndex(src, contentDir, d)
		if err != nil {
			continue
		}
		cc := ContainerdCheckpoint{Digest: d, Image: idx.Annotations[annotationIndexImageName]}
		for _, m := range idx.Manifests {
			switch m.MediaType {
			case mediaTypeCriuTar:
				cc.CriuTar, cc.CriuTarSize = m.Digest, m.Size
			case mediaTypeLayerGzip, mediaTypeLayerTar:
				cc.RWLayer = m.Digest
			}
		}
		if cc.CriuTar != "" {
			out = append(out, cc)
		}
	}
	return out, nil
}
