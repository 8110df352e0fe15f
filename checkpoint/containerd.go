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
	return path.Join(contentDir, containerdBlobsDir, strings.TrimPrefix(digest, "sha256:")), nil
}

// readBlob reads a small blob of the content store; label names it.
func readBlob(src evidence.Source, contentDir, digest string, max int64) (b []byte, label string, err error) {
	bp, err := blobPath(contentDir, digest)
	if err != nil {
		return nil, "", err
	}
	b, err = evidence.ReadFile(src, bp, max)
	return b, src.String() + ":" + bp, err
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
// place. Close the Checkpoint. It stops with ctx.Err() when ctx is
// cancelled.
func OpenContainerd(ctx context.Context, src evidence.Source, contentDir, indexDigest string, opt *ContainerdOptions) (*Checkpoint, error) {
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
	var criuDigest, configDigest, layerDigest, image string
	for _, m := range idx.Manifests {
		switch m.MediaType {
		case mediaTypeCriuTar:
			criuDigest = m.Digest
		case mediaTypeCheckpointConfig:
			configDigest = m.Digest
		case mediaTypeLayerGzip, mediaTypeLayerTar:
			layerDigest = m.Digest // gzip or plain: scanDiff tells by the magic
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
	cp, err := openArchive(ctx, f, src.String()+":"+bp, nil, &opt.Options)
	if err != nil {
		f.Close()
		return nil, err
	}
	cp.Source = src.String() + ":" + indexDigest
	cp.Format = "containerd"
	c := &cp.Container
	c.Engine = "containerd"
	c.Image = firstOf(idx.Annotations[annotationIndexImageName], image)
	if configDigest != "" {
		if sp, err := readCheckpointConfig(src, contentDir, configDigest); err != nil {
			cp.warn(err)
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
	if layerDigest != "" && !opt.skips(PartExeOrigins) {
		if err := cp.readRWLayer(ctx, src, contentDir, layerDigest, &opt.Options); err != nil {
			if ctx.Err() != nil {
				cp.Close()
				return nil, ctx.Err()
			}
			cp.addWarning(evidence.Warnf("", -1, "RW layer %s: %v", layerDigest, err))
		}
	}
	return cp, nil
}

// readRWLayer scans containerd's RW layer blob for the executables of the
// tasks and sets their origins.
func (cp *Checkpoint) readRWLayer(ctx context.Context, src evidence.Source, contentDir, digest string, opt *Options) error {
	lp, err := blobPath(contentDir, digest)
	if err != nil {
		return err
	}
	lf, err := src.Open(lp)
	if err != nil {
		return err
	}
	defer lf.Close()
	have, info, err := scanDiff(ctx, lf, src.String()+":"+lp, exePaths(cp))
	info.Member = digest
	cp.RootfsDiff = info
	setOrigins(cp, have, opt)
	return err
}

func readIndex(src evidence.Source, contentDir, digest string) (*ociIndex, error) {
	b, label, err := readBlob(src, contentDir, digest, maxIndex)
	if err != nil {
		return nil, err
	}
	var idx ociIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, &evidence.FormatError{File: label, Offset: -1, Msg: "not an OCI index", Err: err}
	}
	return &idx, nil
}

// readCheckpointConfig decodes the checkpoint config blob: a protobuf Any
// (field 1 type_url, field 2 value) whose value is the OCI spec as JSON.
func readCheckpointConfig(src evidence.Source, contentDir, digest string) (*specDump, error) {
	b, label, err := readBlob(src, contentDir, digest, maxMetadata)
	if err != nil {
		return nil, err
	}
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
// It stops with ctx.Err() when ctx is cancelled.
func FindContainerd(ctx context.Context, src evidence.Source, contentDir string) ([]ContainerdCheckpoint, error) {
	ents, err := readDirIfAny(src, contentDir, containerdBlobsDir)
	if err != nil {
		return nil, err
	}
	contentDir, _ = evidence.Clean(contentDir)
	var out []ContainerdCheckpoint
	for i, e := range ents {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if !e.Mode.IsRegular() || e.Size > maxIndex || e.Size < 2 {
			continue
		}
		if first, err := head(src, e.Name, 0, 1); err != nil || first[0] != '{' {
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
