package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// testStore is a content store in a temporary directory.
type testStore struct {
	t    *testing.T
	root string
}

func newTestStore(t *testing.T) *testStore {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "cs/blobs/sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &testStore{t: t, root: root}
}

// put stores b under its digest (or under name when given) and returns the digest.
func (s *testStore) put(b []byte, name string) string {
	d := digestOf(b)
	if name == "" {
		name = d
	}
	if err := os.WriteFile(filepath.Join(s.root, "cs/blobs/sha256", strings.TrimPrefix(name, "sha256:")), b, 0o444); err != nil {
		s.t.Fatal(err)
	}
	return d
}

func (s *testStore) store() *Store {
	src, err := evidence.OpenDir(s.root)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { src.Close() })
	return &Store{Src: src, Dir: "cs"}
}

const dockerConfig = `{"architecture":"arm64","variant":"v8","os":"linux","author":"someone","created":"2024-01-02T03:04:05.123Z",
"config":{"User":"1000","Cmd":["run"],"Env":["A=1"],"Volumes":{"/data":{}},"StopSignal":"SIGTERM","Healthcheck":{"Test":["CMD","true"]}},
"rootfs":{"type":"layers","diff_ids":["sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]},
"history":[{"created_by":"ADD a"},{"created_by":"ENV A=1","empty_layer":true},{"created_by":"RUN b","comment":"c"}]}`

func dockerManifest(config string, cfgSize int, layers ...string) string {
	var ls []string
	for _, l := range layers {
		ls = append(ls, fmt.Sprintf(`{"mediaType":%q,"size":10,"digest":%q}`, MediaTypeDockerLayerGzip, l))
	}
	return fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"size":%d,"digest":%q},"layers":[%s]}`,
		MediaTypeDockerManifest, MediaTypeDockerConfig, cfgSize, config, strings.Join(ls, ","))
}

func TestResolveDockerManifestList(t *testing.T) {
	ts := newTestStore(t)
	cfg := ts.put([]byte(dockerConfig), "")
	la, lb := "sha256:"+strings.Repeat("c", 64), "sha256:"+strings.Repeat("d", 64)
	ts.put([]byte("not really a layer"), la) // present (under a wrong name)
	man := ts.put([]byte(dockerManifest(cfg, len(dockerConfig), la, lb)), "")
	manSize := len(dockerManifest(cfg, len(dockerConfig), la, lb))
	other := "sha256:" + strings.Repeat("e", 64)
	list := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[
{"mediaType":%q,"size":99,"digest":%q,"platform":{"architecture":"amd64","os":"linux"}},
{"mediaType":%q,"size":%d,"digest":%q,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
{"mediaType":%q,"size":99,"digest":%q,"platform":{"architecture":"unknown","os":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]}`,
		MediaTypeDockerList, MediaTypeDockerManifest, other, MediaTypeDockerManifest, manSize, man, MediaTypeOCIManifest, other)
	ix := ts.put([]byte(list), "")
	st := ts.store()

	// linux/amd64 is listed but its manifest is absent: an error naming it.
	_, err := st.Resolve(Descriptor{MediaType: MediaTypeDockerList, Digest: ix, Size: int64(len(list))}, nil)
	if !errors.Is(err, ErrBlobMissing) || !strings.Contains(err.Error(), strings.Repeat("e", 64)) {
		t.Errorf("amd64: %v", err)
	}
	img, err := st.Resolve(Descriptor{MediaType: MediaTypeDockerList, Digest: ix, Size: int64(len(list))}, &Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if img.Kind != KindImage || img.Digest != ix || img.Manifest.Digest != man || img.Platform.String() != "linux/arm64/v8" ||
		img.PlatformChoice != "picked linux/arm64/v8 (manifests[1] of 3)" || img.Manifest.MediaType != MediaTypeDockerManifest {
		t.Errorf("%+v", img)
	}
	c := img.Config
	if c.Author != "someone" || c.Created.Format("2006-01-02T15:04:05.000Z") != "2024-01-02T03:04:05.123Z" || c.User != "1000" ||
		strings.Join(c.Cmd, " ") != "run" || strings.Join(c.Volumes, ",") != "/data" || c.StopSignal != "SIGTERM" ||
		strings.Join(c.Healthcheck, " ") != "CMD true" || c.MediaType != MediaTypeDockerConfig {
		t.Errorf("config %+v", c)
	}
	if len(c.History) != 3 || c.History[0].Layer != 0 || c.History[1].Layer != -1 || !c.History[1].EmptyLayer || c.History[2].Layer != 1 || c.History[2].Comment != "c" {
		t.Errorf("history %+v", c.History)
	}
	wantChain := ChainIDs([]string{"sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("b", 64)})
	if len(img.Layers) != 2 || img.Layers[0].ChainID != "sha256:"+strings.Repeat("a", 64) || img.Layers[1].ChainID != wantChain[1] ||
		!img.Layers[0].BlobPresent || img.Layers[1].BlobPresent || img.Layers[1].Compression != "gzip" {
		t.Errorf("layers %+v", img.Layers)
	}
	if len(img.MissingBlobs) != 2 || img.MissingBlobs[0] != other || img.MissingBlobs[1] != lb { // listed once each
		t.Errorf("missing %v", img.MissingBlobs)
	}
	// No manifest for s390x: the index itself.
	img, err = st.Resolve(Descriptor{MediaType: MediaTypeDockerList, Digest: ix}, &Platform{OS: "linux", Architecture: "s390x"})
	if err != nil || img.Kind != KindIndex || img.PlatformChoice != "no manifest for linux/s390x among 3 (linux/amd64, linux/arm64/v8, unknown/unknown)" {
		t.Errorf("%v %+v", err, img)
	}
	// The layer blob under a wrong name fails its integrity check.
	if bc := st.CheckBlob(la, 10); bc.OK || !bc.Present || bc.Computed != digestOf([]byte("not really a layer")) || bc.Error != "content hashes to "+bc.Computed {
		t.Errorf("check %+v", bc)
	}
	if bc := st.CheckBlob(cfg, 1); bc.OK || bc.Error != fmt.Sprintf("blob is %d bytes, descriptor says 1", len(dockerConfig)) {
		t.Errorf("check %+v", bc)
	}
	if bc := st.CheckBlob(lb, 10); bc.OK || bc.Present || !strings.Contains(bc.Error, ErrBlobMissing.Error()) {
		t.Errorf("check %+v", bc)
	}
}

func TestChainIDs(t *testing.T) {
	// Ground truth: L1 then L2 gives 104db5b5….
	got := ChainIDs([]string{l1DiffID, l2DiffID})
	if got[0] != l1DiffID || got[1] != l2Chain {
		t.Errorf("%v", got)
	}
}

func TestResolveErrors(t *testing.T) {
	ts := newTestStore(t)
	bad := ts.put([]byte(`{"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:00"},"layers":[]}`), "")
	syntax := ts.put([]byte(`{"schemaVersion":2, "layers": [}`), "")
	unknown := ts.put([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.example+json","layers":[],"config":{}}`), "")
	wrongName := "sha256:" + strings.Repeat("f", 64)
	ts.put([]byte(`{"schemaVersion":2,"manifests":[]}`), wrongName)
	schema1 := ts.put([]byte(`{"schemaVersion":1,"fsLayers":[]}`), "")
	big := ts.put([]byte(`{"schemaVersion":2,"manifests":[]`+strings.Repeat(" ", 5000)+`}`), "")
	nested := ts.put([]byte(`{"schemaVersion":2,"manifests":[]}`), "")
	st := ts.store()

	cases := []struct {
		desc Descriptor
		is   error
		msg  string
	}{
		{Descriptor{MediaType: MediaTypeOCIManifest, Digest: bad}, ErrMalformed, "malformed manifest: wrong number of hex digits for sha256: 00"},
		{Descriptor{MediaType: MediaTypeOCIManifest, Digest: syntax}, ErrMalformed, ": offset 32: malformed manifest: invalid character"},
		{Descriptor{MediaType: MediaTypeOCIManifest, Digest: unknown}, ErrUnknownMediaType, `mediaType "application/vnd.example+json" is not an image manifest`},
		{Descriptor{MediaType: MediaTypeOCIIndex, Digest: wrongName}, ErrDigestMismatch, "content hashes to " + digestOf([]byte(`{"schemaVersion":2,"manifests":[]}`))},
		{Descriptor{MediaType: MediaTypeDockerSchema1, Digest: schema1}, ErrUnknownMediaType, "Docker schema 1"},
		{Descriptor{MediaType: "application/octet-stream", Digest: schema1}, ErrUnknownMediaType, `media type "application/octet-stream"`},
		{Descriptor{MediaType: MediaTypeOCIIndex, Digest: nested, Size: 3}, ErrSizeMismatch, "blob is 34 bytes, descriptor says 3"},
		{Descriptor{MediaType: MediaTypeOCIIndex, Digest: "sha256:xyz"}, ErrMalformed, "found non-hex character"},
		{Descriptor{MediaType: MediaTypeOCIIndex, Digest: "sha256:" + strings.Repeat("9", 64)}, ErrBlobMissing, "blob absent"},
	}
	for _, c := range cases {
		_, err := st.Resolve(c.desc, nil)
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v (want %v, %q)", c.desc.Digest, err, c.is, c.msg)
		}
	}
	st.MaxJSON = 1000
	if _, err := st.Resolve(Descriptor{MediaType: MediaTypeOCIIndex, Digest: big}, nil); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "limit 1000") {
		t.Errorf("big: %v", err)
	}
	// Sniffing a blob by digest alone.
	if _, err := st.ResolveDigest(schema1, nil); !errors.Is(err, ErrUnknownMediaType) {
		t.Errorf("sniff schema1: %v", err)
	}
	img, err := st.ResolveDigest(nested, nil)
	if err != nil || img.Kind != KindIndex || img.PlatformChoice != "no manifest for linux/amd64 among 0 ()" {
		t.Errorf("empty index: %v %+v", err, img)
	}
}

func TestResolveCorruptConfig(t *testing.T) {
	ts := newTestStore(t)
	cfg := digestOf([]byte(dockerConfig))
	ts.put([]byte(strings.Replace(dockerConfig, "someone", "SOMEONE", 1)), cfg) // same size, other bytes
	doc := dockerManifest(cfg, len(dockerConfig))
	man := ts.put([]byte(doc), "")
	img, err := ts.store().Resolve(Descriptor{MediaType: MediaTypeDockerManifest, Digest: man}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.Config != nil || strings.Join(img.CorruptBlobs, ",") != cfg || len(img.Problems) != 1 || !strings.Contains(img.Problems[0], "content hashes to") {
		t.Errorf("%+v", img)
	}
}

func TestResolveIndexNesting(t *testing.T) {
	ts := newTestStore(t)
	// An index that lists itself cannot exist (digests), but a chain can be deep.
	inner := `{"schemaVersion":2,"manifests":[]}`
	d := ts.put([]byte(inner), "")
	size := len(inner)
	for i := 0; i < MaxIndexDepth+1; i++ {
		doc := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":%q,"size":%d,"digest":%q,"platform":{"os":"linux","architecture":"amd64"}}]}`, MediaTypeOCIIndex, size, d)
		d = ts.put([]byte(doc), "")
		size = len(doc)
	}
	_, err := ts.store().Resolve(Descriptor{MediaType: MediaTypeOCIIndex, Digest: d}, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("indexes nested deeper than %d", MaxIndexDepth)) {
		t.Errorf("%v", err)
	}
}

func TestParsePlatform(t *testing.T) {
	p, err := ParsePlatform("linux/arm64/v8")
	if err != nil || p.OS != "linux" || p.Architecture != "arm64" || p.Variant != "v8" || p.String() != "linux/arm64/v8" {
		t.Errorf("%v %+v", err, p)
	}
	for _, s := range []string{"linux", "/amd64", "a/b/c/d"} {
		if _, err := ParsePlatform(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
