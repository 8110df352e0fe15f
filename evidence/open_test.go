package evidence

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deadnode/deadnode/internal/testfix"
)

// TestOpenDecidesByContent opens the same collection under misleading
// names: the kind comes from the bytes, never from the name.
func TestOpenDecidesByContent(t *testing.T) {
	dir := t.TempDir()
	raw := smallTar(t)
	cases := []struct {
		name string
		data []byte
		kind Kind
	}{
		{"plain.tar.gz", raw, KindTar},
		{"gz.zip", compress(t, raw, CompressionGzip), KindTarGz},
		{"zst.tar", compress(t, raw, CompressionZstd), KindTarZstd},
		{"noext", compress(t, raw, CompressionZstd), KindTarZstd},
	}
	for _, c := range cases {
		p := writeFile(t, dir, c.name, c.data)
		ev, err := Open(context.Background(), p, &OpenOptions{CacheDir: filepath.Join(dir, "cache")})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if ev.Kind != c.kind || ev.Path != p || ev.Size != int64(len(c.data)) || ev.Root != "." || ev.Archive() == nil || ev.Dir() != nil {
			t.Errorf("%s: kind %s path %s size %d root %s", c.name, ev.Kind, ev.Path, ev.Size, ev.Root)
		}
		if b, err := ReadFile(ev.Source, "etc/hostname", 100); err != nil || string(b) != "node-1\n" {
			t.Errorf("%s: hostname %q %v", c.name, b, err)
		}
		if (ev.Cache != nil) != (c.kind != KindTar) {
			t.Errorf("%s: cache %+v", c.name, ev.Cache)
		}
		must(t, ev.Close())
	}
	ev, err := Open(context.Background(), dir, nil)
	if err != nil || ev.Kind != KindDir || ev.Dir() == nil || ev.Size != 0 {
		t.Fatalf("dir: %+v %v", ev, err)
	}
	ev.Close()
}

// A plain tar whose first member's name starts with the gzip magic is a
// plain tar: a magic number alone decides nothing.
func TestOpenPlainTarLookingCompressed(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(&tar.Header{Name: "\x1f\x8b-looks-gzip", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2}))
	tw.Write([]byte("ok"))
	tw.Close()
	p := writeFile(t, t.TempDir(), "x", buf.Bytes())
	ev, err := Open(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if ev.Kind != KindTar {
		t.Errorf("kind %s", ev.Kind)
	}
	if b, err := ReadFile(ev.Source, "\x1f\x8b-looks-gzip", 10); err != nil || string(b) != "ok" {
		t.Errorf("read %q %v", b, err)
	}
}

func TestOpenUnsupported(t *testing.T) {
	dir := t.TempDir()
	zero512 := make([]byte, 4096)
	ext4 := make([]byte, 4096)
	ext4[1080], ext4[1081] = 0x53, 0xef
	mbr := make([]byte, 1024)
	mbr[0], mbr[510], mbr[511] = 0xeb, 0x55, 0xaa
	cases := map[string]struct {
		data []byte
		saw  string
	}{
		"empty":   {nil, "an empty file"},
		"zip":     {[]byte("PK\x03\x04rest of a zip"), "a zip archive"},
		"gz-text": {compress(t, bytes.Repeat([]byte("not a tar "), 100), CompressionGzip), "gzip-compressed data that does not start with a tar header"},
		"zeros":   {zero512, "starts with a block of zeros"},
		"mbr":     {mbr, "a disk image with an MBR partition table"},
		"elf":     {[]byte("\x7fELF\x02\x01\x01"), "an ELF executable"},
		"png":     {[]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "a PNG image"},
		"pdf":     {[]byte("%PDF-1.7\n"), "a PDF document"},
		"text":    {[]byte("hello"), "no format deadnode reads (first bytes 68 65 6c 6c 6f)"},
	}
	for name, c := range cases {
		p := writeFile(t, dir, name, c.data)
		_, err := Open(context.Background(), p, nil)
		var ue *UnsupportedError
		if !errors.Is(err, ErrUnsupportedFormat) || !errors.As(err, &ue) || !strings.Contains(ue.Saw, c.saw) || ue.Path != p {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Disk images are read (package diskimage): a damaged one is a clear
	// error of the disk layer, naming the structure, not "unsupported".
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"qcow2": {[]byte("QFI\xfb\x00\x00\x00\x03"), "qcow2 header: offset 0: unexpected EOF"},
		"ext4":  {ext4, "whole: ext2 (cannot be read: ext4 superblock: offset 1028: zero blocks)"},
	} {
		p := writeFile(t, dir, name, c.data)
		if _, err := Open(context.Background(), p, nil); err == nil || errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	fifo := filepath.Join(dir, "fifo")
	must(t, syscall.Mkfifo(fifo, 0o644))
	done := make(chan error, 1)
	go func() { _, err := Open(context.Background(), fifo, nil); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), "a fifo") {
			t.Errorf("fifo: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Open blocked on a FIFO")
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

// The committed node collection holds one top-level directory, read as
// the root, as forensics always read it.
func TestOpenSingleTopDirectory(t *testing.T) {
	ev, err := Open(context.Background(), testfix.NodeArchive(t), &OpenOptions{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	want := `the evidence holds one top-level directory "node" and no root of its own; reading it as the node's root`
	if ev.Kind != KindTarGz || ev.Root != "node" || len(ev.Notes) != 1 || ev.Notes[0].String() != want {
		t.Errorf("kind %s root %s notes %v", ev.Kind, ev.Root, ev.Notes)
	}
	if _, err := ev.Source.Lstat("var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"); err != nil {
		t.Error(err)
	}
	if _, ok := ev.Source.(HostPather); ok {
		t.Error("an archive's source claims host paths")
	}
	// Extracted, the same: and now host paths map.
	requireRoot(t)
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	ev2, err := Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ev2.Close()
	hp, ok := ev2.Source.(HostPather)
	if !ok || ev2.Root != "node" {
		t.Fatalf("dir: root %s hostpather %v", ev2.Root, ok)
	}
	if p, err := hp.HostPath("etc"); err != nil || p != filepath.Join(dir, "node", "etc") {
		t.Errorf("HostPath %s %v", p, err)
	}
	// Closing the source closes the evidence.
	must(t, ev2.Source.Close())
	if _, err := ev2.Source.Lstat("etc"); err == nil {
		t.Error("source still open after Close")
	}
}

// As a user without CAP_FOWNER, on a writable mount, reading a file or
// listing a directory the user does not own moves its access time (the
// kernel refuses O_NOATIME): the note says so, and it is true.
func TestOpenNoteAccessTimesWithoutFowner(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "d", "x"), nil, 0o644))
	old := time.Unix(1000000000, 0)
	for _, p := range []string{"f", "d"} {
		must(t, os.Chtimes(filepath.Join(dir, p), old, time.Now()))
	}
	// The test binary lives in a root-only build dir: copy it where the
	// other user may run it.
	bin := filepath.Join(t.TempDir(), "evidence.test")
	must(t, os.Chmod(filepath.Dir(bin), 0o755))
	must(t, os.Chmod(filepath.Dir(filepath.Dir(bin)), 0o755))
	self, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, self, 0o755))
	cmd := helper(t, "notes", "DEADNODE_EVIDENCE_PATH="+dir)
	cmd.Path, cmd.Args[0] = bin, bin
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "deadnode runs without CAP_FOWNER") || !strings.Contains(s, "reading such a file or listing such a directory can update its access time") || !strings.Contains(s, `read "data" <nil>`) || !strings.Contains(s, `listed ["x"] <nil>`) {
		t.Fatalf("helper said:\n%s", s)
	}
	for _, p := range []string{"f", "d"} {
		st, err := os.Stat(filepath.Join(dir, p))
		must(t, err)
		if at := time.Unix(st.Sys().(*syscall.Stat_t).Atim.Unix()); at.Equal(old) {
			t.Errorf("%s: the atime did not move, the note would overstate", p)
		}
	}
	// As root (CAP_FOWNER) on the same writable mount, only links' atimes
	// can move: the note says that and no more (unless the kernel gave a
	// read-only clone, which rules everything out).
	ev, err := Open(context.Background(), dir, nil)
	must(t, err)
	defer ev.Close()
	for _, n := range ev.Notes {
		if strings.Contains(n.String(), "CAP_FOWNER") {
			t.Errorf("root note: %s", n)
		}
	}
}

func TestOpenCancelled(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "c.tar.zst", compress(t, smallTar(t), CompressionZstd))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, o := range []*OpenOptions{{NoCache: true}, {CacheDir: filepath.Join(dir, "cache")}} {
		if _, err := Open(ctx, p, o); !errors.Is(err, context.Canceled) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	// Nothing half-built is left in the cache.
	ents, _ := os.ReadDir(filepath.Join(dir, "cache"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "tmp.") || isKey(e.Name()) {
			t.Errorf("left in the cache: %s", e.Name())
		}
	}
}

// A truncated .tar.gz keeps its warning, in the notes, whatever else
// fails later.
func TestOpenTruncatedCollectionWarns(t *testing.T) {
	full, err := os.ReadFile(testfix.NodeArchive(t))
	must(t, err)
	dir := t.TempDir()
	for _, pct := range []int{30, 60, 90} {
		p := writeFile(t, dir, "cut.tar.gz", full[:len(full)*pct/100])
		for _, o := range []*OpenOptions{{NoCache: true}, {CacheDir: filepath.Join(dir, "cache")}, {CacheDir: filepath.Join(dir, "cache")}} {
			ev, err := Open(context.Background(), p, o)
			if err != nil {
				t.Fatalf("%d%%: %v", pct, err)
			}
			found := false
			for _, n := range ev.Notes {
				if strings.Contains(n.Msg, "archive ends in a damaged member, index stops there") && n.File == p && n.Offset > 0 {
					found = true
				}
			}
			if !found {
				t.Errorf("%d%% (cache hit %v): notes %v", pct, ev.Cache != nil && ev.Cache.Hit, ev.Notes)
			}
			ev.Close()
		}
		os.Remove(p)
	}
}
