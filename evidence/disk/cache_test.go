package disk

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// TestCacheStaysBounded reads whole compressed images through a 1 MiB cache:
// the cache never holds more, whatever the image's size.
func TestCacheStaysBounded(t *testing.T) {
	dir := testfix.DiskImages(t)
	for name, least := range map[string]int64{"gpt-ext4.zstd.qcow2": 512 << 10, "gpt-ext4.v2.qcow2": 16 * 4096, "gpt-xfs.vmdk": 512 << 10} {
		img, err := Open(filepath.Join(dir, name), &Options{CacheBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		var c *cache
		switch m := img.(type) {
		case *qcow2Image:
			c = m.cache
		case *vmdkImage:
			c = m.cache
		}
		buf := make([]byte, 256<<10)
		for off := int64(0); off < img.Size(); off += int64(len(buf)) {
			if _, err := img.ReadAt(buf, off); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			c.mu.Lock()
			used, n := c.used, len(c.items)
			c.mu.Unlock()
			if used > 1<<20 || n != c.ll.Len() {
				t.Fatalf("%s at %d: cache holds %d bytes in %d items (list %d)", name, off, used, n, c.ll.Len())
			}
		}
		c.mu.Lock()
		if c.used < least { // compressed clusters and grains, or the 16 L2 tables of the v2 image
			t.Errorf("%s: the cache was hardly used (%d bytes)", name, c.used)
		}
		c.mu.Unlock()
		img.Close()
	}
}
