package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
)

// contentStoreDir is the content store under containerd's root.
const contentStoreDir = "io.containerd.content.v1.content"

func init() {
	register(&command{
		name:    "image ls",
		summary: "list the image records (the same as ls images)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			return func(a *app, args []string) error {
				if len(args) != 0 {
					return usagef("image ls takes no arguments")
				}
				return runLs(a, []string{"images"})
			}
		},
	})
	register(&command{
		name:    "image inspect",
		args:    "IMAGE",
		summary: "an image's manifest, config, history and layers, with the snapshots and containers that use them (IMAGE: name, digest or digest prefix)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			plat := fs.String("platform", image.DefaultPlatform.String(), "platform to pick from multi-platform indexes (os/arch[/variant])")
			return func(a *app, args []string) error {
				if len(args) != 1 {
					return usagef("image inspect takes one IMAGE")
				}
				p, err := image.ParsePlatform(*plat)
				if err != nil {
					return usagef("%v", err)
				}
				return runImageInspect(a, args[0], p)
			}
		},
	})
	register(&command{
		name:    "image verify",
		args:    "[IMAGE ...] | --all",
		summary: "verify every layer of images against its unpacked snapshot and its blob (exit 0 even when tampering is found)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			all := fs.Bool("all", false, "verify every image record")
			plat := fs.String("platform", image.DefaultPlatform.String(), "platform to pick from multi-platform indexes (os/arch[/variant])")
			maxBytes := fs.Int64("max-uncompressed", image.DefaultMaxBytes, "refuse a layer that decompresses past this many bytes")
			maxRatio := fs.Int64("max-ratio", image.DefaultMaxRatio, "refuse a layer whose compression ratio exceeds this (negative: no limit)")
			return func(a *app, args []string) error {
				if *all == (len(args) > 0) {
					return usagef("image verify takes IMAGE names or --all (not both)")
				}
				p, err := image.ParsePlatform(*plat)
				if err != nil {
					return usagef("%v", err)
				}
				return runImageVerify(a, args, p, &image.VerifyOptions{MaxBytes: *maxBytes, MaxRatio: *maxRatio})
			}
		},
	})
}

// findImages returns the image records named by ref: a name, a digest, or
// a digest prefix (with or without "sha256:"). A name or digest present
// in several namespaces gives one record per namespace.
func findImages(n *forensics.Node, ref string) ([]model.Image, error) {
	all := n.Images()
	var exact, prefix []model.Image
	hexRef := strings.TrimPrefix(ref, "sha256:")
	for _, im := range all {
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
		return nil, fmt.Errorf("image %q: %w", ref, fs.ErrNotExist)
	}
	digests := map[string]bool{}
	for _, im := range prefix {
		digests[im.Target.Digest] = true
	}
	if len(digests) > 1 {
		var names []string
		for _, im := range prefix {
			names = append(names, im.Namespace+"/"+im.Name+"@"+short(im.Target.Digest))
		}
		return nil, fmt.Errorf("%w: %q matches %s", forensics.ErrAmbiguous, ref, strings.Join(names, ", "))
	}
	return prefix, nil
}

func imageStore(n *forensics.Node) (*image.Store, error) {
	if n.Containerd == nil {
		return nil, fmt.Errorf("no containerd content store in the evidence")
	}
	return &image.Store{Src: n.Src, Dir: path.Join(n.Containerd.Root, contentStoreDir)}, nil
}

func targetOf(im model.Image) image.Descriptor {
	d := image.Descriptor{MediaType: im.Target.MediaType, Digest: im.Target.Digest, Size: im.Target.Size}
	if im.Checkpoint {
		d.Annotations = map[string]string{image.LabelCheckpoint: "true"}
	}
	return d
}

// layerUse ties a layer to the snapshot it was unpacked to and the
// containers that have that snapshot below their own.
type layerUse struct {
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

type imageReport struct {
	Namespace  string            `json:"namespace"`
	Name       string            `json:"name"`
	Digest     string            `json:"digest"`
	MediaType  string            `json:"media_type"`
	Kind       string            `json:"kind"`
	CreatedAt  model.Time        `json:"created_at"`
	Labels     map[string]string `json:"labels"`
	Image      *image.Image      `json:"image"`
	Layers     []layerUse        `json:"layers"`
	Containers []string          `json:"containers"` // containers created from this image
	Error      string            `json:"error,omitempty"`
}

// snapshotIndex finds snapshots by namespace and key.
type snapshotIndex map[string]model.Snapshot

func newSnapshotIndex(n *forensics.Node) snapshotIndex {
	idx := snapshotIndex{}
	for _, s := range n.Snapshots() {
		k := s.Namespace + "\x00" + s.Key
		if old, ok := idx[k]; ok && old.Snapshotter == "overlayfs" {
			continue
		}
		idx[k] = s
	}
	return idx
}

func (x snapshotIndex) layer(ns, chainID string) (model.Snapshot, bool) {
	s, ok := x[ns+"\x00"+chainID]
	return s, ok && chainID != ""
}

func layerUses(n *forensics.Node, idx snapshotIndex, ns string, img *image.Image) []layerUse {
	out := []layerUse{}
	if img == nil {
		return out
	}
	for i, l := range img.Layers {
		u := layerUse{Index: i, Digest: l.Digest, DiffID: l.DiffID, ChainID: l.ChainID, Size: l.Size, BlobPresent: l.BlobPresent, Containers: []string{}}
		if s, ok := idx.layer(ns, l.ChainID); ok {
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

func containersOf(n *forensics.Node, im model.Image) []string {
	out := []string{}
	for _, c := range n.Containers() {
		if c.Namespace == im.Namespace && (c.Image == im.Name || (c.ImageRef != "" && c.ImageRef == im.Target.Digest)) {
			out = append(out, c.ID)
		}
	}
	return out
}

func runImageInspect(a *app, ref string, plat *image.Platform) error {
	n, err := a.node()
	if err != nil {
		return err
	}
	recs, err := findImages(n, ref)
	if err != nil {
		return err
	}
	st, err := imageStore(n)
	if err != nil {
		return err
	}
	idx := newSnapshotIndex(n)
	var reps []imageReport
	for _, im := range recs {
		r := imageReport{Namespace: im.Namespace, Name: im.Name, Digest: im.Target.Digest, MediaType: im.Target.MediaType,
			CreatedAt: im.CreatedAt, Labels: im.Labels, Containers: containersOf(n, im)}
		img, err := st.Resolve(targetOf(im), plat)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Image, r.Kind = img, img.Kind
		}
		// A checkpoint's layers are those of the image it was taken from.
		if img != nil && img.Kind == image.KindCheckpoint && img.Base != nil {
			r.Layers = layerUses(n, idx, im.Namespace, img.Base)
		} else {
			r.Layers = layerUses(n, idx, im.Namespace, img)
		}
		reps = append(reps, r)
	}
	return a.render(reps, func(w io.Writer) {
		for i, r := range reps {
			if i > 0 {
				fmt.Fprintln(w)
			}
			printImageReport(w, r)
		}
	})
}

func printImageReport(w io.Writer, r imageReport) {
	kv := func(k string, v any) {
		if s := fmt.Sprint(v); s != "" {
			fmt.Fprintf(w, "%s:\t%s\n", k, cleanCell(s))
		}
	}
	kv("Name", r.Name)
	kv("Namespace", r.Namespace)
	kv("Digest", r.Digest)
	kv("Media type", r.MediaType)
	kv("Kind", r.Kind)
	kv("Created", r.CreatedAt)
	printMap(w, "Label", r.Labels)
	if r.Error != "" {
		kv("Error", r.Error)
	}
	img := r.Image
	if img == nil {
		return
	}
	if img.PlatformChoice != "" {
		kv("Platform choice", img.PlatformChoice)
	}
	if img.Platform != nil {
		kv("Platform", img.Platform)
	}
	if cp := img.Checkpoint; cp != nil {
		kv("Checkpoint of", cp.ImageName)
		for _, x := range []struct {
			k string
			d *image.Descriptor
		}{{"CRIU images", cp.CRIU}, {"Pre-dump", cp.PreDump}, {"Spec", cp.Config}, {"Options", cp.Options}, {"RW layer", cp.RW}, {"Base manifest", cp.Manifest}} {
			if x.d != nil {
				kv(x.k, fmt.Sprintf("%s %d bytes %s present=%v", x.d.Digest, x.d.Size, x.d.MediaType, x.d.BlobPresent))
			}
		}
		for _, d := range cp.Others {
			kv("Other", fmt.Sprintf("%s %d bytes %s", d.Digest, d.Size, d.MediaType))
		}
		if img.Base != nil {
			img = img.Base
		}
	}
	if m := img.Manifest; m != nil {
		kv("Manifest", fmt.Sprintf("%s (%s)", m.Digest, m.MediaType))
	}
	if c := img.Config; c != nil {
		kv("Config", fmt.Sprintf("%s (%s)", c.Digest, c.MediaType))
		if c.Created != nil {
			kv("Image created", c.Created.Format(model.TimeLayout))
		}
		kv("Author", c.Author)
		kv("OS/arch", c.OS+"/"+c.Architecture)
		kv("Entrypoint", quoteArgs(c.Entrypoint))
		kv("Cmd", quoteArgs(c.Cmd))
		kv("User", c.User)
		kv("Workdir", c.WorkingDir)
		for _, e := range c.Env {
			kv("Env", e)
		}
		if len(c.ExposedPorts) > 0 {
			kv("Exposed ports", strings.Join(c.ExposedPorts, ","))
		}
		printMap(w, "Image label", c.Labels)
		for i, h := range c.History {
			created := "-"
			if h.Created != nil {
				created = h.Created.Format(model.TimeLayout)
			}
			layer := "empty"
			if !h.EmptyLayer {
				layer = fmt.Sprintf("layer %d", h.Layer)
			}
			kv(fmt.Sprintf("History %d", i), fmt.Sprintf("%s %s (%s)", created, h.CreatedBy, layer))
		}
	}
	for _, u := range r.Layers {
		kv(fmt.Sprintf("Layer %d", u.Index), fmt.Sprintf("%s %d bytes present=%v", u.Digest, u.Size, u.BlobPresent))
		kv("  diff_id", u.DiffID)
		kv("  chain_id", u.ChainID)
		if u.SnapshotDir != "" {
			kv("  snapshot", fmt.Sprintf("%s (id %s)", u.SnapshotDir, u.SnapshotID))
		} else {
			kv("  snapshot", "not unpacked in this namespace")
		}
		if len(u.Containers) > 0 {
			kv("  used by", strings.Join(u.Containers, ", "))
		}
	}
	if len(r.Containers) > 0 {
		kv("Containers", strings.Join(r.Containers, ", "))
	}
	for _, m := range r.Image.MissingBlobs {
		kv("Missing blob", m)
	}
	for _, p := range r.Image.Problems {
		kv("Problem", p)
	}
}

// verifyLayer is one layer's verification in an image verify report.
type verifyLayer struct {
	Index       int                `json:"index"`
	Digest      string             `json:"digest"`
	DiffID      string             `json:"diff_id"`
	ChainID     string             `json:"chain_id"`
	SnapshotDir string             `json:"snapshot_dir"`
	Status      string             `json:"status"`
	Reason      string             `json:"reason,omitempty"`
	Differences []image.Difference `json:"differences"`
	Omitted     int                `json:"differences_omitted,omitempty"`
	Errors      []string           `json:"errors,omitempty"`
	Entries     int                `json:"entries"`
}

type verifyReport struct {
	Runtime   string            `json:"runtime"`
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Digest    string            `json:"digest"`
	Kind      string            `json:"kind"`
	Status    string            `json:"status"` // verified, tampered or unverifiable: the worst of its parts
	Layers    []verifyLayer     `json:"layers"`
	Blobs     []image.BlobCheck `json:"blobs,omitempty"` // a checkpoint's blobs
	Missing   []string          `json:"missing_blobs,omitempty"`
	Corrupt   []string          `json:"corrupt_blobs,omitempty"` // blobs whose content does not match their digest or size
	Problems  []string          `json:"problems,omitempty"`
	Error     string            `json:"error,omitempty"`
}

func worse(a, b string) string {
	rank := map[string]int{image.StatusVerified: 0, image.StatusUnverifiable: 1, image.StatusTampered: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func runImageVerify(a *app, refs []string, plat *image.Platform, opt *image.VerifyOptions) error {
	n, err := a.node()
	if err != nil {
		return err
	}
	// Docker and containers-storage keep no layer blobs: their unpacked
	// layers are verified against their tar-split records instead.
	stored := storedReports(n, refs, opt)
	if n.Containerd == nil {
		if len(stored) == 0 {
			return fmt.Errorf("no containerd content store, Docker or containers-storage image in the evidence")
		}
		return renderVerify(a, stored)
	}
	st, err := imageStore(n)
	if err != nil {
		return err
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
		rs, err := findImages(n, ref)
		if err != nil {
			if len(stored) > 0 {
				continue
			}
			return err
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
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Namespace != recs[j].Namespace {
			return recs[i].Namespace < recs[j].Namespace
		}
		return recs[i].Name < recs[j].Name
	})
	idx := newSnapshotIndex(n)
	// A layer unpacked once is verified once, whichever images share it.
	cache := map[string]*image.LayerResult{}
	var total int64
	type job struct {
		rec model.Image
		img *image.Image
		err error
	}
	var jobs []job
	for _, im := range recs {
		img, err := st.Resolve(targetOf(im), plat)
		jobs = append(jobs, job{im, img, err})
		if img != nil {
			for _, l := range img.Layers {
				total += l.Size
			}
		}
	}
	prog := a.newProgress("verifying layers", total)
	defer prog.Done()
	ctx := context.Background()
	reps := []verifyReport{}
	for _, j := range jobs {
		r := verifyReport{Runtime: j.rec.Runtime, Namespace: j.rec.Namespace, Name: j.rec.Name, Digest: j.rec.Target.Digest, Status: image.StatusVerified, Layers: []verifyLayer{}}
		if j.err != nil {
			r.Error, r.Status = j.err.Error(), image.StatusUnverifiable
			if errors.Is(j.err, image.ErrDigestMismatch) || errors.Is(j.err, image.ErrSizeMismatch) {
				r.Status = image.StatusTampered
			}
			reps = append(reps, r)
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
					r.Status = worse(r.Status, image.StatusUnverifiable)
				case !bc.OK:
					r.Status = worse(r.Status, image.StatusTampered)
				}
			}
		case image.KindIndex:
			r.Status = image.StatusUnverifiable
			r.Problems = append(r.Problems, img.PlatformChoice)
		}
		for i, l := range img.Layers {
			vl := verifyLayer{Index: i, Digest: l.Digest, DiffID: l.DiffID, ChainID: l.ChainID, Differences: []image.Difference{}}
			var res *image.LayerResult
			if s, ok := idx.layer(j.rec.Namespace, l.ChainID); ok {
				vl.SnapshotDir = s.Dir
				key := l.Digest + "\x00" + l.DiffID + "\x00" + s.Dir
				if res = cache[key]; res == nil {
					one := *img
					one.Layers = []image.Layer{l}
					res = st.VerifyLayers(ctx, &one, n.Src, []string{s.Dir}, opt)[0]
					cache[key] = res
					prog.Add(l.Size)
				}
			} else {
				one := *img
				one.Layers = []image.Layer{l}
				res = st.VerifyLayers(ctx, &one, n.Src, []string{""}, opt)[0]
				if l.Error == "" && res.Status == image.StatusUnverifiable && strings.HasPrefix(res.Reason, "no snapshot for chain") {
					res.Reason = fmt.Sprintf("no snapshot with key %s in namespace %s: the layer is not unpacked (blob digest, size and diff_id verified)", l.ChainID, j.rec.Namespace)
				}
			}
			vl.Status, vl.Reason, vl.Omitted, vl.Errors, vl.Entries = res.Status, res.Reason, res.DifferencesOmitted, res.Errors, res.Entries
			if res.Differences != nil {
				vl.Differences = res.Differences
			}
			r.Status = worse(r.Status, vl.Status)
			r.Layers = append(r.Layers, vl)
		}
		reps = append(reps, r)
	}
	prog.Done()
	return renderVerify(a, append(reps, stored...))
}

// storedReports verifies the Docker and containers-storage images named
// by refs (all when none).
func storedReports(n *forensics.Node, refs []string, opt *image.VerifyOptions) []verifyReport {
	var out []verifyReport
	for _, si := range n.VerifyStoredLayers(context.Background(), opt) {
		if len(refs) > 0 && !matchStored(si, refs) {
			continue
		}
		name := strings.Join(si.Names, ",")
		r := verifyReport{Runtime: si.Runtime, Name: name, Digest: si.ID, Kind: image.KindImage, Status: si.Status, Layers: []verifyLayer{}}
		for i, l := range si.Layers {
			vl := verifyLayer{Index: i, DiffID: l.DiffID, ChainID: l.Layer, SnapshotDir: l.SnapshotDir, Status: l.Status, Reason: l.Reason,
				Differences: []image.Difference{}, Omitted: l.DifferencesOmitted, Errors: l.Errors, Entries: l.Entries}
			if l.Differences != nil {
				vl.Differences = l.Differences
			}
			r.Layers = append(r.Layers, vl)
		}
		out = append(out, r)
	}
	return out
}

func matchStored(si forensics.StoredImageResult, refs []string) bool {
	for _, ref := range refs {
		if strings.HasPrefix(si.ID, ref) || strings.HasPrefix(strings.TrimPrefix(si.ID, "sha256:"), strings.TrimPrefix(ref, "sha256:")) {
			return true
		}
		for _, nm := range si.Names {
			if nm == ref {
				return true
			}
		}
	}
	return false
}

func renderVerify(a *app, reps []verifyReport) error {
	return a.render(reps, func(w io.Writer) {
		row(w, "NAMESPACE", "IMAGE", "DIGEST", "STATUS", "LAYER", "SNAPSHOT", "LAYER STATUS", "DIFFERENCES")
		for _, r := range reps {
			if len(r.Layers) == 0 {
				note := r.Error
				if note == "" && r.Kind == image.KindCheckpoint {
					note = fmt.Sprintf("checkpoint: %d blobs checked", len(r.Blobs))
				}
				row(w, r.Namespace, r.Name, short(r.Digest), r.Status, "", "", "", note)
			}
			for _, l := range r.Layers {
				what := fmt.Sprint(len(l.Differences) + l.Omitted)
				if l.Reason != "" {
					what += " (" + l.Reason + ")"
				}
				row(w, r.Namespace, r.Name, short(r.Digest), r.Status, fmt.Sprintf("%d %s", l.Index, short(l.DiffID)), l.SnapshotDir, l.Status, what)
				for _, d := range l.Differences {
					p := d.Path
					if p == "" {
						p = "(blob)"
					}
					row(w, "", "", "", "", "", "  "+p, d.What, d.Detail)
				}
			}
			for _, b := range r.Blobs {
				if !b.OK {
					row(w, "", "", "", "", "", "  "+short(b.Digest), "blob", b.Error)
				}
			}
			for _, d := range r.Corrupt {
				row(w, "", "", "", "", "", "  "+short(d), "blob", "content does not match its digest or size")
			}
		}
	})
}
