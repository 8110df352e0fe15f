package forensics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// Event is one timestamped fact of the node.
type Event struct {
	Time         model.Time `json:"time"`
	Source       string     `json:"source"` // container, sandbox, image, snapshot, content, lease, cri_status, file, log, checkpoint
	What         string     `json:"what"`   // created, updated, started, finished, atime, mtime, ctime, btime, first_log_line, last_log_line, checkpointed
	Message      string     `json:"message"`
	Runtime      string     `json:"runtime,omitempty"`
	Namespace    string     `json:"namespace,omitempty"`
	ContainerID  string     `json:"container_id,omitempty"`
	Pod          string     `json:"pod,omitempty"`
	Path         string     `json:"path,omitempty"`
	EvidencePath string     `json:"evidence_path,omitempty"`
	Change       string     `json:"change,omitempty"` // drift class of a file event
	// File is set for file events: what a bodyfile line needs.
	File *Finding `json:"-"`
}

// TimelineOptions tune Timeline.
type TimelineOptions struct {
	Hash bool // hash drifted files (bodyfile MD5 stays 0: we compute sha256, given in the JSON)
}

// MaxLogTail bounds how much of a log file is read for its first and last
// lines.
const MaxLogTail = 64 << 10

// Timeline gathers every timestamp the node's evidence holds: runtime
// records, CRI status, drift findings' file times, container logs and
// checkpoints. Events come back sorted by time; problems are warnings.
func (n *Node) Timeline(opt TimelineOptions) ([]Event, []string) {
	var ev []Event
	var warns []string
	add := func(t time.Time, e Event) {
		if t.IsZero() {
			return
		}
		e.Time = model.T(t.UTC())
		ev = append(ev, e)
	}
	pod := func(c model.Container) string {
		if c.Pod == nil {
			return ""
		}
		return c.Pod.Namespace + "/" + c.Pod.Name
	}
	for _, c := range n.Containers() {
		base := Event{Source: c.Kind, Runtime: c.Runtime, Namespace: c.Namespace, ContainerID: c.ID, Pod: pod(c)}
		label := fmt.Sprintf("%s %s (%s, image %s)", c.Kind, c.ID, nameOf(c), c.Image)
		e := base
		e.What, e.Message = "created", label+" created"
		add(c.CreatedAt.Time, e)
		if !c.UpdatedAt.Equal(c.CreatedAt.Time) {
			e.What, e.Message = "updated", label+" updated"
			add(c.UpdatedAt.Time, e)
		}
		e = base
		e.Source = "cri_status"
		e.What, e.Message = "started", label+" started"
		add(c.Status.StartedAt.Time, e)
		if c.Status.ExitCode != nil {
			e.What, e.Message = "finished", fmt.Sprintf("%s finished, exit code %d", label, *c.Status.ExitCode)
		} else {
			e.What, e.Message = "finished", label+" finished"
		}
		add(c.Status.FinishedAt.Time, e)
	}
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
		add(im.CreatedAt.Time, e)
		if !im.UpdatedAt.Equal(im.CreatedAt.Time) {
			e.What, e.Message = "updated", fmt.Sprintf("%s %s updated", kind, im.Name)
			add(im.UpdatedAt.Time, e)
		}
	}
	for _, s := range n.Snapshots() {
		e := Event{Source: "snapshot", Runtime: s.Runtime, Namespace: s.Namespace, EvidencePath: s.Dir}
		e.What, e.Message = "created", fmt.Sprintf("%s snapshot %s (%s, dir %s) created", s.Kind, s.Key, s.Snapshotter, s.Dir)
		add(s.CreatedAt.Time, e)
		if !s.UpdatedAt.Equal(s.CreatedAt.Time) {
			e.What, e.Message = "updated", fmt.Sprintf("%s snapshot %s updated", s.Kind, s.Key)
			add(s.UpdatedAt.Time, e)
		}
	}
	for _, c := range n.Content() {
		e := Event{Source: "content", Runtime: c.Runtime, Namespace: c.Namespace, EvidencePath: c.BlobPath}
		e.What, e.Message = "created", fmt.Sprintf("content %s (%d bytes) created", c.Digest, c.Size)
		add(c.CreatedAt.Time, e)
		if !c.UpdatedAt.Equal(c.CreatedAt.Time) {
			e.What, e.Message = "updated", fmt.Sprintf("content %s updated", c.Digest)
			add(c.UpdatedAt.Time, e)
		}
	}
	for _, l := range n.Leases() {
		add(l.CreatedAt.Time, Event{Source: "lease", What: "created", Runtime: l.Runtime, Namespace: l.Namespace, Message: fmt.Sprintf("lease %s created (%d resources)", l.ID, len(l.Resources))})
	}
	// File times of every container's drift.
	for _, c := range n.Containers() {
		if c.UpperDir == "" {
			continue
		}
		ds, err := n.ContainerDrift(&c)
		if err != nil {
			warns = append(warns, err.Error())
			continue
		}
		w, err := Drift(ds, DriftOptions{NoHash: !opt.Hash}, func(f Finding) {
			if f.Type == "whiteout" && f.Mtime.IsZero() {
				return
			}
			ff := f
			base := Event{Source: "file", Runtime: c.Runtime, Namespace: c.Namespace, ContainerID: c.ID, Pod: pod(c), Path: f.Path, EvidencePath: f.EvidencePath, Change: f.Change, File: &ff}
			for _, tt := range []struct {
				what string
				t    model.Time
			}{{"mtime", f.Mtime}, {"atime", f.Atime}, {"ctime", f.Ctime}, {"btime", f.Btime}} {
				e := base
				e.What = tt.what
				e.Message = fmt.Sprintf("%s %s %s (%s %s) in %s", tt.what, f.Change, f.Path, f.Type, strings.Join(f.Flags, ","), shortID(c.ID))
				add(tt.t.Time, e)
			}
		})
		warns = append(warns, w...)
		if err != nil {
			warns = append(warns, err.Error())
		}
	}
	ev = append(ev, n.logEvents(&warns)...)
	ev = append(ev, n.checkpointEvents(&warns)...)
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].Time.Before(ev[j].Time.Time) })
	return ev, warns
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

// podLogDir is where the kubelet keeps container logs:
// /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log.
const podLogDir = "var/log/pods"

// logEvents reads the first and last lines of every container log.
func (n *Node) logEvents(warns *[]string) []Event {
	var ev []Event
	pods, err := n.Src.ReadDir(podLogDir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			*warns = append(*warns, err.Error())
		}
		return nil
	}
	for _, p := range pods {
		if !p.Mode.IsDir() {
			continue
		}
		podName := path.Base(p.Name)
		parts := strings.SplitN(podName, "_", 3)
		podRef := podName
		if len(parts) == 3 {
			podRef = parts[0] + "/" + parts[1]
		}
		ctrs, err := n.Src.ReadDir(p.Name)
		if err != nil {
			*warns = append(*warns, err.Error())
			continue
		}
		for _, c := range ctrs {
			if !c.Mode.IsDir() {
				continue
			}
			logs, err := n.Src.ReadDir(c.Name)
			if err != nil {
				*warns = append(*warns, err.Error())
				continue
			}
			for _, l := range logs {
				if !l.Mode.IsRegular() || !strings.HasSuffix(l.Name, ".log") || l.Size == 0 {
					continue
				}
				first, last, err := logEnds(n.Src, l.Name)
				if err != nil {
					*warns = append(*warns, err.Error())
					continue
				}
				for _, x := range []struct {
					what, line string
				}{{"first_log_line", first}, {"last_log_line", last}} {
					ts, text, ok := criLogLine(x.line)
					if !ok {
						continue
					}
					ev = append(ev, Event{Time: model.T(ts), Source: "log", What: x.what, Pod: podRef, Path: path.Base(c.Name), EvidencePath: "/" + l.Name,
						Message: fmt.Sprintf("%s of %s/%s: %s", strings.ReplaceAll(x.what, "_", " "), podRef, path.Base(c.Name), text)})
					if first == last {
						break
					}
				}
			}
		}
	}
	return ev
}

// logEnds returns the first and last lines of a log file, reading at most
// MaxLogTail bytes from each end.
func logEnds(src evidence.Source, name string) (string, string, error) {
	f, err := src.Open(name)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	size := f.Size()
	head := make([]byte, min(size, MaxLogTail))
	if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
		return "", "", err
	}
	first, _, _ := bytes.Cut(head, []byte("\n"))
	tail := head
	if size > MaxLogTail {
		tail = make([]byte, MaxLogTail)
		if _, err := f.ReadAt(tail, size-MaxLogTail); err != nil && err != io.EOF {
			return "", "", err
		}
	}
	tail = bytes.TrimRight(tail, "\n")
	if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
		tail = tail[i+1:]
	}
	return string(first), string(tail), nil
}

// criLogLine parses a CRI log line: "<RFC3339Nano> <stream> <P|F> <text>".
func criLogLine(line string) (time.Time, string, bool) {
	ts, rest, ok := strings.Cut(line, " ")
	if !ok {
		return time.Time{}, "", false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", false
	}
	if len(rest) > 200 {
		rest = rest[:200] + "…"
	}
	return t.UTC(), rest, true
}

// checkpointEvents lists the kubelet checkpoint archives of the node.
func (n *Node) checkpointEvents(warns *[]string) []Event {
	found, err := checkpoint.Find(n.Src, ".")
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			*warns = append(*warns, err.Error())
		}
		return nil
	}
	var ev []Event
	for _, f := range found {
		t := f.CheckpointedAt
		if t.IsZero() {
			t = f.Mtime
		}
		if t.IsZero() {
			continue
		}
		ev = append(ev, Event{Time: model.T(t.UTC()), Source: "checkpoint", What: "checkpointed", Pod: f.Pod, EvidencePath: "/" + strings.TrimPrefix(f.Path, "/"),
			Message: fmt.Sprintf("checkpoint archive %s (%d bytes)", f.Path, f.Size)})
	}
	return ev
}
