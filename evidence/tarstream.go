package evidence

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"iter"
	"path"
	"strings"
)

// TarOptions bound a tar stream. Zero fields take the defaults.
type TarOptions struct {
	// MaxMembers stops the stream with an error past this many members
	// (default 1<<22).
	MaxMembers int
	// Label names the archive in errors (its path).
	Label string
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
	// stream; its data starts 512 bytes later.
	Offset int64
	Data   io.Reader
}

// TarStream reads a tar archive from r in one pass — plain, gzip or zstd,
// told apart by their magic bytes — and yields its members in order. A
// damaged member ends the stream with a *FormatError naming the label and
// the offset. It stops when ctx is cancelled (with ctx.Err()).
func TarStream(ctx context.Context, r io.Reader, opt *TarOptions) iter.Seq2[TarMember, error] {
	var o TarOptions
	if opt != nil {
		o = *opt
	}
	if o.MaxMembers <= 0 {
		o.MaxMembers = 1 << 22
	}
	return func(yield func(TarMember, error) bool) {
		br := bufio.NewReaderSize(r, 1<<20)
		magic, _ := br.Peek(4)
		dr, err := Decompress(br, detectMagic(magic))
		if err != nil {
			yield(TarMember{}, &FormatError{File: o.Label, Offset: 0, Msg: "decompress", Err: err})
			return
		}
		defer dr.Close()
		cr := &countReader{r: dr}
		tr := tar.NewReader(cr)
		for n := 0; ; n++ {
			if err := ctx.Err(); err != nil {
				yield(TarMember{}, err)
				return
			}
			h, err := tr.Next()
			// tar reads headers a 512-byte block at a time, unbuffered: the
			// block it read last is the member's header, or the damaged one.
			off := max(cr.n-512, 0)
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
			if !yield(TarMember{Header: h, Name: TarName(h.Name), Offset: off, Data: tr}, nil) {
				return
			}
		}
	}
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
