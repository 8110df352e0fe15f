package containerd

import (
	"errors"
	"io/fs"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/image"
	bolt "go.etcd.io/bbolt"
)

// readContent reads a namespace's content/blob/<digest> buckets and joins
// each with its blob file.
func (s *Store) readContent(ns string, nb *bolt.Bucket, w where) {
	cb := nb.Bucket([]byte(bucketContent))
	if cb == nil {
		return
	}
	eachRecord(cb, bucketBlob, w.sub(bucketContent), false, func(k []byte, b *bolt.Bucket, bw where) {
		var warn []evidence.Warning
		c := model.Content{Runtime: model.RuntimeContainerd, Namespace: ns, Digest: string(k), BlobSize: -1}
		c.Size = readVarint(b, keySize, bw, &warn)
		c.CreatedAt, c.UpdatedAt, c.Labels = stamps(b, bw, &warn)
		if validDigest(c.Digest) {
			c.BlobPath = s.blobPath(c.Digest)
			if size, ok := s.blobSize(c.Digest); ok {
				c.Present, c.BlobSize = true, size
				if size != c.Size {
					warn = append(warn, bw.warnf("blob file is %d bytes, the record says %d", size, c.Size))
				}
			}
		} else {
			warn = append(warn, bw.warnf("not a valid digest; no blob path derived"))
		}
		c.Warnings = warn
		s.Warnings = append(s.Warnings, warn...)
		s.Content = append(s.Content, c)
	})
}

// contentDir is the content store inside the evidence (no leading "/").
func (s *Store) contentDir() string { return s.rel(path.Join(s.Root, contentStoreDir)) }

// ContentStore returns the node's content store (blobs of images and
// checkpoints).
func (s *Store) ContentStore() *image.Store {
	return &image.Store{Src: s.src, Dir: s.contentDir()}
}

func (s *Store) blobPath(d string) string {
	alg, hex, _ := strings.Cut(d, ":")
	return path.Join(s.Root, contentBlobsDir, alg, hex)
}

// blobSize says whether the content store holds a regular file for a
// digest, and its size. Each algorithm's directory is listed once.
func (s *Store) blobSize(d string) (int64, bool) {
	alg, hex, _ := strings.Cut(d, ":")
	if s.blobs == nil {
		s.blobs = map[string]map[string]int64{}
	}
	files, ok := s.blobs[alg]
	if !ok {
		files = map[string]int64{}
		dir := s.rel(path.Join(s.Root, contentBlobsDir, alg))
		ents, err := s.src.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.Warnings = append(s.Warnings, evidence.WarningOf(pathutil.Denied(s.src, dir, err)))
		}
		for _, e := range ents {
			if e.Mode.IsRegular() {
				files[path.Base(e.Name)] = e.Size
			}
		}
		s.blobs[alg] = files
	}
	size, ok := files[hex]
	return size, ok
}
