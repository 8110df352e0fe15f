package vfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A FIFO where evidence was expected (a split image's next piece, a VMDK
// extent a hostile descriptor names) opens without blocking (a blocking
// open would wait for a writer forever), so that the caller can see it is
// no regular file and refuse it.
func TestOpenNoatimeFIFO(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "img.002")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenNoatime(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("stat: %v, %v", st, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	g, err := OpenInRootNoatime(root, "img.002")
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
}
