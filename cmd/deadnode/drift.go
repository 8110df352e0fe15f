package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/render"
)

func init() {
	register(&command{
		name:    "drift",
		args:    "[CONTAINER ...] [--all] [--pod NS/NAME] [--checkpoint ARCHIVE|IMAGE]",
		summary: "what changed in containers against their images: added, modified, deleted files, executables first",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o driftFlags
			fs.BoolVar(&o.all, "all", false, "every container of the node (sandboxes too)")
			fs.StringVar(&o.pod, "pod", "", "the containers of a pod, NAMESPACE/NAME")
			fs.BoolVar(&o.execOnly, "exec-only", false, "only executables (ELF, scripts, shared libraries, exec bit)")
			fs.StringVar(&o.checkpoint, "checkpoint", "", "drift of a checkpoint: a CRI-O/Podman/kubelet archive on the host, or (with --root) a containerd checkpoint image name or digest")
			fs.BoolVar(&o.noHash, "no-hash", false, "do not hash contents (faster; no sha256, no identical_to)")
			fs.BoolVar(&o.identicalAll, "identical-all", false, "look for an identical image file for every added or modified file, not only executables")
			fs.BoolVar(&o.diff, "diff", false, "a unified diff of every modified text file against the image's version (binary files: sizes and hashes)")
			fs.BoolVar(&o.hostPaths, "host-paths", false, "also report the files of the containers' read-write host path mounts (node files, shared with the node: every one as added)")
			return func(a *app, args []string) error { return runDrift(a, args, o) }
		},
	})
}

type driftFlags struct {
	all, execOnly, noHash, identicalAll, diff, hostPaths bool
	pod, checkpoint                                      string
}

func runDrift(a *app, args []string, o driftFlags) error {
	opt := &forensics.DriftOptions{NoHash: o.noHash, IdenticalAll: o.identicalAll, Diff: o.diff, HostPaths: o.hostPaths}
	var sources []func() (*forensics.DriftSource, io.Closer, error)
	if o.checkpoint != "" {
		if len(args) > 0 || o.all || o.pod != "" {
			return usagef("--checkpoint takes no containers")
		}
		if st, err := os.Stat(o.checkpoint); err == nil && !st.IsDir() {
			var node *forensics.Node
			if a.root != "" {
				n, err := a.node()
				if err != nil {
					return err
				}
				node = n
			}
			sources = append(sources, func() (*forensics.DriftSource, io.Closer, error) {
				return forensics.CheckpointArchiveDrift(context.Background(), o.checkpoint, node)
			})
		} else {
			n, err := a.node()
			if err != nil {
				return err
			}
			im, err := n.FindImage("", o.checkpoint)
			if err != nil {
				return err
			}
			sources = append(sources, func() (*forensics.DriftSource, io.Closer, error) {
				return n.CheckpointImageDrift(context.Background(), im)
			})
		}
	} else {
		n, err := a.node()
		if err != nil {
			return err
		}
		var ctrs []model.Container
		switch {
		case o.all:
			if len(args) > 0 || o.pod != "" {
				return usagef("--all takes no containers")
			}
			ctrs = n.Containers()
		case o.pod != "":
			ns, name, ok := strings.Cut(o.pod, "/")
			if !ok {
				return usagef("--pod takes NAMESPACE/NAME")
			}
			for _, c := range n.Containers() {
				if c.Kind == model.KindContainer && c.Pod != nil && c.Pod.Namespace == ns && c.Pod.Name == name {
					ctrs = append(ctrs, c)
				}
			}
			if len(ctrs) == 0 {
				return fmt.Errorf("pod %s: no containers", o.pod)
			}
		case len(args) > 0:
			for _, ref := range args {
				c, err := n.FindContainer(ref)
				if err != nil {
					return err
				}
				ctrs = append(ctrs, *c)
			}
		default:
			return usagef("name containers, or --all, --pod or --checkpoint")
		}
		for i := range ctrs {
			c := ctrs[i]
			sources = append(sources, func() (*forensics.DriftSource, io.Closer, error) {
				ds, err := n.ContainerDrift(&c)
				return ds, io.NopCloser(nil), err
			})
		}
	}

	var all []forensics.DriftEntry
	var quiet []string // containers read that showed no drift (for the table)
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	p := a.newProgress("drift", int64(len(sources)))
	defer p.Done()
	ctx := context.Background()
	for _, open := range sources {
		ds, cl, err := open()
		p.Add(1)
		if err != nil {
			if len(sources) == 1 {
				return err
			}
			a.warn(err.Error())
			continue
		}
		before := len(all)
		for f, err := range forensics.Drift(ctx, ds, opt) {
			if err != nil {
				var w evidence.Warning
				if errors.As(err, &w) {
					a.warn(w.String())
					continue
				}
				if len(sources) == 1 {
					cl.Close()
					return err
				}
				a.warn(fmt.Sprintf("%s: %v", ds.Container.ID, err))
				break
			}
			if o.execOnly && !f.IsExec() {
				continue
			}
			if a.output == "jsonl" {
				enc.Encode(f) // streamed: the first entry prints before the last is computed
				continue
			}
			all = append(all, f)
		}
		cl.Close()
		if len(all) == before {
			c := ds.Container
			pod := ""
			if c.Pod != nil {
				pod = c.Pod.Namespace + "/" + c.Pod.Name
			}
			quiet = append(quiet, driftTitle(c.ID, pod, c.ContainerName))
		}
	}
	if a.output == "jsonl" {
		return nil
	}
	if all == nil {
		all = []forensics.DriftEntry{}
	}
	t := driftTable(all, o.diff)
	if len(quiet) > 0 {
		if len(all) > 0 {
			t.Break()
		}
		what := "no drift"
		if o.execOnly {
			what = "no executable drift"
		}
		for _, q := range quiet {
			t.Title(q + ": " + what)
		}
	}
	return a.show(all, t)
}

// driftTable groups findings by container, executables first, then the
// rest, each in path order; benign runtime files last.
func driftTable(all []forensics.DriftEntry, diffs bool) *render.Table {
	t := render.Cols("CHANGE", "TYPE", "EXEC", "MODE=", "SIZE=", "MTIME=", "PATH/", "FLAGS", "NOTE")
	rank := func(f forensics.DriftEntry) int {
		switch {
		case hasFlag(f, classify.FlagBenign):
			return 3
		case f.IsExec():
			return 0
		case f.Change == forensics.ChangeDeleted || f.Change == forensics.ChangeDeletedDir || f.Change == forensics.ChangeOpaqueDir:
			return 2
		}
		return 1
	}
	groups := map[string][]forensics.DriftEntry{}
	var order []string
	for _, f := range all {
		k := f.Namespace + "/" + f.ContainerID
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], f)
	}
	for i, k := range order {
		fs := groups[k]
		sort.SliceStable(fs, func(i, j int) bool { return rank(fs[i]) < rank(fs[j]) })
		f0 := fs[0]
		if i > 0 {
			t.Break()
		}
		t.Title(driftTitle(f0.ContainerID, f0.Pod, f0.ContainerName) + ": " + render.Plural(len(fs), "finding"))
		t.Header()
		for _, f := range fs {
			note := f.Note
			if f.IdenticalTo != "" {
				note = strings.TrimPrefix(note+"; identical to "+f.IdenticalTo, "; ")
			}
			if f.Hides > 0 {
				note = strings.TrimPrefix(fmt.Sprintf("%s; hides %d", note, f.Hides), "; ")
			}
			if f.Interpreter != "" {
				note = strings.TrimPrefix(note+"; #!"+f.Interpreter, "; ")
			}
			if len(f.MetadataChanged) > 0 {
				note = strings.TrimPrefix(note+"; changed "+strings.Join(f.MetadataChanged, ","), "; ")
			}
			path := f.Path
			if f.LinkTarget != "" {
				path += " -> " + f.LinkTarget
			}
			if f.Volume != "" && f.Note == "" {
				note = strings.TrimPrefix(note+"; volume "+f.Volume, "; ")
			}
			t.Row(f.Change, f.Type, f.ExecKind, f.Mode, f.Size, f.Mtime, path, strings.Join(f.Flags, ","), note)
		}
		if diffs {
			for _, f := range fs {
				if f.Diff == nil {
					continue
				}
				t.Break()
				switch {
				case f.Diff.Unified != "":
					for _, l := range strings.Split(strings.TrimSuffix(f.Diff.Unified, "\n"), "\n") {
						t.Title(l)
					}
				default:
					what := "binary"
					if f.Diff.Truncated {
						what = "too large for a line diff"
					}
					t.Title(fmt.Sprintf("%s differs (%s): image %d bytes sha256 %s, container %d bytes sha256 %s", f.Path, what, f.Diff.OldSize, f.Diff.OldSHA256, f.Diff.NewSize, f.Diff.NewSHA256))
				}
			}
		}
	}
	return t
}

func hasFlag(f forensics.DriftEntry, flag string) bool {
	for _, x := range f.Flags {
		if x == flag {
			return true
		}
	}
	return false
}

// driftTitle names a container in the drift table: its id, and its pod
// (namespace/name) and name when it has a pod.
func driftTitle(id, pod, name string) string {
	if pod == "" {
		return "container " + id
	}
	return "container " + id + " (" + pod + "/" + name + ")"
}
