package overlay

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// tarView opens an in-memory tar as a one-layer view below nothing, or as
// the upper layer of lowers.
func tarLayer(t testing.TB, data []byte, name string) Layer {
	a, err := evidence.NewArchive(context.Background(), bytes.NewReader(data), int64(len(data)), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return Layer{Source: a, Dir: ".", Kind: LayerTar, Name: name}
}

type member struct {
	typ  byte
	mode int64
	size int64
	link string
}

func tarMembers(t testing.TB, r io.Reader) map[string]member {
	out := map[string]member{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = member{h.Typeflag, h.Mode & 07777, h.Size, h.Linkname}
	}
}

func TestExportMergedRoundTrip(t *testing.T) {
	v, err := New(snapshotLayers(nodeArchive(t), attackedSnapshots), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	man, err := CollectManifest(ExportMerged(context.Background(), &buf, v, nil))
	if err != nil {
		t.Fatal(err)
	}
	back, err := New([]Layer{tarLayer(t, buf.Bytes(), "export")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	orig := viewTree(t, v)
	compareTrees(t, orig, viewTree(t, back), false)
	if len(man) != len(orig)-1 {
		t.Errorf("manifest has %d entries, tree %d (without the root)", len(man), len(orig))
	}
	found := false
	for _, m := range man {
		if m.Path == "tmp/.x/miner" {
			found = true
			if m.SHA256 != "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6" || m.Size != 1982256 || m.Type != "file" || m.Mode != "0755" {
				t.Errorf("manifest miner: %+v", m)
			}
		}
		if m.Path == "etc/motd" || m.Path == "app/config.ini" || m.Path == "opt/cache/a.dat" {
			t.Errorf("deleted file exported: %+v", m)
		}
	}
	if !found {
		t.Error("miner not in manifest")
	}
	j, _ := json.Marshal(man[0])
	if !strings.Contains(string(j), `"path":`) || !strings.Contains(string(j), `"sha256"`) && man[0].Type == "file" {
		t.Errorf("manifest json: %s", j)
	}
}

// The upper layer exported as an OCI diff holds exactly the members of
// the diff containerd itself wrote for the checkpoint of this container.
func TestExportUpperMatchesContainerdDiff(t *testing.T) {
	src := nodeArchive(t)
	lower, err := New(snapshotLayers(src, attackedSnapshots[1:]), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	man, err := CollectManifest(ExportUpper(context.Background(), &buf, snapshotLayers(src, attackedSnapshots[:1])[0], lower, nil))
	if err != nil {
		t.Fatal(err)
	}
	got := tarMembers(t, bytes.NewReader(buf.Bytes()))
	f, err := src.Open("var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/42b65dc18ad7d0a1e2d79c437cfb324bdd4b8fd59d3cf4638c6b7ca7c5fac4cf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := evidence.Decompress(io.NewSectionReader(f, 0, f.Size()), evidence.CompressionGzip)
	if err != nil {
		t.Fatal(err)
	}
	want := tarMembers(t, gz)
	if len(want) != 23 {
		t.Fatalf("containerd diff has %d members", len(want))
	}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		g, w := got[n], want[n]
		if g != w {
			t.Errorf("%s: exported %+v, containerd %+v", n, g, w)
		}
	}
	if len(man) != len(got) {
		t.Errorf("manifest %d entries, tar %d members", len(man), len(got))
	}
	var wh []string
	for _, m := range man {
		if m.Type == "whiteout" {
			wh = append(wh, m.Path)
		}
	}
	if strings.Join(wh, ",") != "app/.wh.config.ini,etc/.wh.motd" {
		t.Errorf("whiteouts %v", wh)
	}
}

// Exporting the synthetic upper layer (redirects, metacopy, xattr
// whiteouts, opaque dirs) and stacking the diff back on the lower layers
// gives the same merged tree.
func TestExportUpperRoundTripSynthetic(t *testing.T) {
	dirs := buildLayers(t)
	layers := dirLayers(t, dirs...)
	full, err := New(layers, nil)
	if err != nil {
		t.Fatal(err)
	}
	lower, err := New(layers[1:], nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	man, err := CollectManifest(ExportUpper(context.Background(), &buf, layers[0], lower, nil))
	if err != nil {
		t.Fatal(err)
	}
	back, err := New(append([]Layer{tarLayer(t, buf.Bytes(), "diff")}, layers[1:]...), nil)
	if err != nil {
		t.Fatal(err)
	}
	compareTrees(t, viewTree(t, full), viewTree(t, back), false)
	mem := tarMembers(t, bytes.NewReader(buf.Bytes()))
	for _, n := range []string{"etc/.wh.motd", "newdir/.wh..wh..opq", "newdir/sub/y.txt", "moved/here/.wh..wh..opq", "moved/here/q/r.txt", "var/log/.wh..wh..opq", ".wh.olddir", "absold/.wh.inner", "data/.wh.orig.bin"} {
		if _, ok := mem[n]; !ok {
			t.Errorf("diff lacks %s", n)
		}
	}
	if m := mem["data/big.bin"]; m.size != 131072 {
		t.Errorf("metacopy exported with %d bytes", m.size)
	}
	if m := mem["tmp/.x/miner2"]; m.typ != tar.TypeLink || m.link != "tmp/.x/miner" {
		t.Errorf("hardlink in upper: %+v", m)
	}
	if len(man) != len(mem) {
		t.Errorf("manifest %d, members %d", len(man), len(mem))
	}
	// The merged export keeps the base layer's hardlink pair.
	buf.Reset()
	if _, err := CollectManifest(ExportMerged(context.Background(), &buf, full, nil)); err != nil {
		t.Fatal(err)
	}
	mem = tarMembers(t, bytes.NewReader(buf.Bytes()))
	if m := mem["bin/sh"]; m.typ != tar.TypeLink || m.link != "bin/busybox" {
		t.Errorf("merged hardlink: %+v", m)
	}
	if m := mem["usr/bin/su"]; m.mode != 04755 {
		t.Errorf("setuid lost: %+v", m)
	}
}

// Image layers read as OCI tars give the same tree as the snapshot dirs
// containerd unpacked from them.
func TestTarLayersMatchSnapshots(t *testing.T) {
	img := appLayerBlobs(t)
	var tars []Layer
	for _, d := range []string{"70f36798eb87bce9cdde9a139a8004af39e4105d4c0420c7008c9a13fc1b87b5", "b610110480c53f6e1eb3f708ea2438eded51a6930b38e13a13475fd0f4b71b54"} {
		f, err := img.Open("blobs/sha256/" + d)
		if err != nil {
			t.Fatal(err)
		}
		a, err := evidence.NewArchive(context.Background(), f, f.Size(), "sha256:"+d, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		tars = append(tars, Layer{Source: a, Kind: LayerTar, Name: d[:12]})
	}
	fromTar, err := New(tars, nil)
	if err != nil {
		t.Fatal(err)
	}
	fromDirs, err := New(snapshotLayers(nodeArchive(t), []string{"3", "2"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	tt := viewTree(t, fromTar)
	compareTrees(t, viewTree(t, fromDirs), tt, false)
	if _, ok := tt["etc/app-old.conf"]; ok {
		t.Error("tar whiteout not applied")
	}
	if _, ok := tt["opt/cache/a.dat"]; ok {
		t.Error("tar opaque dir not applied")
	}
	e, err := fromTar.LstatEntry("opt/cache")
	if err != nil || !e.Opaque || e.Origin.Layer != 0 {
		t.Errorf("opt/cache: %+v %v", e, err)
	}
}
