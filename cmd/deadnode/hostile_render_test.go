package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/deadnode/deadnode/internal/testfix"
)

// rawControl finds a byte sequence in terminal output that a terminal
// acts on: a C0 control other than newline and tab, DEL, a C1 control
// (U+0080–U+009F), or bytes that are not UTF-8. render.Clean's contract
// is that none reaches a table, a note or a warning.
func rawControl(s string) (int, bool) {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1,
			r < 0x20 && r != '\n' && r != '\t',
			r == 0x7f,
			r >= 0x80 && r <= 0x9f:
			return i, true
		}
		i += n
	}
	return 0, false
}

// Notes and warnings made of evidence text (issue 16.11): a config.toml
// root with ESC/OSC/BEL and C1 controls, an images.json layer id with an
// OSC sequence. The readers keep them exact (JSON keeps the bytes); table
// output, notes and warnings print them escaped.
func TestHostileTextRendered(t *testing.T) {
	node := filepath.Join(testfix.Extract(t, testfix.NodeArchive(t)), "node")
	cfg := "version = 2\nroot = \"/tmp/\\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m\\u009dX/var/lib/containerd\"\n"
	if err := os.WriteFile(filepath.Join(node, "etc/containerd/config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	storage := testfix.Extract(t, testfix.Fixture(t, "runtimes-c1", "storage-root.tar.gz"))
	images := filepath.Join(storage, "var/lib/containers/storage/overlay-images/images.json")
	b, err := os.ReadFile(images)
	if err != nil {
		t.Fatal(err)
	}
	const layer = "03936a86dced807a48655bdb473b69bd3eb651a018fc8324fcb6f401d908a28a"
	hostile := bytes.Replace(b, []byte(`"layer":"`+layer+`"`), []byte(`"layer":"\u001b]0;pwned\u0007\u009d2;x\u009c`+layer+`"`), 1)
	if bytes.Equal(hostile, b) {
		t.Fatal("no image names the layer")
	}
	if err := os.WriteFile(images, hostile, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args   []string
		stderr string // the escaped evidence text, as printed
	}{
		{[]string{"--root", node, "ls", "containers"}, `note: containerd root /tmp/\x1b[2J\x1b]0;pwned\a\u009b31m\u009dX/var/lib/containerd from /etc/containerd/config.toml`},
		{[]string{"--root", node, "ls", "namespaces"}, `\x1b]0;pwned\a`},
		{[]string{"--root", storage, "ls", "images"}, `: layer \x1b]0;pwned\a\u009d2;x\u009c` + layer + " is not in layers.json; chain incomplete"},
		{[]string{"--root", storage, "ls", "snapshots", "-o", "table"}, `warning: image `},
	} {
		stdout, stderr, code := runCLI(t, tc.args...)
		if code != 0 {
			t.Errorf("%v: exit %d\n%s", tc.args[2:], code, stderr)
		}
		for name, out := range map[string]string{"stdout": stdout, "stderr": stderr} {
			if i, bad := rawControl(out); bad {
				t.Errorf("%v: raw control in %s at byte %d: %q", tc.args[2:], name, i, out[max(0, i-20):min(len(out), i+20)])
			}
		}
		if !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%v: stderr has no %q:\n%s", tc.args[2:], tc.stderr, stderr)
		}
	}

	// JSON keeps the exact bytes.
	stdout, _, code := runCLI(t, "--root", storage, "ls", "images", "-o", "json")
	var imgs []struct {
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(stdout), &imgs); err != nil || code != 0 {
		t.Fatalf("ls images -o json: exit %d, %v", code, err)
	}
	exact := 0
	for _, im := range imgs {
		for _, w := range im.Warnings {
			if strings.Contains(w, ": layer \x1b]0;pwned\x07\u009d2;x\u009c"+layer+" is not in layers.json") {
				exact++
			}
		}
	}
	if exact == 0 {
		t.Errorf("the JSON warnings do not carry the layer id's exact bytes:\n%s", stdout)
	}
}
