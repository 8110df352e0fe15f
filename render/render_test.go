package render

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanEscapesEveryControl(t *testing.T) {
	for in, want := range map[string]string{
		"plain name.txt":           "plain name.txt",
		"dir/ünïcödé 日本":           "dir/ünïcödé 日本",
		"\x1b[2J\x1b]0;pwned\x07X": `\x1b[2J\x1b]0;pwned\aX`, // C0: CSI, OSC, BEL
		"del\x7f":                  `del\x7f`,
		"c1-csi\u009b2J":           `c1-csi\u009b2J`, // C1 CSI as UTF-8
		"c1-osc\u009d0;x\u009c":    `c1-osc\u009d0;x\u009c`,
		"raw\x9b":                  `raw\x9b`,           // a lone C1 byte: invalid UTF-8
		"bidi\u202etxt.exe":        `bidi\u202etxt.exe`, // right-to-left override
		"zero\u200bwidth":          `zero\u200bwidth`,
		"new\nline\ttab":           `new\nline\ttab`,
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
		for _, r := range Clean(in) {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Errorf("Clean(%q) keeps control %U", in, r)
			}
		}
	}
}

func TestTableFitsWidth(t *testing.T) {
	tb := Cols("NAMESPACE", "ID#", "IMAGE", "STATE=", "UPPER DIR/")
	id := "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007"
	dir := "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs"
	tb.Row("k8s.io", id, "forge.local/shop/app:1.0", "running", dir)
	var b bytes.Buffer
	if err := WriteTable(&b, tb, &Options{Width: 80}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("%d columns: %q", n, l)
		}
	}
	row := lines[1]
	// The id is shortened to 12 digits; the path keeps both ends.
	if !strings.Contains(row, "4b324cab2548 ") || !strings.Contains(row, "/var/lib/") || !strings.HasSuffix(row, "shots/6/fs") || !strings.Contains(row, "…") {
		t.Errorf("row %q", row)
	}
	// --wide: everything whole.
	b.Reset()
	WriteTable(&b, tb, &Options{Width: 80, Wide: true})
	if !strings.Contains(b.String(), id) || !strings.Contains(b.String(), dir) {
		t.Errorf("wide: %s", b.String())
	}
	// No width (not a terminal, no COLUMNS): ids short, paths whole.
	b.Reset()
	WriteTable(&b, tb, nil)
	if strings.Contains(b.String(), id) || !strings.Contains(b.String(), dir) {
		t.Errorf("unlimited: %s", b.String())
	}
}

func TestTableBlocksAlignSeparately(t *testing.T) {
	tb := Cols("A", "B")
	tb.Title("first")
	tb.Header()
	tb.Row("x", "1")
	tb.Break()
	tb.Title("second")
	tb.Header()
	tb.Row("a-much-longer-cell", "2")
	var b bytes.Buffer
	WriteTable(&b, tb, nil)
	want := "first\nA  B\nx  1\n\nsecond\nA                   B\na-much-longer-cell  2\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 findings", 1: "1 finding", 2: "2 findings", 37: "37 findings"} {
		if got := Plural(n, "finding"); got != want {
			t.Errorf("Plural(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int]string{1: "1 entry", 3: "3 entries"} {
		if got := Plural(n, "entry"); got != want {
			t.Errorf("Plural(%d) = %q, want %q", n, got, want)
		}
	}
}
