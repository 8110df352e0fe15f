package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/memory"
)

func init() {
	register(&command{
		name:    "checkpoint inspect",
		args:    "SOURCE | --root EVIDENCE CHECKPOINT",
		summary: "a container checkpoint's processes, files, sockets and mounts (SOURCE: a podman/CRI-O/kubelet archive or a CRIU images dir; CHECKPOINT: a containerd checkpoint image name or digest, or a kubelet archive path in the evidence)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o ckptFlags
			fs.BoolVar(&o.tree, "ps-tree", false, "show the process tree with command lines")
			fs.BoolVar(&o.files, "files", false, "show each process's open files")
			fs.BoolVar(&o.sockets, "sockets", false, "show each process's sockets")
			fs.BoolVar(&o.mounts, "mounts", false, "show the container's mounts")
			fs.BoolVar(&o.env, "env", false, "show each process's environment")
			fs.BoolVar(&o.all, "all", false, "show everything (--ps-tree --files --sockets --mounts --env)")
			fs.BoolVar(&o.memCmd, "ps-tree-cmd", false, "the process tree with command lines read from memory through package memory (parent images included)")
			fs.BoolVar(&o.memEnv, "ps-tree-env", false, "the process tree with environments read from memory through package memory")
			fs.BoolVar(&o.pages, "keep-pages", false, "spill the pages images of compressed archives to a temp file (memory access); not needed for command lines")
			return func(a *app, args []string) error { return runCheckpointInspect(a, args, o) }
		},
	})
	register(&command{
		name:    "checkpoint ls",
		summary: "list the node's checkpoints: the kubelet's checkpoint archives and containerd checkpoint images",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			return runCheckpointLs
		},
	})
}

type ckptFlags struct {
	tree, files, sockets, mounts, env, all, pages bool
	memCmd, memEnv                                bool
}

func runCheckpointInspect(a *app, args []string, o ckptFlags) error {
	if len(args) != 1 {
		return usagef("checkpoint inspect takes one SOURCE (or, with --root, one CHECKPOINT)")
	}
	if o.all {
		o.tree, o.files, o.sockets, o.mounts, o.env = true, true, true, true, true
	}
	o.tree, o.env = o.tree || o.memCmd, o.env || o.memEnv
	opt := checkpoint.Options{Pages: o.pages || o.memCmd || o.memEnv}
	var cp *checkpoint.Checkpoint
	var err error
	closeEvidence := func() {}
	if a.root == "" {
		cp, err = checkpoint.OpenPath(context.Background(), args[0], &opt)
		err = sourceHint(args[0], err)
	} else {
		cp, closeEvidence, err = openNodeCheckpoint(a, args[0], opt)
	}
	if err != nil {
		return err
	}
	defer closeEvidence()
	defer cp.Close()
	for _, w := range cp.Warnings {
		a.warn(w.String())
	}
	if o.memCmd || o.memEnv {
		if err := memory.FillArgs(context.Background(), cp, o.memCmd, o.memEnv); err != nil {
			a.warn(err.Error())
		}
	}
	return a.render(cp, func(w io.Writer) { printCheckpoint(w, cp, o) })
}

// openNodeCheckpoint opens a checkpoint of the node (see
// forensics.Node.FindCheckpoint).
func openNodeCheckpoint(a *app, ref string, opt checkpoint.Options) (*checkpoint.Checkpoint, func(), error) {
	n, err := a.evidence()
	if err != nil {
		return nil, nil, err
	}
	cp, err := n.OpenCheckpoint(context.Background(), ref, &opt)
	if err != nil {
		return nil, nil, err
	}
	return cp, func() {}, nil
}

func runCheckpointLs(a *app, args []string) error {
	if len(args) != 0 {
		return usagef("checkpoint ls takes no arguments")
	}
	n, err := a.evidence()
	if err != nil {
		return err
	}
	rows, warns := n.Checkpoints(context.Background())
	for _, w := range warns {
		a.warn(w.String())
	}
	rows = nonNil(rows)
	return a.render(rows, func(w io.Writer) {
		row(w, "KIND", "NAMESPACE", "NAME", "DIGEST", "SIZE", "IMAGE/POD", "CREATED")
		for _, r := range rows {
			created := ""
			if !r.Created.IsZero() {
				created = r.Created.UTC().Format(time.RFC3339)
			}
			row(w, r.Kind, r.Namespace, r.Name, short(r.Digest), r.Size, firstNonEmpty(r.Image, r.Pod), created)
		}
	})
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// maxTreeIndent is the depth of the process tree past which the table's
// indentation stops growing.
const maxTreeIndent = 32

// printCheckpoint draws the checkpoint for people: the container, then a
// pstree-like tree of the processes with what the flags ask for.
func printCheckpoint(w io.Writer, cp *checkpoint.Checkpoint, o ckptFlags) {
	c := cp.Container
	kv := func(k string, v any) {
		s := fmt.Sprint(v)
		if s != "" && s != "0" {
			fmt.Fprintf(w, "%s:\t%s\n", k, cleanCell(s))
		}
	}
	kv("Source", cp.Source)
	kv("Format", cp.Format)
	kv("Container", strings.TrimSpace(c.Name+" "+paren(c.ID)))
	kv("Image", strings.TrimSpace(c.Image+" "+paren(short(c.ImageID))))
	if c.Pod != "" || c.Namespace != "" {
		kv("Pod", c.Namespace+"/"+c.Pod)
	}
	kv("Engine", strings.TrimSpace(c.Engine+" "+paren(c.Runtime)))
	if !c.CreatedAt.IsZero() {
		kv("Created", c.CreatedAt.UTC().Format(time.RFC3339))
	}
	if !c.CheckpointedAt.IsZero() {
		kv("Checkpointed", c.CheckpointedAt.UTC().Format(time.RFC3339)+" (from "+c.CheckpointedAtSource+")")
	}
	kv("CRIU", strings.TrimSpace(cp.CRIUVersion+fmt.Sprintf(" (image format v%d)", cp.ImageVersion)))
	if cp.Network != nil {
		kv("IPs", strings.Join(cp.Network.IPs, ", "))
	}
	if d := cp.RootfsDiff; d != nil {
		kv("Rootfs diff", fmt.Sprintf("%s, %d bytes, %d files", d.Member, d.Size, d.Files))
	}
	kv("Deleted files", strings.Join(cp.DeletedFiles, ", "))
	if s := cp.Stats; s != nil {
		kv("Dump stats", fmt.Sprintf("frozen %.1f ms, %d pages written of %d scanned", float64(s.FrozenTimeUs)/1000, s.PagesWritten, s.PagesScanned))
	}
	kv("Stale images (ignored)", strings.Join(cp.StaleImages, " "))
	fmt.Fprintln(w, "Process tree:")
	children := map[uint32][]int{}
	known := map[uint32]bool{}
	for _, p := range cp.Processes {
		known[p.PID] = true
	}
	var roots []int
	for i, p := range cp.Processes {
		if p.PPID == 0 || !known[p.PPID] {
			roots = append(roots, i)
		} else {
			children[p.PPID] = append(children[p.PPID], i)
		}
	}
	// A depth-first walk with a stack of its own (a chain of tasks may be
	// as deep as pstree.img is long); past maxTreeIndent levels the
	// indentation stops growing and a marker gives the depth left out, so
	// the table stays linear in the number of tasks.
	type frame struct {
		i          int
		prefix     string
		last, root bool
		depth      int
	}
	var stack []frame
	for k := len(roots) - 1; k >= 0; k-- {
		stack = append(stack, frame{i: roots[k], last: true, root: true})
	}
	seen := map[uint32]bool{}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := &cp.Processes[f.i]
		if seen[p.PID] {
			continue
		}
		seen[p.PID] = true
		branch, next := "├─ ", "│  "
		if f.last {
			branch, next = "└─ ", "   "
		}
		switch {
		case f.root:
			branch, next = "", ""
		case f.depth > maxTreeIndent:
			branch, next = fmt.Sprintf("└─(+%d) ", f.depth-maxTreeIndent), "   "
		}
		fmt.Fprintf(w, "%s%s%s\n", f.prefix, branch, cleanCell(procLine(p, o)))
		detail := f.prefix + next
		kids := children[p.PID]
		if len(kids) > 0 {
			detail += "│  "
		} else {
			detail += "   "
		}
		for _, l := range procDetails(p, o) {
			fmt.Fprintf(w, "%s%s\n", detail, cleanCell(l))
		}
		childPrefix := f.prefix
		if f.depth < maxTreeIndent {
			childPrefix += next
		}
		for k := len(kids) - 1; k >= 0; k-- {
			stack = append(stack, frame{i: kids[k], prefix: childPrefix, last: k == len(kids)-1, depth: f.depth + 1})
		}
	}
	if o.mounts && len(cp.Mounts) > 0 {
		fmt.Fprintln(w, "Mounts:")
		for _, m := range cp.Mounts {
			ext := ""
			if m.External {
				ext = " [external]"
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s%s\n", cleanCell(m.Mountpoint), cleanCell(m.FSType), cleanCell(m.Source), cleanCell(m.Root), ext)
		}
	}
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

func procLine(p *checkpoint.Process, o ckptFlags) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", p.PID, p.Comm)
	if p.State != checkpoint.StateAlive {
		fmt.Fprintf(&b, " [%s]", p.State)
	}
	if p.Exe != "" {
		fmt.Fprintf(&b, "  exe=%s", p.Exe)
		if p.ExeOrigin != checkpoint.OriginUnknown {
			fmt.Fprintf(&b, " (%s)", p.ExeOrigin)
		}
	}
	fmt.Fprintf(&b, "  uid=%d", p.UID)
	if len(p.Threads) > 1 {
		fmt.Fprintf(&b, "  threads=%d", len(p.Threads))
	}
	if o.tree && len(p.Cmdline) > 0 {
		fmt.Fprintf(&b, "  cmd=%s", quoteArgs(p.Cmdline))
	}
	if !o.sockets {
		for _, s := range p.Sockets {
			if s.State == "LISTEN" {
				fmt.Fprintf(&b, "  listen=%s/%s", s.Protocol, s.Src)
			}
		}
	}
	return b.String()
}

func procDetails(p *checkpoint.Process, o ckptFlags) []string {
	var out []string
	if o.files {
		out = append(out, fmt.Sprintf("cwd %s  root %s", p.Cwd, p.Root))
		for _, f := range p.FDs {
			if f.Type == "inet" || f.Type == "unix" {
				if o.sockets {
					continue
				}
			}
			l := fmt.Sprintf("fd %d %s %s", f.FD, f.Type, f.Path)
			if f.Flags != "" {
				l += " " + f.Flags
			}
			if f.Deleted {
				l += " (deleted)"
			}
			if f.Detail != "" && f.Type != "inet" && f.Type != "unix" {
				l += " " + f.Detail
			}
			out = append(out, l)
		}
	}
	if o.sockets {
		for _, s := range p.Sockets {
			l := fmt.Sprintf("fd %d %s %s %s %s", s.FD, s.Family, firstNonEmpty(s.Protocol, s.Type), s.State, s.Src)
			if s.Dst != "" {
				l += " -> " + s.Dst
			}
			if s.Peer != 0 {
				l += fmt.Sprintf(" peer=%d", s.Peer)
			}
			out = append(out, l)
		}
	}
	if o.env {
		for _, e := range p.Environ {
			out = append(out, "env "+e)
		}
	}
	for _, e := range p.Errors {
		out = append(out, "error: "+e.String())
	}
	return out
}
