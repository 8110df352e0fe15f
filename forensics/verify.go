package forensics

import (
	"context"
	"path"
	"strings"

	"github.com/deadnode/deadnode/image"
)

// StoredImageResult is the verification of an image of a runtime that
// keeps unpacked layers and their tar-split metadata instead of layer
// blobs (Docker overlay2, containers-storage).
type StoredImageResult struct {
	Runtime string              `json:"runtime"`
	Names   []string            `json:"names"`
	ID      string              `json:"id"` // image id (config digest)
	Status  string              `json:"status"`
	Layers  []StoredLayerResult `json:"layers"`
	results map[string]*image.LayerResult
}

// StoredLayerResult is one layer of a StoredImageResult.
type StoredLayerResult struct {
	Layer string `json:"layer"` // chain id (Docker) or layer id (containers-storage)
	*image.LayerResult
}

// VerifyStoredLayers verifies every image layer of the node's Docker and
// containers-storage stores against its tar-split record: the layer's tar
// is rebuilt from the recorded headers and the files on disk and must hash
// to its diff_id, each file must match its crc64, and every header must
// match the disk. A layer shared by several images is verified once.
func (n *Node) VerifyStoredLayers(ctx context.Context, opt *image.VerifyOptions) []StoredImageResult {
	var out []StoredImageResult
	done := map[string]*image.LayerResult{}
	verify := func(key, tarSplit, diffID, dir string) *image.LayerResult {
		if r, ok := done[key]; ok {
			return r
		}
		var r *image.LayerResult
		f, err := n.Src.Open(strings.TrimPrefix(tarSplit, "/"))
		switch {
		case diffID == "":
			r = &image.LayerResult{SnapshotDir: dir, Status: image.StatusUnverifiable, Reason: "no diff_id recorded"}
		case err != nil:
			r = &image.LayerResult{DiffID: diffID, SnapshotDir: dir, Status: image.StatusUnverifiable, Reason: "no tar-split record: " + err.Error()}
		default:
			r, _ = image.VerifyTarSplit(ctx, f, diffID, n.Src, strings.TrimPrefix(dir, "/"), opt)
			f.Close()
			r.SnapshotDir = dir
		}
		done[key] = r
		return r
	}
	status := func(res *StoredImageResult) {
		res.Status = image.StatusVerified
		for _, l := range res.Layers {
			switch {
			case l.Status == image.StatusTampered:
				res.Status = image.StatusTampered
			case l.Status == image.StatusUnverifiable && res.Status == image.StatusVerified:
				res.Status = image.StatusUnverifiable
			}
		}
	}
	if d := n.Docker; d != nil {
		byChain := map[string]int{}
		for i, l := range d.Layers {
			byChain[l.ChainID] = i
		}
		for _, ic := range d.ImageConfigs {
			res := StoredImageResult{Runtime: "docker", Names: ic.Names, ID: ic.ID}
			for _, chain := range ic.ChainIDs {
				sl := StoredLayerResult{Layer: chain}
				i, ok := byChain[chain]
				if !ok {
					sl.LayerResult = &image.LayerResult{Status: image.StatusUnverifiable, Reason: "layer not in layerdb"}
				} else {
					l := d.Layers[i]
					ts := path.Join(d.Root, "image", d.Driver, "layerdb", "sha256", strings.TrimPrefix(chain, "sha256:"), image.DockerTarSplit)
					sl.LayerResult = verify("docker "+chain, ts, l.DiffID, l.Dir)
				}
				res.Layers = append(res.Layers, sl)
			}
			status(&res)
			out = append(out, res)
		}
	}
	for _, s := range n.Storage {
		byID := map[string]int{}
		for i, l := range s.Layers {
			byID[l.ID] = i
		}
		for _, im := range s.ImageRecords {
			res := StoredImageResult{Runtime: "containers-storage", Names: im.Names, ID: im.ID}
			for k := len(im.Layers) - 1; k >= 0; k-- { // bottom first, as image configs list them
				id := im.Layers[k]
				sl := StoredLayerResult{Layer: id}
				i, ok := byID[id]
				if !ok {
					sl.LayerResult = &image.LayerResult{Status: image.StatusUnverifiable, Reason: "layer not in layers.json"}
				} else {
					l := s.Layers[i]
					ts := path.Join(s.GraphRoot, "overlay-layers", id+image.StorageTarSplit)
					sl.LayerResult = verify(s.GraphRoot+" "+id, ts, l.DiffDigest, l.Dir)
				}
				res.Layers = append(res.Layers, sl)
			}
			status(&res)
			out = append(out, res)
		}
	}
	return out
}
