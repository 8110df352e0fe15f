package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/deadnode/deadnode/evidence"
)

// member is one entry of a synthetic layer.
type member struct {
	hdr  tar.Header
	data []byte
}

func synthLayer() []member { return synthLayerN(100000) }

// synthLayerN is a layer of every entry type; bin/tool is 4*n bytes.
func synthLayerN(n int) []member {
	return []member{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "bin/tool", Mode: 0o4755}, data: bytes.Repeat([]byte("tool"), n)},
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "bin/tool2", Linkname: "bin/tool", Mode: 0o4755}},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "tool"}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "dev/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "dev/fifo", Mode: 0o600, Uid: 7, Gid: 8}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/conf", Mode: 0o640, Uid: 1000, Gid: 100,
			PAXRecords: map[string]string{"SCHILY.xattr.user.origin": "layer"}}, data: []byte("k=v\n")},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.gone", Mode: 0o644}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "var/cache/", Mode: 0o1777}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "var/cache/.wh..wh..opq", Mode: 0o644}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./var/cache/x", Mode: 0o600}, data: []byte{}},
	}
}

func tarOf(t testing.TB, ms []member) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := m.hdr
		h.Size = int64(len(m.data))
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t testing.TB, b []byte, comp string) []byte {
	var buf bytes.Buffer
	switch comp {
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case "zstd":
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		w.Close()
	default:
		return b
	}
	return buf.Bytes()
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// unpack lays the members out as containerd's overlay applier does
// (whiteouts as char 0:0, opaque dirs with trusted.overlay.opaque=y).
func unpack(t testing.TB, dir string, ms []member) {
	for _, m := range ms {
		name := strings.TrimPrefix(m.hdr.Name, "./")
		p := filepath.Join(dir, name)
		base := filepath.Base(p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case base == WhiteoutOpaque:
			err = unix.Setxattr(filepath.Dir(p), XattrOverlayOpaque, []byte("y"), 0)
			if err == nil {
				continue
			}
		case strings.HasPrefix(base, WhiteoutPrefix):
			err = unix.Mknod(filepath.Join(filepath.Dir(p), base[4:]), unix.S_IFCHR, 0)
		case m.hdr.Typeflag == tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case m.hdr.Typeflag == tar.TypeReg:
			err = os.WriteFile(p, m.data, 0o600)
		case m.hdr.Typeflag == tar.TypeLink:
			err = os.Link(filepath.Join(dir, m.hdr.Linkname), p)
		case m.hdr.Typeflag == tar.TypeSymlink:
			err = os.Symlink(m.hdr.Linkname, p)
		case m.hdr.Typeflag == tar.TypeChar:
			err = unix.Mknod(p, unix.S_IFCHR, int(unix.Mkdev(uint32(m.hdr.Devmajor), uint32(m.hdr.Devminor))))
		case m.hdr.Typeflag == tar.TypeFifo:
			err = unix.Mkfifo(p, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(base, WhiteoutPrefix) || m.hdr.Typeflag == tar.TypeLink {
			continue
		}
		for k, v := range m.hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if err := unix.Lsetxattr(p, name, []byte(v), 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.Lchown(p, m.hdr.Uid, m.hdr.Gid); err != nil {
			t.Fatal(err)
		}
		if m.hdr.Typeflag != tar.TypeSymlink {
			mode := os.FileMode(m.hdr.Mode & 0o777)
			if m.hdr.Mode&0o4000 != 0 {
				mode |= os.ModeSetuid
			}
			if m.hdr.Mode&0o2000 != 0 {
				mode |= os.ModeSetgid
			}
			if m.hdr.Mode&0o1000 != 0 {
				mode |= os.ModeSticky
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mustRoot(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes device nodes, owners and trusted.* xattrs: run it as root")
	}
}

func synthSetup(t *testing.T, comp string) (blob []byte, l Layer, src evidence.Source, root string) {
	mustRoot(t)
	ms := synthLayer()
	raw := tarOf(t, ms)
	blob = compress(t, raw, comp)
	root = t.TempDir()
	unpack(t, filepath.Join(root, "fs"), ms)
	s, err := evidence.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mt := map[string]string{"gzip": MediaTypeOCILayerGzip, "zstd": MediaTypeOCILayerZstd, "none": MediaTypeOCILayer}[comp]
	return blob, Layer{MediaType: mt, Digest: digestOf(blob), Size: int64(len(blob)), DiffID: digestOf(raw)}, s, root
}

func TestVerifySyntheticAllCompressions(t *testing.T) {
	for _, comp := range []string{"gzip", "zstd", "none"} {
		blob, l, src, _ := synthSetup(t, comp)
		r, err := VerifyLayer(context.Background(), bytes.NewReader(blob), l, src, "fs", nil)
		if err != nil || r.Status != StatusVerified || len(r.Differences) != 0 || len(r.Errors) != 0 {
			t.Errorf("%s: %v %+v", comp, err, r)
		}
		if r.Entries != 12 || r.ComputedDigest != l.Digest || r.ComputedDiffID != l.DiffID || r.CompressedBytes != l.Size {
			t.Errorf("%s: %+v", comp, r)
		}
	}
}

func sortedDiffs(r *LayerResult) []Difference {
	got := append([]Difference(nil), r.Differences...)
	sort.Slice(got, func(a, b int) bool {
		if got[a].Path != got[b].Path {
			return got[a].Path < got[b].Path
		}
		if got[a].What != got[b].What {
			return got[a].What < got[b].What
		}
		return got[a].Detail < got[b].Detail
	})
	return got
}

func TestVerifySyntheticTampered(t *testing.T) {
	blob, l, src, root := synthSetup(t, "gzip")
	fs := func(p string) string { return filepath.Join(root, "fs", p) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Break the hardlink and change the copy.
	must(os.Remove(fs("bin/tool2")))
	must(os.WriteFile(fs("bin/tool2"), bytes.Repeat([]byte("tool"), 100000)[:399999], 0o755))
	// Device numbers.
	must(os.Remove(fs("dev/null")))
	must(unix.Mknod(fs("dev/null"), unix.S_IFCHR, int(unix.Mkdev(1, 5))))
	must(os.Chmod(fs("dev/null"), 0o666))
	// Type: the fifo becomes a file.
	must(os.Remove(fs("dev/fifo")))
	must(os.WriteFile(fs("dev/fifo"), nil, 0o600))
	// Whiteout replaced by a file, a whiteout added, an opaque marker added.
	must(os.Remove(fs("etc/gone")))
	must(os.WriteFile(fs("etc/gone"), []byte("back"), 0o644))
	must(unix.Mknod(fs("etc/other"), unix.S_IFCHR, 0))
	must(unix.Setxattr(fs("bin"), XattrOverlayOpaque, []byte("y"), 0))
	// An xattr changed and one added.
	must(unix.Setxattr(fs("etc/conf"), "user.origin", []byte("other"), 0))
	must(unix.Setxattr(fs("etc/conf"), "security.capability", []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
	// Setuid bit dropped and a file removed.
	must(os.Chmod(fs("bin/tool"), 0o755))
	must(os.Remove(fs("var/cache/x")))
	// Wrong diff_id and blob digest in the descriptor.
	l.DiffID = "sha256:" + strings.Repeat("0", 64)
	l.Digest = "sha256:" + strings.Repeat("1", 64)

	r, err := VerifyLayer(context.Background(), bytes.NewReader(blob), l, src, "fs", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Difference{
		{"", WhatBlobDigest, "blob hashes to " + digestOf(blob)},
		{"", WhatDiffID, "uncompressed stream hashes to " + digestOf(tarOf(t, synthLayer()))},
		{"/bin", WhatOpaque, "trusted.overlay.opaque=y on disk but the tar has no bin/.wh..wh..opq"},
		{"/bin/tool", WhatMode, "tar: 4755, disk: 0755"},
		{"/bin/tool2", WhatContent, "hardlink to /bin/tool: disk sizes 399999 and 400000"},
		{"/dev/fifo", WhatType, "tar: fifo, disk: file"},
		{"/dev/null", WhatDevice, "tar: 1:3, disk: 1:5"},
		{"/etc/conf", WhatXattr, `security.capability="\x01\x00\x00\x02\x00 \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" on disk, not in the tar`},
		{"/etc/conf", WhatXattr, `user.origin: tar "layer", disk "other"`},
		{"/etc/gone", WhatType, "tar: whiteout, disk: file"},
		{"/etc/other", WhatAddedOnDisk, "whiteout"},
		{"/var/cache/x", WhatMissingOnDisk, "file"},
	}
	if got := sortedDiffs(r); r.Status != StatusTampered || !sameDiffs(got, want) {
		t.Errorf("%s\n got  %v\n want %v", r.Status, got, want)
	}
}

func TestVerifyDigestsOnly(t *testing.T) {
	blob, l, _, _ := synthSetup(t, "zstd")
	r, err := VerifyLayer(context.Background(), bytes.NewReader(blob), l, nil, "", nil)
	if err != nil || r.Status != StatusVerified || r.Entries != 12 {
		t.Fatalf("%v %+v", err, r)
	}
	r, _ = VerifyLayer(context.Background(), nil, l, nil, "", nil)
	if r.Status != StatusUnverifiable || r.Reason != "blob absent" {
		t.Errorf("%+v", r)
	}
}

func TestVerifyCorruptStreams(t *testing.T) {
	blob, l, src, _ := synthSetup(t, "gzip")
	// Truncated gzip.
	r, err := VerifyLayer(context.Background(), bytes.NewReader(blob[:len(blob)/2]), l, src, "fs", nil)
	if err == nil || r.Status != StatusUnverifiable || !strings.Contains(r.Reason, "unexpected EOF") {
		t.Errorf("truncated: %v %+v", err, r)
	}
	// The media type says gzip, the blob is a plain tar.
	raw := tarOf(t, synthLayer())
	_, err = VerifyLayer(context.Background(), bytes.NewReader(raw), l, src, "fs", nil)
	if err == nil || err.Error() != "media type application/vnd.oci.image.layer.v1.tar+gzip says gzip but the blob is none" {
		t.Errorf("media type: %v", err)
	}
	// Not a tar at all.
	junk := compress(t, bytes.Repeat([]byte("junk"), 1000), "gzip")
	_, err = VerifyLayer(context.Background(), bytes.NewReader(junk), Layer{MediaType: MediaTypeOCILayerGzip}, src, "fs", nil)
	if err == nil || !strings.Contains(err.Error(), "tar at offset") {
		t.Errorf("junk: %v", err)
	}
	// A missing snapshot directory.
	r, err = VerifyLayer(context.Background(), bytes.NewReader(blob), l, src, "nope", nil)
	if err != nil || r.Status != StatusUnverifiable || !strings.HasPrefix(r.Reason, "snapshot directory: ") {
		t.Errorf("no dir: %v %+v", err, r)
	}
	// A cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = VerifyLayer(ctx, bytes.NewReader(blob), l, src, "fs", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
}

func bombLayer(t testing.TB, comp string, size int) []byte {
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch comp {
	case "gzip":
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestCompression)
	case "zstd":
		w, _ = zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	}
	tw := tar.NewWriter(w)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: int64(size)})
	zero := make([]byte, 1<<20)
	for left := size; left > 0; left -= len(zero) {
		tw.Write(zero[:min(left, len(zero))])
	}
	tw.Close()
	w.Close()
	return buf.Bytes()
}

func TestVerifyBombs(t *testing.T) {
	for _, comp := range []string{"gzip", "zstd"} {
		blob := bombLayer(t, comp, 48<<20)
		l := Layer{MediaType: map[string]string{"gzip": MediaTypeOCILayerGzip, "zstd": MediaTypeOCILayerZstd}[comp]}
		// The ratio bound (zstd squeezes zeros far past 2048:1).
		r, err := VerifyLayer(context.Background(), bytes.NewReader(blob), l, nil, "", &VerifyOptions{MaxRatio: 100})
		if !errors.Is(err, ErrDecompressionLimit) || r.Status != StatusUnverifiable || !strings.Contains(r.Reason, "(ratio over 100)") {
			t.Errorf("%s ratio (%d bytes): %v %+v", comp, len(blob), err, r)
		}
		// The total bound.
		_, err = VerifyLayer(context.Background(), bytes.NewReader(blob), l, nil, "", &VerifyOptions{MaxBytes: 32 << 20, MaxRatio: -1})
		if !errors.Is(err, ErrDecompressionLimit) || err.Error() != "decompression limit exceeded: more than 33554432 uncompressed bytes" {
			t.Errorf("%s total: %v", comp, err)
		}
	}
	// Name memory bound.
	{
		_, l, src, _ := synthSetup(t, "none")
		raw := tarOf(t, synthLayer())
		_, err := VerifyLayer(context.Background(), bytes.NewReader(raw), l, src, "fs", &VerifyOptions{MaxNameBytes: 20})
		if !errors.Is(err, ErrDecompressionLimit) || err.Error() != "decompression limit exceeded: entry names exceed 20 bytes" {
			t.Errorf("names: %v", err)
		}
	}
	// Entry count bound.
	ms := synthLayer()
	_, err := VerifyLayer(context.Background(), bytes.NewReader(tarOf(t, ms)), Layer{}, nil, "", &VerifyOptions{MaxEntries: 5})
	if !errors.Is(err, ErrDecompressionLimit) || err.Error() != "decompression limit exceeded: more than 5 tar entries" {
		t.Errorf("entries: %v", err)
	}
}

func TestVerifyDifferenceCap(t *testing.T) {
	mustRoot(t)
	root := t.TempDir()
	for i := 0; i < 30; i++ {
		os.WriteFile(filepath.Join(root, "f"+string(rune('a'+i%26))+strings.Repeat("x", i/26)), nil, 0o644)
	}
	src, err := evidence.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	raw := tarOf(t, nil)
	r, err := VerifyLayer(context.Background(), bytes.NewReader(raw), Layer{DiffID: digestOf(raw)}, src, ".", &VerifyOptions{MaxDifferences: 10})
	if err != nil || r.Status != StatusTampered || len(r.Differences) != 10 || r.DifferencesOmitted != 20 {
		t.Errorf("%v %s %d %d", err, r.Status, len(r.Differences), r.DifferencesOmitted)
	}
}

func TestVerifyLayersWithoutSnapshot(t *testing.T) {
	src := fixtureNode(t)
	st := &Store{Src: src, Dir: contentDir}
	img, err := st.ResolveDigest(appManifest, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := st.VerifyLayers(context.Background(), img, src, []string{"", snapshotDir + "3/fs"}, nil)
	if r := res[0]; r.Status != StatusUnverifiable || r.Reason != "no snapshot for chain "+l1DiffID+" (blob digest, size and diff_id verified)" ||
		r.ComputedDiffID != l1DiffID || r.Entries != 296 {
		t.Errorf("%+v", r)
	}
	if r := res[1]; r.Status != StatusVerified {
		t.Errorf("%+v", r)
	}
}

// An overlay redirect or metacopy attribute on disk is a difference: no
// unpacked layer has one, and the kernel follows a redirect added to a
// lower directory (all of trusted.overlay.* was passed over).
func TestVerifyReportsOverlayRedirect(t *testing.T) {
	blob, l, src, root := synthSetup(t, "gzip")
	if err := unix.Setxattr(filepath.Join(root, "fs", "bin"), "trusted.overlay.redirect", []byte("/tmp/evil"), 0); err != nil {
		t.Fatal(err)
	}
	r, err := VerifyLayer(context.Background(), bytes.NewReader(blob), l, src, "fs", nil)
	if err != nil || r.Status != StatusTampered || !strings.Contains(fmt.Sprint(r.Differences), "trusted.overlay.redirect") {
		t.Errorf("%s %+v %v", r.Status, r.Differences, err)
	}
}
