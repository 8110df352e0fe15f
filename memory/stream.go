package memory

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sort"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/ptr"
)

// streamPages stands for a pages image that a compressed archive did not
// keep: its ranges are read only by SearchPath's pass over the stream.
type streamPages struct {
	member string // the member's name in the archive
	name   string
}

var errStreamed = errors.New("pages image not kept from the compressed archive (searched in one pass by SearchPath; open with memory.OpenPath to read it)")

func (p *streamPages) ReadAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("%s: %w", p.name, errStreamed)
}

// searchSkip is what a search needs of a checkpoint: not its descriptors,
// mounts, command lines or executables' origins.
const searchSkip = checkpoint.PartFDs | checkpoint.PartMounts | checkpoint.PartCmdlines | checkpoint.PartExeOrigins

// SearchPath searches a checkpoint archive or images directory of the
// host, opened without touching its access time. Directories and
// uncompressed archives are read in place, as OpenPath and Reader.Search
// do. A compressed archive's pages are never spilled: they are searched
// as the stream is decompressed (hits come in archive order, then address
// order), and the file-backed and parent ranges afterwards; in that mode
// a match that spans a dumped range and a range of another provenance is
// not found. For a literal pattern the archive is decompressed once
// (checkpoint.Pass): every pages image is searched as it goes by, and its
// hits placed in the address spaces once the rest is decoded; a regular
// expression, whose matches depend on where each range starts, is
// searched in a second pass, range by range. A cancelled ctx ends the
// search with ctx.Err().
func SearchPath(ctx context.Context, hostPath string, pat *Pattern, opt *SearchOptions, mopt *Options) iter.Seq2[Hit, error] {
	return func(yield func(Hit, error) bool) {
		o := ptr.Value(mopt)
		o.ParentOutside = true
		kind, _ := evidence.Identify(hostPath) // OpenPath below says what is wrong
		compressed := kind == evidence.KindTarGz || kind == evidence.KindTarZstd
		if compressed && !pat.empty() && pat.re == nil && onePass(ctx, hostPath, pat, opt, &o, yield) {
			return
		}
		cp, err := checkpoint.OpenPath(ctx, hostPath, &checkpoint.Options{Skip: searchSkip, TempDir: o.TempDir})
		if err != nil {
			yield(Hit{}, err)
			return
		}
		defer cp.Close()
		r, err := Open(cp, &o)
		if err != nil {
			yield(Hit{}, err)
			return
		}
		defer r.Close()
		if !compressed {
			for h, err := range r.Search(ctx, pat, opt) {
				if !yield(h, err) {
					return
				}
			}
			return
		}
		streamSearch(ctx, r, hostPath, pat, opt, nil, yield)
	}
}

// onePass searches a compressed archive for a literal in one
// decompression. It returns false, having yielded nothing, when the pass
// could not be made (a damaged archive): the caller then opens the
// archive the usual way, which says what is wrong.
func onePass(ctx context.Context, hostPath string, pat *Pattern, opt *SearchOptions, o *Options, yield func(Hit, error) bool) bool {
	pass, err := checkpoint.StartPass(ctx, hostPath, &checkpoint.Options{Skip: searchSkip, TempDir: o.TempDir})
	if err != nil {
		return false
	}
	fp := &flatPass{n: len(pat.lit), label: hostPath, members: map[string]*flatMember{}}
	w := newWindow(pat, opt)
	for pg, err := range pass.Pages() {
		if err != nil {
			break
		}
		if fp.err == nil {
			// Past its bounds the pass goes on without recording: the
			// rest of the checkpoint is still to be kept.
			fp.err = fp.member(ctx, w, pg)
		}
	}
	cp, err := pass.Checkpoint()
	if err != nil {
		return false
	}
	defer cp.Close()
	r, err := Open(cp, o)
	if err != nil {
		return false
	}
	defer r.Close()
	streamSearch(ctx, r, hostPath, pat, opt, fp, yield)
	return true
}

// streamItem is a range of a pages image that belongs to a space.
type streamItem struct {
	s   *Space
	g   seg
	off int64 // in the pages image
}

func streamSearch(ctx context.Context, r *Reader, hostPath string, pat *Pattern, opt *SearchOptions, flat *flatPass, yield func(Hit, error) bool) {
	if pat.empty() {
		yield(Hit{}, errEmptyPattern)
		return
	}
	provs := opt.provs()
	var spaces []*Space
	byMember := map[string][]streamItem{}
	for _, pid := range r.pids(opt) {
		s, err := r.Space(pid)
		if err != nil {
			if !yield(Hit{PID: pid}, err) {
				return
			}
			continue
		}
		spaces = append(spaces, s)
		for _, g := range s.segs {
			if sp, ok := g.r.(*streamPages); ok && provs[g.prov] {
				byMember[sp.member] = append(byMember[sp.member], streamItem{s, g, g.off})
			}
		}
	}
	if len(byMember) > 0 {
		done := false
		if flat != nil {
			ok, cont := flat.replay(ctx, byMember, yield)
			if !cont {
				return
			}
			done = ok
		}
		if !done && !streamPass(ctx, hostPath, byMember, pat, opt, yield) {
			return
		}
	}
	// The ranges that are not in the stream (file, parent dirs on disk).
	for _, s := range spaces {
		for h, err := range s.Search(ctx, pat, opt) {
			if !yield(h, err) {
				return
			}
		}
	}
}

// memberSpan is a run of a pages image's ranges that is contiguous both in
// the file and in one space's addresses: scanned as one span.
type memberSpan struct {
	s   *Space
	sp  Range
	off int64
}

// memberSpans sorts a member's ranges by offset and merges them into spans.
func memberSpans(items []streamItem) []memberSpan {
	sort.SliceStable(items, func(i, j int) bool { return items[i].off < items[j].off })
	var out []memberSpan
	for i := 0; i < len(items); {
		first := items[i]
		span := Range{Start: first.g.start, End: first.g.end}
		j := i + 1
		for j < len(items) && items[j].s == first.s && items[j].g.start == span.End &&
			items[j].off == first.off+int64(span.End-span.Start) {
			span.End = items[j].g.end
			j++
		}
		i = j
		out = append(out, memberSpan{first.s, span, first.off})
	}
	return out
}

// sharedErr says that a span's pages went by already, for another space.
func sharedErr(label string, ms memberSpan) error {
	return fmt.Errorf("%s: pages at offset %d, shared with another task, were searched for that task only", label, ms.off)
}

// streamPass decompresses the archive once and searches the wanted pages
// images as they go by, span by span. It returns false when the caller
// stopped.
func streamPass(ctx context.Context, hostPath string, byMember map[string][]streamItem, pat *Pattern, opt *SearchOptions, yield func(Hit, error) bool) bool {
	f, err := checkpoint.OpenHost(hostPath)
	if err != nil {
		return yield(Hit{}, err)
	}
	defer f.Close()
	w := newWindow(pat, opt)
	for m, err := range evidence.TarStream(ctx, io.NewSectionReader(f, 0, f.Size()), &evidence.TarOptions{Label: hostPath}) {
		if len(byMember) == 0 {
			break
		}
		if err != nil {
			return yield(Hit{}, err)
		}
		items, ok := byMember[m.Name]
		if t := m.Header.Typeflag; !ok || (t != tar.TypeReg && t != tar.TypeGNUSparse) {
			continue
		}
		delete(byMember, m.Name)
		sc := &spaceScan{ctx: ctx, w: w, yield: yield}
		if !sc.member(m.Data, hostPath+":"+m.Name, memberSpans(items)) {
			return false
		}
	}
	return notInStream(hostPath, byMember, yield)
}

// notInStream reports the wanted pages images the stream did not hold.
func notInStream(hostPath string, byMember map[string][]streamItem, yield func(Hit, error) bool) bool {
	var names []string
	for name := range byMember {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !yield(Hit{}, fmt.Errorf("%s: %s not found in the stream", hostPath, name)) {
			return false
		}
	}
	return true
}

// member searches the spans of one pages image read from rd in file
// order. It returns false when the caller stopped.
func (sc *spaceScan) member(rd io.Reader, label string, spans []memberSpan) bool {
	var pos int64
	for _, ms := range spans {
		if ms.off < pos {
			// Another space maps the same pages (shared memory) and they
			// went by already.
			if !sc.yield(Hit{PID: ms.s.PID, Comm: ms.s.Comm}, sharedErr(label, ms)) {
				return false
			}
			continue
		}
		if _, err := io.CopyN(io.Discard, rd, ms.off-pos); err != nil {
			return sc.yield(Hit{}, fmt.Errorf("%s: %w", label, err))
		}
		pos = ms.off
		read := func(p []byte, _ uint64) (int, error) {
			if err := sc.ctx.Err(); err != nil {
				return 0, err
			}
			n, err := io.ReadFull(rd, p)
			pos += int64(n)
			if err != nil {
				err = fmt.Errorf("%s at offset %d: %w", label, pos, err)
			}
			return n, err
		}
		sc.s = ms.s
		if sc.w.scan(ms.sp, read, sc.hitOf(0), sc.failOf()) {
			return false
		}
	}
	return true
}

// hitOf and failOf are the window's callbacks that yield to the
// consumer; they return true when it stopped.
func (sc *spaceScan) hitOf(skip uint64) func(a uint64, n int, cs uint64, ctx []byte) bool {
	s := sc.s
	return func(a uint64, n int, cs uint64, ctx []byte) bool {
		if a < skip {
			return true
		}
		return sc.emit(s.hit(a, n, cs, ctx))
	}
}

// emit yields a hit, unless ctx was cancelled: then the error, and the
// search stops. It returns false when stopped.
func (sc *spaceScan) emit(h Hit) bool {
	if err := sc.ctx.Err(); err != nil {
		sc.yield(Hit{}, err)
		return false
	}
	return sc.yield(h, nil)
}

func (sc *spaceScan) failOf() func(error) bool {
	s := sc.s
	return func(err error) bool {
		if ctxErr := sc.ctx.Err(); ctxErr != nil {
			sc.yield(Hit{}, ctxErr)
			return true
		}
		return !sc.yield(Hit{PID: s.PID, Comm: s.Comm}, err)
	}
}

// The flat pass: a literal's occurrences in every pages image of the
// stream, by offset, found as the archive goes by; once the spaces are
// built they are placed in them (replay). It gives up (and the
// span-by-span pass runs instead) when the hits pass its bounds or an
// image is shorter than its spans.

const (
	maxFlatHits  = 1 << 16
	maxFlatBytes = 32 << 20
)

type flatHit struct {
	off    int64  // of the match in the pages image
	ctxOff int64  // of ctx in the pages image
	ctx    []byte // the match with its context, cut to the image
}

type flatMember struct {
	ordinal int
	length  int64 // bytes the stream gave
	hits    []flatHit
}

type flatPass struct {
	n       int // the literal's length
	label   string
	members map[string]*flatMember
	hits    int
	bytes   int
	err     error // gave up
}

var errFlatBounds = errors.New("too many hits for one pass")

// member searches one pages image of the stream as a whole.
func (fp *flatPass) member(ctx context.Context, w *window, pg checkpoint.PassPages) error {
	fm := &flatMember{ordinal: len(fp.members)}
	fp.members[pg.Member] = fm
	var failed error
	read := func(p []byte, _ uint64) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := io.ReadFull(pg.Data, p)
		fm.length += int64(n)
		return n, err
	}
	w.scan(Range{Start: 0, End: uint64(pg.Size)}, read, func(a uint64, n int, cs uint64, c []byte) bool {
		fp.hits, fp.bytes = fp.hits+1, fp.bytes+len(c)
		if fp.hits > maxFlatHits || fp.bytes > maxFlatBytes {
			failed = errFlatBounds
			return false
		}
		fm.hits = append(fm.hits, flatHit{off: int64(a), ctxOff: int64(cs), ctx: append([]byte(nil), c...)})
		return true
	}, func(err error) bool {
		if ctx.Err() != nil {
			failed = ctx.Err()
		}
		return true // the span ends; the length says where
	})
	return failed
}

// replay yields the hits of the flat pass in the spans, as the span by
// span pass would: ok is false when it cannot (nothing was yielded then),
// cont false when the caller stopped.
func (fp *flatPass) replay(ctx context.Context, byMember map[string][]streamItem, yield func(Hit, error) bool) (ok, cont bool) {
	if fp.err != nil {
		return false, true
	}
	type todo struct {
		name  string
		fm    *flatMember
		spans []memberSpan
	}
	var order []todo
	for name, items := range byMember {
		fm := fp.members[name]
		if fm == nil {
			continue
		}
		spans := memberSpans(items)
		for _, ms := range spans {
			if ms.off+int64(ms.sp.End-ms.sp.Start) > fm.length {
				return false, true // short image: its read errors come from the other pass
			}
		}
		order = append(order, todo{name, fm, spans})
	}
	sort.Slice(order, func(i, j int) bool { return order[i].fm.ordinal < order[j].fm.ordinal })
	for _, t := range order {
		delete(byMember, t.name)
		label := fp.label + ":" + t.name
		var pos int64
		for _, ms := range t.spans {
			if ms.off < pos {
				if !yield(Hit{PID: ms.s.PID, Comm: ms.s.Comm}, sharedErr(label, ms)) {
					return true, false
				}
				continue
			}
			end := ms.off + int64(ms.sp.End-ms.sp.Start)
			hs := t.fm.hits
			i := sort.Search(len(hs), func(i int) bool { return hs[i].off >= ms.off })
			for ; i < len(hs) && hs[i].off+int64(fp.n) <= end; i++ {
				h := hs[i]
				// The context, cut to the span.
				cs := max(h.ctxOff, ms.off)
				ce := min(h.ctxOff+int64(len(h.ctx)), end)
				a := ms.sp.Start + uint64(h.off-ms.off)
				sc := &spaceScan{ctx: ctx, s: ms.s, yield: yield}
				if !sc.emit(ms.s.hit(a, fp.n, ms.sp.Start+uint64(cs-ms.off), h.ctx[cs-h.ctxOff:ce-h.ctxOff])) {
					return true, false
				}
			}
			pos = end
		}
	}
	return true, notInStream(fp.label, byMember, yield)
}
