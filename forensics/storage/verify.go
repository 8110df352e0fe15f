package storage

import (
	"context"
	"path"
	"strings"

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
	byID := map[string]int{}
	for i, l := range s.Layers {
		byID[l.ID] = i
	}
	var out []image.Verification
	for _, im := range s.ImageRecords {
		if !image.MatchesRef(refs, im.Names, im.ID) {
			continue
		}
		r := image.Verification{Runtime: "containers-storage", Name: strings.Join(im.Names, ","), Digest: im.ID, Kind: image.KindImage, Status: image.StatusVerified, Layers: []image.LayerVerification{}}
		for k := len(im.Layers) - 1; k >= 0; k-- { // bottom first, as image configs list them
			id := im.Layers[k]
			var res *image.LayerResult
			i, ok := byID[id]
			if !ok {
				res = &image.LayerResult{Status: image.StatusUnverifiable, Reason: "layer not in layers.json"}
			} else if res = done[id]; res == nil {
				l := s.Layers[i]
				ts := path.Join(s.GraphRoot, "overlay-layers", id+tarSplitSuffix)
				res = image.VerifyTarSplitFile(ctx, s.src, ts, l.DiffDigest, l.Dir, opt)
				done[id] = res
			}
			vl := image.LayerVerificationOf(len(im.Layers)-1-k, "", res.DiffID, id, res.SnapshotDir, res)
			r.Status = image.Worse(r.Status, vl.Status)
			r.Layers = append(r.Layers, vl)
		}
		out = append(out, r)
	}
	return out
}
