package memory

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/evidence"
)

// streamPages stands for a pages image that a compressed archive did not
// keep: its ranges are read only by SearchFile's pass over the stream.
type streamPages struct {
	member string // the member's name in the archive
	name   string
}

var errStreamed = errors.New("pages image not kept from the compressed archive (searched in one pass by SearchFile; open with memory.OpenFile to read it)")

func (p *streamPages) ReadAt([]byte, int64) (int, error) {
	return 0, fmt.Errorf("%s: %w", p.name, errStreamed)
}

// SearchFile searches a checkpoint archive or images directory of the
// host. Directories and uncompressed archives are read in place, as
// OpenFile and Search do. A compressed archive is searched in one pass
// over its stream, without spilling its pages anywhere: its metadata is
// decoded first, then every pages image is searched as it is decompressed,
// run by run (hits come in archive order, then address order); the
// file-backed and parent ranges are searched afterwards. In that mode a
// match that spans a dumped range and a range of another provenance is
// not found.
func SearchFile(hostPath string, pat *Pattern, opt *SearchOptions, mopt *Options) iter.Seq2[Hit, error] {
	return func(yield func(Hit, error) bool) {
		compressed := false
		if st, err := os.Stat(hostPath); err == nil && st.Mode().IsRegular() {
			if f, err := os.Open(hostPath); err == nil {
				compressed = evidence.DetectCompression(f) != evidence.CompressionNone
				f.Close()
			}
		}
		if !compressed {
			r, err := OpenFile(hostPath, mopt)
			if err != nil {
				yield(Hit{}, err)
				return
			}
			defer r.Close()
			for h, err := range Search(r, pat, opt) {
				if !yield(h, err) {
					return
				}
			}
			return
		}
		cp, err := checkpoint.OpenFile(hostPath, nil)
		if err != nil {
			yield(Hit{}, err)
			return
		}
		defer cp.Close()
		r, err := Open(cp, mopt)
		if err != nil {
			yield(Hit{}, err)
			return
		}
		defer r.Close()
		r.top.stream = true
		streamSearch(r, hostPath, pat, opt, yield)
	}
}

// streamItem is a range of a pages image that belongs to a space.
type streamItem struct {
	s   *Space
	g   seg
	off int64 // in the pages image
}

func streamSearch(r *Reader, hostPath string, pat *Pattern, opt *SearchOptions, yield func(Hit, error) bool) {
	if pat == nil || (pat.re == nil && len(pat.lit) == 0) {
		yield(Hit{}, errors.New("empty pattern"))
		return
	}
	var pids []uint32
	if opt != nil && opt.PIDs != nil {
		pids = opt.PIDs
	} else {
		for _, p := range r.CP.Processes {
			pids = append(pids, p.PID)
		}
	}
	provs := opt.provs()
	var spaces []*Space
	byMember := map[string][]streamItem{}
	for _, pid := range pids {
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
	if len(byMember) > 0 && !streamPass(hostPath, byMember, pat, opt, yield) {
		return
	}
	// The ranges that are not in the stream (file, parent dirs on disk).
	w := newWindow(pat, opt)
	for _, s := range spaces {
		for h, err := range s.search(pat, opt, w) {
			if !yield(h, err) {
				return
			}
		}
	}
}

// streamPass decompresses the archive once and searches the wanted pages
// images as they go by. It returns false when the caller stopped.
func streamPass(hostPath string, byMember map[string][]streamItem, pat *Pattern, opt *SearchOptions, yield func(Hit, error) bool) bool {
	f, err := os.Open(hostPath)
	if err != nil {
		return yield(Hit{}, err)
	}
	defer f.Close()
	dr, err := evidence.Decompress(bufio.NewReaderSize(f, 1<<20), evidence.DetectCompression(f))
	if err != nil {
		return yield(Hit{}, &evidence.FormatError{File: hostPath, Offset: 0, Err: err})
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	w := newWindow(pat, opt)
	left := len(byMember)
	for left > 0 {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return yield(Hit{}, &evidence.FormatError{File: hostPath, Offset: -1, Msg: "reading the pages in one pass", Err: err})
		}
		name := strings.TrimLeft(path.Clean("/"+h.Name), "/")
		items, ok := byMember[name]
		if !ok || (h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA) {
			continue
		}
		delete(byMember, name)
		left--
		if !streamMember(tr, hostPath+":"+name, items, w, yield) {
			return false
		}
	}
	for name := range byMember {
		if !yield(Hit{}, fmt.Errorf("%s: %s not found in the stream", hostPath, name)) {
			return false
		}
	}
	return true
}

// streamMember searches the ranges of one pages image in file order:
// ranges contiguous both in the file and in one space's addresses are
// scanned as one span.
func streamMember(rd io.Reader, label string, items []streamItem, w *window, yield func(Hit, error) bool) bool {
	sort.SliceStable(items, func(i, j int) bool { return items[i].off < items[j].off })
	var pos int64
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
		if first.off < pos {
			// Another space maps the same pages (shared memory) and they
			// went by already.
			if !yield(Hit{PID: first.s.PID, Comm: first.s.Comm}, fmt.Errorf("%s: pages at offset %d, shared with another task, were searched for that task only", label, first.off)) {
				return false
			}
			continue
		}
		if _, err := io.CopyN(io.Discard, rd, first.off-pos); err != nil {
			return yield(Hit{}, fmt.Errorf("%s: %w", label, err))
		}
		pos = first.off
		s := first.s
		read := func(p []byte, _ uint64) (int, error) {
			n, err := io.ReadFull(rd, p)
			pos += int64(n)
			if err != nil {
				err = fmt.Errorf("%s at offset %d: %w", label, pos, err)
			}
			return n, err
		}
		stopped := w.scan(span, read, func(a uint64, n int, cs uint64, ctx []byte) bool {
			return yield(s.hit(a, n, cs, ctx), nil)
		}, func(err error) bool {
			return yield(Hit{PID: s.PID, Comm: s.Comm}, err)
		})
		if stopped {
			return false
		}
	}
	return true
}
