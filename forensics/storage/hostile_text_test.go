package storage

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb/bolttest"
	"github.com/deadnode/deadnode/internal/testfix"
)

// An images.json whose image names a layer id holding an OSC sequence (a
// terminal title, ended by BEL) and a C1 CSI: the warning about the
// missing layer carries the id exactly as the evidence has it (typed, the
// file and offset of the record); the CLI escapes it when it prints.
func TestHostileLayerIDKeptExact(t *testing.T) {
	const name = "var/lib/containers/storage/overlay-images/images.json"
	a, err := evidence.OpenArchive(context.Background(), testfix.Fixture(t, "runtimes-c1", "storage-root.tar.zst"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := evidence.ReadFile(a, name, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	const id = "\x1b]0;pwned\x07\u009b2J" + layer1
	hostile := bytes.Replace(b, []byte(`"layer":"`+layer1+`"`), []byte(`"layer":"\u001b]0;pwned\u0007\u009b2J`+layer1+`"`), 1)
	if bytes.Equal(hostile, b) {
		t.Fatal("the bbox image's layer is not in images.json")
	}
	s, err := Open(&bolttest.Source{Source: a, Name: name, Data: hostile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "image " + imgBbox + ": layer " + id + " is not in layers.json; chain incomplete"
	found := 0
	for _, w := range s.Warnings {
		if w.Msg == want && w.File == "" && w.Offset == -1 {
			found++
		}
	}
	for _, r := range s.ImageRecords {
		if r.ID == imgBbox && (len(r.Warnings) != 1 || r.Warnings[0].Msg != want || r.TopLayer != id) {
			t.Errorf("image record %+v", r)
		}
	}
	if found != 1 || !strings.Contains(want, "\x1b]0;pwned\x07\u009b2J") {
		t.Errorf("store warnings %q, want %q once", s.Warnings, want)
	}
}
