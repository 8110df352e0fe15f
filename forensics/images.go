package forensics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/deadnode/deadnode/forensics/containerd"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
	"github.com/deadnode/deadnode/internal/ptr"
	"github.com/deadnode/deadnode/overlay"
)

// containerdStore returns the node's (first) containerd store, nil when
// containerd is not in the evidence.
func (n *Node) containerdStore() *containerd.Store {
	for _, rt := range n.Runtimes {
		if s, ok := rt.(*containerd.Store); ok {
			return s
		}
	}
	return nil
}

// ErrNoContentStore is returned where a containerd content store is needed
// and the evidence has none.
var ErrNoContentStore = errors.New("no containerd content store in the evidence")

// ContentStore returns the containerd content store of the node.
func (n *Node) ContentStore() (*image.Store, error) {
	s := n.containerdStore()
	if s == nil {
		return nil, ErrNoContentStore
	}
	return s.ContentStore(), nil
}

// FindImages returns the image records named by ref: a name, a digest, or
// a digest prefix of at least 4 hex digits (with or without "sha256:"). A
// name or digest present in several namespaces gives one record per
// namespace; a prefix of several digests is ambiguous.
func (n *Node) FindImages(ref string) ([]model.Image, error) {
	var exact, prefix []model.Image
	hexRef := strings.TrimPrefix(ref, "sha256:")
	for _, im := range n.Images() {
		d := im.Target.Digest
		switch {
		case im.Name == ref || d == ref:
			exact = append(exact, im)
		case len(hexRef) >= 4 && strings.Trim(hexRef, "0123456789abcdef") == "" && strings.HasPrefix(strings.TrimPrefix(d, "sha256:"), hexRef):
			prefix = append(prefix, im)
		}
	}
	if len(exact) > 0 {
		return exact, nil
	}
	if len(prefix) == 0 {
		return nil, &NotFoundError{What: "image", Ref: ref}
	}
	digests := map[string]bool{}
	var names []string
	for _, im := range prefix {
		digests[im.Target.Digest] = true
		names = append(names, im.Namespace+"/"+im.Name+"@"+shortDigest(im.Target.Digest))
	}
	if len(digests) > 1 {
		return nil, &AmbiguousError{What: "image", Ref: ref, Candidates: names}
	}
	return prefix, nil
}

// FindImage finds one image record by name, digest or digest prefix, in
// the given runtime namespace ("" for any).
func (n *Node) FindImage(ns, ref string) (*model.Image, error) {
	var hits []*model.Image
	imgs := n.Images()
	for i := range imgs {
		im := &imgs[i]
		if ns != "" && im.Namespace != ns {
			continue
		}
		if im.Name == ref || im.Target.Digest == ref {
			return im, nil
		}
		if strings.HasPrefix(im.Target.Digest, ref) || strings.HasPrefix(strings.TrimPrefix(im.Target.Digest, "sha256:"), ref) {
			hits = append(hits, im)
		}
	}
	if len(hits) == 1 {
		return hits[0], nil
	}
	if len(hits) > 1 {
		var names []string
		for _, h := range hits {
			names = append(names, h.Namespace+"/"+h.Name)
		}
		return nil, &AmbiguousError{What: "image", Ref: ref, Candidates: names}
	}
	return nil, &NotFoundError{What: "image", Ref: ref}
}

func shortDigest(d string) string {
	pre, hex := "", d
	if i := strings.IndexByte(d, ':'); i >= 0 {
		pre, hex = d[:i+1], d[i+1:]
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return pre + hex
}

// ResolveImage reads an image record's manifest, config and layers.
func (n *Node) ResolveImage(im *model.Image) (*image.Image, error) {
	st, err := n.ContentStore()
	if err != nil {
		return nil, err
	}
	return st.Resolve(image.Descriptor{MediaType: im.Target.MediaType, Digest: im.Target.Digest, Size: im.Target.Size}, nil)
}

// LayerSnapshot finds the committed snapshot of a layer (by chain ID) in a
// namespace.
func (n *Node) LayerSnapshot(ns, chainID string) *model.Snapshot {
	snaps := n.Snapshots()
	for i := range snaps {
		s := &snaps[i]
		if s.Namespace == ns && s.Key == chainID && s.Dir != "" {
			return s
		}
	}
	return nil
}

// ImageLowers returns the snapshot directories of an image's layers, top
// to bottom, as overlay layers; an error says which layer has no snapshot.
func (n *Node) ImageLowers(ns string, img *image.Image) ([]overlay.Layer, error) {
	var out []overlay.Layer
	for i := len(img.Layers) - 1; i >= 0; i-- {
		l := img.Layers[i]
		s := n.LayerSnapshot(ns, l.ChainID)
		if s == nil {
			return nil, fmt.Errorf("layer %s (chain %s) has no snapshot in namespace %s", l.DiffID, l.ChainID, ns)
		}
		out = append(out, overlay.Layer{Source: n.Src, Dir: strings.TrimPrefix(s.Dir, "/"), Kind: overlay.LayerDir, Name: s.Dir})
	}
	return out, nil
}

// LowerView returns the merged view of a container's image layers (its
// lower directories).
func (n *Node) LowerView(c *model.Container) (*overlay.View, error) {
	if len(c.LowerDirs) == 0 {
		return nil, fmt.Errorf("container %s has no image layers in the evidence", c.ID)
	}
	var ls []overlay.Layer
	for _, l := range c.LowerDirs {
		ls = append(ls, overlay.Layer{Source: n.Src, Dir: strings.TrimPrefix(l, "/"), Kind: overlay.LayerDir, Name: l})
	}
	return overlay.New(ls, nil)
}

// ExeOrigin returns a lookup for checkpoint.Options.ExeOrigin: "image"
// when a path exists in the container's image layers, "unknown" otherwise.
// It returns nil when the container or its layers are not in the evidence.
func (n *Node) ExeOrigin(containerID string) func(string) string {
	c, err := n.FindContainer(containerID)
	if err != nil || c.ID != containerID {
		return nil
	}
	v, err := n.LowerView(c)
	if err != nil {
		return nil
	}
	return func(p string) string {
		if e, err := v.StatEntry(strings.TrimPrefix(p, "/")); err == nil && e.Stat.Mode.IsRegular() {
			return "image"
		}
		return "unknown"
	}
}

// MergedView returns a container's root filesystem as the kernel would
// have shown it: its upper layer over its image layers.
func (n *Node) MergedView(c *model.Container) (*overlay.View, error) {
	ds, err := n.ContainerDrift(c)
	if err != nil {
		return nil, err
	}
	v, err := overlay.New(append([]overlay.Layer{ds.Upper}, ds.Lowers...), nil)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	return v, nil
}

// LayerUse ties an image layer to the snapshot it was unpacked to and the
// containers that have that snapshot below their own.
type LayerUse struct {
	Index       int      `json:"index"`
	Digest      string   `json:"digest"`
	DiffID      string   `json:"diff_id"`
	ChainID     string   `json:"chain_id"`
	Size        int64    `json:"size"`
	BlobPresent bool     `json:"blob_present"`
	Snapshot    string   `json:"snapshot"` // the snapshot key ("" when the layer is not unpacked)
	SnapshotID  string   `json:"snapshot_id"`
	SnapshotDir string   `json:"snapshot_dir"`
	Containers  []string `json:"containers"`
}

// ImageReport is an image record with its manifest, config, history and
// layers, each layer joined to its snapshot and the containers using it.
type ImageReport struct {
	Namespace  string            `json:"namespace"`
	Name       string            `json:"name"`
	Digest     string            `json:"digest"`
	MediaType  string            `json:"media_type"`
	Kind       string            `json:"kind"`
	CreatedAt  model.Time        `json:"created_at"`
	Labels     map[string]string `json:"labels"`
	Image      *image.Image      `json:"image"`
	Layers     []LayerUse        `json:"layers"`
	Containers []string          `json:"containers"` // containers created from this image
	Error      string            `json:"error,omitempty"`
}

// InspectImages reads the images named by ref (see FindImages) from the
// content store, with their layers joined to snapshots and containers.
func (n *Node) InspectImages(ref string, plat *image.Platform) ([]ImageReport, error) {
	recs, err := n.FindImages(ref)
	if err != nil {
		return nil, err
	}
	st, err := n.ContentStore()
	if err != nil {
		return nil, err
	}
	var reps []ImageReport
	for _, im := range recs {
		r := ImageReport{Namespace: im.Namespace, Name: im.Name, Digest: im.Target.Digest, MediaType: im.Target.MediaType,
			CreatedAt: im.CreatedAt, Labels: im.Labels, Containers: n.containersOf(im)}
		img, err := st.Resolve(containerd.Target(im), plat)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Image, r.Kind = img, img.Kind
		}
		// A checkpoint's layers are those of the image it was taken from.
		if img != nil && img.Kind == image.KindCheckpoint && img.Base != nil {
			r.Layers = n.layerUses(im.Namespace, img.Base)
		} else {
			r.Layers = n.layerUses(im.Namespace, img)
		}
		reps = append(reps, r)
	}
	return reps, nil
}

func (n *Node) layerUses(ns string, img *image.Image) []LayerUse {
	out := []LayerUse{}
	if img == nil {
		return out
	}
	cs := n.containerdStore()
	for i, l := range img.Layers {
		u := LayerUse{Index: i, Digest: l.Digest, DiffID: l.DiffID, ChainID: l.ChainID, Size: l.Size, BlobPresent: l.BlobPresent, Containers: []string{}}
		if s, ok := cs.LayerSnapshot(ns, l.ChainID); ok {
			u.Snapshot, u.SnapshotID, u.SnapshotDir = s.Key, s.ID, s.Dir
			for _, c := range n.Containers() {
				if c.Namespace != ns {
					continue
				}
				for _, d := range c.LowerDirs {
					if d == s.Dir {
						u.Containers = append(u.Containers, c.ID)
						break
					}
				}
			}
		}
		out = append(out, u)
	}
	return out
}

func (n *Node) containersOf(im model.Image) []string {
	out := []string{}
	for _, c := range n.Containers() {
		if c.Namespace == im.Namespace && (c.Image == im.Name || (c.ImageRef != "" && c.ImageRef == im.Target.Digest)) {
			out = append(out, c.ID)
		}
	}
	return out
}

// VerifyOptions tune VerifyImages.
type VerifyOptions = containerd.VerifyOptions

// storedVerifier is a runtime that keeps unpacked layers with their
// tar-split records instead of layer blobs (Docker, containers-storage).
type storedVerifier interface {
	VerifyImages(ctx context.Context, refs []string, opt *image.VerifyOptions) []image.Verification
}

// VerifyImages proves that the unpacked layers on disk are the images'
// (refs: names, digests or digest prefixes; all images when none):
// containerd images against their blobs, Docker and containers-storage
// images against their tar-split records. Tampering is a result, not an
// error; an error means no image could be verified.
func (n *Node) VerifyImages(ctx context.Context, refs []string, opt *VerifyOptions) ([]image.Verification, error) {
	o := ptr.Value(opt)
	var stored []image.Verification
	for _, rt := range n.Runtimes {
		if v, ok := rt.(storedVerifier); ok {
			stored = append(stored, v.VerifyImages(ctx, refs, o.Layer)...)
		}
	}
	cs := n.containerdStore()
	if cs == nil {
		if len(stored) == 0 {
			return nil, fmt.Errorf("no containerd content store, Docker or containers-storage image in the evidence")
		}
		return stored, nil
	}
	var recs []model.Image
	if len(refs) == 0 {
		for _, im := range n.Images() {
			if im.Runtime == model.RuntimeContainerd {
				recs = append(recs, im)
			}
		}
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		rs, err := n.FindImages(ref)
		if err != nil {
			if len(stored) > 0 {
				continue
			}
			return nil, err
		}
		for _, r := range rs {
			if r.Runtime != model.RuntimeContainerd {
				continue
			}
			if k := r.Namespace + "\x00" + r.Name; !seen[k] {
				seen[k] = true
				recs = append(recs, r)
			}
		}
	}
	out := cs.VerifyImages(ctx, recs, &o)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return append(out, stored...), nil
}

// NotFoundError says a reference names nothing in the evidence.
type NotFoundError struct {
	What string // "container", "image", "checkpoint"
	Ref  string
	// Hint says where to look instead (e.g. "see deadnode ls containers").
	Hint string
}

func (e *NotFoundError) Error() string {
	s := fmt.Sprintf("no %s %q in the evidence", e.What, e.Ref)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Is makes errors.Is(err, fs.ErrNotExist) true.
func (e *NotFoundError) Is(target error) bool { return target == fs.ErrNotExist }

// AmbiguousError says a reference names several things.
type AmbiguousError struct {
	What       string
	Ref        string
	Candidates []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%q names %d %ss: %s", e.Ref, len(e.Candidates), e.What, strings.Join(e.Candidates, ", "))
}

// Is makes errors.Is(err, ErrAmbiguous) true.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// ViewOptions choose which layers of a container a view shows.
type ViewOptions struct {
	// Image shows the image's version: the merged lower layers, without
	// the container's upper layer (files the container deleted or changed
	// appear as the image had them).
	Image bool
	// Layer, when >= 0, shows one layer alone, numbered as fs ls numbers
	// them: 0 the upper layer, 1… the lower layers top to bottom.
	Layer int
}

// ContainerView returns a container's root filesystem: merged (the
// default), the image's version, or one layer.
func (n *Node) ContainerView(c *model.Container, opt *ViewOptions) (*overlay.View, error) {
	o := ViewOptions{Layer: -1}
	if opt != nil {
		o = *opt
	}
	if !o.Image && o.Layer < 0 {
		return n.MergedView(c)
	}
	var layers []overlay.Layer
	if c.UpperDir != "" {
		layers = append(layers, overlay.Layer{Source: n.Src, Dir: strings.TrimPrefix(c.UpperDir, "/"), Kind: overlay.LayerDir, Name: c.UpperDir})
	}
	for _, l := range c.LowerDirs {
		layers = append(layers, overlay.Layer{Source: n.Src, Dir: strings.TrimPrefix(l, "/"), Kind: overlay.LayerDir, Name: l})
	}
	switch {
	case o.Layer >= 0:
		if c.UpperDir == "" {
			// Layer 0 is always the upper layer, even when it is missing.
			layers = append([]overlay.Layer{{}}, layers...)
		}
		if o.Layer >= len(layers) || layers[o.Layer].Dir == "" {
			return nil, fmt.Errorf("container %s has no layer %d in the evidence (0 is the upper layer, 1-%d the image's)", c.ID, o.Layer, len(c.LowerDirs))
		}
		layers = layers[o.Layer : o.Layer+1]
	default:
		if c.UpperDir != "" {
			layers = layers[1:]
		}
		if len(layers) == 0 {
			return nil, fmt.Errorf("container %s has no image layers in the evidence", c.ID)
		}
	}
	v, err := overlay.New(layers, nil)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	return v, nil
}
