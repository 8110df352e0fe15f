package overlay

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

func FuzzParseRedirect(f *testing.F) {
	for _, s := range []string{"olddir", "/absold/inner", "/", "//a", "/a//b", "/a/", "..", "/../etc", "a/b", "", "/a/./b", "x\x00y"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRedirect(b)
		if err != nil {
			if r != (Redirect{}) {
				t.Fatalf("error with value %+v", r)
			}
			return
		}
		if r.Path == "" || strings.HasPrefix(r.Path, "/") || strings.ContainsRune(r.Path, 0) {
			t.Fatalf("bad path %q", r.Path)
		}
		for _, c := range strings.Split(r.Path, "/") {
			if c == "" || c == "." || c == ".." {
				t.Fatalf("component %q in %q", c, r.Path)
			}
		}
		if !r.Absolute && strings.Contains(r.Path, "/") {
			t.Fatalf("relative with slash %q", r.Path)
		}
		if c, err := evidence.Clean(r.Path); err != nil || c != r.Path {
			t.Fatalf("not clean: %q -> %q %v", r.Path, c, err)
		}
	})
}

func FuzzParseMetacopy(f *testing.F) {
	for _, s := range []string{"", "\x00\x04\x00\x00", "\x00\x24\x00\x01" + strings.Repeat("\xaa", 32), "\x01\x04\x00\x00", "\x00\x09\x00", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetacopy(b)
		if err != nil {
			return
		}
		if len(b) > 0 && (int(b[1]) != len(b) || len(m.Digest) != len(b)-MetacopyMinSize) {
			t.Fatalf("accepted %x as %+v", b, m)
		}
	})
}

func FuzzParseWhiteoutName(f *testing.F) {
	for _, s := range []string{".wh.motd", ".wh..wh..opq", ".wh..wh.plnk", ".wh.", ".wh..", "motd", ".wh.a/b", ".wh...."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, target := ParseWhiteoutName(s)
		switch k {
		case NotWhiteout:
			if strings.HasPrefix(s, WhiteoutPrefix) {
				t.Fatalf("%q not a whiteout", s)
			}
		case Whiteout:
			if target == "" || target == "." || target == ".." || strings.ContainsAny(target, "/\x00") || WhiteoutPrefix+target != s {
				t.Fatalf("%q -> %q", s, target)
			}
		}
		if k != Whiteout && target != "" {
			t.Fatalf("%q: target %q for kind %d", s, target, k)
		}
	})
}

// lowerTar is a small fixed lower layer for FuzzTarLayer.
func lowerTar() []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range []struct {
		name string
		typ  byte
		data string
		link string
	}{
		{"etc/", tar.TypeDir, "", ""}, {"etc/passwd", tar.TypeReg, "root:x:0:0\n", ""}, {"etc/motd", tar.TypeReg, "hi\n", ""},
		{"opt/cache/a.dat", tar.TypeReg, "a", ""}, {"bin/sh", tar.TypeSymlink, "", "/bin/busybox"}, {"bin/busybox", tar.TypeReg, "BB", ""},
		{"bin/ash", tar.TypeLink, "", "bin/busybox"},
	} {
		tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: m.typ, Size: int64(len(m.data)), Linkname: m.link, Mode: 0o755})
		io.WriteString(tw, m.data)
	}
	tw.Close()
	return b.Bytes()
}

func fuzzUpperSeed(names ...string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		typ := byte(tar.TypeReg)
		if strings.HasSuffix(n, "/") {
			typ = tar.TypeDir
		}
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: typ, Mode: 0o644})
	}
	tw.Close()
	return b.Bytes()
}

// FuzzTarLayer stacks an arbitrary tar (whiteout names, opaque markers,
// links, "..") on a fixed lower layer: walking, resolving and exporting
// the view must never panic, loop or name a path outside the root.
func FuzzTarLayer(f *testing.F) {
	f.Add(fuzzUpperSeed("etc/.wh.motd", "opt/cache/.wh..wh..opq", "opt/cache/b.dat"))
	f.Add(fuzzUpperSeed(".wh.etc", "etc/", "etc/x"))
	f.Add(fuzzUpperSeed("../../escape", "/abs", ".wh..wh..opq", ".wh.", ".wh..", "bin/.wh.sh"))
	f.Add([]byte("not a tar"))
	lower := lowerTar()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		up, err := evidence.NewArchive(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz.tar", &evidence.ArchiveOptions{MaxMembers: 2000, MaxSpill: 8 << 20})
		if err != nil {
			return
		}
		defer up.Close()
		low, err := evidence.NewArchive(context.Background(), bytes.NewReader(lower), int64(len(lower)), "lower.tar", nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := New([]Layer{{Source: up, Kind: LayerTar, Name: "up"}, {Source: low, Kind: LayerTar, Name: "low"}}, nil)
		if err != nil {
			return
		}
		n := 0
		for e, err := range v.Walk(context.Background(), ".") {
			if err != nil {
				continue
			}
			if n++; n > 10000 {
				t.Fatal("walk does not end")
			}
			if strings.HasPrefix(e.Path, "/") || strings.Contains("/"+e.Path+"/", "/../") {
				t.Fatalf("path %q", e.Path)
			}
			if k, _ := ParseWhiteoutName(baseName(e.Path)); k != NotWhiteout && e.Origin.Layer == 0 {
				t.Fatalf("whiteout marker %q shown as content", e.Path)
			}
			if e.LinkTarget != "" {
				v.Resolve(e.Path)
			}
		}
		CollectManifest(ExportMerged(context.Background(), io.Discard, v, nil))
		CollectManifest(ExportUpper(context.Background(), io.Discard, v.Layers()[0], mustView(t, v.Layers()[1:]), nil))
	})
}

func mustView(t *testing.T, ls []Layer) *View {
	v, err := New(ls, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
