package evidence

// Regression tests for the archive breaks of issue 16, each built from the
// input the red team described.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/deadnode/deadnode/internal/testfix"
)

const sparseMark = "HELLO-SPARSE"

// sparseBombs makes, with GNU tar itself, the node collection as a plain
// tar with a 4 GiB sparse member appended (truncate -s 4G big.img; tar
// --sparse -rf node.tar big.img), in every sparse format GNU tar writes,
// and compressed copies. big.img holds sparseMark at 2 GiB.
func sparseBombs(t *testing.T) map[string]string {
	t.Helper()
	dir := genDir(t)
	out := map[string]string{}
	names := []string{"gnu", "posix-0.0", "posix-0.1", "posix-1.0"}
	for _, n := range names {
		out[n] = filepath.Join(dir, "sparse-"+n+".tar")
	}
	out["gnu.gz"] = out["gnu"] + ".gz"
	out["posix-1.0.zst"] = out["posix-1.0"] + ".zst"
	if _, err := os.Stat(out["posix-1.0.zst"]); err == nil {
		return out
	}
	work := t.TempDir()
	node := filepath.Join(work, "node.tar")
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = work
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, b)
		}
	}
	run("sh", "-c", "gzip -dc "+testfix.NodeArchive(t)+" > node.tar")
	run("truncate", "-s", "4G", "big.img")
	f, err := os.OpenFile(filepath.Join(work, "big.img"), os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte(sparseMark), 2<<30)
	must(t, err)
	f.Close()
	for _, n := range names {
		tmp := filepath.Join(work, n+".tar")
		run("cp", node, tmp)
		args := []string{"--sparse", "-rf", tmp, "big.img"}
		if v, ok := strings.CutPrefix(n, "posix-"); ok {
			args = append([]string{"--format=posix", "--sparse-version=" + v}, args...)
		}
		run("tar", args...)
		run("mv", tmp, out[n])
	}
	run("sh", "-c", "gzip -1 -c "+out["gnu"]+" > "+out["gnu.gz"]+".tmp && mv "+out["gnu.gz"]+".tmp "+out["gnu.gz"])
	run("sh", "-c", "zstd -q -c "+out["posix-1.0"]+" > "+out["posix-1.0.zst"]+".tmp && mv "+out["posix-1.0.zst"]+".tmp "+out["posix-1.0.zst"])
	return out
}

// zeroBomb is a .tar.zst whose one member is 4 GiB of real zeros (not
// sparse): a checkpoint's never-touched pages-1.img.
func zeroBomb(t *testing.T) string {
	return generated(t, "zero-4g.tar.zst", func(w io.Writer) error {
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return err
		}
		tw := tar.NewWriter(zw)
		if err := tw.WriteHeader(&tar.Header{Name: "pages-1.img", Typeflag: tar.TypeReg, Mode: 0o600, Size: 4 << 30}); err != nil {
			return err
		}
		z := make([]byte, 1<<20)
		for i := 0; i < 4<<10; i++ {
			if _, err := tw.Write(z); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: "inventory.img", Typeflag: tar.TypeReg, Mode: 0o600, Size: 4}); err != nil {
			return err
		}
		tw.Write([]byte("CRIU"))
		tw.Close()
		return zw.Close()
	})
}

// Issue 16.1: a 4 GiB sparse member (or 4 GiB of compressed zeros) must
// not fill the temp space: plain tars read it in place, compressed ones
// spill it as holes. Everything runs with 512 MiB of temp and cache space.
func TestTempSpaceBomb(t *testing.T) {
	space := tmpfs(t, 512<<20)
	bombs := sparseBombs(t)
	for _, name := range []string{"gnu", "posix-0.0", "posix-0.1", "posix-1.0", "gnu.gz", "posix-1.0.zst"} {
		t.Run(name, func(t *testing.T) {
			o := &OpenOptions{TempDir: space, CacheDir: filepath.Join(space, "cache")}
			before := usedBytes(t, space)
			ev, err := Open(context.Background(), bombs[name], o)
			if err != nil {
				t.Fatal(err)
			}
			defer ev.Close()
			if used := usedBytes(t, space) - before; used > 48<<20 {
				t.Errorf("%d bytes written to the temp space", used)
			}
			f, err := ev.Source.Open("big.img")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Size() != 4<<30 {
				t.Errorf("size %d", f.Size())
			}
			buf := make([]byte, 64)
			if _, err := f.ReadAt(buf, 2<<30-32); err != nil {
				t.Fatal(err)
			}
			want := append(make([]byte, 32), sparseMark...)
			want = append(want, make([]byte, 32-len(sparseMark))...)
			if !bytes.Equal(buf, want) {
				t.Errorf("around 2 GiB: %q", buf)
			}
			if n, err := f.ReadAt(buf[:8], 4<<30-8); n != 8 || err != nil || !bytes.Equal(buf[:8], make([]byte, 8)) {
				t.Errorf("tail: %d %v %q", n, err, buf[:8])
			}
			if _, err := ev.Source.Lstat("node/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"); err != nil {
				t.Error(err)
			}
			if ev.Kind == KindTar && ev.Archive().spill != nil {
				t.Error("a plain tar spilled")
			}
		})
	}
	t.Run("zeros.zst", func(t *testing.T) {
		before := usedBytes(t, space)
		ev, err := Open(context.Background(), zeroBomb(t), &OpenOptions{TempDir: space, CacheDir: filepath.Join(space, "cache")})
		if err != nil {
			t.Fatal(err)
		}
		defer ev.Close()
		if used := usedBytes(t, space) - before; used > 1<<20 {
			t.Errorf("%d bytes written for 4 GiB of zeros", used)
		}
		if b, err := ReadFile(ev.Source, "inventory.img", 10); err != nil || string(b) != "CRIU" {
			t.Errorf("inventory %q %v", b, err)
		}
		st, _ := ev.Source.Lstat("pages-1.img")
		if st.Size != 4<<30 {
			t.Errorf("pages size %d", st.Size)
		}
	})
	// Out of space: a collection whose data does not fit says which space
	// ran out, and leaves nothing behind.
	t.Run("full", func(t *testing.T) {
		small := tmpfs(t, 2<<20)
		data := make([]byte, 8<<20)
		for i := range data {
			data[i] = byte(i*7 + i>>8)
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		must(t, tw.WriteHeader(&tar.Header{Name: "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db", Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(data))}))
		tw.Write(data)
		tw.Close()
		p := writeFile(t, t.TempDir(), "c.tar.gz", compress(t, buf.Bytes(), CompressionGzip))
		for space, o := range map[string]*OpenOptions{"temp": {NoCache: true, TempDir: small}, "cache": {CacheDir: filepath.Join(small, "c")}} {
			_, err := Open(context.Background(), p, o)
			var se *SpaceError
			if !errors.Is(err, ErrNoSpace) || !errors.As(err, &se) || se.Space != space || !strings.HasPrefix(err.Error(), space+" space in "+small) || strings.Contains(err.Error(), "meta.db") {
				t.Errorf("%s: %v", space, err)
			}
			if used := usedBytes(t, small); used > 64<<10 {
				t.Errorf("%s: %d bytes left behind", space, used)
			}
		}
	})
}

// Issue 16.2: 1,500 members each with a 900 KB PAX xattr: the index keeps
// the attributes forensics reads and drops the rest with one warning; the
// heap stays flat.
func TestXattrBomb(t *testing.T) {
	p := generated(t, "xattr-bomb.tar.zst", func(w io.Writer) error {
		zw, err := zstd.NewWriter(w)
		if err != nil {
			return err
		}
		tw := tar.NewWriter(zw)
		big := strings.Repeat("x", 900_000)
		for i := 0; i < 1500; i++ {
			h := &tar.Header{Name: fmt.Sprintf("f%04d", i), Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
				PAXRecords: map[string]string{"SCHILY.xattr.user.x": big, "SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		tw.Close()
		return zw.Close()
	})
	var ev *Evidence
	var err error
	peak := heapPeak(func() { ev, err = Open(context.Background(), p, &OpenOptions{NoCache: true}) })
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	runtime.GC()
	if peak > 96<<20 {
		t.Errorf("heap grew by %d MiB while indexing", peak>>20)
	}
	x, err := ev.Source.Xattrs("f0042")
	if err != nil || string(x["trusted.overlay.opaque"]) != "y" || string(x["security.capability"]) != "\x01\x00\x00\x02" || x["user.x"] != nil {
		t.Errorf("xattrs %q %v", x, err)
	}
	n := 0
	for _, w := range ev.Notes {
		if strings.Contains(w.Msg, "1500 extended attributes (1350000000 bytes) of 1500 members dropped") && strings.Contains(w.Msg, "the overlay and capability attributes were kept") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("notes %v", ev.Notes)
	}
}

// deepName is a member name n components deep: var/a/a/…/f.
func deepName(n int) string {
	return "var/" + strings.Repeat("a/", n-2) + "f"
}

// Issue 16.3: one member 100,000 (and 480,000) levels deep, a few hundred
// bytes of .tar.gz: indexed in linear time, its directories listed to
// MaxArchiveDepth, a warning naming it; a walk stops at DefaultMaxDepth
// and says so.
func TestDeepMember(t *testing.T) {
	for _, depth := range []int{100_000, 480_000} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		must(t, tw.WriteHeader(&tar.Header{Name: deepName(depth), Typeflag: tar.TypeReg, Mode: 0o644, Size: 2, Format: tar.FormatPAX}))
		tw.Write([]byte("hi"))
		tw.Close()
		zw.Close()
		if buf.Len() > 4096 {
			t.Fatalf("%d levels: %d bytes of tar.gz", depth, buf.Len())
		}
		p := writeFile(t, t.TempDir(), "deep.tar.gz", buf.Bytes())
		ev, err := Open(context.Background(), p, &OpenOptions{NoCache: true})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("is %d levels deep, more than the %d the index holds", depth, MaxArchiveDepth)
		if len(ev.Notes) != 1 || !strings.Contains(ev.Notes[0].Msg, want) || !strings.HasPrefix(ev.Notes[0].Msg, `member "var/a/a/a/`) || len(ev.Notes[0].Msg) > 600 {
			t.Errorf("%d: notes %v", depth, ev.Notes)
		}
		// Directories exist to the bound, not beyond.
		if st, err := ev.Source.Lstat("var/" + strings.Repeat("a/", MaxArchiveDepth-1)); err != nil || !st.Mode.IsDir() {
			t.Errorf("deepest dir: %v", err)
		}
		if _, err := ev.Source.Lstat("var/" + strings.Repeat("a/", MaxArchiveDepth)); err == nil {
			t.Error("a directory past the bound")
		}
		var deep *DepthError
		n := 0
		err = Walk(context.Background(), ev.Source, ".", func(st *Stat, err error) error {
			if err != nil {
				if !errors.As(err, &deep) || !errors.Is(err, ErrTooDeep) {
					return err
				}
				return nil
			}
			n++
			return nil
		})
		if err != nil || deep == nil || deep.Limit != DefaultMaxDepth || strings.Count(deep.Path, "/") != DefaultMaxDepth-1 || n != DefaultMaxDepth+1 {
			t.Errorf("walk: %v, depth error %+v, %d entries", err, deep, n)
		}
		ev.Close()
	}
}

// Issue 16.4 (walks): a 100,000-deep directory tree on disk: Walk stops
// descending at DefaultMaxDepth and reports where, in bounded memory.
func TestWalkDeepDirectory(t *testing.T) {
	root := t.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		root, _ = os.MkdirTemp("/dev/shm", "deadnode-deep-")
	}
	t.Cleanup(func() { exec.Command("rm", "-rf", root).Run() })
	mkDeep(t, root, 100_000)
	d, err := OpenDir(root)
	must(t, err)
	defer d.Close()
	var deep *DepthError
	n := 0
	peak := heapPeak(func() {
		err = Walk(context.Background(), d, ".", func(st *Stat, err error) error {
			if err != nil {
				if !errors.As(err, &deep) {
					return err
				}
				return nil
			}
			n++
			return nil
		})
	})
	if err != nil || deep == nil || n != DefaultMaxDepth+1 {
		t.Fatalf("%v %+v %d", err, deep, n)
	}
	if deep.Error() != "walk "+strings.TrimSuffix(strings.Repeat("d/", DefaultMaxDepth), "/")+": directory nesting too deep (more than 1024 levels), not descended" {
		t.Errorf("%v", deep)
	}
	if peak > 32<<20 {
		t.Errorf("walk heap %d MiB", peak>>20)
	}
}

// Walk stops with ctx.Err() when cancelled, before or while it runs.
func TestWalkCancelled(t *testing.T) {
	raw := smallTar(t)
	a, err := NewArchive(context.Background(), bytes.NewReader(raw), int64(len(raw)), "c.tar", nil)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	if err := Walk(ctx, a, ".", func(*Stat, error) error { calls++; return nil }); !errors.Is(err, context.Canceled) || calls != 0 {
		t.Errorf("before: %v, %d calls", err, calls)
	}
	ctx, cancel = context.WithCancel(context.Background())
	calls = 0
	err = Walk(ctx, a, ".", func(st *Stat, err error) error {
		calls++
		if st.Name == "etc" {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 2 {
		t.Errorf("while: %v, %d calls", err, calls)
	}
	// Indexing stops too.
	gz := compress(t, raw, CompressionGzip)
	if _, err := NewArchive(ctx, bytes.NewReader(gz), int64(len(gz)), "c.tar.gz", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("index: %v", err)
	}
	for _, err := range TarStreamAt(ctx, bytes.NewReader(raw), int64(len(raw)), nil) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("TarStreamAt: %v", err)
		}
		break
	}
}

// mkDeep makes d/d/…/d n levels deep below root, descriptor-relative.
func mkDeep(t *testing.T, root string, n int) {
	t.Helper()
	fd, err := os.Open(root)
	must(t, err)
	cur := fd
	for i := 0; i < n; i++ {
		if err := os.Mkdir(filepath.Join("/proc/self/fd", fmt.Sprint(cur.Fd()), "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := os.Open(filepath.Join("/proc/self/fd", fmt.Sprint(cur.Fd()), "d"))
		must(t, err)
		cur.Close()
		cur = next
	}
	cur.Close()
}

// Duplicate members: the last wins, as tar extracts it, and a warning
// names the member and both offsets.
func TestDuplicateMembers(t *testing.T) {
	raw := buildTar(t, []member{
		{tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg}, "root:x:0:0\n"},
		{tar.Header{Name: "etc/hosts", Typeflag: tar.TypeReg}, "127.0.0.1\n"},
		{tar.Header{Name: "./etc/passwd", Typeflag: tar.TypeReg}, "evil:x:0:0\n"},
	})
	for _, c := range []Compression{CompressionNone, CompressionGzip} {
		data := compress(t, raw, c)
		a, err := NewArchive(context.Background(), bytes.NewReader(data), int64(len(data)), "dup.tar", nil)
		must(t, err)
		if b, err := ReadFile(a, "etc/passwd", 100); err != nil || string(b) != "evil:x:0:0\n" {
			t.Errorf("%s: %q %v", c, b, err)
		}
		ws := a.Warnings()
		want := `dup.tar: offset 2048: member "etc/passwd" appears again (first at offset 0): the last one wins, as tar extracts it`
		if len(ws) != 1 || ws[0].String() != want {
			t.Errorf("%s: %v", c, ws)
		}
		if ents, _ := a.ReadDir("etc"); len(ents) != 2 {
			t.Errorf("%s: %d entries", c, len(ents))
		}
		a.Close()
	}
}

// A 1 PiB sparse file holding 3 bytes, as GNU tar writes it (130 bytes of
// .tar.zst): indexing reads the 3 bytes, never the petabyte of holes.
func TestPetabyteSparseMember(t *testing.T) {
	space := tmpfs(t, 64<<20)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = space
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, b)
		}
	}
	run("truncate", "-s", "1P", "huge.img")
	f, err := os.OpenFile(filepath.Join(space, "huge.img"), os.O_WRONLY, 0)
	must(t, err)
	f.WriteAt([]byte("EXA"), 1<<40)
	f.Close()
	run("tar", "--sparse", "-cf", "g.tar", "huge.img")
	run("tar", "--format=posix", "--sparse", "-cf", "p.tar", "huge.img")
	run("zstd", "-q", "g.tar")
	run("gzip", "-k", "p.tar")
	for _, name := range []string{"g.tar", "p.tar", "g.tar.zst", "p.tar.gz"} {
		ev, err := Open(context.Background(), filepath.Join(space, name), &OpenOptions{CacheDir: filepath.Join(space, "cache")})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fl, err := ev.Source.Open("huge.img")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b := make([]byte, 5)
		if n, err := fl.ReadAt(b, 1<<40-1); n != 5 || err != nil || string(b) != "\x00EXA\x00" || fl.Size() != 1<<50 {
			t.Errorf("%s: %q %v size %d", name, b, err, fl.Size())
		}
		ev.Close()
	}
	if used := usedBytes(t, filepath.Join(space, "cache")); used > 1<<20 {
		t.Errorf("cache holds %d bytes", used)
	}
}

// A last "./" member that is a symbolic link (or a file) would replace
// the collection's root and hide every other member: it is left out, and
// said.
func TestRootMemberNotDirectory(t *testing.T) {
	raw := buildTar(t, []member{
		{tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "./etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, "root:x:0:0\n"},
		{tar.Header{Name: "./", Typeflag: tar.TypeSymlink, Linkname: "/nowhere"}, ""},
	})
	for _, c := range []Compression{CompressionNone, CompressionZstd} {
		data := compress(t, raw, c)
		a, err := NewArchive(context.Background(), bytes.NewReader(data), int64(len(data)), "root.tar", nil)
		must(t, err)
		if b, err := ReadFile(a, "etc/passwd", 100); err != nil || string(b) != "root:x:0:0\n" {
			t.Errorf("%s: %q %v", c, b, err)
		}
		ws := a.Warnings()
		want := `root.tar: offset 1536: member "./" is not a directory but names the collection's root: left out`
		if len(ws) != 1 || ws[0].String() != want {
			t.Errorf("%s: %v", c, ws)
		}
		a.Close()
	}
}

// Attribute names cost what they hold: 20,000 empty-valued attributes of
// one member are not kept for free (a member keeps MaxMemberXattrs of
// values and names together).
func TestXattrNamesCount(t *testing.T) {
	recs := map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y"}
	for i := 0; i < 20000; i++ {
		recs[fmt.Sprintf("SCHILY.xattr.user.%08d", i)] = ""
	}
	raw := buildTar(t, []member{{tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX, PAXRecords: recs}, ""}})
	a, err := NewArchive(context.Background(), bytes.NewReader(raw), int64(len(raw)), "names.tar", nil)
	must(t, err)
	defer a.Close()
	x, err := a.Xattrs("f")
	if err != nil {
		t.Fatal(err)
	}
	// Each kept name of 13 bytes costs 13+32: the member's 256 KiB hold 5,825.
	if len(x) != 5825 || string(x["trusted.overlay.opaque"]) != "y" {
		t.Errorf("%d attributes kept, opaque %q", len(x), x["trusted.overlay.opaque"])
	}
}

// A sparse member that follows a member with data, in a plain tar read in
// place: its headers were looked for at the previous member's data (which
// archive/tar had not read yet), so its map could not be read and its
// content was lost, in every sparse format GNU tar writes.
func TestSparseAfterDataMember(t *testing.T) {
	dir := t.TempDir()
	a := bytes.Repeat([]byte("previous member "), 125) // 2000 bytes
	must(t, os.WriteFile(filepath.Join(dir, "a"), a, 0o644))
	f, err := os.Create(filepath.Join(dir, "big"))
	must(t, err)
	must(t, f.Truncate(1<<20))
	_, err = f.WriteAt([]byte("HELLO"), 500000)
	must(t, err)
	must(t, f.Close())
	for _, args := range [][]string{{"--sparse"}, {"--format=posix", "--sparse", "--sparse-version=0.0"}, {"--format=posix", "--sparse", "--sparse-version=0.1"}, {"--format=posix", "--sparse", "--sparse-version=1.0"}} {
		raw, err := exec.Command("tar", append(append([]string{"-C", dir}, args...), "-cf", "-", "a", "big")...).Output()
		must(t, err)
		for _, c := range []Compression{CompressionNone, CompressionGzip} {
			data := compress(t, raw, c)
			ar, err := NewArchive(context.Background(), bytes.NewReader(data), int64(len(data)), "x.tar", nil)
			if err != nil {
				t.Fatalf("%v %s: %v", args, c, err)
			}
			b, err := ReadFile(ar, "big", 2<<20)
			if err != nil || len(b) != 1<<20 || string(b[500000:500005]) != "HELLO" || len(ar.Warnings()) != 0 {
				t.Errorf("%v %s: %d bytes, %v, warnings %v", args, c, len(b), err, ar.Warnings())
			}
			if b, err := ReadFile(ar, "a", 4096); err != nil || !bytes.Equal(b, a) {
				t.Errorf("%v %s: a: %v", args, c, err)
			}
			ar.Close()
		}
	}
}

// A hard link to a symlink is that symlink (GNU tar extracts it so): its
// Lstat said symlink and its Readlink refused it. A hard link to a
// directory, which tar cannot make, is a file without data, not a
// directory that ReadDir then refused.
func TestHardLinksToSymlinksAndDirectories(t *testing.T) {
	raw := buildTar(t, []member{
		{tar.Header{Name: "a", Typeflag: tar.TypeReg}, "data\n"},
		{tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "a"}, ""},
		{tar.Header{Name: "hs", Typeflag: tar.TypeLink, Linkname: "s"}, ""},
		{tar.Header{Name: "d/", Typeflag: tar.TypeDir}, ""},
		{tar.Header{Name: "d/f", Typeflag: tar.TypeReg}, "f"},
		{tar.Header{Name: "hd", Typeflag: tar.TypeLink, Linkname: "d"}, ""},
	})
	a, err := NewArchive(context.Background(), bytes.NewReader(raw), int64(len(raw)), "links.tar", nil)
	must(t, err)
	defer a.Close()
	if st, err := a.Lstat("hs"); err != nil || st.Mode&fs.ModeSymlink == 0 {
		t.Errorf("lstat hs: %+v %v", st, err)
	}
	if l, err := a.Readlink("hs"); err != nil || l != "a" {
		t.Errorf("readlink hs: %q %v", l, err)
	}
	if r, err := Resolve(a, "hs", true); err != nil || r != "a" {
		t.Errorf("resolve hs: %q %v", r, err)
	}
	if st, err := a.Lstat("hd"); err != nil || st.Mode.IsDir() || !st.Mode.IsRegular() {
		t.Errorf("lstat hd: %+v %v", st, err)
	}
	walkErrs := 0
	Walk(context.Background(), a, ".", func(st *Stat, err error) error {
		if err != nil {
			walkErrs++
		}
		return nil
	})
	if walkErrs != 0 {
		t.Errorf("%d walk errors", walkErrs)
	}
}
