package containerd

import (
	"strings"
	"testing"

	"github.com/deadnode/deadnode/forensics/internal/boltdb/bolttest"
)

// hostileRoot is a config.toml root with terminal controls: ESC CSI
// (clear screen), an OSC title with BEL, and C1 CSI and OSC.
const hostileRoot = "/tmp/\x1b[2J\x1b]0;pwned\x07\u009b31m\u009dX/var/lib/containerd"

// Text from the evidence reaches notes and warnings exactly as it is: the
// readers keep it (JSON keeps the bytes), and the CLI escapes it when it
// prints a line (render.Clean; cmd/deadnode's hostile render test).
func TestHostileTextKeptExact(t *testing.T) {
	cfg := "version = 2\nroot = \"/tmp/\\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m\\u009dX/var/lib/containerd\"\n"
	src := &bolttest.Source{Source: nodeSource(t), Name: "etc/containerd/config.toml", Data: []byte(cfg)}
	s, err := Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "containerd root " + hostileRoot + " from /etc/containerd/config.toml (not in the evidence as it is; found at /var/lib/containerd)"
	if len(s.Notes) != 1 || s.Notes[0] != want {
		t.Errorf("notes %q, want %q", s.Notes, want)
	}
	if s.Root != "/var/lib/containerd" || len(s.Containers) != 6 {
		t.Errorf("root %s, %d containers", s.Root, len(s.Containers))
	}
	if !strings.Contains(s.Notes[0], "\x1b]0;pwned\x07") {
		t.Error("the OSC sequence was altered")
	}
}
