package containerd

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
)

// contentDir is the content store under containerd's root.
const contentDir = "io.containerd.content.v1.content"

// ContentStore returns the node's content store (blobs of images and
// checkpoints).
func (s *Store) ContentStore() *image.Store {
	return &image.Store{Src: s.src, Dir: strings.TrimPrefix(path.Join(s.Root, contentDir), "/")}
}

// Target is the descriptor an image record points at (with the
// checkpoint annotation when the record is a checkpoint image).
func Target(im model.Image) image.Descriptor {
	d := image.Descriptor{MediaType: im.Target.MediaType, Digest: im.Target.Digest, Size: im.Target.Size}
	if im.Checkpoint {
		d.Annotations = map[string]string{image.LabelCheckpoint: "true"}
	}
	return d
}

// LayerSnapshot finds the snapshot a layer was unpacked to: the snapshot
// whose key is the layer's chain id in a namespace (overlayfs preferred
// when several snapshotters hold one).
func (s *Store) LayerSnapshot(ns, chainID string) (model.Snapshot, bool) {
	if chainID == "" {
		return model.Snapshot{}, false
	}
	var found model.Snapshot
	ok := false
	for _, sn := range s.Snapshots {
		if sn.Namespace != ns || sn.Key != chainID {
			continue
		}
		if !ok || found.Snapshotter != "overlayfs" {
			found, ok = sn, true
		}
	}
	return found, ok
}

// VerifyOptions tune VerifyImages.
type VerifyOptions struct {
	Platform *image.Platform
	Layer    *image.VerifyOptions
	// Progress, when set, is told the bytes of layers to verify and then
	// each layer's bytes as it is done.
	Progress interface {
		Start(label string, total int64)
		Add(n int64)
	}
}

// VerifyImages verifies the given image records of this store: every
// layer's unpacked snapshot against its blob (digest, size, diff_id, and
// each entry of the tar against the disk), and a checkpoint's blobs. A
// layer unpacked once is verified once, whichever images share it.
func (s *Store) VerifyImages(ctx context.Context, recs []model.Image, opt *VerifyOptions) []image.Verification {
	var o VerifyOptions
	if opt != nil {
		o = *opt
	}
	st := s.ContentStore()
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Namespace != recs[j].Namespace {
			return recs[i].Namespace < recs[j].Namespace
		}
		return recs[i].Name < recs[j].Name
	})
	type job struct {
		rec model.Image
		img *image.Image
		err error
	}
	var jobs []job
	var total int64
	for _, im := range recs {
		img, err := st.Resolve(Target(im), o.Platform)
		jobs = append(jobs, job{im, img, err})
		if img != nil {
			for _, l := range img.Layers {
				total += l.Size
			}
		}
	}
	if o.Progress != nil {
		o.Progress.Start("verifying layers", total)
	}
	cache := map[string]*image.LayerResult{}
	out := []image.Verification{}
	for _, j := range jobs {
		r := image.Verification{Runtime: j.rec.Runtime, Namespace: j.rec.Namespace, Name: j.rec.Name, Digest: j.rec.Target.Digest, Status: image.StatusVerified, Layers: []image.LayerVerification{}}
		if j.err != nil {
			r.Error, r.Status = j.err.Error(), image.StatusUnverifiable
			if errors.Is(j.err, image.ErrDigestMismatch) || errors.Is(j.err, image.ErrSizeMismatch) {
				r.Status = image.StatusTampered
			}
			out = append(out, r)
			continue
		}
		img := j.img
		r.Kind, r.Missing, r.Corrupt, r.Problems = img.Kind, img.MissingBlobs, img.CorruptBlobs, img.Problems
		if len(img.CorruptBlobs) > 0 {
			r.Status = image.StatusTampered
		}
		switch img.Kind {
		case image.KindCheckpoint:
			for _, d := range img.Index.Manifests {
				bc := st.CheckBlob(d.Digest, d.Size)
				r.Blobs = append(r.Blobs, bc)
				switch {
				case !bc.Present:
					r.Status = image.Worse(r.Status, image.StatusUnverifiable)
				case !bc.OK:
					r.Status = image.Worse(r.Status, image.StatusTampered)
				}
			}
		case image.KindIndex:
			r.Status = image.StatusUnverifiable
			r.Problems = append(r.Problems, img.PlatformChoice)
		}
		for i, l := range img.Layers {
			one := *img
			one.Layers = []image.Layer{l}
			var res *image.LayerResult
			dir := ""
			if sn, ok := s.LayerSnapshot(j.rec.Namespace, l.ChainID); ok {
				dir = sn.Dir
				key := l.Digest + "\x00" + l.DiffID + "\x00" + sn.Dir
				if res = cache[key]; res == nil {
					res = st.VerifyLayers(ctx, &one, s.src, []string{sn.Dir}, o.Layer)[0]
					cache[key] = res
					if o.Progress != nil {
						o.Progress.Add(l.Size)
					}
				}
			} else {
				res = st.VerifyLayers(ctx, &one, s.src, []string{""}, o.Layer)[0]
				if l.Error == "" && res.Status == image.StatusUnverifiable && strings.HasPrefix(res.Reason, "no snapshot for chain") {
					res.Reason = fmt.Sprintf("no snapshot with key %s in namespace %s: the layer is not unpacked (blob digest, size and diff_id verified)", l.ChainID, j.rec.Namespace)
				}
			}
			vl := image.LayerVerificationOf(i, l.Digest, l.DiffID, l.ChainID, dir, res)
			r.Status = image.Worse(r.Status, vl.Status)
			r.Layers = append(r.Layers, vl)
		}
		out = append(out, r)
	}
	return out
}

// Checkpoint is a checkpoint image of the store: a record of meta.db
// labelled as one, or an index found in the content store that no record
// names any more.
type Checkpoint struct {
	Namespace string
	Name      string // the image name ("" for an unreferenced index)
	Digest    string // the OCI index
	Image     string // the image the container ran
	Size      int64  // of the CRIU images tar
	Created   model.Time
	// Unreferenced is set for an index left in the content store after
	// its image record was deleted.
	Unreferenced bool
}

// Checkpoints lists the store's checkpoint images, records first (as
// meta.db lists them), then unreferenced indexes by digest.
func (s *Store) Checkpoints() ([]Checkpoint, []evidence.Warning) {
	var out []Checkpoint
	var warns []evidence.Warning
	for _, im := range s.Images {
		if im.Checkpoint {
			out = append(out, Checkpoint{Namespace: im.Namespace, Name: im.Name, Digest: im.Target.Digest, Created: im.CreatedAt, Image: im.Annotations["image.name"]})
		}
	}
	found, err := checkpoint.FindContainerd(s.src, strings.TrimPrefix(path.Join(s.Root, contentDir), "/"))
	if err != nil {
		warns = append(warns, evidence.WarningOf(err))
	}
	named := map[string]bool{}
	for _, c := range out {
		named[c.Digest] = true
	}
	byDigest := map[string]int{}
	for i, f := range found {
		byDigest[f.Digest] = i
		if !named[f.Digest] {
			out = append(out, Checkpoint{Digest: f.Digest, Size: f.CriuTarSize, Image: f.Image, Unreferenced: true})
		}
	}
	for i := range out {
		if k, ok := byDigest[out[i].Digest]; ok {
			out[i].Size = found[k].CriuTarSize
			if out[i].Image == "" {
				out[i].Image = found[k].Image
			}
		}
	}
	return out, warns
}

// CheckpointContainerID is the id of the container a checkpoint image was
// taken of: containerd names them "containerd.io/checkpoint/<id>:<time>".
func CheckpointContainerID(name string) string {
	id := strings.TrimPrefix(name, checkpointImagePrefix)
	if id == name {
		return ""
	}
	if i := strings.IndexByte(id, ':'); i > 0 {
		id = id[:i]
	}
	return id
}

// OpenCheckpoint opens a checkpoint image of the store by its index digest
// (name is the image record's name, "" for an unreferenced index).
func (s *Store) OpenCheckpoint(digest, name string, opt *checkpoint.Options) (*checkpoint.Checkpoint, error) {
	var o checkpoint.Options
	if opt != nil {
		o = *opt
	}
	return checkpoint.OpenContainerd(s.src, strings.TrimPrefix(path.Join(s.Root, contentDir), "/"), digest, &checkpoint.ContainerdOptions{Options: o, ImageName: name})
}
