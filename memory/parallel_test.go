package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// bigSpace is a space of two adjacent dumped mappings over data (read from
// memory), split where the first ends.
func bigSpace(data []byte, split int) *Space {
	ra := bytes.NewReader(data)
	s := &Space{PID: 7, Comm: "big", Mappings: []Mapping{
		{Start: 0x100000, End: 0x100000 + uint64(split), Kind: "anon"},
		{Start: 0x100000 + uint64(split), End: 0x100000 + uint64(len(data)), Kind: "heap"}}}
	s.segs = []seg{{start: 0x100000, end: 0x100000 + uint64(split), prov: Dumped, r: ra, src: "a", vma: 0},
		{start: 0x100000 + uint64(split), end: 0x100000 + uint64(len(data)), prov: Dumped, r: ra, off: int64(split), src: "b", vma: 1}}
	return s
}

// withParallel runs f with the parallel search switched on at the given
// piece size (or off), and the hit bound of a piece.
func withParallel(piece uint64, on bool, hits int, f func()) {
	p, m, h := pieceSize, parallelMin, maxPieceHits
	defer func() { pieceSize, parallelMin, maxPieceHits = p, m, h }()
	pieceSize, parallelMin, maxPieceHits = piece, 1, hits
	if !on {
		parallelMin = 1 << 62
	}
	f()
}

func allHits(t *testing.T, s *Space, pat *Pattern, opt *SearchOptions) []Hit {
	var out []Hit
	for h, err := range s.Search(context.Background(), pat, opt) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

// The parallel search gives exactly the hits of the one-pass window, in
// the same order, whatever the piece size: occurrences across pieces and
// mappings, overlapping ones, contexts cut at the span's ends; and a
// piece with more hits than a worker keeps is searched again in one pass.
func TestParallelSearchSameHits(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	data := make([]byte, 200_000+12345)
	for i := range data {
		data[i] = "ab"[rng.IntN(2)]
	}
	copy(data, "SECRET")
	copy(data[len(data)-6:], "SECRET")
	for i := 0; i < 100; i++ {
		copy(data[rng.IntN(len(data)-6):], "SECRET")
	}
	s := bigSpace(data, 77777)
	hx, _ := Hex("62 61 61 62 62")
	for _, pat := range []*Pattern{String("SECRET"), String("ababa"), Bytes([]byte("aSECRETb")), hx} {
		for _, ctxLen := range []int{0, 5, 100} {
			opt := &SearchOptions{Context: ctxLen}
			var want []Hit
			withParallel(0, false, 0, func() { want = allHits(t, s, pat, opt) })
			if len(want) == 0 {
				t.Fatalf("%s: no hits", pat.Text)
			}
			for _, piece := range []uint64{4096, 65536 + 3, 1 << 20} {
				for _, maxHits := range []int{1 << 30, 20} {
					var got []Hit
					withParallel(piece, true, maxHits, func() { got = allHits(t, s, pat, opt) })
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%s ctx %d piece %d max %d: %d hits, want %d (first difference %v)", pat.Text, ctxLen, piece, maxHits, len(got), len(want), firstDiff(got, want))
					}
				}
			}
		}
	}
}

func firstDiff(a, b []Hit) string {
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i], b[i]) {
			return fmt.Sprintf("#%d %+v vs %+v", i, a[i], b[i])
		}
	}
	return "length"
}

// A search stops when its context is cancelled, before or while it runs:
// no hit comes after the cancellation, and the error says why.
func TestSearchCancel(t *testing.T) {
	data := bytes.Repeat([]byte("xSECRETx"), 1<<17)
	s := bigSpace(data, len(data)/2)
	for _, on := range []bool{false, true} {
		withParallel(64<<10, on, 1<<30, func() {
			cctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n, after := 0, 0
			var last error
			for _, err := range s.Search(cctx, String("SECRET"), nil) {
				if err != nil {
					last = err
					continue
				}
				if n++; n == 10 {
					cancel()
				} else if n > 10 {
					after++
				}
			}
			if !errors.Is(last, context.Canceled) || after > 0 {
				t.Fatalf("parallel %v: error %v, %d hits after the cancellation", on, last, after)
			}
			for _, err := range s.Search(cctx, String("SECRET"), nil) {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled before: %v", err)
				}
			}
		})
	}
	// Strings: the same.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range s.Strings(cctx, nil) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("strings: %v", err)
		}
	}
}

// Pages in place in a host file (here a .tar) are mapped, not read, and
// give the same hits as reading them; a compressed copy gives them too
// (its pages searched in the pass beside the indexing), and a cancelled
// search of it stops.
func TestMappedSearch(t *testing.T) {
	const pages = 6000
	rng := rand.New(rand.NewPCG(3, 5))
	var marks []int
	dir := t.TempDir()
	for _, compress := range []bool{false, true} {
		name := filepath.Join(dir, "big.tar")
		if compress {
			name += ".zst"
		}
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		rng = rand.New(rand.NewPCG(3, 5))
		marks = marks[:0]
		err = writeT0Archive(f, compress, 0x10000, pages, func(w io.Writer) error {
			page := make([]byte, pageSize)
			for i := range pages {
				clear(page)
				if i%97 == 0 {
					o := rng.IntN(pageSize)
					copy(page[o:], "MAPPED-SECRET")
					marks = append(marks, i*pageSize+o)
					if o+13 > pageSize {
						// continues on the next page: written there below
						copy(page[o:], "MAPPED-SECRET"[:pageSize-o])
					}
				}
				if i > 0 && i%97 == 1 && marks[len(marks)-1]%pageSize+13 > pageSize {
					prev := marks[len(marks)-1] % pageSize
					copy(page, "MAPPED-SECRET"[pageSize-prev:])
				}
				if _, err := w.Write(page); err != nil {
					return err
				}
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		withParallel(1<<20, true, 1<<30, func() {
			for h, err := range SearchPath(ctx, name, String("MAPPED-SECRET"), &SearchOptions{Context: 8}, nil) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, h.Address)
			}
		})
		var want []uint64
		for _, m := range marks {
			want = append(want, 0x10000+uint64(m))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %d hits, want %d", name, len(got), len(want))
		}
		if compress {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			for _, err := range SearchPath(cctx, name, String("MAPPED-SECRET"), nil, nil) {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled: %v", err)
				}
			}
			continue
		}
		r, err := OpenPath(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.Space(1)
		data, unmap := s.mapRange(0x10000+pageSize, 0x10000+5*pageSize)
		if data == nil {
			t.Fatal("the pages of a .tar are not mapped")
		}
		unmap()
		var seq []Hit
		withParallel(0, false, 0, func() { seq = allHits(t, s, String("MAPPED-SECRET"), &SearchOptions{Context: 8}) })
		var par, read []Hit
		withParallel(1<<20, true, 1<<30, func() { par = allHits(t, s, String("MAPPED-SECRET"), &SearchOptions{Context: 8}) })
		mapPieces = false
		withParallel(1<<20, true, 1<<30, func() { read = allHits(t, s, String("MAPPED-SECRET"), &SearchOptions{Context: 8}) })
		mapPieces = true
		if !reflect.DeepEqual(seq, par) || !reflect.DeepEqual(seq, read) || len(par) != len(marks) {
			t.Fatalf("mapped %d hits, read in pieces %d, read in one pass %d", len(par), len(read), len(seq))
		}
		r.Close()
	}
}

// The other long calls stop with their context too.
func TestCancelCalls(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	images := filepath.Join("..", "checkpoint", "testdata", "criu-dump", "images")
	if _, err := OpenPath(done, images, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenPath: %v", err)
	}
	r, err := OpenPath(ctx, images, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Space(1360)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteCore(done, s, io.Discard, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteCore: %v", err)
	}
	if err := FillArgs(done, r.CP, true, true); !errors.Is(err, context.Canceled) {
		t.Fatalf("FillArgs: %v", err)
	}
	n := 0
	for _, err := range r.Search(done, String("FORGE"), nil) {
		if n++; !errors.Is(err, context.Canceled) {
			t.Fatalf("Search: %v", err)
		}
	}
	if n != 1 {
		t.Fatalf("Search: %d results", n)
	}
}
