package checkpoint

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// A Pass over an archive gives its pages images in archive order, with
// their bytes, and then the same checkpoint as OpenPath (command lines
// aside: they are in the pages), keeping nothing of the pages.
func TestPass(t *testing.T) {
	for _, name := range []string{"ckpt-leave-running.tar", "ckpt-leave-running.tar.gz", "ckpt-default-zstd.tar.zst", "ckpt.tar.gz"} {
		p := testfix.Fixture(t, "podman-checkpoint", name)
		opt := &Options{Skip: PartCmdlines, TempDir: t.TempDir()}
		pass, err := StartPass(ctx, p, opt)
		if err != nil {
			t.Fatal(err)
		}
		var members []string
		var secret bool
		for pg, err := range pass.Pages() {
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(pg.Data)
			if err != nil || int64(len(b)) != pg.Size {
				t.Fatalf("%s: %s: %d of %d bytes, %v", name, pg.Member, len(b), pg.Size, err)
			}
			members = append(members, pg.Member)
			secret = secret || pg.Member == "checkpoint/pages-4.img" && bytes.Contains(b, []byte("FORGE-SECRET-7f3a9c"))
		}
		if len(members) != 7 || members[0] != "checkpoint/pages-1.img" || !secret {
			t.Fatalf("%s: pages %v, secret %v", name, members, secret)
		}
		got, err := pass.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		// Only the engine's small files and the CRIU images were kept.
		if ents, _ := os.ReadDir(opt.TempDir); len(ents) != 0 {
			t.Fatalf("%s: the temp file must be unlinked: %v", name, ents)
		}
		want, err := OpenPath(ctx, p, opt)
		if err != nil {
			t.Fatal(err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) {
			t.Fatalf("%s: the pass's checkpoint differs from OpenPath's:\n%s\n%s", name, gj, wj)
		}
		if _, err := got.Pages(4); err == nil {
			t.Fatalf("%s: pages kept", name)
		}
		got.Close()
		want.Close()
	}
	// A truncated archive ends the pass with an error, and no checkpoint.
	b, err := os.ReadFile(testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.tar.zst")
	os.WriteFile(cut, b[:len(b)*6/10], 0o644)
	pass, err := StartPass(ctx, cut, nil)
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for _, err := range pass.Pages() {
		last = err
	}
	if last == nil {
		t.Fatal("a cut archive read to its end")
	}
	if cp, err := pass.Checkpoint(); err == nil || cp != nil {
		t.Fatalf("checkpoint of a cut archive: %v", err)
	}
	// What a pass keeps is bounded in all, as an archive's spill is.
	defer func(m int64) { maxPassTemp = m }(maxPassTemp)
	maxPassTemp = 64 << 10
	p := testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst")
	if pass, err = StartPass(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	last = nil
	for _, err := range pass.Pages() {
		last = err
	}
	if last == nil || !strings.Contains(last.Error(), "the members kept pass 65536 bytes of temporary space") {
		t.Fatalf("a pass past its bound: %v", last)
	}
	pass.Close()
}
