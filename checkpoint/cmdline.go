package checkpoint

import (
	"bytes"
	"io"
	"strings"
)

// cmdlines reads argv and the environment of each task from its pages when
// the pages image can be opened (directories, plain tar archives, and
// compressed archives opened with Options.Pages); streamArgs does it for
// the other compressed archives.
func (b *builder) cmdlines() {
	for i := range b.cp.Processes {
		p := &b.cp.Processes[i]
		if p.PageCount == 0 {
			continue
		}
		pm, _ := b.im.Pagemap(p.PID) // its error is the task's already; its runs before it serve
		if pm == nil {
			continue
		}
		pages, err := b.im.Pages(pm.PagesID)
		if err != nil || pages.File == nil {
			continue
		}
		setArgs(p, pages.File, pm)
		pages.File.Close()
	}
}

// span is a byte range of a pages image.
type span struct{ off, n int64 }

// spans lists where [start,end) of a task's memory lies in its pages
// image, bounded to maxArgBytes; it stops at the first page not stored.
func spans(pm *Pagemap, start, end uint64) []span {
	if end <= start || start == 0 {
		return nil
	}
	if end-start > maxArgBytes {
		end = start + maxArgBytes
	}
	var out []span
	for va := start; va < end; {
		e, ok := pm.Lookup(va)
		if !ok || e.Flags&PagePresent == 0 {
			break
		}
		// e.NrPages < 2^52, so the run's length does not overflow even
		// when the run ends at the top of the address space.
		n := min(end-va, e.NrPages*pageSize-(va-e.Vaddr))
		out = append(out, span{e.Offset + int64(va-e.Vaddr), int64(n)})
		va += n
	}
	return out
}

// readStrings reads the NUL-separated strings in [start,end) of a task's
// memory.
func readStrings(pages io.ReaderAt, pm *Pagemap, start, end uint64) []string {
	var buf []byte
	for _, s := range spans(pm, start, end) {
		chunk := make([]byte, s.n)
		if _, err := pages.ReadAt(chunk, s.off); err != nil {
			break
		}
		buf = append(buf, chunk...)
	}
	return SplitArgs(buf)
}

// SplitArgs splits a block of NUL-separated strings, as the kernel lays
// out argv and the environment (trailing NULs dropped; invalid UTF-8
// replaced by U+FFFD).
func SplitArgs(buf []byte) []string {
	buf = bytes.TrimRight(buf, "\x00")
	if len(buf) == 0 {
		return nil
	}
	var out []string
	for _, s := range bytes.Split(buf, []byte{0}) {
		out = append(out, strings.ToValidUTF8(string(s), "\uFFFD"))
	}
	return out
}
