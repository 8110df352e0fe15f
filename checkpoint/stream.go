package checkpoint

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/deadnode/deadnode/evidence"
)

// sparse is an io.ReaderAt over the few byte ranges of a pages image that
// were copied out of a compressed archive.
type sparse struct{ chunks []sparseChunk }

type sparseChunk struct {
	off  int64
	data []byte
}

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	for _, c := range s.chunks {
		if off >= c.off && off+int64(len(p)) <= c.off+int64(len(c.data)) {
			return copy(p, c.data[off-c.off:]), nil
		}
	}
	return 0, errors.New("range not copied")
}

// streamArgs fills the command lines and environments of the tasks of a
// compressed archive whose pages images were not kept: one more pass over
// the compressed stream copies out just the byte ranges of argv and envp
// (at most 2 × maxArgBytes a task), so neither memory nor disk grows with
// the size of the pages.
func (cp *Checkpoint) streamArgs(r io.ReaderAt, size int64, label string, done map[uint32]bool) error {
	type want struct {
		proc       *Process
		pm         *Pagemap
		args, envs []span
	}
	byMember := map[string][]*want{}
	b := &builder{cp: cp, im: cp.imgs}
	for i := range cp.Processes {
		p := &cp.Processes[i]
		if p.PageCount == 0 || p.Cmdline != nil || done[p.PID] {
			continue
		}
		pm, err := b.pagemap(p.PID)
		if err != nil {
			continue
		}
		w := &want{proc: p, pm: pm, args: spans(pm, p.ArgStart, p.ArgEnd), envs: spans(pm, p.EnvStart, p.EnvEnd)}
		if len(w.args)+len(w.envs) == 0 {
			continue
		}
		name := cp.imgs.path(fmt.Sprintf(imgPagesFmt, pm.PagesID))
		byMember[name] = append(byMember[name], w)
	}
	if len(byMember) == 0 {
		return nil
	}
	dr, err := evidence.Decompress(bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<20), evidence.DetectCompression(r))
	if err != nil {
		return &evidence.FormatError{File: label, Offset: 0, Err: err}
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	left := len(byMember)
	for left > 0 {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &evidence.FormatError{File: label, Offset: -1, Msg: "second pass for command lines", Err: err}
		}
		name := strings.TrimLeft(strings.TrimPrefix(h.Name, "./"), "/")
		ws := byMember[name]
		if ws == nil || h.Typeflag != tar.TypeReg {
			continue
		}
		delete(byMember, name)
		left--
		var all []span
		for _, w := range ws {
			all = append(all, w.args...)
			all = append(all, w.envs...)
		}
		sp := captureSpans(tr, all)
		for _, w := range ws {
			w.proc.Cmdline = readStrings(sp, w.pm, w.proc.ArgStart, w.proc.ArgEnd)
			w.proc.Environ = readStrings(sp, w.pm, w.proc.EnvStart, w.proc.EnvEnd)
		}
	}
	return nil
}

// captureSpans copies the wanted byte ranges of the tar member being read.
func captureSpans(tr io.Reader, all []span) *sparse {
	sort.Slice(all, func(i, j int) bool { return all[i].off < all[j].off })
	sp := &sparse{}
	var pos int64
	for _, s := range all {
		if s.off < pos { // overlapping spans: read the rest only
			if s.off+s.n <= pos {
				continue
			}
			s.n -= pos - s.off
			s.off = pos
		}
		if _, err := io.CopyN(io.Discard, tr, s.off-pos); err != nil {
			break
		}
		data := make([]byte, s.n)
		n, _ := io.ReadFull(tr, data)
		sp.chunks = append(sp.chunks, sparseChunk{s.off, data[:n]})
		pos = s.off + int64(n)
		if int64(n) < s.n {
			break
		}
	}
	return sp
}

// argCollector streams a compressed archive alongside the index pass
// (the two decompressions run on two cores): it decodes every
// mm-<pid>.img and pagemap-<pid>.img as they go by, and when a
// pages-<id>.img follows them copies out the argv and envp ranges they
// point at. CRIU and the engines write these images in name order (mm,
// pagemap, then pages), so one pass usually suffices; what it misses is
// read afterwards by streamArgs. Nothing it finds is trusted beyond
// bytes: the pstree decoded by Open decides which tasks exist.
type argCollector struct {
	done    chan struct{}
	stop    atomic.Bool
	pages   map[string]*sparse // pages member name -> copied ranges
	ranges  map[string]argRange
	maps    map[string]*Pagemap
	memUsed int64
}

type argRange struct{ argStart, argEnd, envStart, envEnd uint64 }

var perTaskMember = regexp.MustCompile(`^(.*?)(mm|pagemap|pages)-([0-9]+)\.img$`)

// startArgCollector takes ownership of f and closes it when done.
func startArgCollector(f evidence.File) *argCollector {
	c := &argCollector{done: make(chan struct{}), pages: map[string]*sparse{}, ranges: map[string]argRange{}, maps: map[string]*Pagemap{}}
	go func() {
		defer close(c.done)
		defer f.Close()
		c.run(f, f.Size())
	}()
	return c
}

// maxCollectorMemory bounds what the collector keeps of mm and pagemap
// images (decoded) and of copied ranges.
const maxCollectorMemory = 8 << 20

func (c *argCollector) run(r io.ReaderAt, size int64) {
	dr, err := evidence.Decompress(bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<20), evidence.DetectCompression(r))
	if err != nil {
		return
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	for !c.stop.Load() {
		h, err := tr.Next()
		if err != nil {
			return
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimLeft(strings.TrimPrefix(h.Name, "./"), "/")
		m := perTaskMember.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		dir, kind := m[1], m[2]
		switch kind {
		case "mm", "pagemap":
			if h.Size > maxRecord+8 || c.memUsed+h.Size > maxCollectorMemory {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(tr, h.Size))
			if err != nil {
				return
			}
			c.memUsed += int64(len(b))
			ir, err := NewImageReader(bytesReader(b), int64(len(b)), name)
			if err != nil {
				continue
			}
			if kind == "mm" {
				if mme, err := DecodeMM(ir); err == nil {
					c.ranges[dir+m[3]] = argRange{mme.GetMmArgStart(), mme.GetMmArgEnd(), mme.GetMmEnvStart(), mme.GetMmEnvEnd()}
				}
			} else if pm, err := DecodePagemap(ir); err == nil {
				c.maps[dir+m[3]] = pm
			}
		case "pages":
			var all []span
			for key, pm := range c.maps {
				if !strings.HasPrefix(key, dir) || strconv.FormatUint(uint64(pm.PagesID), 10) != m[3] {
					continue
				}
				if _, err := strconv.ParseUint(key[len(dir):], 10, 32); err != nil {
					continue // a key of a deeper directory
				}
				ar, ok := c.ranges[key]
				if !ok {
					continue
				}
				all = append(all, spans(pm, ar.argStart, ar.argEnd)...)
				all = append(all, spans(pm, ar.envStart, ar.envEnd)...)
			}
			if len(all) == 0 {
				continue
			}
			sp := captureSpans(tr, all)
			for _, ch := range sp.chunks {
				c.memUsed += int64(len(ch.data))
			}
			c.pages[name] = sp
			if c.memUsed > maxCollectorMemory {
				return
			}
		}
	}
}

// apply fills the command lines the collector could read and returns the
// tasks it covered.
func (c *argCollector) apply(cp *Checkpoint) map[uint32]bool {
	<-c.done
	done := map[uint32]bool{}
	b := &builder{cp: cp, im: cp.imgs}
	for i := range cp.Processes {
		p := &cp.Processes[i]
		if p.PageCount == 0 || p.Cmdline != nil {
			continue
		}
		pm, err := b.pagemap(p.PID)
		if err != nil {
			continue
		}
		sp := c.pages[cp.imgs.path(fmt.Sprintf(imgPagesFmt, pm.PagesID))]
		if sp == nil {
			continue
		}
		p.Cmdline = readStrings(sp, pm, p.ArgStart, p.ArgEnd)
		p.Environ = readStrings(sp, pm, p.EnvStart, p.EnvEnd)
		done[p.PID] = true
	}
	return done
}

// abandon asks the collector to stop at the next member; it closes its
// file itself.
func (c *argCollector) abandon() { c.stop.Store(true) }

func bytesReader(b []byte) io.ReaderAt { return bytes.NewReader(b) }
