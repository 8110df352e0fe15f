package forensics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/diskimage"
	"github.com/deadnode/deadnode/forensics/containerd"
	"github.com/deadnode/deadnode/forensics/docker"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/forensics/storage"
	"github.com/deadnode/deadnode/internal/ptr"
)

// LooksLikeNode reports whether src looks like a node's filesystem (a
// root with etc/ and var/lib/ or usr/), for telling a user who gave a
// checkpoint or another archive where a node was expected.
func LooksLikeNode(src evidence.Source) bool {
	isDir := func(p string) bool {
		st, err := src.Lstat(p)
		return err == nil && st.Mode.IsDir()
	}
	return isDir("etc") && (isDir("var/lib") || isDir("usr"))
}

// readers are the runtime readers, in the order their records are listed.
// Adding a runtime is one package implementing model.Reader and one line
// here.
var readers = []model.Reader{
	containerd.Reader,
	docker.Reader,
	storage.Reader,
}

// RuntimeNames are the names of the runtimes deadnode reads, for
// Options.Roots.
func RuntimeNames() []string {
	out := make([]string, len(readers))
	for i, r := range readers {
		out[i] = r.Name()
	}
	return out
}

// Options tune Open and OpenPath.
type Options struct {
	// Roots overrides the detection of a runtime's root: a path inside the
	// evidence, by runtime name ("containerd", "docker",
	// "containers-storage"; see RuntimeNames).
	Roots map[string]string
	// Namespaces keeps only these runtime namespaces (all when empty).
	Namespaces []string
	// Evidence tunes how OpenPath opens the evidence (the cache of
	// decompressed collections, temp space, progress); nil for defaults.
	Evidence *evidence.OpenOptions
	// AllowNoRuntime opens evidence that holds no container runtime (a
	// host whose kubelet checkpoints, logs or persistence are the
	// question) instead of failing with ErrNoRuntime.
	AllowNoRuntime bool
	// Disk tunes how OpenPath reads a disk image (the root volume, no
	// assembly); nil picks the root and assembles it.
	Disk *diskimage.Options
}

// Node is the evidence of one node and what its runtimes recorded. A Node
// is read once by Open; reading it afterwards is safe from several
// goroutines.
type Node struct {
	Src evidence.Source
	// Evidence is the opened evidence (its kind, size, cache and hash)
	// when the node was opened by OpenPath; nil after Open.
	Evidence *evidence.Evidence
	// Runtimes are the stores read, in the order of the readers
	// (containerd, Docker, containers-storage roots).
	Runtimes []model.Runtime
	// Notes say how the evidence was read (a prefix stripped, a root
	// found elsewhere than expected).
	Notes []string

	closers []func() error

	kubeMu sync.Mutex
	kube   kubeletCache
	host   hostMemo // the host's reports, read once (hostanalyzer.go)
}

// ErrNoRuntime is returned when the evidence holds no runtime we read.
var ErrNoRuntime = errors.New("no container runtime found in the evidence")

// OpenPath opens the evidence at root through evidence.Open — a
// directory (a mounted image), a .tar, .tar.gz or .tar.zst collection, or
// a disk image, told apart by content; a collection holding a single
// top-level directory is read from inside it — and reads every runtime
// found in it. Opening a compressed collection decompresses and indexes
// it (or reuses the cache of an earlier command); it stops when ctx is
// cancelled. When it fails after the evidence was opened, the error is an
// *OpenError carrying what was noted while opening (a damaged archive's
// warning, say), so that a caller can say it before the error.
func OpenPath(ctx context.Context, root string, opt *Options) (*Node, error) {
	eo := &evidence.OpenOptions{}
	if opt != nil {
		if opt.Evidence != nil {
			*eo = *opt.Evidence
		}
		if opt.Disk != nil {
			eo.Disk = opt.Disk
		}
	}
	ev, err := evidence.Open(ctx, root, eo)
	if err != nil {
		return nil, err
	}
	notes := evidence.WarningLines(ev.Notes)
	n, err := Open(ev.Source, opt)
	if err != nil {
		ev.Close()
		return nil, &OpenError{Notes: notes, Err: err}
	}
	n.Evidence = ev
	n.Notes = append(notes, n.Notes...)
	n.closers = append(n.closers, ev.Close)
	return n, nil
}

// OpenError is OpenPath's error once the evidence itself was opened: the
// notes made while opening it come with the error.
type OpenError struct {
	Notes []string
	Err   error
}

func (e *OpenError) Error() string { return e.Err.Error() }
func (e *OpenError) Unwrap() error { return e.Err }

// Open reads the runtimes of an already opened evidence source.
func Open(src evidence.Source, opt *Options) (*Node, error) {
	o := ptr.Value(opt)
	n := &Node{Src: src}
	for _, r := range readers {
		root := o.Roots[r.Name()]
		rts, err := r.Open(src, &model.ReaderOptions{Root: root, Namespaces: o.Namespaces})
		for _, rt := range rts {
			n.Notes = append(n.Notes, rt.Info().Notes...)
		}
		n.Runtimes = append(n.Runtimes, rts...)
		if err != nil && (root != "" || !errors.Is(err, model.ErrRuntimeNotFound)) {
			return nil, fmt.Errorf("%s: %w", r.Name(), err)
		}
	}
	if len(n.Runtimes) == 0 {
		// A runtime root the examiner may not read is not an absent one.
		for _, r := range readers {
			for _, loc := range r.Locations() {
				if err := unreadable(src, loc); err != nil {
					return nil, fmt.Errorf("%s: %w", r.Name(), err)
				}
			}
		}
		if !o.AllowNoRuntime {
			return nil, ErrNoRuntime
		}
	}
	n.foldDockerTasks()
	if len(o.Namespaces) > 0 {
		n.keepNamespaces(o.Namespaces)
	}
	return n, nil
}

// keepNamespaces applies Options.Namespaces to every runtime's records
// (containerd's reader filters its own as it reads).
func (n *Node) keepNamespaces(only []string) {
	keep := map[string]bool{}
	for _, ns := range only {
		keep[ns] = true
	}
	for _, rt := range n.Runtimes {
		r := rt.Recorded()
		r.Containers = keepIf(r.Containers, func(c model.Container) bool { return keep[c.Namespace] })
		r.Pods = keepIf(r.Pods, func(p model.Pod) bool { return keep[p.RuntimeNS] })
		r.Images = keepIf(r.Images, func(i model.Image) bool { return keep[i.Namespace] })
		r.Snapshots = keepIf(r.Snapshots, func(x model.Snapshot) bool { return keep[x.Namespace] })
		r.Namespaces = keepIf(r.Namespaces, func(x model.Namespace) bool { return keep[x.Name] })
		r.Content = keepIf(r.Content, func(x model.Content) bool { return keep[x.Namespace] })
		r.Leases = keepIf(r.Leases, func(x model.Lease) bool { return keep[x.Namespace] })
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
	var ctd *containerd.Store
	var dkr *docker.Store
	for _, rt := range n.Runtimes {
		switch s := rt.(type) {
		case *containerd.Store:
			if ctd == nil {
				ctd = s
			}
		case *docker.Store:
			if dkr == nil {
				dkr = s
			}
		}
	}
	if ctd == nil {
		return
	}
	if dkr == nil {
		// Docker 23+ with the containerd image store keeps its containers
		// in containerd's "moby" namespace: they are Docker's.
		k := 0
		for i := range ctd.Containers {
			if c := &ctd.Containers[i]; c.Namespace == docker.Namespace {
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
	for i := range dkr.Containers {
		byID[dkr.Containers[i].ID] = &dkr.Containers[i]
	}
	kept := ctd.Containers[:0]
	dropped := 0
	for _, c := range ctd.Containers {
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
	ctd.Containers = kept
	for i := range ctd.Namespaces {
		if ctd.Namespaces[i].Name == docker.Namespace {
			ctd.Namespaces[i].Containers -= dropped
		}
	}
	if dropped > 0 {
		what := fmt.Sprintf("%d containerd records in namespace %s are the tasks of Docker containers", dropped, docker.Namespace)
		if dropped == 1 {
			what = "1 containerd record in namespace " + docker.Namespace + " is the task of a Docker container"
		}
		n.Notes = append(n.Notes, what+"; each is listed once, as a Docker container")
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
func (n *Node) Warnings() []evidence.Warning {
	var w []evidence.Warning
	for _, rt := range n.Runtimes {
		w = append(w, rt.Info().Warnings...)
	}
	return w
}

// gather concatenates one kind of record over every runtime.
func gather[T any](n *Node, of func(*model.Records) []T) []T {
	var out []T
	for _, rt := range n.Runtimes {
		out = append(out, of(rt.Recorded())...)
	}
	return out
}

// Containers returns every container and sandbox, sorted by namespace, kind
// (sandboxes last) and id.
func (n *Node) Containers() []model.Container {
	out := gather(n, func(r *model.Records) []model.Container { return r.Containers })
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
	return gather(n, func(r *model.Records) []model.Pod { return r.Pods })
}

// Images returns the image records.
func (n *Node) Images() []model.Image {
	return gather(n, func(r *model.Records) []model.Image { return r.Images })
}

// Snapshots returns the snapshots.
func (n *Node) Snapshots() []model.Snapshot {
	return gather(n, func(r *model.Records) []model.Snapshot { return r.Snapshots })
}

// Content returns the content blobs.
func (n *Node) Content() []model.Content {
	return gather(n, func(r *model.Records) []model.Content { return r.Content })
}

// Leases returns the leases.
func (n *Node) Leases() []model.Lease {
	return gather(n, func(r *model.Records) []model.Lease { return r.Leases })
}

// Namespaces returns the runtime namespaces.
func (n *Node) Namespaces() []model.Namespace {
	return gather(n, func(r *model.Records) []model.Namespace { return r.Namespaces })
}

// Execs returns the exec sessions the runtimes recorded (podman exec),
// live ones and deleted ones carved from free pages.
func (n *Node) Execs() []model.Exec {
	return gather(n, func(r *model.Records) []model.Exec { return r.Execs })
}

// Orphans returns what removals left behind in the runtimes' stores.
func (n *Node) Orphans() []model.Orphan {
	return gather(n, func(r *model.Records) []model.Orphan { return r.Orphans })
}

// Inspect finds a container (see FindContainer) with everything the node
// knows of it joined in: its exec sessions.
func (n *Node) Inspect(ref string) (*model.Container, error) {
	c, err := n.FindContainer(ref)
	if err != nil {
		return nil, err
	}
	for _, x := range n.Execs() {
		if x.ContainerID == c.ID {
			c.Execs = append(c.Execs, x)
		}
	}
	return c, nil
}

// ErrAmbiguous is matched (errors.Is) by an *AmbiguousError: a reference
// that names several things.
var ErrAmbiguous = errors.New("ambiguous reference")

// FindContainer finds a container by full id, unique id prefix,
// "podnamespace/podname/containername", "podname/containername", or its
// bare (Kubernetes or runtime) name when only one container has it. A
// reference that names several containers gives an *AmbiguousError listing
// them; one that names none a *NotFoundError (errors.Is fs.ErrNotExist).
func (n *Node) FindContainer(ref string) (*model.Container, error) {
	all := n.Containers()
	pick := func(ok func(c *model.Container) bool) []int {
		var hits []int
		for i := range all {
			if ok(&all[i]) {
				hits = append(hits, i)
			}
		}
		return hits
	}
	if ref == "" {
		return nil, &NotFoundError{What: "container", Ref: ref}
	}
	for i := range all {
		if all[i].ID == ref {
			return &all[i], nil
		}
	}
	tries := []func(c *model.Container) bool{
		func(c *model.Container) bool { return strings.HasPrefix(c.ID, ref) },
	}
	switch parts := strings.Split(ref, "/"); len(parts) {
	case 3:
		tries = append(tries, func(c *model.Container) bool {
			return c.Pod != nil && c.Kind == model.KindContainer && c.Pod.Namespace == parts[0] && c.Pod.Name == parts[1] && c.ContainerName == parts[2]
		})
	case 2:
		tries = append(tries, func(c *model.Container) bool {
			return c.Pod != nil && c.Kind == model.KindContainer && c.Pod.Name == parts[0] && c.ContainerName == parts[1]
		})
	case 1:
		tries = append(tries, func(c *model.Container) bool {
			return c.Kind == model.KindContainer && c.ContainerName == ref
		})
	}
	// The first way of reading ref that names anything decides: the
	// name forms, then an id prefix.
	for k := len(tries) - 1; k >= 0; k-- {
		hits := pick(tries[k])
		switch len(hits) {
		case 0:
			continue
		case 1:
			return &all[hits[0]], nil
		}
		var names []string
		for _, h := range hits {
			c := all[h]
			name := c.Namespace + "/" + c.ID
			if c.Pod != nil {
				name += " (" + c.Pod.Namespace + "/" + c.Pod.Name + "/" + c.ContainerName + ")"
			}
			names = append(names, name)
		}
		return nil, &AmbiguousError{What: "container", Ref: ref, Candidates: names}
	}
	return nil, &NotFoundError{What: "container", Ref: ref, Hint: "see deadnode ls containers"}
}

// unreadable returns a permission error naming the first component of loc
// (a path inside the evidence) that exists but may not be read, nil when
// loc is readable or absent.
func unreadable(src evidence.Source, loc string) error {
	cur := "."
	for _, c := range strings.Split(strings.Trim(loc, "/"), "/") {
		if _, err := src.ReadDir(cur); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return &fs.PathError{Op: "read directory", Path: "/" + strings.TrimPrefix(cur, "./"), Err: fs.ErrPermission}
			}
			return nil
		}
		next := evidence.Join(cur, c)
		st, err := src.Lstat(next)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return &fs.PathError{Op: "lstat", Path: "/" + next, Err: fs.ErrPermission}
			}
			return nil
		}
		if !st.Mode.IsDir() {
			return nil
		}
		cur = next
	}
	if _, err := src.ReadDir(cur); err != nil && errors.Is(err, fs.ErrPermission) {
		return &fs.PathError{Op: "read directory", Path: "/" + cur, Err: fs.ErrPermission}
	}
	return nil
}

// CleanupTemp removes the private temp copies deadnode keeps while it
// reads (databases that must be opened by name). Deferred removals do not
// run when a signal ends the process: a CLI calls this from its signal
// handler. Safe at any time, from any goroutine, more than once.
func CleanupTemp() { boltdb.CleanupTemp() }
