package storage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// FuzzContainersJSON streams a containers.json (or layers.json,
// images.json) through decodeList and each record decoder, as the reader
// does.
func FuzzContainersJSON(f *testing.F) {
	f.Add([]byte(`[{"id":"a","names":["n"],"layer":"l","metadata":"{\"pod-name\":\"p\"}"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		prev := int64(-1)
		n, err := decodeList(bytes.NewReader(b), 1000, func(i int, off int64, raw json.RawMessage) {
			if off <= prev || off > int64(len(b)) {
				t.Fatalf("record %d at offset %d after %d", i, off, prev)
			}
			prev = off
			if c, err := decodeContainer(raw); err == nil {
				decodeMetadata(c.Metadata)
			}
			decodeLayer(raw)
			decodeImage(raw)
		})
		if n < 0 || n > 1000 || (err == nil && n > 0 && prev < 0) {
			t.Fatalf("n %d err %v", n, err)
		}
	})
}

// FuzzLibpodRecords feeds libpod config and state values and CRI-O state
// files to their decoders.
func FuzzLibpodRecords(f *testing.F) {
	f.Add([]byte(`{"id":"a","pod":"p","spec":{"process":{"args":["x"]}}}`), []byte(`{"state":3,"pid":1,"exitCode":2}`))
	f.Fuzz(func(t *testing.T, cfg, state []byte) {
		decodeLibpodConfig(cfg)
		decodeLibpodState(state)
		decodeCRIOState(state)
		decodeMetadata(string(cfg))
		if r, err := decodeExecRecord(cfg); err == nil && (!isHexID(r.ID) || !isHexID(r.ContainerID)) {
			t.Fatalf("exec record with ids %q %q", r.ID, r.ContainerID)
		}
	})
}

// FuzzParseLower checks that every entry parseLower accepts is an l/ link
// name that cannot climb out of the driver directory.
func FuzzParseLower(f *testing.F) {
	f.Add([]byte("l/AAAA:l/BBBB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseLower(b)
		if err != nil {
			return
		}
		if len(entries) == 0 || len(entries) > maxLowers {
			t.Fatalf("%d entries", len(entries))
		}
		for _, e := range entries {
			short, ok := strings.CutPrefix(e, "l/")
			if !ok || short == "" || short == "." || short == ".." || strings.ContainsAny(short, "/\x00") {
				t.Fatalf("entry %q accepted", e)
			}
		}
	})
}

// FuzzOpenStore builds a graph root from a fuzzed containers.json, layers
// file, lower file and l/ link target, and checks that Open neither fails
// nor resolves a directory outside overlay/.
func FuzzOpenStore(f *testing.F) {
	f.Add([]byte(`[{"id":"c","layer":"L"}]`), []byte(`[{"id":"base"},{"id":"L","parent":"base"}]`), "l/X", "../base/diff")
	f.Add([]byte(`[{"id":"c","layer":"L"}`), []byte(`[{"id":"L","parent":"L"}]`), "l/X", "/etc")
	f.Fuzz(func(t *testing.T, ctrs, layers []byte, lower, target string) {
		if len(target) > 512 || strings.ContainsRune(target, 0) {
			return
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		dir := func(n string) { tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755}) }
		file := func(n string, c []byte) {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(c))})
			tw.Write(c)
		}
		r := "var/lib/containers/storage/"
		for _, d := range []string{"etc/", "etc/x/", "etc/x/diff/", r, r + "overlay/", r + "overlay/l/", r + "overlay/L/", r + "overlay/L/diff/", r + "overlay/base/", r + "overlay/base/diff/", r + "overlay-containers/", r + "overlay-layers/"} {
			dir(d)
		}
		file(r+"overlay-containers/containers.json", ctrs)
		file(r+"overlay-layers/layers.json", layers)
		file(r+"overlay/L/lower", []byte(lower))
		tw.WriteHeader(&tar.Header{Name: r + "overlay/l/X", Typeflag: tar.TypeSymlink, Linkname: target})
		tw.Close()
		src, err := evidence.NewArchive(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), "fuzz.tar", nil)
		if err != nil {
			return
		}
		defer src.Close()
		s, err := Open(src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Containers {
			for _, d := range append([]string{c.UpperDir}, c.LowerDirs...) {
				if d == "" {
					continue
				}
				rel, ok := strings.CutPrefix(d, "/var/lib/containers/storage/overlay/")
				parts := strings.Split(rel, "/")
				if !ok || len(parts) != 2 || parts[1] != "diff" || parts[0] == "l" || parts[0] == ".." {
					t.Fatalf("directory %q escapes overlay/", d)
				}
			}
		}
	})
}
