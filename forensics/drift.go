package forensics

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/ptr"
	"github.com/deadnode/deadnode/overlay"
)

// Change classes of a drift finding.
const (
	ChangeTooDeep         = "too_deep"          // a directory nested deeper than drift descends (evidence.DefaultMaxDepth levels)
	ChangeAdded           = "added"             // no entry in the image
	ChangeModified        = "modified"          // content (or link target) differs from the image's
	ChangeMetadataOnly    = "metadata_only"     // copied up with the same content: mode, owner, times or xattrs changed
	ChangeTypeChanged     = "type_changed"      // e.g. a file replaced by a symlink
	ChangeDeleted         = "deleted"           // a whiteout of an image file
	ChangeDeletedDir      = "deleted_dir"       // a whiteout of an image directory
	ChangeOpaqueDir       = "opaque_dir"        // a directory made opaque: hides the image's contents
	ChangeAddedOrModified = "added_or_modified" // the image is not at hand to tell
)

// Exec kinds (DriftEntry.ExecKind), flags (Flags) and ELF facts are
// classify's, one vocabulary with the host's package drift and the triage:
// classify.ExecELF, classify.FlagHidden …; ELFInfo describes an ELF file.
type ELFInfo = classify.ELFInfo

// DriftEntry is one drift entry of a container.
type DriftEntry struct {
	Runtime       string     `json:"runtime"`
	ContainerID   string     `json:"container_id"`
	Namespace     string     `json:"namespace"`
	Pod           string     `json:"pod"` // namespace/name, "" when none
	ContainerName string     `json:"container_name"`
	Path          string     `json:"path"`
	PathBytes     string     `json:"path_bytes,omitempty"` // the path's exact bytes (base64) when it is not valid UTF-8
	Change        string     `json:"change"`
	Type          string     `json:"type"`
	LowerType     string     `json:"lower_type,omitempty"`
	Size          int64      `json:"size"`
	Mode          string     `json:"mode"` // octal permission bits with setuid/setgid/sticky, e.g. "0755"
	UID           uint32     `json:"uid"`
	GID           uint32     `json:"gid"`
	Atime         model.Time `json:"atime"`
	model.FileTimes
	SHA256          string   `json:"sha256"`
	LowerSHA256     string   `json:"lower_sha256"`
	LinkTarget      string   `json:"link_target,omitempty"`
	LowerLinkTarget string   `json:"lower_link_target,omitempty"`
	ExecKind        string   `json:"exec_kind"`
	ELF             *ELFInfo `json:"elf,omitempty"`
	Interpreter     string   `json:"interpreter,omitempty"`
	Flags           []string `json:"flags"`
	IdenticalTo     string   `json:"identical_to"`
	MetadataChanged []string `json:"metadata_changed,omitempty"` // mode, owner, mtime, xattrs
	Hides           int      `json:"hides,omitempty"`            // entries a deleted_dir/opaque_dir hides
	EvidencePath    string   `json:"evidence_path"`
	Layer           string   `json:"layer"`
	// Volume names the pod volume a file lies in ("host:<path>" for a
	// host path mount), for files the container wrote through a mount
	// rather than into its writable layer; Layer is then the mount's
	// content in the evidence, and Path the container path (the
	// PseudoPath of the mount when the container path is unknown).
	Volume string `json:"volume,omitempty"`
	Note   string `json:"note,omitempty"`
	// Diff is how a modified file differs from the image's version (with
	// DriftOptions.Diff).
	Diff *FileDiff `json:"diff,omitempty"`
}

// IsExec says whether the finding is an executable of any kind.
func (f *DriftEntry) IsExec() bool { return f.ExecKind != "" }

// DriftOptions tune Drift.
type DriftOptions struct {
	NoHash bool // skip content hashing (no sha256, no identical_to; modified judged by size)
	// MaxIdentical bounds the image files of one size hashed when looking
	// for identical_to (default 32).
	MaxIdentical int
	// IdenticalAll looks for identical_to for every added or modified file;
	// by default only executables (ELF, scripts, libraries, exec bit) are
	// looked up, which spares indexing the image when none was dropped.
	IdenticalAll bool
	// Diff adds a unified diff to every modified text file (sizes and
	// hashes for binary ones).
	Diff bool
	// HostPaths walks the read-write host path mounts of DriftSource.Volumes
	// too (by default only the pod's writable volumes: emptyDir). A host
	// path is the node's own content, shared with the node and other
	// containers: everything in it is reported as added.
	HostPaths bool
}

// DriftSource is what drift compares: an upper layer (a snapshot dir, a
// checkpoint's RW layer, a rootfs-diff.tar) and the image's lower layers
// (nil when the image is not at hand).
type DriftSource struct {
	Container model.Container
	Upper     overlay.Layer
	Lowers    []overlay.Layer
	// Volumes are the container's writable mounts (emptyDir volumes, host
	// paths mounted read-write), read from VolumeSource: what the
	// container wrote there never reached its upper layer.
	Volumes      []kube.Mount
	VolumeSource evidence.Source
}

// ContainerDrift returns the drift source of a container of the node.
func (n *Node) ContainerDrift(c *model.Container) (*DriftSource, error) {
	if c.UpperDir == "" {
		return nil, fmt.Errorf("container %s has no writable layer in the evidence", c.ID)
	}
	ds := &DriftSource{Container: *c, Upper: overlay.Layer{Source: n.Src, Dir: strings.TrimPrefix(c.UpperDir, "/"), Kind: overlay.LayerDir, Name: c.UpperDir}}
	for _, l := range c.LowerDirs {
		ds.Lowers = append(ds.Lowers, overlay.Layer{Source: n.Src, Dir: strings.TrimPrefix(l, "/"), Kind: overlay.LayerDir, Name: l})
	}
	ms, _ := n.ContainerMounts(c, false) // the kubelet's warnings are the kubelet command's
	for _, m := range ms {
		if m.Writable {
			ds.Volumes = append(ds.Volumes, m)
		}
	}
	ds.VolumeSource = n.Src
	return ds, nil
}

// MaxHeader is how much of a file is read to recognise its kind.
const MaxHeader = classify.MaxHeader

// Drift classifies every entry of the upper layer against the merged view
// of the lower layers and yields the entries in lexical path order, as
// they are found; then every entry of the container's writable volumes
// (DriftSource.Volumes: emptyDir, and read-write host paths with
// DriftOptions.HostPaths), a volume at a time in the order of their
// container paths, each as added with Volume set. A problem with a single entry is yielded as an
// evidence.Warning (the walk goes on); any other error ends the walk
// (the layers cannot be read, or ctx was cancelled).
func Drift(ctx context.Context, ds *DriftSource, opt *DriftOptions) iter.Seq2[DriftEntry, error] {
	o := ptr.Value(opt)
	if o.MaxIdentical <= 0 {
		o.MaxIdentical = 32
	}
	return func(yield func(DriftEntry, error) bool) {
		stopped := false
		d := &drifter{ctx: ctx, ds: ds, opt: o, lowerHash: map[string]string{}}
		d.fn = func(e DriftEntry) {
			if !stopped && !yield(e, nil) {
				stopped = true
			}
		}
		d.onWarn = func(w evidence.Warning) {
			if !stopped && !yield(DriftEntry{}, w) {
				stopped = true
			}
		}
		if err := d.walk(ctx, &stopped); err != nil && !stopped {
			yield(DriftEntry{}, err)
		}
	}
}

// DriftAll collects Drift's entries and warnings.
func DriftAll(ctx context.Context, ds *DriftSource, opt *DriftOptions) ([]DriftEntry, []evidence.Warning, error) {
	return collectStream(Drift(ctx, ds, opt))
}

// collectStream gathers a stream's values and its warnings (evidence.Warning
// errors); another error stops it and is returned with what came before.
func collectStream[T any](seq iter.Seq2[T, error]) ([]T, []evidence.Warning, error) {
	var out []T
	var warns []evidence.Warning
	for v, err := range seq {
		var w evidence.Warning
		switch {
		case err == nil:
			out = append(out, v)
		case errors.As(err, &w):
			warns = append(warns, w)
		default:
			return out, warns, err
		}
	}
	return out, warns, nil
}
