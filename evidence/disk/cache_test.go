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
			if n, used := c.blocks.Usage(); used > 1<<20 {
				t.Fatalf("%s at %d: cache holds %d bytes in %d items", name, off, used, n)
			}
		}
		if _, used := c.blocks.Usage(); used < least { // compressed clusters and grains, or the 16 L2 tables of the v2 image
			t.Errorf("%s: the cache was hardly used (%d bytes)", name, used)
		}
		img.Close()
	}
}
