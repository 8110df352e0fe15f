package evidence

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"path"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/ptr"
)

// TarOptions bound a tar stream. Zero fields take the defaults.
type TarOptions struct {
	// MaxMembers stops the stream with an error past this many members
	// (default 1<<22).
	MaxMembers int
	// Label names the archive in errors (its path).
	Label string
	// Compression, when set, is the stream's compression and the magic
	// bytes are not looked at (CompressionNone for a stream that is
	// already decompressed, whose first member name could look like a
	// magic number). Empty: detected from the magic bytes.
	Compression Compression
}

// TarMember is one member of a tar stream. Data reads the member's bytes
// (the whole logical file for sparse members, holes as zeros) and is valid
// only until the iteration moves on.
type TarMember struct {
	Header *tar.Header
	// Name is the member's name cleaned into a source name (no leading
	// "./" or "/"); "" when the name climbs above the root with "..".
	Name string
	// Offset is the byte offset of the member's header block (the last
	// one, after any PAX or GNU long-name blocks) in the uncompressed
	// stream; its data starts 512 bytes later (after the sparse map, for
	// sparse members).
	Offset int64
	// DataOffset is the offset of the member's data in the uncompressed
	// stream — in the archive itself for TarStreamAt, whose callers may
	// read it in place.
	DataOffset int64
	// Sparse lists the data fragments of a sparse member (GNU old, PAX 0.0,
	// 0.1 and 1.0 formats): everything else of the logical file is a hole.
	// Physical offsets are in the archive for TarStreamAt, in the
	// uncompressed stream for TarStream. Nil for other members (and for a
	// sparse member whose headers were too large to keep).
	Sparse []SparseFragment
	// Data reads the whole logical file (holes as zeros).
	Data io.Reader
	// Fragments, for a sparse member of TarStream, reads the bytes of its
	// Sparse fragments back to back, without generating the holes: a
	// member of a few bytes and a logical size of an exabyte costs a few
	// bytes. Read Data or Fragments, not both.
	Fragments io.Reader
}

// SparseFragment is one data fragment of a sparse member: Length bytes of
// the file at logical Offset, stored at Physical in the archive.
type SparseFragment struct {
	Offset, Length, Physical int64
}

// MaxSparseFragments bounds the fragments of one sparse member.
const MaxSparseFragments = 1 << 18

// TarStream reads a tar archive from r in one pass — plain, gzip or zstd,
// told apart by their magic bytes — and yields its members in order. A
// damaged member ends the stream with a *FormatError naming the label and
// the offset. It stops when ctx is cancelled (with ctx.Err()).
func TarStream(ctx context.Context, r io.Reader, opt *TarOptions) iter.Seq2[TarMember, error] {
	o := tarDefaults(opt)
	return func(yield func(TarMember, error) bool) {
		br := bufio.NewReaderSize(r, 1<<20)
		c := o.Compression
		if c == "" {
			magic, _ := br.Peek(4)
			c = detectMagic(magic)
		}
		var src io.Reader = br
		if c != CompressionNone {
			dr, err := Decompress(br, c)
			if err != nil {
				yield(TarMember{}, &FormatError{File: o.Label, Offset: 0, Msg: "decompress", Err: err})
				return
			}
			defer dr.Close()
			src = dr
		}
		tp := &tap{r: src}
		walkTar(ctx, tar.NewReader(tp), func() int64 { return tp.n }, o, nil, tp, yield)
	}
}

// TarStreamAt reads an uncompressed tar archive of size bytes in place:
// member data is skipped by seeking, and each member's DataOffset (and a
// sparse member's Sparse map) says where its bytes are in r.
func TarStreamAt(ctx context.Context, r io.ReaderAt, size int64, opt *TarOptions) iter.Seq2[TarMember, error] {
	o := tarDefaults(opt)
	return func(yield func(TarMember, error) bool) {
		sr := io.NewSectionReader(r, 0, size)
		pos := func() int64 { p, _ := sr.Seek(0, io.SeekCurrent); return p }
		walkTar(ctx, tar.NewReader(sr), pos, o, r, nil, yield)
	}
}

func tarDefaults(opt *TarOptions) TarOptions {
	o := ptr.Value(opt)
	if o.MaxMembers <= 0 {
		o.MaxMembers = 1 << 22
	}
	return o
}

// walkTar is the loop both streams share. pos is the reader's position in
// the uncompressed tar; at, when not nil, is the archive itself, to read
// the raw header blocks of sparse members; tp, for a stream, records them.
func walkTar(ctx context.Context, tr *tar.Reader, pos func() int64, o TarOptions, at io.ReaderAt, tp *tap, yield func(TarMember, error) bool) {
	var next int64 // where the next member's headers start
	var frags *fragReader
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			yield(TarMember{}, err)
			return
		}
		// Where this member's headers start: after the previous member's
		// data, which archive/tar has not read yet when reading in place
		// (pos is still at that data); pos when that end is unknown.
		start := pos()
		if tp == nil && next >= 0 {
			start = next
		}
		if tp != nil {
			if frags != nil {
				// archive/tar skips the fragments read directly: serve it
				// zeros for them.
				tp.virtual += frags.took
				frags = nil
			}
			start = next
			tp.record(max(next, tp.n))
		}
		h, err := tr.Next()
		if tp != nil {
			tp.recording = false
		}
		// tar reads headers a 512-byte block at a time, unbuffered: the
		// block it read last is the member's header, or the damaged one.
		data := pos()
		off := max(data-512, start)
		if err == io.EOF {
			return
		}
		if err != nil {
			yield(TarMember{}, &FormatError{File: o.Label, Offset: off, Msg: fmt.Sprintf("tar member %d", n+1), Err: err})
			return
		}
		if n >= o.MaxMembers {
			yield(TarMember{}, &FormatError{File: o.Label, Offset: off, Msg: fmt.Sprintf("more than %d members", o.MaxMembers)})
			return
		}
		m := TarMember{Header: h, Name: TarName(h.Name), Offset: off, DataOffset: data, Data: tr}
		phys := h.Size
		if tarHeaderOnly(h.Typeflag) {
			phys = 0
		}
		if IsSparse(h) {
			// A map that cannot be read leaves Sparse nil: the member is
			// listed, its data is the caller's to refuse.
			var src io.ReaderAt = at
			base := int64(0)
			if tp != nil {
				src, base = bytes.NewReader(tp.rec), start
			}
			phys = -1
			if start >= 0 && (tp == nil || !tp.over) {
				sp, hdrOff, rem, err := sparseMapAt(src, h, start-base, data-base)
				if rem > 0 || err == nil {
					phys = rem
				}
				if err == nil {
					for i := range sp {
						sp[i].Physical += base
					}
					m.Sparse, m.Offset = sp, hdrOff+base
					if tp != nil {
						frags = &fragReader{tp: tp, left: rem}
						m.Fragments = frags
					}
				}
			}
		}
		// Where the next member's headers start (unknown, -1, after a
		// sparse member whose size could not be read; the next plain
		// member sets it again).
		next = -1
		if phys >= 0 {
			next = (data + phys + 511) &^ 511
		}
		if !yield(m, nil) {
			return
		}
	}
}

// tarHeaderOnly are the types whose size field archive/tar ignores.
func tarHeaderOnly(t byte) bool {
	switch t {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return true
	}
	return false
}

// maxRecord bounds the header blocks of one member a stream keeps (PAX
// records, long names and sparse maps are at most 1 MiB each).
const maxRecord = 8 << 20

// tap sits between the decompressor and archive/tar. It records the
// header blocks of each member (to read a sparse map, which archive/tar
// keeps to itself), and lets a caller read a sparse member's fragments
// directly: archive/tar is then given zeros for the bytes it would skip.
type tap struct {
	r         io.Reader
	n         int64 // stream position
	rec       []byte
	from      int64 // stream position recording starts at
	recording bool
	over      bool
	virtual   int64 // bytes to give archive/tar as zeros, not read from r
}

func (t *tap) record(from int64) {
	t.rec, t.from, t.recording, t.over = t.rec[:0], from, true, false
}

func (t *tap) Read(p []byte) (int, error) {
	if t.virtual > 0 {
		k := int(min(int64(len(p)), t.virtual))
		clear(p[:k])
		t.virtual -= int64(k)
		return k, nil
	}
	k, err := t.r.Read(p)
	if t.recording && k > 0 {
		b := p[:k]
		if skip := t.from - t.n; skip > 0 {
			b = b[min(int64(len(b)), skip):]
		}
		if len(t.rec)+len(b) > maxRecord {
			t.over = true
		} else {
			t.rec = append(t.rec, b...)
		}
	}
	t.n += int64(k)
	return k, err
}

// fragReader reads a sparse member's fragments straight from the stream.
type fragReader struct {
	tp   *tap
	left int64
	took int64
}

func (f *fragReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	k, err := f.tp.r.Read(p)
	f.tp.n += int64(k)
	f.left -= int64(k)
	f.took += int64(k)
	if err == io.EOF && f.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return k, err
}

// IsSparse says whether a header is a GNU sparse member (old GNU 'S' or
// PAX GNU.sparse.*).
func IsSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for _, k := range []string{"GNU.sparse.major", "GNU.sparse.map", "GNU.sparse.size", "GNU.sparse.realsize"} {
		if h.PAXRecords[k] != "" {
			return true
		}
	}
	return false
}

// TarName cleans a member name into a source name: "./a/b" and "/a/b"
// become "a/b", the root is "."; a name that climbs above the root with
// ".." gives "".
func TarName(name string) string {
	name = strings.TrimLeft(name, "/")
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return ""
		}
	}
	c := path.Clean("/" + name)
	if c == "/" {
		return "."
	}
	return c[1:]
}

func detectMagic(m []byte) Compression {
	switch {
	case len(m) >= 2 && m[0] == 0x1f && m[1] == 0x8b:
		return CompressionGzip
	case len(m) >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd:
		return CompressionZstd
	}
	return CompressionNone
}

var errSparse = errors.New("malformed sparse map")

// sparseMapAt reads the sparse map of the member whose first header block
// is at start and whose physical data begins at data (archive/tar does not
// expose it). It returns the fragments, the offset of the member's own
// header block (after PAX and long-name blocks) and the physical bytes of
// the member from data on (what archive/tar skips to reach the next one).
func sparseMapAt(r io.ReaderAt, h *tar.Header, start, data int64) ([]SparseFragment, int64, int64, error) {
	var blk [512]byte
	hdr := int64(-1)
	for off, i := start, 0; off < data && i < 64; i++ {
		if _, err := r.ReadAt(blk[:], off); err != nil {
			return nil, start, 0, err
		}
		switch blk[156] {
		case tar.TypeXHeader, tar.TypeXGlobalHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			sz, ok := vfs.TarNumeric(blk[124:136])
			if !ok || sz < 0 || sz > 1<<21 {
				return nil, off, 0, errSparse
			}
			off += 512 + (sz+511)&^511
			continue
		}
		hdr = off
		break
	}
	if hdr < 0 {
		return nil, start, 0, errSparse
	}
	// The physical size: the PAX size record, or the header's own field;
	// a PAX 1.0 map at the start of the data section counts in it.
	phys, ok := vfs.TarNumeric(blk[124:136])
	if v := h.PAXRecords["size"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		phys, ok = n, err == nil
	}
	phys -= data - (hdr + 512)
	if !ok || phys < 0 {
		return nil, hdr, 0, errSparse
	}
	frags, err := sparseFrags(r, h, blk[:], hdr, data)
	if err != nil {
		return nil, hdr, phys, err
	}
	var sum int64
	for _, f := range frags {
		sum += f.Length
	}
	if sum != phys {
		return nil, hdr, phys, errSparse
	}
	return frags, hdr, phys, nil
}

// sparseFrags parses the map of a sparse member whose header block blk is
// at hdr.
func sparseFrags(r io.ReaderAt, h *tar.Header, blk []byte, hdr, data int64) ([]SparseFragment, error) {
	var pairs []int64
	switch {
	case blk[156] == tar.TypeGNUSparse:
		// Old GNU: 4 entries in the header, 21 in each extension block.
		add := func(b []byte, n int) error {
			for i := 0; i < n; i++ {
				e := b[i*24 : i*24+24]
				if e[0] == 0 {
					return nil
				}
				o, ok1 := vfs.TarNumeric(e[:12])
				l, ok2 := vfs.TarNumeric(e[12:])
				if !ok1 || !ok2 {
					return errSparse
				}
				pairs = append(pairs, o, l)
			}
			return nil
		}
		if err := add(blk[386:482], 4); err != nil {
			return nil, err
		}
		ext := blk[482] != 0
		for off := hdr + 512; ext; off += 512 {
			if off >= data || len(pairs) > 2*MaxSparseFragments {
				return nil, errSparse
			}
			if _, err := r.ReadAt(blk, off); err != nil {
				return nil, err
			}
			if err := add(blk[:504], 21); err != nil {
				return nil, err
			}
			ext = blk[504] != 0
		}
	case h.PAXRecords["GNU.sparse.major"] == "1":
		// PAX 1.0: decimal lines at the start of the data section.
		n := data - (hdr + 512)
		if n <= 0 || n > 1<<21 {
			return nil, errSparse
		}
		buf := make([]byte, n)
		if _, err := r.ReadAt(buf, hdr+512); err != nil {
			return nil, err
		}
		toks := strings.Split(string(buf), "\n")
		cnt, err := strconv.ParseInt(toks[0], 10, 64)
		if err != nil || cnt < 0 || cnt > MaxSparseFragments || int64(len(toks)) < 1+2*cnt {
			return nil, errSparse
		}
		for _, t := range toks[1 : 1+2*cnt] {
			v, err := strconv.ParseInt(t, 10, 64)
			if err != nil {
				return nil, errSparse
			}
			pairs = append(pairs, v)
		}
	default:
		// PAX 0.0 (converted by archive/tar) and 0.1.
		m := h.PAXRecords["GNU.sparse.map"]
		if m != "" {
			toks := strings.Split(m, ",")
			if len(toks)%2 != 0 || len(toks) > 2*MaxSparseFragments {
				return nil, errSparse
			}
			for _, t := range toks {
				v, err := strconv.ParseInt(t, 10, 64)
				if err != nil {
					return nil, errSparse
				}
				pairs = append(pairs, v)
			}
		}
	}
	if len(pairs)/2 > MaxSparseFragments {
		return nil, errSparse
	}
	frags := make([]SparseFragment, 0, len(pairs)/2)
	phys, end := data, int64(0)
	for i := 0; i+1 < len(pairs); i += 2 {
		o, l := pairs[i], pairs[i+1]
		if o < end || l < 0 || o > h.Size || l > h.Size-o {
			return nil, errSparse
		}
		end = o + l
		if l > 0 {
			frags = append(frags, SparseFragment{Offset: o, Length: l, Physical: phys})
		}
		phys += l
	}
	return frags, nil
}
