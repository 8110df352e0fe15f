package memory

import (
	"io"
	"os"
	"runtime/debug"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reading pages without a copy: when the bytes of a range lie in place in
// a host file (a pages image of a directory, an uncompressed archive, or a
// spill file), they are mapped read-only and scanned where the page cache
// holds them. A mapping is never written through (PROT_READ), and a file
// that shrinks under it faults into a recovered panic, not a crash.

// osFile is what mapping needs of a host file: its descriptor and size
// (*os.File has them, and the types that embed one).
type osFile interface {
	SyscallConn() (syscall.RawConn, error)
	Stat() (os.FileInfo, error)
}

// hostFile finds the host file and offset a reader's bytes come from:
// through section readers (archive members) down to the file.
func hostFile(r io.ReaderAt) (osFile, int64, bool) {
	var base int64
	for range 4 {
		switch x := r.(type) {
		case interface {
			Outer() (io.ReaderAt, int64, int64)
		}:
			var off int64
			r, off, _ = x.Outer()
			base += off
		case osFile:
			return x, base, true
		default:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// mapRange maps the bytes of [from,to) read-only when they lie in one host
// file, contiguous; data is nil otherwise. Call unmap when done with data.
func (s *Space) mapRange(from, to uint64) (data []byte, unmap func()) {
	none := func() {}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].end > from })
	if i >= len(s.segs) || s.segs[i].start > from || s.segs[i].r == nil {
		return nil, none
	}
	g := s.segs[i]
	off := g.off + int64(from-g.start)
	for a := g.end; a < to; {
		i++
		if i >= len(s.segs) {
			return nil, none
		}
		h := s.segs[i]
		if h.start != a || h.r != g.r || h.off != g.off+int64(h.start-g.start) {
			return nil, none
		}
		a = h.end
	}
	f, base, ok := hostFile(g.r)
	if !ok {
		return nil, none
	}
	return mapFile(f, base+off, int64(to-from))
}

// mapFile maps n bytes of f at off (read-only, populated from the page
// cache); nil when the file is shorter or the kernel refuses.
func mapFile(f osFile, off, n int64) ([]byte, func()) {
	none := func() {}
	st, err := f.Stat()
	if err != nil || off < 0 || n <= 0 || off+n > st.Size() {
		return nil, none
	}
	start := off &^ (int64(os.Getpagesize()) - 1)
	length := off - start + n
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, none
	}
	var m []byte
	cerr := rc.Control(func(fd uintptr) {
		m, err = unix.Mmap(int(fd), start, int(length), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	})
	if cerr != nil || err != nil {
		return nil, none
	}
	return m[off-start:], func() { unix.Munmap(m) }
}

// safeScan runs scan, turning a fault on a mapping (the file shrank under
// it) into false.
func safeScan(scan func()) (ok bool) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			ok = false
		}
	}()
	scan()
	return true
}
