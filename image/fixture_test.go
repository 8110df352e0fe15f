package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"golang.org/x/sys/unix"

	"github.com/deadnode/deadnode/internal/testfix"
)

const (
	contentDir  = "var/lib/containerd/io.containerd.content.v1.content"
	snapshotDir = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/"

	busyboxManifest = "sha256:76c06ca272948465b4b64383dd9bc40a781c6ef4338fda11380c37f6c7c48724"
	busyboxConfig   = "sha256:3930a82c3430f7004c203129436666b9749764f24c811d014ed93f851080453b"
	appManifest     = "sha256:013186c8be0daeb5aba409480e2295e5afd755816f6a562a2d11169983737912"
	appConfig       = "sha256:259696f574f3e9aafa0411eecec9cd90eda29444756aecab29b3f425f583d6a9"
	pauseManifest   = "sha256:2cb17b016eff2d27c050ed673f71b4cde296bf3f579e05e78620681a4ff43ff0"
	pauseConfig     = "sha256:0c2b83e72e98d59ab8d0620d149b216309293175150d28355f98ab5d4539382a"

	l1Blob   = "sha256:b610110480c53f6e1eb3f708ea2438eded51a6930b38e13a13475fd0f4b71b54"
	l1DiffID = "sha256:9086f7b050af0616c686578a9f2012b655bb8efb1b137cca405a01a1d377d16e"
	l2Blob   = "sha256:70f36798eb87bce9cdde9a139a8004af39e4105d4c0420c7008c9a13fc1b87b5"
	l2DiffID = "sha256:7643394bb005c9a126f8b3427c3a054004cf16fde54809ad4f41d276fe25a0d3"
	l2Chain  = "sha256:104db5b53a3212e2ed51eb35f3e14cf310124f88f9c025faedf084e1a9390a1c"
	pBlob    = "sha256:8203f9266856eeb2721500b75aca435cf532c2582797b66cd5e2f96266b07b6e"
	pDiffID  = "sha256:b7311e45e868319daf97dd3368d17e631b5d9c4470d4156f0cf71bd01899c2af"

	ckptK8s     = "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96"
	ckptDefault = "sha256:d3d78e7b9623e022a3a060efa46f163236ebf1bb9195f9ef3d9b7876b96e73b1"
)

func fixtureTar(t testing.TB) string {
	return testfix.NodeArchive(t)
}

var (
	nodeOnce sync.Once
	nodeSrc  evidence.Source
	nodeErr  error
)

// fixtureNode is the archive of the containerd node, opened once.
func fixtureNode(t testing.TB) evidence.Source {
	nodeOnce.Do(func() {
		a, err := evidence.OpenArchive(context.Background(), fixtureTar(t), nil)
		if err != nil {
			nodeErr = err
			return
		}
		nodeSrc, nodeErr = evidence.Sub(a, "node")
	})
	if nodeErr != nil {
		t.Fatal(nodeErr)
	}
	return nodeSrc
}

func TestResolveFixtureImages(t *testing.T) {
	st := &Store{Src: fixtureNode(t), Dir: contentDir}
	cases := []struct {
		manifest, config string
		layers           []Layer
		entrypoint       []string
		cmd              []string
		workdir          string
		history          []string
	}{
		{busyboxManifest, busyboxConfig, []Layer{{Digest: l1Blob, Size: 1032007, DiffID: l1DiffID, ChainID: l1DiffID}}, nil, []string{"sh"}, "", []string{"forge: layer l1"}},
		{appManifest, appConfig, []Layer{{Digest: l1Blob, Size: 1032007, DiffID: l1DiffID, ChainID: l1DiffID}, {Digest: l2Blob, Size: 487, DiffID: l2DiffID, ChainID: l2Chain}},
			[]string{"/app/server.sh"}, nil, "/app", []string{"forge: layer l1", "forge: layer l2"}},
		{pauseManifest, pauseConfig, []Layer{{Digest: pBlob, Size: 302358, DiffID: pDiffID, ChainID: pDiffID}}, []string{"/pause"}, nil, "", []string{"forge: layer p"}},
	}
	for _, c := range cases {
		img, err := st.ResolveDigest(c.manifest, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.manifest, err)
		}
		if img.Kind != KindImage || img.Digest != c.manifest || img.MediaType != MediaTypeOCIManifest {
			t.Errorf("%s: kind %q digest %q media type %q", c.manifest, img.Kind, img.Digest, img.MediaType)
		}
		if img.Config == nil || img.Config.Digest != c.config {
			t.Fatalf("%s: config %+v", c.manifest, img.Config)
		}
		if img.Platform.String() != "linux/amd64" {
			t.Errorf("%s: platform %s", c.manifest, img.Platform)
		}
		if got := img.Config.Created.Format("2006-01-02T15:04:05Z"); got != "2023-11-14T22:13:20Z" {
			t.Errorf("%s: created %s", c.manifest, got)
		}
		if strings.Join(img.Config.Entrypoint, " ") != strings.Join(c.entrypoint, " ") || strings.Join(img.Config.Cmd, " ") != strings.Join(c.cmd, " ") || img.Config.WorkingDir != c.workdir {
			t.Errorf("%s: entrypoint %q cmd %q workdir %q", c.manifest, img.Config.Entrypoint, img.Config.Cmd, img.Config.WorkingDir)
		}
		var hist []string
		for i, h := range img.Config.History {
			hist = append(hist, h.CreatedBy)
			if h.EmptyLayer || h.Layer != i {
				t.Errorf("%s: history %d: %+v", c.manifest, i, h)
			}
		}
		if strings.Join(hist, "|") != strings.Join(c.history, "|") {
			t.Errorf("%s: history %q", c.manifest, hist)
		}
		if len(img.Layers) != len(c.layers) {
			t.Fatalf("%s: %d layers", c.manifest, len(img.Layers))
		}
		for i, l := range img.Layers {
			w := c.layers[i]
			if l.Digest != w.Digest || l.Size != w.Size || l.DiffID != w.DiffID || l.ChainID != w.ChainID || !l.BlobPresent ||
				l.MediaType != MediaTypeOCILayerGzip || l.Compression != "gzip" || l.Error != "" {
				t.Errorf("%s: layer %d: %+v", c.manifest, i, l)
			}
		}
		if len(img.MissingBlobs) != 0 || len(img.Problems) != 0 {
			t.Errorf("%s: missing %v problems %v", c.manifest, img.MissingBlobs, img.Problems)
		}
	}
	img, _ := st.ResolveDigest(appManifest, nil)
	if img.Config.Labels["org.opencontainers.image.title"] != "forge-shop-app" || strings.Join(img.Config.Env, ",") != "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,APP_MODE=prod" ||
		strings.Join(img.Config.ExposedPorts, ",") != "8080/tcp" {
		t.Errorf("app config: %+v", img.Config)
	}
	img, _ = st.ResolveDigest(pauseManifest, nil)
	if img.Config.User != "65535:65535" {
		t.Errorf("pause user %q", img.Config.User)
	}
}

func TestResolveFixtureCheckpoints(t *testing.T) {
	st := &Store{Src: fixtureNode(t), Dir: contentDir + "/blobs/sha256"}
	cases := []struct {
		index, criu, config, rw, manifest, name string
		criuSize, rwSize                        int64
	}{
		{ckptK8s, "sha256:e0887a740405e8e82b548ba2e2a06fa92d61b1da04314b768ed186adad0a5d05", "sha256:9d70415ce127190075a69ee0f6db030856c6719132d70174f50e728c164ea59e",
			"sha256:42b65dc18ad7d0a1e2d79c437cfb324bdd4b8fd59d3cf4638c6b7ca7c5fac4cf", appManifest, "forge.local/shop/app:1.0", 480256, 1065188},
		{ckptDefault, "sha256:89fecbd6387b971748b7ef9d8e01fb663a5a5384f1973b2c114f5a055bade86b", "sha256:3fe62cde350669772316425807e5a54ce85f7fb3fea48ba4d3e138aead5f446d",
			"sha256:c7be85da7bce0d671ada1e365ccae20bc719821750afa1e6713b6cb00b9fad8c", busyboxManifest, "forge.local/library/busybox:1.35", 179200, 233},
	}
	for _, c := range cases {
		img, err := st.ResolveDigest(c.index, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.index, err)
		}
		cp := img.Checkpoint
		if img.Kind != KindCheckpoint || cp == nil || img.Index == nil || len(img.Index.Manifests) != 4 {
			t.Fatalf("%s: kind %q checkpoint %+v", c.index, img.Kind, cp)
		}
		if cp.CRIU == nil || cp.CRIU.Digest != c.criu || cp.CRIU.Size != c.criuSize || !cp.CRIU.BlobPresent ||
			cp.Config == nil || cp.Config.Digest != c.config || cp.RW == nil || cp.RW.Digest != c.rw || cp.RW.Size != c.rwSize ||
			cp.Manifest == nil || cp.Manifest.Digest != c.manifest || cp.ImageName != c.name || len(cp.Others) != 0 {
			t.Errorf("%s: %+v", c.index, cp)
		}
		if img.Base == nil || img.Base.Digest != c.manifest || img.Base.Kind != KindImage || img.Platform.String() != "linux/amd64" {
			t.Errorf("%s: base %+v platform %s", c.index, img.Base, img.Platform)
		}
		if len(img.Problems) != 0 || len(img.MissingBlobs) != 0 {
			t.Errorf("%s: problems %v missing %v", c.index, img.Problems, img.MissingBlobs)
		}
		// The RW diff of the checkpoint is a layer like any other: its blob is intact.
		if bc := st.CheckBlob(cp.RW.Digest, cp.RW.Size); !bc.OK {
			t.Errorf("%s: rw blob: %+v", c.index, bc)
		}
		if bc := st.CheckBlob(cp.CRIU.Digest, cp.CRIU.Size); !bc.OK {
			t.Errorf("%s: criu blob: %+v", c.index, bc)
		}
	}
}

// snapshotsOf maps each fixture image to its layers' snapshot directories
// (GROUND_TRUTH.md: 1 = pause, 2 = L1 and 3 = L2 in k8s.io, 4 = L1 in default).
var fixtureSnapshots = []struct {
	ns, manifest string
	dirs         []string
}{
	{"k8s.io", busyboxManifest, []string{"2"}},
	{"k8s.io", appManifest, []string{"2", "3"}},
	{"k8s.io", pauseManifest, []string{"1"}},
	{"default", busyboxManifest, []string{"4"}},
}

func snapDirs(ids []string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, snapshotDir+id+"/fs")
	}
	return out
}

type layerWant struct {
	entries      int
	uncompressed int64
}

var fixtureLayers = map[string]layerWant{
	l1Blob: {296, 2140160},
	l2Blob: {11, 10240},
	pBlob:  {1, 686080},
}

func TestVerifyFixtureLayers(t *testing.T) {
	src := fixtureNode(t)
	st := &Store{Src: src, Dir: contentDir}
	for _, c := range fixtureSnapshots {
		img, err := st.ResolveDigest(c.manifest, nil)
		if err != nil {
			t.Fatal(err)
		}
		res := st.VerifyLayers(context.Background(), img, src, snapDirs(c.dirs), nil)
		for i, r := range res {
			w := fixtureLayers[img.Layers[i].Digest]
			if r.Status != StatusVerified || len(r.Differences) != 0 || len(r.Errors) != 0 {
				t.Errorf("%s %s layer %d (%s): %s %s %v %v", c.ns, c.manifest, i, r.SnapshotDir, r.Status, r.Reason, r.Differences, r.Errors)
			}
			if r.Entries != w.entries || r.UncompressedBytes != w.uncompressed || r.CompressedBytes != img.Layers[i].Size ||
				r.ComputedDigest != img.Layers[i].Digest || r.ComputedDiffID != img.Layers[i].DiffID {
				t.Errorf("%s layer %d: %+v", c.manifest, i, r)
			}
		}
	}
}

// extractFixture unpacks the node archive with its xattrs, whiteouts and
// owners into a temporary directory (needs root, as the evidence does).
func extractFixture(t *testing.T) string {
	if os.Geteuid() != 0 {
		t.Fatal("extracting the fixture with its whiteouts and trusted.* xattrs needs root")
	}
	dir := t.TempDir()
	out, err := exec.Command("tar", "--xattrs", "--xattrs-include=*", "-xpzf", fixtureTar(t), "-C", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	return filepath.Join(dir, "node")
}

func TestVerifyTampered(t *testing.T) {
	root := extractFixture(t)
	snap := func(id, p string) string { return filepath.Join(root, snapshotDir, id, "fs", p) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// (i) one byte changed in a lower-layer file.
	f, err := os.OpenFile(snap("2", "bin/busybox"), os.O_RDWR, 0)
	must(err)
	b := []byte{0}
	_, err = f.ReadAt(b, 1000000)
	must(err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, 1000000)
	must(err)
	must(f.Close())
	// (ii) a file added to a lower layer.
	must(os.WriteFile(snap("2", "usr/bin/.implant"), []byte("evil\n"), 0o755))
	// (iii) a mode change.
	must(os.Chmod(snap("2", "etc/passwd"), 0o666))
	// (iv) a symlink retargeted.
	must(os.Remove(snap("2", "bin/ls")))
	must(os.Symlink("/tmp/.x/ls", snap("2", "bin/ls")))
	// (v) a whiteout removed, and the opaque marker of L2 dropped.
	must(os.Remove(snap("3", "etc/app-old.conf")))
	must(unix.Lremovexattr(snap("3", "opt/cache"), XattrOverlayOpaque))
	// an owner change, in the default namespace's copy of L1.
	must(os.Lchown(snap("4", "etc/os-release"), 1000, 1000))
	// (vi) a layer blob deleted.
	must(os.Remove(filepath.Join(root, contentDir, "blobs/sha256", strings.TrimPrefix(pBlob, "sha256:"))))

	src, err := evidence.OpenDir(root)
	must(err)
	defer src.Close()
	st := &Store{Src: src, Dir: contentDir}
	want := map[string][]Difference{
		"2": {
			{"/bin/busybox", WhatContent, "first difference at byte 1000000"},
			{"/bin/ls", WhatLinkTarget, "tar: /bin/busybox, disk: /tmp/.x/ls"},
			{"/etc/passwd", WhatMode, "tar: 0644, disk: 0666"},
			{"/usr/bin/.implant", WhatAddedOnDisk, "file, 5 bytes"},
		},
		"3": {
			{"/etc/app-old.conf", WhatMissingOnDisk, "whiteout (the tar has etc/.wh.app-old.conf)"},
			{"/opt/cache", WhatOpaque, "the tar has opt/cache/.wh..wh..opq but trusted.overlay.opaque is not y"},
		},
		"4": {
			{"/etc/os-release", WhatOwner, "tar: 0:0, disk: 1000:1000"},
		},
	}
	for _, c := range fixtureSnapshots {
		img, err := st.ResolveDigest(c.manifest, nil)
		must(err)
		res := st.VerifyLayers(context.Background(), img, src, snapDirs(c.dirs), nil)
		for i, r := range res {
			id := c.dirs[i]
			if id == "1" {
				if r.Status != StatusUnverifiable || r.Reason != "blob absent" {
					t.Errorf("pause layer: %s %q", r.Status, r.Reason)
				}
				if len(img.MissingBlobs) != 1 || img.MissingBlobs[0] != pBlob || img.Layers[0].BlobPresent {
					t.Errorf("pause missing blobs %v", img.MissingBlobs)
				}
				continue
			}
			got := append([]Difference(nil), r.Differences...)
			sort.Slice(got, func(a, b int) bool { return got[a].Path < got[b].Path })
			if r.Status != StatusTampered || !sameDiffs(got, want[id]) || len(r.Errors) != 0 {
				t.Errorf("snapshot %s (%s): %s %q\n got  %v\n want %v\n errors %v", id, c.ns, r.Status, r.Reason, got, want[id], r.Errors)
			}
		}
	}
}

func sameDiffs(a, b []Difference) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
