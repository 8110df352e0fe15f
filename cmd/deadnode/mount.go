package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/overlay"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "mount",
		args:    "CONTAINER DIR [--userxattr]",
		summary: "mount a container's layers as a read-only kernel overlay at DIR (root only; any number of layers; undo with umount DIR)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var userx bool
			fs.BoolVar(&userx, "userxattr", false, "layers use user.overlay.* xattrs (rootless Podman)")
			return func(a *app, args []string) error { return runMount(a, args, userx) }
		},
	})
}

func runMount(a *app, args []string, userx bool) error {
	if len(args) != 2 {
		return usagef("mount takes CONTAINER and DIR")
	}
	n, err := a.node()
	if err != nil {
		return err
	}
	c, err := n.FindContainer(args[0])
	if err != nil {
		return err
	}
	hp, ok := n.Src.(evidence.HostPather)
	if !ok {
		return fmt.Errorf("mount needs the evidence as a directory (a mounted image or an extracted copy), not %s", n.Src)
	}
	var dirs []string
	for _, d := range append([]string{c.UpperDir}, c.LowerDirs...) {
		if d == "" {
			continue
		}
		h, err := hp.HostPath(strings.TrimPrefix(d, "/"))
		if err != nil {
			return err
		}
		dirs = append(dirs, h)
	}
	if err := overlay.Mount(args[1], dirs, &overlay.MountOptions{Userxattr: userx}); err != nil {
		return err
	}
	return a.render(map[string]any{"container": c.ID, "target": args[1], "layers": dirs}, func(w io.Writer) {
		fmt.Fprintf(w, "mounted %s (%d layers, read-only) at %s\n", c.ID, len(dirs), args[1])
	})
}
