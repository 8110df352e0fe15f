package memory

import (
	"bytes"
	"context"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// Searching a large address space for a literal on several goroutines.
// The searchable spans are cut into pieces; workers take the pieces in
// order, each scanning its piece where the bytes lie (mapped read-only
// from the pages image when it is a host file, read otherwise) with the
// overlap a match and its context need, and the hits are yielded piece by
// piece, in order. A literal's occurrences do not depend on where the
// search starts, so the hits are exactly those of one pass over each span:
// each occurrence that lies whole in the span, its context cut to the
// span. A piece with too many hits or a read error is searched again by
// that one pass, from the start of its span.

// Variables only for the tests, which make them small.
var (
	// pieceSize is the bytes a worker scans at a time (and maps at most).
	pieceSize uint64 = 8 << 20
	// parallelMin is the searchable size from which a space is searched
	// in parallel.
	parallelMin = 2 * pieceSize
	// maxPieceHits bounds the hits a worker keeps for one piece.
	maxPieceHits = 4096
	// mapPieces maps pieces that lie in a host file (else they are read).
	mapPieces = true
)

// aheadPieces bounds the pieces scanned ahead of the one yielded.
const aheadPieces = 4

// spaceScan is one search of a space: the window for the spans searched
// in one pass, and the consumer of the hits.
type spaceScan struct {
	ctx   context.Context
	s     *Space
	w     *window
	yield func(Hit, error) bool
}

// run searches the spans in order; it returns false when stopped.
func (sc *spaceScan) run(spans []Range) bool {
	var total uint64
	for _, sp := range spans {
		total += sp.End - sp.Start
	}
	if sc.w.pat.re == nil && total >= parallelMin && runtime.GOMAXPROCS(0) > 1 {
		return sc.parallel(spans)
	}
	for _, sp := range spans {
		if sc.scanSeq(sp, 0) {
			return false
		}
	}
	return true
}

// piece is a part [lo,hi) of span sp: hits that start in it.
type piece struct {
	sp     int
	lo, hi uint64
	hits   []Hit
	redo   bool // too many hits, or a read error: search the span in one pass
}

func (sc *spaceScan) parallel(spans []Range) bool {
	// Pieces are made as workers take them, from their number: memory
	// stays flat however large the spans (a hostile mm's 64 TiB mapping
	// is 8 M pieces). first[i] is the number of span i's first piece.
	first := make([]uint64, len(spans)+1)
	for i, sp := range spans {
		first[i+1] = first[i] + (sp.End-sp.Start+pieceSize-1)/pieceSize
	}
	total := first[len(spans)]
	pieceAt := func(n uint64) *piece {
		i := sort.Search(len(spans), func(i int) bool { return first[i+1] > n })
		lo := spans[i].Start + (n-first[i])*pieceSize
		return &piece{sp: i, lo: lo, hi: lo + min(pieceSize, spans[i].End-lo)}
	}
	workers := int(min(uint64(runtime.GOMAXPROCS(0)), 4, total))
	stop := make(chan struct{})
	// At most aheadPieces pieces are taken and not yet yielded (slots), so
	// piece n is handed over in ring[n%aheadPieces], which piece
	// n-aheadPieces has left by then: a send never waits.
	slots := make(chan struct{}, aheadPieces)
	ring := make([]chan *piece, aheadPieces)
	for k := range ring {
		ring[k] = make(chan *piece, 1)
	}
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := &pieceWorker{sc: sc}
			for {
				select {
				case slots <- struct{}{}:
				case <-stop:
					return
				}
				n := next.Add(1) - 1
				if n >= total {
					return
				}
				p := pieceAt(n)
				pw.scan(p, spans[p.sp])
				ring[n%aheadPieces] <- p
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	redone := -1 // a span searched again in one pass: its pieces are done
	for n := uint64(0); n < total; n++ {
		var p *piece
		select {
		case p = <-ring[n%aheadPieces]:
		case <-sc.ctx.Done():
			sc.yield(Hit{}, sc.ctx.Err())
			return false
		}
		<-slots
		if p.sp == redone {
			continue
		}
		if p.redo {
			redone = p.sp
			if sc.scanSeq(spans[p.sp], p.lo) {
				return false
			}
			continue
		}
		for _, h := range p.hits {
			if !sc.emit(h) {
				return false
			}
		}
	}
	return true
}

// pieceWorker scans pieces; it keeps a read buffer for pieces it cannot
// map.
type pieceWorker struct {
	sc  *spaceScan
	buf []byte
}

// scan finds the occurrences that start in [p.lo,p.hi) of span sp.
func (pw *pieceWorker) scan(p *piece, sp Range) {
	w, s := pw.sc.w, pw.sc.s
	lit := w.pat.lit
	ctx := uint64(w.ctx)
	// The bytes the piece needs: its context before, the rest of a match
	// and its context after, within the span.
	from := max(sp.Start, p.lo-min(p.lo, ctx))
	to := min(sp.End, p.hi+uint64(len(lit)-1)+ctx)
	if to < p.hi { // wrapped at the top of the address space
		to = sp.End
	}
	data, unmap := []byte(nil), func() {}
	if mapPieces {
		data, unmap = s.mapRange(from, to)
	}
	if data == nil {
		n := int(to - from)
		if cap(pw.buf) < n {
			pw.buf = make([]byte, n)
		}
		k, err := s.Read(pw.buf[:n], from)
		if err != nil || k < n {
			p.redo = true
			return
		}
		data = pw.buf[:n]
	}
	defer unmap()
	if !safeScan(func() { pw.literal(p, sp, data, from) }) {
		p.hits, p.redo = nil, true
	}
}

// literal collects the occurrences of the literal in data (the span's
// bytes from address base) that start in the piece.
func (pw *pieceWorker) literal(p *piece, sp Range, data []byte, base uint64) {
	w, s := pw.sc.w, pw.sc.s
	lit := w.pat.lit
	ctx := uint64(w.ctx)
	for i := int(p.lo - base); ; {
		j := bytes.Index(data[i:], lit)
		if j < 0 {
			return
		}
		a := base + uint64(i+j)
		if a >= p.hi {
			return
		}
		cs := max(sp.Start, a-min(a, ctx))
		ce := min(sp.End, a+uint64(len(lit))+ctx)
		if ce < a {
			ce = sp.End
		}
		if len(p.hits) >= maxPieceHits {
			p.hits, p.redo = nil, true
			return
		}
		p.hits = append(p.hits, s.hit(a, len(lit), cs, data[cs-base:ce-base]))
		i += j + 1
	}
}
