package xfs

import "sync"

// lru is a mutex-guarded least-recently-used cache bounded by the sum of
// its entries' costs. Values are shared: callers never modify them.
type lru[K comparable, V any] struct {
	mu     sync.Mutex
	budget int64
	cost   int64
	m      map[K]*lruEntry[K, V]
	head   lruEntry[K, V] // sentinel: head.next is the most recent
}

type lruEntry[K comparable, V any] struct {
	k          K
	v          V
	cost       int64
	prev, next *lruEntry[K, V]
}

func newLRU[K comparable, V any](budget int64) *lru[K, V] {
	c := &lru[K, V]{budget: budget, m: map[K]*lruEntry[K, V]{}}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

func (c *lru[K, V]) unlink(e *lruEntry[K, V]) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (c *lru[K, V]) pushFront(e *lruEntry[K, V]) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.unlink(e)
	c.pushFront(e)
	return e.v, true
}

func (c *lru[K, V]) put(k K, v V, cost int64) {
	if cost > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.cost += cost - e.cost
		e.v, e.cost = v, cost
		c.unlink(e)
		c.pushFront(e)
	} else {
		e := &lruEntry[K, V]{k: k, v: v, cost: cost}
		c.m[k] = e
		c.pushFront(e)
		c.cost += cost
	}
	for c.cost > c.budget && c.head.prev != &c.head {
		old := c.head.prev
		c.unlink(old)
		delete(c.m, old.k)
		c.cost -= old.cost
	}
}

func (c *lru[K, V]) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = map[K]*lruEntry[K, V]{}
	c.head.prev, c.head.next = &c.head, &c.head
	c.cost = 0
}
