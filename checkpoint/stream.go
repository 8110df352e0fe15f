package checkpoint

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

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
func (cp *Checkpoint) streamArgs(r io.ReaderAt, size int64, label string) error {
	type want struct {
		proc       *Process
		pm         *Pagemap
		args, envs []span
	}
	byMember := map[string][]*want{}
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
		for _, w := range ws {
			w.proc.Cmdline = readStrings(sp, w.pm, w.proc.ArgStart, w.proc.ArgEnd)
			w.proc.Environ = readStrings(sp, w.pm, w.proc.EnvStart, w.proc.EnvEnd)
		}
	}
	return nil
}
