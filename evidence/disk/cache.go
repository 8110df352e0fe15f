package disk

import (
	"container/list"
	"sync"
)

// cache is an LRU of byte blocks (L2 tables, grain tables, decompressed
// clusters and grains) bounded in total bytes, safe for concurrent use.
// Blocks handed out are shared: callers only read them.
type cache struct {
	mu    sync.Mutex
	limit int64
	used  int64
	ll    list.List // front: most recently used
	items map[cacheKey]*list.Element
}

type cacheKey struct {
	space uint32 // which table or data kind, and which extent
	off   int64  // byte offset in the file
}

type cacheEntry struct {
	key  cacheKey
	data []byte
}

func newCache(limit int64) *cache {
	if limit <= 0 {
		limit = DefaultCacheBytes
	}
	return &cache{limit: limit, items: make(map[cacheKey]*list.Element)}
}

func (c *cache) get(k cacheKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*cacheEntry).data, true
	}
	return nil, false
}

func (c *cache) put(k cacheKey, data []byte) {
	if int64(len(data)) > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, data: data})
	c.used += int64(len(data))
	for c.used > c.limit {
		e := c.ll.Back()
		ce := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.items, ce.key)
		c.used -= int64(len(ce.data))
	}
}

// load returns the cached block for k, or reads it with fill and caches it.
// Two goroutines may fill the same block at once; both results are equal.
func (c *cache) load(k cacheKey, fill func() ([]byte, error)) ([]byte, error) {
	if b, ok := c.get(k); ok {
		return b, nil
	}
	b, err := fill()
	if err != nil {
		return nil, err
	}
	c.put(k, b)
	return b, nil
}
