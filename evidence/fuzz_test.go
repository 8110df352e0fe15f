package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// sparseSeeds are small sparse members written by GNU tar in each sparse
// format it has, so that the fuzzer starts from real sparse maps.
func sparseSeeds(f *testing.F) [][]byte {
	dir := f.TempDir()
	img := filepath.Join(dir, "s.img")
	fh, err := os.Create(img)
	if err != nil {
		f.Fatal(err)
	}
	fh.WriteAt([]byte("data at 16k"), 16<<10)
	fh.WriteAt([]byte("tail"), 60<<10)
	fh.Truncate(64 << 10)
	fh.Close()
	var out [][]byte
	for _, args := range [][]string{{"--sparse"}, {"--format=posix", "--sparse", "--sparse-version=0.0"}, {"--format=posix", "--sparse", "--sparse-version=0.1"}, {"--format=posix", "--sparse", "--sparse-version=1.0"}} {
		cmd := exec.Command("tar", append(args, "-cf", "-", "s.img")...)
		cmd.Dir = dir
		b, err := cmd.Output()
		if err != nil {
			f.Fatalf("tar %v: %v", args, err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzArchive feeds arbitrary bytes to the archive indexer and reads
// everything it indexed: no panic, no read past the input, bounded work.
// The seeds include real GNU sparse members (read in place through their
// map) and compressed archives (spilled).
func FuzzArchive(f *testing.F) {
	f.Add(hostileTar(&testing.T{}))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	for _, s := range sparseSeeds(f) {
		f.Add(s)
		f.Add(compress(&testing.T{}, s, CompressionGzip))
	}
	tmp := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := NewArchive(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz.tar", &ArchiveOptions{MaxMembers: 1000, MaxSpill: 1 << 20, TempDir: tmp})
		if err != nil {
			return
		}
		defer a.Close()
		exercise(a)
	})
}

// exercise reads everything a source lists.
func exercise(src Source) {
	Walk(context.Background(), src, ".", func(st *Stat, err error) error {
		if err != nil || st == nil {
			return nil
		}
		src.Xattrs(st.Name)
		if st.Mode.IsRegular() {
			if fl, err := src.Open(st.Name); err == nil {
				io.Copy(io.Discard, io.LimitReader(fl, 1<<20))
				var b [16]byte
				fl.ReadAt(b[:], fl.Size()-8)
				fl.Close()
			}
		}
		if st.Mode.IsDir() {
			src.ReadDir(st.Name)
		}
		Resolve(src, st.Name, true)
		return nil
	})
}

// FuzzCacheIndex feeds damaged indexes to the cache's decoder (the
// checksum recomputed, so the fuzzer reaches the decoding): the cache is
// outside the evidence but still input, so nothing read back may panic,
// index out of range or read outside the data file.
func FuzzCacheIndex(f *testing.F) {
	for _, raw := range append([][]byte{hostileTar(&testing.T{})}, sparseSeeds(f)...) {
		gz := compress(&testing.T{}, raw, CompressionGzip)
		a, err := NewArchive(context.Background(), bytes.NewReader(gz), int64(len(gz)), "seed.tar.gz", &ArchiveOptions{TempDir: f.TempDir()})
		if err != nil {
			f.Fatal(err)
		}
		st, _ := a.spill.Stat()
		f.Add(encodeIndex(a, indexHeader{comp: CompressionGzip}), st.Size())
		a.Close()
	}
	data, err := os.CreateTemp(f.TempDir(), "data")
	if err != nil {
		f.Fatal(err)
	}
	data.Truncate(1 << 16)
	f.Fuzz(func(t *testing.T, idx []byte, size int64) {
		if size < 0 || size > 1<<16 || len(idx) < sha256.Size {
			return
		}
		body := idx[:len(idx)-sha256.Size]
		sum := sha256.Sum256(body)
		buf := append(append([]byte{}, body...), sum[:]...)
		a, _, err := decodeIndex(buf, size, "fuzz")
		if err != nil {
			return
		}
		a.spill = data
		exercise(a)
		a.ReadDirNames(".")
		a.Warnings()
	})
}

// FuzzProbe runs the content probes and the description of unknown files
// on arbitrary first bytes.
func FuzzProbe(f *testing.F) {
	f.Add(hostileTar(&testing.T{})[:512])
	f.Add([]byte("QFI\xfb"))
	f.Add(compress(&testing.T{}, hostileTar(&testing.T{}), CompressionZstd))
	f.Fuzz(func(t *testing.T, head []byte) {
		for _, p := range probes {
			p.match(head, bytes.NewReader(head), int64(len(head)))
		}
		if describe(head, int64(len(head))) == "" {
			t.Fatal("no description")
		}
	})
}
