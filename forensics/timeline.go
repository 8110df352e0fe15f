package forensics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"strings"
	"time"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Event is one timestamped fact of the node.
type Event struct {
	Time         model.Time `json:"time"`
	Source       string     `json:"source"` // container, sandbox, image, snapshot, content, lease, exec, orphan, cri_status, file, log, checkpoint, kubelet, static_pod, kube_pod, sa_token
	What         string     `json:"what"`   // created, updated, started, finished, terminated, atime, mtime, ctime, btime, log_line, checkpointed, iat, nbf, exp
	Message      string     `json:"message"`
	Runtime      string     `json:"runtime,omitempty"`
	Namespace    string     `json:"namespace,omitempty"`
	ContainerID  string     `json:"container_id,omitempty"`
	Pod          string     `json:"pod,omitempty"`
	Path         string     `json:"path,omitempty"`
	PathBytes    string     `json:"path_bytes,omitempty"` // the path's exact bytes (base64) when it is not valid UTF-8
	EvidencePath string     `json:"evidence_path,omitempty"`
	Change       string     `json:"change,omitempty"` // drift class of a file event
	// File is set for file events: the drifted file's whole entry.
	File *DriftEntry `json:"-"`
	// FirstOfFile marks the earliest of a file's events (a bodyfile prints
	// one line per file, there).
	FirstOfFile bool `json:"-"`
}

// TimelineOptions tune Timeline.
type TimelineOptions struct {
	Hash bool // hash drifted files (bodyfile MD5 stays 0: we compute sha256, given in the JSON)
	// MaxInMemory is how many events are sorted in memory before sorted
	// runs go to a temp file and are merged (default 200,000): memory
	// does not grow with the number of events.
	MaxInMemory int
	// TempDir is where runs are spilled ("" for the system's).
	TempDir string
	// Drift gives the containers' drift already computed (by container
	// id), so that a caller that has it (triage) does not walk the layers
	// twice; containers not in it are walked.
	Drift map[string][]DriftEntry
}

// eventSource emits the events of one kind of record. Adding a source of
// events (the kubelet, host persistence, logs) is one function and one
// line in timelineSources.
type eventSource func(ctx context.Context, n *Node, opt *TimelineOptions, e *emitter) error

var timelineSources = []eventSource{
	containerEvents,
	recordEvents,
	fileEvents,
	logEvents,
	checkpointEvents,
	kubeletEvents,
	staticPodEvents,
	kubePodEvents,
	hostEvents,
}

// emitter collects events and warnings for Timeline.
type emitter struct {
	sorter *eventSorter
	warns  []evidence.Warning
	err    error
}

func (e *emitter) add(t time.Time, ev Event) {
	if t.IsZero() || e.err != nil {
		return
	}
	ev.Time = model.T(t.UTC())
	e.err = e.sorter.add(ev)
}

func (e *emitter) warn(err error) {
	if len(e.warns) < maxTimelineWarnings {
		w, ok := err.(evidence.Warning) // a source's own warning keeps its file and offset
		if !ok {
			w = evidence.WarningOf(err)
		}
		e.warns = append(e.warns, w)
	}
}

const maxTimelineWarnings = 10000

// Timeline yields every timestamp the node's evidence holds — runtime
// records, CRI status, the file times of every container's drift (its
// writable volumes included), every container log line, checkpoints, the
// kubelet's files, static pod manifests, pod directories and
// service-account tokens, and the host's persistence entries and package
// drift above info — sorted by time (events of one time in
// the order they were found). Problems with single records are yielded
// first, as evidence.Warning errors; another error ends the timeline. The
// events are sorted in memory up to MaxInMemory and merged from sorted runs
// in a private temp file beyond, so memory stays flat in their number.
func (n *Node) Timeline(ctx context.Context, opt *TimelineOptions) iter.Seq2[Event, error] {
	o := ptr.Value(opt)
	if o.MaxInMemory <= 0 {
		o.MaxInMemory = 200000
	}
	return func(yield func(Event, error) bool) {
		em := &emitter{sorter: newEventSorter(o.MaxInMemory, o.TempDir)}
		defer em.sorter.close()
		for _, src := range timelineSources {
			if err := ctx.Err(); err != nil {
				yield(Event{}, err)
				return
			}
			if err := src(ctx, n, &o, em); err != nil {
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					yield(Event{}, err)
					return
				}
				em.warn(err)
			}
			if em.err != nil {
				yield(Event{}, em.err)
				return
			}
		}
		for _, w := range em.warns {
			if !yield(Event{}, w) {
				return
			}
		}
		for ev, err := range em.sorter.sorted() {
			if err == nil {
				err = ctx.Err()
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// TimelineAll collects Timeline's events and warnings.
func (n *Node) TimelineAll(ctx context.Context, opt *TimelineOptions) ([]Event, []evidence.Warning, error) {
	return collectStream(n.Timeline(ctx, opt))
}

func podOf(c model.Container) string {
	if c.Pod == nil {
		return ""
	}
	return c.Pod.Namespace + "/" + c.Pod.Name
}

// containerEvents: creation, update, start and finish of every container.
func containerEvents(ctx context.Context, n *Node, _ *TimelineOptions, em *emitter) error {
	for _, c := range n.Containers() {
		base := Event{Source: c.Kind, Runtime: c.Runtime, Namespace: c.Namespace, ContainerID: c.ID, Pod: podOf(c)}
		label := fmt.Sprintf("%s %s (%s, image %s)", c.Kind, c.ID, nameOf(c), c.Image)
		e := base
		e.What, e.Message = "created", label+" created"
		em.add(c.CreatedAt.Time, e)
		if !c.UpdatedAt.Equal(c.CreatedAt.Time) {
			e.What, e.Message = "updated", label+" updated"
			em.add(c.UpdatedAt.Time, e)
		}
		e = base
		e.Source = "cri_status"
		e.What, e.Message = "started", label+" started"
		em.add(c.Status.StartedAt.Time, e)
		if c.Status.ExitCode != nil {
			e.What, e.Message = "finished", fmt.Sprintf("%s finished, exit code %d", label, *c.Status.ExitCode)
		} else {
			e.What, e.Message = "finished", label+" finished"
		}
		em.add(c.Status.FinishedAt.Time, e)
	}
	return nil
}

// recordEvents: images, snapshots, content, leases, exec sessions and
// orphans of the runtimes.
func recordEvents(ctx context.Context, n *Node, _ *TimelineOptions, em *emitter) error {
	for _, im := range n.Images() {
		e := Event{Source: "image", Runtime: im.Runtime, Namespace: im.Namespace}
		kind := "image"
		if im.Checkpoint {
			kind, e.Source = "checkpoint image", "checkpoint"
		}
		e.What, e.Message = "created", fmt.Sprintf("%s %s (%s) created", kind, im.Name, im.Target.Digest)
		if im.Checkpoint {
			e.What = "checkpointed"
		}
		em.add(im.CreatedAt.Time, e)
		if !im.UpdatedAt.Equal(im.CreatedAt.Time) {
			e.What, e.Message = "updated", fmt.Sprintf("%s %s updated", kind, im.Name)
			em.add(im.UpdatedAt.Time, e)
		}
	}
	for _, s := range n.Snapshots() {
		e := Event{Source: "snapshot", Runtime: s.Runtime, Namespace: s.Namespace, EvidencePath: s.Dir}
		e.What, e.Message = "created", fmt.Sprintf("%s snapshot %s (%s, dir %s) created", s.Kind, s.Key, s.Snapshotter, s.Dir)
		em.add(s.CreatedAt.Time, e)
		if !s.UpdatedAt.Equal(s.CreatedAt.Time) {
			e.What, e.Message = "updated", fmt.Sprintf("%s snapshot %s updated", s.Kind, s.Key)
			em.add(s.UpdatedAt.Time, e)
		}
	}
	for _, c := range n.Content() {
		e := Event{Source: "content", Runtime: c.Runtime, Namespace: c.Namespace, EvidencePath: c.BlobPath}
		e.What, e.Message = "created", fmt.Sprintf("content %s (%d bytes) created", c.Digest, c.Size)
		em.add(c.CreatedAt.Time, e)
		if !c.UpdatedAt.Equal(c.CreatedAt.Time) {
			e.What, e.Message = "updated", fmt.Sprintf("content %s updated", c.Digest)
			em.add(c.UpdatedAt.Time, e)
		}
	}
	for _, l := range n.Leases() {
		em.add(l.CreatedAt.Time, Event{Source: "lease", What: "created", Runtime: l.Runtime, Namespace: l.Namespace, Message: fmt.Sprintf("lease %s created (%d resources)", l.ID, len(l.Resources))})
	}
	for _, x := range n.Execs() {
		state := "exec session"
		if !x.Live {
			state = "deleted exec session (carved)"
		}
		em.add(x.Time.Time, Event{Source: "exec", What: "updated", Runtime: x.Runtime, ContainerID: x.ContainerID, EvidencePath: x.Source,
			Message: fmt.Sprintf("%s %s in %s: %s", state, shortID(x.ID), shortID(x.ContainerID), strings.Join(x.Command, " "))})
	}
	for _, o := range n.Orphans() {
		em.add(o.Mtime.Time, Event{Source: "orphan", What: "mtime", Runtime: o.Runtime, EvidencePath: o.Path, Path: o.Path,
			Message: fmt.Sprintf("orphan %s: %s", o.Path, o.Why)})
	}
	return nil
}

// fileEvents: the file times of every container's drift.
func fileEvents(ctx context.Context, n *Node, opt *TimelineOptions, em *emitter) error {
	for _, c := range n.Containers() {
		if c.UpperDir == "" {
			continue
		}
		var entries iter.Seq2[DriftEntry, error]
		if done, ok := opt.Drift[c.ID]; ok {
			entries = func(yield func(DriftEntry, error) bool) {
				for _, e := range done {
					if !yield(e, nil) {
						return
					}
				}
			}
		} else {
			ds, err := n.ContainerDrift(&c)
			if err != nil {
				em.warn(err)
				continue
			}
			entries = Drift(ctx, ds, &DriftOptions{NoHash: !opt.Hash})
		}
		for f, err := range entries {
			if err != nil {
				var w evidence.Warning
				if errors.As(err, &w) {
					em.warn(w)
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				em.warn(err)
				break
			}
			if f.Type == "whiteout" && f.Mtime.IsZero() {
				continue
			}
			base := Event{Source: "file", Runtime: c.Runtime, Namespace: c.Namespace, ContainerID: c.ID, Pod: podOf(c), Path: f.Path, PathBytes: f.PathBytes, EvidencePath: f.EvidencePath, Change: f.Change}
			times := []struct {
				what string
				t    model.Time
			}{{"mtime", f.Mtime}, {"atime", f.Atime}, {"ctime", f.Ctime}, {"btime", f.Btime}}
			// The earliest of the file's events carries the whole entry: a
			// bodyfile prints one line per file, at its first event.
			first := -1
			for i, tt := range times {
				if !tt.t.IsZero() && (first < 0 || tt.t.Before(times[first].t.Time)) {
					first = i
				}
			}
			ff := f
			for i, tt := range times {
				e := base
				e.What = tt.what
				e.Message = fmt.Sprintf("%s %s %s (%s %s) in %s", tt.what, f.Change, f.Path, f.Type, strings.Join(f.Flags, ","), shortID(c.ID))
				e.File, e.FirstOfFile = &ff, i == first
				em.add(tt.t.Time, e)
			}
		}
	}
	return nil
}

func nameOf(c model.Container) string {
	if c.Pod != nil {
		return c.Pod.Namespace + "/" + c.Pod.Name + "/" + c.ContainerName
	}
	if c.ContainerName != "" {
		return c.ContainerName
	}
	return c.Namespace
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// logEvents: every line of every container log (kube.LogEvents: the CRI
// files with their rotations, Docker's and Podman's), one event each,
// joined to the runtimes' containers. Streamed into the sorter, which
// spills to disk: memory does not grow with the logs.
func logEvents(ctx context.Context, n *Node, _ *TimelineOptions, em *emitter) error {
	ctrs := n.Containers()
	byID := make(map[string]*model.Container, len(ctrs))
	for i := range ctrs {
		byID[ctrs[i].ID] = &ctrs[i]
	}
	for ke, err := range kube.LogEvents(ctx, n.Src, kube.LogFilter{Containers: ctrs}) {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			em.warn(err)
			continue
		}
		e := kubeEvent(ke)
		if c := byID[ke.ContainerID]; c != nil {
			e.Runtime, e.Namespace = c.Runtime, c.Namespace
		}
		em.add(ke.Time.Time, e)
		if em.err != nil {
			return nil
		}
	}
	return nil
}

// kubeEvent is a kube.Event on the node's timeline.
func kubeEvent(k kube.Event) Event {
	return Event{Source: k.Source, What: k.What, Message: k.Message, ContainerID: k.ContainerID, Pod: k.Pod,
		Path: k.Path, PathBytes: model.PathBytes(k.Path), EvidencePath: k.EvidencePath}
}

// kubeletReportEvents emits the kubelet report's events of one source.
func kubeletReportEvents(ctx context.Context, n *Node, em *emitter, source ...string) error {
	r, err := n.Kubelet(ctx)
	if err != nil {
		if errors.Is(err, kube.ErrNoKubelet) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		em.warn(err)
		if r == nil {
			return nil
		}
	}
	for _, ke := range r.Events() {
		for _, s := range source {
			if ke.Source == s {
				em.add(ke.Time.Time, kubeEvent(ke))
			}
		}
	}
	return nil
}

// kubeletEvents: the times of the kubelet's unit, drop-ins, environment
// files, config file (and its drop-ins and earlier copies) and
// kubeconfigs.
func kubeletEvents(ctx context.Context, n *Node, _ *TimelineOptions, em *emitter) error {
	return kubeletReportEvents(ctx, n, em, kube.EventKubelet)
}

// staticPodEvents: the times of every static pod manifest.
func staticPodEvents(ctx context.Context, n *Node, _ *TimelineOptions, em *emitter) error {
	return kubeletReportEvents(ctx, n, em, kube.EventStaticPod)
}

// kubePodEvents: the kubelet's pod directories, the container starts
// their termination-message files record, and the service-account
// tokens: their files' times and their iat, nbf and exp claims (exp, in
// the future of most incidents, tells until when a stolen copy works).
func kubePodEvents(ctx context.Context, n *Node, _ *TimelineOptions, em *emitter) error {
	return kubeletReportEvents(ctx, n, em, kube.EventPod, kube.EventToken)
}

// checkpointEvents lists the kubelet checkpoint archives of the node.
func checkpointEvents(ctx context.Context, n *Node, _ *TimelineOptions, em *emitter) error {
	found, err := checkpoint.Find(n.Src, ".")
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			em.warn(err)
		}
		return nil
	}
	for _, f := range found {
		t := f.CheckpointedAt
		if t.IsZero() {
			t = f.Mtime
		}
		if t.IsZero() {
			continue
		}
		em.add(t, Event{Source: "checkpoint", What: "checkpointed", Pod: f.Pod, EvidencePath: "/" + strings.TrimPrefix(f.Path, "/"),
			Message: fmt.Sprintf("checkpoint archive %s (%d bytes)", f.Path, f.Size)})
	}
	return nil
}
