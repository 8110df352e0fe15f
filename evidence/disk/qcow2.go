package disk

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// qcow2 on-disk layout (QEMU's docs/interop/qcow2.txt), all big-endian.
//
//	header   0 magic "QFI\xfb"   4 version (2|3)        8 backing_file_offset  16 backing_file_size
//	        20 cluster_bits      24 size (virtual)     32 crypt_method        36 l1_size
//	        40 l1_table_offset   48 refcount_table_offset 56 refcount_table_clusters
//	        60 nb_snapshots      64 snapshots_offset
//	   v3:  72 incompatible_features  80 compatible_features  88 autoclear_features
//	        96 refcount_order   100 header_length     104 compression_type (when header_length > 104)
//	then header extensions (type u32, length u32, data padded to 8) up to type 0.
//
//	L1 entry: bits 9-55 offset of an L2 table (cluster aligned; 0 = unallocated); bit 63 COPIED.
//	L2 entry: bit 62 compressed, bit 63 COPIED;
//	  standard:   bit 0 all zeros (v3), bits 9-55 host cluster offset (0 = unallocated)
//	  compressed: x = 62 - (cluster_bits - 8); bits 0..x-1 host byte offset,
//	              bits x..61 additional 512-byte sectors beyond the one holding the offset.
const (
	qcowHeaderV2Len = 72
	qcowHeaderV3Len = 104

	qcowIncompatDirty       = 1 << 0
	qcowIncompatCorrupt     = 1 << 1
	qcowIncompatDataFile    = 1 << 2
	qcowIncompatCompression = 1 << 3
	qcowIncompatExtendedL2  = 1 << 4
	qcowIncompatKnown       = qcowIncompatDirty | qcowIncompatCorrupt | qcowIncompatDataFile | qcowIncompatCompression | qcowIncompatExtendedL2

	qcowExtEnd         = 0x00000000
	qcowExtBackingFmt  = 0xe2792aca
	qcowExtFeatures    = 0x6803f857
	qcowExtBitmaps     = 0x23852875
	qcowExtCrypto      = 0x0537be77
	qcowExtDataFile    = 0x44415441
	qcowMaxExtensions  = 256
	qcowMinClusterBits = 9
	qcowMaxClusterBits = 21
	qcowMaxL1Bytes     = 32 << 20 // QEMU's own bound on the L1 table
	qcowMaxBackingName = 1023

	qcowOffsetMask   = 0x00fffffffffffe00
	qcowFlagCompress = 1 << 62
	qcowFlagZero     = 1 << 0

	qcowCompressZlib = 0
	qcowCompressZstd = 1

	cacheQCOWL2   = 1
	cacheQCOWData = 2
)

type qcow2Image struct {
	r           readerAtCloser
	path        string
	fileSize    int64
	size        int64
	version     int
	clusterBits uint
	clusterSize int64
	l2Entries   int64
	l1          []uint64
	l1Offset    int64
	compression int
	backingName string
	backingFmt  string // the backing format extension ("raw", "qcow2" …), "" when absent
	backing     Image
	cache       *cache
	notes       []string
}

func openQCOW2(f readerAtCloser, fileSize int64, path string, opts *Options, depth int) (Image, error) {
	ferr := func(what string, off int64, format string, args ...any) error {
		return &vfs.FormatError{File: path + " qcow2 " + what, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	h := make([]byte, qcowHeaderV3Len+8)
	n, err := f.ReadAt(h, 0)
	if n < qcowHeaderV2Len {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, &vfs.FormatError{File: path + " qcow2 header", Offset: 0, Err: err}
	}
	h = h[:n]
	be := binary.BigEndian
	q := &qcow2Image{r: f, path: path, fileSize: fileSize}
	q.version = int(be.Uint32(h[4:]))
	if q.version == 1 {
		return nil, &UnsupportedError{Path: path, What: "qcow (version 1) image", Hint: "convert it with qemu-img convert -O raw"}
	}
	if q.version != 2 && q.version != 3 {
		return nil, ferr("header", 4, "version %d (2 and 3 are read)", q.version)
	}
	backingOff, backingLen := be.Uint64(h[8:]), be.Uint32(h[16:])
	cb := be.Uint32(h[20:])
	if cb < qcowMinClusterBits || cb > qcowMaxClusterBits {
		return nil, ferr("header", 20, "cluster_bits %d out of range %d-%d", cb, qcowMinClusterBits, qcowMaxClusterBits)
	}
	q.clusterBits = uint(cb)
	q.clusterSize = 1 << cb
	q.l2Entries = q.clusterSize / 8
	vsize := be.Uint64(h[24:])
	if vsize > maxVirtualSize {
		return nil, ferr("header", 24, "virtual size %d too large", vsize)
	}
	q.size = int64(vsize)
	if crypt := be.Uint32(h[32:]); crypt != 0 {
		what := "qcow2 encryption"
		switch crypt {
		case 1:
			what = "qcow2 AES encryption"
		case 2:
			what = "qcow2 LUKS encryption"
		}
		return nil, &UnsupportedError{Path: path, What: what, Hint: "decrypt it with qemu-img convert --object secret,... -O raw"}
	}
	l1Size := int64(be.Uint32(h[36:]))
	q.l1Offset = int64(be.Uint64(h[40:]) & (1<<63 - 1))
	if be.Uint64(h[40:])>>63 != 0 {
		return nil, ferr("header", 40, "l1_table_offset %#x out of range", be.Uint64(h[40:]))
	}
	hdrLen := int64(qcowHeaderV2Len)
	if q.version == 3 {
		if len(h) < qcowHeaderV3Len {
			return nil, ferr("header", 0, "v3 header truncated (%d bytes)", len(h))
		}
		incompat := be.Uint64(h[72:])
		hdrLen = int64(be.Uint32(h[100:]))
		if hdrLen < qcowHeaderV3Len || hdrLen > q.clusterSize || hdrLen%8 != 0 {
			return nil, ferr("header", 100, "header_length %d out of range", hdrLen)
		}
		if unknown := incompat &^ qcowIncompatKnown; unknown != 0 {
			return nil, &UnsupportedError{Path: path, What: fmt.Sprintf("qcow2 incompatible features %#x", unknown), Hint: "convert it with a recent qemu-img convert -O raw"}
		}
		if incompat&qcowIncompatExtendedL2 != 0 {
			return nil, &UnsupportedError{Path: path, What: "qcow2 extended L2 entries (subclusters)", Hint: "convert it with qemu-img convert -O qcow2 -o extended_l2=off (or -O raw)"}
		}
		if incompat&qcowIncompatDataFile != 0 {
			return nil, &UnsupportedError{Path: path, What: "qcow2 with an external data file", Hint: "convert it with qemu-img convert -O raw"}
		}
		if incompat&qcowIncompatCorrupt != 0 {
			q.notes = append(q.notes, "qcow2 header marks the image corrupt: tables were checked while reading")
		}
		if incompat&qcowIncompatDirty != 0 {
			q.notes = append(q.notes, "qcow2 image was not closed cleanly (dirty bit; refcounts may be stale, which reading does not use)")
		}
		if incompat&qcowIncompatCompression != 0 {
			if hdrLen <= qcowHeaderV3Len || len(h) <= qcowHeaderV3Len {
				return nil, ferr("header", 100, "compression type flagged but header_length %d has no compression_type field", hdrLen)
			}
			q.compression = int(h[104])
		}
		if q.compression != qcowCompressZlib && q.compression != qcowCompressZstd {
			return nil, ferr("header", 104, "compression_type %d (0 zlib and 1 zstd are read)", q.compression)
		}
	}
	if hdrLen > fileSize {
		return nil, ferr("header", 0, "header of %d bytes in a file of %d", hdrLen, fileSize)
	}

	// header extensions: read the first cluster once (bounded: extensions must lie in it)
	first := make([]byte, min(q.clusterSize, fileSize))
	if err := readFull(f, first, 0, path+" qcow2 header cluster"); err != nil {
		return nil, err
	}
	if err := q.readExtensions(first, hdrLen); err != nil {
		return nil, err
	}

	// backing file name
	if backingOff != 0 {
		if backingLen == 0 || backingLen > qcowMaxBackingName {
			return nil, ferr("header", 16, "backing_file_size %d out of range 1-%d", backingLen, qcowMaxBackingName)
		}
		if backingOff > uint64(len(first)) || backingOff+uint64(backingLen) > uint64(len(first)) {
			return nil, ferr("backing file name", int64(min(backingOff, 1<<62)), "%d bytes at %d lie outside the first cluster", backingLen, backingOff)
		}
		q.backingName = string(first[backingOff : backingOff+uint64(backingLen)])
	}

	// L1 table
	need := ceilDiv(q.size, q.clusterSize*q.l2Entries)
	if l1Size < need {
		return nil, ferr("L1 table", q.l1Offset, "l1_size %d too small for %d bytes (needs %d entries)", l1Size, q.size, need)
	}
	if l1Size*8 > qcowMaxL1Bytes {
		return nil, ferr("L1 table", q.l1Offset, "l1_size %d over the %d-byte bound", l1Size, qcowMaxL1Bytes)
	}
	if need > 0 {
		if q.l1Offset%q.clusterSize != 0 {
			return nil, ferr("L1 table", q.l1Offset, "not cluster aligned")
		}
		if q.l1Offset < q.clusterSize || q.l1Offset+need*8 > fileSize {
			return nil, ferr("L1 table", q.l1Offset, "%d entries lie outside the file (%d bytes)", need, fileSize)
		}
		raw := make([]byte, need*8)
		if err := readFull(f, raw, q.l1Offset, path+" qcow2 L1 table"); err != nil {
			return nil, err
		}
		q.l1 = make([]uint64, need)
		for i := range q.l1 {
			q.l1[i] = be.Uint64(raw[i*8:])
		}
	}
	q.cache = newCache(opts.CacheBytes)

	if q.backingName != "" {
		if opts.Backing == nil {
			return nil, &BackingFileError{Path: path, Backing: q.backingName}
		}
		if depth >= maxBackingHops {
			return nil, fmt.Errorf("%s: backing chain deeper than %d images", path, maxBackingHops)
		}
		b, note, err := openBacking(opts, path, q.backingName, q.backingFmt)
		if err != nil {
			return nil, fmt.Errorf("%s: backing file %q: %w", path, q.backingName, err)
		}
		q.backing, q.notes = b, append(q.notes, note)
	}
	return q, nil
}

func (q *qcow2Image) readExtensions(first []byte, off int64) error {
	be := binary.BigEndian
	for i := 0; ; i++ {
		if i >= qcowMaxExtensions {
			return &vfs.FormatError{File: q.path + " qcow2 header extension", Offset: off, Msg: fmt.Sprintf("more than %d extensions", qcowMaxExtensions)}
		}
		if off+8 > int64(len(first)) {
			// no end marker within the first cluster: v2 images may end the header here
			if q.version == 2 {
				return nil
			}
			return &vfs.FormatError{File: q.path + " qcow2 header extension", Offset: off, Msg: "runs past the first cluster"}
		}
		typ, length := be.Uint32(first[off:]), int64(be.Uint32(first[off+4:]))
		if typ == qcowExtEnd {
			return nil
		}
		dataOff := off + 8
		if length > int64(len(first))-dataOff {
			return &vfs.FormatError{File: q.path + " qcow2 header extension", Offset: off, Msg: fmt.Sprintf("type %#x length %d runs past the first cluster", typ, length)}
		}
		switch typ {
		case qcowExtBackingFmt:
			if length > qcowMaxBackingName {
				return &vfs.FormatError{File: q.path + " qcow2 header extension", Offset: off, Msg: fmt.Sprintf("backing format of %d bytes", length)}
			}
			q.backingFmt = string(first[dataOff : dataOff+length])
		case qcowExtCrypto:
			return &UnsupportedError{Path: q.path, What: "qcow2 encryption (full disk encryption header)", Hint: "decrypt it with qemu-img convert --object secret,... -O raw"}
		case qcowExtDataFile:
			return &UnsupportedError{Path: q.path, What: fmt.Sprintf("qcow2 with an external data file %q", first[dataOff:dataOff+length]), Hint: "convert it with qemu-img convert -O raw"}
		}
		off = dataOff + (length+7)&^7
	}
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

func (q *qcow2Image) Size() int64    { return q.size }
func (q *qcow2Image) Format() Format { return QCOW2 }
func (q *qcow2Image) Close() error   { return closeWithParent(q.r, q.backing) }

func (q *qcow2Image) Info() Info {
	in := Info{Format: QCOW2, Size: q.size, Files: []string{q.path}, Version: q.version,
		ClusterSize: q.clusterSize, BackingFile: q.backingName, Notes: q.notes}
	in.Compression = "zlib"
	if q.compression == qcowCompressZstd {
		in.Compression = "zstd"
	}
	in.Backing = parentInfo(q.backing)
	return in
}

func (q *qcow2Image) ReadAt(p []byte, off int64) (int, error) {
	return readBlocks(p, off, q.size, q.clusterSize, q.readCluster)
}

// readCluster fills p from virtual cluster vc at byte in within it.
func (q *qcow2Image) readCluster(p []byte, vc, in int64) error {
	l1i, l2i := vc/q.l2Entries, vc%q.l2Entries
	if l1i >= int64(len(q.l1)) {
		return q.unallocated(p, vc, in)
	}
	l1e := q.l1[l1i]
	l2Off := int64(l1e & qcowOffsetMask)
	if l2Off == 0 {
		return q.unallocated(p, vc, in)
	}
	l1At := q.l1Offset + l1i*8
	if l2Off&(q.clusterSize-1) != 0 {
		return &vfs.FormatError{File: q.path + " qcow2 L1 table", Offset: l1At, Msg: fmt.Sprintf("entry %d: L2 table offset %#x not cluster aligned", l1i, l2Off)}
	}
	if l2Off < q.clusterSize || l2Off+q.clusterSize > q.fileSize {
		return &vfs.FormatError{File: q.path + " qcow2 L1 table", Offset: l1At, Msg: fmt.Sprintf("entry %d: L2 table at %#x lies outside the file (%d bytes)", l1i, l2Off, q.fileSize)}
	}
	l2, err := q.cache.load(cacheKey{cacheQCOWL2, l2Off}, func() ([]byte, error) {
		b := make([]byte, q.clusterSize)
		return b, readFull(q.r, b, l2Off, q.path+" qcow2 L2 table")
	})
	if err != nil {
		return err
	}
	e := binary.BigEndian.Uint64(l2[l2i*8:])
	l2At := l2Off + l2i*8
	if e&qcowFlagCompress != 0 {
		return q.readCompressed(p, e, in, l2At)
	}
	host := int64(e & qcowOffsetMask)
	if e&qcowFlagZero != 0 {
		if q.version < 3 {
			return &vfs.FormatError{File: q.path + " qcow2 L2 table", Offset: l2At, Msg: fmt.Sprintf("zero flag in a version 2 image (entry %#x)", e)}
		}
		zero(p)
		return nil
	}
	if host == 0 {
		return q.unallocated(p, vc, in)
	}
	if host&(q.clusterSize-1) != 0 {
		return &vfs.FormatError{File: q.path + " qcow2 L2 table", Offset: l2At, Msg: fmt.Sprintf("data cluster offset %#x not cluster aligned", host)}
	}
	if host < q.clusterSize || host+in+int64(len(p)) > q.fileSize {
		return &vfs.FormatError{File: q.path + " qcow2 L2 table", Offset: l2At, Msg: fmt.Sprintf("data cluster at %#x lies outside the file (%d bytes)", host, q.fileSize)}
	}
	return readFull(q.r, p, host+in, q.path+" qcow2 data cluster")
}

func (q *qcow2Image) readCompressed(p []byte, e uint64, in, l2At int64) error {
	x := 62 - (q.clusterBits - 8)
	coff := int64(e & (1<<x - 1))
	nsec := int64(e>>x) & (1<<(q.clusterBits-8) - 1)
	csize := (nsec+1)*512 - coff&511
	if coff >= q.fileSize || coff < q.clusterSize {
		return &vfs.FormatError{File: q.path + " qcow2 L2 table", Offset: l2At, Msg: fmt.Sprintf("compressed cluster at %#x lies outside the file (%d bytes)", coff, q.fileSize)}
	}
	// the last compressed cluster's sector count may run past the file's end: read what is there
	csize = min(csize, q.fileSize-coff)
	data, err := q.cache.load(cacheKey{cacheQCOWData, coff}, func() ([]byte, error) {
		src := make([]byte, csize)
		if err := readFull(q.r, src, coff, q.path+" qcow2 compressed cluster"); err != nil {
			return nil, err
		}
		out := make([]byte, q.clusterSize)
		var err error
		if q.compression == qcowCompressZstd {
			err = unzstd(src, out)
		} else {
			err = inflateRaw(src, out)
		}
		if err != nil {
			return nil, &vfs.FormatError{File: q.path + " qcow2 compressed cluster", Offset: coff, Err: err}
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	copy(p, data[in:])
	return nil
}

// unallocated fills p from the backing image, or with zeros without one.
func (q *qcow2Image) unallocated(p []byte, vc, in int64) error {
	if q.backing == nil {
		zero(p)
		return nil
	}
	if err := readParent(p, q.backing, vc<<q.clusterBits+in, q.backing.Size()); err != nil {
		return fmt.Errorf("%s: backing file %q: %w", q.path, q.backingName, err)
	}
	return nil
}
