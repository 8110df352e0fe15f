package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

var lsSubjects = []string{"namespaces", "pods", "containers", "images", "snapshots", "content", "leases"}

func init() {
	register(&command{
		name:    "ls",
		args:    "namespaces|pods|containers|images|snapshots|content|leases",
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
	}
	known := false
	for _, s := range lsSubjects {
		known = known || s == subject
	}
	if !known {
		return usagef("ls: unknown subject %q; one of: %s", args[0], strings.Join(lsSubjects, ", "))
	}
	n, err := a.node()
	if err != nil {
		return err
	}
	switch subject {
	case "namespaces":
		v := nonNil(n.Namespaces())
		return a.render(v, func(w io.Writer) {
			row(w, "RUNTIME", "NAMESPACE", "CONTAINERS", "SANDBOXES", "IMAGES", "SNAPSHOTS", "CONTENT", "LEASES")
			for _, x := range v {
				row(w, x.Runtime, x.Name, x.Containers, x.Sandboxes, x.Images, x.Snapshots, x.Content, x.Leases)
			}
		})
	case "pods":
		v := nonNil(n.Pods())
		return a.render(v, func(w io.Writer) {
			row(w, "NAMESPACE", "POD", "UID", "SANDBOX", "IP", "STATE", "CREATED", "CONTAINERS")
			for _, p := range v {
				var cs []string
				for _, c := range p.Containers {
					cs = append(cs, c.Name+"("+c.State+")")
				}
				row(w, p.Namespace, p.Name, p.UID, short(p.SandboxID), p.IP, p.State, p.CreatedAt, strings.Join(cs, ","))
			}
		})
	case "containers":
		all := n.Containers()
		for i := range all {
			all[i].Spec = nil // inspect prints the spec
		}
		v := nonNil(all)
		return a.render(v, func(w io.Writer) {
			row(w, "NAMESPACE", "ID", "KIND", "POD", "NAME", "IMAGE", "STATE", "CREATED", "UPPER DIR")
			for _, c := range v {
				pod := ""
				if c.Pod != nil {
					pod = c.Pod.Namespace + "/" + c.Pod.Name
				}
				row(w, c.Namespace, short(c.ID), c.Kind, pod, c.ContainerName, c.Image, c.Status.State, c.CreatedAt, c.UpperDir)
			}
		})
	case "images":
		v := nonNil(n.Images())
		return a.render(v, func(w io.Writer) {
			row(w, "NAMESPACE", "NAME", "DIGEST", "MEDIA TYPE", "SIZE", "CREATED", "CHECKPOINT")
			for _, im := range v {
				row(w, im.Namespace, im.Name, short(im.Target.Digest), shortMedia(im.Target.MediaType), im.Target.Size, im.CreatedAt, im.Checkpoint)
			}
		})
	case "snapshots":
		v := nonNil(n.Snapshots())
		sort.SliceStable(v, func(i, j int) bool {
			if v[i].Namespace != v[j].Namespace {
				return v[i].Namespace < v[j].Namespace
			}
			return v[i].Key < v[j].Key
		})
		return a.render(v, func(w io.Writer) {
			row(w, "NAMESPACE", "SNAPSHOTTER", "KEY", "KIND", "ID", "PARENT", "CONTAINERS", "DIR")
			for _, s := range v {
				row(w, s.Namespace, s.Snapshotter, short(s.Key), s.Kind, s.ID, short(s.Parent), len(s.Containers), s.Dir)
			}
		})
	case "content":
		v := nonNil(n.Content())
		return a.render(v, func(w io.Writer) {
			row(w, "NAMESPACE", "DIGEST", "SIZE", "PRESENT", "CREATED", "LABELS")
			for _, c := range v {
				row(w, c.Namespace, short(c.Digest), c.Size, c.Present, c.CreatedAt, len(c.Labels))
			}
		})
	case "leases":
		v := nonNil(n.Leases())
		return a.render(v, func(w io.Writer) {
			row(w, "NAMESPACE", "ID", "CREATED", "RESOURCES")
			for _, l := range v {
				row(w, l.Namespace, l.ID, l.CreatedAt, len(l.Resources))
			}
		})
	}
	return fmt.Errorf("unreachable")
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
