package volume

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// Layout is what Scan found on a disk.
type Layout struct {
	Table        string        `json:"table"` // "gpt", "mbr" or "none"
	Size         int64         `json:"size"`  // the disk's size in bytes
	SectorSize   int           `json:"sector_size"`
	DiskGUID     string        `json:"disk_guid,omitempty"` // GPT
	DiskID       string        `json:"disk_id,omitempty"`   // MBR disk signature, "0x1234abcd"
	Partitions   []Partition   `json:"partitions"`
	VolumeGroups []VolumeGroup `json:"volume_groups"`
	Volumes      []*Volume     `json:"volumes"`
	Warnings     []Warning     `json:"warnings"`
}

// Partition is one entry of the partition table.
type Partition struct {
	Index      int    `json:"index"`          // as Linux numbers it: GPT entry number; MBR 1-4 primary, 5… logical
	Scheme     string `json:"scheme"`         // "gpt" or "mbr"
	Kind       string `json:"kind,omitempty"` // MBR: "primary", "extended" or "logical"
	Start      int64  `json:"start"`          // byte offset on the disk
	Size       int64  `json:"size"`           // bytes
	FirstLBA   int64  `json:"first_lba"`
	LastLBA    int64  `json:"last_lba"`
	Type       string `json:"type"`                // GPT type GUID (lower case), or MBR type id "0x83"
	TypeName   string `json:"type_name,omitempty"` // "Linux filesystem", "EFI system partition", …
	GUID       string `json:"guid,omitempty"`      // GPT unique partition GUID (PARTUUID)
	Name       string `json:"name,omitempty"`      // GPT partition name (PARTLABEL)
	Attributes uint64 `json:"attributes,omitempty"`
	Bootable   bool   `json:"bootable,omitempty"` // MBR active flag
}

// Volume is a range of bytes that may hold a filesystem: the whole disk, a
// partition or a logical volume.
type Volume struct {
	ID        string      `json:"id"`   // "whole", "p2", "vg0/root"
	Kind      string      `json:"kind"` // "disk", "partition" or "lv"
	Partition int         `json:"partition,omitempty"`
	VG        string      `json:"vg,omitempty"`
	LV        string      `json:"lv,omitempty"`
	Offset    int64       `json:"offset"` // byte offset on the disk; -1 when not one contiguous range
	Size      int64       `json:"size"`
	FS        *Filesystem `json:"filesystem,omitempty"` // nil: no known filesystem signature
	Readable  bool        `json:"readable"`
	Note      string      `json:"note,omitempty"` // why it is not readable, or what is odd

	r io.ReaderAt
}

// Open returns a reader over the volume's bytes (its Size is the volume's).
func (v *Volume) Open() (*io.SectionReader, error) {
	if !v.Readable || v.r == nil {
		msg := v.Note
		if msg == "" {
			msg = "not readable"
		}
		return nil, fmt.Errorf("volume %s: %s", v.ID, msg)
	}
	return io.NewSectionReader(v.r, 0, v.Size), nil
}

// Warning is a damaged or odd item; the others are still listed.
type Warning struct {
	Item    string `json:"item"` // "gpt header", "p5", "ebr", "vg0/root", "pv p2"…
	Message string `json:"message"`
	Err     error  `json:"-"`
}

// Options tune Scan; nil is fine.
type Options struct {
	// SectorSize forces the logical sector size (512 or 4096); 0 looks for
	// a GPT header at LBA 1 of either, and takes 512 otherwise.
	SectorSize int
}

// Bounds.
const (
	maxLogical    = 256 // logical partitions in one EBR chain
	maxGPTBytes   = 4 << 20
	maxGPTParts   = 16384    // entries in a GPT array
	maxPartitions = 1024     // GPT partitions in use that are listed (and probed)
	probeBytes    = 72 << 10 // every superblock probed lies in the first 72 KiB
	maxVolumeIDs  = 1 << 16
)

// Scan reads the partition table, the LVM physical volumes and the
// filesystems of the disk r (size bytes).
func Scan(r io.ReaderAt, size int64, opts *Options) (*Layout, error) {
	if opts == nil {
		opts = &Options{}
	}
	if size < 512 {
		return nil, fmt.Errorf("disk of %d bytes: too small for a partition table or a filesystem", size)
	}
	s0 := make([]byte, 512)
	if _, err := r.ReadAt(s0, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading sector 0: %w", err)
	}
	l := &Layout{Table: "none", Size: size, SectorSize: 512, Partitions: []Partition{}, VolumeGroups: []VolumeGroup{}, Volumes: []*Volume{}, Warnings: []Warning{}}
	s := &scanner{r: r, size: size, l: l}

	if found := s.scanGPT(s0, opts.SectorSize); !found {
		s.scanMBR(s0, opts.SectorSize)
	}

	whole := &Volume{ID: "whole", Kind: "disk", Offset: 0, Size: size, Readable: true, r: r}
	whole.FS = s.probe(whole, "whole")
	switch {
	case l.Table == "none":
		l.Volumes = append(l.Volumes, whole)
	case whole.FS != nil && whole.FS.Type != "":
		whole.Note = "a " + whole.FS.Type + " signature at the start of the disk, which also has a " + l.Table + " partition table"
		s.warn("whole", whole.Note, nil)
		l.Volumes = append(l.Volumes, whole)
	}
	sort.SliceStable(l.Partitions, func(i, j int) bool { return l.Partitions[i].Index < l.Partitions[j].Index })
	for i := range l.Partitions {
		p := &l.Partitions[i]
		if p.Kind == "extended" {
			continue
		}
		v := &Volume{ID: "p" + strconv.Itoa(p.Index), Kind: "partition", Partition: p.Index, Offset: p.Start, Size: p.Size, Readable: true}
		if p.Start+p.Size > size {
			v.Size = max(size-p.Start, 0)
			v.Note = fmt.Sprintf("the partition runs %d bytes past the end of the disk: cut at its end", p.Start+p.Size-size)
		}
		v.r = io.NewSectionReader(r, v.Offset, v.Size)
		v.FS = s.probe(v, v.ID)
		l.Volumes = append(l.Volumes, v)
	}
	s.scanLVM()
	return l, nil
}

type scanner struct {
	r    io.ReaderAt
	size int64
	l    *Layout
}

func (s *scanner) warn(item, msg string, err error) {
	if err != nil && msg == "" {
		msg = err.Error()
	} else if err != nil {
		msg += ": " + err.Error()
	}
	s.l.Warnings = append(s.l.Warnings, Warning{Item: item, Message: msg, Err: err})
}

// probe reads the volume's first bytes and identifies its filesystem.
func (s *scanner) probe(v *Volume, item string) *Filesystem {
	fs, err := Probe(v.r, v.Size)
	if err != nil {
		s.warn(item, "probe", err)
	}
	return fs
}

// readAt reads len(p) bytes at off of r, failing on a short read.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// checkOverlaps warns about partitions that share sectors.
func (s *scanner) checkOverlaps() {
	ps := make([]*Partition, 0, len(s.l.Partitions))
	for i := range s.l.Partitions {
		if s.l.Partitions[i].Kind != "extended" {
			ps = append(ps, &s.l.Partitions[i])
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Start < ps[j].Start })
	// against the partition reaching furthest so far: one inside a large
	// one is an overlap too, whatever lies between them
	for i, far := 1, 0; i < len(ps); i++ {
		a, b := ps[far], ps[i]
		if b.Start < a.Start+a.Size {
			s.warn("p"+strconv.Itoa(b.Index), fmt.Sprintf("overlaps p%d (bytes %d-%d and %d-%d)", a.Index, a.Start, a.Start+a.Size, b.Start, b.Start+b.Size), nil)
		}
		if b.Start+b.Size > a.Start+a.Size {
			far = i
		}
	}
}
