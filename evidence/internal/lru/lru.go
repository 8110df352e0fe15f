package lru

import "sync"

// Cache is a mutex-guarded LRU cache bounded by the sum of its values'
// costs. The zero value is not usable: make one with New.
type Cache[K comparable, V any] struct {
	mu     sync.Mutex
	budget int64
	cost   int64
	items  map[K]*item[K, V]
	head   item[K, V] // sentinel: head.next is the newest, head.prev the oldest
}

type item[K comparable, V any] struct {
	key        K
	val        V
	cost       int64
	prev, next *item[K, V]
}

// New returns an empty cache holding values of total cost at most budget.
func New[K comparable, V any](budget int64) *Cache[K, V] {
	c := &Cache[K, V]{budget: budget}
	c.Reset()
	return c
}

// Get returns the value stored under k and makes it the newest.
func (c *Cache[K, V]) Get(k K) (V, bool) {
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

// Put stores v under k (replacing what k held) as the newest value, then
// drops the oldest ones while the total cost exceeds the budget. A value
// costing more than the whole budget is not kept.
func (c *Cache[K, V]) Put(k K, v V, cost int64) {
	if cost > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if it, ok := c.items[k]; ok {
		c.cost += cost - it.cost
		it.val, it.cost = v, cost
		c.unlink(it)
		c.pushFront(it)
	} else {
		it := &item[K, V]{key: k, val: v, cost: cost}
		c.items[k] = it
		c.pushFront(it)
		c.cost += cost
	}
	for c.cost > c.budget && c.head.prev != &c.head {
		old := c.head.prev
		c.unlink(old)
		delete(c.items, old.key)
		c.cost -= old.cost
	}
}

// Reset drops every value.
func (c *Cache[K, V]) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = make(map[K]*item[K, V])
	c.head.next, c.head.prev = &c.head, &c.head
	c.cost = 0
}

// Usage is the number of values held and their total cost.
func (c *Cache[K, V]) Usage() (n int, cost int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.cost
}

func (c *Cache[K, V]) unlink(it *item[K, V]) {
	it.prev.next, it.next.prev = it.next, it.prev
}

func (c *Cache[K, V]) pushFront(it *item[K, V]) {
	it.prev, it.next = &c.head, c.head.next
	c.head.next.prev = it
	c.head.next = it
}
