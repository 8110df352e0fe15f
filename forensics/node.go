package forensics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/containerd"
	"github.com/deadnode/deadnode/forensics/docker"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/forensics/storage"
)

// Options tune Open.
type Options struct {
	// ContainerdRoot overrides detection of containerd's root (a path inside
	// the evidence).
	ContainerdRoot string
	// Namespaces keeps only these runtime namespaces (all when empty).
	Namespaces []string
	// DockerRoot overrides detection of Docker's data root.
	DockerRoot string
	// StorageRoot overrides detection of containers-storage graph roots
	// (Podman, CRI-O).
	StorageRoot string
}

// Node is the evidence of one node and what was found in it.
type Node struct {
	Src        evidence.Source
	Containerd *containerd.Store
	Docker     *docker.Store
	Storage    []*storage.Store
	// Notes say how the evidence was read (a prefix stripped, a root
	// found elsewhere than expected).
	Notes []string

	closers []func() error
}

// ErrNoRuntime is returned when the evidence holds no runtime we read.
var ErrNoRuntime = errors.New("no container runtime found in the evidence")

// OpenSource opens evidence from a host path through evidence.Open: a
// directory (a mounted image) or a .tar, .tar.gz or .tar.zst collection,
// told apart by content. An archive (or directory) that holds a single
// top-level directory and no filesystem root of its own is read from
// inside that directory. Closing the source closes the evidence.
func OpenSource(root string) (evidence.Source, []string, error) {
	ev, err := evidence.Open(context.TODO(), root, nil)
	if err != nil {
		return nil, nil, err
	}
	return ev.Source, evidence.WarningLines(ev.Notes), nil
}

// Open opens the evidence at root (see OpenSource) and reads every runtime
// found in it.
func Open(root string, opt Options) (*Node, error) {
	src, notes, err := OpenSource(root)
	if err != nil {
		return nil, err
	}
	n, err := OpenNode(src, opt)
	if err != nil {
		src.Close()
		return nil, err
	}
	n.Notes = append(notes, n.Notes...)
	n.closers = append(n.closers, src.Close)
	return n, nil
}

// OpenNode reads the runtimes of an already opened evidence source.
func OpenNode(src evidence.Source, opt Options) (*Node, error) {
	n := &Node{Src: src}
	cs, err := containerd.Open(src, containerd.Options{Root: opt.ContainerdRoot, Namespaces: opt.Namespaces})
	switch {
	case err == nil:
		n.Containerd = cs
		n.Notes = append(n.Notes, cs.Notes...)
	case errors.Is(err, containerd.ErrNotFound) && opt.ContainerdRoot == "":
	default:
		return nil, fmt.Errorf("containerd: %w", err)
	}
	ds, err := docker.Open(src, docker.Options{Root: opt.DockerRoot})
	switch {
	case err == nil:
		n.Docker = ds
		n.Notes = append(n.Notes, ds.Notes...)
	case errors.Is(err, docker.ErrNotFound) && opt.DockerRoot == "":
	default:
		return nil, fmt.Errorf("docker: %w", err)
	}
	ss, err := storage.OpenAll(src, storage.Options{GraphRoot: opt.StorageRoot})
	for _, s := range ss {
		n.Notes = append(n.Notes, s.Notes...)
	}
	n.Storage = ss
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrNotFound) && opt.StorageRoot == "":
	default:
		return nil, fmt.Errorf("containers-storage: %w", err)
	}
	if n.Containerd == nil && n.Docker == nil && len(n.Storage) == 0 {
		return nil, ErrNoRuntime
	}
	n.foldDockerTasks()
	if len(opt.Namespaces) > 0 {
		n.keepNamespaces(opt.Namespaces)
	}
	return n, nil
}

// keepNamespaces applies Options.Namespaces to the Docker and
// containers-storage records (containerd's reader filters its own).
func (n *Node) keepNamespaces(only []string) {
	keep := map[string]bool{}
	for _, ns := range only {
		keep[ns] = true
	}
	filter := func(d *docker.Store, s *storage.Store) {
		var cs *[]model.Container
		var ps *[]model.Pod
		var is *[]model.Image
		var ss *[]model.Snapshot
		var ns *[]model.Namespace
		if d != nil {
			cs, ps, is, ss, ns = &d.Containers, &d.Pods, &d.Images, &d.Snapshots, &d.Namespaces
		} else {
			cs, ps, is, ss, ns = &s.Containers, &s.Pods, &s.Images, &s.Snapshots, &s.Namespaces
		}
		*cs = keepIf(*cs, func(c model.Container) bool { return keep[c.Namespace] })
		*ps = keepIf(*ps, func(p model.Pod) bool { return keep[p.RuntimeNS] })
		*is = keepIf(*is, func(i model.Image) bool { return keep[i.Namespace] })
		*ss = keepIf(*ss, func(x model.Snapshot) bool { return keep[x.Namespace] })
		*ns = keepIf(*ns, func(x model.Namespace) bool { return keep[x.Name] })
	}
	if n.Docker != nil {
		filter(n.Docker, nil)
	}
	for _, s := range n.Storage {
		filter(nil, s)
	}
}

func keepIf[T any](in []T, ok func(T) bool) []T {
	out := in[:0]
	for _, x := range in {
		if ok(x) {
			out = append(out, x)
		}
	}
	return out
}

// foldDockerTasks drops the containerd records of Docker's own containers:
// dockerd runs each container as a task of containerd (its managed one
// under /var/lib/docker/containerd/daemon, or the system's) in namespace
// "moby", whose record knows little more than the id. A recorded OCI spec
// (the one runc was given) replaces the view Docker's files give.
func (n *Node) foldDockerTasks() {
	if n.Containerd == nil {
		return
	}
	if n.Docker == nil {
		// Docker 23+ with the containerd image store keeps its containers
		// in containerd's "moby" namespace: they are Docker's.
		k := 0
		for i := range n.Containerd.Containers {
			if c := &n.Containerd.Containers[i]; c.Namespace == docker.Namespace {
				c.Runtime = model.RuntimeDocker
				k++
			}
		}
		if k > 0 {
			n.Notes = append(n.Notes, fmt.Sprintf("%d containers in containerd's %s namespace are Docker's (containerd image store); Docker's own files were not found", k, docker.Namespace))
		}
		return
	}
	byID := map[string]*model.Container{}
	for i := range n.Docker.Containers {
		byID[n.Docker.Containers[i].ID] = &n.Docker.Containers[i]
	}
	kept := n.Containerd.Containers[:0]
	dropped := 0
	for _, c := range n.Containerd.Containers {
		d := byID[c.ID]
		if c.Namespace != docker.Namespace || d == nil {
			kept = append(kept, c)
			continue
		}
		if c.Spec != nil {
			c.Spec.Privileged = c.Spec.Privileged || (d.Spec != nil && d.Spec.Privileged)
			d.Spec = c.Spec
		}
		if d.UpperDir == "" && c.UpperDir != "" {
			// Docker 23+ with the containerd snapshotter: the layers are
			// containerd snapshots, not overlay2 dirs.
			d.Snapshotter, d.SnapshotKey, d.UpperDir, d.LowerDirs = c.Snapshotter, c.SnapshotKey, c.UpperDir, c.LowerDirs
		}
		dropped++
	}
	n.Containerd.Containers = kept
	for i := range n.Containerd.Namespaces {
		if n.Containerd.Namespaces[i].Name == docker.Namespace {
			n.Containerd.Namespaces[i].Containers -= dropped
		}
	}
	if dropped > 0 {
		n.Notes = append(n.Notes, fmt.Sprintf("%d containerd records in namespace %s are the tasks of Docker containers; each is listed once, as a Docker container", dropped, docker.Namespace))
	}
}

// Close releases the evidence.
func (n *Node) Close() error {
	var err error
	for _, c := range n.closers {
		if e := c(); err == nil {
			err = e
		}
	}
	return err
}

// Warnings are the per-record problems of every runtime read.
func (n *Node) Warnings() []string {
	var w []string
	if n.Containerd != nil {
		w = append(w, n.Containerd.Warnings...)
	}
	if n.Docker != nil {
		w = append(w, n.Docker.Warnings...)
	}
	for _, s := range n.Storage {
		w = append(w, s.Warnings...)
	}
	return w
}

// Containers returns every container and sandbox, sorted by namespace, kind
// (sandboxes last) and id.
func (n *Node) Containers() []model.Container {
	var out []model.Container
	if n.Containerd != nil {
		out = append(out, n.Containerd.Containers...)
	}
	if n.Docker != nil {
		out = append(out, n.Docker.Containers...)
	}
	for _, s := range n.Storage {
		out = append(out, s.Containers...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind == model.KindContainer
		}
		return a.ID < b.ID
	})
	return out
}

// Pods returns the pods.
func (n *Node) Pods() []model.Pod {
	var out []model.Pod
	if n.Containerd != nil {
		out = append(out, n.Containerd.Pods...)
	}
	if n.Docker != nil {
		out = append(out, n.Docker.Pods...)
	}
	for _, s := range n.Storage {
		out = append(out, s.Pods...)
	}
	return out
}

// Images returns the image records.
func (n *Node) Images() []model.Image {
	var out []model.Image
	if n.Containerd != nil {
		out = append(out, n.Containerd.Images...)
	}
	if n.Docker != nil {
		out = append(out, n.Docker.Images...)
	}
	for _, s := range n.Storage {
		out = append(out, s.Images...)
	}
	return out
}

// Snapshots returns the snapshots.
func (n *Node) Snapshots() []model.Snapshot {
	var out []model.Snapshot
	if n.Containerd != nil {
		out = append(out, n.Containerd.Snapshots...)
	}
	if n.Docker != nil {
		out = append(out, n.Docker.Snapshots...)
	}
	for _, s := range n.Storage {
		out = append(out, s.Snapshots...)
	}
	return out
}

// Content returns the content blobs.
func (n *Node) Content() []model.Content {
	if n.Containerd == nil {
		return nil
	}
	return n.Containerd.Content
}

// Leases returns the leases.
func (n *Node) Leases() []model.Lease {
	if n.Containerd == nil {
		return nil
	}
	return n.Containerd.Leases
}

// Namespaces returns the runtime namespaces.
func (n *Node) Namespaces() []model.Namespace {
	var out []model.Namespace
	if n.Containerd != nil {
		out = append(out, n.Containerd.Namespaces...)
	}
	if n.Docker != nil {
		out = append(out, n.Docker.Namespaces...)
	}
	for _, s := range n.Storage {
		out = append(out, s.Namespaces...)
	}
	return out
}

// ErrAmbiguous is returned by FindContainer when a prefix names several.
var ErrAmbiguous = errors.New("ambiguous container reference")

// FindContainer finds a container by full id, unique id prefix, or
// "podnamespace/podname/containername".
func (n *Node) FindContainer(ref string) (*model.Container, error) {
	all := n.Containers()
	var hits []int
	if parts := strings.Split(ref, "/"); len(parts) == 3 {
		for i, c := range all {
			if c.Pod != nil && c.Kind == model.KindContainer && c.Pod.Namespace == parts[0] && c.Pod.Name == parts[1] && c.ContainerName == parts[2] {
				hits = append(hits, i)
			}
		}
		if len(hits) == 1 {
			return &all[hits[0]], nil
		}
	}
	hits = hits[:0]
	for i, c := range all {
		if c.ID == ref {
			return &all[i], nil
		}
		if ref != "" && strings.HasPrefix(c.ID, ref) {
			hits = append(hits, i)
		}
	}
	switch len(hits) {
	case 0:
		return nil, fmt.Errorf("container %q: %w", ref, fs.ErrNotExist)
	case 1:
		return &all[hits[0]], nil
	}
	var ids []string
	for _, h := range hits {
		ids = append(ids, all[h].Namespace+"/"+all[h].ID)
	}
	return nil, fmt.Errorf("%w: %q matches %s", ErrAmbiguous, ref, strings.Join(ids, ", "))
}
