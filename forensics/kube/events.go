package kube

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// Event sources.
const (
	EventKubelet   = "kubelet"    // unit, drop-in, environment file, config file, kubeconfig
	EventStaticPod = "static_pod" // a manifest's times
	EventPod       = "kube_pod"   // a pod directory, a container start (termination file)
	EventToken     = "sa_token"   // a token's iat/nbf/exp and its file's times
	EventLog       = "log"        // one log line
)

// Event is one timestamped fact, in the shape of the node's timeline
// (forensics.Event has the same fields).
type Event struct {
	Time         model.Time `json:"time"`
	Source       string     `json:"source"`
	What         string     `json:"what"` // mtime, ctime, btime, iat, nbf, exp, started, log_line
	Message      string     `json:"message"`
	Pod          string     `json:"pod,omitempty"`
	PodUID       string     `json:"pod_uid,omitempty"`
	ContainerID  string     `json:"container_id,omitempty"`
	Container    string     `json:"container,omitempty"`
	Path         string     `json:"path,omitempty"`
	EvidencePath string     `json:"evidence_path,omitempty"`
}

func fileEvents(out *[]Event, source, label string, fi FileInfo, base Event) {
	if !fi.Exists {
		return
	}
	for _, t := range []struct {
		what string
		t    model.Time
	}{{"mtime", fi.Mtime}, {"ctime", fi.Ctime}, {"btime", fi.Btime}} {
		if t.t.IsZero() {
			continue
		}
		e := base
		e.Time, e.Source, e.What = t.t, source, t.what
		e.Path, e.EvidencePath = fi.Path, fi.EvidencePath
		e.Message = fmt.Sprintf("%s %s of %s", label, t.what, fi.Path)
		*out = append(*out, e)
	}
}

// Events returns the report's timestamped facts: the times of the unit,
// drop-ins, environment files, config files and kubeconfigs; of every
// static pod manifest; of pod directories, container starts and tokens
// (their iat, nbf and exp claims as well as their files' times). Unsorted.
func (r *KubeletReport) Events() []Event {
	var out []Event
	if u := r.Unit; u != nil {
		if u.Fragment != nil {
			fileEvents(&out, EventKubelet, "kubelet unit", *u.Fragment, Event{})
		}
		for _, d := range u.DropIns {
			fileEvents(&out, EventKubelet, "kubelet unit drop-in", d, Event{})
		}
		for _, ef := range u.EnvironmentFiles {
			fileEvents(&out, EventKubelet, "kubelet environment file", ef.FileInfo, Event{})
		}
	}
	if c := r.Config; c != nil {
		if c.ConfigFile != nil {
			fileEvents(&out, EventKubelet, "kubelet config", *c.ConfigFile, Event{})
		}
		for _, d := range c.DropIns {
			fileEvents(&out, EventKubelet, "kubelet config drop-in", d, Event{})
		}
		for _, p := range c.PriorCopies {
			fileEvents(&out, EventKubelet, "earlier copy of the kubelet config", p, Event{})
		}
	}
	for _, k := range r.Kubeconfigs {
		fileEvents(&out, EventKubelet, "kubelet "+k.Role, k.FileInfo, Event{})
	}
	for _, p := range r.StaticPods {
		label := fmt.Sprintf("static pod %s/%s (%s, %s) manifest", p.Namespace, p.Name, strings.Join(p.Images, ","), p.Severity)
		fileEvents(&out, EventStaticPod, label, p.FileInfo, Event{Pod: p.Namespace + "/" + p.Name})
	}
	for i := range r.Pods {
		out = append(out, PodEvents(&r.Pods[i])...)
	}
	return out
}

// PodEvents returns a pod directory's timestamped facts.
func PodEvents(p *PodDir) []Event {
	var out []Event
	pod := ""
	if p.Name != "" {
		pod = p.Namespace + "/" + p.Name
	}
	name := pod
	if name == "" {
		name = p.UID
	}
	base := Event{Pod: pod, PodUID: p.UID}
	fileEvents(&out, EventPod, "pod directory of "+name, p.Dir, base)
	for _, c := range p.Containers {
		for i, s := range c.Starts {
			if s.Btime.IsZero() && s.Mtime.IsZero() {
				continue
			}
			e := base
			e.Time, e.Source, e.What, e.Container = s.Btime, EventPod, "started", c.Name
			if e.Time.IsZero() {
				e.Time = s.Mtime
			}
			e.Path, e.EvidencePath = s.Path, s.EvidencePath
			e.Message = fmt.Sprintf("container %s of %s started (start %d of %d: its termination-message file)", c.Name, name, i+1, len(c.Starts))
			out = append(out, e)
			if s.Message != "" && !s.Mtime.IsZero() {
				e.Time, e.What = s.Mtime, "terminated"
				e.Message = fmt.Sprintf("container %s of %s wrote its termination message: %s", c.Name, name, truncate(s.Message, 200))
				out = append(out, e)
			}
		}
	}
	for _, t := range p.Tokens {
		b := base
		b.Path, b.EvidencePath = t.Path, t.EvidencePath
		fileEvents(&out, EventToken, "service-account token file", t.FileInfo, b)
		for _, x := range []struct {
			what string
			t    model.Time
			verb string
		}{{"iat", t.Claims.IssuedAt, "issued"}, {"nbf", t.Claims.NotBefore, "valid from"}, {"exp", t.Claims.Expires, "expires"}} {
			if x.t.IsZero() {
				continue
			}
			e := b
			e.Time, e.Source, e.What = x.t, EventToken, x.what
			e.Message = fmt.Sprintf("service-account token for %s (kid %s) in %s %s", t.Claims.Subject, t.Header.Kid, name, x.verb)
			out = append(out, e)
		}
	}
	return out
}

// LogEvents streams every selected log line as an event (errors as in
// Logs).
func LogEvents(ctx context.Context, src evidence.Source, f LogFilter) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for l, err := range Logs(ctx, src, f) {
			if err != nil {
				if !yield(Event{}, err) {
					return
				}
				continue
			}
			if !yield(l.Event(), nil) {
				return
			}
		}
	}
}

// Event is the line as a timeline event.
func (l LogLine) Event() Event {
	who := l.Container
	if l.Pod != "" {
		who = l.Pod + "/" + l.Container
	}
	if who == "" {
		who = l.ContainerID
	}
	return Event{Time: l.Time, Source: EventLog, What: "log_line", Pod: l.Pod, PodUID: l.PodUID, ContainerID: l.ContainerID,
		Container: l.Container, Path: l.Container, EvidencePath: l.EvidencePath,
		Message: fmt.Sprintf("%s %s: %s", who, l.Stream, truncate(l.Text, 400))}
}
