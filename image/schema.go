package image

import (
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// On-disk schema names: media types, annotations, labels, overlay markers
// and content-store layout. Everything that names a format lives here.
const (
	// MediaTypes of OCI and Docker schema 2 documents.
	MediaTypeOCIIndex         = ocispec.MediaTypeImageIndex
	MediaTypeOCIManifest      = ocispec.MediaTypeImageManifest
	MediaTypeOCIConfig        = ocispec.MediaTypeImageConfig
	MediaTypeDockerList       = string(types.DockerManifestList)
	MediaTypeDockerManifest   = string(types.DockerManifestSchema2)
	MediaTypeDockerConfig     = string(types.DockerConfigJSON)
	MediaTypeDockerSchema1    = string(types.DockerManifestSchema1)
	MediaTypeDockerSchema1Sig = string(types.DockerManifestSchema1Signed)

	// Layer media types.
	MediaTypeOCILayer               = ocispec.MediaTypeImageLayer     // plain tar
	MediaTypeOCILayerGzip           = ocispec.MediaTypeImageLayerGzip // tar+gzip
	MediaTypeOCILayerZstd           = ocispec.MediaTypeImageLayerZstd // tar+zstd
	MediaTypeOCILayerNondist        = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	MediaTypeOCILayerNondistGzip    = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
	MediaTypeOCILayerNondistZstd    = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
	MediaTypeDockerLayer            = string(types.DockerUncompressedLayer)
	MediaTypeDockerLayerGzip        = string(types.DockerLayer)
	MediaTypeDockerForeignLayerGzip = string(types.DockerForeignLayer)

	// containerd checkpoint media types (containerd/images/mediatypes.go).
	MediaTypeCheckpointCRIU           = "application/vnd.containerd.container.criu.checkpoint.criu.tar"
	MediaTypeCheckpointPreDump        = "application/vnd.containerd.container.criu.checkpoint.predump.tar"
	MediaTypeCheckpointResource       = "application/vnd.containerd.container.resource.tar"
	MediaTypeCheckpointRW             = "application/vnd.containerd.container.rw.tar"
	MediaTypeCheckpointConfig         = "application/vnd.containerd.container.checkpoint.config.v1+proto"
	MediaTypeCheckpointOptions        = "application/vnd.containerd.container.checkpoint.options.v1+proto"
	MediaTypeCheckpointRuntimeName    = "application/vnd.containerd.container.checkpoint.runtime.name"
	MediaTypeCheckpointRuntimeOptions = "application/vnd.containerd.container.checkpoint.runtime.options+proto"

	// LabelCheckpoint marks a checkpoint image in containerd's metadata
	// (as an image label) and may appear as an annotation.
	LabelCheckpoint = "containerd.io/checkpoint"
	// AnnotationImageName names the image of a manifest inside an index
	// (containerd) and AnnotationCheckpointImageName the image a
	// checkpoint index was taken from.
	AnnotationImageName           = "io.containerd.image.name"
	AnnotationCheckpointImageName = "image.name"
	AnnotationRefName             = ocispec.AnnotationRefName
	// AnnotationDockerReferenceType marks BuildKit attestation manifests.
	AnnotationDockerReferenceType = "vnd.docker.reference.type"

	// Content store layout: <root>/blobs/<algorithm>/<hex>.
	ContentBlobsDir = "blobs"

	// Overlay forms of image whiteouts.
	WhiteoutPrefix     = ".wh."
	WhiteoutMetaPrefix = ".wh..wh."
	WhiteoutOpaque     = ".wh..wh..opq"
	XattrOverlayOpaque = "trusted.overlay.opaque"
	// XattrOverlayOpaqueUser is the opaque marker of a userxattr (rootless) mount.
	XattrOverlayOpaqueUser = "user.overlay.opaque"
	// paxXattr prefixes the PAX records that carry extended attributes.
	paxXattr = "SCHILY.xattr."
)

// Kinds of resolved targets.
const (
	KindImage      = "image"
	KindCheckpoint = "checkpoint"
	KindIndex      = "index"
)

// Layer verification statuses.
const (
	StatusVerified     = "verified"
	StatusTampered     = "tampered"
	StatusUnverifiable = "unverifiable"
)

// What a Difference is about.
const (
	WhatAddedOnDisk   = "added_on_disk"
	WhatMissingOnDisk = "missing_on_disk"
	WhatContent       = "content"
	WhatMode          = "mode"
	WhatOwner         = "owner"
	WhatType          = "type"
	WhatLinkTarget    = "link_target"
	WhatDevice        = "device"
	WhatOpaque        = "opaque"      // trusted.overlay.opaque differs from the tar's .wh..wh..opq
	WhatXattr         = "xattr"       // an extended attribute differs from the tar's SCHILY.xattr record
	WhatBlobDigest    = "blob_digest" // the compressed blob's sha256 or size differs from its descriptor
	WhatDiffID        = "diff_id"     // the uncompressed stream's sha256 differs from the config's diff_id
)

// layerCompression maps layer media types to their compression.
var layerCompression = map[string]string{
	MediaTypeOCILayer:               "none",
	MediaTypeOCILayerGzip:           "gzip",
	MediaTypeOCILayerZstd:           "zstd",
	MediaTypeOCILayerNondist:        "none",
	MediaTypeOCILayerNondistGzip:    "gzip",
	MediaTypeOCILayerNondistZstd:    "zstd",
	MediaTypeDockerLayer:            "none",
	MediaTypeDockerLayerGzip:        "gzip",
	MediaTypeDockerForeignLayerGzip: "gzip",
}
