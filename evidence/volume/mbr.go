package volume

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// MBR (and EBR) sector: 440 disk signature (u32 LE), 446 four 16-byte entries
// (0 status 0x00/0x80, 4 type, 8 first LBA u32, 12 sector count u32), 510 0x55 0xAA.
// An EBR's entries are relative: a data partition to the EBR itself, the link
// to the next EBR to the start of the extended partition.
const (
	mbrEntries    = 446
	mbrSignature  = 510
	mbrDiskID     = 440
	typeEmpty     = 0x00
	typeGPTProt   = 0xee
	typeExtCHS    = 0x05
	typeExtLBA    = 0x0f
	typeExtLinux  = 0x85
	statusActive  = 0x80
	statusNone    = 0x00
	mbrEntrySize  = 16
	mbrEntryCount = 4
)

func isExtended(t byte) bool { return t == typeExtCHS || t == typeExtLBA || t == typeExtLinux }

type mbrEntry struct {
	status, typ  byte
	first, count uint32
}

func mbrEntryAt(sec []byte, i int) mbrEntry {
	b := sec[mbrEntries+i*mbrEntrySize:]
	return mbrEntry{status: b[0], typ: b[4], first: binary.LittleEndian.Uint32(b[8:]), count: binary.LittleEndian.Uint32(b[12:])}
}

func hasBootSignature(sec []byte) bool {
	return len(sec) >= 512 && sec[mbrSignature] == 0x55 && sec[mbrSignature+1] == 0xaa
}

// looksLikeMBR: the boot signature, every entry's status byte 0x00 or 0x80,
// and at least one entry in use. (A FAT or NTFS boot sector has the
// signature too, but boot code where the entries would be.)
func looksLikeMBR(sec []byte) bool {
	if !hasBootSignature(sec) {
		return false
	}
	used := 0
	for i := range mbrEntryCount {
		e := mbrEntryAt(sec, i)
		if e.status != statusNone && e.status != statusActive {
			return false
		}
		if e.typ != typeEmpty && e.count != 0 {
			if e.first == 0 {
				return false
			}
			used++
		}
	}
	return used > 0
}

// scanMBR reads an MBR partition table and its EBR chains.
func (s *scanner) scanMBR(s0 []byte, forced int) {
	if !looksLikeMBR(s0) {
		return
	}
	ss := int64(512)
	if forced != 0 {
		ss = int64(forced)
	}
	l := s.l
	l.Table, l.SectorSize = "mbr", int(ss)
	l.DiskID = fmt.Sprintf("0x%08x", binary.LittleEndian.Uint32(s0[mbrDiskID:]))
	next := 5
	for i := range mbrEntryCount {
		e := mbrEntryAt(s0, i)
		if e.typ == typeEmpty || e.count == 0 {
			continue
		}
		p := Partition{Index: i + 1, Scheme: "mbr", Kind: "primary", Bootable: e.status == statusActive}
		setMBRGeometry(&p, e, int64(e.first), ss)
		if isExtended(e.typ) {
			p.Kind = "extended"
		}
		if p.Start >= s.size {
			s.warn("p"+strconv.Itoa(p.Index), fmt.Sprintf("starts at byte %d, past the end of the disk (%d bytes)", p.Start, s.size),
				&vfs.FormatError{File: "mbr partition entry", Offset: int64(mbrEntries + i*mbrEntrySize), Msg: "start past the end of the disk"})
			continue
		}
		l.Partitions = append(l.Partitions, p)
		if isExtended(e.typ) {
			next = s.scanEBR(int64(e.first), int64(e.count), ss, next)
		}
	}
	s.checkOverlaps()
}

func setMBRGeometry(p *Partition, e mbrEntry, first, ss int64) {
	p.FirstLBA = first
	p.LastLBA = first + int64(e.count) - 1
	p.Start = first * ss
	p.Size = int64(e.count) * ss
	p.Type = fmt.Sprintf("0x%02x", e.typ)
	p.TypeName = mbrTypeNames[e.typ]
}

// scanEBR follows the EBR chain of the extended partition at extFirst
// (extCount sectors); logical partitions are numbered from next.
func (s *scanner) scanEBR(extFirst, extCount, ss int64, next int) int {
	extEnd := extFirst + extCount // first sector past the extended partition
	seen := map[int64]bool{}
	ebr := extFirst
	sec := make([]byte, 512)
	for hops := 0; ; hops++ {
		at := ebr * ss
		item := fmt.Sprintf("ebr at sector %d", ebr)
		if hops >= maxLogical {
			s.warn(item, fmt.Sprintf("more than %d EBRs: the chain is cut here", maxLogical), &vfs.FormatError{File: "mbr extended boot record", Offset: at, Msg: "chain too long"})
			return next
		}
		if seen[ebr] {
			s.warn(item, "the EBR chain loops back to an EBR already read: cut here", &vfs.FormatError{File: "mbr extended boot record", Offset: at, Msg: "loop in the EBR chain"})
			return next
		}
		seen[ebr] = true
		if at+512 > s.size {
			s.warn(item, "past the end of the disk", &vfs.FormatError{File: "mbr extended boot record", Offset: at, Msg: "past the end of the disk"})
			return next
		}
		if err := readAt(s.r, sec, at); err != nil {
			s.warn(item, "", &vfs.FormatError{File: "mbr extended boot record", Offset: at, Err: err})
			return next
		}
		if !hasBootSignature(sec) {
			if hops > 0 {
				s.warn(item, "no 0x55AA signature: the chain ends here", &vfs.FormatError{File: "mbr extended boot record", Offset: at + mbrSignature, Msg: "no boot signature"})
			}
			return next
		}
		link := int64(-1)
		for i := range mbrEntryCount {
			e := mbrEntryAt(sec, i)
			if e.typ == typeEmpty || e.count == 0 {
				continue
			}
			if isExtended(e.typ) {
				if link < 0 {
					link = extFirst + int64(e.first)
				}
				continue
			}
			first := ebr + int64(e.first)
			end := first + int64(e.count)
			if i >= 2 && (first < ebr || end > extEnd) {
				continue // as Linux does: the 3rd and 4th entries of an EBR often hold garbage
			}
			p := Partition{Index: next, Scheme: "mbr", Kind: "logical", Bootable: e.status == statusActive}
			setMBRGeometry(&p, e, first, ss)
			if first >= extEnd || end > extEnd {
				s.warn("p"+strconv.Itoa(next), fmt.Sprintf("sectors %d-%d lie outside the extended partition (%d-%d)", first, end-1, extFirst, extEnd-1),
					&vfs.FormatError{File: "mbr extended boot record", Offset: at + mbrEntries + int64(i)*mbrEntrySize, Msg: "logical partition outside the extended partition"})
			}
			if p.Start >= s.size {
				s.warn("p"+strconv.Itoa(next), "starts past the end of the disk", &vfs.FormatError{File: "mbr extended boot record", Offset: at + mbrEntries + int64(i)*mbrEntrySize, Msg: "logical partition past the end of the disk"})
			} else {
				s.l.Partitions = append(s.l.Partitions, p)
			}
			next++
		}
		if link < 0 {
			return next
		}
		if link <= extFirst || link >= extEnd {
			s.warn(item, fmt.Sprintf("next EBR at sector %d lies outside the extended partition (%d-%d)", link, extFirst, extEnd-1),
				&vfs.FormatError{File: "mbr extended boot record", Offset: at, Msg: "EBR link outside the extended partition"})
			return next
		}
		ebr = link
	}
}

// mbrTypeNames: the common MBR partition type ids, named as fdisk names them.
var mbrTypeNames = map[byte]string{
	0x01: "FAT12",
	0x04: "FAT16 <32M",
	0x05: "Extended",
	0x06: "FAT16",
	0x07: "HPFS/NTFS/exFAT",
	0x0b: "W95 FAT32",
	0x0c: "W95 FAT32 (LBA)",
	0x0e: "W95 FAT16 (LBA)",
	0x0f: "W95 Ext'd (LBA)",
	0x11: "Hidden FAT12",
	0x27: "Hidden NTFS WinRE",
	0x82: "Linux swap / Solaris",
	0x83: "Linux",
	0x85: "Linux extended",
	0x8e: "Linux LVM",
	0xa5: "FreeBSD",
	0xa6: "OpenBSD",
	0xa8: "Darwin UFS",
	0xa9: "NetBSD",
	0xaf: "HFS / HFS+",
	0xda: "Non-FS data",
	0xee: "GPT",
	0xef: "EFI (FAT-12/16/32)",
	0xfb: "VMware VMFS",
	0xfc: "VMware VMKCORE",
	0xfd: "Linux raid autodetect",
}
