package overlay

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// TestExportKeepsTarLayerHardlinks: a hard link inside a tar layer stays a
// hard link in the export (archives number their members' inodes).
func TestExportKeepsTarLayerHardlinks(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/a", Typeflag: tar.TypeReg, Mode: 0o755, Size: 4})
	tw.Write([]byte("data"))
	tw.WriteHeader(&tar.Header{Name: "bin/b", Typeflag: tar.TypeLink, Linkname: "bin/a"})
	tw.Close()
	a, err := evidence.NewArchive(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), "layer.tar", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New([]Layer{{Source: a, Dir: ".", Kind: LayerTar, Name: "layer.tar"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := CollectManifest(ExportMerged(context.Background(), &out, v, nil)); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&out)
	links := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeLink {
			links[h.Name] = h.Linkname
		}
	}
	if len(links) != 1 || (links["bin/b"] != "bin/a" && links["./bin/b"] != "./bin/a") {
		t.Errorf("hard links in the export: %v", links)
	}
}
