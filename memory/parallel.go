package memory

import (
	"bytes"
	"context"
	"runtime"
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
	done   chan struct{}
	hits   []Hit
	redo   bool // too many hits, or a read error: search the span in one pass
}

func (sc *spaceScan) parallel(spans []Range) bool {
	var pieces []*piece
	for i, sp := range spans {
		for lo := sp.Start; lo < sp.End; {
			hi := lo + min(pieceSize, sp.End-lo)
			pieces = append(pieces, &piece{sp: i, lo: lo, hi: hi, done: make(chan struct{})})
			lo = hi
		}
	}
	workers := min(runtime.GOMAXPROCS(0), 4, len(pieces))
	stop := make(chan struct{})
	slots := make(chan struct{}, aheadPieces)
	var next atomic.Int64
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
				i := int(next.Add(1) - 1)
				if i >= len(pieces) {
					return
				}
				p := pieces[i]
				pw.scan(p, spans[p.sp])
				close(p.done)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	redone := -1 // a span searched again in one pass: its pieces are done
	for _, p := range pieces {
		select {
		case <-p.done:
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
