package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/deadnode/deadnode/evidence"
	"google.golang.org/protobuf/proto"
)

// ErrWrongMagic is wrapped by errors about an image whose magic is not the
// one its name promises.
var ErrWrongMagic = errors.New("wrong image magic")

// ImageReader walks the records of one CRIU protobuf image read in place
// through an io.ReaderAt: a magic (u32, little-endian, after an optional
// IMG_COMMON/IMG_SERVICE prefix), then records of a u32 little-endian length
// followed by that many bytes of protobuf. Every length is bounded and the
// records are counted; errors are *evidence.FormatError values naming the
// image and the offset of the bad record.
type ImageReader struct {
	name  string
	r     io.ReaderAt
	size  int64
	magic uint32
	off   int64
	count int
	buf   []byte
	err   error // what ended records
}

// NewImageReader reads the magic of an image of size bytes.
func NewImageReader(r io.ReaderAt, size int64, name string) (*ImageReader, error) {
	ir := &ImageReader{name: name, r: r, size: size}
	m, err := ir.u32(0)
	if err != nil {
		return nil, ir.errf(0, "no image magic", err)
	}
	ir.off = 4
	if m == magicImgCommon || m == magicImgService {
		if m, err = ir.u32(4); err != nil {
			return nil, ir.errf(4, "no image magic after the prefix", err)
		}
		ir.off = 8
	}
	ir.magic = m
	return ir, nil
}

// Magic is the image's own magic (after any prefix).
func (ir *ImageReader) Magic() uint32 { return ir.magic }

// Offset is the offset of the next record.
func (ir *ImageReader) Offset() int64 { return ir.off }

func (ir *ImageReader) u32(off int64) (uint32, error) {
	var b [4]byte
	if off+4 > ir.size {
		return 0, io.ErrUnexpectedEOF
	}
	if _, err := ir.r.ReadAt(b[:], off); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

func (ir *ImageReader) errf(off int64, msg string, err error) error {
	return &evidence.FormatError{File: ir.name, Offset: off, Msg: msg, Err: err}
}

// Expect checks the image's magic.
func (ir *ImageReader) Expect(magic uint32) error {
	if ir.magic != magic {
		return ir.errf(0, fmt.Sprintf("magic 0x%08x, want 0x%08x", ir.magic, magic), ErrWrongMagic)
	}
	return nil
}

// Next returns the payload of the next record, valid until the following
// call, and its offset; io.EOF at a clean end of the image.
func (ir *ImageReader) Next() ([]byte, int64, error) {
	if ir.off == ir.size {
		return nil, ir.off, io.EOF
	}
	start := ir.off
	n, err := ir.u32(start)
	if err != nil {
		return nil, start, ir.errf(start, "truncated record length", err)
	}
	if n > maxRecord {
		return nil, start, ir.errf(start, fmt.Sprintf("record of %d bytes passes the %d-byte limit", n, maxRecord), nil)
	}
	if int64(n) > ir.size-start-4 {
		return nil, start, ir.errf(start, fmt.Sprintf("record of %d bytes but %d bytes left", n, ir.size-start-4), io.ErrUnexpectedEOF)
	}
	if ir.count >= maxRecords {
		return nil, start, ir.errf(start, fmt.Sprintf("more than %d records", maxRecords), nil)
	}
	if cap(ir.buf) < int(n) {
		ir.buf = make([]byte, n)
	}
	b := ir.buf[:n]
	if _, err := ir.r.ReadAt(b, start+4); err != nil && !(err == io.EOF) {
		return nil, start, ir.errf(start, "reading record", err)
	}
	ir.off = start + 4 + int64(n)
	ir.count++
	return b, start, nil
}

var unmarshal = proto.UnmarshalOptions{AllowPartial: true, DiscardUnknown: true}

// NextMessage decodes the next record into m; io.EOF at the end.
func (ir *ImageReader) NextMessage(m proto.Message) error {
	b, off, err := ir.Next()
	if err != nil {
		return err
	}
	if err := unmarshal.Unmarshal(b, m); err != nil {
		return ir.errf(off, fmt.Sprintf("bad %T record", m), err)
	}
	return nil
}

// records decodes the records of an image one by one, each into a new
// message, with its offset; a damaged record ends them with its error.
func records[T any, P interface {
	*T
	proto.Message
}](ir *ImageReader) iter.Seq2[P, int64] {
	return func(yield func(P, int64) bool) {
		for {
			m, off := P(new(T)), ir.Offset()
			ir.err = ir.NextMessage(m)
			if ir.err == io.EOF {
				ir.err = nil
				return
			}
			if ir.err != nil || !yield(m, off) {
				return
			}
		}
	}
}

// decodeAll reads every record of an image with the wanted magic.
func decodeAll[T any, P interface {
	*T
	proto.Message
}](ir *ImageReader, magic uint32) ([]P, error) {
	if err := ir.Expect(magic); err != nil {
		return nil, err
	}
	var out []P
	for m := range records[T, P](ir) {
		out = append(out, m)
	}
	return out, ir.err
}

// decodeOne reads the first record of an image with the wanted magic.
func decodeOne[T any, P interface {
	*T
	proto.Message
}](ir *ImageReader, magic uint32) (P, error) {
	m := P(new(T))
	if err := ir.Expect(magic); err != nil {
		return m, err
	}
	err := ir.NextMessage(m)
	if err == io.EOF {
		return m, ir.errf(ir.off, "image holds no record", io.ErrUnexpectedEOF)
	}
	return m, err
}

// A decoder reads one kind of image.
type decoder[R any] func(*ImageReader) (R, error)

// all and one make the decoder of an image of records of type T.
func all[T any, P interface {
	*T
	proto.Message
}](magic uint32) decoder[[]P] {
	return func(ir *ImageReader) ([]P, error) { return decodeAll[T, P](ir, magic) }
}

func one[T any, P interface {
	*T
	proto.Message
}](magic uint32) decoder[P] {
	return func(ir *ImageReader) (P, error) { return decodeOne[T, P](ir, magic) }
}
