package memory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/deadnode/deadnode/internal/ptr"
)

// DumpedRegion is one file written by Dump.
type DumpedRegion struct {
	File   string `json:"file"` // name inside the output directory
	Start  uint64 `json:"start"`
	End    uint64 `json:"end"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // of the file as written (zero and not_captured ranges are holes that read as zeros)
	Kind   string `json:"kind,omitempty"`
	Path   string `json:"path,omitempty"`
	Perms  string `json:"perms,omitempty"`
	// Ranges give each byte's provenance: a not_captured range is a hole
	// in the file, never evidence of zeros.
	Ranges []Range `json:"ranges"`
}

// Manifest describes a Dump; it is written to manifest.json.
type Manifest struct {
	Source  string         `json:"source"`
	PID     uint32         `json:"pid"`
	Comm    string         `json:"comm"`
	Regions []DumpedRegion `json:"regions"`
	// Omitted are the zero, not_captured and unmapped ranges that no
	// file covers because they would have passed DumpOptions.MaxHoles,
	// and the ranges of content that would have passed
	// DumpOptions.MaxData (reason past_max_data). A skipped range splits
	// its region: the bytes after it are in a file of their own.
	Omitted
}

// Omitted is what a dump or a core left out once one of its bounds
// (MaxHoles, MaxData) was reached: the ranges, and a note that says so.
// Records embed it, so its JSON fields stand inline.
type Omitted struct {
	Skipped []Range `json:"skipped,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// ManifestName is the manifest's file name in a dump directory.
const ManifestName = "manifest.json"

// DefaultMaxHoles is how many bytes of zero and not_captured memory the
// files of one Dump cover by default (1 GiB), and MaxHolesLimit the most
// any Dump covers (64 GiB).
const (
	DefaultMaxHoles = 1 << 30
	MaxHolesLimit   = 64 << 30
)

// DefaultMaxData is how many bytes of content (dumped, parent and file
// pages) one Dump or one core file holds by default (64 GiB).
const DefaultMaxData = 64 << 30

// ReasonMaxData marks a skipped range of content: writing it would have
// passed the bound on content bytes (MaxData).
const ReasonMaxData = "past_max_data"

// DumpOptions tune Dump (and WriteCore, as CoreOptions): how much a
// hostile mm may make them write. Nil means the defaults.
type DumpOptions struct {
	// MaxHoles bounds the bytes of zero, not_captured and unmapped ranges
	// the region files cover (default DefaultMaxHoles, at most
	// MaxHolesLimit). Such bytes are never written (the files are sparse)
	// but each file's sha256 hashes them as zeros, which takes time: a
	// hostile mm can declare a 64 TiB mapping that was never touched. A
	// range that would pass the bound is left out and listed in
	// Manifest.Skipped.
	MaxHoles int64
	// MaxData bounds the bytes of content the files hold (default
	// DefaultMaxData). The pages images bound what was captured, but a
	// hostile mm can map one shared-memory object or one file at many
	// addresses, and each mapping reads it again. A range that would pass
	// the bound is left out and listed in Manifest.Skipped with the reason
	// past_max_data.
	MaxData int64
}

// limits are the bounds on holes (at most MaxHolesLimit, defHoles when
// unset) and on content (DefaultMaxData when unset).
func (o *DumpOptions) limits(defHoles int64) (holes, data int64) {
	v := ptr.Value(o)
	holes, data = defHoles, DefaultMaxData
	if v.MaxHoles > 0 {
		holes = min(v.MaxHoles, MaxHolesLimit)
	}
	if v.MaxData > 0 {
		data = v.MaxData
	}
	return holes, data
}

// ReasonUnmapped marks a skipped range between two mappings.
const ReasonUnmapped = "unmapped"

// Dump writes each region [Start,End) of the space to a file of dir named
// by its addresses (0x<start>-0x<end>.bin), and manifest.json. Regions
// that leave the mappings are cut to them. Dumped, parent and file bytes
// are written; zero and not_captured ranges (and gaps between mappings)
// are holes, up to DumpOptions.MaxHoles. Existing files are not
// overwritten. It stops with ctx.Err() when ctx is cancelled.
func (s *Space) Dump(ctx context.Context, dir, source string, regions []Range, opt *DumpOptions) (*Manifest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	man := &Manifest{Source: source, PID: s.PID, Comm: s.Comm, Regions: []DumpedRegion{}}
	bound, dataBound := opt.limits(DefaultMaxHoles)
	p := &dumpPlan{s: s, left: bound, dataLeft: dataBound, man: man}
	buf := make([]byte, 1<<20)
	for _, rg := range regions {
		if rg.End <= rg.Start {
			continue
		}
		parts := s.Regions(rg.Start, rg.End)
		if len(parts) == 0 {
			return man, fmt.Errorf("0x%x-0x%x: not mapped", rg.Start, rg.End)
		}
		for _, f := range p.region(parts) {
			d, err := s.writeFile(ctx, dir, f, buf)
			if err != nil {
				return man, err
			}
			man.Regions = append(man.Regions, d)
		}
	}
	holes := skipTally{what: "zero, not captured or unmapped memory", fate: "were not written", of: "holes", bound: bound}
	data := skipTally{what: "content", fate: "were not written", of: "content", bound: dataBound}
	for _, r := range man.Skipped {
		if r.Reason == ReasonMaxData {
			data.add(r)
		} else {
			holes.add(r)
		}
	}
	man.Note = skipNote(&holes, &data)
	b, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return man, err
	}
	mf, err := os.OpenFile(filepath.Join(dir, ManifestName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return man, err
	}
	_, err = mf.Write(append(b, '\n'))
	return man, errors.Join(err, mf.Close())
}

// skipTally counts the ranges one bound left out, and their bytes.
type skipTally struct {
	what  string // what they are ("content", "zero memory")
	fate  string // what became of them ("were not written")
	of    string // what the bound counts ("holes", "content")
	bound int64
	n     int
	bytes uint64
}

func (t *skipTally) add(r Range) { t.n, t.bytes = t.n+1, t.bytes+(r.End-r.Start) }

// skipNote says what each bound left out; "" when nothing was.
func skipNote(tallies ...*skipTally) string {
	var said []string
	for _, t := range tallies {
		if t.n > 0 {
			said = append(said, fmt.Sprintf("%d bytes of %s in %s %s: past the bound of %d bytes of %s (see skipped)", t.bytes, t.what, t.ranges(), t.fate, t.bound, t.of))
		}
	}
	return strings.Join(said, "; ")
}

// ranges says how many ranges ("1 range", "3 ranges").
func (t *skipTally) ranges() string {
	if t.n == 1 {
		return "1 range"
	}
	return fmt.Sprintf("%d ranges", t.n)
}

// dumpPlan lays requested regions out in files: a file runs from data to
// data across the holes the bound allows; a hole past it is skipped and
// ends the file, as is content past the bound on content.
type dumpPlan struct {
	s        *Space
	left     int64 // what is left of the bound on holes
	dataLeft int64 // what is left of the bound on content
	man      *Manifest
}

// planned is one file to write: its pieces in address order (holes
// included: gaps between mappings carry ReasonUnmapped).
type planned struct {
	pieces []Range
}

func (p *dumpPlan) region(parts []Range) []planned {
	var out []planned
	var cur []Range
	// end closes the current file. A gap between mappings at either end
	// of it is dropped (its part of the bound given back): once a skipped
	// range ends a file, what follows may begin with a gap, or be one.
	end := func() {
		unmapped := func(r Range) bool { return r.Reason == ReasonUnmapped }
		for len(cur) > 0 && unmapped(cur[0]) {
			p.left += int64(cur[0].End - cur[0].Start)
			cur = cur[1:]
		}
		for len(cur) > 0 && unmapped(cur[len(cur)-1]) {
			p.left += int64(cur[len(cur)-1].End - cur[len(cur)-1].Start)
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			out = append(out, planned{cur})
		}
		cur = nil
	}
	add := func(r Range) {
		n := r.End - r.Start
		switch {
		case r.Provenance == Zero || r.Provenance == NotCaptured:
			if n > uint64(p.left) {
				p.man.Skipped = append(p.man.Skipped, r)
				end()
				return
			}
			p.left -= int64(n)
		case n > uint64(p.dataLeft):
			r.Reason = ReasonMaxData
			p.man.Skipped = append(p.man.Skipped, r)
			end()
			return
		default:
			p.dataLeft -= int64(n)
		}
		cur = append(cur, r)
	}
	at := parts[0].Start
	for _, r := range parts {
		if r.Start > at {
			add(Range{Start: at, End: r.Start, Provenance: NotCaptured, Reason: ReasonUnmapped})
		}
		add(r)
		at = r.End
	}
	end()
	return out
}

// writeFile writes one planned file: data bytes written, holes sought
// over, the sha256 of the whole.
func (s *Space) writeFile(ctx context.Context, dir string, pl planned, buf []byte) (DumpedRegion, error) {
	ps := pl.pieces
	d := DumpedRegion{Start: ps[0].Start, End: ps[len(ps)-1].End}
	d.File = fmt.Sprintf("0x%x-0x%x.bin", d.Start, d.End)
	if m := s.Mapping(d.Start); m != nil {
		d.Kind, d.Path, d.Perms = m.Kind, m.Path, m.Perms
	}
	f, err := os.OpenFile(filepath.Join(dir, d.File), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return d, err
	}
	h := sha256.New()
	err = func() error {
		for _, p := range ps {
			if p.Reason != ReasonUnmapped {
				d.Ranges = append(d.Ranges, p)
			}
			n := int64(p.End - p.Start)
			if p.Provenance == Zero || p.Provenance == NotCaptured {
				if _, err := f.Seek(n, io.SeekCurrent); err != nil {
					return err
				}
				if err := hashZeros(ctx, h, n); err != nil {
					return err
				}
				continue
			}
			for a := p.Start; a < p.End; {
				if err := ctx.Err(); err != nil {
					return err
				}
				k := int(min(uint64(len(buf)), p.End-a))
				if _, err := s.Read(buf[:k], a); err != nil {
					return err
				}
				if _, err := f.Write(buf[:k]); err != nil {
					return err
				}
				h.Write(buf[:k])
				a += uint64(k)
			}
		}
		return f.Truncate(int64(d.End - d.Start))
	}()
	if err := errors.Join(err, f.Close()); err != nil {
		return d, err
	}
	d.Size, d.SHA256 = int64(d.End-d.Start), hex.EncodeToString(h.Sum(nil))
	return d, nil
}

var zeroPage [64 << 10]byte

// hashZeros feeds n zero bytes to h.
func hashZeros(ctx context.Context, h io.Writer, n int64) error {
	for i := 0; n > 0; i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		k := min(n, int64(len(zeroPage)))
		h.Write(zeroPage[:k])
		n -= k
	}
	return nil
}
