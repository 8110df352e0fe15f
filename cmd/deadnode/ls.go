package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/render"
)

var lsSubjects = []string{"namespaces", "pods", "containers", "images", "snapshots", "content", "leases", "execs", "orphans"}

func init() {
	register(&command{
		name:    "ls",
		args:    "namespaces|pods|containers|images|snapshots|content|leases|execs|orphans",
		summary: "list what the node's runtimes recorded",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			return runLs
		},
	})
}

func runLs(a *app, args []string) error {
	if len(args) != 1 {
		return usagef("ls takes one of: %s", strings.Join(lsSubjects, ", "))
	}
	subject := args[0]
	switch subject {
	case "namespace", "ns":
		subject = "namespaces"
	case "pod":
		subject = "pods"
	case "container", "ctr":
		subject = "containers"
	case "image":
		subject = "images"
	case "snapshot":
		subject = "snapshots"
	case "blobs", "blob":
		subject = "content"
	case "lease":
		subject = "leases"
	case "exec":
		subject = "execs"
	case "orphan":
		subject = "orphans"
	}
	known := false
	for _, s := range lsSubjects {
		known = known || s == subject
	}
	if !known {
		return usagef("unknown subject %q; one of: %s", args[0], strings.Join(lsSubjects, ", "))
	}
	n, err := a.node()
	if err != nil {
		return err
	}
	var v any
	var t *render.Table
	switch subject {
	case "namespaces":
		rows := nonNil(n.Namespaces())
		t = render.Cols("RUNTIME", "NAMESPACE", "CONTAINERS=", "SANDBOXES=", "IMAGES=", "SNAPSHOTS=", "CONTENT=", "LEASES=")
		for _, x := range rows {
			t.Row(x.Runtime, x.Name, x.Containers, x.Sandboxes, x.Images, x.Snapshots, x.Content, x.Leases)
		}
		v = rows
	case "pods":
		rows, ws := n.PodDetails(context.Background())
		for _, w := range ws {
			a.warn(w.String())
		}
		t = render.Cols("NAMESPACE", "POD", "UID", "SANDBOX#", "IP", "STATE=", "CREATED=", "VOLUMES=", "CONTAINERS")
		for _, p := range rows {
			var cs []string
			for _, c := range p.Containers {
				cs = append(cs, c.Name+"("+c.State+")")
			}
			t.Row(p.Namespace, p.Name, p.UID, p.SandboxID, p.IP, p.State, p.CreatedAt, len(p.Volumes), strings.Join(cs, ","))
		}
		v = rows
	case "containers":
		all := n.Containers()
		for i := range all {
			all[i].Spec = nil // inspect prints the spec
		}
		rows := nonNil(all)
		t = render.Cols("NAMESPACE", "ID#", "KIND", "POD", "NAME", "IMAGE", "STATE=", "CREATED=", "UPPER DIR/")
		for _, c := range rows {
			pod := ""
			if c.Pod != nil {
				pod = c.Pod.Namespace + "/" + c.Pod.Name
			}
			t.Row(c.Namespace, c.ID, c.Kind, pod, c.ContainerName, c.Image, c.Status.State, c.CreatedAt, c.UpperDir)
		}
		v = rows
	case "images":
		rows := nonNil(n.Images())
		t = render.Cols("NAMESPACE", "NAME", "DIGEST#", "MEDIA TYPE", "SIZE=", "CREATED=", "CHECKPOINT=")
		for _, im := range rows {
			t.Row(im.Namespace, im.Name, im.Target.Digest, shortMedia(im.Target.MediaType), im.Target.Size, im.CreatedAt, im.Checkpoint)
		}
		v = rows
	case "snapshots":
		rows := nonNil(n.Snapshots())
		sort.SliceStable(rows, func(i, j int) bool {
			if rows[i].Namespace != rows[j].Namespace {
				return rows[i].Namespace < rows[j].Namespace
			}
			return rows[i].Key < rows[j].Key
		})
		t = render.Cols("NAMESPACE", "SNAPSHOTTER", "KEY#", "KIND", "ID", "PARENT#", "CONTAINERS=", "DIR/")
		for _, s := range rows {
			t.Row(s.Namespace, s.Snapshotter, s.Key, s.Kind, s.ID, s.Parent, len(s.Containers), s.Dir)
		}
		v = rows
	case "content":
		rows := nonNil(n.Content())
		t = render.Cols("NAMESPACE", "DIGEST#", "SIZE=", "PRESENT=", "CREATED=", "LABELS=")
		for _, c := range rows {
			t.Row(c.Namespace, c.Digest, c.Size, c.Present, c.CreatedAt, len(c.Labels))
		}
		v = rows
	case "leases":
		rows := nonNil(n.Leases())
		t = render.Cols("NAMESPACE", "ID", "CREATED=", "RESOURCES=")
		for _, l := range rows {
			t.Row(l.Namespace, l.ID, l.CreatedAt, len(l.Resources))
		}
		v = rows
	case "execs":
		rows := nonNil(n.Execs())
		t = render.Cols("RUNTIME", "CONTAINER#", "EXEC#", "STATE=", "PID=", "LIVE=", "COMMAND", "SOURCE/")
		for _, x := range rows {
			t.Row(x.Runtime, x.ContainerID, x.ID, x.State, x.Pid, x.Live, quoteArgs(x.Command), fmt.Sprintf("%s@%d", x.Source, x.Offset))
		}
		v = rows
	case "orphans":
		rows := nonNil(n.Orphans())
		t = render.Cols("RUNTIME", "MTIME=", "PATH/", "WHY")
		for _, o := range rows {
			t.Row(o.Runtime, o.Mtime, o.Path, o.Why)
		}
		v = rows
	}
	return a.show(v, t)
}

// nonNil makes an empty list print as [] in JSON.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func shortMedia(mt string) string {
	for _, p := range []string{"application/vnd.oci.image.", "application/vnd.docker.distribution.", "application/vnd.docker.container.", "application/vnd."} {
		if strings.HasPrefix(mt, p) {
			return strings.TrimPrefix(mt, p)
		}
	}
	return mt
}
