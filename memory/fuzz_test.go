package memory

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"regexp"
	"sort"
	"testing"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
)

// memSource is an in-memory evidence source of flat files.
type memSource map[string][]byte

type memFile struct {
	*bytes.Reader
}

func (memFile) Close() error { return nil }

func (m memSource) Lstat(name string) (*evidence.Stat, error) {
	if b, ok := m[name]; ok {
		return &evidence.Stat{Name: name, Mode: 0o644, Size: int64(len(b))}, nil
	}
	if name == "." {
		return &evidence.Stat{Name: ".", Mode: fs.ModeDir | 0o755}, nil
	}
	return nil, fs.ErrNotExist
}
func (m memSource) ReadDir(string) ([]*evidence.Stat, error) { return nil, nil }
func (m memSource) Readlink(string) (string, error)          { return "", fs.ErrInvalid }
func (m memSource) Xattrs(string) (map[string][]byte, error) { return nil, nil }
func (m memSource) String() string                           { return "mem" }
func (m memSource) Close() error                             { return nil }
func (m memSource) Open(name string) (evidence.File, error) {
	b, ok := m[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return memFile{bytes.NewReader(b)}, nil
}

// FuzzSpaceBuilder builds an address space from a hostile pagemap image
// and VMA list: the ranges must stay sorted, disjoint, inside the mappings
// and cover them, and reading every mapping must not fail but where the
// bytes are not captured.
func FuzzSpaceBuilder(f *testing.F) {
	f.Add(pagemapImg(1, pme{0x10000, 4, checkpoint.PagePresent, false}, pme{0x14000, 2, checkpoint.PageParent, false}, pme{0x20000, 1, checkpoint.PageLazy, true}),
		[]byte{1, 0, 6, 0, 0x20, 2})
	f.Add(pagemapImg(1, pme{0x12000, 4, checkpoint.PagePresent, false}, pme{0x10000, 4, checkpoint.PagePresent | checkpoint.PageLazy, false}), []byte{1, 0, 8, 3})
	f.Add(pagemapImg(2, pme{0, 1 << 20, checkpoint.PagePresent, false}, pme{0xfffffffffffff000, 1, checkpoint.PagePresent, false}), []byte{0, 0, 255, 0, 255, 255, 0, 1})
	f.Add(pagemapImg(1, pme{0x10000, 3, 0xff, false}), []byte{1, 0, 3, 8})
	f.Fuzz(func(t *testing.T, pmImg, spec []byte) {
		src := memSource{"pagemap-1.img": pmImg, "pages-1.img": make([]byte, 16*pageSize), "pages-2.img": make([]byte, 3*pageSize),
			"pagemap-shmem-7.img": pmImg}
		lv := newLevel(checkpoint.NewImageDir(src, "."))
		pm, _ := lv.pagemap(1)
		if pm == nil {
			pm = &checkpoint.Pagemap{}
		}
		// spec: 4 bytes a mapping: start page (u16 via 2 bytes), pages, kind.
		var vmas []Mapping
		statuses := []uint32{stAnon, 1 | checkpoint.VMAFilePrivate, stShared, stVdso, 1 | checkpoint.VMAAreaMemfd, 1 | checkpoint.VMAAreaSysvipc, stAnon | checkpoint.VMAAreaHeap, 1 | checkpoint.VMAFileShared, 0}
		for i := 0; i+4 <= len(spec) && len(vmas) < 64; i += 4 {
			start := uint64(binary.BigEndian.Uint16(spec[i:])) * 0x1000
			n := uint64(spec[i+2]) + 1
			st := statuses[int(spec[i+3])%len(statuses)]
			vmas = append(vmas, Mapping{Start: start, End: start + n*pageSize, Status: st, Shmid: 7, Pgoff: uint64(spec[i+3]) * pageSize, Path: "/f"})
		}
		sort.Slice(vmas, func(i, j int) bool { return vmas[i].Start < vmas[j].Start })
		r := &Reader{CP: &checkpoint.Checkpoint{}, top: lv, shmem: map[uint64]*shmemObj{}, files: map[string]*fileBacking{}}
		s := &Space{PID: 1}
		b := &builder{r: r, s: s}
		b.build(vmas, pm, lv)
		var prev uint64
		for i, g := range s.segs {
			if g.end <= g.start || (i > 0 && g.start < prev) {
				t.Fatalf("seg %d %x-%x after %x", i, g.start, g.end, prev)
			}
			prev = g.end
			m := s.Mapping(g.start)
			if m == nil || g.end > m.End {
				t.Fatalf("seg %x-%x outside the mappings", g.start, g.end)
			}
		}
		buf := make([]byte, 4096)
		for _, m := range s.Mappings {
			if m.End <= m.Start {
				continue
			}
			covered := uint64(0)
			for _, rg := range s.Regions(m.Start, m.End) {
				covered += rg.End - rg.Start
				if rg.Provenance != NotCaptured {
					n := min(uint64(len(buf)), rg.End-rg.Start)
					if _, err := s.Read(buf[:n], rg.Start); err != nil {
						t.Fatalf("read of %s range %x: %v", rg.Provenance, rg.Start, err)
					}
				}
			}
			if covered != m.End-m.Start {
				t.Fatalf("mapping %x-%x: ranges cover %d bytes", m.Start, m.End, covered)
			}
		}
	})
}

// FuzzSearchWindow checks the window logic against one pass over the
// whole buffer: every occurrence of a literal, and the regex's matches,
// are found exactly once whatever the chunk size and run boundaries.
func FuzzSearchWindow(f *testing.F) {
	f.Add([]byte("xxSECRETyySECRETSECRET"), []byte("SECRET"), uint16(7), uint8(3))
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaa"), []byte("aaa"), uint16(1), uint8(0))
	f.Add([]byte("AB1 CDE2 FGHIJ3 KLMNOP4"), []byte("Z"), uint16(3), uint8(5))
	f.Fuzz(func(t *testing.T, data, lit []byte, chunk uint16, cut uint8) {
		if len(data) == 0 || len(data) > 1<<16 || len(lit) == 0 || len(lit) > 64 {
			return
		}
		// The data as two runs of two adjacent "VMAs", split at cut.
		split := int(cut) % (len(data) + 1)
		s := &Space{PID: 1, Mappings: []Mapping{{Start: 0x1000, End: 0x1000 + uint64(len(data)), Kind: "anon"}}}
		ra := bytes.NewReader(data)
		if split > 0 {
			s.segs = append(s.segs, seg{start: 0x1000, end: 0x1000 + uint64(split), prov: Dumped, r: ra})
		}
		if split < len(data) {
			s.segs = append(s.segs, seg{start: 0x1000 + uint64(split), end: 0x1000 + uint64(len(data)), prov: Dumped, r: ra, off: int64(split)})
		}
		cw := int(cut % 7)
		opt := &SearchOptions{ChunkSize: int(chunk), Context: cw}
		checkCtx := func(h Hit) {
			a := int(h.Address - 0x1000)
			cs, ce := max(0, a-cw), min(len(data), a+h.Length+cw)
			if h.ContextStart != 0x1000+uint64(cs) || !bytes.Equal(h.Context, data[cs:ce]) {
				t.Fatalf("hit at %d: context %q at %x, want %q", a, h.Context, h.ContextStart, data[cs:ce])
			}
		}
		var want []uint64
		for i := 0; i+len(lit) <= len(data); i++ {
			if bytes.Equal(data[i:i+len(lit)], lit) {
				want = append(want, 0x1000+uint64(i))
			}
		}
		var got []uint64
		for h, err := range s.Search(ctx, Bytes(lit), opt) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, h.Address)
			checkCtx(h)
		}
		if !equalU64(got, want) {
			t.Fatalf("literal %q chunk %d: got %x want %x", lit, chunk, got, want)
		}
		// A regex whose matches are at most 8 bytes long.
		re := regexp.MustCompile(`[A-Z]{1,6}[0-9]`)
		pat, _ := Regex(re.String(), 8)
		want = want[:0]
		for _, m := range re.FindAllIndex(data, -1) {
			want = append(want, 0x1000+uint64(m[0]))
		}
		got = got[:0]
		for h, err := range s.Search(ctx, pat, opt) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, h.Address)
			checkCtx(h)
		}
		if !equalU64(got, want) {
			t.Fatalf("regex chunk %d: got %x want %x", chunk, got, want)
		}
	})
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var _ io.ReaderAt = memFile{}
