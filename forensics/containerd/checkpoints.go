package containerd

import (
	"context"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Checkpoint is a checkpoint image of the store: a record of meta.db
// labelled as one, or an index found in the content store that no record
// names any more.
type Checkpoint struct {
	Namespace string
	Name      string // the image name ("" for an unreferenced index)
	Digest    string // the OCI index
	Image     string // the image the container ran
	Size      int64  // of the CRIU images tar
	Created   model.Time
	// Unreferenced is set for an index left in the content store after
	// its image record was deleted.
	Unreferenced bool
}

// Checkpoints lists the store's checkpoint images, records first (as
// meta.db lists them), then unreferenced indexes by digest.
func (s *Store) Checkpoints(ctx context.Context) ([]Checkpoint, []evidence.Warning) {
	var out []Checkpoint
	var warns []evidence.Warning
	for _, im := range s.Images {
		if im.Checkpoint {
			out = append(out, Checkpoint{Namespace: im.Namespace, Name: im.Name, Digest: im.Target.Digest, Created: im.CreatedAt, Image: im.Annotations["image.name"]})
		}
	}
	found, err := checkpoint.FindContainerd(ctx, s.src, s.contentDir())
	if err != nil {
		warns = append(warns, evidence.WarningOf(err))
	}
	named := map[string]bool{}
	for _, c := range out {
		named[c.Digest] = true
	}
	byDigest := map[string]int{}
	for i, f := range found {
		byDigest[f.Digest] = i
		if !named[f.Digest] {
			out = append(out, Checkpoint{Digest: f.Digest, Size: f.CriuTarSize, Image: f.Image, Unreferenced: true})
		}
	}
	for i := range out {
		if k, ok := byDigest[out[i].Digest]; ok {
			out[i].Size = found[k].CriuTarSize
			if out[i].Image == "" {
				out[i].Image = found[k].Image
			}
		}
	}
	return out, warns
}

// CheckpointContainerID is the id of the container a checkpoint image was
// taken of: containerd names them "containerd.io/checkpoint/<id>:<time>".
func CheckpointContainerID(name string) string {
	id := strings.TrimPrefix(name, checkpointImagePrefix)
	if id == name {
		return ""
	}
	if i := strings.IndexByte(id, ':'); i > 0 {
		id = id[:i]
	}
	return id
}

// OpenCheckpoint opens a checkpoint image of the store by its index digest
// (name is the image record's name, "" for an unreferenced index).
func (s *Store) OpenCheckpoint(ctx context.Context, digest, name string, opt *checkpoint.Options) (*checkpoint.Checkpoint, error) {
	o := ptr.Value(opt)
	return checkpoint.OpenContainerd(ctx, s.src, s.contentDir(), digest, &checkpoint.ContainerdOptions{Options: o, ImageName: name})
}
