package checkpoint

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/testfix"
)

// cancelAfter is a source that cancels a context at its n-th Open and
// counts the Opens after that.
type cancelAfter struct {
	evidence.Source
	n, opens atomic.Int64
	cancel   context.CancelFunc
}

func (c *cancelAfter) Open(name string) (evidence.File, error) {
	if c.opens.Add(1) == c.n.Load() {
		c.cancel()
	}
	return c.Source.Open(name)
}

// Every open of a checkpoint stops with the context: cancelled before it
// starts, or while it decodes (here after 100 of the 40,000 tasks of the
// deep chain, and the decoding stopped within a few hundred images).
func TestOpenCancel(t *testing.T) {
	a, err := evidence.OpenArchive(context.Background(), deepArchive, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cctx, cancel := context.WithCancel(context.Background())
	src := &cancelAfter{Source: a, cancel: cancel}
	src.n.Store(100)
	if _, err := Open(cctx, src, "", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("open: %v", err)
	}
	if n := src.opens.Load(); n > 1000 {
		t.Fatalf("%d images opened: the cancellation was not seen", n)
	}
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	node := testfix.NodeArchive(t)
	na, err := evidence.OpenArchive(context.Background(), node, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer na.Close()
	const content = "node/var/lib/containerd/io.containerd.content.v1.content"
	for name, open := range map[string]func() error{
		"OpenPath archive": func() error { _, err := OpenPath(done, deepArchive, nil); return err },
		"OpenPath dir":     func() error { _, err := OpenPath(done, filepath.Dir(deepArchive), nil); return err },
		"Open":             func() error { _, err := Open(done, a, "", nil); return err },
		"OpenKubelet": func() error {
			_, err := OpenKubelet(done, na, content+"/blobs/sha256/e0887a740405e8e82b548ba2e2a06fa92d61b1da04314b768ed186adad0a5d05", nil)
			return err
		},
		"OpenContainerd": func() error {
			_, err := OpenContainerd(done, na, content, "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", nil)
			return err
		},
		"FindContainerd": func() error { _, err := FindContainerd(done, na, content); return err },
	} {
		if err := open(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Cancelled while the executables' origins are looked up: the open
	// fails rather than return a part of the checkpoint.
	cctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	_, err = OpenContainerd(cctx, na, content, "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96",
		&ContainerdOptions{Options: Options{ExeOrigin: func(string) string { cancel(); return "" }}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled in ExeOrigin: %v", err)
	}
}
