package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Filesystem is what a volume's first bytes say it holds. Type uses
// blkid's names, so that TYPE=, UUID= and LABEL= compare as blkid prints
// them.
type Filesystem struct {
	Type      string   `json:"type"`                 // ext2, ext3, ext4, jbd, xfs, vfat, btrfs, swap, LVM2_member, crypto_LUKS, iso9660, squashfs, ntfs
	Version   string   `json:"version,omitempty"`    // ext "1.0", FAT16/FAT32, swap "1", "LVM2 001", LUKS "2", xfs "5"
	Label     string   `json:"label,omitempty"`      // as blkid's LABEL
	UUID      string   `json:"uuid,omitempty"`       // as blkid's UUID
	Size      int64    `json:"size,omitempty"`       // bytes the filesystem spans, per its superblock
	BlockSize int      `json:"block_size,omitempty"` // filesystem block (ext, xfs, btrfs sector), cluster (vfat) or page (swap) size
	Features  []string `json:"features,omitempty"`   // ext: as dumpe2fs names them; xfs: as xfs_db's version command
}

// Probe identifies the filesystem (or PV, or LUKS container) at the start of
// r, a volume of size bytes; nil when no known signature is there.
func Probe(r io.ReaderAt, size int64) (*Filesystem, error) {
	if size < 0 {
		return nil, fmt.Errorf("a volume of %d bytes", size)
	}
	n := min(size, probeBytes)
	b := make([]byte, n)
	if err := readAt(r, b, 0); err != nil {
		return nil, fmt.Errorf("reading the first %d bytes: %w", n, err)
	}
	for _, p := range probers {
		if fs := p(b, size); fs != nil {
			return fs, nil
		}
	}
	return nil, nil
}

// probers run in order; the first that recognises the volume wins. Magic
// numbers that cannot be stale leftovers of an earlier filesystem come
// first; vfat, the weakest, last.
var probers = []func(b []byte, size int64) *Filesystem{
	probeLUKS, probeXFS, probeLVM, probeExt, probeBtrfs, probeSwap, probeSquashfs, probeISO9660, probeNTFS, probeVFAT,
}

func at(b []byte, off, n int) []byte {
	if off < 0 || off+n > len(b) {
		return nil
	}
	return b[off : off+n]
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func uuidString(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ext2/3/4 superblock at 1024.
const (
	extSB              = 1024
	extCompatJournal   = 0x4
	extIncompatFType   = 0x2
	extIncompatRecover = 0x4
	extIncompatJDev    = 0x8
	extIncompatMetaBG  = 0x10
	extIncompat64Bit   = 0x80
	extROSparse        = 0x1
	extROLargeFile     = 0x2
	extROBtreeDir      = 0x4
)

var extCompatNames = []string{"dir_prealloc", "imagic_inodes", "has_journal", "ext_attr", "resize_inode", "dir_index", "lazy_bg", "snapshot_bitmap", "", "sparse_super2", "fast_commit", "stable_inodes", "orphan_file"}
var extIncompatNames = []string{"compression", "filetype", "needs_recovery", "journal_dev", "meta_bg", "", "extent", "64bit", "mmp", "flex_bg", "ea_inode", "", "dirdata", "metadata_csum_seed", "large_dir", "inline_data", "encrypt", "casefold"}
var extROCompatNames = []string{"sparse_super", "large_file", "", "huge_file", "uninit_bg", "dir_nlink", "extra_isize", "", "quota", "bigalloc", "metadata_csum", "replica", "read-only", "project", "shared_blocks", "verity", "orphan_present"}

func featureNames(v uint32, names []string, prefix string) []string {
	var out []string
	for i := range 32 {
		if v&(1<<i) == 0 {
			continue
		}
		if i < len(names) && names[i] != "" {
			out = append(out, names[i])
		} else {
			out = append(out, fmt.Sprintf("FEATURE_%s%d", prefix, i))
		}
	}
	return out
}

func probeExt(b []byte, size int64) *Filesystem {
	sb := at(b, extSB, 1024)
	if sb == nil || binary.LittleEndian.Uint16(sb[56:]) != 0xef53 {
		return nil
	}
	le := binary.LittleEndian
	logBlock := le.Uint32(sb[24:])
	if logBlock > 6 {
		return nil // a block size past 64 KiB: not an ext superblock
	}
	compat, incompat, ro := le.Uint32(sb[92:]), le.Uint32(sb[96:]), le.Uint32(sb[100:])
	fs := &Filesystem{
		Label:     cstring(sb[120:136]),
		UUID:      uuidString(sb[104:120]),
		BlockSize: 1024 << logBlock,
		Version:   fmt.Sprintf("%d.%d", le.Uint32(sb[76:]), le.Uint16(sb[62:])),
	}
	blocks := uint64(le.Uint32(sb[4:]))
	if incompat&extIncompat64Bit != 0 {
		blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	if blocks < 1<<40 {
		fs.Size = int64(blocks) * int64(fs.BlockSize)
	}
	fs.Features = append(fs.Features, featureNames(compat, extCompatNames, "C")...)
	fs.Features = append(fs.Features, featureNames(incompat, extIncompatNames, "I")...)
	fs.Features = append(fs.Features, featureNames(ro, extROCompatNames, "R")...)
	// blkid's rules: a journal device; ext2 without a journal and with only
	// ext2's features; ext3 with a journal and only ext3's; ext4 otherwise
	roUnsupported := ro &^ (extROSparse | extROLargeFile | extROBtreeDir)
	switch {
	case incompat&extIncompatJDev != 0:
		fs.Type = "jbd"
	case compat&extCompatJournal == 0 && roUnsupported == 0 && incompat&^(extIncompatFType|extIncompatMetaBG) == 0:
		fs.Type = "ext2"
	case compat&extCompatJournal != 0 && roUnsupported == 0 && incompat&^(extIncompatFType|extIncompatRecover|extIncompatMetaBG) == 0:
		fs.Type = "ext3"
	default:
		fs.Type = "ext4"
	}
	return fs
}

// XFS superblock at 0, big-endian.
var xfsVersionBits = []struct {
	bit  uint16
	name string
}{
	{0x0020, "NLINK"}, {0x0200, "SHARED"}, {0x2000, "DIRV2"}, {0x0010, "ATTR"}, {0x0040, "QUOTA"},
	{0x0080, "ALIGN"}, {0x0100, "DALIGN"}, {0x0400, "LOGV2"}, {0x1000, "EXTFLG"}, {0x0800, "SECTOR"},
	{0x4000, "ASCII_CI"}, {0x8000, "MOREBITS"},
}

func probeXFS(b []byte, size int64) *Filesystem {
	sb := at(b, 0, 512)
	if sb == nil || string(sb[:4]) != "XFSB" {
		return nil
	}
	be := binary.BigEndian
	bs := be.Uint32(sb[4:])
	if bs < 512 || bs > 65536 || bs&(bs-1) != 0 {
		return nil
	}
	vn := be.Uint16(sb[100:])
	fs := &Filesystem{Type: "xfs", UUID: uuidString(sb[32:48]), Label: cstring(sb[108:120]), BlockSize: int(bs),
		Version: strconv.Itoa(int(vn & 0xf))}
	if d := be.Uint64(sb[8:]); d < 1<<44 {
		fs.Size = int64(d) * int64(bs)
	}
	for _, f := range xfsVersionBits {
		if vn&f.bit != 0 {
			fs.Features = append(fs.Features, f.name)
		}
	}
	f2 := be.Uint32(sb[200:])
	v5 := vn&0xf == 5
	var compatRO, incompat uint32
	if v5 {
		compatRO, incompat = be.Uint32(sb[212:]), be.Uint32(sb[216:])
	}
	add := func(ok bool, name string) {
		if ok {
			fs.Features = append(fs.Features, name)
		}
	}
	if vn&0x8000 != 0 {
		add(f2&0x8 != 0, "ATTR2")
		add(f2&0x2 != 0, "LAZYSBCOUNT")
		add(f2&0x80 != 0, "PROJID32BIT")
		add(f2&0x100 != 0, "CRC")
		add(f2&0x200 != 0 || incompat&0x1 != 0, "FTYPE")
	}
	add(compatRO&0x1 != 0, "FINOBT")
	add(incompat&0x2 != 0, "SPARSE_INODES")
	add(incompat&0x4 != 0, "META_UUID")
	add(compatRO&0x2 != 0, "RMAPBT")
	add(compatRO&0x4 != 0, "REFLINK")
	add(compatRO&0x8 != 0, "INOBTCNT")
	add(incompat&0x8 != 0, "BIGTIME")
	add(incompat&0x10 != 0, "NEEDSREPAIR")
	add(incompat&0x20 != 0, "NREXT64")
	return fs
}

func probeLVM(b []byte, size int64) *Filesystem {
	for sec := range 4 {
		lb := at(b, sec*512, 512)
		if lb == nil || string(lb[:8]) != lvmLabelID || string(lb[24:32]) != lvmType {
			continue
		}
		off := int(binary.LittleEndian.Uint32(lb[20:]))
		ph := at(b, sec*512+off, 40)
		if ph == nil {
			continue
		}
		return &Filesystem{Type: "LVM2_member", Version: lvmType, UUID: lvmUUID(ph[:32]), Size: int64(binary.LittleEndian.Uint64(ph[32:]))}
	}
	return nil
}

func probeBtrfs(b []byte, size int64) *Filesystem {
	sb := at(b, 0x10000, 0x1000)
	if sb == nil || string(sb[0x40:0x48]) != "_BHRfS_M" {
		return nil
	}
	le := binary.LittleEndian
	return &Filesystem{Type: "btrfs", UUID: uuidString(sb[0x20:0x30]), Label: cstring(sb[0x12b : 0x12b+256]),
		Size: int64(le.Uint64(sb[0x70:]) & (1<<62 - 1)), BlockSize: int(le.Uint32(sb[0x90:]))}
}

func probeSwap(b []byte, size int64) *Filesystem {
	for _, page := range []int{4096, 8192, 16384, 65536} {
		sig := at(b, page-10, 10)
		if sig == nil {
			break
		}
		if s := string(sig); s != "SWAPSPACE2" && s != "SWAP-SPACE" {
			continue
		}
		fs := &Filesystem{Type: "swap", BlockSize: page}
		if string(sig) == "SWAP-SPACE" {
			fs.Version = "0"
			return fs
		}
		h := at(b, 1024, 44)
		le := binary.LittleEndian
		fs.Version = strconv.Itoa(int(le.Uint32(h)))
		fs.UUID = uuidString(h[12:28])
		fs.Label = cstring(h[28:44])
		if last := le.Uint32(h[4:]); last > 0 {
			fs.Size = int64(last+1) * int64(page)
		}
		return fs
	}
	return nil
}

func probeSquashfs(b []byte, size int64) *Filesystem {
	sb := at(b, 0, 96)
	if sb == nil || string(sb[:4]) != "hsqs" {
		return nil
	}
	le := binary.LittleEndian
	return &Filesystem{Type: "squashfs", Version: fmt.Sprintf("%d.%d", le.Uint16(sb[28:]), le.Uint16(sb[30:])),
		BlockSize: int(le.Uint32(sb[12:])), Size: int64(le.Uint64(sb[40:]) & (1<<62 - 1))}
}

func probeISO9660(b []byte, size int64) *Filesystem {
	pvd := at(b, 0x8000, 2048)
	if pvd == nil || string(pvd[1:6]) != "CD001" || pvd[0] != 1 {
		return nil
	}
	fs := &Filesystem{Type: "iso9660", Label: strings.TrimRight(string(pvd[40:72]), " "), BlockSize: int(binary.LittleEndian.Uint16(pvd[128:]))}
	fs.Size = int64(binary.LittleEndian.Uint32(pvd[80:])) * int64(fs.BlockSize)
	// blkid's UUID: the creation date and time, YYYY-MM-DD-HH-MM-SS-cc
	d := pvd[813:829]
	if isDigits(d) {
		fs.UUID = fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", d[0:4], d[4:6], d[6:8], d[8:10], d[10:12], d[12:14], d[14:16])
	}
	return fs
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func probeNTFS(b []byte, size int64) *Filesystem {
	bs := at(b, 0, 512)
	if bs == nil || string(bs[3:11]) != "NTFS    " || !hasBootSignature(bs) {
		return nil
	}
	le := binary.LittleEndian
	sec := int64(le.Uint16(bs[11:]))
	return &Filesystem{Type: "ntfs", UUID: fmt.Sprintf("%016X", le.Uint64(bs[0x48:])), Size: int64(le.Uint64(bs[0x28:])&(1<<40-1)) * sec, BlockSize: int(sec)}
}

func probeLUKS(b []byte, size int64) *Filesystem {
	h := at(b, 0, 512)
	if h == nil || string(h[:6]) != "LUKS\xba\xbe" {
		return nil
	}
	v := binary.BigEndian.Uint16(h[6:])
	fs := &Filesystem{Type: "crypto_LUKS", Version: strconv.Itoa(int(v)), UUID: cstring(h[168:208])}
	if v == 2 {
		fs.Label = cstring(h[24:72])
	}
	return fs
}

// FAT boot sector (BPB). FAT32 when the root directory entry count is 0.
func probeVFAT(b []byte, size int64) *Filesystem {
	bs := at(b, 0, 512)
	if bs == nil || !hasBootSignature(bs) || (bs[0] != 0xeb && bs[0] != 0xe9) {
		return nil
	}
	le := binary.LittleEndian
	sector := int(le.Uint16(bs[11:]))
	spc := int(bs[13])
	reserved := le.Uint16(bs[14:])
	fats := bs[16]
	media := bs[21]
	if sector < 512 || sector > 4096 || sector&(sector-1) != 0 || spc == 0 || spc&(spc-1) != 0 || reserved == 0 || fats == 0 || fats > 4 || (media < 0xf8 && media != 0xf0) {
		return nil
	}
	rootEntries := le.Uint16(bs[17:])
	total := int64(le.Uint16(bs[19:]))
	if total == 0 {
		total = int64(le.Uint32(bs[32:]))
	}
	fs := &Filesystem{Type: "vfat", BlockSize: sector * spc, Size: total * int64(sector)}
	var label []byte
	var id uint32
	if rootEntries == 0 && le.Uint16(bs[22:]) == 0 {
		fs.Version = "FAT32"
		label, id = bs[71:82], le.Uint32(bs[67:])
		if bs[66] != 0x29 && bs[66] != 0x28 {
			label = nil
		}
	} else {
		// FAT12 or FAT16 by the cluster count, as the FAT specification decides
		fatSectors := int64(le.Uint16(bs[22:]))
		rootSectors := (int64(rootEntries)*32 + int64(sector) - 1) / int64(sector)
		clusters := (total - int64(reserved) - int64(fats)*fatSectors - rootSectors) / int64(spc)
		fs.Version = "FAT16"
		if clusters < 4085 {
			fs.Version = "FAT12"
		}
		label, id = bs[43:54], le.Uint32(bs[39:])
		if bs[38] != 0x29 && bs[38] != 0x28 {
			label = nil
		}
	}
	fs.UUID = fmt.Sprintf("%04X-%04X", id>>16, id&0xffff)
	if l := strings.TrimRight(string(label), " "); l != "NO NAME" {
		fs.Label = l
	}
	return fs
}
