package forensics

import (
	"context"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/containerd"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Checkpoint kinds.
const (
	CheckpointKubelet      = "kubelet"                 // an archive of the kubelet's checkpoint API
	CheckpointContainerd   = "containerd"              // a checkpoint image of containerd's meta.db
	CheckpointUnreferenced = "containerd-unreferenced" // an index left in the content store after its record was deleted
)

// CheckpointRef is a checkpoint found in the node's evidence.
type CheckpointRef struct {
	Kind      string    `json:"kind"`
	Namespace string    `json:"namespace,omitempty"`
	Name      string    `json:"name"`   // image name, or the archive's path in the evidence
	Digest    string    `json:"digest"` // index digest (containerd)
	Size      int64     `json:"size"`   // CRIU tar or archive size
	Image     string    `json:"image,omitempty"`
	Pod       string    `json:"pod,omitempty"`
	Created   time.Time `json:"created"`
	// containerID is the checkpointed container's id where the name says.
	containerID string
	// podName and ctrSuffix come from a kubelet archive's file name.
	podName, ctrSuffix string
}

// ContainerID is the id of the checkpointed container, where the
// checkpoint's name tells it ("" otherwise: open it to know).
func (c CheckpointRef) ContainerID() string { return c.containerID }

// Checkpoints lists the node's checkpoints: containerd checkpoint images
// (records, then unreferenced indexes) and kubelet archives
// (var/lib/kubelet/checkpoints), sorted by kind and name.
func (n *Node) Checkpoints(ctx context.Context) ([]CheckpointRef, []evidence.Warning) {
	var rows []CheckpointRef
	var warns []evidence.Warning
	if cs := n.containerdStore(); cs != nil {
		cks, w := cs.Checkpoints(ctx)
		warns = append(warns, w...)
		for _, c := range cks {
			kind := CheckpointContainerd
			if c.Unreferenced {
				kind = CheckpointUnreferenced
			}
			rows = append(rows, CheckpointRef{Kind: kind, Namespace: c.Namespace, Name: c.Name, Digest: c.Digest, Size: c.Size,
				Image: c.Image, Created: c.Created.Time, containerID: containerd.CheckpointContainerID(c.Name)})
		}
	}
	kub, err := checkpoint.Find(n.Src, ".")
	if err != nil {
		warns = append(warns, evidence.WarningOf(err))
	}
	for _, k := range kub {
		pod := k.Pod
		if k.NamespaceContainer != "" {
			pod += " (" + k.NamespaceContainer + ")"
		}
		rows = append(rows, CheckpointRef{Kind: CheckpointKubelet, Name: k.Path, Size: k.Size, Pod: pod, Created: k.CheckpointedAt,
			podName: k.Pod, ctrSuffix: k.NamespaceContainer})
	}
	for i := range rows {
		if rows[i].Kind == CheckpointKubelet {
			rows[i].containerID = n.kubeletCheckpointContainer(rows[i])
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Kind != rows[j].Kind {
			return rows[i].Kind < rows[j].Kind
		}
		return rows[i].Namespace+rows[i].Name+rows[i].Digest < rows[j].Namespace+rows[j].Name+rows[j].Digest
	})
	return rows, warns
}

// kubeletCheckpointContainer finds the container a kubelet archive was
// taken of from its file name ("checkpoint-<pod>_<namespace>-<container>-
// <time>.tar"): the one container whose pod name is <pod> and whose
// "<namespace>-<container>" is the tail. "" when not exactly one.
func (n *Node) kubeletCheckpointContainer(r CheckpointRef) string {
	if r.podName == "" {
		return ""
	}
	id := ""
	for _, c := range n.Containers() {
		if c.Pod != nil && c.Pod.Name == r.podName && c.Pod.Namespace+"-"+c.ContainerName == r.ctrSuffix {
			if id != "" {
				return ""
			}
			id = c.ID
		}
	}
	return id
}

// FindCheckpoint finds a checkpoint of the node by name (an image name, or
// a kubelet archive's path in the evidence or file name), by digest or a
// digest prefix of at least 12 hex digits, or by the id (or a unique id
// prefix, or the name: see FindContainer) of the container it was taken
// of.
func (n *Node) FindCheckpoint(ctx context.Context, ref string) (CheckpointRef, error) {
	rows, _ := n.Checkpoints(ctx)
	clean := strings.TrimPrefix(ref, "/")
	hex := strings.TrimPrefix(ref, "sha256:")
	var hits []CheckpointRef
	for _, r := range rows {
		switch {
		case r.Name == ref || r.Name == clean || (r.Kind == CheckpointKubelet && path.Base(r.Name) == ref) || (r.Digest != "" && r.Digest == ref):
			hits = append(hits, r)
		case r.Digest != "" && len(hex) >= 12 && strings.HasPrefix(strings.TrimPrefix(r.Digest, "sha256:"), hex):
			hits = append(hits, r)
		}
	}
	if len(hits) == 0 {
		if c, err := n.FindContainer(ref); err == nil {
			for _, r := range rows {
				if r.containerID == c.ID {
					hits = append(hits, r)
				}
			}
		}
	}
	switch {
	case len(hits) == 1:
		return hits[0], nil
	case len(hits) == 0:
		return CheckpointRef{}, &NotFoundError{What: "checkpoint", Ref: ref, Hint: "see deadnode checkpoint ls"}
	}
	digests := map[string]bool{}
	var names []string
	for _, h := range hits {
		digests[h.Kind+h.Digest+h.Name] = true
		names = append(names, h.Kind+" "+firstOf(h.Name, h.Digest))
	}
	if len(digests) == 1 {
		return hits[0], nil
	}
	return CheckpointRef{}, &AmbiguousError{What: "checkpoint", Ref: ref, Candidates: names}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// OpenCheckpoint opens a checkpoint of the node (see FindCheckpoint). For
// a containerd checkpoint of a container still in the evidence, the
// container's image layers answer "was this executable in the image?"
// (checkpoint's exe_origin) unless opt sets ExeOrigin.
func (n *Node) OpenCheckpoint(ctx context.Context, ref string, opt *checkpoint.Options) (*checkpoint.Checkpoint, error) {
	r, err := n.FindCheckpoint(ctx, ref)
	if err != nil {
		return nil, err
	}
	o := ptr.Value(opt)
	if r.Kind == CheckpointKubelet {
		return checkpoint.OpenKubelet(ctx, n.Src, r.Name, &o)
	}
	if o.ExeOrigin == nil && r.containerID != "" {
		o.ExeOrigin = n.ExeOrigin(r.containerID)
	}
	return n.containerdStore().OpenCheckpoint(ctx, r.Digest, r.Name, &o)
}
