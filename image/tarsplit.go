package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/vbatts/tar-split/tar/storage"
)

// VerifyTarSplitFile verifies the unpacked layer directory dir against the
// tar-split file tarSplit (both inside src, where the runtime that owns
// the layout keeps them; see VerifyTarSplit). A missing diff_id or
// tar-split record makes the layer unverifiable, with the reason.
func VerifyTarSplitFile(ctx context.Context, src evidence.Source, tarSplit, diffID, dir string, opt *VerifyOptions) *LayerResult {
	if diffID == "" {
		return &LayerResult{SnapshotDir: dir, Status: StatusUnverifiable, Reason: "no diff_id recorded"}
	}
	f, err := src.Open(strings.TrimPrefix(tarSplit, "/"))
	if err != nil {
		return &LayerResult{DiffID: diffID, SnapshotDir: dir, Status: StatusUnverifiable, Reason: "no tar-split record: " + err.Error()}
	}
	defer f.Close()
	r, _ := VerifyTarSplit(ctx, f, diffID, src, strings.TrimPrefix(dir, "/"), opt)
	r.SnapshotDir = dir
	return r
}

// VerifyTarSplit verifies an unpacked layer directory (Docker overlay2 or
// containers-storage, which keep no layer blob) against its tar-split
// metadata (gzip-compressed JSON lines): the tar stream is rebuilt from the
// recorded headers and the files on disk, each file's crc64 is checked
// (a difference names the file: content), and the rebuilt stream goes
// through VerifyLayer, which checks its sha256 against diffID and compares
// every header with the disk (mode, owner, type, link target, whiteouts,
// opaque dirs, added and missing entries). Memory does not grow with the
// layer's size.
func VerifyTarSplit(ctx context.Context, tarSplit io.Reader, diffID string, snap evidence.Source, dir string, opt *VerifyOptions) (*LayerResult, error) {
	dr, err := evidence.Decompress(tarSplit, evidence.CompressionGzip)
	if err != nil {
		return &LayerResult{DiffID: diffID, SnapshotDir: dir, Status: StatusUnverifiable, Reason: "tar-split: " + err.Error()}, err
	}
	defer dr.Close()
	o := opt.withDefaults()
	pr, pw := io.Pipe()
	var crcDiffs []Difference
	go func() {
		pw.CloseWithError(rebuildTar(ctx, pw, storage.NewJSONUnpacker(io.LimitReader(dr, o.MaxBytes)), snap, dir, o, &crcDiffs))
	}()
	res, err := VerifyLayer(ctx, pr, Layer{MediaType: MediaTypeOCILayer, Digest: diffID, DiffID: diffID}, snap, dir, opt)
	pr.Close()
	if res != nil {
		// The rebuilt stream's own digest is its diff_id: not a blob.
		keep := res.Differences[:0]
		for _, d := range res.Differences {
			if d.What != WhatBlobDigest {
				keep = append(keep, d)
			}
		}
		res.Differences = append(crcDiffs, keep...)
		res.Digest = ""
		if len(crcDiffs) > 0 && res.Status == StatusVerified {
			res.Status = StatusTampered
		}
	}
	return res, err
}

// rebuildTar writes the tar stream a tar-split describes, file contents
// taken from dir. A file whose crc64 differs is recorded (content); a
// missing or short file is padded with zeros so that the stream keeps its
// shape and the rest of the layer is still compared.
func rebuildTar(ctx context.Context, w io.Writer, up storage.Unpacker, snap evidence.Source, dir string, o VerifyOptions, diffs *[]Difference) error {
	table := crc64.MakeTable(crc64.ISO)
	buf := make([]byte, 256<<10)
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		e, err := up.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar-split: entry %d: %w", n, err)
		}
		switch e.Type {
		case storage.SegmentType:
			if _, err := w.Write(e.Payload); err != nil {
				return err
			}
		case storage.FileType:
			if e.Size <= 0 {
				continue
			}
			if e.Size > o.MaxBytes {
				return fmt.Errorf("tar-split: %q: size %d over the limit", e.GetName(), e.Size)
			}
			name, cerr := evidence.Clean(e.GetName())
			c := crc64.New(table)
			var written int64
			if cerr == nil {
				if f, err := snap.Open(path.Join(dir, name)); err == nil {
					written, _ = io.CopyBuffer(io.MultiWriter(w, c), io.LimitReader(f, e.Size), buf)
					f.Close()
				}
			}
			if written < e.Size {
				// Missing on disk (VerifyLayer says so) or cut short.
				// VerifyLayer reports the missing file or the size.
				if err := writeZeros(w, e.Size-written, buf); err != nil {
					return err
				}
				continue
			}
			if !bytes.Equal(c.Sum(nil), e.Payload) && len(*diffs) < o.MaxDifferences {
				*diffs = append(*diffs, Difference{Path: "/" + strings.TrimPrefix(name, "./"), What: WhatContent, Detail: "crc64 differs from the layer's tar-split record"})
			}
		default:
			return errors.New("tar-split: unknown entry type")
		}
	}
}

func writeZeros(w io.Writer, n int64, buf []byte) error {
	clear(buf)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
