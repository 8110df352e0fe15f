package evidence

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/deadnode/deadnode/internal/testfix"
)

// bench300 is a .tar.gz of about 300 MiB made of copies of the committed
// node collection, each under its own top-level directory (made once, kept
// in the gitignored cache dir).
func bench300(b *testing.B) string {
	return generated(b, "bench-300m.tar.gz", func(w io.Writer) error {
		zw := gzip.NewWriter(w)
		tw := tar.NewWriter(zw)
		cw := &countWriter{w: w}
		zw.Reset(cw)
		for i := 0; cw.n < 300<<20; i++ {
			f, err := os.Open(testfix.NodeArchive(b))
			if err != nil {
				return err
			}
			zr, err := gzip.NewReader(f)
			if err != nil {
				return err
			}
			tr := tar.NewReader(zr)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				h.Name = fmt.Sprintf("copy%03d/%s", i, h.Name)
				if h.Linkname != "" && h.Typeflag == tar.TypeLink {
					h.Linkname = fmt.Sprintf("copy%03d/%s", i, h.Linkname)
				}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return err
				}
			}
			f.Close()
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return zw.Close()
	})
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// openList is what a command does first: open the evidence and list it.
func openList(b *testing.B, p string, o *OpenOptions) *Evidence {
	ev, err := Open(context.Background(), p, o)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	if err := Walk(context.Background(), ev.Source, ".", func(st *Stat, err error) error { n++; return err }); err != nil || n < 40_000 {
		b.Fatalf("%d entries, %v", n, err)
	}
	return ev
}

// BenchmarkCollectionCache compares the first command on a 300 MiB
// .tar.gz (decompressed and indexed into an empty cache) with the next
// (the cache entry reused). Issue 15.5 wants the second under 30% of the
// first.
func BenchmarkCollectionCache(b *testing.B) {
	p := bench300(b)
	st, _ := os.Stat(p)
	b.Logf("%s: %d MiB", filepath.Base(p), st.Size()>>20)
	b.Run("cold", func(b *testing.B) {
		b.SetBytes(st.Size())
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			cache := b.TempDir()
			b.StartTimer()
			ev := openList(b, p, &OpenOptions{CacheDir: cache})
			if ev.Cache.Hit {
				b.Fatal("cold run hit the cache")
			}
			ev.Close()
		}
	})
	b.Run("warm", func(b *testing.B) {
		cache := b.TempDir()
		openList(b, p, &OpenOptions{CacheDir: cache}).Close()
		b.SetBytes(st.Size())
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ev := openList(b, p, &OpenOptions{CacheDir: cache})
			if !ev.Cache.Hit {
				b.Fatal("warm run missed the cache")
			}
			ev.Close()
		}
	})
	b.Run("nocache", func(b *testing.B) {
		tmp := b.TempDir()
		b.SetBytes(st.Size())
		for i := 0; i < b.N; i++ {
			openList(b, p, &OpenOptions{NoCache: true, TempDir: tmp}).Close()
		}
	})
}
