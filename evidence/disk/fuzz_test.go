package disk

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// exercise reads an image the way a filesystem reader would, with bounded
// work whatever size the header claims: the first 256 KiB sequentially,
// then 4 KiB at 64 places spread over the disk, then the last bytes.
func exercise(t *testing.T, img Image) {
	size := img.Size()
	if size < 0 {
		t.Fatalf("negative size %d", size)
	}
	buf := make([]byte, 4096)
	check := func(off int64) {
		n, err := img.ReadAt(buf, off)
		if n < 0 || n > len(buf) {
			t.Fatalf("ReadAt returned %d", n)
		}
		if err == nil && n != len(buf) {
			t.Fatalf("short read %d at %d without an error", n, off)
		}
		if off >= size && (n != 0 || err != io.EOF) {
			t.Fatalf("read at %d past the end (%d): %d, %v", off, size, n, err)
		}
	}
	for off := int64(0); off < min(size, 256<<10); off += int64(len(buf)) {
		check(off)
	}
	for i := int64(0); i < 64; i++ {
		check(size / 64 * i)
	}
	check(max(size-1000, 0))
	check(size)
}

func FuzzOpenImage(f *testing.F) {
	for _, n := range testfix.DiskSeeds(f, "tiny.*") {
		f.Add(testfix.DiskSeed(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := OpenReader(bytes.NewReader(data), int64(len(data)), "fuzz", &Options{CacheBytes: 1 << 20})
		if err != nil {
			return
		}
		defer img.Close()
		_ = img.Info()
		exercise(t, img)
	})
}

// FuzzDescriptor opens descriptors whose extents name files of a directory
// made once: the real images' extent files, a symlink out, a directory.
func FuzzDescriptor(f *testing.F) {
	for _, n := range testfix.DiskSeeds(f, "*.descriptor.vmdk") {
		f.Add(testfix.DiskSeed(f, n))
	}
	dir := f.TempDir()
	raw := testfix.DiskSeed(f, "tiny-gpt.raw")
	os.WriteFile(filepath.Join(dir, "tiny-flat.vmdk"), raw, 0o644)
	os.WriteFile(filepath.Join(dir, "part-a.bin"), raw[:1<<20], 0o644)
	os.WriteFile(filepath.Join(dir, "part-b.bin"), raw, 0o644)
	os.WriteFile(filepath.Join(dir, "s.vmdk"), testfix.DiskSeed(f, "tiny.sparse.vmdk"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "out.bin"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	f.Add([]byte(descHeaderForFuzz + `RW 4096 FLAT "tiny-flat.vmdk" 0` + "\n" + `RW 4096 SPARSE "s.vmdk"` + "\n" + `RW 8 ZERO` + "\n" + `RW 8 FLAT "out.bin" 0` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseDescriptor(data, "fuzz", 0); err != nil {
			return
		}
		p := filepath.Join(dir, "fuzz.vmdk")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := Open(p, &Options{CacheBytes: 1 << 20})
		if err != nil {
			return
		}
		defer img.Close()
		exercise(t, img)
	})
}

const descHeaderForFuzz = "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"
