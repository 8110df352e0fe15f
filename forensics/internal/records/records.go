// Package records holds what the runtime readers (containerd, docker,
// storage) do alike with the runtime-neutral records of forensics/model:
// making empty lists print as [] rather than null, gathering pods from
// containers, and presenting a reader as a model.Reader. It reads no
// evidence. Pods is not safe for concurrent use; the rest is.
package records

import (
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// Normalise makes the records' empty lists and maps print as [] and {}
// rather than null.
func Normalise(r *model.Records) {
	sharedUppers(r)
	for i := range r.Containers {
		c := &r.Containers[i]
		c.Warnings = model.NonNil(c.Warnings)
		c.Labels = model.NonNilMap(c.Labels)
	}
	for i := range r.Images {
		r.Images[i].Warnings = model.NonNil(r.Images[i].Warnings)
		r.Images[i].Labels = model.NonNilMap(r.Images[i].Labels)
	}
	for i := range r.Content {
		r.Content[i].Warnings = model.NonNil(r.Content[i].Warnings)
	}
	for i := range r.Snapshots {
		r.Snapshots[i].Warnings = model.NonNil(r.Snapshots[i].Warnings)
	}
}

// Pods gathers pods by a key of the reader's choosing, in the order they
// are first seen.
type Pods struct {
	byKey map[string]*model.Pod
	order []string
}

// Get returns the pod of key, made by make when there is none yet.
func (ps *Pods) Get(key string, make func() *model.Pod) *model.Pod {
	if p := ps.byKey[key]; p != nil {
		return p
	}
	if ps.byKey == nil {
		ps.byKey = map[string]*model.Pod{}
	}
	p := make()
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	if p.Containers == nil {
		p.Containers = []model.PodContainer{}
	}
	if p.Warnings == nil {
		p.Warnings = []evidence.Warning{}
	}
	ps.byKey[key] = p
	ps.order = append(ps.order, key)
	return p
}

// Each calls fn with every pod, in the order first seen.
func (ps *Pods) Each(fn func(p *model.Pod)) {
	for _, k := range ps.order {
		fn(ps.byKey[k])
	}
}

// Has says whether a pod of key was gathered.
func (ps *Pods) Has(key string) bool { return ps.byKey[key] != nil }

// Add lists a container in its pod.
func Add(p *model.Pod, c *model.Container) {
	p.Containers = append(p.Containers, model.PodContainer{ID: c.ID, Name: c.ContainerName, Image: c.Image, State: c.Status.State})
}

// List returns the pods, each one's containers sorted, in model.SortPods
// order.
func (ps *Pods) List() []model.Pod {
	out := make([]model.Pod, 0, len(ps.order))
	for _, k := range ps.order {
		p := ps.byKey[k]
		model.SortPodContainers(p.Containers)
		out = append(out, *p)
	}
	model.SortPods(out)
	return out
}

// Reader presents a runtime reader as a model.Reader.
type Reader struct {
	Runtime string   // the runtime's name
	Roots   []string // where it keeps its root by default
	Read    func(src evidence.Source, opt *model.ReaderOptions) ([]model.Runtime, error)
}

func (r Reader) Name() string        { return r.Runtime }
func (r Reader) Locations() []string { return r.Roots }
func (r Reader) Open(src evidence.Source, opt *model.ReaderOptions) ([]model.Runtime, error) {
	if opt == nil {
		opt = &model.ReaderOptions{}
	}
	return r.Read(src, opt)
}

// sharedUppers warns on each container whose writable layer (its upper
// directory) is another container's too: a runtime gives every container
// a layer of its own, so a shared one was made by hand (a record edited to
// point at another container's layer, or a forged one), and what either
// shows of the other's changes is not its own.
func sharedUppers(r *model.Records) {
	by := map[string][]int{}
	for i, c := range r.Containers {
		if c.UpperDir != "" {
			by[c.UpperDir] = append(by[c.UpperDir], i)
		}
	}
	for dir, idx := range by {
		if len(idx) < 2 {
			continue
		}
		for _, i := range idx {
			var others []string
			for _, j := range idx {
				if j != i && len(others) < 8 {
					others = append(others, r.Containers[j].ID)
				}
			}
			c := &r.Containers[i]
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "its writable layer %s is also that of container %s: runtimes give each container its own", dir, strings.Join(others, ", ")))
		}
	}
}
