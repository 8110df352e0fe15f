package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"unicode/utf16"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// GPT header (UEFI 2.x, section 5.3), little-endian, at LBA 1 (the backup at
// the last LBA):
//
//	0 "EFI PART"  8 revision  12 header size  16 header CRC32  24 my LBA  32 alternate LBA
//	40 first usable LBA  48 last usable LBA  56 disk GUID  72 partition entry LBA
//	80 number of entries  84 entry size  88 entries CRC32
//
// entry: 0 type GUID  16 unique GUID  32 first LBA  40 last LBA  48 attributes  56 name
// (UTF-16LE, 72 bytes).
const (
	gptSignature  = "EFI PART"
	gptMinHeader  = 92
	gptEntryMin   = 128
	gptEntryMax   = 4096
	gptNameOffset = 56
	gptNameLen    = 72
)

type gptHeader struct {
	at                      int64 // byte offset of the header
	myLBA, altLBA           int64
	firstUsable, lastUsable int64
	diskGUID                string
	entryLBA                int64
	count, entrySize        int64
	entriesCRC              uint32
}

// readGPTHeader reads and checks the header at lba; it returns a
// *vfs.FormatError describing what is wrong.
func (s *scanner) readGPTHeader(lba, ss int64) (*gptHeader, error) {
	at := lba * ss
	bad := func(format string, args ...any) error {
		return &vfs.FormatError{File: "gpt header", Offset: at, Msg: fmt.Sprintf(format, args...)}
	}
	if lba <= 0 || lba >= s.size/ss || at+ss > s.size { // lba*ss must not wrap
		return nil, bad("LBA %d lies outside the disk", lba)
	}
	b := make([]byte, ss)
	if err := readAt(s.r, b, at); err != nil {
		return nil, &vfs.FormatError{File: "gpt header", Offset: at, Err: err}
	}
	if string(b[:8]) != gptSignature {
		return nil, bad("no %q signature", gptSignature)
	}
	le := binary.LittleEndian
	hs := int64(le.Uint32(b[12:]))
	if hs < gptMinHeader || hs > ss {
		return nil, bad("header size %d out of range %d-%d", hs, gptMinHeader, ss)
	}
	want := le.Uint32(b[16:])
	h := append([]byte(nil), b[:hs]...)
	clear(h[16:20])
	if got := crc32.ChecksumIEEE(h); got != want {
		return nil, bad("header CRC32 %#08x, computed %#08x", want, got)
	}
	g := &gptHeader{at: at,
		myLBA: int64(le.Uint64(b[24:])), altLBA: int64(le.Uint64(b[32:])),
		firstUsable: int64(le.Uint64(b[40:])), lastUsable: int64(le.Uint64(b[48:])),
		diskGUID: guidString(b[56:72]), entryLBA: int64(le.Uint64(b[72:])),
		count: int64(le.Uint32(b[80:])), entrySize: int64(le.Uint32(b[84:])), entriesCRC: le.Uint32(b[88:])}
	sectors := s.size / ss
	switch {
	case g.myLBA != lba:
		return nil, bad("my LBA %d, but the header lies at LBA %d", g.myLBA, lba)
	case g.firstUsable < 0 || g.lastUsable < g.firstUsable || g.lastUsable >= sectors:
		return nil, bad("usable LBAs %d-%d out of the disk's %d sectors", g.firstUsable, g.lastUsable, sectors)
	case g.entrySize < gptEntryMin || g.entrySize > gptEntryMax || g.entrySize%8 != 0:
		return nil, bad("entry size %d (128-4096, a multiple of 8)", g.entrySize)
	case g.count > maxGPTParts || g.count*g.entrySize > maxGPTBytes:
		return nil, bad("%d entries of %d bytes over the %d-byte bound", g.count, g.entrySize, maxGPTBytes)
	case g.entryLBA < 2 || g.entryLBA >= sectors || g.entryLBA*ss+g.count*g.entrySize > s.size:
		return nil, bad("entry array at LBA %d (%d bytes) lies outside the disk", g.entryLBA, g.count*g.entrySize)
	}
	return g, nil
}

// readGPTEntries reads a header's entry array and checks its CRC.
func (s *scanner) readGPTEntries(g *gptHeader, ss int64) ([]byte, error) {
	b := make([]byte, g.count*g.entrySize)
	at := g.entryLBA * ss
	if err := readAt(s.r, b, at); err != nil {
		return nil, &vfs.FormatError{File: "gpt partition entries", Offset: at, Err: err}
	}
	if got := crc32.ChecksumIEEE(b); got != g.entriesCRC {
		return nil, &vfs.FormatError{File: "gpt partition entries", Offset: at, Msg: fmt.Sprintf("entries CRC32 %#08x, computed %#08x", g.entriesCRC, got)}
	}
	return b, nil
}

// scanGPT looks for a GPT: a header at LBA 1 (512- or 4096-byte sectors), or
// a protective MBR, or — when sector 0 holds no MBR either — a lone backup
// header at the last LBA (the start of the disk wiped). It reports whether
// the disk has a GPT (then the MBR is only protective).
func (s *scanner) scanGPT(s0 []byte, forced int) bool {
	protective := false
	if hasBootSignature(s0) {
		for i := range mbrEntryCount {
			if mbrEntryAt(s0, i).typ == typeGPTProt {
				protective = true
			}
		}
	}
	sizes := []int64{512, 4096}
	if forced != 0 {
		sizes = []int64{int64(forced)}
	}
	for _, ss := range sizes {
		sig := make([]byte, 8)
		if s.size >= 3*ss && readAt(s.r, sig, ss) == nil && string(sig) == gptSignature {
			s.readGPT(ss, true)
			return true
		}
	}
	if protective {
		s.readGPT(sizes[0], false)
		return true
	}
	if looksLikeMBR(s0) {
		return false
	}
	for _, ss := range sizes {
		if s.size < 3*ss {
			continue
		}
		if bk, err := s.readGPTHeader(s.size/ss-1, ss); err == nil {
			if ents, err := s.readGPTEntries(bk, ss); err == nil {
				s.warn("gpt header", fmt.Sprintf("no MBR and no primary header: partitions read from a backup header at LBA %d", bk.myLBA), nil)
				s.useGPT(bk, ents, ss)
				return true
			}
		}
	}
	return false
}

// readGPT reads the primary GPT at LBA 1, falling back to the backup.
func (s *scanner) readGPT(ss int64, hasSig bool) {
	s.l.Table, s.l.SectorSize = "gpt", int(ss)
	last := s.size/ss - 1
	backups := []int64{last}
	pri, err := s.readGPTHeader(1, ss)
	if err == nil {
		ents, eerr := s.readGPTEntries(pri, ss)
		if eerr == nil {
			s.useGPT(pri, ents, ss)
			s.checkBackup(pri, ents, ss)
			return
		}
		s.warn("gpt partition entries", "primary entries damaged", eerr)
		if pri.altLBA != last {
			backups = []int64{pri.altLBA, last}
		}
	} else if hasSig {
		s.warn("gpt header", "primary header damaged", err)
	} else {
		s.warn("gpt header", "a protective MBR but no primary header", err)
	}
	var lastErr error
	for _, lba := range backups {
		bk, berr := s.readGPTHeader(lba, ss)
		if berr != nil {
			lastErr = berr
			continue
		}
		bents, eerr := s.readGPTEntries(bk, ss)
		if eerr != nil {
			lastErr = eerr
			continue
		}
		s.warn("gpt header", fmt.Sprintf("partitions read from the backup header at LBA %d", lba), nil)
		s.useGPT(bk, bents, ss)
		return
	}
	s.warn("gpt header", "no usable backup either: no partitions listed", lastErr)
}

// checkBackup warns when the backup header or entries are missing or differ
// from the primary's (tampering or a disk grown without fixing the GPT).
func (s *scanner) checkBackup(pri *gptHeader, ents []byte, ss int64) {
	bk, err := s.readGPTHeader(pri.altLBA, ss)
	if err != nil {
		s.warn("gpt backup header", fmt.Sprintf("at LBA %d unusable", pri.altLBA), err)
		return
	}
	bents, err := s.readGPTEntries(bk, ss)
	if err != nil {
		s.warn("gpt backup entries", "unusable", err)
		return
	}
	if !bytes.Equal(ents, bents) {
		s.warn("gpt backup entries", "differ from the primary entries", nil)
	}
	if pri.altLBA != s.size/ss-1 {
		s.warn("gpt backup header", fmt.Sprintf("at LBA %d, not at the disk's last LBA %d (the disk was resized?)", pri.altLBA, s.size/ss-1), nil)
	}
}

func (s *scanner) useGPT(g *gptHeader, ents []byte, ss int64) {
	l := s.l
	l.Table, l.SectorSize, l.DiskGUID = "gpt", int(ss), g.diskGUID
	le := binary.LittleEndian
	sectors := s.size / ss
	for i := int64(0); i < g.count; i++ {
		e := ents[i*g.entrySize : (i+1)*g.entrySize]
		if isZero(e[:16]) {
			continue
		}
		if len(l.Partitions) >= maxPartitions {
			s.warn("gpt partition entries", fmt.Sprintf("more than %d partitions in use: the rest are not listed", maxPartitions), nil)
			break
		}
		p := Partition{Index: int(i + 1), Scheme: "gpt",
			Type: guidString(e[:16]), GUID: guidString(e[16:32]),
			FirstLBA: int64(le.Uint64(e[32:])), LastLBA: int64(le.Uint64(e[40:])),
			Attributes: le.Uint64(e[48:]), Name: utf16Name(e[gptNameOffset : gptNameOffset+gptNameLen])}
		p.TypeName = gptTypeNames[p.Type]
		item := fmt.Sprintf("p%d", p.Index)
		at := g.entryLBA*ss + i*g.entrySize
		if p.FirstLBA < 0 || p.LastLBA < p.FirstLBA || p.FirstLBA >= sectors || p.LastLBA >= 1<<62/ss {
			s.warn(item, fmt.Sprintf("LBAs %d-%d make no partition on a disk of %d sectors", p.FirstLBA, p.LastLBA, sectors),
				&vfs.FormatError{File: "gpt partition entry", Offset: at, Msg: "bad LBA range"})
			continue
		}
		if p.FirstLBA < g.firstUsable || p.LastLBA > g.lastUsable {
			s.warn(item, fmt.Sprintf("LBAs %d-%d outside the usable LBAs %d-%d", p.FirstLBA, p.LastLBA, g.firstUsable, g.lastUsable), nil)
		}
		p.Start = p.FirstLBA * ss
		p.Size = (p.LastLBA - p.FirstLBA + 1) * ss
		l.Partitions = append(l.Partitions, p)
	}
	s.checkOverlaps()
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// guidString formats a GUID stored mixed-endian (the first three fields
// little-endian), lower case.
func guidString(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b[0:]), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// gptTypeNames: common partition type GUIDs, named as sgdisk names them.
var gptTypeNames = func() map[string]string {
	m := map[string]string{}
	for _, t := range []struct{ guid, name string }{
		{"C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI system partition"},
		{"21686148-6449-6E6F-744E-656564454649", "BIOS boot partition"},
		{"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"},
		{"E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM"},
		{"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap"},
		{"A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID"},
		{"CA7D7CCB-63ED-4C53-861C-1742536059CC", "Linux LUKS"},
		{"7FFEC5C9-2D00-49B7-8941-3EA10A5586B7", "Linux dm-crypt"},
		{"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux x86-64 root (/)"},
		{"44479540-F297-41B2-9AF7-D131D5F0458A", "Linux x86 root (/)"},
		{"B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "Linux ARM64 root (/)"},
		{"69DAD710-2CE4-4E3C-B16C-21A1D49ABED3", "Linux ARM32 root (/)"},
		{"8484680C-9521-48C6-9C11-B0720656F69E", "Linux /usr (x86-64)"},
		{"B0E01050-EE5F-4390-949A-9101B17104E9", "Linux /usr (ARM64)"},
		{"4D21B016-B534-45C2-A9FB-5C16E091FD2D", "Linux /var"},
		{"7EC6F557-3BC5-4ACA-B293-16EF5DF639D1", "Linux /var/tmp"},
		{"933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux /home"},
		{"3B8F8425-20E0-4F3B-907F-1A25A76F98E8", "Linux /srv"},
		{"BC13C2FF-59E6-4262-A352-B275FD6F7172", "Linux extended boot"},
		{"8DA63339-0007-60C0-C436-083AC8230908", "Linux reserved"},
		{"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data"},
		{"E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved"},
		{"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows RE"},
		{"FE3A2A5D-4F32-41A7-B725-ACCC3285A309", "ChromeOS kernel"},
		{"3CB8E202-3B7E-47DD-8A3C-7FF2A13CFCEC", "ChromeOS root"},
		{"2E0A753D-9E48-43B0-8337-B15192CB1B5E", "ChromeOS reserved"},
		{"CAB6E88E-ABF3-4102-A07A-D4BB9BE3C1D3", "ChromeOS firmware"},
		{"09845860-705F-4BB5-B16C-8A8A099CAF52", "ChromeOS mini-OS"},
		{"6A898CC3-1DD2-11B2-99A6-080020736631", "Solaris /usr & Mac ZFS"},
		{"48465300-0000-11AA-AA11-00306543ECAC", "Apple HFS/HFS+"},
		{"7C3457EF-0000-11AA-AA11-00306543ECAC", "Apple APFS"},
		{"AA31E02A-400F-11DB-9590-000C2911D1B8", "VMware VMFS"},
		{"9D275380-40AD-11DB-BF97-000C2911D1B8", "VMware kcore crash protection"},
	} {
		m[strings.ToLower(t.guid)] = t.name
	}
	return m
}()
