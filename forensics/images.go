package forensics

import (
	"fmt"
	"path"
	"strings"

	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
	"github.com/deadnode/deadnode/overlay"
)

// ContentStore returns the containerd content store of the node.
func (n *Node) ContentStore() (*image.Store, error) {
	if n.Containerd == nil {
		return nil, ErrNoRuntime
	}
	return &image.Store{Src: n.Src, Dir: strings.TrimPrefix(path.Join(n.Containerd.Root, "io.containerd.content.v1.content"), "/")}, nil
}

// FindImage finds an image record by name, digest or digest prefix, in the
// given runtime namespace ("" for any).
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
		return nil, fmt.Errorf("%w: image %q matches %d images", ErrAmbiguous, ref, len(hits))
	}
	return nil, fmt.Errorf("image %q: not found", ref)
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
	return overlay.New(append([]overlay.Layer{ds.Upper}, ds.Lowers...), nil)
}
