package xfs_test

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/evidence/xfs"
)

// walkHash lists the whole tree of src and hashes every regular file on
// the given number of goroutines, as fs ls -R --hash and drift do. It
// returns the files and bytes hashed.
func walkHash(tb testing.TB, src vfs.Source, workers int) (int, int64) {
	var files []string
	err := evidence.Walk(context.Background(), src, ".", func(st *vfs.Stat, err error) error {
		if err != nil {
			return err
		}
		if st.Mode.IsRegular() {
			files = append(files, st.Name)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var total int64
	var wg sync.WaitGroup
	next := make(chan string)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 128<<10)
			h := sha256.New()
			for name := range next {
				f, err := src.Open(name)
				if err != nil {
					tb.Error(err)
					continue
				}
				h.Reset()
				n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
				f.Close()
				if err != nil {
					tb.Error(err)
				}
				h.Sum(nil)
				mu.Lock()
				total += n
				mu.Unlock()
			}
		}()
	}
	for _, n := range files {
		next <- n
	}
	close(next)
	wg.Wait()
	return len(files), total
}

// The benchmark pair the speed target is measured with: walking and
// hashing every file of the v5 fixture image through this package, and
// through evidence.OpenDir on the kernel's loop mount of the same image
// (page cache warm in both after the first round). Each round opens the
// source afresh, as a run of the CLI would.
func benchWalk(b *testing.B, kernel bool, workers int) {
	img := xfs.FixtureImage(b, "v5")
	var open func() (vfs.Source, error)
	if kernel {
		mnt := mountImage(b, img)
		open = func() (vfs.Source, error) { return evidence.OpenDir(mnt) }
	} else {
		fh, err := os.Open(img)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { fh.Close() })
		st, _ := fh.Stat()
		open = func() (vfs.Source, error) { return xfs.Open(fh, st.Size(), nil) }
	}
	// warm the page cache
	src, err := open()
	if err != nil {
		b.Fatal(err)
	}
	walkHash(b, src, workers)
	src.Close()
	b.ResetTimer()
	var bytes int64
	for i := 0; i < b.N; i++ {
		src, err := open()
		if err != nil {
			b.Fatal(err)
		}
		_, n := walkHash(b, src, workers)
		src.Close()
		bytes = n
	}
	b.SetBytes(bytes)
}

func BenchmarkWalkHashKernel(b *testing.B)  { benchWalk(b, true, 1) }
func BenchmarkWalkHashXFS(b *testing.B)     { benchWalk(b, false, 1) }
func BenchmarkWalkHashKernel2(b *testing.B) { benchWalk(b, true, 2) }
func BenchmarkWalkHashXFS2(b *testing.B)    { benchWalk(b, false, 2) }

// BenchmarkWalkKernel and BenchmarkWalkXFS measure the listing alone
// (lstat of every entry, no content).
func BenchmarkWalkKernel(b *testing.B) { benchList(b, true) }
func BenchmarkWalkXFS(b *testing.B)    { benchList(b, false) }

func benchList(b *testing.B, kernel bool) {
	img := xfs.FixtureImage(b, "v5")
	var src vfs.Source
	var err error
	if kernel {
		src, err = evidence.OpenDir(mountImage(b, img))
	} else {
		fh, ferr := os.Open(img)
		if ferr != nil {
			b.Fatal(ferr)
		}
		b.Cleanup(func() { fh.Close() })
		st, _ := fh.Stat()
		src, err = xfs.Open(fh, st.Size(), nil)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		evidence.Walk(context.Background(), src, ".", func(st *vfs.Stat, err error) error {
			n++
			return err
		})
		if n != 7436 {
			b.Fatalf("walked %d entries", n)
		}
	}
}
