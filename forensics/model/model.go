// Package model holds the runtime-neutral records that every runtime reader
// (containerd, Docker, containers-storage) returns, so that everything above
// a reader — listing, inspect, overlay, drift, timeline — works unchanged
// whatever ran on the node. JSON field names are part of deadnode's stable
// output and are documented in the README.
package model

import (
	"encoding/base64"
	"encoding/json"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/deadnode/deadnode/evidence"
)

// TimeLayout is how every timestamp is printed: RFC 3339, UTC, nanoseconds.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Time is a timestamp that prints as RFC 3339 UTC with nanoseconds, and as
// null when the evidence does not record it.
type Time struct{ time.Time }

// T wraps a time.Time.
func T(t time.Time) Time { return Time{t} }

// FileTimes are the times the evidence keeps for a file: content
// modification, inode change and birth (null where the filesystem keeps
// no birth time). Records embed it, so its fields stand in their JSON as
// the record's own.
type FileTimes struct {
	Mtime Time `json:"mtime"`
	Ctime Time `json:"ctime"`
	Btime Time `json:"btime"`
}

// TimesOf returns st's times (none for a nil st).
func TimesOf(st *evidence.Stat) FileTimes {
	if st == nil {
		return FileTimes{}
	}
	return FileTimes{Mtime: T(st.Mtime), Ctime: T(st.Ctime), Btime: T(st.Btime)}
}

func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := time.Parse(time.RFC3339Nano, s)
	t.Time = p
	return err
}

// String formats for tables ("-" when unknown).
func (t Time) String() string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(TimeLayout)
}

// Runtime names.
const (
	RuntimeContainerd = "containerd"
	RuntimeDocker     = "docker"
	RuntimeCRIO       = "cri-o"
	RuntimePodman     = "podman"
)

// Container kinds.
const (
	KindContainer = "container"
	KindSandbox   = "sandbox"
)

// States a container can be shown in. Only what the evidence records:
// anything else is StateUnknown.
const (
	StateRunning = "running" // last recorded as running (CRI status, runc state present)
	StateExited  = "exited"  // a finish time or exit code is recorded
	StateStopped = "stopped" // a task bundle exists but no live runc state
	StateCreated = "created" // created, and recorded as never started
	StateUnknown = "unknown"
)

// PodRef names the Kubernetes pod a container belongs to.
type PodRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Status is a container's state as the evidence records it.
type Status struct {
	State      string   `json:"state"`
	Sources    []string `json:"sources"` // the evidence files the state was read from
	Pid        int      `json:"pid,omitempty"`
	ExitCode   *int     `json:"exit_code"`
	StartedAt  Time     `json:"started_at"`
	FinishedAt Time     `json:"finished_at"`
	Reason     string   `json:"reason,omitempty"`
}

// Meta is what a runtime records of any of its objects (containerd keeps
// it for images and containers alike): when the record was created and
// last updated, its labels and annotations. Records embed it, so its JSON
// fields stand inline.
type Meta struct {
	CreatedAt   Time              `json:"created_at"`
	UpdatedAt   Time              `json:"updated_at"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Container is a container or a pod sandbox.
type Container struct {
	Runtime        string `json:"runtime"`
	ID             string `json:"id"`
	Namespace      string `json:"namespace"`
	Kind           string `json:"kind"`
	ContainerName  string `json:"container_name"`
	Attempt        uint32 `json:"attempt"`
	Image          string `json:"image"`
	ImageRef       string `json:"image_ref"`
	RuntimeHandler string `json:"runtime_handler"`
	Meta
	Pod         *PodRef  `json:"pod"`
	SandboxID   string   `json:"sandbox_id"`
	LogPath     string   `json:"log_path"`
	Snapshotter string   `json:"snapshotter"`
	SnapshotKey string   `json:"snapshot_key"`
	UpperDir    string   `json:"upper_dir"`
	LowerDirs   []string `json:"lower_dirs"`
	Status      Status   `json:"status"`
	Spec        *Spec    `json:"spec,omitempty"`
	// Execs are the exec sessions run in the container (set by inspect).
	Execs    []Exec             `json:"execs,omitempty"`
	Warnings []evidence.Warning `json:"warnings"`
}

// Pod is a Kubernetes pod seen through its sandbox and containers.
type Pod struct {
	Runtime      string             `json:"runtime"`
	Namespace    string             `json:"namespace"`
	Name         string             `json:"name"`
	UID          string             `json:"uid"`
	SandboxID    string             `json:"sandbox_id"`
	RuntimeNS    string             `json:"runtime_namespace"`
	IP           string             `json:"ip"`
	CreatedAt    Time               `json:"created_at"`
	Labels       map[string]string  `json:"labels"`
	State        string             `json:"state"`
	Containers   []PodContainer     `json:"containers"`
	Warnings     []evidence.Warning `json:"warnings"`
	CgroupParent string             `json:"cgroup_parent,omitempty"`
}

// PodContainer is a container's entry in its pod.
type PodContainer struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image"`
	State string `json:"state"`
}

// Descriptor points at a content blob.
type Descriptor struct {
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
}

// Image is a named image record.
type Image struct {
	Runtime   string     `json:"runtime"`
	Namespace string     `json:"namespace"`
	Name      string     `json:"name"`
	Target    Descriptor `json:"target"`
	Meta
	Checkpoint bool               `json:"checkpoint"`
	Warnings   []evidence.Warning `json:"warnings"`
}

// Content is a blob of the content store.
type Content struct {
	Runtime   string             `json:"runtime"`
	Namespace string             `json:"namespace"`
	Digest    string             `json:"digest"`
	Size      int64              `json:"size"`
	Labels    map[string]string  `json:"labels"`
	CreatedAt Time               `json:"created_at"`
	UpdatedAt Time               `json:"updated_at"`
	BlobPath  string             `json:"blob_path"`
	Present   bool               `json:"present"`
	BlobSize  int64              `json:"blob_size"` // size of the file on disk, -1 when absent
	Warnings  []evidence.Warning `json:"warnings"`
}

// Snapshot is a snapshot of a snapshotter, joined across the metadata
// database (key, labels) and the snapshotter's own database (id, kind).
type Snapshot struct {
	Runtime     string             `json:"runtime"`
	Namespace   string             `json:"namespace"`
	Snapshotter string             `json:"snapshotter"`
	Key         string             `json:"key"`
	Name        string             `json:"name"` // the snapshotter's key: "<ns>/<n>/<key>"
	Parent      string             `json:"parent"`
	Kind        string             `json:"kind"` // active|committed|view
	ID          string             `json:"id"`
	Dir         string             `json:"dir"` // inside the evidence
	CreatedAt   Time               `json:"created_at"`
	UpdatedAt   Time               `json:"updated_at"`
	Labels      map[string]string  `json:"labels"`
	Size        int64              `json:"size"`
	Inodes      int64              `json:"inodes"`
	Containers  []string           `json:"containers"` // ids of containers whose RW layer this is
	Warnings    []evidence.Warning `json:"warnings"`
}

// LeaseResource is one resource a lease holds.
type LeaseResource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Lease is a containerd lease.
type Lease struct {
	Runtime   string            `json:"runtime"`
	Namespace string            `json:"namespace"`
	ID        string            `json:"id"`
	CreatedAt Time              `json:"created_at"`
	Labels    map[string]string `json:"labels"`
	Resources []LeaseResource   `json:"resources"`
}

// Namespace is a runtime namespace with counts of what it holds.
type Namespace struct {
	Runtime    string            `json:"runtime"`
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels"`
	Containers int               `json:"containers"`
	Sandboxes  int               `json:"sandboxes"`
	Images     int               `json:"images"`
	Snapshots  int               `json:"snapshots"`
	Content    int               `json:"content"`
	Leases     int               `json:"leases"`
}

// PathBytes is the exact bytes of a path that is not valid UTF-8, in
// base64 (standard encoding), and "" for a valid one: JSON can carry only
// UTF-8 text, so such a path prints with U+FFFD in place of the bad bytes
// and two different names could look alike; this field keeps them apart.
func PathBytes(p string) string {
	if utf8.ValidString(p) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(p))
}

// NonNil returns s, or an empty slice when s is nil, so that it is written
// as [] rather than null in JSON output.
func NonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// NonNilMap returns m, or an empty map when m is nil, so that it is written
// as {} rather than null in JSON output.
func NonNilMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}

// SortPodContainers orders a pod's containers by name, then id.
func SortPodContainers(cs []PodContainer) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Name != cs[j].Name {
			return cs[i].Name < cs[j].Name
		}
		return cs[i].ID < cs[j].ID
	})
}

// SortPods orders pods by namespace, then name, keeping the order in which
// the reader found pods that share both.
func SortPods(pods []Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
}
