package memory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DumpedRegion is one file written by Dump.
type DumpedRegion struct {
	File   string `json:"file"` // name inside the output directory
	Start  uint64 `json:"start"`
	End    uint64 `json:"end"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // of the file as written (not_captured ranges are holes that read as zeros)
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
}

// ManifestName is the manifest's file name in a dump directory.
const ManifestName = "manifest.json"

// Dump writes each region [Start,End) of the space to a file of dir named
// by its addresses (0x<start>-0x<end>.bin), and manifest.json. Regions
// that leave the mappings are cut to them. Existing files are not
// overwritten.
func (s *Space) Dump(dir, source string, regions []Range) (*Manifest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	man := &Manifest{Source: source, PID: s.PID, Comm: s.Comm, Regions: []DumpedRegion{}}
	buf := make([]byte, 1<<20)
	for _, rg := range regions {
		if rg.End <= rg.Start {
			continue
		}
		parts := s.Regions(rg.Start, rg.End)
		if len(parts) == 0 {
			return man, fmt.Errorf("0x%x-0x%x: not mapped", rg.Start, rg.End)
		}
		start, end := parts[0].Start, parts[len(parts)-1].End
		d := DumpedRegion{File: fmt.Sprintf("0x%x-0x%x.bin", start, end), Start: start, End: end, Ranges: parts}
		if m := s.Mapping(start); m != nil {
			d.Kind, d.Path, d.Perms = m.Kind, m.Path, m.Perms
		}
		f, err := os.OpenFile(filepath.Join(dir, d.File), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return man, err
		}
		h := sha256.New()
		var size int64
		for _, p := range parts {
			n := int64(p.End - p.Start)
			if p.Start > start+uint64(size) { // an unmapped gap between mappings
				gap := int64(p.Start - start - uint64(size))
				if _, err := f.Seek(gap, io.SeekCurrent); err != nil {
					f.Close()
					return man, err
				}
				hashZeros(h, gap)
				size += gap
			}
			if p.Provenance == NotCaptured {
				if _, err := f.Seek(n, io.SeekCurrent); err != nil {
					f.Close()
					return man, err
				}
				hashZeros(h, n)
				size += n
				continue
			}
			for a := p.Start; a < p.End; {
				k := int(min(uint64(len(buf)), p.End-a))
				if _, err := s.Read(buf[:k], a); err != nil {
					f.Close()
					return man, err
				}
				if _, err := f.Write(buf[:k]); err != nil {
					f.Close()
					return man, err
				}
				h.Write(buf[:k])
				a += uint64(k)
				size += int64(k)
			}
		}
		if err := f.Truncate(size); err != nil {
			f.Close()
			return man, err
		}
		if err := f.Close(); err != nil {
			return man, err
		}
		d.Size, d.SHA256 = size, hex.EncodeToString(h.Sum(nil))
		man.Regions = append(man.Regions, d)
	}
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

var zeroPage [64 << 10]byte

func hashZeros(w io.Writer, n int64) {
	for n > 0 {
		k := min(n, int64(len(zeroPage)))
		w.Write(zeroPage[:k])
		n -= k
	}
}
