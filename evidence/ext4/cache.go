package ext4

import "sync"

// lru is a bounded, concurrency-safe least-recently-used cache. Each value
// has a cost (1 for a block or an inode, the entry count for a directory);
// the cache drops the oldest values while the total exceeds its budget.
// Values are shared between callers and never modified once stored.
type lru[K comparable, V any] struct {
	mu     sync.Mutex
	budget int
	cost   int
	items  map[K]*lruItem[K, V]
	head   lruItem[K, V] // sentinel: head.next is the newest, head.prev the oldest
}

type lruItem[K comparable, V any] struct {
	key        K
	val        V
	cost       int
	prev, next *lruItem[K, V]
}

func newLRU[K comparable, V any](budget int) *lru[K, V] {
	c := &lru[K, V]{budget: budget, items: make(map[K]*lruItem[K, V])}
	c.head.next, c.head.prev = &c.head, &c.head
	return c
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.unlink(it)
	c.pushFront(it)
	return it.val, true
}

// put stores v under k; a value costing more than the whole budget is not
// kept.
func (c *lru[K, V]) put(k K, v V, cost int) {
	if cost > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.items[k]; ok {
		c.unlink(old)
		c.cost -= old.cost
		delete(c.items, k)
	}
	it := &lruItem[K, V]{key: k, val: v, cost: cost}
	c.items[k] = it
	c.pushFront(it)
	c.cost += cost
	for c.cost > c.budget && c.head.prev != &c.head {
		old := c.head.prev
		c.unlink(old)
		c.cost -= old.cost
		delete(c.items, old.key)
	}
}

func (c *lru[K, V]) unlink(it *lruItem[K, V]) {
	it.prev.next = it.next
	it.next.prev = it.prev
}

func (c *lru[K, V]) pushFront(it *lruItem[K, V]) {
	it.prev = &c.head
	it.next = c.head.next
	c.head.next.prev = it
	c.head.next = it
}

// reset drops every value.
func (c *lru[K, V]) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = make(map[K]*lruItem[K, V])
	c.head.next, c.head.prev = &c.head, &c.head
	c.cost = 0
}
