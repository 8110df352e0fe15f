package checkpoint

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"

	"github.com/deadnode/deadnode/evidence"
)

// Command lines of compressed archives whose pages are not kept: argv and
// envp are a few KiB inside the pages images, so they are copied out of
// the archive's stream as it goes by, and neither memory nor disk grows
// with the size of the pages.

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

// ctxReader stops a long read (a member skipped or copied out) when its
// context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// streamArgs fills the command lines and environments of the tasks of a
// compressed archive whose pages images were not kept (but those of the
// tasks in done): one more pass over the compressed stream copies out just
// the byte ranges of argv and envp (at most 2 × maxArgBytes a task).
func (cp *Checkpoint) streamArgs(ctx context.Context, r evidence.File, label string, done map[uint32]bool) error {
	type want struct {
		proc *Process
		pm   *Pagemap
	}
	byMember := map[string][]want{}
	for i := range cp.Processes {
		p := &cp.Processes[i]
		if p.PageCount == 0 || p.Cmdline != nil || done[p.PID] {
			continue
		}
		pm, _ := cp.imgs.Pagemap(p.PID) // its error is the task's already; its runs before it serve
		if pm == nil {
			continue
		}
		if len(argSpans(p, pm)) == 0 {
			continue
		}
		name := cp.imgs.path(fmt.Sprintf(imgPagesFmt, pm.PagesID))
		byMember[name] = append(byMember[name], want{p, pm})
	}
	if len(byMember) == 0 {
		return nil
	}
	for m, err := range evidence.TarStream(ctx, io.NewSectionReader(r, 0, r.Size()), &evidence.TarOptions{Label: label}) {
		if len(byMember) == 0 {
			break
		}
		if err != nil {
			return err
		}
		ws := byMember[m.Name]
		if ws == nil || m.Header.Typeflag != tar.TypeReg {
			continue
		}
		delete(byMember, m.Name)
		var all []span
		for _, w := range ws {
			all = append(all, argSpans(w.proc, w.pm)...)
		}
		sp := captureSpans(ctxReader{ctx, m.Data}, all)
		for _, w := range ws {
			setArgs(w.proc, sp, w.pm)
		}
	}
	return ctx.Err()
}

// argSpans are where a task's argv and envp lie in its pages image.
func argSpans(p *Process, pm *Pagemap) []span {
	return append(spans(pm, p.ArgStart, p.ArgEnd), spans(pm, p.EnvStart, p.EnvEnd)...)
}

// setArgs reads a task's argv and envp from its pages.
func setArgs(p *Process, pages io.ReaderAt, pm *Pagemap) {
	p.Cmdline = readStrings(pages, pm, p.ArgStart, p.ArgEnd)
	p.Environ = readStrings(pages, pm, p.EnvStart, p.EnvEnd)
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
	done   chan struct{}
	cancel context.CancelFunc
	pages  map[string]*sparse // pages member name -> copied ranges
	tasks  map[string]*Process
	maps   map[string]*Pagemap // the last pagemap read of a task
	// byPages lists, by directory and pages id, the tasks (keys of maps)
	// whose pagemap names that pages image: one lookup per pages member.
	byPages map[pagesKey][]string
	memUsed int64
}

type pagesKey struct {
	dir string
	id  uint32
}

var perTaskMember = regexp.MustCompile(`^(.*?)(mm|pagemap|pages)-([0-9]+)\.img$`)

// startArgCollector reads the host file hostPath in a goroutine of its
// own; nil when the file cannot be opened.
func startArgCollector(ctx context.Context, hostPath string) *argCollector {
	f, err := OpenHost(hostPath)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &argCollector{done: make(chan struct{}), cancel: cancel, pages: map[string]*sparse{}, tasks: map[string]*Process{}, maps: map[string]*Pagemap{}, byPages: map[pagesKey][]string{}}
	go func() {
		defer close(c.done)
		defer f.Close()
		c.run(ctx, f)
	}()
	return c
}

// maxCollectorMemory bounds what the collector keeps of mm and pagemap
// images (decoded) and of copied ranges.
const maxCollectorMemory = 8 << 20

func (c *argCollector) run(ctx context.Context, f evidence.File) {
	for mem, err := range evidence.TarStream(ctx, io.NewSectionReader(f, 0, f.Size()), nil) {
		if err != nil {
			return
		}
		if mem.Header.Typeflag != tar.TypeReg {
			continue
		}
		m := perTaskMember.FindStringSubmatch(mem.Name)
		if m == nil {
			continue
		}
		dir, kind, key := m[1], m[2], m[1]+m[3]
		switch kind {
		case "mm", "pagemap":
			size := mem.Header.Size
			if size > maxRecord+8 || c.memUsed+size > maxCollectorMemory {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(ctxReader{ctx, mem.Data}, size))
			if err != nil {
				return
			}
			c.memUsed += int64(len(b))
			ir, err := NewImageReader(bytes.NewReader(b), int64(len(b)), mem.Name)
			if err != nil {
				continue
			}
			if kind == "mm" {
				if mme, err := decodeMM(ir); err == nil {
					c.tasks[key] = &Process{MM: MM{ArgStart: mme.GetMmArgStart(), ArgEnd: mme.GetMmArgEnd(), EnvStart: mme.GetMmEnvStart(), EnvEnd: mme.GetMmEnvEnd()}}
				}
			} else if pm, err := DecodePagemap(ir); err == nil {
				if old := c.maps[key]; old == nil || old.PagesID != pm.PagesID {
					k := pagesKey{dir, pm.PagesID}
					c.byPages[k] = append(c.byPages[k], key)
				}
				c.maps[key] = pm
			}
		case "pages":
			id, err := strconv.ParseUint(m[3], 10, 32)
			if err != nil {
				continue
			}
			var all []span
			for _, key := range c.byPages[pagesKey{dir, uint32(id)}] {
				pm, t := c.maps[key], c.tasks[key]
				if t != nil && pm.PagesID == uint32(id) {
					all = append(all, argSpans(t, pm)...)
				}
			}
			if len(all) == 0 {
				continue
			}
			sp := captureSpans(ctxReader{ctx, mem.Data}, all)
			for _, ch := range sp.chunks {
				c.memUsed += int64(len(ch.data))
			}
			c.pages[mem.Name] = sp
			if c.memUsed > maxCollectorMemory {
				return
			}
		}
	}
}

// apply fills the command lines the collector could read and returns the
// tasks it covered (none for a nil collector).
func (c *argCollector) apply(cp *Checkpoint) map[uint32]bool {
	if c == nil {
		return nil
	}
	<-c.done
	c.cancel()
	done := map[uint32]bool{}
	for i := range cp.Processes {
		p := &cp.Processes[i]
		if p.PageCount == 0 || p.Cmdline != nil {
			continue
		}
		pm, _ := cp.imgs.Pagemap(p.PID) // its error is the task's already; its runs before it serve
		if pm == nil {
			continue
		}
		sp := c.pages[cp.imgs.path(fmt.Sprintf(imgPagesFmt, pm.PagesID))]
		if sp == nil {
			continue
		}
		setArgs(p, sp, pm)
		done[p.PID] = true
	}
	return done
}

// abandon stops the collector (at once: its reads check its context); it
// closes its file itself.
func (c *argCollector) abandon() {
	if c != nil {
		c.cancel()
	}
}
