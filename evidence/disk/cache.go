package disk

import "github.com/deadnode/deadnode/evidence/internal/lru"

// cache is an LRU of byte blocks (L2 tables, grain tables, decompressed
// clusters and grains) bounded in total bytes, safe for concurrent use.
// Blocks handed out are shared: callers only read them.
type cache struct {
	blocks *lru.Cache[cacheKey, []byte]
}

type cacheKey struct {
	space uint32 // which table or data kind, and which extent
	off   int64  // byte offset in the file
}

func newCache(limit int64) *cache {
	if limit <= 0 {
		limit = DefaultCacheBytes
	}
	return &cache{blocks: lru.New[cacheKey, []byte](limit)}
}

// load returns the cached block for k, or reads it with fill and caches it.
// Two goroutines may fill the same block at once; both results are equal.
func (c *cache) load(k cacheKey, fill func() ([]byte, error)) ([]byte, error) {
	if b, ok := c.blocks.Get(k); ok {
		return b, nil
	}
	b, err := fill()
	if err != nil {
		return nil, err
	}
	c.blocks.Put(k, b, int64(len(b)))
	return b, nil
}
