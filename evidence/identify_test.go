package evidence

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Identify decides by content, as Open does, never by name: every file
// below is named "evidence".
func TestIdentify(t *testing.T) {
	dir := t.TempDir()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "etc/hostname", Mode: 0o644, Size: 5})
	tw.Write([]byte("node\n"))
	tw.Close()
	var gb bytes.Buffer
	gw := gzip.NewWriter(&gb)
	gw.Write(tb.Bytes())
	gw.Close()
	xfs := append([]byte("XFSB"), make([]byte, 8192)...)
	cases := []struct {
		content []byte
		want    Kind
		saw     string
	}{
		{tb.Bytes(), KindTar, ""},
		{gb.Bytes(), KindTarGz, ""},
		{xfs, KindDisk, ""},
		{[]byte("# Ground truth\n"), "", "no format deadnode reads (first bytes 23 20 47 72 6f 75 6e 64 20 74 72 75 74 68 0a)"},
		{nil, "", "an empty file"},
	}
	for i, c := range cases {
		p := filepath.Join(dir, string(rune('a'+i)), "evidence")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, c.content, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Identify(p)
		var ue *UnsupportedError
		switch {
		case c.saw != "":
			if !errors.As(err, &ue) || ue.Saw != c.saw || ue.Path != p || !errors.Is(err, ErrUnsupportedFormat) {
				t.Errorf("case %d: Identify = %q, %v; want UnsupportedError saw %q", i, got, err, c.saw)
			}
		case err != nil || got != c.want:
			t.Errorf("case %d: Identify = %q, %v; want %q", i, got, err, c.want)
		}
	}
	if got, err := Identify(dir); err != nil || got != KindDir {
		t.Errorf("Identify(dir) = %q, %v", got, err)
	}
	if _, err := Identify(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Identify(missing) = %v", err)
	}
	if err := os.Symlink("/dev/null", filepath.Join(dir, "null")); err != nil {
		t.Fatal(err)
	}
	if _, err := Identify(filepath.Join(dir, "null")); err == nil || !strings.Contains(err.Error(), "not a file or directory") {
		t.Errorf("Identify(char device) = %v", err)
	}
}
