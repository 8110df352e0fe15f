package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/diskimage"
	"github.com/deadnode/deadnode/overlay"
	"github.com/deadnode/deadnode/render"
)

func init() {
	register(&command{
		name:    "mount",
		args:    "CONTAINER DIR [--userxattr]",
		summary: "mount a container's layers as a read-only kernel overlay at DIR (root only; evidence as a directory; any number of layers; undo with umount DIR)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var userx bool
			fs.BoolVar(&userx, "userxattr", false, "layers use user.overlay.* xattrs (rootless Podman)")
			return func(a *app, args []string) error { return runMount(a, args, userx) }
		},
	})
}

// mountResult is what mount prints.
type mountResult struct {
	Container string   `json:"container"`
	Target    string   `json:"target"`
	Layers    []string `json:"layers"` // the layers' paths inside the evidence, upper first
}

func runMount(a *app, args []string, userx bool) error {
	if len(args) != 2 {
		return usagef("mount takes CONTAINER and DIR")
	}
	if err := a.checkOutput(args[1]); err != nil {
		return err
	}
	n, err := a.node()
	if err != nil {
		return err
	}
	opener, ok := n.Src.(evidence.DirFDOpener)
	if st, err := os.Stat(a.root); !ok || err != nil || !st.IsDir() {
		if _, isDisk := n.Src.(*diskimage.Image); isDisk {
			return fmt.Errorf("mount needs the evidence as a directory (a mounted disk image or an extracted copy); %s is a disk image read without mounting it: use fs ls/cat/stat or export, or mount its root filesystem read-only first (see disk ls for its offset)", a.root)
		}
		return fmt.Errorf("mount needs the evidence as a directory (a mounted disk image or an extracted copy); %s is not one: use fs ls/cat/stat or export on an archive", a.root)
	}
	c, err := n.FindContainer(args[0])
	if err != nil {
		return err
	}
	// Each layer is opened inside the evidence, one component at a time
	// without following links, and handed to the kernel as a descriptor:
	// a layer that is a link (to the host's /etc, say) is refused, never
	// followed.
	var fds []*os.File
	defer func() {
		for _, f := range fds {
			f.Close()
		}
	}()
	var names []string
	for _, d := range append([]string{c.UpperDir}, c.LowerDirs...) {
		if d == "" {
			continue
		}
		f, err := opener.OpenDirFD(strings.TrimPrefix(d, "/"))
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		fds = append(fds, f)
		names = append(names, d)
	}
	if err := overlay.MountFDs(args[1], fds, &overlay.MountOptions{Userxattr: userx}); err != nil {
		return err
	}
	res := mountResult{Container: c.ID, Target: args[1], Layers: names}
	t := render.KeyValue()
	t.KV("Mounted", fmt.Sprintf("%s (%d layers, read-only) at %s", c.ID, len(names), args[1]))
	return a.show(res, t)
}
