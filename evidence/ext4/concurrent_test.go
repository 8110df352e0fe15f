package ext4_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/ext4"
)

// TestConcurrentReads hashes every file of an image on four goroutines
// through one FS whose block cache is tiny (so blocks are evicted while
// others read them), and requires the same digests as one reader alone.
// Run with -race.
func TestConcurrentReads(t *testing.T) {
	_, img := openImage(t, "ext4-1k")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	fsys, err := ext4.Open(f, fi.Size(), &ext4.Options{CacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	if err := evidence.Walk(context.Background(), fsys, ".", func(st *evidence.Stat, err error) error {
		if err != nil {
			return err
		}
		if st.Mode.IsRegular() && st.Size < 1<<20 {
			files = append(files, st.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, n := range files {
		h, err := hashFile(fsys, n)
		if err != nil {
			t.Fatal(err)
		}
		want[n] = h
	}
	fresh, err := ext4.Open(f, fi.Size(), &ext4.Options{CacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(files)+w; i++ {
				n := files[i%len(files)]
				h, err := hashFile(fresh, n)
				if err != nil || h != want[n] {
					t.Errorf("%s: %s %v, want %s", n, h, err, want[n])
					return
				}
				if _, err := fresh.Lstat(n); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if len(files) < 3000 {
		t.Errorf("only %d files", len(files))
	}
}
