package vfs

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// followIn resolves name in a namespace where every name is a directory
// except links, symbolic links to their targets; it returns the path
// components of the result.
func followIn(links map[string]string, name string) ([]string, error) {
	stack, _, err := FollowLinks(name, "", func(stack []string, c string, more bool) (string, string, bool, error) {
		p := strings.Join(append(stack[1:len(stack):len(stack)], c), "/")
		if t, ok := links[p]; ok {
			return "", t, true, nil
		}
		return c, "", false, nil
	})
	return stack[1:], err
}

func TestFollowLinks(t *testing.T) {
	got, err := followIn(map[string]string{"a/l": "../b", "b/abs": "/c/d"}, "a/l/x/../abs/e")
	if err != nil || strings.Join(got, "/") != "c/d/e" {
		t.Fatalf("resolved %q, %v; want c/d/e", got, err)
	}
	if _, err := followIn(map[string]string{"a": "b", "b": "a"}, "a/x"); !errors.Is(err, ErrTooManyLinks) {
		t.Errorf("loop: %v", err)
	}
	// A long name of plain directories past the bound.
	if _, err := followIn(nil, strings.Repeat("d/", MaxResolveSteps+1)); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("deep name: %v", err)
	}
	// 40 hops of a link whose target is thousands of components long: each
	// target is under maxResolve, the sum is bounded by MaxResolveSteps.
	long := strings.Repeat("e/", 3000) + strings.Repeat("../", 3000) + "l"
	if _, err := followIn(map[string]string{"l": long}, "l/x"); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("long targets: %v", err)
	}
}
