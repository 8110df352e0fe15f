package disk_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/disk"
	"github.com/deadnode/deadnode/evidence/vfs"
)

const descHead = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\n"

func writeDesc(t *testing.T, dir, extents string) string {
	t.Helper()
	p := filepath.Join(dir, "disk.vmdk")
	if err := os.WriteFile(p, []byte(descHead+extents+"\nddb.adapterType = \"ide\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDescriptorExtentsStayInTheirDirectory(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.bin"), bytes.Repeat([]byte("S"), 4096), 0o644)
	os.WriteFile(filepath.Join(dir, "in.bin"), bytes.Repeat([]byte("I"), 4096), 0o644)
	if err := os.Symlink(filepath.Join(outside, "secret.bin"), filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../"+filepath.Base(outside)+"/secret.bin", filepath.Join(dir, "rel.bin")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, want string }{
		{"link.bin", "escapes"},
		{"rel.bin", "escapes"},
		{"../" + filepath.Base(outside) + "/secret.bin", "escapes"},
		{filepath.Join(outside, "secret.bin"), "absolute"},
	} {
		_, err := disk.Open(writeDesc(t, dir, `RW 8 FLAT "`+c.name+`" 0`), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("extent %q: %v, want an error saying %q", c.name, err, c.want)
		}
	}
	// a symlink that stays inside is followed
	os.Symlink("in.bin", filepath.Join(dir, "inner.bin"))
	img, err := disk.Open(writeDesc(t, dir, `RW 8 FLAT "inner.bin" 0`), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	if _, err := img.ReadAt(b, 0); err != nil || b[0] != 'I' {
		t.Fatalf("%v %q", err, b[:4])
	}
	img.Close()
}

func TestDescriptorExtentKinds(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 8192)
	for i := range data {
		data[i] = byte(i / 512)
	}
	os.WriteFile(filepath.Join(dir, "a.bin"), data, 0o644)
	p := writeDesc(t, dir, strings.Join([]string{
		`RW 8 FLAT "a.bin" 8`, // the file's second 4 KiB
		`RW 8 ZERO`,
		`RDONLY 8 FLAT "a.bin" 0`,
		`NOACCESS 8 FLAT "a.bin" 0`,
		`RW 16 FLAT "a.bin" 8`, // runs 4 KiB past the file's end
	}, "\n"))
	img, err := disk.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	in := img.Info()
	if img.Size() != 48*512 || img.Format() != disk.VMDKDescriptor || len(in.Extents) != 5 || len(in.Files) != 2 {
		t.Fatalf("size %d format %s info %+v", img.Size(), img.Format(), in)
	}
	if in.Extents[4].Start != 32*512 || in.Extents[4].Offset != 4096 || len(in.Notes) != 1 || !strings.Contains(in.Notes[0], "a.bin") {
		t.Fatalf("extents %+v notes %q", in.Extents, in.Notes)
	}
	b := make([]byte, 12288)
	if _, err := img.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[:4096], data[4096:]) || !bytes.Equal(b[4096:8192], make([]byte, 4096)) || !bytes.Equal(b[8192:], data[:4096]) {
		t.Fatal("FLAT at an offset, ZERO, FLAT: wrong bytes")
	}
	_, err = img.ReadAt(b[:512], 12288)
	var fe *vfs.FormatError
	if !errors.As(err, &fe) || !strings.Contains(fe.Msg, "NOACCESS") {
		t.Fatalf("NOACCESS extent read: %v", err)
	}
	if _, err := img.ReadAt(b[:4096], 16384); err != nil {
		t.Fatalf("the part the file holds: %v", err)
	}
	if _, err := img.ReadAt(b[:512], 20480); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("past the extent file's end: %v", err)
	}
}

func TestDescriptorRefusals(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.bin"), make([]byte, 4096), 0o644)
	for _, c := range []struct {
		text string
		want func(error) bool
	}{
		{`RW 8 VMFSSPARSE "a.bin"`, func(err error) bool { return errors.Is(err, disk.ErrUnsupported) }},
		{`RW 8 VMFSRDM "a.bin"`, func(err error) bool { return errors.Is(err, disk.ErrUnsupported) }},
		{`RW 8 SPARSE "a.bin"`, func(err error) bool {
			var fe *vfs.FormatError
			return errors.As(err, &fe) && strings.Contains(fe.Msg, "KDMV")
		}},
		{`RW 8 WEIRD "a.bin"`, func(err error) bool {
			var fe *vfs.FormatError
			return errors.As(err, &fe) && strings.Contains(fe.Msg, "WEIRD")
		}},
		{`RW 8 FLAT a.bin 0`, func(err error) bool {
			var fe *vfs.FormatError
			return errors.As(err, &fe) && strings.Contains(fe.Msg, "quoted")
		}},
		{`RW 8 FLAT "missing.bin" 0`, func(err error) bool { return errors.Is(err, os.ErrNotExist) }},
		{`RW 99999999999999999999 FLAT "a.bin" 0`, func(err error) bool { return err != nil }},
		{"", func(err error) bool {
			var fe *vfs.FormatError
			return errors.As(err, &fe) && strings.Contains(fe.Msg, "no extents")
		}},
	} {
		_, err := disk.Open(writeDesc(t, dir, c.text), nil)
		if !c.want(err) {
			t.Errorf("%q: %v", c.text, err)
		}
	}
	// a child naming its parent
	p := filepath.Join(dir, "child.vmdk")
	os.WriteFile(p, []byte(strings.Replace(descHead, "parentCID=ffffffff", "parentCID=87654321\nparentFileNameHint=\"base.vmdk\"", 1)+`RW 8 FLAT "a.bin" 0`+"\n"), 0o644)
	_, err := disk.Open(p, nil)
	var be *disk.BackingFileError
	if !errors.As(err, &be) || be.Backing != "base.vmdk" {
		t.Fatalf("child descriptor: %v", err)
	}
}
