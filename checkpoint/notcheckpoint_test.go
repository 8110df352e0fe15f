package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// OpenPath lets evidence decide what a path is: a disk image or a text file
// is not a checkpoint, said in words, and is an unsupported format.
func TestOpenPathNotCheckpoint(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		content []byte
		saw     string
	}{
		"node.img":  {append([]byte("XFSB"), make([]byte, 8192)...), "a disk image"},
		"notes.tar": {[]byte("hello\n"), "no format deadnode reads (first bytes 68 65 6c 6c 6f 0a)"},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, c.content, 0o644); err != nil {
			t.Fatal(err)
		}
		cp, err := OpenPath(context.Background(), p, nil)
		var nc *NotCheckpointError
		if cp != nil || !errors.As(err, &nc) || nc.Path != p || nc.Saw != c.saw || !errors.Is(err, evidence.ErrUnsupportedFormat) {
			t.Errorf("%s: OpenPath = %v, %v", name, cp, err)
			continue
		}
		if !strings.HasSuffix(err.Error(), "(a checkpoint is a directory of CRIU images, or a .tar, .tar.gz or .tar.zst archive of one)") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
