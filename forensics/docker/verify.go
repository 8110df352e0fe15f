package docker

import (
	"context"
	"path"
	"strings"

	"github.com/deadnode/deadnode/image"
)

// VerifyImages verifies the images named by refs (all when none) against
// their tar-split records: Docker keeps no layer blobs, so each layer's
// tar is rebuilt from the recorded headers and the files on disk and must
// hash to its diff_id, each file must match its crc64, and every header
// must match the disk. A layer shared by several images is verified once.
func (s *Store) VerifyImages(ctx context.Context, refs []string, opt *image.VerifyOptions) []image.Verification {
	done := map[string]*image.LayerResult{}
	byChain := map[string]int{}
	for i, l := range s.Layers {
		byChain[l.ChainID] = i
	}
	var out []image.Verification
	for _, ic := range s.ImageConfigs {
		if !image.MatchesRef(refs, ic.Names, ic.ID) {
			continue
		}
		r := image.Verification{Runtime: "docker", Name: strings.Join(ic.Names, ","), Digest: ic.ID, Kind: image.KindImage, Status: image.StatusVerified, Layers: []image.LayerVerification{}}
		for i, chain := range ic.ChainIDs {
			var res *image.LayerResult
			k, ok := byChain[chain]
			if !ok {
				res = &image.LayerResult{Status: image.StatusUnverifiable, Reason: "layer not in layerdb"}
			} else if res = done[chain]; res == nil {
				l := s.Layers[k]
				ts := path.Join(s.Root, "image", s.Driver, "layerdb", "sha256", strings.TrimPrefix(chain, "sha256:"), tarSplitFile)
				res = image.VerifyTarSplitFile(ctx, s.src, ts, l.DiffID, l.Dir, opt)
				done[chain] = res
			}
			vl := image.LayerVerificationOf(i, "", res.DiffID, chain, res.SnapshotDir, res)
			r.Status = image.Worse(r.Status, vl.Status)
			r.Layers = append(r.Layers, vl)
		}
		out = append(out, r)
	}
	return out
}
