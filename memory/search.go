package memory

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"strings"
	"unicode/utf16"
)

// Pattern is what Search looks for. Bytes are compared as they are in
// memory: nothing is decoded, folded or normalised before matching.
type Pattern struct {
	Kind string `json:"kind"` // bytes, string, hex, utf16, regex
	Text string `json:"text"`
	lit  []byte
	re   *regexp.Regexp
	max  int // longest match a regex may report
}

// Bytes looks for the exact bytes b.
func Bytes(b []byte) *Pattern {
	return &Pattern{Kind: "bytes", Text: hex.EncodeToString(b), lit: bytes.Clone(b)}
}

// String looks for the UTF-8 bytes of s.
func String(s string) *Pattern { return &Pattern{Kind: "string", Text: s, lit: []byte(s)} }

// UTF16 looks for s encoded as UTF-16LE (as Windows and Java keep text).
func UTF16(s string) *Pattern {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return &Pattern{Kind: "utf16", Text: s, lit: b}
}

// Hex looks for bytes written in hex; spaces, colons, commas and "0x" or
// "\x" prefixes are ignored ("de ad be ef", "0xdeadbeef", "\xde\xad").
func Hex(s string) (*Pattern, error) {
	c := strings.NewReplacer(" ", "", ":", "", ",", "", "\t", "", "0x", "", "0X", "", `\x`, "").Replace(s)
	b, err := hex.DecodeString(c)
	if err != nil {
		return nil, fmt.Errorf("hex pattern %q: %w", s, err)
	}
	if len(b) == 0 {
		return nil, errors.New("empty hex pattern")
	}
	return &Pattern{Kind: "hex", Text: s, lit: b}, nil
}

// DefaultMaxMatch bounds the length of a regex match (the overlap kept
// between windows, so that matches across page, run and chunk boundaries
// are found).
const DefaultMaxMatch = 4096

// Regex looks for matches of a Go regular expression (RE2 syntax; UTF-8
// semantics: use Hex for raw bytes above 0x7f). Matches longer than
// maxMatch bytes (default DefaultMaxMatch) may be cut or missed.
func Regex(expr string, maxMatch int) (*Pattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	if maxMatch <= 0 {
		maxMatch = DefaultMaxMatch
	}
	if maxMatch > 1<<20 {
		maxMatch = 1 << 20
	}
	return &Pattern{Kind: "regex", Text: expr, re: re, max: maxMatch}, nil
}

// overlap is how many bytes of a window are kept for the next one.
func (p *Pattern) overlap() int {
	if p.re != nil {
		return p.max
	}
	return len(p.lit) - 1
}

var errEmptyPattern = errors.New("empty pattern")

func (p *Pattern) empty() bool { return p == nil || (p.re == nil && len(p.lit) == 0) }

// SearchOptions tune Search.
type SearchOptions struct {
	PIDs []uint32 // nil: every task of the pstree
	// Context is how many bytes around a hit to return (clipped to the
	// readable range the hit is in); default 0.
	Context int
	// Provenances are the kinds of bytes searched; default dumped,
	// parent and file. Zero fill is left out unless asked.
	Provenances []Provenance
	// ChunkSize is the size of the window read at a time (default 4 MiB).
	ChunkSize int
}

func (o *SearchOptions) provs() map[Provenance]bool {
	m := map[Provenance]bool{}
	if o == nil || len(o.Provenances) == 0 {
		m[Dumped], m[Parent], m[File] = true, true, true
		return m
	}
	for _, p := range o.Provenances {
		m[p] = true
	}
	return m
}

// Hit is one match.
type Hit struct {
	PID      uint32 `json:"pid"`
	Comm     string `json:"comm"`
	Address  uint64 `json:"address"`
	Length   int    `json:"length"`
	VMAStart uint64 `json:"vma_start"`
	VMAEnd   uint64 `json:"vma_end"`
	VMAKind  string `json:"vma_kind"`
	Path     string `json:"path,omitempty"`
	// Provenance of the matched bytes; "dumped+file" when a match spans
	// ranges of several provenances.
	Provenance   Provenance `json:"provenance"`
	ContextStart uint64     `json:"context_start"`
	Context      []byte     `json:"context,omitempty"`
}

// Search looks for pat in the memory of the checkpoint's tasks, in pstree
// order and address order. An error for one task is yielded and the
// search goes on with the next; a cancelled ctx ends it with ctx.Err().
// Large address spaces are searched on several goroutines (literal
// patterns), with the hits still in order.
func (r *Reader) Search(ctx context.Context, pat *Pattern, opt *SearchOptions) iter.Seq2[Hit, error] {
	return func(yield func(Hit, error) bool) {
		for _, pid := range r.pids(opt) {
			if err := ctx.Err(); err != nil {
				yield(Hit{}, err)
				return
			}
			s, err := r.Space(pid)
			if err != nil {
				if !yield(Hit{PID: pid}, err) {
					return
				}
				continue
			}
			for h, err := range s.Search(ctx, pat, opt) {
				if !yield(h, err) {
					return
				}
			}
		}
	}
}

// pids are the tasks a search covers: SearchOptions.PIDs, else every task
// of the pstree.
func (r *Reader) pids(opt *SearchOptions) []uint32 {
	if opt != nil && opt.PIDs != nil {
		return opt.PIDs
	}
	pids := make([]uint32, 0, len(r.CP.Processes))
	for _, p := range r.CP.Processes {
		pids = append(pids, p.PID)
	}
	return pids
}

// spans lists the maximal address-contiguous runs of ranges whose
// provenance is in provs (ranges only in a compressed archive's stream
// left out).
func (s *Space) spans(provs map[Provenance]bool) []Range {
	var out []Range
	for _, g := range s.segs {
		if _, streamed := g.r.(*streamPages); !provs[g.prov] || streamed {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End == g.start {
			out[n-1].End = g.end
			continue
		}
		out = append(out, Range{Start: g.start, End: g.end})
	}
	return out
}

// Search looks for pat in this address space, in address order. A
// cancelled ctx ends it with ctx.Err().
func (s *Space) Search(ctx context.Context, pat *Pattern, opt *SearchOptions) iter.Seq2[Hit, error] {
	return func(yield func(Hit, error) bool) {
		if pat.empty() {
			yield(Hit{PID: s.PID}, errEmptyPattern)
			return
		}
		sc := &spaceScan{ctx: ctx, s: s, w: newWindow(pat, opt), yield: yield}
		sc.run(s.spans(opt.provs()))
	}
}

// scanSeq runs the window over one span, read by read, from its start;
// hits starting below skip were reported already. It returns true when the
// caller stopped (or ctx was cancelled).
func (sc *spaceScan) scanSeq(sp Range, skip uint64) bool {
	s := sc.s
	read := func(p []byte, a uint64) (int, error) {
		if err := sc.ctx.Err(); err != nil {
			return 0, err
		}
		return s.Read(p, a)
	}
	return sc.w.scan(sp, read, sc.hitOf(skip), sc.failOf())
}

// window is the sliding window of a search: each read appends a chunk to
// what is kept of the previous one (keep bytes: the longest match less
// one, and the context on both sides), so that matches across page, run,
// mapping and chunk boundaries are found, each once, with their context.
type window struct {
	pat   *Pattern
	ctx   int
	keep  int
	chunk int
	buf   []byte
}

func newWindow(pat *Pattern, opt *SearchOptions) *window {
	chunk, ctx := 256<<10, 0
	if opt != nil {
		if opt.ChunkSize > 0 {
			chunk = opt.ChunkSize
		}
		ctx = max(0, min(opt.Context, 1<<20))
	}
	keep := pat.overlap() + 2*ctx
	chunk = max(chunk, 2*keep+1, 64)
	return &window{pat: pat, ctx: ctx, keep: keep, chunk: chunk, buf: make([]byte, chunk+keep)}
}

// scan runs the window over one span read by read (called with
// increasing, contiguous addresses); hit gets each match with its context
// (valid during the call). It returns true when the caller stopped.
func (w *window) scan(sp Range, read func([]byte, uint64) (int, error), hit func(a uint64, n int, cs uint64, ctx []byte) bool, fail func(error) bool) bool {
	pat, buf := w.pat, w.buf
	longest := uint64(pat.overlap()) // a match is at most longest+1 bytes
	keep := 0                        // bytes carried from the previous window
	base := sp.Start                 // address of buf[0]
	pos := sp.Start                  // next address to read
	from := sp.Start                 // matches starting before this were reported
	report := func(a uint64, n int, data []byte) bool {
		cs := max(base, a-min(a, uint64(w.ctx)))
		ce := min(base+uint64(len(data)), a+uint64(n)+uint64(w.ctx))
		if ce < a {
			ce = base + uint64(len(data))
		}
		return hit(a, n, cs, data[cs-base:ce-base])
	}
	for pos < sp.End {
		n := int(min(uint64(w.chunk), sp.End-pos))
		k, err := read(buf[keep:keep+n], pos)
		if err != nil {
			if fail(err) {
				return true
			}
			if k == 0 {
				return false
			}
		}
		data := buf[:keep+k]
		final := pos+uint64(k) == sp.End || err != nil
		// Matches starting at limit or later are left to the next window,
		// which holds them whole with their context.
		limit := base + uint64(len(data))
		if !final {
			limit -= longest + uint64(w.ctx)
		}
		if pat.re == nil {
			for i := int(min(from-min(from, base), uint64(len(data)))); ; {
				j := bytes.Index(data[i:], pat.lit)
				if j < 0 {
					break
				}
				a := base + uint64(i+j)
				if a >= limit {
					break
				}
				if !report(a, len(pat.lit), data) {
					return true
				}
				i += j + 1
			}
		} else {
			// Leftmost-first, non-overlapping, resuming after the last
			// match reported (as one pass over the whole span would).
			i := int(min(from-min(from, base), uint64(len(data))))
			for i <= len(data) {
				loc := pat.re.FindIndex(data[i:])
				if loc == nil {
					break
				}
				a := base + uint64(i+loc[0])
				if a >= limit {
					break
				}
				if loc[1] == loc[0] { // empty matches say nothing
					i += loc[0] + 1
					continue
				}
				if !report(a, loc[1]-loc[0], data) {
					return true
				}
				from = a + uint64(loc[1]-loc[0])
				i += loc[1]
			}
		}
		from = max(from, limit)
		if final {
			return false
		}
		pos += uint64(k)
		keep = min(w.keep, len(data))
		copy(buf, data[len(data)-keep:])
		base = pos - uint64(keep)
	}
	return false
}

// hit describes a match at addr of n bytes, with its context.
func (s *Space) hit(addr uint64, n int, cs uint64, ctx []byte) Hit {
	h := Hit{PID: s.PID, Comm: s.Comm, Address: addr, Length: n}
	if m := s.Mapping(addr); m != nil {
		h.VMAStart, h.VMAEnd, h.VMAKind, h.Path = m.Start, m.End, m.Kind, m.Path
	}
	var provs []string
	for _, r := range s.Regions(addr, addr+uint64(n)) {
		p := string(r.Provenance)
		if len(provs) == 0 || provs[len(provs)-1] != p {
			provs = append(provs, p)
		}
	}
	h.Provenance = Provenance(strings.Join(provs, "+"))
	if len(ctx) > 0 {
		h.ContextStart, h.Context = cs, bytes.Clone(ctx)
	}
	return h
}
