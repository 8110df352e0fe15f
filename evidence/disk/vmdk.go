package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// VMDK hosted sparse extent (VMware "Virtual Disk Format 5.0"), little-endian,
// sectors of 512 bytes:
//
//	0 magic "KDMV"  4 version  8 flags  12 capacity  20 grainSize  28 descriptorOffset
//	36 descriptorSize  44 numGTEsPerGT  48 rgdOffset  56 gdOffset  64 overHead
//	72 uncleanShutdown  73 '\n' ' ' '\r' '\n' (newline check)  77 compressAlgorithm (u16)
//
//	flags: bit 0 newline check valid, bit 1 redundant grain directory, bit 2 GTE 1 means a
//	zeroed grain, bit 16 compressed grains, bit 17 markers (streamOptimized).
//	grain directory: u32 sector offsets of grain tables; grain table: numGTEsPerGT u32 sector
//	offsets of grains (0 = unallocated). A compressed grain starts with a marker
//	(lba u64, size u32) then size bytes of zlib data. gdOffset GD_AT_END (-1): the real
//	header is the footer, 1024 bytes before the end, after a footer marker (type 3).
const (
	vmdkHeaderLen      = 512
	vmdkFlagNLCheck    = 1 << 0
	vmdkFlagRGD        = 1 << 1
	vmdkFlagZeroGTE    = 1 << 2
	vmdkFlagCompressed = 1 << 16
	vmdkFlagMarkers    = 1 << 17
	vmdkGDAtEnd        = 0xffffffffffffffff
	vmdkMarkerFooter   = 3
	vmdkCompressNone   = 0
	vmdkCompressFlate  = 1
	vmdkMaxGrainBytes  = 1 << 20 // 2048 sectors; VMware uses 128 (64 KiB)
	vmdkMaxGTEs        = 4096    // VMware uses 512
	vmdkMaxGDBytes     = 64 << 20
	vmdkMaxDescBytes   = 1 << 20

	cacheVMDKGT    = 3
	cacheVMDKGrain = 4
)

type sparseExtent struct {
	r          readerAtCloser
	path       string
	fileSize   int64
	size       int64 // capacity in bytes
	version    int
	grainSize  int64
	gtes       int64
	gd         []uint32
	gdOffset   int64 // bytes, of the directory in use
	compressed bool
	markers    bool
	zeroGTE    bool
	cache      *cache
	space      uint32 // cache key space of this extent
	parent     io.ReaderAt
	parentSize int64
	parentBase int64 // where this extent starts in the parent's disk
	desc       *descriptor
	notes      []string
}

func (e *sparseExtent) ferr(what string, off int64, format string, args ...any) error {
	return &vfs.FormatError{File: e.path + " vmdk " + what, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// parseSparseExtent reads a KDMV header (and, for GD_AT_END, the footer)
// and the grain directory.
func parseSparseExtent(f readerAtCloser, fileSize int64, path string, c *cache, space uint32) (*sparseExtent, error) {
	e := &sparseExtent{r: f, path: path, fileSize: fileSize, cache: c, space: space}
	h := make([]byte, vmdkHeaderLen)
	if err := readFull(f, h, 0, path+" vmdk sparse header"); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	hdrAt := int64(0) // where the header parsed below lies (the footer, for GD_AT_END)
	if gd := le.Uint64(h[56:]); gd == vmdkGDAtEnd {
		// the footer holds the header with the real directory offset
		if fileSize < 3*512 {
			return nil, e.ferr("footer", 0, "grain directory at end, but the file has no room for a footer")
		}
		m := make([]byte, 512)
		if err := readFull(f, m, fileSize-1536, path+" vmdk footer marker"); err != nil {
			return nil, err
		}
		if le.Uint32(m[8:]) != 0 || le.Uint32(m[12:]) != vmdkMarkerFooter {
			return nil, e.ferr("footer marker", fileSize-1536, "not a footer marker (size %d type %d)", le.Uint32(m[8:]), le.Uint32(m[12:]))
		}
		if err := readFull(f, h, fileSize-1024, path+" vmdk footer"); err != nil {
			return nil, err
		}
		if string(h[:4]) != string(magicVMDK) {
			return nil, e.ferr("footer", fileSize-1024, "no KDMV magic")
		}
		if le.Uint64(h[56:]) == vmdkGDAtEnd {
			return nil, e.ferr("footer", fileSize-1024+56, "the footer's grain directory offset is GD_AT_END too")
		}
		hdrAt = fileSize - 1024
		e.notes = append(e.notes, "grain directory located through the footer (GD_AT_END)")
	}
	e.version = int(le.Uint32(h[4:]))
	if e.version < 1 || e.version > 3 {
		return nil, e.ferr("sparse header", hdrAt+4, "version %d (1-3 are read)", e.version)
	}
	flags := le.Uint32(h[8:])
	if flags&vmdkFlagNLCheck != 0 && (h[73] != '\n' || h[74] != ' ' || h[75] != '\r' || h[76] != '\n') {
		return nil, e.ferr("sparse header", hdrAt+73, "newline check bytes % x altered (the file went through a text-mode transfer?)", h[73:77])
	}
	e.compressed = flags&vmdkFlagCompressed != 0
	e.markers = flags&vmdkFlagMarkers != 0
	e.zeroGTE = flags&vmdkFlagZeroGTE != 0
	if e.compressed {
		if alg := le.Uint16(h[77:]); alg != vmdkCompressFlate {
			return nil, e.ferr("sparse header", hdrAt+77, "compressAlgorithm %d (1, deflate, is read)", alg)
		}
	}
	capacity := le.Uint64(h[12:])
	if capacity > maxVirtualSize/512 {
		return nil, e.ferr("sparse header", hdrAt+12, "capacity %d sectors too large", capacity)
	}
	e.size = int64(capacity) * 512
	grain := le.Uint64(h[20:])
	if grain == 0 || grain&(grain-1) != 0 || grain*512 > vmdkMaxGrainBytes {
		return nil, e.ferr("sparse header", hdrAt+20, "grainSize %d sectors (a power of two up to %d)", grain, vmdkMaxGrainBytes/512)
	}
	e.grainSize = int64(grain) * 512
	e.gtes = int64(le.Uint32(h[44:]))
	if e.gtes < 1 || e.gtes > vmdkMaxGTEs {
		return nil, e.ferr("sparse header", hdrAt+44, "numGTEsPerGT %d out of range 1-%d", e.gtes, vmdkMaxGTEs)
	}
	descOff, descLen := le.Uint64(h[28:]), le.Uint64(h[36:])
	if descOff != 0 && descLen != 0 {
		if descLen*512 > vmdkMaxDescBytes || descOff > uint64(fileSize)/512 || (descOff+descLen)*512 > uint64(fileSize) {
			return nil, e.ferr("embedded descriptor", hdrAt+28, "%d sectors at sector %d lie outside the file or past %d bytes", descLen, descOff, vmdkMaxDescBytes)
		}
		text := make([]byte, descLen*512)
		if err := readFull(f, text, int64(descOff)*512, path+" vmdk embedded descriptor"); err != nil {
			return nil, err
		}
		if i := indexByte(text, 0); i >= 0 {
			text = text[:i]
		}
		d, err := parseDescriptor(text, path+" vmdk embedded descriptor", int64(descOff)*512)
		if err != nil {
			return nil, err
		}
		e.desc = d
	}

	coverage := e.grainSize * e.gtes
	nGD := ceilDiv(e.size, coverage)
	if nGD*4 > vmdkMaxGDBytes {
		return nil, e.ferr("grain directory", hdrAt+56, "%d entries over the %d-byte bound", nGD, vmdkMaxGDBytes)
	}
	gdSec, rgdSec := le.Uint64(h[56:]), le.Uint64(h[48:])
	gd, gdErr := e.loadGD(gdSec, nGD, "grain directory")
	if gdErr == nil {
		e.gd, e.gdOffset = gd, int64(gdSec)*512
		return e, nil
	}
	if flags&vmdkFlagRGD != 0 && rgdSec != 0 {
		rgd, rErr := e.loadGD(rgdSec, nGD, "redundant grain directory")
		if rErr == nil {
			e.gd, e.gdOffset = rgd, int64(rgdSec)*512
			e.notes = append(e.notes, fmt.Sprintf("primary grain directory unusable (%v): the redundant one is read", gdErr))
			return e, nil
		}
		return nil, errors.Join(gdErr, rErr)
	}
	return nil, gdErr
}

// loadGD reads n directory entries at sector sec and checks that every grain
// table they name lies inside the file.
func (e *sparseExtent) loadGD(sec uint64, n int64, what string) ([]uint32, error) {
	if n == 0 {
		return nil, nil
	}
	if sec == 0 || sec > uint64(e.fileSize)/512 || int64(sec)*512+n*4 > e.fileSize {
		return nil, e.ferr(what, int64(min(sec, 1<<40))*512, "%d entries at sector %d lie outside the file (%d bytes)", n, sec, e.fileSize)
	}
	raw := make([]byte, n*4)
	off := int64(sec) * 512
	if err := readFull(e.r, raw, off, e.path+" vmdk "+what); err != nil {
		return nil, err
	}
	gd := make([]uint32, n)
	for i := range gd {
		gd[i] = binary.LittleEndian.Uint32(raw[i*4:])
		if gd[i] == 0 {
			continue
		}
		if int64(gd[i])*512+e.gtes*4 > e.fileSize {
			return nil, e.ferr(what, off+int64(i)*4, "entry %d: grain table at sector %d lies outside the file (%d bytes)", i, gd[i], e.fileSize)
		}
	}
	return gd, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (e *sparseExtent) ReadAt(p []byte, off int64) (int, error) {
	return readBlocks(p, off, e.size, e.grainSize, e.readGrain)
}

func (e *sparseExtent) readGrain(p []byte, g, in int64) error {
	gdi, gti := g/e.gtes, g%e.gtes
	if gdi >= int64(len(e.gd)) || e.gd[gdi] == 0 {
		return e.unallocated(p, g, in)
	}
	gtOff := int64(e.gd[gdi]) * 512
	gt, err := e.cache.load(cacheKey{e.space<<8 | cacheVMDKGT, gtOff}, func() ([]byte, error) {
		b := make([]byte, e.gtes*4)
		return b, readFull(e.r, b, gtOff, e.path+" vmdk grain table")
	})
	if err != nil {
		return err
	}
	gte := int64(binary.LittleEndian.Uint32(gt[gti*4:]))
	gteAt := gtOff + gti*4
	switch {
	case gte == 0:
		return e.unallocated(p, g, in)
	case gte == 1 && e.zeroGTE:
		zero(p)
		return nil
	}
	goff := gte * 512
	if goff >= e.fileSize {
		return e.ferr("grain table", gteAt, "grain %d at sector %d lies outside the file (%d bytes)", g, gte, e.fileSize)
	}
	want := min(e.grainSize, e.size-g*e.grainSize) // the last grain may be short
	if !e.compressed {
		if goff+in+int64(len(p)) > e.fileSize {
			return e.ferr("grain table", gteAt, "grain %d at sector %d runs past the end of the file (%d bytes)", g, gte, e.fileSize)
		}
		return readFull(e.r, p, goff+in, e.path+" vmdk grain")
	}
	data, err := e.cache.load(cacheKey{e.space<<8 | cacheVMDKGrain, goff}, func() ([]byte, error) {
		return e.inflateGrain(goff, g, want, gteAt)
	})
	if err != nil {
		return err
	}
	copy(p, data[in:])
	return nil
}

func (e *sparseExtent) inflateGrain(goff, g, want, gteAt int64) ([]byte, error) {
	var src []byte
	if e.markers {
		m := make([]byte, 12)
		if err := readFull(e.r, m, goff, e.path+" vmdk grain marker"); err != nil {
			return nil, err
		}
		lba := binary.LittleEndian.Uint64(m)
		size := int64(binary.LittleEndian.Uint32(m[8:]))
		if lba != uint64(g*e.grainSize/512) {
			return nil, e.ferr("grain marker", goff, "LBA %d, but grain table entry %d (at %d) is for grain %d (LBA %d)", lba, g, gteAt, g, g*e.grainSize/512)
		}
		if size == 0 || size > 2*e.grainSize+1024 || goff+12+size > e.fileSize {
			return nil, e.ferr("grain marker", goff, "compressed size %d out of range (grain %d bytes, file %d bytes)", size, e.grainSize, e.fileSize)
		}
		src = make([]byte, size)
		if err := readFull(e.r, src, goff+12, e.path+" vmdk compressed grain"); err != nil {
			return nil, err
		}
	} else {
		n := min(2*e.grainSize+1024, e.fileSize-goff)
		src = make([]byte, n)
		if err := readFull(e.r, src, goff, e.path+" vmdk compressed grain"); err != nil {
			return nil, err
		}
	}
	out := make([]byte, e.grainSize)
	if err := inflateZlib(src, out[:want]); err != nil {
		return nil, &vfs.FormatError{File: e.path + " vmdk compressed grain", Offset: goff, Err: err}
	}
	return out, nil
}

func (e *sparseExtent) unallocated(p []byte, g, in int64) error {
	if e.parent == nil {
		zero(p)
		return nil
	}
	if err := readParent(p, e.parent, e.parentBase+g*e.grainSize+in, e.parentSize); err != nil {
		return fmt.Errorf("%s: vmdk parent: %w", e.path, err)
	}
	return nil
}

// vmdkImage is a KDMV file opened as a whole disk.
type vmdkImage struct {
	*sparseExtent
	parentImg Image
	parentRef string
}

func openVMDKSparse(f readerAtCloser, fileSize int64, path string, opts *Options, depth int) (Image, error) {
	e, err := parseSparseExtent(f, fileSize, path, newCache(opts.CacheBytes), 0)
	if err != nil {
		return nil, err
	}
	img := &vmdkImage{sparseExtent: e}
	if e.desc != nil && e.desc.hasParent() {
		img.parentRef = e.desc.parentHint
		if opts.Backing == nil {
			return nil, &BackingFileError{Path: path, Backing: e.desc.parentHint}
		}
		if depth >= maxBackingHops {
			return nil, fmt.Errorf("%s: parent chain deeper than %d images", path, maxBackingHops)
		}
		p, note, err := openBacking(opts, path, e.desc.parentHint, "vmdk")
		if err != nil {
			return nil, fmt.Errorf("%s: vmdk parent %q: %w", path, e.desc.parentHint, err)
		}
		img.parentImg, img.notes = p, append(img.notes, note)
		e.parent, e.parentSize = p, p.Size()
	}
	return img, nil
}

func (m *vmdkImage) Size() int64 { return m.size }
func (m *vmdkImage) Format() Format {
	if m.compressed && m.markers {
		return VMDKStream
	}
	return VMDKSparse
}
func (m *vmdkImage) Close() error { return closeWithParent(m.r, m.parentImg) }
func (m *vmdkImage) Info() Info {
	in := Info{Format: m.Format(), Size: m.size, Files: []string{m.path}, Version: m.version,
		ClusterSize: m.grainSize, BackingFile: m.parentRef, Notes: m.notes}
	if m.compressed {
		in.Compression = "deflate"
	}
	in.Backing = parentInfo(m.parentImg)
	return in
}
