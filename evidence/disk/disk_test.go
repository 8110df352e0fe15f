package disk_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deadnode/deadnode/evidence/disk"
	"github.com/deadnode/deadnode/internal/testfix"
)

// sums reads SHA256SUMS: the sha256 of every image's virtual disk as
// qemu-img converts it to raw (and of the raw images themselves).
func sums(t *testing.T, dir string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if ok {
			m[name] = sum
		}
	}
	return m
}

func digest(t *testing.T, img disk.Image) string {
	t.Helper()
	h := sha256.New()
	// odd-sized reads, so that reads straddle clusters, grains and extents
	buf := make([]byte, 300_001)
	var off int64
	for off < img.Size() {
		n, err := img.ReadAt(buf, off)
		h.Write(buf[:n])
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadAt %d: %v", off, err)
		}
	}
	if off != img.Size() {
		t.Fatalf("read %d bytes of %d", off, img.Size())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestImagesAsQemuReadsThem: every image read through Open gives the
// virtual disk qemu-img gives, byte for byte, and the VM images converted
// from a raw disk give exactly that raw disk.
func TestImagesAsQemuReadsThem(t *testing.T) {
	dir := testfix.DiskImages(t)
	sum := sums(t, dir)
	cases := []struct {
		name, from  string
		format      disk.Format
		size        int64
		version     int
		cluster     int64
		compression string
		files       int
	}{
		{"gpt-ext4.raw", "", disk.Raw, 128 << 20, 0, 0, "", 1},
		{"gpt-xfs.raw", "", disk.Raw, 400 << 20, 0, 0, "", 1},
		{"gpt-ext4.qcow2", "gpt-ext4.raw", disk.QCOW2, 128 << 20, 3, 65536, "zlib", 1},
		{"gpt-ext4.zlib.qcow2", "gpt-ext4.raw", disk.QCOW2, 128 << 20, 3, 65536, "zlib", 1},
		{"gpt-ext4.zstd.qcow2", "gpt-ext4.raw", disk.QCOW2, 128 << 20, 3, 65536, "zstd", 1},
		{"gpt-ext4.v2.qcow2", "gpt-ext4.raw", disk.QCOW2, 128 << 20, 2, 4096, "zlib", 1},
		{"gpt-ext4.zero.qcow2", "", disk.QCOW2, 128 << 20, 3, 65536, "zlib", 1},
		{"gpt-xfs.vmdk", "gpt-xfs.raw", disk.VMDKStream, 400 << 20, 3, 65536, "deflate", 1},
		{"gpt-xfs.gdend.vmdk", "gpt-xfs.raw", disk.VMDKStream, 400 << 20, 3, 65536, "deflate", 1},
		{"gpt-ext4.sparse.vmdk", "gpt-ext4.raw", disk.VMDKSparse, 128 << 20, 1, 65536, "", 1},
		{"vmdk-flat/mbr-ext.vmdk", "mbr-ext.raw", disk.VMDKDescriptor, 128 << 20, 0, 0, "", 2},
		{"vmdk-2gb/mbr-lvm-xfs.vmdk", "mbr-lvm-xfs.raw", disk.VMDKDescriptor, 512 << 20, 0, 65536, "", 2},
		{"vmdk-split/mbr-ext.vmdk", "mbr-ext.raw", disk.VMDKDescriptor, 128 << 20, 0, 0, "", 3},
		{"split/gpt-ext4.raw.001", "gpt-ext4.raw", disk.SplitRaw, 128 << 20, 0, 0, "", 3},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, "/", "_"), func(t *testing.T) {
			img, err := disk.Open(filepath.Join(dir, c.name), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			in := img.Info()
			if img.Format() != c.format || in.Format != c.format || img.Size() != c.size || in.Size != c.size {
				t.Fatalf("format %s size %d (info %s %d), want %s %d", img.Format(), img.Size(), in.Format, in.Size, c.format, c.size)
			}
			if in.Version != c.version || in.ClusterSize != c.cluster || in.Compression != c.compression || len(in.Files) != c.files {
				t.Errorf("info %+v: want version %d cluster %d compression %q, %d files", in, c.version, c.cluster, c.compression, c.files)
			}
			got := digest(t, img)
			want := sum[c.name]
			if c.format == disk.SplitRaw {
				want = sum["gpt-ext4.raw"]
			}
			if want == "" {
				t.Fatalf("no qemu-img sum for %s", c.name)
			}
			if got != want {
				t.Fatalf("sha256 %s, qemu-img reads %s", got, want)
			}
			if c.from != "" && got != sum[c.from] {
				t.Fatalf("sha256 %s, the raw disk it was converted from is %s", got, sum[c.from])
			}
		})
	}
	if sum["gpt-ext4.zero.qcow2"] == sum["gpt-ext4.raw"] {
		t.Fatal("the zero-cluster image reads like the raw disk: the case tests nothing")
	}
}

// TestGDAtEnd: the VMDKstream image keeps its grain directory in the footer.
func TestGDAtEnd(t *testing.T) {
	dir := testfix.DiskImages(t)
	raw, err := os.ReadFile(filepath.Join(dir, "gpt-xfs.gdend.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw[56:64], bytes.Repeat([]byte{0xff}, 8)) {
		t.Fatalf("header gdOffset % x, want GD_AT_END", raw[56:64])
	}
	img, err := disk.Open(filepath.Join(dir, "gpt-xfs.gdend.vmdk"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if n := img.Info().Notes; len(n) != 1 || !strings.Contains(n[0], "footer") {
		t.Fatalf("notes %q", n)
	}
}

func TestBackingFiles(t *testing.T) {
	dir := testfix.DiskImages(t)
	sum := sums(t, dir)
	for _, c := range []struct{ name, backing string }{
		{"gpt-ext4.overlay.qcow2", "gpt-ext4.qcow2"},
		{"gpt-ext4.child.vmdk", "gpt-ext4.sparse.vmdk"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := disk.Open(filepath.Join(dir, c.name), nil)
			var be *disk.BackingFileError
			if !errors.As(err, &be) || be.Backing != c.backing || be.Path != filepath.Join(dir, c.name) {
				t.Fatalf("without an opener: %v, want a BackingFileError naming %s", err, c.backing)
			}
			img, err := disk.Open(filepath.Join(dir, c.name), &disk.Options{Backing: disk.BackingDir(dir, nil)})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			in := img.Info()
			if in.BackingFile != c.backing || in.Backing == nil || in.Backing.Files[0] != filepath.Join(dir, c.backing) {
				t.Fatalf("info %+v", in)
			}
			if want := `backing file "` + c.backing + `" read from ` + filepath.Join(dir, c.backing); len(in.Notes) != 1 || !strings.HasPrefix(in.Notes[0], want) || strings.Contains(in.Notes[0], "probed") {
				t.Errorf("notes %q, want %q", in.Notes, want)
			}
			if got := digest(t, img); got != sum[c.name] || got == sum["gpt-ext4.raw"] {
				t.Fatalf("sha256 %s, qemu-img reads %s (backing alone %s)", got, sum[c.name], sum["gpt-ext4.raw"])
			}
		})
	}
}

func TestBackingLoopAndEscape(t *testing.T) {
	dir := testfix.DiskImages(t)
	tmp := t.TempDir()
	overlay, err := os.ReadFile(filepath.Join(dir, "gpt-ext4.overlay.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	// a.qcow2 names b.qcow2 as backing, b names a: same-length names keep the header valid
	a := bytes.Replace(overlay, []byte("gpt-ext4.qcow2"), []byte("loop-bbbb.qcow"), 1)
	b := bytes.Replace(overlay, []byte("gpt-ext4.qcow2"), []byte("loop-aaaa.qcow"), 1)
	os.WriteFile(filepath.Join(tmp, "loop-aaaa.qcow"), a, 0o644)
	os.WriteFile(filepath.Join(tmp, "loop-bbbb.qcow"), b, 0o644)
	_, err = disk.Open(filepath.Join(tmp, "loop-aaaa.qcow"), &disk.Options{Backing: disk.BackingDir(tmp, nil)})
	if err == nil || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("backing loop: %v", err)
	}
	// a backing name that climbs out of the directory
	esc := bytes.Replace(overlay, []byte("gpt-ext4.qcow2"), []byte("../../etc/pwd"), 1)
	binary.BigEndian.PutUint32(esc[16:], 13) // backing_file_size
	os.WriteFile(filepath.Join(tmp, "esc.qcow"), esc, 0o644)
	_, err = disk.Open(filepath.Join(tmp, "esc.qcow"), &disk.Options{Backing: disk.BackingDir(tmp, nil)})
	if err == nil || !strings.Contains(err.Error(), `backing file "../../etc/pwd"`) || !strings.Contains(err.Error(), "path escapes") {
		t.Fatalf("escaping backing name: %v", err)
	}
}

func TestRefused(t *testing.T) {
	dir := testfix.DiskImages(t)
	for _, c := range []struct{ name, what string }{
		{"refuse/extl2.qcow2", "extended L2"},
		{"refuse/luks.qcow2", "LUKS encryption"},
		{"refuse/extdata.qcow2", "external data file"},
	} {
		_, err := disk.Open(filepath.Join(dir, c.name), nil)
		var ue *disk.UnsupportedError
		if !errors.Is(err, disk.ErrUnsupported) || !errors.As(err, &ue) || !strings.Contains(ue.What, c.what) || ue.Hint == "" {
			t.Errorf("%s: %v, want an UnsupportedError about %s", c.name, err, c.what)
		}
	}
	tmp := t.TempDir()
	for name, head := range map[string]string{
		"e01":  "EVF\x09\x0d\x0a\xff\x00\x01\x01\x00",
		"vhdx": "vhdxfile",
		"vhd":  "conectix\x00\x00\x00\x02",
	} {
		p := filepath.Join(tmp, name)
		os.WriteFile(p, append([]byte(head), make([]byte, 4096)...), 0o644)
		if _, err := disk.Open(p, nil); !errors.Is(err, disk.ErrUnsupported) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSplitNames: only a .001 with a .002 beside it is a split image; a
// later part opened alone is a raw image of its own size.
func TestSplitNames(t *testing.T) {
	dir := testfix.DiskImages(t)
	img, err := disk.Open(filepath.Join(dir, "split", "gpt-ext4.raw.002"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Format() != disk.Raw || img.Size() != 48<<20 {
		t.Fatalf("%s %d", img.Format(), img.Size())
	}
	tmp := t.TempDir()
	os.WriteFile(filepath.Join(tmp, "alone.001"), make([]byte, 4096), 0o644)
	one, err := disk.Open(filepath.Join(tmp, "alone.001"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if one.Format() != disk.Raw {
		t.Fatalf("a lone .001 is %s", one.Format())
	}
}

// TestConcurrentReads: ReadAt from several goroutines at random offsets gives
// the raw disk's bytes (run with -race).
func TestConcurrentReads(t *testing.T) {
	dir := testfix.DiskImages(t)
	for _, c := range []struct{ name, raw string }{
		{"gpt-ext4.zstd.qcow2", "gpt-ext4.raw"},
		{"gpt-ext4.zlib.qcow2", "gpt-ext4.raw"},
		{"gpt-xfs.vmdk", "gpt-xfs.raw"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw, err := os.Open(filepath.Join(dir, c.raw))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			// a small cache, so that goroutines evict each other's clusters
			img, err := disk.Open(filepath.Join(dir, c.name), &disk.Options{CacheBytes: 256 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 7))
					a, b := make([]byte, 70000), make([]byte, 70000)
					for range 300 {
						n := 1 + rng.IntN(len(a))
						// most reads in the first 48 MiB, where the data is
						off := rng.Int64N(48 << 20)
						if _, err := img.ReadAt(a[:n], off); err != nil {
							errs <- err
							return
						}
						raw.ReadAt(b[:n], off)
						if !bytes.Equal(a[:n], b[:n]) {
							errs <- errors.New("bytes differ at " + c.name)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// TestReadPastEnd: io.ReaderAt's contract at the end of the disk.
func TestReadPastEnd(t *testing.T) {
	dir := testfix.DiskImages(t)
	for _, name := range []string{"gpt-ext4.raw", "gpt-ext4.qcow2", "gpt-xfs.vmdk", "vmdk-flat/mbr-ext.vmdk", "split/gpt-ext4.raw.001"} {
		img, err := disk.Open(filepath.Join(dir, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1000)
		n, err := img.ReadAt(buf, img.Size()-600)
		if n != 600 || err != io.EOF {
			t.Errorf("%s: read across the end: %d, %v", name, n, err)
		}
		if n, err := img.ReadAt(buf, img.Size()); n != 0 || err != io.EOF {
			t.Errorf("%s: read at the end: %d, %v", name, n, err)
		}
		if _, err := img.ReadAt(buf, -1); err == nil {
			t.Errorf("%s: negative offset read", name)
		}
		img.Close()
	}
}

// A backing image must be what its child records: a qcow2 overlay whose
// backing_fmt is qcow2 does not take a raw file by that name, nor a VMDK
// child a parent that is not a VMDK; an overlay that records no backing
// format reads its backing file as its content says, and says so. The
// notes name the host file read.
func TestBackingFormatChecked(t *testing.T) {
	dir := testfix.DiskImages(t)
	tmp := t.TempDir()
	link := func(from, to string) {
		t.Helper()
		if err := os.Link(filepath.Join(dir, from), filepath.Join(tmp, to)); err != nil {
			b, err := os.ReadFile(filepath.Join(dir, from))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tmp, to), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	open := func(name string) (disk.Image, error) {
		return disk.Open(filepath.Join(tmp, name), &disk.Options{Backing: disk.BackingDir(tmp, nil)})
	}
	link("gpt-ext4.overlay.qcow2", "gpt-ext4.overlay.qcow2")
	link("gpt-ext4.raw", "gpt-ext4.qcow2") // a raw image under the backing qcow2's name
	if _, err := open("gpt-ext4.overlay.qcow2"); err == nil || !strings.Contains(err.Error(), "it is a raw image, but "+filepath.Join(tmp, "gpt-ext4.overlay.qcow2")+" records its backing format as qcow2") {
		t.Errorf("raw under a qcow2 backing name: %v", err)
	}
	link("gpt-ext4.child.vmdk", "gpt-ext4.child.vmdk")
	link("gpt-ext4.raw", "gpt-ext4.sparse.vmdk")
	if _, err := open("gpt-ext4.child.vmdk"); err == nil || !strings.Contains(err.Error(), "it is a raw image, but") || !strings.Contains(err.Error(), "records its backing format as vmdk") {
		t.Errorf("raw as a VMDK parent: %v", err)
	}
	// the overlay with its backing-format extension renamed to an unknown
	// type, its backing the real qcow2
	ov, err := os.ReadFile(filepath.Join(dir, "gpt-ext4.overlay.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(ov[:4096], []byte{0xe2, 0x79, 0x2a, 0xca})
	if i < 0 {
		t.Fatal("the overlay has no backing format extension")
	}
	copy(ov[i:], []byte{0x12, 0x34, 0x56, 0x78})
	sub := filepath.Join(tmp, "nofmt")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "ov.qcow2"), ov, 0o644)
	if err := os.Link(filepath.Join(dir, "gpt-ext4.qcow2"), filepath.Join(sub, "gpt-ext4.qcow2")); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "gpt-ext4.qcow2"))
		os.WriteFile(filepath.Join(sub, "gpt-ext4.qcow2"), b, 0o644)
	}
	img, err := disk.Open(filepath.Join(sub, "ov.qcow2"), &disk.Options{Backing: disk.BackingDir(sub, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	want := `backing file "gpt-ext4.qcow2" read from ` + filepath.Join(sub, "gpt-ext4.qcow2") + ` (qcow2); the image records no backing format: probed by its content, as QEMU does`
	if n := img.Info().Notes; len(n) != 1 || n[0] != want {
		t.Errorf("notes %q, want %q", n, want)
	}
}

// A backing name resolves against the directory of the image that names
// it, as QEMU resolves it: top.qcow names sub/mid-x.qcow, which names
// gpt-ext4.qcow2, found in sub/ (not the decoy of that name beside top).
func TestBackingNamesResolveFromTheirImage(t *testing.T) {
	dir := testfix.DiskImages(t)
	sum := sums(t, dir)
	tmp := t.TempDir()
	os.Mkdir(filepath.Join(tmp, "sub"), 0o755)
	overlay, err := os.ReadFile(filepath.Join(dir, "gpt-ext4.overlay.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	top := bytes.Replace(overlay, []byte("gpt-ext4.qcow2"), []byte("sub/mid-x.qcow"), 1)
	os.WriteFile(filepath.Join(tmp, "top.qcow"), top, 0o644)
	os.WriteFile(filepath.Join(tmp, "sub", "mid-x.qcow"), overlay, 0o644)
	base, err := os.ReadFile(filepath.Join(dir, "gpt-ext4.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, "sub", "gpt-ext4.qcow2"), base, 0o644)
	os.WriteFile(filepath.Join(tmp, "gpt-ext4.qcow2"), make([]byte, 1<<20), 0o644) // a decoy beside top
	img, err := disk.Open(filepath.Join(tmp, "top.qcow"), &disk.Options{Backing: disk.BackingDir(tmp, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	in := img.Info()
	if in.Backing == nil || in.Backing.Files[0] != filepath.Join(tmp, "sub", "mid-x.qcow") || in.Backing.Backing == nil ||
		in.Backing.Backing.Files[0] != filepath.Join(tmp, "sub", "gpt-ext4.qcow2") {
		t.Fatalf("chain %+v", in)
	}
	if got := digest(t, img); got != sum["gpt-ext4.overlay.qcow2"] {
		t.Errorf("sha256 %s, qemu-img reads %s", got, sum["gpt-ext4.overlay.qcow2"])
	}
}
