package storage

import (
	"context"
	"path"
	"slices"
	"strings"

	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/image"
)

// VerifyImages verifies the images named by refs (all when none) against
// their tar-split records: containers-storage keeps no layer blobs, so
// each layer's tar is rebuilt from the recorded headers and the files on
// disk and must hash to its diff digest, each file must match its crc64,
// and every header must match the disk. A layer shared by several images
// is verified once.
func (s *Store) VerifyImages(ctx context.Context, refs []string, opt *image.VerifyOptions) []image.Verification {
	done := map[string]*image.LayerResult{}
	layer := func(id string) (ondisk.TarSplitLayer, bool) {
		l := s.byLayer[id]
		if l == nil {
			return ondisk.TarSplitLayer{}, false
		}
		ts := path.Join(s.GraphRoot, driverOverlay+layersSuffix, id+tarSplitSuffix)
		return ondisk.TarSplitLayer{DiffID: l.DiffDigest, Dir: l.Dir, TarSplit: ts}, true
	}
	var out []image.Verification
	for _, im := range s.ImageRecords {
		if !image.MatchesRef(refs, im.Names, im.ID) {
			continue
		}
		v := image.Verification{Runtime: runtimeName, Name: strings.Join(im.Names, ","), Digest: configDigest(im.ID), Kind: image.KindImage}
		// Bottom first, as image configs list them.
		bottomUp := slices.Clone(im.Layers)
		slices.Reverse(bottomUp)
		out = append(out, ondisk.VerifyTarSplit(ctx, s.src, v, bottomUp, layer, "layer not in layers.json", done, opt))
	}
	return out
}

// configDigest is an image id as Docker prints it: containers-storage keeps
// the config's sha256 bare.
func configDigest(id string) string {
	if id == "" || strings.Contains(id, ":") {
		return id
	}
	return "sha256:" + id
}
