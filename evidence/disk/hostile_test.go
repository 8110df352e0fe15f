package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/testfix"
)

// The tiny seeds are real images (qemu-img, VMDKstream) of one real 2 MiB
// disk, tiny-gpt.raw; these tests read them whole, then break one field at
// a time and check the error names the structure and its offset.

func openBytes(t *testing.T, b []byte) (Image, error) {
	t.Helper()
	return OpenReader(bytes.NewReader(b), int64(len(b)), "img", &Options{CacheBytes: 1 << 20})
}

func readAll(img Image) ([]byte, error) {
	out := make([]byte, img.Size())
	n, err := img.ReadAt(out, 0)
	if err == io.EOF && int64(n) == img.Size() {
		err = nil
	}
	return out[:n], err
}

func TestTinySeedsReadAsTheirDisk(t *testing.T) {
	raw := testfix.DiskSeed(t, "tiny-gpt.raw")
	for _, name := range []string{"tiny.qcow2", "tiny.zlib.qcow2", "tiny.zstd.qcow2", "tiny.v2.qcow2", "tiny.sparse.vmdk", "tiny.stream.vmdk", "tiny.gdend.vmdk"} {
		img, err := openBytes(t, testfix.DiskSeed(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := readAll(img)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%s: %v, equal %v", name, err, bytes.Equal(got, raw))
		}
	}
}

// wantFormatError checks err is a *vfs.FormatError about structure at offset.
func wantFormatError(t *testing.T, err error, structure string, offset int64) {
	t.Helper()
	var fe *vfs.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("%v: want a FormatError about %s", err, structure)
	}
	if !strings.Contains(fe.File, structure) || (offset >= 0 && fe.Offset != offset) {
		t.Fatalf("FormatError %q at %d, want %q at %d", fe.File, fe.Offset, structure, offset)
	}
}

func TestQCOW2Hostile(t *testing.T) {
	be := binary.BigEndian
	base := testfix.DiskSeed(t, "tiny.qcow2")
	l1Off := int64(be.Uint64(base[40:]))
	l2Off := int64(be.Uint64(base[l1Off:]) & qcowOffsetMask)
	if l2Off == 0 {
		t.Fatal("tiny.qcow2: no L2 table for the first clusters")
	}
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(base)
		f(b)
		return b
	}
	t.Run("cluster_bits", func(t *testing.T) {
		_, err := openBytes(t, mod(func(b []byte) { be.PutUint32(b[20:], 30) }))
		wantFormatError(t, err, "qcow2 header", 20)
	})
	t.Run("l1_size", func(t *testing.T) {
		_, err := openBytes(t, mod(func(b []byte) { be.PutUint32(b[36:], 0xffffffff) }))
		wantFormatError(t, err, "qcow2 L1 table", l1Off)
	})
	t.Run("l1 table past the end", func(t *testing.T) {
		_, err := openBytes(t, mod(func(b []byte) { be.PutUint64(b[40:], 1<<40) }))
		wantFormatError(t, err, "qcow2 L1 table", 1<<40)
	})
	t.Run("L2 table past the end", func(t *testing.T) {
		img, err := openBytes(t, mod(func(b []byte) { be.PutUint64(b[l1Off:], 1<<63|1<<40) }))
		if err != nil {
			t.Fatal(err)
		}
		_, err = img.ReadAt(make([]byte, 512), 0)
		wantFormatError(t, err, "qcow2 L1 table", l1Off)
	})
	t.Run("data cluster past the end", func(t *testing.T) {
		img, err := openBytes(t, mod(func(b []byte) { be.PutUint64(b[l2Off:], 1<<63|1<<40) }))
		if err != nil {
			t.Fatal(err)
		}
		_, err = img.ReadAt(make([]byte, 512), 0)
		wantFormatError(t, err, "qcow2 L2 table", l2Off)
	})
	t.Run("data cluster unaligned", func(t *testing.T) {
		img, err := openBytes(t, mod(func(b []byte) { be.PutUint64(b[l2Off:], be.Uint64(b[l2Off:])+512) }))
		if err != nil {
			t.Fatal(err)
		}
		_, err = img.ReadAt(make([]byte, 512), 0)
		wantFormatError(t, err, "qcow2 L2 table", l2Off)
	})
	t.Run("unknown incompatible feature", func(t *testing.T) {
		_, err := openBytes(t, mod(func(b []byte) { b[72+7] |= 0x40 }))
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("zero flag in v2", func(t *testing.T) {
		v2 := testfix.DiskSeed(t, "tiny.v2.qcow2")
		l1 := int64(be.Uint64(v2[40:]))
		l2 := int64(be.Uint64(v2[l1:]) & qcowOffsetMask)
		be.PutUint64(v2[l2:], be.Uint64(v2[l2:])|1)
		img, err := openBytes(t, v2)
		if err != nil {
			t.Fatal(err)
		}
		_, err = img.ReadAt(make([]byte, 512), 0)
		wantFormatError(t, err, "qcow2 L2 table", l2)
	})
	t.Run("compressed cluster garbage", func(t *testing.T) {
		for _, name := range []string{"tiny.zlib.qcow2", "tiny.zstd.qcow2"} {
			z := testfix.DiskSeed(t, name)
			l1 := int64(be.Uint64(z[40:]))
			l2 := int64(be.Uint64(z[l1:]) & qcowOffsetMask)
			e := be.Uint64(z[l2:])
			if e&qcowFlagCompress == 0 {
				t.Fatalf("%s: cluster 0 not compressed", name)
			}
			coff := int64(e & (1<<(62-(12-8)) - 1)) // 4 KiB clusters
			copy(z[coff:], bytes.Repeat([]byte{0xff}, 64))
			img, err := openBytes(t, z)
			if err != nil {
				t.Fatal(err)
			}
			_, err = img.ReadAt(make([]byte, 512), 0)
			wantFormatError(t, err, "qcow2 compressed cluster", coff)
		}
	})
}

func TestVMDKHostile(t *testing.T) {
	le := binary.LittleEndian
	raw := testfix.DiskSeed(t, "tiny-gpt.raw")
	base := testfix.DiskSeed(t, "tiny.sparse.vmdk")
	gdOff := int64(le.Uint64(base[56:])) * 512
	rgdOff := int64(le.Uint64(base[48:])) * 512
	if le.Uint32(base[8:])&vmdkFlagRGD == 0 || rgdOff == 0 {
		t.Fatal("tiny.sparse.vmdk has no redundant grain directory")
	}
	gtOff := int64(le.Uint32(base[gdOff:])) * 512
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(base)
		f(b)
		return b
	}
	t.Run("grainSize", func(t *testing.T) {
		_, err := openBytes(t, mod(func(b []byte) { le.PutUint64(b[20:], 3) }))
		wantFormatError(t, err, "vmdk sparse header", 20)
	})
	t.Run("numGTEsPerGT", func(t *testing.T) {
		_, err := openBytes(t, mod(func(b []byte) { le.PutUint32(b[44:], 0) }))
		wantFormatError(t, err, "vmdk sparse header", 44)
	})
	t.Run("capacity", func(t *testing.T) {
		_, err := openBytes(t, mod(func(b []byte) { le.PutUint64(b[12:], 1<<62) }))
		wantFormatError(t, err, "vmdk sparse header", 12)
	})
	t.Run("primary directory broken, redundant read", func(t *testing.T) {
		img, err := openBytes(t, mod(func(b []byte) { le.PutUint32(b[gdOff:], 0xfffffff0) }))
		if err != nil {
			t.Fatal(err)
		}
		if n := img.Info().Notes; len(n) != 1 || !strings.Contains(n[0], "redundant") {
			t.Fatalf("notes %q", n)
		}
		got, err := readAll(img)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("through the redundant directory: %v, equal %v", err, bytes.Equal(got, raw))
		}
	})
	t.Run("both directories broken", func(t *testing.T) {
		_, err := openBytes(t, mod(func(b []byte) {
			le.PutUint32(b[gdOff:], 0xfffffff0)
			le.PutUint32(b[rgdOff:], 0xfffffff0)
		}))
		wantFormatError(t, err, "vmdk grain directory", gdOff)
	})
	t.Run("grain table entry past the end", func(t *testing.T) {
		img, err := openBytes(t, mod(func(b []byte) {
			le.PutUint32(b[gtOff:], 0x7ffffff0)
			le.PutUint32(b[rgdOff:], 0) // the redundant copy is not consulted for grains
		}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = img.ReadAt(make([]byte, 512), 0)
		wantFormatError(t, err, "vmdk grain table", gtOff)
	})
	t.Run("stream grain marker for another grain", func(t *testing.T) {
		s := testfix.DiskSeed(t, "tiny.stream.vmdk")
		gd := int64(le.Uint64(s[56:])) * 512
		gt := int64(le.Uint32(s[gd:])) * 512
		g0 := int64(le.Uint32(s[gt:])) * 512
		le.PutUint64(s[g0:], 12345)
		img, err := openBytes(t, s)
		if err != nil {
			t.Fatal(err)
		}
		_, err = img.ReadAt(make([]byte, 512), 0)
		wantFormatError(t, err, "vmdk grain marker", g0)
	})
	t.Run("stream footer missing", func(t *testing.T) {
		s := testfix.DiskSeed(t, "tiny.gdend.vmdk")
		clear(s[len(s)-1536:])
		_, err := openBytes(t, s)
		wantFormatError(t, err, "vmdk footer marker", int64(len(s)-1536))
	})
	t.Run("newline check", func(t *testing.T) {
		_, err := openBytes(t, mod(func(b []byte) { b[75] = '\n' }))
		wantFormatError(t, err, "vmdk sparse header", 73)
	})
}

// The grain directories a descriptor's sparse extents keep are bounded in
// all, as one is: each extent may name the same file, so a kilobyte of
// descriptor asked for 4,096 directories of 64 MiB (256 GiB of heap).
func TestDescriptorGrainDirectoriesBounded(t *testing.T) {
	dir := t.TempDir()
	const capSectors = 1 << 23 // grain of 1 sector, 1 entry a table: a 32 MiB directory
	h := make([]byte, 512)
	copy(h, "KDMV")
	le := binary.LittleEndian
	le.PutUint32(h[4:], 1)           // version
	le.PutUint64(h[12:], capSectors) // capacity
	le.PutUint64(h[20:], 1)          // grain size
	le.PutUint32(h[44:], 1)          // grain table entries
	le.PutUint64(h[56:], 1)          // grain directory at sector 1
	f, err := os.Create(filepath.Join(dir, "s.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(h)
	f.Truncate(512 + capSectors*4) // sparse: no disk
	f.Close()
	for n, refused := range map[int]bool{2: false, 3: true} {
		var b strings.Builder
		b.WriteString("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n")
		for range n {
			fmt.Fprintf(&b, "RW %d SPARSE \"s.vmdk\"\n", capSectors)
		}
		os.WriteFile(filepath.Join(dir, "d.vmdk"), []byte(b.String()), 0o644)
		img, err := Open(filepath.Join(dir, "d.vmdk"), nil)
		if got := err != nil && strings.Contains(err.Error(), "the grain directories of the sparse extents add up past 67108864 bytes"); got != refused {
			t.Errorf("%d extents of a 32 MiB directory: %v", n, err)
		}
		if img != nil {
			img.Close()
		}
	}
}
