package forensics

import (
	"bufio"
	"container/heap"
	"encoding/gob"
	"fmt"
	"io"
	"iter"
	"os"
	"sort"
)

// eventSorter sorts events by time, stable in the order they were added,
// with memory bounded: up to max events are sorted in memory; beyond that,
// sorted runs go to one private, already-unlinked temp file and are merged
// (a k-way merge reading each run sequentially).
type eventSorter struct {
	max     int
	tempDir string
	buf     []seqEvent
	seq     uint64
	spill   *os.File
	runs    []run // offsets of the sorted runs in spill
	written int64
}

type seqEvent struct {
	Seq uint64
	Ev  Event
}

type run struct{ off, n int64 }

func newEventSorter(max int, tempDir string) *eventSorter {
	return &eventSorter{max: max, tempDir: tempDir}
}

func (s *eventSorter) add(e Event) error {
	s.buf = append(s.buf, seqEvent{Seq: s.seq, Ev: e})
	s.seq++
	if len(s.buf) >= s.max {
		return s.flushRun()
	}
	return nil
}

func sortSeq(b []seqEvent) {
	sort.Slice(b, func(i, j int) bool {
		ti, tj := b[i].Ev.Time.Time, b[j].Ev.Time.Time
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return b[i].Seq < b[j].Seq
	})
}

// flushRun writes the buffer as one sorted run.
func (s *eventSorter) flushRun() error {
	if len(s.buf) == 0 {
		return nil
	}
	sortSeq(s.buf)
	if s.spill == nil {
		f, err := os.CreateTemp(s.tempDir, "deadnode-timeline-*")
		if err != nil {
			return fmt.Errorf("timeline: temp space for sorting %d events: %w", s.seq, err)
		}
		os.Remove(f.Name()) // private and gone on close, whatever happens
		s.spill = f
	}
	cw := &countWriter{w: bufio.NewWriterSize(s.spill, 1<<20)}
	enc := gob.NewEncoder(cw)
	for i := range s.buf {
		if err := enc.Encode(&s.buf[i]); err != nil {
			return fmt.Errorf("timeline: writing a sorted run: %w", err)
		}
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return fmt.Errorf("timeline: writing a sorted run: %w", err)
	}
	s.runs = append(s.runs, run{off: s.written, n: cw.n})
	s.written += cw.n
	s.buf = s.buf[:0]
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sorted yields every event added, in order.
func (s *eventSorter) sorted() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if s.spill == nil {
			sortSeq(s.buf)
			for _, e := range s.buf {
				if !yield(e.Ev, nil) {
					return
				}
			}
			return
		}
		if err := s.flushRun(); err != nil {
			yield(Event{}, err)
			return
		}
		h := &runHeap{}
		for _, r := range s.runs {
			rr := &runReader{dec: gob.NewDecoder(bufio.NewReaderSize(io.NewSectionReader(s.spill, r.off, r.n), 64<<10))}
			if ok, err := rr.next(); err != nil {
				yield(Event{}, err)
				return
			} else if ok {
				*h = append(*h, rr)
			}
		}
		heap.Init(h)
		for h.Len() > 0 {
			top := (*h)[0]
			if !yield(top.cur.Ev, nil) {
				return
			}
			ok, err := top.next()
			if err != nil {
				yield(Event{}, err)
				return
			}
			if ok {
				heap.Fix(h, 0)
			} else {
				heap.Pop(h)
			}
		}
	}
}

func (s *eventSorter) close() {
	if s.spill != nil {
		s.spill.Close()
	}
	s.buf = nil
}

type runReader struct {
	dec *gob.Decoder
	cur seqEvent
}

func (r *runReader) next() (bool, error) {
	r.cur = seqEvent{}
	if err := r.dec.Decode(&r.cur); err != nil {
		if err == io.EOF {
			return false, nil
		}
		return false, fmt.Errorf("timeline: reading a sorted run back: %w", err)
	}
	if f := r.cur.Ev.File; f != nil {
		// gob drops empty slices: the JSON of an entry keeps [] for none.
		f.Flags = nonNilStrings(f.Flags)
	}
	return true, nil
}

type runHeap []*runReader

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	ti, tj := h[i].cur.Ev.Time.Time, h[j].cur.Ev.Time.Time
	if !ti.Equal(tj) {
		return ti.Before(tj)
	}
	return h[i].cur.Seq < h[j].cur.Seq
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
