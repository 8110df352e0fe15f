package docker

import (
	"context"
	"path"
	"strings"

	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
)

// VerifyImages verifies the images named by refs (all when none) against
// their tar-split records: Docker keeps no layer blobs, so each layer's
// tar is rebuilt from the recorded headers and the files on disk and must
// hash to its diff_id, each file must match its crc64, and every header
// must match the disk. A layer shared by several images is verified once.
func (s *Store) VerifyImages(ctx context.Context, refs []string, opt *image.VerifyOptions) []image.Verification {
	done := map[string]*image.LayerResult{}
	layer := func(chain string) (ondisk.TarSplitLayer, bool) {
		l := s.byChain[chain]
		if l == nil {
			return ondisk.TarSplitLayer{}, false
		}
		ts := path.Join(s.Root, imageDir, s.Driver, layerDBSha, strings.TrimPrefix(chain, "sha256:"), tarSplitFile)
		return ondisk.TarSplitLayer{DiffID: l.DiffID, Dir: l.Dir, TarSplit: ts}, true
	}
	var out []image.Verification
	for _, ic := range s.ImageConfigs {
		if !image.MatchesRef(refs, ic.Names, ic.ID) {
			continue
		}
		v := image.Verification{Runtime: model.RuntimeDocker, Name: strings.Join(ic.Names, ","), Digest: ic.ID, Kind: image.KindImage}
		out = append(out, ondisk.VerifyTarSplit(ctx, s.src, v, ic.ChainIDs, layer, "layer not in layerdb", done, opt))
	}
	return out
}
