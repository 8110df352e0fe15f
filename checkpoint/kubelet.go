package checkpoint

import (
	"bytes"
	"context"
	"path"
	"regexp"
	"time"

	"github.com/deadnode/deadnode/evidence"
)

// kubeletName matches checkpoint-<pod>_<namespace>-<container>-<RFC3339>.tar.
var kubeletName = regexp.MustCompile(`^checkpoint-([^_/]+)_(.+)-([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2}))\.tar(?:\.gz|\.zst)?$`)

func applyKubeletName(cp *Checkpoint, m []string) {
	if cp.Format == "cri-o" || cp.Format == "criu" {
		cp.Format = "kubelet"
	}
	if cp.Container.Pod == "" {
		cp.Container.Pod = m[1]
	}
	if t, err := time.Parse(time.RFC3339Nano, m[3]); err == nil && cp.Container.CheckpointedAtSource != fileConfigDump {
		cp.Container.CheckpointedAt, cp.Container.CheckpointedAtSource = t, "file_name"
	}
}

// Found is a kubelet checkpoint archive in a node's evidence.
type Found struct {
	Path string `json:"path"` // inside the evidence
	Size int64  `json:"size"`
	// Pod, and the "<namespace>-<container>" tail, and the time, as the
	// file name gives them (namespace and container names may both hold
	// dashes; open the archive for the exact values).
	Pod                string    `json:"pod,omitempty"`
	NamespaceContainer string    `json:"namespace_container,omitempty"`
	CheckpointedAt     time.Time `json:"checkpointed_at"`
	Mtime              time.Time `json:"mtime"`
}

// Find lists the kubelet checkpoint archives of a node's evidence
// (<root>/var/lib/kubelet/checkpoints/*.tar, also .tar.gz/.tar.zst),
// recognised by content (a tar archive) rather than by name alone.
func Find(src evidence.Source, root string) ([]Found, error) {
	ents, err := readDirIfAny(src, root, kubeletCheckpointDir)
	if err != nil {
		return nil, err
	}
	var out []Found
	for _, e := range ents {
		if !e.Mode.IsRegular() {
			continue
		}
		f := Found{Path: e.Name, Size: e.Size, Mtime: e.Mtime}
		if !looksLikeArchive(src, e.Name) {
			continue
		}
		if m := kubeletName.FindStringSubmatch(path.Base(e.Name)); m != nil {
			f.Pod, f.NamespaceContainer = m[1], m[2]
			f.CheckpointedAt, _ = time.Parse(time.RFC3339Nano, m[3])
		}
		out = append(out, f)
	}
	return out, nil
}

// readDirIfAny lists the directory sub of root in src; nothing when it
// does not exist.
func readDirIfAny(src evidence.Source, root, sub string) ([]*evidence.Stat, error) {
	root, err := evidence.Clean(root)
	if err != nil {
		return nil, err
	}
	ents, err := src.ReadDir(path.Join(root, sub))
	if isNotExist(err) {
		return nil, nil
	}
	return ents, err
}

// head reads up to n bytes of a file of src at offset off.
func head(src evidence.Source, name string, off int64, n int) ([]byte, error) {
	f, err := src.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := f.ReadAt(b, off)
	return b[:k], err
}

// looksLikeArchive checks the magic of a gzip or zstd stream or the
// "ustar" magic of a tar header.
func looksLikeArchive(src evidence.Source, name string) bool {
	if m, _ := head(src, name, 0, 4); evidence.DetectCompression(bytes.NewReader(m)) != evidence.CompressionNone {
		return true
	}
	m, err := head(src, name, 257, 6)
	return err == nil && string(m[:5]) == "ustar"
}

// OpenKubelet opens a kubelet archive of a node's evidence, as Find lists
// them. Close the Checkpoint. It stops with ctx.Err() when ctx is
// cancelled.
func OpenKubelet(ctx context.Context, src evidence.Source, name string, opt *Options) (*Checkpoint, error) {
	f, err := src.Open(name)
	if err != nil {
		return nil, err
	}
	cp, err := openArchive(ctx, f, src.String()+":"+name, nil, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	if m := kubeletName.FindStringSubmatch(path.Base(name)); m != nil {
		applyKubeletName(cp, m)
	}
	return cp, nil
}
