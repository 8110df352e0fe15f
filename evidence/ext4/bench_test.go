package ext4_test

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/ext4"
)

// The benchmark pair of the acceptance target: walking every entry and
// hashing (sha256) every regular file of the same image, through this
// reader and through evidence.OpenDir on the kernel's loop mount of it,
// with the page cache warm in both (one untimed pass first). Compare
//
//	go test ./evidence/ext4 -run '^$' -bench 'WalkHash' -benchtime 10x
//
// ext4/fresh opens the filesystem anew for every pass (its own caches
// cold); ext4/reused keeps it, as the kernel keeps its dentry and inode
// caches. The /2 variants hash on two goroutines, as drift does.
func BenchmarkWalkHash(b *testing.B) {
	for _, img := range []string{"ext4-4k", "ext3"} {
		b.Run(img, func(b *testing.B) { benchImage(b, img, true) })
	}
}

// BenchmarkWalk is the metadata half alone: every entry listed and
// lstat'ed, no file read.
func BenchmarkWalk(b *testing.B) {
	for _, img := range []string{"ext4-4k", "ext3"} {
		b.Run(img, func(b *testing.B) { benchImage(b, img, false) })
	}
}

func benchImage(b *testing.B, img string, hash bool) {
	fsys, path := openImage(b, img)
	mnt := mountImage(b, path)
	kern, err := evidence.OpenDir(mnt)
	if err != nil {
		b.Fatal(err)
	}
	defer kern.Close()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	fresh := func() evidence.Source {
		s, err := ext4.Open(f, fi.Size(), nil)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	workers := []int{1, 2}
	if !hash {
		workers = []int{0}
	}
	for _, w := range workers {
		suffix := ""
		if w == 2 {
			suffix = "/2"
		}
		b.Run("kernel"+suffix, func(b *testing.B) { benchWalkHash(b, func() evidence.Source { return kern }, w) })
		b.Run("ext4/reused"+suffix, func(b *testing.B) { benchWalkHash(b, func() evidence.Source { return fsys }, w) })
		b.Run("ext4/fresh"+suffix, func(b *testing.B) { benchWalkHash(b, fresh, w) })
	}
}

// benchWalkHash walks the source, hashing regular files on workers
// goroutines (0: lstat every entry instead, reading nothing).
func benchWalkHash(b *testing.B, src func() evidence.Source, workers int) {
	var bytes int64
	pass := func() {
		s := src()
		files := make(chan string, 64)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var total int64
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 128<<10)
				h := sha256.New()
				var n int64
				for name := range files {
					fl, err := s.Open(name)
					if err != nil {
						b.Error(err)
						continue
					}
					h.Reset()
					c, err := io.CopyBuffer(h, fl, buf)
					fl.Close()
					if err != nil {
						b.Error(err)
					}
					n += c
					h.Sum(nil)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		err := evidence.Walk(context.Background(), s, ".", func(st *evidence.Stat, err error) error {
			if err != nil {
				return err
			}
			if workers == 0 {
				if _, err := s.Lstat(st.Name); err != nil {
					return err
				}
				mu.Lock()
				total++
				mu.Unlock()
			} else if st.Mode.IsRegular() {
				files <- st.Name
			}
			return nil
		})
		close(files)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		bytes = total
	}
	pass() // warm the page cache
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pass()
	}
	if workers == 0 {
		b.ReportMetric(float64(bytes), "entries")
	} else {
		b.SetBytes(bytes)
	}
}
