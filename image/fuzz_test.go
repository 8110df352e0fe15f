package image

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/klauspost/compress/gzip"
)

// The decoders must never panic and must either fail or give a document
// that re-encodes.
func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:3930a82c3430f7004c203129436666b9749764f24c811d014ed93f851080453b","size":362},"layers":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest("fuzz", b)
		if err != nil {
			return
		}
		if m.SchemaVersion != 2 || m.Config.Digest == "" {
			t.Fatalf("accepted %+v", m)
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:013186c8be0daeb5aba409480e2295e5afd755816f6a562a2d11169983737912","size":559}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := DecodeIndex("fuzz", b)
		if err != nil {
			return
		}
		for _, d := range ix.Manifests {
			if _, _, err := ParseDigest(d.Digest); err != nil || d.Size < 0 {
				t.Fatalf("accepted %+v", d)
			}
		}
		IsCheckpointIndex(ix)
		if _, err := json.Marshal(ix); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(dockerConfig))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeConfig("fuzz", b)
		if err != nil {
			return
		}
		layers := 0
		for _, h := range c.History {
			if h.Layer >= len(c.DiffIDs) {
				t.Fatalf("history points at layer %d of %d", h.Layer, len(c.DiffIDs))
			}
			if h.Layer >= 0 {
				layers++
			}
		}
		ChainIDs(c.DiffIDs)
		if _, err := json.Marshal(c); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzResolve resolves a fuzzed document stored in a content store, as
// an index and as a manifest.
func FuzzResolve(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add([]byte(dockerConfig))
	root := f.TempDir()
	blobs := filepath.Join(root, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		f.Fatal(err)
	}
	src, err := evidence.OpenDir(root)
	if err != nil {
		f.Fatal(err)
	}
	defer src.Close()
	st := &Store{Src: src, Dir: "."}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := digestOf(b)
		name := filepath.Join(blobs, d[len("sha256:"):])
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(name)
		for _, mt := range []string{MediaTypeOCIIndex, MediaTypeOCIManifest} {
			img, err := st.Resolve(Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}, nil)
			if err == nil && img.Digest != d {
				t.Fatalf("digest %s", img.Digest)
			}
		}
		st.ResolveDigest(d, nil)
	})
}

// FuzzVerifyLayer streams a fuzzed blob against the unpacked synthetic
// layer: whatever the bytes, a result comes back and nothing panics.
func FuzzVerifyLayer(f *testing.F) {
	mustRoot(f)
	raw := tarOf(f, synthLayerN(16)) // small seeds keep mutation and minimisation fast
	f.Add(raw)
	f.Add(compress(f, raw, "gzip"))
	f.Add(compress(f, raw, "zstd"))
	root := f.TempDir()
	unpack(f, filepath.Join(root, "fs"), synthLayerN(16))
	src, err := evidence.OpenDir(root)
	if err != nil {
		f.Fatal(err)
	}
	defer src.Close()
	opt := &VerifyOptions{MaxBytes: 8 << 20, MaxEntries: 1000}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := VerifyLayer(context.Background(), bytes.NewReader(b), Layer{Digest: digestOf(b)}, src, "fs", opt)
		if r == nil {
			t.Fatal("no result")
		}
		if err == nil && r.ComputedDigest != digestOf(b) {
			t.Fatalf("computed %s", r.ComputedDigest)
		}
		if err != nil && r.Status == StatusVerified {
			t.Fatalf("verified with %v", err)
		}
	})
}

// FuzzVerifyTarSplit feeds arbitrary tar-split records (gzip or not) to the
// tar rebuilder against an empty snapshot: errors, never a panic or a hang.
func FuzzVerifyTarSplit(f *testing.F) {
	f.Add([]byte(`{"type":2,"payload":"AAAA","position":0}` + "\n" + `{"type":1,"name":"a","size":3,"payload":"AAAAAAAAAAA=","position":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write(b)
		w.Close()
		snap, _ := evidence.NewArchive(context.Background(), bytes.NewReader(emptyTar), int64(len(emptyTar)), "empty.tar", nil)
		VerifyTarSplit(context.Background(), &gz, "sha256:"+strings.Repeat("0", 64), snap, ".", &VerifyOptions{MaxBytes: 1 << 20})
	})
}

var emptyTar = make([]byte, 1024)
