package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Defaults of VerifyOptions.
const (
	DefaultMaxBytes       = 64 << 30 // uncompressed bytes of one layer
	DefaultMaxRatio       = 2048     // uncompressed / compressed
	DefaultMaxEntries     = 4 << 20
	DefaultMaxDifferences = 10000
	DefaultMaxNameBytes   = 256 << 20 // bytes of names kept while verifying one layer
	ratioSlack            = 1 << 20   // bytes allowed before the ratio applies
	chunkSize             = 1 << 20
	chunkCount            = 8
)

// ErrDecompressionLimit is returned when a layer decompresses past the
// configured bounds (a decompression bomb).
var ErrDecompressionLimit = errors.New("decompression limit exceeded")

// VerifyOptions bound the work of VerifyLayer. The zero value is usable.
type VerifyOptions struct {
	MaxBytes       int64 // uncompressed bytes (DefaultMaxBytes)
	MaxRatio       int64 // uncompressed/compressed ratio (DefaultMaxRatio); < 0 disables
	MaxEntries     int   // tar entries (DefaultMaxEntries)
	MaxDifferences int   // differences kept (DefaultMaxDifferences); more are counted
	MaxNameBytes   int64 // bytes of entry names kept in memory (DefaultMaxNameBytes)
}

func (o *VerifyOptions) withDefaults() VerifyOptions {
	v := ptr.Value(o)
	if v.MaxBytes <= 0 {
		v.MaxBytes = DefaultMaxBytes
	}
	if v.MaxRatio == 0 {
		v.MaxRatio = DefaultMaxRatio
	}
	if v.MaxEntries <= 0 {
		v.MaxEntries = DefaultMaxEntries
	}
	if v.MaxDifferences <= 0 {
		v.MaxDifferences = DefaultMaxDifferences
	}
	if v.MaxNameBytes <= 0 {
		v.MaxNameBytes = DefaultMaxNameBytes
	}
	return v
}

// Difference is one way a snapshot differs from its layer.
type Difference struct {
	Path   string `json:"path"` // absolute path inside the layer ("" for blob-level differences)
	What   string `json:"what"` // one of the What* constants
	Detail string `json:"detail,omitempty"`
}

// LayerResult is the outcome of verifying one layer against its snapshot.
type LayerResult struct {
	Digest      string       `json:"digest"`
	DiffID      string       `json:"diff_id"`
	SnapshotDir string       `json:"snapshot_dir,omitempty"`
	Status      string       `json:"status"` // verified, tampered, unverifiable
	Reason      string       `json:"reason,omitempty"`
	Differences []Difference `json:"differences,omitempty"`
	// DifferencesOmitted counts differences past MaxDifferences.
	DifferencesOmitted int `json:"differences_omitted,omitempty"`
	// Errors are entries that could not be compared (unreadable on disk).
	Errors            []string `json:"errors,omitempty"`
	Entries           int      `json:"entries"`
	CompressedBytes   int64    `json:"compressed_bytes"`
	UncompressedBytes int64    `json:"uncompressed_bytes"`
	ComputedDigest    string   `json:"computed_digest,omitempty"`
	ComputedDiffID    string   `json:"computed_diff_id,omitempty"`
}

// entry flags kept per name while verifying.
const (
	flagTar    = 1 << iota // the name is an entry of the tar (or a whiteout's target)
	flagParent             // an ancestor of a tar entry
	flagOpaque             // the tar marks the directory opaque
)

type verifier struct {
	ctx     context.Context
	opt     VerifyOptions
	snap    evidence.Source // nil: digests only
	res     *LayerResult
	flags   map[string]uint8
	tbuf    []byte
	dbuf    []byte
	maxErrs int
	// nameBytes counts the bytes of the names in flags.
	nameBytes int64
}

// VerifyLayer streams a layer blob once: it checks the blob's digest and
// size against layer.Digest/layer.Size, the uncompressed stream's sha256
// against layer.DiffID, and compares every tar entry with the unpacked
// snapshot directory dir of snap (an overlayfs snapshot's fs directory),
// then walks that directory for entries the tar does not have. A nil blob
// gives status unverifiable ("blob absent"); a nil snap checks digests only.
//
// The returned error is non-nil when the layer could not be read to its end
// (corrupt stream, decompression bomb, cancelled context); the result is
// then still returned, with status unverifiable (or tampered when
// differences were already found) and the error as Reason.
func VerifyLayer(ctx context.Context, blob io.Reader, layer Layer, snap evidence.Source, dir string, opt *VerifyOptions) (*LayerResult, error) {
	res := &LayerResult{Digest: layer.Digest, DiffID: layer.DiffID, SnapshotDir: dir}
	if blob == nil {
		res.Status, res.Reason = StatusUnverifiable, "blob absent"
		return res, nil
	}
	v := &verifier{ctx: ctx, opt: opt.withDefaults(), res: res, flags: map[string]uint8{}, maxErrs: 100}
	if snap != nil {
		sub, err := evidence.Sub(snap, dir)
		if err != nil {
			res.Status, res.Reason = StatusUnverifiable, "snapshot directory: "+err.Error()
			return res, nil
		}
		v.snap = sub
		v.tbuf = make([]byte, 1<<20)
		v.dbuf = make([]byte, 1<<20)
	}
	err := v.run(blob, layer)
	switch {
	case err != nil:
		res.Reason = err.Error()
		res.Status = StatusUnverifiable
		if len(res.Differences) > 0 {
			res.Status = StatusTampered
		}
		return res, err
	case len(res.Differences) > 0 || res.DifferencesOmitted > 0:
		res.Status = StatusTampered
	case len(res.Errors) > 0:
		res.Status = StatusUnverifiable
		res.Reason = fmt.Sprintf("%d entries could not be compared; first: %s", len(res.Errors), res.Errors[0])
	case layer.DiffID == "":
		res.Status, res.Reason = StatusUnverifiable, "no diff_id to compare with"
	default:
		res.Status = StatusVerified
	}
	return res, nil
}

// readBlob is the first stage: it reads the compressed blob in chunks
// and hashes it, off the decompressor's goroutine.
func readBlob(blob io.Reader, h hash.Hash, n *int64, full chan<- []byte, free <-chan []byte, done <-chan struct{}) error {
	defer close(full)
	err := pump(blob, full, free, done, func(b []byte) error {
		h.Write(b)
		*n += int64(len(b))
		return nil
	})
	switch {
	case err == errStopped || err == io.EOF:
		return nil
	case err != nil:
		return fmt.Errorf("reading the blob at offset %d: %w", *n, err)
	}
	return nil
}

// errStopped is pump's error when done closed.
var errStopped = errors.New("stopped")

// pump is a stage of the verifier's pipeline: it fills buffers taken from
// free with r's bytes and hands them on full, each chunk first passed to
// check. It returns r's error (io.EOF at its end), check's, or errStopped
// once done is closed.
func pump(r io.Reader, full chan<- []byte, free <-chan []byte, done <-chan struct{}, check func([]byte) error) error {
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-done:
			return errStopped
		}
		n, err := fill(r, buf)
		if n > 0 {
			if err := check(buf[:n]); err != nil {
				return err
			}
			select {
			case full <- buf[:n]:
			case <-done:
				return errStopped
			}
		}
		if err != nil {
			return err
		}
	}
}

// stream is the consumer side of the decompression goroutine: chunks of
// uncompressed bytes arrive on full and go back on free.
type stream struct {
	full <-chan []byte
	free chan<- []byte
	cur  []byte
	buf  []byte
	h    hash.Hash
	n    int64
}

func (s *stream) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if s.buf != nil {
			s.free <- s.buf[:cap(s.buf)]
			s.buf = nil
		}
		b, ok := <-s.full
		if !ok {
			return 0, io.EOF
		}
		if s.h != nil {
			s.h.Write(b)
		}
		s.n += int64(len(b))
		s.buf, s.cur = b, b
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

func (v *verifier) run(blob io.Reader, layer Layer) error {
	res := v.res
	alg := "sha256"
	if layer.Digest != "" {
		if a, _, err := ParseDigest(layer.Digest); err == nil {
			alg = a
		}
	}
	done := make(chan struct{})
	blobH := newHasher(alg)
	var blobN int64
	cfull := make(chan []byte, 4)
	cfree := make(chan []byte, 4)
	for i := 0; i < 4; i++ {
		cfree <- make([]byte, chunkSize)
	}
	rerr := make(chan error, 1)
	go func() { rerr <- readBlob(blob, blobH, &blobN, cfull, cfree, done) }()
	cs := &stream{full: cfull, free: cfree}
	// stop ends both goroutines' work early and waits for the reader.
	stopped := false
	stop := func() error {
		if !stopped {
			stopped = true
			close(done)
		}
		go func() {
			for range cfull {
			}
		}()
		return <-rerr
	}
	br := bufio.NewReaderSize(cs, 256<<10)
	magic, _ := br.Peek(4)
	comp := "none"
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		comp = "gzip"
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		comp = "zstd"
	}
	if want := layerCompression[layer.MediaType]; layer.MediaType != "" && want != "" && want != comp {
		if err := stop(); err != nil {
			return err
		}
		return fmt.Errorf("media type %s says %s but the blob is %s", layer.MediaType, want, comp)
	}
	var dec io.Reader
	switch comp {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			if rerr := stop(); rerr != nil {
				return rerr
			}
			return fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		dec = zr
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			stop()
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		dec = zr
	default:
		dec = br
	}

	full := make(chan []byte, chunkCount)
	free := make(chan []byte, chunkCount)
	for i := 0; i < chunkCount; i++ {
		free <- make([]byte, chunkSize)
	}
	perr := make(chan error, 1)
	go func() {
		perr <- v.produce(dec, br, cs, comp, full, free, done)
	}()
	diffH := sha256.New()
	st := &stream{full: full, free: free, h: diffH}
	cerr := v.consume(st)
	if cerr == nil {
		// The tar's end-of-archive blocks and any padding count in the diff_id.
		_, cerr = io.Copy(io.Discard, st)
	}
	close(done)
	stopped = true
	// Unblock the producer and wait for it.
	go func() {
		for range full {
		}
	}()
	// A read failure explains the decompressor's, and a producer failure
	// (bomb, corrupt stream) the consumer's.
	perrV := <-perr
	if err := stop(); err != nil {
		return err
	}
	if perrV != nil {
		return perrV
	}
	if cerr != nil {
		return cerr
	}
	res.CompressedBytes = blobN
	res.UncompressedBytes = st.n
	res.ComputedDigest = alg + ":" + hex.EncodeToString(blobH.Sum(nil))
	res.ComputedDiffID = "sha256:" + hex.EncodeToString(diffH.Sum(nil))
	if layer.Digest != "" && res.ComputedDigest != layer.Digest {
		v.add("", WhatBlobDigest, "blob hashes to "+res.ComputedDigest)
	}
	if layer.Size > 0 && blobN != layer.Size {
		v.add("", WhatBlobDigest, fmt.Sprintf("blob is %d bytes, descriptor says %d", blobN, layer.Size))
	}
	if layer.DiffID != "" && res.ComputedDiffID != layer.DiffID {
		v.add("", WhatDiffID, "uncompressed stream hashes to "+res.ComputedDiffID)
	}
	if v.snap != nil {
		return v.walkDisk()
	}
	return nil
}

func (v *verifier) produce(dec io.Reader, br *bufio.Reader, cs *stream, comp string, full chan<- []byte, free <-chan []byte, done <-chan struct{}) error {
	defer close(full)
	var total int64
	var limit error
	err := pump(dec, full, free, done, func(b []byte) error {
		if err := v.ctx.Err(); err != nil {
			limit = err
			return err
		}
		total += int64(len(b))
		if total > v.opt.MaxBytes {
			limit = fmt.Errorf("%w: more than %d uncompressed bytes", ErrDecompressionLimit, v.opt.MaxBytes)
		} else if comp != "none" && v.opt.MaxRatio > 0 && total > ratioSlack && total/v.opt.MaxRatio > cs.n {
			limit = fmt.Errorf("%w: %d uncompressed bytes from %d compressed (ratio over %d)", ErrDecompressionLimit, total, cs.n, v.opt.MaxRatio)
		}
		return limit
	})
	switch {
	case err == errStopped:
		return nil
	case limit != nil:
		return limit
	case err == io.EOF:
		if comp == "none" {
			return nil
		}
		// Hash whatever follows the compressed stream too.
		_, err := io.Copy(io.Discard, br)
		return err
	}
	select {
	case <-done:
		return nil // stopped by the consumer: its error is the one
	default:
	}
	return fmt.Errorf("%s stream at uncompressed offset %d: %w", comp, total, err)
}

func (v *verifier) consume(st *stream) error {
	// The stream is already decompressed: its first member name must not
	// be taken for a magic number.
	topt := &evidence.TarOptions{Compression: evidence.CompressionNone, MaxMembers: v.opt.MaxEntries + 1}
	for m, err := range evidence.TarStream(v.ctx, st, topt) {
		if err != nil {
			var fe *evidence.FormatError
			if errors.As(err, &fe) {
				return fmt.Errorf("tar at offset %d: %w", fe.Offset, fe.Err)
			}
			return err
		}
		v.res.Entries++
		if v.res.Entries > v.opt.MaxEntries {
			return fmt.Errorf("%w: more than %d tar entries", ErrDecompressionLimit, v.opt.MaxEntries)
		}
		if v.snap == nil {
			continue
		}
		if err := v.entry(m.Header, m.Name, m.Data); err != nil {
			return err
		}
		if v.nameBytes > v.opt.MaxNameBytes {
			return fmt.Errorf("%w: entry names exceed %d bytes", ErrDecompressionLimit, v.opt.MaxNameBytes)
		}
	}
	return nil
}

func (v *verifier) add(p, what, detail string) {
	if len(v.res.Differences) >= v.opt.MaxDifferences {
		v.res.DifferencesOmitted++
		return
	}
	v.res.Differences = append(v.res.Differences, Difference{Path: p, What: what, Detail: detail})
}

func (v *verifier) addErr(key string, err error) {
	if len(v.res.Errors) < v.maxErrs {
		v.res.Errors = append(v.res.Errors, "/"+strings.TrimPrefix(key, ".")+": "+err.Error())
	}
}

func abs(key string) string {
	if key == "." {
		return "/"
	}
	return "/" + key
}

// mark records a name (and its ancestors as parents). A name seen twice
// replaces the first: differences found for it are dropped.
func (v *verifier) mark(key string, f uint8) {
	old := v.flags[key]
	if f&flagTar != 0 && old&flagTar != 0 {
		p := abs(key)
		kept := v.res.Differences[:0]
		for _, d := range v.res.Differences {
			if d.Path != p {
				kept = append(kept, d)
			}
		}
		v.res.Differences = kept
	}
	if _, ok := v.flags[key]; !ok {
		v.nameBytes += int64(len(key))
	}
	v.flags[key] = old | f
	for d := path.Dir(key); d != "." && d != "/"; d = path.Dir(d) {
		if v.flags[d]&(flagParent|flagTar) != 0 {
			v.flags[d] |= flagParent
			break
		}
		if _, ok := v.flags[d]; !ok {
			v.nameBytes += int64(len(d))
		}
		v.flags[d] |= flagParent
	}
}

// tarFileMode is the file type a tar member unpacks to (a hard link: a
// regular file); false for types that do not unpack.
func tarFileMode(t byte) (fs.FileMode, bool) {
	switch t {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeLink:
		return 0, true
	case tar.TypeDir:
		return fs.ModeDir, true
	case tar.TypeSymlink:
		return fs.ModeSymlink, true
	case tar.TypeChar:
		return fs.ModeDevice | fs.ModeCharDevice, true
	case tar.TypeBlock:
		return fs.ModeDevice, true
	case tar.TypeFifo:
		return fs.ModeNamedPipe, true
	}
	return 0, false
}

// tarTypeName names a member's type in evidence.TypeName's words ("file",
// "dir", …, and "hardlink").
func tarTypeName(t byte) string {
	if m, ok := tarFileMode(t); ok && t != tar.TypeLink {
		return evidence.TypeName(m)
	}
	if t == tar.TypeLink {
		return "hardlink"
	}
	return fmt.Sprintf("type %q", t)
}

// typeMatches says whether a member of type t unpacks to an entry of mode m.
func typeMatches(t byte, m fs.FileMode) bool {
	tm, ok := tarFileMode(t)
	return ok && evidence.TypeName(tm) == evidence.TypeName(m)
}

func (v *verifier) entry(hdr *tar.Header, key string, data io.Reader) error {
	if key == "" {
		v.addErr(hdr.Name, errors.New("member name climbs out of the layer"))
		return nil
	}
	base, dir := path.Base(key), path.Dir(key)
	if strings.HasPrefix(base, WhiteoutPrefix) {
		if base == WhiteoutOpaque {
			v.mark(dir, flagOpaque)
			x, err := v.snap.Xattrs(dir)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				v.addErr(dir, err)
				return nil
			}
			if !isOpaque(x) {
				v.add(abs(dir), WhatOpaque, "the tar has "+key+" but "+XattrOverlayOpaque+" is not y")
			}
			return nil
		}
		if strings.HasPrefix(base, WhiteoutMetaPrefix) {
			return nil // AUFS metadata, not unpacked
		}
		target := path.Join(dir, base[len(WhiteoutPrefix):])
		v.mark(target, flagTar)
		st, err := v.snap.Lstat(target)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			v.add(abs(target), WhatMissingOnDisk, "whiteout (the tar has "+key+")")
		case err != nil:
			v.addErr(target, err)
		case !st.IsWhiteout():
			v.add(abs(target), WhatType, "tar: whiteout, disk: "+evidence.TypeName(st.Mode))
		}
		return nil
	}
	v.mark(key, flagTar)
	st, err := v.snap.Lstat(key)
	if errors.Is(err, fs.ErrNotExist) {
		v.add(abs(key), WhatMissingOnDisk, tarTypeName(hdr.Typeflag))
		return nil
	}
	if err != nil {
		v.addErr(key, err)
		return nil
	}
	if !typeMatches(hdr.Typeflag, st.Mode) {
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeLink, tar.TypeDir, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			v.add(abs(key), WhatType, "tar: "+tarTypeName(hdr.Typeflag)+", disk: "+evidence.TypeName(st.Mode))
		default:
			v.addErr(key, fmt.Errorf("unsupported tar entry %s", tarTypeName(hdr.Typeflag)))
		}
		return nil
	}
	if hdr.Typeflag == tar.TypeLink {
		return v.hardlink(key, hdr, st)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if want, have := hdr.Mode&07777, int64(evidence.UnixMode(st.Mode)); want != have {
			v.add(abs(key), WhatMode, fmt.Sprintf("tar: %04o, disk: %04o", want, have))
		}
	}
	if int64(hdr.Uid) != int64(st.UID) || int64(hdr.Gid) != int64(st.GID) {
		v.add(abs(key), WhatOwner, fmt.Sprintf("tar: %d:%d, disk: %d:%d", hdr.Uid, hdr.Gid, st.UID, st.GID))
	}
	v.compareXattrs(key, hdr)
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		t, err := v.snap.Readlink(key)
		if err != nil {
			v.addErr(key, err)
		} else if t != hdr.Linkname {
			v.add(abs(key), WhatLinkTarget, fmt.Sprintf("tar: %s, disk: %s", hdr.Linkname, t))
		}
	case tar.TypeChar, tar.TypeBlock:
		if int64(st.DevMajor) != hdr.Devmajor || int64(st.DevMinor) != hdr.Devminor {
			v.add(abs(key), WhatDevice, fmt.Sprintf("tar: %d:%d, disk: %d:%d", hdr.Devmajor, hdr.Devminor, st.DevMajor, st.DevMinor))
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		if st.Size != hdr.Size {
			v.add(abs(key), WhatContent, fmt.Sprintf("size tar: %d, disk: %d", hdr.Size, st.Size))
			return nil
		}
		return v.compareContent(key, data)
	}
	return nil
}

// isOpaque reports an overlay opaque directory (trusted.* as root, user.*
// under a userxattr mount).
func isOpaque(x map[string][]byte) bool {
	return string(x[XattrOverlayOpaque]) == "y" || string(x[XattrOverlayOpaqueUser]) == "y"
}

// ignoredXattr names xattrs that the host or overlayfs sets on its own,
// never from the layer.
// ignoredXattr says which xattrs on disk are not the layer's to compare
// here: SELinux labels, and overlay's attributes, which unpacking writes
// from the layer's own markers (opaque directories, whiteouts; checked
// apart) or overlayfs keeps for itself (origin, impure, nlink, upper) —
// but for redirect and metacopy: no unpacked layer has them, and the
// kernel follows a redirect added to a lower directory, so one on disk is
// a difference.
func ignoredXattr(k string) bool {
	if k == "security.selinux" {
		return true
	}
	for _, ns := range []string{"trusted.overlay.", "user.overlay."} {
		if rest, ok := strings.CutPrefix(k, ns); ok {
			return rest != "redirect" && rest != "metacopy"
		}
	}
	return false
}

// compareXattrs compares the tar's SCHILY.xattr.* records, which the
// unpacker applies, with the entry's xattrs on disk.
func (v *verifier) compareXattrs(key string, hdr *tar.Header) {
	disk, err := v.snap.Xattrs(key)
	if err != nil {
		v.addErr(key, err)
		return
	}
	want := map[string]string{}
	for k, val := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattr); ok && !ignoredXattr(name) {
			want[name] = val
		}
	}
	for name, val := range want {
		got, ok := disk[name]
		switch {
		case !ok:
			v.add(abs(key), WhatXattr, name+" is missing on disk")
		case string(got) != val:
			v.add(abs(key), WhatXattr, fmt.Sprintf("%s: tar %q, disk %q", name, val, got))
		}
	}
	var extra []string
	for name := range disk {
		if _, ok := want[name]; !ok && !ignoredXattr(name) {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		v.add(abs(key), WhatXattr, fmt.Sprintf("%s=%q on disk, not in the tar", name, disk[name]))
	}
}

// compareContent reads the member's data and the disk file side by side.
func (v *verifier) compareContent(key string, tr io.Reader) error {
	f, err := v.snap.Open(key)
	if err != nil {
		v.addErr(key, err)
		return nil
	}
	defer f.Close()
	var off int64
	differ := false
	for {
		n, rerr := io.ReadFull(tr, v.tbuf)
		if n > 0 && !differ {
			m, derr := f.ReadAt(v.dbuf[:n], off)
			if m != n {
				if derr == nil || derr == io.EOF {
					differ = true
					v.add(abs(key), WhatContent, fmt.Sprintf("disk file ends at %d", off+int64(m)))
				} else {
					v.addErr(key, derr)
					differ = true
				}
			} else if !bytes.Equal(v.tbuf[:n], v.dbuf[:n]) {
				i := 0
				for i < n && v.tbuf[i] == v.dbuf[i] {
					i++
				}
				differ = true
				v.add(abs(key), WhatContent, fmt.Sprintf("first difference at byte %d", off+int64(i)))
			}
		}
		off += int64(n)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("tar data of %s: %w", key, rerr)
		}
	}
}

// hardlink checks a tar hardlink: on disk, a regular file with the content
// of its target (the same inode when the evidence records inodes).
func (v *verifier) hardlink(key string, hdr *tar.Header, st *evidence.Stat) error {
	target := evidence.TarName(hdr.Linkname)
	if target == "" {
		v.addErr(key, errors.New("hardlink target climbs out of the layer"))
		return nil
	}
	tst, err := v.snap.Lstat(target)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			v.add(abs(key), WhatContent, "hardlink target "+abs(target)+" is missing on disk")
			return nil
		}
		v.addErr(key, err)
		return nil
	}
	if st.Ino != 0 && st.Ino == tst.Ino {
		return nil
	}
	if !tst.Mode.IsRegular() || tst.Size != st.Size {
		v.add(abs(key), WhatContent, fmt.Sprintf("hardlink to %s: disk sizes %d and %d", abs(target), st.Size, tst.Size))
		return nil
	}
	a, err := v.snap.Open(key)
	if err != nil {
		v.addErr(key, err)
		return nil
	}
	defer a.Close()
	b, err := v.snap.Open(target)
	if err != nil {
		v.addErr(target, err)
		return nil
	}
	defer b.Close()
	for off := int64(0); off < st.Size; {
		n := int64(len(v.tbuf))
		if st.Size-off < n {
			n = st.Size - off
		}
		_, e1 := a.ReadAt(v.tbuf[:n], off)
		_, e2 := b.ReadAt(v.dbuf[:n], off)
		if (e1 != nil && e1 != io.EOF) || (e2 != nil && e2 != io.EOF) {
			v.addErr(key, errors.Join(e1, e2))
			return nil
		}
		if !bytes.Equal(v.tbuf[:n], v.dbuf[:n]) {
			v.add(abs(key), WhatContent, "hardlink to "+abs(target)+": contents differ on disk")
			return nil
		}
		off += n
	}
	return nil
}

// walkDisk reports what the snapshot has that the tar does not.
func (v *verifier) walkDisk() error {
	return evidence.Walk(v.ctx, v.snap, ".", func(st *evidence.Stat, err error) error {
		if err != nil {
			name := "."
			if st != nil {
				name = st.Name
			}
			v.addErr(name, err)
			return nil
		}
		if cerr := v.ctx.Err(); cerr != nil {
			return cerr
		}
		key := st.Name
		f := v.flags[key]
		if key == "." || f&flagTar != 0 || (f&flagParent != 0 && st.Mode.IsDir()) {
			if st.Mode.IsDir() && f&flagOpaque == 0 {
				x, err := v.snap.Xattrs(key)
				if err != nil {
					v.addErr(key, err)
				} else if isOpaque(x) {
					v.add(abs(key), WhatOpaque, XattrOverlayOpaque+"=y on disk but the tar has no "+path.Join(key, WhiteoutOpaque))
				}
			}
			return nil
		}
		detail := evidence.TypeName(st.Mode)
		switch {
		case st.IsWhiteout():
			detail = "whiteout"
		case st.Mode.IsRegular():
			detail = fmt.Sprintf("file, %d bytes", st.Size)
		}
		v.add(abs(key), WhatAddedOnDisk, detail)
		return nil
	})
}

// VerifyLayers verifies every layer of img against dirs[i], the snapshot
// directory of layer i inside snap. With dirs[i] == "" (not unpacked) only
// the blob is checked, and an intact blob is still "unverifiable". Missing
// blobs give status unverifiable ("blob absent"). The results are in layer
// order; errors are in each result's Reason.
func (s *Store) VerifyLayers(ctx context.Context, img *Image, snap evidence.Source, dirs []string, opt *VerifyOptions) []*LayerResult {
	out := make([]*LayerResult, len(img.Layers))
	for i, l := range img.Layers {
		dir := ""
		if i < len(dirs) {
			dir = dirs[i]
		}
		if ctx.Err() != nil {
			out[i] = &LayerResult{Digest: l.Digest, DiffID: l.DiffID, SnapshotDir: dir, Status: StatusUnverifiable, Reason: ctx.Err().Error()}
			continue
		}
		if l.Error != "" {
			out[i] = &LayerResult{Digest: l.Digest, DiffID: l.DiffID, SnapshotDir: dir, Status: StatusUnverifiable, Reason: l.Error}
			continue
		}
		f, err := s.Blob(l.Digest)
		if err != nil {
			r, _ := VerifyLayer(ctx, nil, l, snap, dir, opt)
			if !errors.Is(err, ErrBlobMissing) {
				r.Reason = err.Error()
			}
			out[i] = r
			continue
		}
		if dir == "" {
			// No snapshot to compare with: the blob's integrity is still
			// checked (digest, size, diff_id).
			r, _ := VerifyLayer(ctx, io.NewSectionReader(f, 0, f.Size()), l, nil, "", opt)
			f.Close()
			if r.Status == StatusVerified {
				r.Status, r.Reason = StatusUnverifiable, "no snapshot for chain "+l.ChainID+" (blob digest, size and diff_id verified)"
			}
			out[i] = r
			continue
		}
		r, _ := VerifyLayer(ctx, io.NewSectionReader(f, 0, f.Size()), l, snap, dir, opt)
		f.Close()
		out[i] = r
	}
	return out
}

// fill reads until buf is full or the reader fails; a clean end is io.EOF.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
