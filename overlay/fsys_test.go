package overlay

import (
	"io/fs"
	"testing"
	"testing/fstest"
)

// The merged view passes io/fs's own conformance checks (ReadDir, Stat,
// Open, ReadLink and Lstat agree with each other everywhere).
func TestFSConformance(t *testing.T) {
	v, err := New(snapshotLayers(nodeArchive(t), attackedSnapshots), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Subtrees: /bin's 268 links to the 2 MB busybox (and the 2 MB miner, read byte by byte by iotest) make the whole
	// tree slow to check, not different.
	for dir, want := range map[string]string{"etc": "passwd", "opt": "cache/c.dat", "app": "server.sh", "root": ".loot/creds.txt", "usr": "local/bin/backdoor.sh"} {
		sub, err := fs.Sub(v, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := fstest.TestFS(sub, want); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
	n := 0
	err = fs.WalkDir(v, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil || n != 309 {
		t.Errorf("fs.WalkDir: %d entries, %v", n, err)
	}
}

// The same on the synthetic layers: renamed dirs, metacopy files, xattr
// whiteouts, opaque dirs.
func TestFSConformanceSynthetic(t *testing.T) {
	v, err := New(dirLayers(t, buildLayers(t)...), nil)
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{"newdir": "sub/y.txt", "moved": "here/q/r.txt", "data": "renamed.bin", "xw": "kept", "opt": "cache/c.dat", "var": "log/new.log", "thing": "now-a-dir.txt"} {
		sub, err := fs.Sub(v, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := fstest.TestFS(sub, want); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
}
