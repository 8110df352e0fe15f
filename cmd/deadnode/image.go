package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
	"github.com/deadnode/deadnode/render"
)

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

func runImageInspect(a *app, ref string, plat *image.Platform) error {
	n, err := a.node()
	if err != nil {
		return err
	}
	reps, err := n.InspectImages(ref, plat)
	if err != nil {
		return err
	}
	t := render.KeyValue()
	for i, r := range reps {
		if i > 0 {
			t.KVBreak()
		}
		printImageReport(t, r)
	}
	return a.show(reps, t)
}

func printImageReport(t *render.Table, r forensics.ImageReport) {
	kv := t.KV
	kv("Name", r.Name)
	kv("Namespace", r.Namespace)
	kv("Digest", r.Digest)
	kv("Media type", r.MediaType)
	kv("Kind", r.Kind)
	kv("Created", r.CreatedAt)
	printMap(t, "Label", r.Labels)
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
		printMap(t, "Image label", c.Labels)
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

func runImageVerify(a *app, refs []string, plat *image.Platform, opt *image.VerifyOptions) error {
	n, err := a.node()
	if err != nil {
		return err
	}
	prog := a.newProgress("verifying layers", 0)
	defer prog.Done()
	reps, err := n.VerifyImages(context.Background(), refs, &forensics.VerifyOptions{Platform: plat, Layer: opt, Progress: prog})
	prog.Done()
	if err != nil {
		return err
	}
	return renderVerify(a, reps)
}

func renderVerify(a *app, reps []image.Verification) error {
	t := render.Cols("NAMESPACE", "IMAGE", "DIGEST#", "STATUS", "LAYER", "SNAPSHOT/", "LAYER STATUS", "DIFFERENCES")
	for _, r := range reps {
		if len(r.Layers) == 0 {
			note := r.Error
			if note == "" && r.Kind == image.KindCheckpoint {
				note = fmt.Sprintf("checkpoint: %d blobs checked", len(r.Blobs))
			}
			t.Row(r.Namespace, r.Name, r.Digest, r.Status, "", "", "", note)
		}
		for _, l := range r.Layers {
			what := fmt.Sprint(len(l.Differences) + l.Omitted)
			if l.Reason != "" {
				what += " (" + l.Reason + ")"
			}
			t.Row(r.Namespace, r.Name, r.Digest, r.Status, fmt.Sprintf("%d %s", l.Index, short(l.DiffID)), l.SnapshotDir, l.Status, what)
			for _, d := range l.Differences {
				p := d.Path
				if p == "" {
					p = "(blob)"
				}
				t.Row("", "", "", "", "", "  "+p, d.What, d.Detail)
			}
		}
		for _, b := range r.Blobs {
			if !b.OK {
				t.Row("", "", "", "", "", "  "+short(b.Digest), "blob", b.Error)
			}
		}
		for _, d := range r.Corrupt {
			t.Row("", "", "", "", "", "  "+short(d), "blob", "content does not match its digest or size")
		}
	}
	return a.show(reps, t)
}
