package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// DefaultMaxSpill bounds the bytes one archive spills (holes not counted)
// when ArchiveOptions.MaxSpill is not set; the free space of the spill's
// directory bounds it further (90% of it).
const DefaultMaxSpill = 256 << 30

// ErrNoSpace is wrapped by the *SpaceError of an archive whose data does
// not fit in the space given to it.
var ErrNoSpace = errors.New("no space left for the collection's data")

// SpaceError says which space ran out while an archive's data was
// decompressed: the temp directory, the cache directory, or the limit a
// caller set. errors.Is(err, ErrNoSpace) is true.
type SpaceError struct {
	Space string // "temp" or "cache"
	Dir   string // the directory whose filesystem ran out
	Free  int64  // bytes free there when the work began
	Limit int64  // bytes the work allowed itself
	// Configured is true when Limit is ArchiveOptions.MaxSpill, smaller
	// than the free space.
	Configured bool
	Member     string // the member being written
	Err        error  // the write error (ENOSPC, EDQUOT), if the disk said so first
}

func (e *SpaceError) Error() string {
	if e.Configured {
		return fmt.Sprintf("member %q: decompressed data passes the %d-byte limit", e.Member, e.Limit)
	}
	return fmt.Sprintf("%s space in %s: %s free, the collection needs more; use --cache DIR on a larger disk or extract the collection", e.Space, e.Dir, humanBytes(e.Free))
}

func (e *SpaceError) Is(target error) bool { return target == ErrNoSpace }
func (e *SpaceError) Unwrap() error        { return e.Err }

func humanBytes(n int64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// freeSpace returns the bytes an unprivileged user may still write in the
// filesystem holding dir.
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// spillBlock is the granularity of hole detection: a block of zeros is
// skipped (a hole), not written. Members start on a block boundary.
const spillBlock = 4096

var zeroBlock [spillBlock]byte

// spill is the file that holds the decompressed data of an archive's
// retained members, written once, sparse: runs of zero blocks are holes.
type spill struct {
	f          *os.File
	space, dir string
	free       int64
	limit      int64
	configured bool
	end        int64 // logical size
	written    int64 // bytes actually written
	buf        []byte
}

// newSpill prepares a spill in f (a file in dir) with the limit: the
// smaller of max (0: DefaultMaxSpill) and 90% of dir's free space.
func newSpill(f *os.File, space, dir string, max int64) *spill {
	s := &spill{f: f, space: space, dir: dir, limit: max}
	if s.limit <= 0 {
		s.limit = DefaultMaxSpill
	}
	s.configured = max > 0
	if free, err := freeSpace(dir); err == nil {
		s.free = free
		if room := free / 10 * 9; room < s.limit {
			s.limit, s.configured = room, false
		}
	}
	return s
}

func (s *spill) full(member string, err error) error {
	return &SpaceError{Space: s.space, Dir: s.dir, Free: s.free, Limit: s.limit, Configured: s.configured, Member: member, Err: err}
}

// add copies r to the end of the spill and returns where it starts and
// how many bytes it has; rerr is an error reading r (the data read until
// then is kept), err one writing the spill.
func (s *spill) add(ctx context.Context, member string, r io.Reader) (off, n int64, rerr, err error) {
	off = (s.end + spillBlock - 1) &^ (spillBlock - 1)
	n, rerr, err = s.copyAt(ctx, member, r, off, -1)
	s.end = off + n
	return off, n, rerr, err
}

// addFragments writes a sparse member's fragments (read back to back
// from r) one after the other at the end of the spill, and returns the
// fragments with their place in the spill as Physical: the holes take
// neither disk nor the spill's logical space, however large the file says
// it is.
func (s *spill) addFragments(ctx context.Context, member string, r io.Reader, frags []SparseFragment) ([]SparseFragment, error, error) {
	out := make([]SparseFragment, len(frags))
	for i, f := range frags {
		off := (s.end + spillBlock - 1) &^ (spillBlock - 1)
		n, rerr, err := s.copyAt(ctx, member, r, off, f.Length)
		s.end = off + n
		out[i] = SparseFragment{Offset: f.Offset, Length: n, Physical: off}
		if err != nil || rerr != nil {
			return out[:i+1], rerr, err
		}
		if n < f.Length {
			return out[:i+1], io.ErrUnexpectedEOF, nil
		}
	}
	return out, nil, nil
}

// copyAt copies r (n bytes, or to its end when n < 0) to the spill at
// off, zero blocks as holes.
func (s *spill) copyAt(ctx context.Context, member string, r io.Reader, off, n int64) (copied int64, rerr, err error) {
	if s.buf == nil {
		s.buf = make([]byte, 1<<20)
	}
	if n >= 0 {
		r = io.LimitReader(r, n)
	}
	for {
		if err := ctx.Err(); err != nil {
			return copied, nil, err
		}
		k, e := fill(r, s.buf)
		if werr := s.writeSparse(member, s.buf[:k], off+copied); werr != nil {
			return copied, nil, werr
		}
		copied += int64(k)
		if e == io.EOF {
			return copied, nil, nil
		}
		if e != nil {
			return copied, e, nil
		}
	}
}

// writeSparse writes the non-zero blocks of p at off.
func (s *spill) writeSparse(member string, p []byte, off int64) error {
	for len(p) > 0 {
		// Skip zero blocks.
		for len(p) > 0 {
			b := p[:min(len(p), spillBlock)]
			if !bytes.Equal(b, zeroBlock[:len(b)]) {
				break
			}
			p, off = p[len(b):], off+int64(len(b))
		}
		// Write the run of data blocks that follows.
		i := 0
		for i < len(p) {
			b := p[i:min(len(p), i+spillBlock)]
			if bytes.Equal(b, zeroBlock[:len(b)]) {
				break
			}
			i += len(b)
		}
		if i == 0 {
			continue
		}
		if s.written+int64(i) > s.limit {
			return s.full(member, nil)
		}
		if _, err := s.f.WriteAt(p[:i], off); err != nil {
			if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) || errors.Is(err, unix.EFBIG) {
				return s.full(member, err)
			}
			return err
		}
		s.written += int64(i)
		p, off = p[i:], off+int64(i)
	}
	return nil
}

// finish sets the file's size to the logical end (a trailing hole).
func (s *spill) finish() error {
	if s.f == nil {
		return nil
	}
	return s.f.Truncate(s.end)
}

// fill reads into buf until it is full or r ends (io.EOF) or fails.
func fill(r io.Reader, buf []byte) (int, error) {
	n, empty := 0, 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
		if k > 0 {
			empty = 0
		} else if empty++; empty > 100 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}
