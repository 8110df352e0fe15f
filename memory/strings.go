package memory

import (
	"context"
	"iter"

	"github.com/deadnode/deadnode/internal/ptr"
)

// Text is a run of printable text found in memory.
type Text struct {
	Address    uint64     `json:"address"`
	Encoding   string     `json:"encoding"` // ascii, utf16le
	Text       string     `json:"text"`
	Provenance Provenance `json:"provenance"`
	Truncated  bool       `json:"truncated,omitempty"` // longer than MaxLen; the rest follows as another string
}

// StringsOptions tune Strings.
type StringsOptions struct {
	Min         int          // shortest run reported, in characters (default 6)
	MaxLen      int          // longest text of one Text (default 4096)
	UTF16       bool         // look for UTF-16LE text instead of ASCII
	Provenances []Provenance // default dumped, parent, file
	Start, End  uint64       // address range; zero End means the whole space
}

func printable(c byte) bool { return c >= 0x20 && c < 0x7f || c == '\t' }

// Strings lists the printable ASCII (0x20-0x7e and tab) or UTF-16LE
// (the same characters, each followed by a zero byte) runs of at least
// Min characters, streaming over the readable ranges of the space. A
// cancelled ctx ends it with ctx.Err().
func (s *Space) Strings(ctx context.Context, o *StringsOptions) iter.Seq2[Text, error] {
	opt := ptr.Value(o)
	if opt.Min <= 0 {
		opt.Min = 6
	}
	if opt.MaxLen <= 0 {
		opt.MaxLen = 4096
	}
	opt.MaxLen = max(opt.MaxLen, opt.Min)
	provs := (&SearchOptions{Provenances: opt.Provenances}).provs()
	return func(yield func(Text, error) bool) {
		buf := make([]byte, 1<<20)
		width := uint64(1)
		enc := "ascii"
		if opt.UTF16 {
			width, enc = 2, "utf16le"
		}
		for _, sp := range s.spans(provs) {
			if opt.End != 0 {
				sp.Start, sp.End = max(sp.Start, opt.Start), min(sp.End, opt.End)
				if sp.Start >= sp.End {
					continue
				}
			}
			var run []byte
			var runAt uint64
			// phase: for UTF-16 the text may start at an odd or an even
			// address; both alignments are scanned.
			for phase := uint64(0); phase < width; phase++ {
				run = run[:0]
				emit := func(trunc bool) bool {
					if len(run) >= opt.Min {
						st := Text{Address: runAt, Encoding: enc, Text: string(run), Truncated: trunc}
						rs := s.Regions(runAt, runAt+uint64(len(run))*width)
						if len(rs) > 0 {
							st.Provenance = rs[0].Provenance
						}
						if !yield(st, nil) {
							return false
						}
					}
					run = run[:0]
					return true
				}
				var odd byte // a byte carried across chunks (UTF-16)
				haveOdd := false
				for pos := sp.Start + phase; pos < sp.End; {
					if err := ctx.Err(); err != nil {
						yield(Text{}, err)
						return
					}
					n := int(min(uint64(len(buf)), sp.End-pos))
					k, err := s.Read(buf[:n], pos)
					data := buf[:k]
					addr := pos
					if width == 1 {
						for i, c := range data {
							if printable(c) {
								if len(run) == 0 {
									runAt = addr + uint64(i)
								}
								run = append(run, c)
								if len(run) >= opt.MaxLen && !emit(true) {
									return
								}
							} else if len(run) > 0 && !emit(false) {
								return
							}
						}
					} else {
						i := 0
						if haveOdd && len(data) > 0 {
							if !utf16Step(odd, data[0], addr-1, &run, &runAt, opt.MaxLen, emit) {
								return
							}
							i, haveOdd = 1, false
						}
						for ; i+1 < len(data); i += 2 {
							if !utf16Step(data[i], data[i+1], addr+uint64(i), &run, &runAt, opt.MaxLen, emit) {
								return
							}
						}
						if i < len(data) {
							odd, haveOdd = data[i], true
						}
					}
					if err != nil {
						if !yield(Text{Address: pos + uint64(k)}, err) {
							return
						}
						break
					}
					pos += uint64(k)
				}
				if !emit(false) {
					return
				}
			}
		}
	}
}

func utf16Step(lo, hi byte, at uint64, run *[]byte, runAt *uint64, maxLen int, emit func(bool) bool) bool {
	if hi == 0 && printable(lo) {
		if len(*run) == 0 {
			*runAt = at
		}
		*run = append(*run, lo)
		if len(*run) >= maxLen {
			return emit(true)
		}
		return true
	}
	if len(*run) > 0 {
		return emit(false)
	}
	return true
}
