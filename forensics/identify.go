package forensics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/disk"
	"github.com/deadnode/deadnode/evidence/vfs"
)

// EvidenceFile is one host file a disk image is made of (a piece of a
// split raw image, a VMDK descriptor or extent, a backing image), hashed.
type EvidenceFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Identify works out the identity of the node's evidence, as a case
// records it: its kind ("dir", "tar.zst", "disk:qcow2" …), size and
// sha256. A compressed collection keeps the sha256 of the pass that
// decompressed it (or of the cache entry it made); any other file is read
// whole. A split raw image's sha256 is that of its pieces in order (the
// raw image's own), its size their sum; an image made of several files
// (VMDK extents, backing images) lists them in Files, each hashed. A
// directory has no single hash: SHA256 is nil and SHA256Note says why.
// It stops with ctx.Err() when ctx is cancelled; a node opened with Open
// rather than OpenPath has no evidence to identify (an error).
func (n *Node) Identify(ctx context.Context) (EvidenceInfo, error) {
	ev := n.Evidence
	if ev == nil {
		return EvidenceInfo{}, errors.New("identify: the node was not opened from a host path (OpenPath)")
	}
	id := EvidenceInfo{Path: ev.Path, Kind: string(ev.Kind), Size: ev.Size}
	if im := ev.Disk(); im != nil {
		id.Kind = im.Kind()
		return id, identifyDisk(ctx, &id, &im.Disk)
	}
	switch {
	case ev.Kind == evidence.KindDir:
		id.Size = 0
		id.SHA256Note = "a directory has no single hash: hash the image it was mounted or extracted from"
	case ev.Cache != nil && ev.Cache.SHA256 != "":
		sum := ev.Cache.SHA256
		id.SHA256 = &sum
	default:
		f, err := hashFiles(ctx, []string{ev.Path}, nil)
		if err != nil {
			return id, err
		}
		id.SHA256 = &f[0].SHA256
	}
	return id, nil
}

// identifyDisk hashes the files of a disk image and its backing images.
func identifyDisk(ctx context.Context, id *EvidenceInfo, info *disk.Info) error {
	var names []string
	for in := info; in != nil; in = in.Backing {
		names = append(names, in.Files...)
	}
	var whole hash.Hash
	if info.Format == disk.SplitRaw {
		whole = sha256.New()
	}
	files, err := hashFiles(ctx, names, whole)
	if err != nil {
		return err
	}
	first := files[0].SHA256
	id.SHA256, id.Size = &first, files[0].Size
	if len(files) > 1 {
		id.Files = files
	}
	if whole != nil {
		sum := hex.EncodeToString(whole.Sum(nil))
		id.SHA256, id.Size = &sum, 0
		for _, f := range files {
			id.Size += f.Size
		}
		id.SHA256Note = fmt.Sprintf("of the %d pieces in order: the raw image's sha256", len(files))
	} else if len(files) > 1 {
		id.SHA256Note = fmt.Sprintf("of %s alone: the image is made of %d files, each hashed in files", files[0].Path, len(files))
	}
	return nil
}

// hashFiles reads each host file whole for its sha256, feeding also to
// all when not nil (in the order given).
func hashFiles(ctx context.Context, names []string, all hash.Hash) ([]EvidenceFile, error) {
	out := make([]EvidenceFile, 0, len(names))
	buf := make([]byte, 1<<20)
	for _, name := range names {
		f, err := vfs.OpenNoatime(name)
		if err != nil {
			return out, err
		}
		h := sha256.New()
		var w io.Writer = h
		if all != nil {
			w = io.MultiWriter(h, all)
		}
		n, err := copyCtx(ctx, w, f, buf)
		f.Close()
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, EvidenceFile{Path: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return out, nil
}

// copyCtx copies r to w through buf, checking ctx between reads.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := r.Read(buf)
		w.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
