package image

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/deadnode/deadnode/evidence"
)

// DefaultMaxJSON bounds the size of a manifest, index or config blob.
const DefaultMaxJSON = 4 << 20

// MaxIndexDepth bounds the nesting of indexes inside indexes.
const MaxIndexDepth = 4

var (
	// ErrBlobMissing is returned when a referenced blob is not in the store.
	ErrBlobMissing = errors.New("blob absent from the content store")
	// ErrDigestMismatch is returned when a blob's content does not hash to its name.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnknownMediaType is returned for a media type this package does not read.
	ErrUnknownMediaType = errors.New("unknown media type")
	// ErrTooLarge is returned when a JSON blob exceeds the bound.
	ErrTooLarge = errors.New("blob exceeds the size bound")
	// ErrSizeMismatch is returned when a blob's size differs from its descriptor.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrMalformed is returned for a document that does not decode.
	ErrMalformed = errors.New("malformed document")
)

// Store reads blobs of a containerd content store inside the evidence.
type Store struct {
	Src evidence.Source
	// Dir is the content store root (…/io.containerd.content.v1.content);
	// a path ending in blobs/sha256 is accepted as well.
	Dir string
	// MaxJSON bounds manifests, indexes and configs (DefaultMaxJSON when 0).
	MaxJSON int64
}

func (s *Store) blobDir() string {
	d := strings.Trim(path.Clean("/"+s.Dir), "/")
	if d == "" {
		d = "."
	}
	if path.Base(d) == "sha256" && path.Base(path.Dir(d)) == ContentBlobsDir {
		return path.Dir(d)
	}
	return path.Join(d, ContentBlobsDir)
}

// ParseDigest validates a digest string ("sha256:<64 hex>", sha384 or
// sha512) and returns its algorithm and hex.
func ParseDigest(d string) (alg, hexPart string, err error) {
	h, err := v1.NewHash(d)
	if err != nil {
		return "", "", fmt.Errorf("digest %q: %w", d, err)
	}
	if h.Algorithm != "sha256" && h.Algorithm != "sha384" && h.Algorithm != "sha512" {
		return "", "", fmt.Errorf("digest %q: unsupported algorithm", d)
	}
	return h.Algorithm, h.Hex, nil
}

func newHasher(alg string) hash.Hash {
	switch alg {
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return sha256.New()
}

// BlobPath returns the name of a blob inside the evidence.
func (s *Store) BlobPath(dgst string) (string, error) {
	alg, hx, err := ParseDigest(dgst)
	if err != nil {
		return "", err
	}
	return path.Join(s.blobDir(), alg, hx), nil
}

// Blob opens a blob. A missing blob gives an error wrapping ErrBlobMissing.
func (s *Store) Blob(dgst string) (evidence.File, error) {
	p, err := s.BlobPath(dgst)
	if err != nil {
		return nil, err
	}
	f, err := s.Src.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %s: %w", s.Src.String(), p, ErrBlobMissing)
		}
		return nil, err
	}
	return f, nil
}

// HasBlob reports whether a blob is present.
func (s *Store) HasBlob(dgst string) bool {
	p, err := s.BlobPath(dgst)
	if err != nil {
		return false
	}
	st, err := s.Src.Lstat(p)
	return err == nil && st.Mode.IsRegular()
}

// ReadBlob reads a whole blob of at most max bytes, checking its size
// against want (when want >= 0) and its content against its digest.
func (s *Store) ReadBlob(dgst string, want, max int64) ([]byte, error) {
	alg, _, err := ParseDigest(dgst)
	if err != nil {
		return nil, err
	}
	p, _ := s.BlobPath(dgst)
	f, err := s.Blob(dgst)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if want >= 0 && f.Size() != want {
		return nil, &evidence.FormatError{File: p, Offset: -1, Msg: fmt.Sprintf("blob is %d bytes, descriptor says %d", f.Size(), want), Err: ErrSizeMismatch}
	}
	if f.Size() > max {
		return nil, &evidence.FormatError{File: p, Offset: -1, Msg: fmt.Sprintf("blob is %d bytes, limit %d", f.Size(), max), Err: ErrTooLarge}
	}
	buf := make([]byte, f.Size())
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, f.Size()), buf); err != nil {
		return nil, &evidence.FormatError{File: p, Offset: -1, Msg: "read", Err: err}
	}
	h := newHasher(alg)
	h.Write(buf)
	if got := alg + ":" + hex.EncodeToString(h.Sum(nil)); got != dgst {
		return nil, &evidence.FormatError{File: p, Offset: -1, Msg: "content hashes to " + got, Err: ErrDigestMismatch}
	}
	return buf, nil
}

// BlobCheck is the result of checking one blob's integrity.
type BlobCheck struct {
	Digest   string `json:"digest"`
	Present  bool   `json:"present"`
	Size     int64  `json:"size"`            // size on disk
	WantSize int64  `json:"want_size"`       // descriptor size, -1 when unknown
	Computed string `json:"computed"`        // digest of the content
	OK       bool   `json:"ok"`              // present, right size, right digest
	Error    string `json:"error,omitempty"` // why not OK
}

// CheckBlob hashes a whole blob in one pass and compares it with its
// name and with want (the descriptor size, or -1).
func (s *Store) CheckBlob(dgst string, want int64) BlobCheck {
	c := BlobCheck{Digest: dgst, WantSize: want}
	alg, _, err := ParseDigest(dgst)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	f, err := s.Blob(dgst)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	defer f.Close()
	c.Present = true
	c.Size = f.Size()
	h := newHasher(alg)
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
		c.Error = err.Error()
		return c
	}
	c.Computed = alg + ":" + hex.EncodeToString(h.Sum(nil))
	switch {
	case c.Computed != dgst:
		c.Error = "content hashes to " + c.Computed
	case want >= 0 && want != c.Size:
		c.Error = fmt.Sprintf("blob is %d bytes, descriptor says %d", c.Size, want)
	default:
		c.OK = true
	}
	return c
}

func (s *Store) maxJSON() int64 {
	if s.MaxJSON > 0 {
		return s.MaxJSON
	}
	return DefaultMaxJSON
}

// docKind sniffs a JSON document: "index", "manifest", or "" when unclear.
