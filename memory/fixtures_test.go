package memory

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"

	"github.com/deadnode/deadnode/internal/testfix"
)

const secret = "FORGE-SECRET-7f3a9c"

type want struct {
	pid        uint32
	addr       uint64
	vmaStart   uint64
	vmaEnd     uint64
	kind, prov string
}

func hitsOf(t *testing.T, r *Reader, pat *Pattern) []want {
	t.Helper()
	var out []want
	for h, err := range r.Search(ctx, pat, &SearchOptions{Context: 16}) {
		if err != nil {
			t.Errorf("search: %v", err)
			continue
		}
		out = append(out, want{h.PID, h.Address, h.VMAStart, h.VMAEnd, h.VMAKind, string(h.Provenance)})
	}
	return out
}

func TestSecretCriuDump(t *testing.T) {
	r, err := OpenPath(ctx, testfix.Fixture(t, "criu-dump", "images"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := hitsOf(t, r, String(secret))
	exp := []want{{1360, 0x556851ae22ac, 0x556851ae2000, 0x556851b03000, "heap", "dumped"}}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("hits %x, want %x", got, exp)
	}
	s, err := r.Space(1360)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 35)
	if _, err := s.ReadAt(b, 0x556851ae22a0); err != nil || string(b) != "heap-marker:FORGE-SECRET-7f3a9c:end" {
		t.Fatalf("ReadAt = %q, %v", b, err)
	}
	// The heap's fourth page is the last dumped one; the rest reads as
	// zeros with provenance zero.
	rg := s.Regions(0x556851ae2000, 0x556851b03000)
	if len(rg) != 2 || rg[0].Provenance != Dumped || rg[0].End != 0x556851ae6000 || rg[0].Offset != 12288 ||
		rg[1].Provenance != Zero || rg[1].End != 0x556851b03000 {
		t.Fatalf("heap regions %+v", rg)
	}
	// The secret is at offset 12972 of pages-1.img (GROUND_TRUTH).
	if off := rg[0].Offset + int64(0x556851ae22ac-rg[0].Start); off != 12972 {
		t.Fatalf("pages offset %d", off)
	}
	// vvar is never dumped; reading it fails rather than giving zeros.
	n, err := s.Read(make([]byte, 8), 0x7fbdf1174000)
	var ae *AddrError
	if n != 0 || !errors.As(err, &ae) || ae.Reason != ReasonSpecial {
		t.Fatalf("vvar read: %d %v", n, err)
	}
	// libc text: no copy of the file, so not captured.
	if rg := s.Regions(0x7fbdf0fad000, 0x7fbdf0fae000); len(rg) != 1 || rg[0].Provenance != NotCaptured || rg[0].Reason != ReasonNoFile {
		t.Fatalf("libc text %+v", rg)
	}
}

// The executable's unmodified pages come from the file when the caller
// provides the container's filesystem.
func TestFileBackedPages(t *testing.T) {
	exe := testfix.Fixture(t, "criu-dump", "forge-target.bin")
	r, err := OpenPath(ctx, testfix.Fixture(t, "criu-dump", "images"), &Options{Files: func(p string) (evidence.File, error) {
		if p != "/tmp/forge/criu-target/forge-target" {
			return nil, os.ErrNotExist
		}
		d, err := evidence.OpenDir(filepath.Dir(exe))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.Open(filepath.Base(exe))
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Space(1360)
	if err != nil {
		t.Fatal(err)
	}
	// 5568455aa000-5568455ab000 r-- pgoff 0: the ELF header, from the file.
	rg := s.Regions(0x5568455aa000, 0x5568455ab000)
	if len(rg) != 1 || rg[0].Provenance != File || rg[0].Source != "/tmp/forge/criu-target/forge-target" {
		t.Fatalf("regions %+v", rg)
	}
	b := make([]byte, 4)
	if _, err := s.Read(b, 0x5568455aa000); err != nil || string(b) != "\x7fELF" {
		t.Fatalf("read %q %v", b, err)
	}
	// 5568455ac000 r-- pgoff 0x2000 is absent from the pagemap: file bytes at 0x2000.
	want := make([]byte, 64)
	f, _ := os.Open(exe)
	f.ReadAt(want, 0x2000)
	f.Close()
	got := make([]byte, 64)
	if _, err := s.Read(got, 0x5568455ac000); err != nil || string(got) != string(want) {
		t.Fatalf("pgoff read %x %v", got, err)
	}
}

var podmanWant = []want{
	{18, 0x30812a5a, 0x30811000, 0x30833000, "heap", "dumped"},
	{18, 0x30812a92, 0x30811000, 0x30833000, "heap", "dumped"},
	{18, 0x308138f2, 0x30811000, 0x30833000, "heap", "dumped"},
	{18, 0x7ffd340c6f15, 0, 0, "stack", "dumped"},
}

func checkWant(t *testing.T, got, exp []want) {
	t.Helper()
	if len(got) != len(exp) {
		t.Fatalf("hits %x, want %x", got, exp)
	}
	for i := range exp {
		g, e := got[i], exp[i]
		if e.vmaStart == 0 {
			e.vmaStart, e.vmaEnd = g.vmaStart, g.vmaEnd
			if !(g.vmaStart <= g.addr && g.addr < g.vmaEnd) {
				t.Errorf("hit %x outside its VMA", g)
			}
		}
		if g != e {
			t.Errorf("hit %d = %x, want %x", i, g, e)
		}
	}
}

func TestSecretPodman(t *testing.T) {
	for _, name := range []string{"ckpt-leave-running.tar", "ckpt-leave-running.tar.gz", "ckpt-default-zstd.tar.zst", "ckpt.tar.gz"} {
		t.Run(name, func(t *testing.T) {
			r, err := OpenPath(ctx, testfix.Fixture(t, "podman-checkpoint", name), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := hitsOf(t, r, String(secret))
			checkWant(t, got, podmanWant)
			// The stale pid 23 images (podman reuses its checkpoint dir)
			// are never read: pid 23 is not a task of these two.
			stale := name == "ckpt-default-zstd.tar.zst" || name == "ckpt.tar.gz"
			if _, err := r.Space(23); (err != nil) != stale {
				t.Fatalf("Space(23) error %v, stale %v", err, stale)
			}
			if stale != slices.Contains(r.CP.StaleImages, "pagemap-23.img") {
				t.Fatalf("stale images %v", r.CP.StaleImages)
			}
		})
	}
}

func TestSecretContainerd(t *testing.T) {
	exp := []want{
		{50, 0x25ee7a8b, 0x25ee6000, 0x25f08000, "heap", "dumped"},
		{50, 0x25ee7b37, 0x25ee6000, 0x25f08000, "heap", "dumped"},
		{50, 0x25ee8b77, 0x25ee6000, 0x25f08000, "heap", "dumped"},
		{50, 0x7fffdd5b2ef7, 0, 0, "stack", "dumped"},
	}
	t.Run("image-path-dir", func(t *testing.T) {
		r, err := OpenPath(ctx, testfix.Fixture(t, "containerd-node", "ctr-checkpoint-image-path", "images"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		checkWant(t, hitsOf(t, r, String(secret)), exp)
	})
	t.Run("content-store", func(t *testing.T) {
		a, err := evidence.OpenArchive(context.Background(), filepath.Join("..", "testdata", "containerd-node", "containerd-node.tar.gz"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		cp, err := checkpoint.OpenContainerd(ctx, a, "node/var/lib/containerd/io.containerd.content.v1.content",
			"sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cp.Close()
		r, err := Open(cp, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		checkWant(t, hitsOf(t, r, String(secret)), exp)
	})
}

// mem maps agrees with crit x mems: the same VMAs, protections and files.
func TestMapsMatchCrit(t *testing.T) {
	r, err := OpenPath(ctx, testfix.Fixture(t, "criu-dump", "images"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Space(1360)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(testfix.Fixture(t, "criu-dump", "crit-json", "x-mems.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || !strings.Contains(l, "-") || strings.HasPrefix(l, "exe") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) != len(s.Mappings) || len(lines) != 29 {
		t.Fatalf("%d crit lines, %d mappings", len(lines), len(s.Mappings))
	}
	for i, l := range lines {
		m := s.Mappings[i]
		fields := strings.Fields(l)
		se := strings.SplitN(fields[0], "-", 2)
		st, _ := strconv.ParseUint(se[0], 16, 64)
		en, _ := strconv.ParseUint(se[1], 16, 64)
		prot := strings.Map(func(r rune) rune {
			if r == '-' {
				return -1
			}
			return r
		}, fields[1])
		var ours string
		for i, c := range "rwx" {
			if m.Prot&(1<<i) != 0 {
				ours += string(c)
			}
		}
		if st != m.Start || en != m.End || prot != ours {
			t.Errorf("line %q vs %x-%x %s", l, m.Start, m.End, m.Perms)
		}
		if len(fields) > 2 && strings.HasPrefix(fields[2], "/") {
			path := fields[2]
			if path != m.Path {
				t.Errorf("line %q: path %q", l, m.Path)
			}
			var pg uint64
			if len(fields) == 5 && fields[3] == "+" {
				pg, _ = strconv.ParseUint(strings.TrimPrefix(fields[4], "0x"), 16, 64)
			}
			if pg != m.Pgoff {
				t.Errorf("line %q: pgoff 0x%x", l, m.Pgoff)
			}
		} else if m.Kind == "file" {
			t.Errorf("line %q: we say file %s", l, m.Path)
		}
	}
	// The heap: 4 pages dumped, 29 absent (x-rss: 556851ae2000 / 4 of 33).
	h := s.Mapping(0x556851ae2000)
	if h.Kind != "heap" || h.Pages != (PageCounts{Dumped: 4, Absent: 29}) {
		t.Fatalf("heap %+v", h)
	}
	var dumped uint64
	for _, m := range s.Mappings {
		dumped += m.Pages.Dumped
	}
	if st, _ := os.Stat(testfix.Fixture(t, "criu-dump", "images", "pages-1.img")); int64(dumped*pageSize) != st.Size() {
		t.Fatalf("%d pages dumped, pages-1.img has %d bytes", dumped, st.Size())
	}
}

func TestStringsAndRegex(t *testing.T) {
	r, err := OpenPath(ctx, testfix.Fixture(t, "criu-dump", "images"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, _ := r.Space(1360)
	var found bool
	for st, err := range s.Strings(ctx, &StringsOptions{Min: 8}) {
		if err != nil {
			t.Fatal(err)
		}
		if st.Text == "heap-marker:FORGE-SECRET-7f3a9c:end" {
			found = st.Address == 0x556851ae22a0 && st.Provenance == Dumped
		}
	}
	if !found {
		t.Fatal("heap marker not among the strings at 0x556851ae22a0")
	}
	re, err := Regex(`heap-marker:([A-Z]+-)+[0-9a-f]{6}:end`, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for h, err := range s.Search(ctx, re, &SearchOptions{Context: 4, ChunkSize: 100}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Address)
		if h.Length != 35 || string(h.Context) != "\x00\x00\x00\x00heap-marker:FORGE-SECRET-7f3a9c:end\x00\x00\x00\x00" {
			t.Errorf("hit %+v %q", h, h.Context)
		}
	}
	if !slices.Equal(got, []uint64{0x556851ae22a0}) {
		t.Fatalf("regex hits %x", got)
	}
	// Hex and tiny chunks find the same literal across chunk edges.
	hx, _ := Hex(fmt.Sprintf("%x", secret))
	for _, cs := range []int{64, 100, 4095, 1 << 20} {
		var got []uint64
		for h, err := range s.Search(ctx, hx, &SearchOptions{ChunkSize: cs}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, h.Address)
		}
		if !slices.Equal(got, []uint64{0x556851ae22ac}) {
			t.Fatalf("chunk %d: %x", cs, got)
		}
	}
}

// Command lines and environments read through the address space agree
// with the ground truth (pid 50 of the containerd checkpoint).
func TestFillArgs(t *testing.T) {
	cp, err := checkpoint.OpenPath(ctx, testfix.Fixture(t, "containerd-node", "ctr-checkpoint-image-path", "images"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	p := cp.Process(50)
	p.Cmdline, p.Environ = nil, nil
	if err := FillArgs(ctx, cp, true, true); err != nil {
		t.Fatal(err)
	}
	want := []string{"busybox", "sh", "-c", "POOL=stratum+tcp://pool.forge.invalid:3333; WALLET=FORGE-SECRET-7f3a9c; while :; do sleep 10; done"}
	if !slices.Equal(p.Cmdline, want) {
		t.Fatalf("cmdline %q", p.Cmdline)
	}
	if !slices.Contains(p.Environ, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
		t.Fatalf("environ %q", p.Environ)
	}
}

// The dropper (pid 19 of the Podman archives) runs a file the container
// wrote: its unmodified text pages come from rootfs-diff.tar, with
// provenance file, and match the binary (a busybox copy, sha256 3d9f2889…).
func TestFileFromRootfsDiff(t *testing.T) {
	for _, name := range []string{"ckpt-leave-running.tar", "ckpt-leave-running.tar.gz"} {
		r, err := OpenPath(ctx, testfix.Fixture(t, "podman-checkpoint", name), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Space(19)
		if err != nil {
			t.Fatal(err)
		}
		rg := s.Regions(0x400000, 0x401000)
		if len(rg) != 1 || rg[0].Provenance != File || rg[0].Source != "/usr/local/bin/dropper" || rg[0].Offset != 0 {
			t.Fatalf("%s: %+v", name, rg)
		}
		b := make([]byte, 4)
		if _, err := s.Read(b, 0x400000); err != nil || string(b) != "\x7fELF" {
			t.Fatalf("%s: %q %v", name, b, err)
		}
		// Text at pgoff 0x1000: one page dumped, the rest from the file.
		var dumped, file uint64
		for _, x := range s.Regions(0x401000, 0x585000) {
			switch x.Provenance {
			case Dumped:
				dumped += x.End - x.Start
			case File:
				file += x.End - x.Start
			default:
				t.Fatalf("%s: text range %+v", name, x)
			}
		}
		if dumped != pageSize || file != 387*pageSize {
			t.Fatalf("%s: dumped %d file %d", name, dumped, file)
		}
		r.Close()
	}
}

// SearchFile streams the pages of compressed archives: the same hits,
// with the same context, as reading them from a spill.
func TestSearchFileStream(t *testing.T) {
	for _, name := range []string{"ckpt-leave-running.tar", "ckpt-leave-running.tar.gz", "ckpt-default-zstd.tar.zst", "ckpt.tar.gz"} {
		p := testfix.Fixture(t, "podman-checkpoint", name)
		var got []want
		var ctxs []string
		for h, err := range SearchPath(ctx, p, String(secret), &SearchOptions{Context: 12}, nil) {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got = append(got, want{h.PID, h.Address, h.VMAStart, h.VMAEnd, h.VMAKind, string(h.Provenance)})
			ctxs = append(ctxs, string(h.Context))
		}
		checkWant(t, got, podmanWant)
		if len(ctxs) != 4 || !strings.Contains(ctxs[0], "X="+secret+"; while") || len(ctxs[0]) != len(secret)+24 {
			t.Fatalf("%s: context %q", name, ctxs[0])
		}
		r, err := OpenPath(ctx, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ref []string
		for h, err := range r.Search(ctx, String(secret), &SearchOptions{Context: 12}) {
			if err != nil {
				t.Fatal(err)
			}
			ref = append(ref, string(h.Context))
		}
		r.Close()
		if !slices.Equal(ctxs, ref) {
			t.Fatalf("%s: stream contexts %q, spilled %q", name, ctxs, ref)
		}
	}
}

var ctx = context.Background()

// warnText joins warnings as lines, as they print.
func warnText(ws []evidence.Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// A damaged compressed archive: the one pass gives up, and the search says
// what opening the archive says, or finds what reading it finds.
func TestSearchPathDamaged(t *testing.T) {
	b, err := os.ReadFile(testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	for _, frac := range []int{1, 3, 6, 9} {
		cut := filepath.Join(t.TempDir(), "cut.tar.zst")
		os.WriteFile(cut, b[:len(b)*frac/10], 0o644)
		var got, want []string
		for h, err := range SearchPath(ctx, cut, String(secret), nil, nil) {
			got = append(got, fmt.Sprint(h.PID, h.Address, err))
		}
		if r, err := OpenPath(ctx, cut, nil); err != nil {
			want = append(want, fmt.Sprint(0, 0, err))
		} else {
			for h, err := range r.Search(ctx, String(secret), nil) {
				want = append(want, fmt.Sprint(h.PID, h.Address, err))
			}
			r.Close()
		}
		if !slices.Equal(got, want) {
			t.Fatalf("cut at %d/10: %q, want %q", frac, got, want)
		}
	}
}
