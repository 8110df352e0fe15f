package forensics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
	"github.com/deadnode/deadnode/overlay"
)

// Members of CRI-O, Podman and kubelet checkpoint archives that drift reads.
const (
	memberRootfsDiff   = "rootfs-diff.tar"
	memberDeletedFiles = "deleted.files"
	// MaxDeletedFiles bounds the deleted.files list.
	MaxDeletedFiles = 1 << 20
)

type closers []func() error

func (c closers) Close() error {
	var err error
	for i := len(c) - 1; i >= 0; i-- {
		if e := c[i](); err == nil {
			err = e
		}
	}
	return err
}

// CheckpointArchiveDrift returns the drift source of a CRI-O, Podman or
// kubelet checkpoint archive: its rootfs-diff.tar and deleted.files as the
// upper layer. When node is not nil and holds the container's image, its
// layers are the lower view; otherwise changes are added_or_modified.
// Close the returned closer when done.
func CheckpointArchiveDrift(file string, node *Node) (*DriftSource, io.Closer, error) {
	// Keep every member's data but the page images (the bulk of a
	// checkpoint, not needed here).
	arch, err := evidence.OpenArchive(context.TODO(), file, &evidence.ArchiveOptions{Retain: func(name string, _ int64) bool {
		return !strings.HasPrefix(path.Base(name), "pages-")
	}})
	if err != nil {
		return nil, nil, err
	}
	cl := closers{arch.Close}
	fail := func(err error) (*DriftSource, io.Closer, error) {
		cl.Close()
		return nil, nil, err
	}
	cp, err := checkpoint.Open(context.TODO(), arch, "", nil)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", file, err))
	}
	f, err := arch.Open(memberRootfsDiff)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Errorf("%s: no %s: the checkpoint holds no filesystem changes", file, memberRootfsDiff))
		}
		return fail(err)
	}
	diffName := file + ":" + memberRootfsDiff
	diff, err := evidence.NewArchive(context.TODO(), f, f.Size(), diffName, nil)
	if err != nil {
		return fail(err)
	}
	cl = append(cl, diff.Close)
	var deleted []string
	if b, err := evidence.ReadFile(arch, memberDeletedFiles, 64<<20); err == nil {
		if err := json.Unmarshal(b, &deleted); err != nil {
			return fail(&evidence.FormatError{File: file + ":" + memberDeletedFiles, Offset: arch.MemberOffset(memberDeletedFiles), Msg: "not a JSON list of paths", Err: err})
		}
		if len(deleted) > MaxDeletedFiles {
			deleted = deleted[:MaxDeletedFiles]
		}
	}
	c := cp.Container
	ds := &DriftSource{
		Container: model.Container{Runtime: c.Engine, ID: c.ID, Namespace: c.Namespace, ContainerName: c.Name, Image: c.Image, Kind: model.KindContainer},
		Upper:     overlay.Layer{Source: diff, Dir: ".", Kind: overlay.LayerTar, Name: diffName, Deleted: deleted},
	}
	if c.Pod != "" {
		ds.Container.Pod = &model.PodRef{Namespace: c.Namespace, Name: c.Pod}
	}
	if node != nil && c.Image != "" {
		if im, err := node.FindImage("", c.Image); err == nil {
			if img, err := node.ResolveImage(im); err == nil {
				if lowers, err := node.ImageLowers(im.Namespace, img); err == nil {
					ds.Lowers = lowers
				}
			}
		}
	}
	return ds, cl, nil
}

// CheckpointImageDrift returns the drift source of a containerd checkpoint
// image of the node: its RW layer diff as the upper layer, and as the lower
// view the checkpointed container's own lower dirs when the container is
// still recorded, else the layers of the base image.
func (n *Node) CheckpointImageDrift(im *model.Image) (*DriftSource, io.Closer, error) {
	img, err := n.ResolveImage(im)
	if err != nil {
		return nil, nil, err
	}
	if img.Kind != image.KindCheckpoint || img.Checkpoint == nil || img.Checkpoint.RW == nil {
		return nil, nil, fmt.Errorf("image %s is not a containerd checkpoint with a RW layer", im.Name)
	}
	st, _ := n.ContentStore()
	rw := img.Checkpoint.RW
	blob, err := st.Blob(rw.Digest)
	if err != nil {
		return nil, nil, err
	}
	name := "checkpoint " + im.Name + " rw " + rw.Digest
	arch, err := evidence.NewArchive(context.TODO(), blob, blob.Size(), name, nil)
	if err != nil {
		blob.Close()
		return nil, nil, err
	}
	cl := closers{blob.Close, arch.Close}
	ds := &DriftSource{Upper: overlay.Layer{Source: arch, Dir: ".", Kind: overlay.LayerTar, Name: name}}
	id := strings.TrimPrefix(im.Name, "containerd.io/checkpoint/")
	if i := strings.IndexByte(id, ':'); i > 0 {
		id = id[:i]
	}
	if c, err := n.FindContainer(id); err == nil && c.Namespace == im.Namespace && c.ID == id {
		ds.Container = *c
		for _, l := range c.LowerDirs {
			ds.Lowers = append(ds.Lowers, overlay.Layer{Source: n.Src, Dir: strings.TrimPrefix(l, "/"), Kind: overlay.LayerDir, Name: l})
		}
	} else {
		ds.Container = model.Container{Runtime: model.RuntimeContainerd, ID: id, Namespace: im.Namespace, Kind: model.KindContainer, Image: img.Checkpoint.ImageName}
		if img.Base != nil {
			if lowers, err := n.ImageLowers(im.Namespace, img.Base); err == nil {
				ds.Lowers = lowers
			}
		}
	}
	return ds, cl, nil
}
