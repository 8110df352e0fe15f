package image

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/deadnode/deadnode/evidence"
)

// The benchmark layer: 1 GiB of file data in a tar, as a gzip blob and as
// an unpacked snapshot directory, generated once under the temp dir (not
// in the repository) and reused by later runs.
const (
	benchLayerBytes = 1 << 30
	benchDirName    = "deadnode-image-bench-v1"
)

type benchLayer struct {
	dir                string // holds layer.tar, layer.tar.gz and fs/
	digest, diffID     string
	size, uncompressed int64
}

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at which
but have an they you were her she there been one all would their we him has when who will more no if out so said what up its
about into than them can only other new some could time these two may then do first any my now such like our over man me even
most made after also did many before must through back years where much your way well down should because each just those
people how too little state good very make world still own see men work long get here between both life being under never day
same another know while last might us great old year off come since against go came right used take three kernel container
overlay snapshot layer digest manifest config process socket memory page runtime image`)

// fillFile writes n bytes of a file: alternately pseudo-text (compresses
// about 3:1) and random bytes (incompressible), as real layers mix text,
// binaries and already-compressed data.
func fillFile(w io.Writer, rng *rand.Rand, n int64, kind int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if kind%2 == 0 {
		for n > 0 {
			word := words[rng.Intn(len(words))] + " "
			if rng.Intn(12) == 0 {
				word = fmt.Sprintf("%d\n", rng.Intn(100000))
			}
			if int64(len(word)) > n {
				word = word[:n]
			}
			bw.WriteString(word)
			n -= int64(len(word))
		}
	} else {
		buf := make([]byte, 64<<10)
		for n > 0 {
			rng.Read(buf)
			m := int64(len(buf))
			if m > n {
				m = n
			}
			bw.Write(buf[:m])
			n -= m
		}
	}
	return bw.Flush()
}

func makeBenchLayer(b *testing.B) *benchLayer {
	base := filepath.Join(os.TempDir(), benchDirName)
	meta := filepath.Join(base, "meta")
	bl := &benchLayer{dir: base}
	if m, err := os.ReadFile(meta); err == nil {
		if _, err := fmt.Sscan(string(m), &bl.digest, &bl.diffID, &bl.size, &bl.uncompressed); err == nil {
			return bl
		}
	}
	os.RemoveAll(base)
	if err := os.MkdirAll(filepath.Join(base, "fs"), 0o755); err != nil {
		b.Fatal(err)
	}
	b.Logf("generating a %d-byte layer in %s", benchLayerBytes, base)
	tf, err := os.Create(filepath.Join(base, "layer.tar"))
	if err != nil {
		b.Fatal(err)
	}
	gf, err := os.Create(filepath.Join(base, "layer.tar.gz"))
	if err != nil {
		b.Fatal(err)
	}
	zw := gzip.NewWriter(gf)
	tw := tar.NewWriter(io.MultiWriter(tf, zw))
	rng := rand.New(rand.NewSource(1))
	var total int64
	for d := 0; total < benchLayerBytes; d++ {
		dir := fmt.Sprintf("usr/lib/pkg%03d", d)
		if err := os.MkdirAll(filepath.Join(base, "fs", dir), 0o755); err != nil {
			b.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, Format: tar.FormatPAX})
		for i := 0; i < 32 && total < benchLayerBytes; i++ {
			// Sizes from 1 KiB to 4 MiB, log-spread.
			n := int64(1024) << uint(rng.Intn(13))
			n += rng.Int63n(n)
			if total+n > benchLayerBytes {
				n = benchLayerBytes - total
			}
			name := fmt.Sprintf("%s/file%02d.dat", dir, i)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: n, Format: tar.FormatPAX})
			df, err := os.Create(filepath.Join(base, "fs", name))
			if err != nil {
				b.Fatal(err)
			}
			seed := rng.Int63()
			if err := fillFile(io.MultiWriter(tw, df), rand.New(rand.NewSource(seed)), n, i); err != nil {
				b.Fatal(err)
			}
			df.Close()
			total += n
		}
	}
	// Parent directories are created with mode 0755 by the unpacker too.
	for _, d := range []string{"usr", "usr/lib"} {
		os.Chmod(filepath.Join(base, "fs", d), 0o755)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	zw.Close()
	tf.Close()
	gf.Close()
	src, err := evidence.OpenDir(base)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	g, _ := src.Open("layer.tar.gz")
	r, err := VerifyLayer(context.Background(), io.NewSectionReader(g, 0, g.Size()), Layer{MediaType: MediaTypeOCILayerGzip}, nil, "", nil)
	g.Close()
	if err != nil {
		b.Fatal(err)
	}
	bl.digest, bl.diffID, bl.size, bl.uncompressed = r.ComputedDigest, r.ComputedDiffID, r.CompressedBytes, r.UncompressedBytes
	os.WriteFile(meta, []byte(fmt.Sprintf("%s %s %d %d\n", bl.digest, bl.diffID, bl.size, bl.uncompressed)), 0o644)
	return bl
}

// BenchmarkVerifyLayer1GiB verifies the gzip layer against its unpacked
// snapshot: one pass over the blob, the diff_id, and every file compared.
// MB/s is of uncompressed bytes, as for the sha256sum floor below.
func BenchmarkVerifyLayer1GiB(b *testing.B) {
	bl := makeBenchLayer(b)
	src, err := evidence.OpenDir(bl.dir)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	l := Layer{MediaType: MediaTypeOCILayerGzip, Digest: bl.digest, Size: bl.size, DiffID: bl.diffID}
	b.SetBytes(bl.uncompressed)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := src.Open("layer.tar.gz")
		if err != nil {
			b.Fatal(err)
		}
		r, err := VerifyLayer(context.Background(), io.NewSectionReader(f, 0, f.Size()), l, src, "fs", nil)
		f.Close()
		if err != nil || r.Status != StatusVerified {
			b.Fatalf("%v %+v", err, r)
		}
	}
}

// BenchmarkSha256sumFloor runs coreutils sha256sum over the same
// uncompressed tar: the floor the verification is measured against.
func BenchmarkSha256sumFloor(b *testing.B) {
	bl := makeBenchLayer(b)
	b.SetBytes(bl.uncompressed)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := exec.Command("sha256sum", filepath.Join(bl.dir, "layer.tar")).Output()
		if err != nil {
			b.Fatal(err)
		}
		if "sha256:"+strings.Fields(string(out))[0] != bl.diffID {
			b.Fatalf("sha256sum %s, diff_id %s", out, bl.diffID)
		}
	}
}

// BenchmarkVerifyVsFloor pairs the two measurements in each iteration, so
// that both see the same machine load: sha256sum over the uncompressed
// tar, then VerifyLayer over the gzip blob and the snapshot. It reports the
// wall-clock throughput of each (MB/s of uncompressed bytes), their ratio,
// and the CPU seconds each spent per GiB (load-independent).
func BenchmarkVerifyVsFloor(b *testing.B) {
	bl := makeBenchLayer(b)
	src, err := evidence.OpenDir(bl.dir)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	l := Layer{MediaType: MediaTypeOCILayerGzip, Digest: bl.digest, Size: bl.size, DiffID: bl.diffID}
	var floorWall, verifyWall time.Duration
	var floorCPU, verifyCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("sha256sum", filepath.Join(bl.dir, "layer.tar"))
		t0 := time.Now()
		if out, err := cmd.Output(); err != nil || "sha256:"+strings.Fields(string(out))[0] != bl.diffID {
			b.Fatalf("sha256sum: %v %s", err, out)
		}
		fw := time.Since(t0)
		floorWall += fw
		floorCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()

		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		t0 = time.Now()
		f, err := src.Open("layer.tar.gz")
		if err != nil {
			b.Fatal(err)
		}
		r, err := VerifyLayer(context.Background(), io.NewSectionReader(f, 0, f.Size()), l, src, "fs", nil)
		f.Close()
		if err != nil || r.Status != StatusVerified {
			b.Fatalf("%v %+v", err, r)
		}
		vw := time.Since(t0)
		verifyWall += vw
		b.Logf("iteration %d: sha256sum %.1f MB/s, verify %.1f MB/s, ratio %.2f", i,
			float64(bl.uncompressed)/1e6/fw.Seconds(), float64(bl.uncompressed)/1e6/vw.Seconds(), fw.Seconds()/vw.Seconds())
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		verifyCPU += time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	}
	mb := float64(bl.uncompressed) * float64(b.N) / 1e6
	gib := float64(bl.uncompressed) * float64(b.N) / (1 << 30)
	b.ReportMetric(mb/verifyWall.Seconds(), "verify-MB/s")
	b.ReportMetric(mb/floorWall.Seconds(), "sha256sum-MB/s")
	b.ReportMetric(floorWall.Seconds()/verifyWall.Seconds(), "verify/floor")
	b.ReportMetric(verifyCPU.Seconds()/gib, "verify-cpu-s/GiB")
	b.ReportMetric(floorCPU.Seconds()/gib, "sha256sum-cpu-s/GiB")
}

// BenchmarkDigestsOnly1GiB checks the blob alone (compressed digest, size,
// diff_id), without a snapshot: the decompression-bound part of the work.
func BenchmarkDigestsOnly1GiB(b *testing.B) {
	bl := makeBenchLayer(b)
	src, err := evidence.OpenDir(bl.dir)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	l := Layer{MediaType: MediaTypeOCILayerGzip, Digest: bl.digest, Size: bl.size, DiffID: bl.diffID}
	b.SetBytes(bl.uncompressed)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := src.Open("layer.tar.gz")
		if err != nil {
			b.Fatal(err)
		}
		r, err := VerifyLayer(context.Background(), io.NewSectionReader(f, 0, f.Size()), l, nil, "", nil)
		f.Close()
		if err != nil || r.Status != StatusVerified {
			b.Fatalf("%v %+v", err, r)
		}
	}
}
