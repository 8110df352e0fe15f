package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"slices"
	"strings"
)

// The cache stores an archive's index in one file:
//
//	magic "deadnode index\x00" version(1 byte)
//	header   identity (dev, ino, size, mtime s, ns, ctime s, ns), options hash [32],
//	         sha256 of the evidence file [32], compression
//	nodes    count, then per node: name, link, parent+1, kid0, nkids, ino,
//	         mode, uid, gid, nlink, dev major, minor, flags, size, data
//	         offset, header offset, 4 × (seconds, nanoseconds)
//	kids     count, then node ids (each directory's children, by name)
//	xattrs   count, then per node: id, count, (name, value)*
//	sparse   count, then per node: id, count, (offset, length, place in data)*
//	warnings count, then (file, offset, message)*, then the count left out
//	trailer  sha256 of everything before it
//
// Numbers are varints, strings and byte strings a length and the bytes.
// The file is outside the evidence but still input: decodeIndex bounds
// every count, length, id and offset, and checks the tree's shape.
const (
	indexMagic   = "deadnode index\x00"
	indexVersion = 3 // 3: attribute names count against the bounds
)

// identity is what identifies an evidence file for the cache: device,
// inode, size, mtime and ctime (which no one can set back: any change to
// the file, its mode or its times moves it).
type identity struct {
	Dev, Ino  uint64
	Size      int64
	MtimeSec  int64
	MtimeNsec int64
	CtimeSec  int64
	CtimeNsec int64
}

type indexHeader struct {
	id   identity
	opts [32]byte
	sha  [32]byte
	comp Compression
}

func encodeIndex(a *Archive, h indexHeader) []byte {
	b := make([]byte, 0, 64+a.n()*48)
	b = append(b, indexMagic...)
	b = append(b, indexVersion)
	b = binary.AppendUvarint(b, h.id.Dev)
	b = binary.AppendUvarint(b, h.id.Ino)
	b = binary.AppendVarint(b, h.id.Size)
	b = binary.AppendVarint(b, h.id.MtimeSec)
	b = binary.AppendVarint(b, h.id.MtimeNsec)
	b = binary.AppendVarint(b, h.id.CtimeSec)
	b = binary.AppendVarint(b, h.id.CtimeNsec)
	b = append(b, h.opts[:]...)
	b = append(b, h.sha[:]...)
	b = appendStr(b, string(h.comp))
	b = binary.AppendUvarint(b, uint64(a.n()))
	for i := range a.count {
		n := a.nd(i)
		b = appendStr(b, n.name)
		b = appendStr(b, a.link(i))
		for _, v := range []uint64{uint64(n.parent + 1), uint64(n.kid0), uint64(n.nkids), uint64(n.ino), uint64(n.mode), uint64(n.uid), uint64(n.gid), uint64(n.nlink), uint64(n.devMajor), uint64(n.devMinor), uint64(n.flags)} {
			b = binary.AppendUvarint(b, v)
		}
		b = binary.AppendVarint(b, n.size)
		b = binary.AppendVarint(b, n.off)
		b = binary.AppendVarint(b, n.hdrOff)
		for t := 0; t < 4; t++ {
			b = binary.AppendVarint(b, n.sec[t])
			b = binary.AppendUvarint(b, uint64(n.nsec[t]))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(a.kids)))
	for _, k := range a.kids {
		b = binary.AppendUvarint(b, uint64(k))
	}
	b = appendTable(b, a.count, a.xattrs, func(b []byte, xs map[string][]byte) []byte {
		b = binary.AppendUvarint(b, uint64(len(xs)))
		for _, k := range sortedKeys(xs) {
			b = appendStr(b, k)
			b = appendStr(b, string(xs[k]))
		}
		return b
	})
	b = appendTable(b, a.count, a.sparse, func(b []byte, sp []SparseFragment) []byte {
		b = binary.AppendUvarint(b, uint64(len(sp)))
		for _, f := range sp {
			b = binary.AppendVarint(b, f.Offset)
			b = binary.AppendVarint(b, f.Length)
			b = binary.AppendVarint(b, f.Physical)
		}
		return b
	})
	b = binary.AppendUvarint(b, uint64(len(a.warnings)))
	for _, w := range a.warnings {
		b = appendStr(b, w.File)
		b = binary.AppendVarint(b, w.Offset)
		b = appendStr(b, w.Msg)
	}
	b = binary.AppendUvarint(b, uint64(a.moreWarn))
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// appendTable writes a side table of entries: its count, then each
// entry's id and value, in id order.
func appendTable[T any](b []byte, n int32, m map[int32]T, value func([]byte, T) []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for i := range n {
		if v, ok := m[i]; ok {
			b = binary.AppendUvarint(b, uint64(i))
			b = value(b, v)
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func sortedKeys(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }

var errIndex = errors.New("cache index is damaged or foreign")

// dec reads the index with every read bounded by what is left.
type dec struct {
	s   string
	p   int
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", errIndex, what, d.p)
	}
}

func (d *dec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if d.p >= len(d.s) {
			break
		}
		c := d.s[d.p]
		d.p++
		if shift == 63 && c > 1 {
			break
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	d.fail("number")
	return 0
}

func (d *dec) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// small reads a number that must be at most max.
func (d *dec) small(max uint64, what string) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail(what)
		return 0
	}
	return v
}

func (d *dec) str(max int) string {
	n := d.small(uint64(max), "string length")
	if d.err != nil {
		return ""
	}
	if int(n) > len(d.s)-d.p {
		d.fail("string past the end")
		return ""
	}
	s := d.s[d.p : d.p+int(n)]
	d.p += int(n)
	return s
}

func (d *dec) raw(n int) string {
	if d.err != nil || n > len(d.s)-d.p {
		d.fail("short header")
		return ""
	}
	s := d.s[d.p : d.p+n]
	d.p += n
	return s
}

// decodeIndex reads an index written by encodeIndex. dataSize is the size
// of the entry's data file: every retained member must lie inside it.
func decodeIndex(buf []byte, dataSize int64, name string) (*Archive, indexHeader, error) {
	var h indexHeader
	if len(buf) < len(indexMagic)+1+sha256.Size || string(buf[:len(indexMagic)]) != indexMagic || buf[len(indexMagic)] != indexVersion {
		return nil, h, fmt.Errorf("%w: not an index of this version", errIndex)
	}
	body, sum := buf[:len(buf)-sha256.Size], buf[len(buf)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) {
		return nil, h, fmt.Errorf("%w: checksum mismatch", errIndex)
	}
	d := &dec{s: string(body), p: len(indexMagic) + 1}
	h.id = identity{Dev: d.uvarint(), Ino: d.uvarint(), Size: d.varint(), MtimeSec: d.varint(), MtimeNsec: d.varint(), CtimeSec: d.varint(), CtimeNsec: d.varint()}
	copy(h.opts[:], d.raw(32))
	copy(h.sha[:], d.raw(32))
	h.comp = Compression(d.str(16))
	left := func() uint64 { return uint64(len(d.s) - d.p) }
	// A node takes at least 31 bytes, a kid 1, an xattr entry 3, a
	// warning 3: counts past what is left are lies.
	nn := d.small(min(left()/31, math.MaxInt32), "node count")
	if d.err == nil && nn == 0 {
		d.fail("no root")
	}
	if d.err != nil {
		return nil, h, d.err
	}
	a := &Archive{name: name, compression: h.comp}
	for i := int32(0); i < int32(nn); i++ {
		var n anode
		n.name = d.str(1 << 20)
		link := d.str(1 << 20)
		parent := d.small(uint64(i), "parent")
		n.parent = int32(parent) - 1
		n.kid0 = int32(d.small(math.MaxInt32, "kid offset"))
		n.nkids = int32(d.small(math.MaxInt32, "kid count"))
		n.ino = uint32(d.small(math.MaxUint32, "inode"))
		n.mode = fs.FileMode(d.small(math.MaxUint32, "mode"))
		n.uid = uint32(d.small(math.MaxUint32, "uid"))
		n.gid = uint32(d.small(math.MaxUint32, "gid"))
		n.nlink = uint32(d.small(math.MaxUint32, "nlink"))
		n.devMajor = uint32(d.small(math.MaxUint32, "device"))
		n.devMinor = uint32(d.small(math.MaxUint32, "device"))
		n.flags = uint16(d.small(fXattrs<<1-1, "flags"))
		n.size, n.off, n.hdrOff = d.varint(), d.varint(), d.varint()
		for t := 0; t < 4; t++ {
			n.sec[t] = d.varint()
			n.nsec[t] = uint32(d.small(999999999, "nanoseconds"))
		}
		if d.err != nil {
			return nil, h, d.err
		}
		switch {
		case i == 0 && (n.parent != -1 || n.name != "." || !n.mode.IsDir()):
			d.fail("root")
		case i > 0 && (n.parent < 0 || n.name == "" || n.name == "." || n.name == ".." || strings.ContainsAny(n.name, "/\x00")):
			d.fail("node name")
		case n.size < 0 || n.flags&(fSparse|fRetained) != 0 && n.flags&fInSpill == 0:
			d.fail("node data")
		case n.flags&(fInSpill|fSparse) == fInSpill && (n.off < 0 || n.off > dataSize || n.size > dataSize-n.off):
			d.fail("data outside the data file")
		}
		if d.err != nil {
			return nil, h, d.err
		}
		a.setLink(a.push(n), link)
	}
	nk := d.small(min(left(), uint64(a.n())), "kid count")
	if d.err != nil {
		return nil, h, d.err
	}
	a.kids = make([]int32, nk)
	for i := range a.kids {
		a.kids[i] = int32(d.small(uint64(a.n()-1), "kid"))
	}
	if d.err != nil {
		return nil, h, d.err
	}
	for i := range a.count {
		n := a.nd(i)
		if int64(n.kid0)+int64(n.nkids) > int64(len(a.kids)) || n.nkids > 0 && !n.mode.IsDir() {
			return nil, h, fmt.Errorf("%w: children of node %d", errIndex, i)
		}
		ks := a.kidsOf(int32(i))
		for j, k := range ks {
			if a.nd(k).parent != int32(i) || j > 0 && a.nd(ks[j-1]).name >= a.nd(k).name {
				return nil, h, fmt.Errorf("%w: children of node %d", errIndex, i)
			}
		}
	}
	nx := d.small(min(left()/3, uint64(a.n())), "xattr count")
	for i := uint64(0); i < nx && d.err == nil; i++ {
		id := d.small(uint64(a.n()-1), "xattr node")
		cnt := d.small(left()/2, "xattr count")
		xs := map[string][]byte{}
		for j := uint64(0); j < cnt && d.err == nil; j++ {
			k := d.str(1 << 16)
			xs[k] = []byte(d.str(MaxXattrSize))
		}
		if a.xattrs == nil {
			a.xattrs = map[int32]map[string][]byte{}
		}
		a.xattrs[int32(id)] = xs
	}
	ns := d.small(min(left()/2, uint64(a.n())), "sparse count")
	total := 0
	for i := uint64(0); i < ns && d.err == nil; i++ {
		id := int32(d.small(uint64(a.n()-1), "sparse node"))
		cnt := int(d.small(min(left()/3, MaxSparseFragments), "fragment count"))
		total += cnt
		n := a.nd(id)
		if total > 4*MaxSparseFragments || n.flags&fSparse == 0 || a.sparse[id] != nil {
			d.fail("sparse map")
			break
		}
		sp := make([]SparseFragment, cnt)
		end := int64(0)
		for j := range sp {
			f := SparseFragment{Offset: d.varint(), Length: d.varint(), Physical: d.varint()}
			if f.Offset < end || f.Length < 0 || f.Offset > n.size || f.Length > n.size-f.Offset || f.Physical < 0 || f.Physical > dataSize || f.Length > dataSize-f.Physical {
				d.fail("sparse fragment")
				break
			}
			end = f.Offset + f.Length
			sp[j] = f
		}
		if a.sparse == nil {
			a.sparse = map[int32][]SparseFragment{}
		}
		a.sparse[id] = sp
	}
	for i := range a.count {
		if a.nd(i).flags&fSparse != 0 && a.sparse[int32(i)] == nil && d.err == nil {
			d.fail("sparse node without a map")
		}
	}
	nw := d.small(min(left()/3, maxWarnings), "warning count")
	for i := uint64(0); i < nw && d.err == nil; i++ {
		a.warnings = append(a.warnings, Warning{File: d.str(1 << 16), Offset: d.varint(), Msg: d.str(1 << 16)})
	}
	a.moreWarn = int(d.small(math.MaxInt32, "warning count"))
	if d.err == nil && d.p != len(d.s) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, h, d.err
	}
	return a, h, nil
}
