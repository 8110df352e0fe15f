package memory

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"sort"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
)

// Provenance says where the bytes of a range come from. Only "dumped" and
// "parent" bytes were saved by CRIU from the process; "file" and "zero"
// are what restoring the checkpoint would put there; "not_captured" bytes
// are unknown.
type Provenance string

const (
	Dumped      Provenance = "dumped"       // in this dump's pages image
	Parent      Provenance = "parent"       // in a parent (pre-dump) image
	File        Provenance = "file"         // the mapped file's bytes, from the container's filesystem
	Zero        Provenance = "zero"         // anonymous memory never written (or a hole of shared memory)
	NotCaptured Provenance = "not_captured" // not saved and not derivable
)

// Reasons a range is not captured.
const (
	ReasonLazy        = "lazy"             // PE_LAZY: left for a lazy-pages daemon
	ReasonNoParent    = "parent_missing"   // PE_PARENT, but no parent image holds the page
	ReasonNoFile      = "file_unavailable" // unmodified file pages and no copy of the file
	ReasonBeyondEOF   = "beyond_eof"       // file mapping past the end of the file (SIGBUS)
	ReasonSpecial     = "not_dumped"       // vdso, vvar, vsyscall, socket and aio rings: CRIU saves no pages
	ReasonShmem       = "shmem_missing"    // no pagemap-shmem image for the shared memory
	ReasonPages       = "pages_unreadable" // the pages image is missing, truncated or compressed
	ReasonFlags       = "unsupported_flags"
	ReasonNoData      = "no_data" // a pagemap run with none of the known flags
	ReasonShmemParent = "shmem_parent"
)

// Range is a byte range of an address space with one provenance.
type Range struct {
	Start      uint64     `json:"start"`
	End        uint64     `json:"end"`
	Provenance Provenance `json:"provenance"`
	// Source names the file the bytes come from ("…/pages-3.img",
	// "/usr/lib/libc.so.6") and Offset where in it Start is.
	Source string `json:"source,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Reason string `json:"reason,omitempty"` // for not_captured, and past_max_data for content a dump or core left out
}

// PageCounts classify a mapping's pages as the pagemap lists them.
type PageCounts struct {
	Dumped uint64 `json:"dumped"` // PE_PRESENT (or in the shared memory's pagemap)
	Parent uint64 `json:"parent"` // PE_PARENT
	Lazy   uint64 `json:"lazy"`   // PE_LAZY without PE_PRESENT
	Absent uint64 `json:"absent"` // not in the pagemap
}

// Mapping is one VMA of the address space.
type Mapping struct {
	Start  uint64     `json:"start"`
	End    uint64     `json:"end"`
	Pgoff  uint64     `json:"pgoff"`
	Perms  string     `json:"perms"`
	Prot   uint32     `json:"prot"`
	Flags  uint32     `json:"flags"`
	Status uint32     `json:"status"`
	Kind   string     `json:"kind"` // heap, stack, anon, file, shmem, memfd, sysvipc, vdso, vvar, vsyscall, socket, aio
	Path   string     `json:"path,omitempty"`
	Shmid  uint64     `json:"shmid,omitempty"`
	Pages  PageCounts `json:"pages"`
}

// seg is a range of the space with one backing.
type seg struct {
	start, end uint64
	prov       Provenance
	r          io.ReaderAt // nil for zero and not_captured
	off        int64
	src        string
	reason     string
	vma        int32
}

// Space is one process's address space, read by virtual address. Only the
// pagemaps are indexed; bytes are read from the images when asked. Once
// built it is not changed: its methods (Read, Regions, Search, Strings,
// Dump, …) may be called from several goroutines at once.
type Space struct {
	PID      uint32              `json:"pid"`
	Comm     string              `json:"comm"`
	Mappings []Mapping           `json:"mappings"`
	Errors   []evidence.Warning  `json:"errors,omitempty"` // problems of the images, each once
	Process  *checkpoint.Process `json:"-"`

	segs []seg
}

// ErrNotCaptured is wrapped by read errors on bytes that are not_captured
// or outside every mapping.
var ErrNotCaptured = errors.New("memory not captured")

// AddrError is a read of an address that gives no bytes.
type AddrError struct {
	Addr   uint64
	Reason string
}

func (e *AddrError) Error() string {
	return fmt.Sprintf("0x%x: %s (%s)", e.Addr, ErrNotCaptured, e.Reason)
}
func (e *AddrError) Unwrap() error { return ErrNotCaptured }

// Space builds the address space of the task pid.
func (r *Reader) Space(pid uint32) (*Space, error) {
	p := r.CP.Process(pid)
	if p == nil {
		return nil, fmt.Errorf("%s: task %d is not in pstree.img", r.CP.Source, pid)
	}
	s := &Space{PID: pid, Comm: p.Comm, Process: p}
	if p.State != checkpoint.StateAlive && p.State != checkpoint.StateStopped {
		return s, nil
	}
	vmas, err := r.vmas(p)
	if err != nil {
		return nil, err
	}
	b := &builder{r: r, s: s}
	pm, err := r.top.pagemap(pid)
	if err != nil {
		s.Errors = append(s.Errors, evidence.WarningOf(err))
		if pm == nil {
			pm = &checkpoint.Pagemap{PID: pid}
		}
	}
	b.build(vmas, pm, r.top)
	return s, nil
}

// vmas are the task's mappings, sorted by address.
func (r *Reader) vmas(p *checkpoint.Process) ([]Mapping, error) {
	out := make([]Mapping, 0, len(p.VMAs))
	for _, v := range p.VMAs {
		m := Mapping{Start: v.Start, End: v.End, Pgoff: v.Pgoff, Perms: v.Perms, Prot: v.Prot, Flags: v.Flags, Status: v.Status, Kind: v.Kind, Path: v.File, Shmid: v.Shmid}
		if m.Kind == "" {
			m.Kind = "anon"
		}
		// CRIU flags the heap but not the stack: as crit does, the
		// anonymous mapping holding mm's start_stack (or growing down)
		// is the stack.
		if m.Kind == "anon" && (v.Start <= p.StartStack && p.StartStack < v.End || v.Flags&mapGrowsdown != 0) {
			m.Kind = "stack"
		}
		if v.Status&(checkpoint.VMAFilePrivate|checkpoint.VMAFileShared|checkpoint.VMAAreaMemfd) != 0 {
			m.Shmid = uint64(v.FileID)
		}
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, nil
}

type builder struct {
	r   *Reader
	s   *Space
	cur int32
	err map[string]bool
}

// warn records a problem of the space, each once.
func (b *builder) warn(w evidence.Warning) {
	msg := w.String()
	if b.err == nil {
		b.err = map[string]bool{}
	}
	if !b.err[msg] && len(b.s.Errors) < maxSpaceErrors {
		b.err[msg] = true
		b.s.Errors = append(b.s.Errors, w)
	}
}

func (b *builder) errorf(format string, args ...any) {
	b.warn(evidence.Warning{Offset: -1, Msg: fmt.Sprintf(format, args...)})
}

func (b *builder) fail(err error) { b.warn(evidence.WarningOf(err)) }

func (b *builder) add(sg seg) {
	if sg.end <= sg.start {
		return
	}
	sg.vma = b.cur
	if n := len(b.s.segs); n > 0 {
		l := &b.s.segs[n-1]
		if l.end == sg.start && l.prov == sg.prov && l.r == sg.r && l.reason == sg.reason && l.vma == sg.vma &&
			(l.r == nil || l.off+int64(l.end-l.start) == sg.off) {
			l.end = sg.end
			return
		}
	}
	if len(b.s.segs) >= maxSegments {
		b.errorf("more than %d ranges in the address space; the rest is not indexed", maxSegments)
		return
	}
	b.s.segs = append(b.s.segs, sg)
}

func (b *builder) build(vmas []Mapping, pm *checkpoint.Pagemap, lv *level) {
	// Overlapping or empty mappings (a hostile mm image) are dropped, so
	// that the mappings stay sorted and disjoint.
	kept := vmas[:0]
	var prevEnd uint64
	for _, v := range vmas {
		if v.End <= v.Start || (len(kept) > 0 && v.Start < prevEnd) {
			b.errorf("mapping %x-%x overlaps the previous one or is empty; skipped", v.Start, v.End)
			continue
		}
		kept = append(kept, v)
		prevEnd = v.End
	}
	vmas = kept
	b.s.Mappings = vmas
	ents := pm.Entries
	var pages *pagesFile
	if need := need(pm); need > 0 {
		pages = lv.pagesImage(pm.PagesID, need)
		if pages.err != nil {
			b.fail(pages.err)
		}
	}
	j := 0
	for i := range vmas {
		v := &vmas[i]
		b.cur = int32(i)
		for j < len(ents) && runEnd(ents[j]) <= v.Start {
			if i == 0 || ents[j].Vaddr >= vmas[i-1].End {
				b.errorf("pagemap run at 0x%x (%d pages) is outside every mapping", ents[j].Vaddr, ents[j].NrPages)
			}
			j++
		}
		pos := v.Start
		for k := j; k < len(ents) && ents[k].Vaddr < v.End; k++ {
			e := ents[k]
			es, ee := max(e.Vaddr, v.Start), min(runEnd(e), v.End)
			if es > pos {
				b.gap(v, pos, es)
			}
			b.entry(v, e, es, ee, pages)
			pos = ee
		}
		if pos < v.End {
			b.gap(v, pos, v.End)
		}
	}
	for ; j < len(ents); j++ {
		if len(vmas) == 0 || ents[j].Vaddr >= vmas[len(vmas)-1].End {
			b.errorf("pagemap run at 0x%x (%d pages) is outside every mapping", ents[j].Vaddr, ents[j].NrPages)
		}
	}
}

func pagesOf(a, e uint64) uint64 { return (e - a + pageSize - 1) / pageSize }

// runsIn yields the runs of a sorted, disjoint pagemap that overlap
// [a,e), with the part of each inside it.
func runsIn(ents []checkpoint.PagemapEntry, a, e uint64) iter.Seq2[checkpoint.PagemapEntry, Range] {
	return func(yield func(checkpoint.PagemapEntry, Range) bool) {
		k := sort.Search(len(ents), func(i int) bool { return runEnd(ents[i]) > a })
		for ; k < len(ents) && ents[k].Vaddr < e; k++ {
			x := ents[k]
			if !yield(x, Range{Start: max(x.Vaddr, a), End: min(runEnd(x), e)}) {
				return
			}
		}
	}
}

// entry adds [a,e) of pagemap run x of the task's own pagemap.
func (b *builder) entry(v *Mapping, x checkpoint.PagemapEntry, a, e uint64, pages *pagesFile) {
	if x.Flags&^peKnown != 0 {
		b.errorf("pagemap run at 0x%x has flags 0x%x: unknown page encoding (compressed?) not supported", x.Vaddr, x.Flags)
	}
	b.run(x.Flags, a, e, pages, x.Offset+int64(a-x.Vaddr), Dumped, &v.Pages, func(a, e uint64) { b.fromParent(1, a, e) })
}

// run adds [a,e) of a pagemap run with these flags: present pages are at
// off in pages and have provenance prov; parent resolves PE_PARENT pages.
// counts, when not nil, counts the pages.
func (b *builder) run(flags uint32, a, e uint64, pages *pagesFile, off int64, prov Provenance, counts *PageCounts, parent func(a, e uint64)) {
	var c PageCounts
	if counts == nil {
		counts = &c
	}
	n := pagesOf(a, e)
	switch {
	case flags&^peKnown != 0:
		counts.Absent += n
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonFlags})
	case flags&checkpoint.PagePresent != 0:
		counts.Dumped += n
		b.present(pages, a, e, off, prov)
	case flags&checkpoint.PageParent != 0:
		counts.Parent += n
		parent(a, e)
	case flags&checkpoint.PageLazy != 0:
		counts.Lazy += n
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonLazy})
	default:
		counts.Absent += n
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonNoData})
	}
}

// present adds bytes stored in a pages image; what lies past its end is
// not captured.
func (b *builder) present(p *pagesFile, a, e uint64, off int64, prov Provenance) {
	if p == nil || p.ra() == nil {
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonPages})
		return
	}
	n := int64(e - a)
	if off+n > p.size {
		have := max(0, p.size-off)
		b.add(seg{start: a, end: a + uint64(have), prov: prov, r: p.ra(), off: off, src: p.name})
		b.add(seg{start: a + uint64(have), end: e, prov: NotCaptured, reason: ReasonPages})
		return
	}
	b.add(seg{start: a, end: e, prov: prov, r: p.ra(), off: off, src: p.name})
}

// fromParent resolves PE_PARENT pages through the chain of parent images;
// a parent run shorter than the range splits it.
func (b *builder) fromParent(depth int, a, e uint64) {
	lv, err := b.r.parent(depth)
	if err != nil {
		b.fail(err)
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonNoParent})
		return
	}
	pm, err := lv.pagemap(b.s.PID)
	if err != nil {
		b.fail(err)
		if pm == nil {
			b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonNoParent})
			return
		}
	}
	var pages *pagesFile
	if n := need(pm); n > 0 {
		pages = lv.pagesImage(pm.PagesID, n)
		if pages.err != nil {
			b.fail(pages.err)
		}
	}
	pos := a
	for x, in := range runsIn(pm.Entries, a, e) {
		xs, xe := in.Start, in.End
		if xs > pos {
			b.add(seg{start: pos, end: xs, prov: NotCaptured, reason: ReasonNoParent})
		}
		if x.Flags&^peKnown != 0 {
			b.errorf("%s: pagemap run at 0x%x has flags 0x%x: not supported", lv.dir, x.Vaddr, x.Flags)
		}
		b.run(x.Flags, xs, xe, pages, x.Offset+int64(xs-x.Vaddr), Parent, nil, func(a, e uint64) { b.fromParent(depth+1, a, e) })
		pos = xe
	}
	if pos < e {
		b.add(seg{start: pos, end: e, prov: NotCaptured, reason: ReasonNoParent})
	}
}

// gap fills [a,e) of v that the pagemap does not list, as a restore would.
func (b *builder) gap(v *Mapping, a, e uint64) {
	v.Pages.Absent += pagesOf(a, e)
	st := v.Status
	switch {
	case st&(checkpoint.VMAAreaVdso|checkpoint.VMAAreaVvar|checkpoint.VMAAreaVsyscall|checkpoint.VMAAreaSocket|checkpoint.VMAAreaAio|checkpoint.VMAUnsupp) != 0:
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonSpecial})
	case st&(checkpoint.VMAAnonShared|checkpoint.VMAAreaSysvipc|checkpoint.VMAAreaMemfd) != 0:
		v.Pages.Absent -= pagesOf(a, e)
		b.shmem(v, a, e)
	case st&(checkpoint.VMAFilePrivate|checkpoint.VMAFileShared) != 0:
		b.fileFill(v, a, e)
	default:
		b.add(seg{start: a, end: e, prov: Zero})
	}
}

// fileFill takes unmodified pages of a file mapping from the file.
func (b *builder) fileFill(v *Mapping, a, e uint64) {
	fb := b.r.file(v.Path)
	if fb.f == nil {
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonNoFile})
		return
	}
	// An offset past what a file can hold (pgoff near 2^64, or wrapping)
	// is past its end: those pages fault.
	uoff := v.Pgoff + (a - v.Start)
	if uoff < v.Pgoff || uoff > math.MaxInt64 {
		b.add(seg{start: a, end: e, prov: NotCaptured, reason: ReasonBeyondEOF})
		return
	}
	// The address where the file ends; the rest of its page reads as
	// zeros, later pages fault.
	off := int64(uoff)
	eof := a + uint64(max(0, fb.size-off))
	if fb.size-off < 0 || eof < a {
		eof = a
	}
	fe := min(e, eof)
	b.add(seg{start: a, end: fe, prov: File, r: fb.f, off: off, src: v.Path})
	if fe < e {
		ze := min(e, (fe+pageSize-1)&^(pageSize-1))
		b.add(seg{start: fe, end: ze, prov: Zero})
		b.add(seg{start: ze, end: e, prov: NotCaptured, reason: ReasonBeyondEOF})
	}
}

// Regions lists the ranges of [start,end) that lie in mappings, with
// their provenance, in address order.
func (s *Space) Regions(start, end uint64) []Range {
	var out []Range
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].end > start })
	for ; i < len(s.segs) && s.segs[i].start < end; i++ {
		g := s.segs[i]
		a, e := max(g.start, start), min(g.end, end)
		r := Range{Start: a, End: e, Provenance: g.prov, Source: g.src, Reason: g.reason}
		if g.r != nil {
			r.Offset = g.off + int64(a-g.start)
		}
		out = append(out, r)
	}
	return out
}

// Mapping returns the mapping holding addr, or nil.
func (s *Space) Mapping(addr uint64) *Mapping {
	i := sort.Search(len(s.Mappings), func(i int) bool { return s.Mappings[i].End > addr })
	if i < len(s.Mappings) && s.Mappings[i].Start <= addr {
		return &s.Mappings[i]
	}
	return nil
}

// ReadAt reads the bytes at virtual address off (an address above 1<<63
// is passed as its two's complement, int64(addr)). It stops at the first
// byte that is not captured or not mapped, with an *AddrError.
func (s *Space) ReadAt(p []byte, off int64) (int, error) {
	return s.Read(p, uint64(off))
}

// Read reads len(p) bytes at addr; see ReadAt.
func (s *Space) Read(p []byte, addr uint64) (int, error) {
	n := 0
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].end > addr })
	for n < len(p) {
		a := addr + uint64(n)
		if a < addr { // wrapped
			return n, &AddrError{Addr: a, Reason: "end of the address space"}
		}
		if i >= len(s.segs) || s.segs[i].start > a {
			return n, &AddrError{Addr: a, Reason: "unmapped"}
		}
		g := &s.segs[i]
		m := int(min(uint64(len(p)-n), g.end-a))
		switch g.prov {
		case Zero:
			clear(p[n : n+m])
		case NotCaptured:
			return n, &AddrError{Addr: a, Reason: g.reason}
		default:
			k, err := g.r.ReadAt(p[n:n+m], g.off+int64(a-g.start))
			if k < m {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n + k, fmt.Errorf("0x%x: %s: %w", a+uint64(k), g.src, err)
			}
		}
		n += m
		i++
	}
	return n, nil
}
