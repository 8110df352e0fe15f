package containerd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
	"github.com/deadnode/deadnode/internal/ptr"
	bolt "go.etcd.io/bbolt"
)

// readImages reads a namespace's images/<name> buckets.
func (s *Store) readImages(ns string, nb *bolt.Bucket, w where) {
	eachRecord(nb, bucketImages, w, false, func(k []byte, b *bolt.Bucket, iw where) {
		var warn []evidence.Warning
		im := model.Image{Runtime: model.RuntimeContainerd, Namespace: ns, Name: string(k)}
		im.CreatedAt, im.UpdatedAt, im.Labels = stamps(b, iw, &warn)
		im.Annotations = readLabels(b, bucketAnnotation, iw, &warn)
		if tb := b.Bucket([]byte(bucketTarget)); tb != nil {
			im.Target = model.Descriptor{
				Digest:    string(tb.Get([]byte(keyDigest))),
				MediaType: string(tb.Get([]byte(keyMediaType))),
				Size:      readVarint(tb, keySize, iw.sub(bucketTarget), &warn),
			}
			if !validDigest(im.Target.Digest) {
				warn = append(warn, iw.warnf("target digest %q is not a valid digest", im.Target.Digest))
			}
		} else {
			warn = append(warn, iw.warnf("no target"))
		}
		im.Checkpoint = im.Labels[labelCheckpoint] == "true"
		im.Warnings = warn
		s.Warnings = append(s.Warnings, warn...)
		s.Images = append(s.Images, im)
	})
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
	o := ptr.Value(opt)
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
