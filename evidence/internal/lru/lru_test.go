package lru

import (
	"fmt"
	"sync"
	"testing"
)

func TestCacheEvictsOldestWithinBudget(t *testing.T) {
	c := New[string, int](10)
	c.Put("a", 1, 4)
	c.Put("b", 2, 4)
	if v, ok := c.Get("a"); !ok || v != 1 { // a is now newer than b
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}
	c.Put("c", 3, 4) // 12 > 10: b, the oldest, goes
	if _, ok := c.Get("b"); ok {
		t.Error("b kept past the budget")
	}
	if n, cost := c.Usage(); n != 2 || cost != 8 {
		t.Errorf("usage %d values, cost %d; want 2, 8", n, cost)
	}
	c.Put("a", 10, 6) // replaced: cost 6+4
	if v, _ := c.Get("a"); v != 10 {
		t.Errorf("a = %d after replacing, want 10", v)
	}
	if n, cost := c.Usage(); n != 2 || cost != 10 {
		t.Errorf("usage %d values, cost %d; want 2, 10", n, cost)
	}
	c.Put("huge", 0, 11) // more than the budget: not kept, nothing dropped
	if _, ok := c.Get("huge"); ok {
		t.Error("a value over the whole budget was kept")
	}
	if n, _ := c.Usage(); n != 2 {
		t.Errorf("%d values after an oversized put, want 2", n)
	}
	c.Reset()
	if n, cost := c.Usage(); n != 0 || cost != 0 {
		t.Errorf("usage after Reset: %d, %d", n, cost)
	}
	if _, ok := c.Get("a"); ok {
		t.Error("a survived Reset")
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := New[int, string](64)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				k := (i * (g + 1)) % 200
				if v, ok := c.Get(k); ok && v != fmt.Sprint(k) {
					t.Errorf("Get(%d) = %q", k, v)
					return
				}
				c.Put(k, fmt.Sprint(k), 1)
			}
		}()
	}
	wg.Wait()
	if n, cost := c.Usage(); n != 64 || cost != 64 {
		t.Errorf("usage %d values, cost %d; want 64, 64", n, cost)
	}
}
