package vfs

import (
	"archive/tar"
	"bytes"
	"testing"
)

func TestIsTarHeader(t *testing.T) {
	for _, format := range []tar.Format{tar.FormatUSTAR, tar.FormatGNU, tar.FormatPAX} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		if err := tw.WriteHeader(&tar.Header{Name: "etc/passwd", Mode: 0o644, Size: 0, Typeflag: tar.TypeReg, Format: format}); err != nil {
			t.Fatal(err)
		}
		tw.Close()
		if !IsTarHeader(b.Bytes()) {
			t.Errorf("%v header not recognised", format)
		}
		bad := bytes.Clone(b.Bytes())
		bad[0] ^= 1 // the checksum no longer adds up
		if IsTarHeader(bad) {
			t.Errorf("%v header with a wrong checksum taken for tar", format)
		}
	}
	if IsTarHeader(make([]byte, 512)) || IsTarHeader([]byte("ustar")) {
		t.Error("a zero block or a short head taken for tar")
	}
	if v, ok := TarNumeric([]byte{0x80, 0, 0, 0, 0, 0, 1, 0}); !ok || v != 256 {
		t.Errorf("base-256: %d %v", v, ok)
	}
	if v, ok := TarNumeric([]byte("0000644\x00")); !ok || v != 0o644 {
		t.Errorf("octal: %d %v", v, ok)
	}
}
