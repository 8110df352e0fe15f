package evidence

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// collection writes a compressed collection whose members hold distinct,
// incompressible-ish data of about size bytes.
func collection(t *testing.T, dir, name string, size int, seed byte) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*31+i>>9) ^ seed
	}
	for i, m := range []string{"etc/hostname", "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db", "var/lib/big"} {
		body := []byte(fmt.Sprintf("member %d of %d\n", i, seed))
		if m == "var/lib/big" {
			body = data
		}
		must(t, tw.WriteHeader(&tar.Header{Name: m, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)}))
		tw.Write(body)
	}
	tw.Close()
	return writeFile(t, dir, name, compress(t, buf.Bytes(), CompressionZstd))
}

func entries(t *testing.T, cache string) (keys, tmps []string) {
	t.Helper()
	ents, err := os.ReadDir(cache)
	must(t, err)
	for _, e := range ents {
		switch {
		case isKey(e.Name()):
			keys = append(keys, e.Name())
		case strings.HasPrefix(e.Name(), "tmp."):
			tmps = append(tmps, e.Name())
		}
	}
	return keys, tmps
}

func TestCacheReuse(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	p := collection(t, dir, "n.tar.zst", 1<<20, 1)
	raw, _ := os.ReadFile(p)
	sum := sha256.Sum256(raw)
	var progress []Progress
	o := &OpenOptions{CacheDir: cache, Progress: func(p Progress) { progress = append(progress, p) }}
	ev, err := Open(context.Background(), p, o)
	must(t, err)
	if ev.Cache == nil || ev.Cache.Hit || !ev.Cache.Kept || ev.Cache.SHA256 != hex.EncodeToString(sum[:]) || ev.Cache.Bytes < 1<<20 || ev.Cache.Dir != cache {
		t.Errorf("first: %+v", ev.Cache)
	}
	if len(progress) == 0 || progress[len(progress)-1] != (Progress{Done: int64(len(raw)), Total: int64(len(raw))}) {
		t.Errorf("progress %v", progress)
	}
	b1, _ := ReadFile(ev.Source, "var/lib/big", 2<<20)
	st1, _ := ev.Source.Lstat("var/lib/big")
	ev.Close()
	st, err := os.Stat(cache)
	must(t, err)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("cache mode %v", st.Mode())
	}
	progress = nil
	ev, err = Open(context.Background(), p, o)
	must(t, err)
	defer ev.Close()
	if !ev.Cache.Hit || ev.Cache.SHA256 != hex.EncodeToString(sum[:]) || len(progress) != 0 {
		t.Errorf("second: %+v, progress %v", ev.Cache, progress)
	}
	b2, _ := ReadFile(ev.Source, "var/lib/big", 2<<20)
	st2, _ := ev.Source.Lstat("var/lib/big")
	if !bytes.Equal(b1, b2) || len(b1) != 1<<20 || *st1 != *st2 {
		t.Errorf("reused entry differs: %d/%d bytes, %+v %+v", len(b1), len(b2), st1, st2)
	}
	// A changed file (mtime) is a new entry.
	now := time.Now().Add(time.Hour)
	must(t, os.Chtimes(p, now, now))
	ev3, err := Open(context.Background(), p, o)
	must(t, err)
	ev3.Close()
	if ev3.Cache.Hit {
		t.Error("a touched file reused the old entry")
	}
	if keys, tmps := entries(t, cache); len(keys) != 2 || len(tmps) != 0 {
		t.Errorf("entries %v %v", keys, tmps)
	}
}

// An entry that is damaged, truncated or made for another file is
// rebuilt, never trusted.
func TestCacheDamagedEntries(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	p := collection(t, dir, "n.tar.zst", 64<<10, 2)
	q := collection(t, dir, "other.tar.zst", 64<<10, 3)
	o := &OpenOptions{CacheDir: cache}
	open := func() *Evidence {
		t.Helper()
		ev, err := Open(context.Background(), p, o)
		must(t, err)
		if b, err := ReadFile(ev.Source, "etc/hostname", 100); err != nil || string(b) != "member 0 of 2\n" {
			t.Errorf("hostname %q %v", b, err)
		}
		ev.Close()
		return ev
	}
	key := filepath.Base(open().Cache.Entry)
	idx := filepath.Join(cache, key, "index")
	good, err := os.ReadFile(idx)
	must(t, err)
	evq, err := Open(context.Background(), q, o)
	must(t, err)
	evq.Close()
	foreign, _ := os.ReadFile(filepath.Join(evq.Cache.Entry, "index"))
	for name, bad := range map[string][]byte{
		"flipped":   append(append([]byte{}, good[:100]...), append([]byte{good[100] ^ 0xff}, good[101:]...)...),
		"truncated": good[:len(good)/2],
		"empty":     nil,
		"foreign":   foreign,
	} {
		must(t, os.WriteFile(idx, bad, 0o600))
		if ev := open(); ev.Cache.Hit {
			t.Errorf("%s: a bad entry was reused", name)
		}
		if ev := open(); !ev.Cache.Hit {
			t.Errorf("%s: the rebuilt entry is not reused", name)
		}
	}
	// A data file shorter than the index says: rebuilt.
	must(t, os.Truncate(filepath.Join(cache, key, "data"), 10))
	if ev := open(); ev.Cache.Hit {
		t.Error("short data reused")
	}
	// A crashed build's leftovers do not count and are cleaned up.
	stale := filepath.Join(cache, "tmp."+key+".999.deadbeef")
	must(t, os.Mkdir(stale, 0o700))
	must(t, os.WriteFile(filepath.Join(stale, "data"), []byte("half"), 0o600))
	must(t, os.RemoveAll(filepath.Join(cache, key)))
	if ev := open(); ev.Cache.Hit {
		t.Error("reused after removal")
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale build left: %v", err)
	}
}

func TestCacheRefusesUnsafeDirectories(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	p := collection(t, dir, "n.tar.zst", 4096, 4)
	open := func(cache string) error {
		ev, err := Open(context.Background(), p, &OpenOptions{CacheDir: cache})
		if err == nil {
			ev.Close()
		}
		return err
	}
	world := filepath.Join(dir, "world")
	must(t, os.Mkdir(world, 0o777))
	must(t, os.Chmod(world, 0o777))
	if err := open(world); !errors.Is(err, ErrCacheUnsafe) || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("world-writable: %v", err)
	}
	other := filepath.Join(dir, "other")
	must(t, os.Mkdir(other, 0o700))
	must(t, os.Chown(other, 65534, 65534))
	if err := open(other); !errors.Is(err, ErrCacheUnsafe) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("other owner: %v", err)
	}
	// The default cache, when unsafe, is not used: the open goes on with a
	// note.
	t.Setenv("XDG_CACHE_HOME", dir)
	must(t, os.Mkdir(filepath.Join(dir, "deadnode"), 0o777))
	must(t, os.Chmod(filepath.Join(dir, "deadnode"), 0o777))
	ev, err := Open(context.Background(), p, nil)
	must(t, err)
	if ev.Cache != nil || len(ev.Notes) != 1 || !strings.Contains(ev.Notes[0].Msg, "decompressed without a cache") {
		t.Errorf("default unsafe: %+v %v", ev.Cache, ev.Notes)
	}
	ev.Close()
	if ents, _ := os.ReadDir(filepath.Join(dir, "deadnode")); len(ents) != 0 {
		t.Errorf("wrote into the unsafe cache: %v", ents)
	}
}

// A cache inside the evidence is refused, also through a bind mount of
// the evidence (device and inode, not path strings), and nothing is
// created there.
func TestCacheNeverInsideEvidence(t *testing.T) {
	requireRoot(t)
	ev := t.TempDir()
	must(t, os.WriteFile(filepath.Join(ev, "f"), []byte("x"), 0o644))
	bind := t.TempDir()
	if out, err := exec.Command("mount", "--bind", ev, bind).CombinedOutput(); err != nil {
		t.Fatalf("bind: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", bind).Run() })
	for _, cache := range []string{filepath.Join(ev, "cache"), filepath.Join(bind, "cache"), filepath.Join(bind, "a", "b")} {
		_, err := Open(context.Background(), ev, &OpenOptions{CacheDir: cache})
		if !errors.Is(err, ErrCacheUnsafe) || !strings.Contains(err.Error(), "inside the evidence") {
			t.Errorf("%s: %v", cache, err)
		}
	}
	// A collection that is part of directory evidence (Within).
	p := collection(t, ev, "ckpt.tar.zst", 4096, 5)
	_, err := Open(context.Background(), p, &OpenOptions{CacheDir: filepath.Join(bind, "c"), Within: ev})
	if !errors.Is(err, ErrCacheUnsafe) {
		t.Errorf("within: %v", err)
	}
	ents, _ := os.ReadDir(ev)
	if len(ents) != 2 {
		t.Errorf("the evidence changed: %v", ents)
	}
}

// Concurrent commands on the same cold collection: one builds, the others
// wait and reuse; none sees a half entry.
func TestCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	p := collection(t, dir, "n.tar.zst", 4<<20, 6)
	var wg sync.WaitGroup
	var mu sync.Mutex
	hits := 0
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := Open(context.Background(), p, &OpenOptions{CacheDir: cache})
			if err != nil {
				t.Error(err)
				return
			}
			defer ev.Close()
			if b, err := ReadFile(ev.Source, "var/lib/big", 8<<20); err != nil || len(b) != 4<<20 {
				t.Errorf("%d bytes %v", len(b), err)
			}
			mu.Lock()
			if ev.Cache.Hit {
				hits++
			}
			mu.Unlock()
		}()
	}
	// And as separate processes, as two commands in two terminals.
	q := collection(t, dir, "m.tar.zst", 4<<20, 7)
	outs := make([][]byte, 3)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _ = helper(t, "open", "DEADNODE_EVIDENCE_PATH="+q, "DEADNODE_EVIDENCE_CACHE="+cache).CombinedOutput()
		}()
	}
	wg.Wait()
	if hits != 3 {
		t.Errorf("%d of 4 goroutines reused the entry", hits)
	}
	built := 0
	for _, o := range outs {
		switch strings.TrimSpace(string(o)) {
		case "entries=9 hit=false":
			built++
		case "entries=9 hit=true":
		default:
			t.Errorf("helper: %s", o)
		}
	}
	if built != 1 {
		t.Errorf("%d processes built the entry", built)
	}
	if keys, tmps := entries(t, cache); len(keys) != 2 || len(tmps) != 0 {
		t.Errorf("entries %v %v", keys, tmps)
	}
}

// The cache stays within its bound: least recently used entries go first,
// an entry in use is kept, and one larger than the bound is not kept.
func TestCacheEviction(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	var ps []string
	for i := 0; i < 4; i++ {
		ps = append(ps, collection(t, dir, fmt.Sprintf("c%d.tar.zst", i), 1<<20, byte(10+i)))
	}
	o := &OpenOptions{CacheDir: cache, MaxCacheBytes: 3<<20 + 1<<19}
	key := map[string]string{}
	for i, p := range ps[:3] {
		ev, err := Open(context.Background(), p, o)
		must(t, err)
		key[p] = filepath.Base(ev.Cache.Entry)
		ev.Close()
		// Distinct last-use times, c0 used again last.
		at := time.Now().Add(time.Duration(i-10) * time.Minute)
		unix.UtimesNano(ev.Cache.Entry, []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(at.UnixNano())})
	}
	ev, err := Open(context.Background(), ps[0], o) // a hit: c0 is now the most recent
	must(t, err)
	if !ev.Cache.Hit {
		t.Fatal("c0 not reused")
	}
	ev.Close()
	ev, err = Open(context.Background(), ps[3], o)
	must(t, err)
	ev.Close()
	keys, _ := entries(t, cache)
	has := map[string]bool{}
	for _, k := range keys {
		has[k] = true
	}
	if !has[key[ps[0]]] || has[key[ps[1]]] || !has[key[ps[2]]] || len(keys) != 3 {
		t.Errorf("after eviction: %v (c0 %s c1 %s c2 %s)", keys, key[ps[0]], key[ps[1]], key[ps[2]])
	}
	// Larger than the whole bound: used, not kept.
	big := collection(t, dir, "big.tar.zst", 5<<20, 20)
	ev, err = Open(context.Background(), big, o)
	must(t, err)
	defer ev.Close()
	if ev.Cache.Kept || !strings.Contains(fmt.Sprint(ev.Notes), "larger than the cache's bound") {
		t.Errorf("%+v %v", ev.Cache, ev.Notes)
	}
	if b, err := ReadFile(ev.Source, "var/lib/big", 8<<20); err != nil || len(b) != 5<<20 {
		t.Errorf("%d %v", len(b), err)
	}
	if _, err := os.Stat(ev.Cache.Entry); !os.IsNotExist(err) {
		t.Errorf("oversized entry kept: %v", err)
	}
}

// A caller that needs only metadata spills less; a later caller that needs
// more gets an entry with both.
func TestCacheRetainUnion(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	p := collection(t, dir, "n.tar.zst", 1<<20, 30)
	meta := func(name string, size int64) bool { return size < 4096 }
	ev, err := Open(context.Background(), p, &OpenOptions{CacheDir: cache, Retain: meta})
	must(t, err)
	if _, err := ev.Source.Open("var/lib/big"); !errors.Is(err, ErrNotRetained) {
		t.Errorf("big retained: %v", err)
	}
	if ev.Cache.Bytes > 256<<10 {
		t.Errorf("metadata entry takes %d bytes", ev.Cache.Bytes)
	}
	ev.Close()
	ev, err = Open(context.Background(), p, &OpenOptions{CacheDir: cache, Retain: meta})
	must(t, err)
	if !ev.Cache.Hit {
		t.Error("same needs: not reused")
	}
	ev.Close()
	ev, err = Open(context.Background(), p, &OpenOptions{CacheDir: cache})
	must(t, err)
	if ev.Cache.Hit {
		t.Error("more needs: reused an entry without them")
	}
	if b, err := ReadFile(ev.Source, "var/lib/big", 2<<20); err != nil || len(b) != 1<<20 {
		t.Errorf("%d %v", len(b), err)
	}
	ev.Close()
	ev, err = Open(context.Background(), p, &OpenOptions{CacheDir: cache, Retain: meta})
	must(t, err)
	if !ev.Cache.Hit {
		t.Error("fewer needs: the full entry not reused")
	}
	ev.Close()
}

// Cancelling while an entry is built leaves nothing behind.
func TestCacheCancelledBuild(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	noise := make([]byte, 16<<20)
	rand.New(rand.NewSource(1)).Read(noise)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(&tar.Header{Name: "noise", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(noise))}))
	tw.Write(noise)
	tw.Close()
	p := writeFile(t, dir, "n.tar.zst", compress(t, buf.Bytes(), CompressionZstd))
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Open(ctx, p, &OpenOptions{CacheDir: cache, Progress: func(Progress) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
	if keys, tmps := entries(t, cache); len(keys)+len(tmps) != 0 {
		t.Errorf("left %v %v", keys, tmps)
	}
}

// An index written to the cache reads back to the same archive: every
// entry's metadata, attributes, data and sparse map.
func TestIndexRoundTrip(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "s.img")
	f, err := os.Create(img)
	must(t, err)
	f.WriteAt([]byte("data at 1M"), 1<<20)
	f.Truncate(3 << 20)
	f.Close()
	out, err := exec.Command("tar", "-C", dir, "--sparse", "-cf", "-", "s.img").Output()
	must(t, err)
	raw := append(hostileTar(t)[:len(hostileTar(t))-1024], out...)
	gz := compress(t, raw, CompressionGzip)
	a, err := NewArchive(context.Background(), bytes.NewReader(gz), int64(len(gz)), "rt.tar.gz", &ArchiveOptions{TempDir: dir})
	must(t, err)
	defer a.Close()
	st, _ := a.spill.Stat()
	b, h, err := decodeIndex(encodeIndex(a, indexHeader{id: identity{Dev: 1, Ino: 2, Size: 3}, comp: CompressionGzip}), st.Size(), "rt.tar.gz")
	must(t, err)
	b.spill = a.spill
	if h.id != (identity{Dev: 1, Ino: 2, Size: 3}) || b.Compression() != CompressionGzip {
		t.Errorf("header %+v", h)
	}
	dump := func(src *Archive) string {
		var s strings.Builder
		Walk(context.Background(), src, ".", func(st *Stat, err error) error {
			x, _ := src.Xattrs(st.Name)
			fmt.Fprintf(&s, "%+v %q", *st, x)
			if st.Mode.IsRegular() {
				d, err := ReadFile(src, st.Name, 4<<20)
				fmt.Fprintf(&s, " %x %v", sha256.Sum256(d), err)
			}
			s.WriteString("\n")
			return nil
		})
		fmt.Fprint(&s, src.Warnings())
		return s.String()
	}
	if x, y := dump(a), dump(b); x != y || !strings.Contains(x, "s.img") {
		t.Errorf("round trip differs:\n%s\n---\n%s", x, y)
	}
	if fl, err := b.Open("s.img"); err != nil || fl.Size() != 3<<20 {
		t.Errorf("%v", err)
	}
}

// An index whose nodes say their data is retained outside the data file
// (as an uncompressed archive's are, in the archive itself) is refused: a
// cache entry has nothing else to read them from.
func TestIndexRetainedOutsideSpill(t *testing.T) {
	raw := buildTar(t, []member{{tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, "root:x:0:0\n"}})
	a, err := NewArchive(context.Background(), bytes.NewReader(raw), int64(len(raw)), "plain.tar", nil)
	must(t, err)
	defer a.Close()
	if _, _, err := decodeIndex(encodeIndex(a, indexHeader{comp: CompressionGzip}), 1<<20, "plain.tar"); !errors.Is(err, errIndex) {
		t.Errorf("decoded: %v", err)
	}
}
