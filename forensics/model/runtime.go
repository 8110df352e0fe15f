package model

import (
	"errors"

	"github.com/deadnode/deadnode/evidence"
)

// Records is what a runtime recorded, in the runtime-neutral shapes every
// command reads. A runtime reader's store embeds it.
type Records struct {
	Namespaces []Namespace
	Containers []Container
	Pods       []Pod
	Images     []Image
	Content    []Content
	Snapshots  []Snapshot
	Leases     []Lease
	// Execs are processes started in a container after its creation
	// (podman exec sessions, live and carved from free pages).
	Execs []Exec
	// Orphans are directories and records nothing refers to any more:
	// what a removal left behind.
	Orphans []Orphan
}

// Exec is a process a runtime started inside a running container (an
// exec session), as the runtime recorded it.
type Exec struct {
	Runtime     string            `json:"runtime"`
	ID          string            `json:"id"`
	ContainerID string            `json:"container_id"`
	State       string            `json:"state"`
	Pid         int               `json:"pid,omitempty"`
	ExitCode    *int              `json:"exit_code"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment,omitempty"`
	User        string            `json:"user,omitempty"`
	WorkDir     string            `json:"work_dir,omitempty"`
	Privileged  bool              `json:"privileged"`
	// Live is false for a record carved from a database's free pages: the
	// runtime had deleted it.
	Live   bool   `json:"live"`
	Source string `json:"source"` // the file it was read from, inside the evidence
	Offset int64  `json:"offset"` // of the record in that file
	// Time is when the record was last written, where the runtime says
	// (null otherwise).
	Time Time `json:"time"`
}

// Orphan is a directory or record of a runtime's store that no image,
// layer or container refers to.
type Orphan struct {
	Runtime string `json:"runtime"`
	Path    string `json:"path"` // inside the evidence
	Why     string `json:"why"`
	// Mtime is the orphan's modification time in the evidence (null when
	// unknown): when the removal that left it happened, at the latest.
	Mtime Time `json:"mtime"`
}

// Runtime is what one runtime reader found in one root of the evidence.
// Stores of containerd, Docker and containers-storage implement it (they
// embed Records); the node holds a list of them. A Runtime is read once
// and is safe for concurrent reading afterwards.
type Runtime interface {
	// Info names the runtime and its root, and says how it was read.
	Info() RuntimeInfo
	// Recorded returns the runtime's records (never nil). The node may
	// fold records across runtimes (Docker's tasks in containerd) before
	// anything reads them.
	Recorded() *Records
}

// RuntimeInfo describes a runtime store.
type RuntimeInfo struct {
	// Name is the runtime's name as records carry it ("containerd",
	// "docker", "containers-storage").
	Name string `json:"name"`
	// Root is the store's root inside the evidence.
	Root string `json:"root"`
	// Notes say how the root was found.
	Notes []string `json:"notes"`
	// Warnings are problems with single records; the rest was read.
	Warnings []evidence.Warning `json:"warnings"`
}

// ReaderOptions tune a Reader.
type ReaderOptions struct {
	// Root overrides the detection of the runtime's root (a path inside
	// the evidence).
	Root string
	// Namespaces keeps only these runtime namespaces (all when empty).
	Namespaces []string
}

// Reader finds and reads one runtime's stores in the evidence.
type Reader interface {
	// Name is the runtime's name ("containerd", "docker",
	// "containers-storage").
	Name() string
	// Open reads every store of the runtime found in src. It returns
	// ErrRuntimeNotFound (wrapped) when there is none.
	Open(src evidence.Source, opt *ReaderOptions) ([]Runtime, error)
	// Locations are where the runtime keeps its root by default (paths
	// inside the evidence), so that a root that cannot be read is told
	// from one that is absent.
	Locations() []string
}

// ErrRuntimeNotFound is returned by a Reader that finds no store of its
// runtime in the evidence.
var ErrRuntimeNotFound = errors.New("runtime not found in the evidence")
