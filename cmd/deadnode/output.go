package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// checkOutput refuses an output path that lies inside the evidence (the
// --root directory, or the given host SOURCE directories): deadnode never
// writes to evidence, not even when asked to. Links are resolved, and a
// path not created yet is judged by its nearest existing ancestor.
func (a *app) checkOutput(out string, sources ...string) error {
	if out == "" || out == "-" {
		return nil
	}
	target := realPath(out)
	for _, ev := range append([]string{a.root}, sources...) {
		if ev == "" {
			continue
		}
		if st, err := os.Stat(ev); err != nil || !st.IsDir() {
			continue // an archive: writing beside it changes nothing in it
		}
		root := realPath(ev)
		if target == root || strings.HasPrefix(target, root+string(filepath.Separator)) {
			return fmt.Errorf("refusing to write %s: it is inside the evidence %s", out, ev)
		}
	}
	return nil
}

// realPath resolves links of the longest existing prefix of p.
func realPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	// A link at the path itself, even dangling, is where a write would go.
	for hops := 0; hops < 40; hops++ {
		fi, err := os.Lstat(abs)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		t, err := os.Readlink(abs)
		if err != nil {
			break
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(abs), t)
		}
		abs = filepath.Clean(t)
	}
	rest := ""
	for cur := abs; ; cur = filepath.Dir(cur) {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		if cur == filepath.Dir(cur) {
			return abs
		}
		rest = filepath.Join(filepath.Base(cur), rest)
	}
}
