package boltdb

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// The bbolt file format (go.etcd.io/bbolt, internal/common), as far as a
// read-only transaction walks it:
//
//	page       = header (16 bytes) + elements + keys/values, spanning
//	             (1 + overflow) × pageSize bytes
//	header     = id u64 | flags u16 | count u16 | overflow u32
//	             flags: 0x01 branch, 0x02 leaf, 0x04 meta, 0x10 freelist
//	meta       = page 0 and page 1, after the header:
//	             magic u32 (0xED0CDAED) | version u32 (2) | pageSize u32 |
//	             flags u32 | root bucket (root u64, sequence u64) |
//	             freelist u64 | pgid u64 (high-water mark) | txid u64 |
//	             checksum u64 (FNV-64a of the 56 bytes before it)
//	branch elt = pos u32 | ksize u32 | pgid u64    (16 bytes)
//	leaf elt   = flags u32 | pos u32 | ksize u32 | vsize u32 (16 bytes)
//	             flags 0x01: the value is a bucket
//	             pos is counted from the element's own first byte
//	bucket     = root u64 | sequence u64; root 0 is an inline bucket whose
//	             leaf page (header + elements + data) follows in the value
//
// bbolt trusts all of it: a child id past the mapping indexes out of range,
// a branch page that points back at itself makes its recursive search
// overflow the goroutine stack (a fatal error no recover() contains), an
// element count larger than the page reads whatever follows. check walks
// the tree of the meta page bbolt will use, every page once, bounded in
// depth, before bbolt sees the file, and cuts what is damaged out of the
// private copy: a branch element that points at a damaged page is removed
// from its branch, a bucket whose root is damaged stops being a bucket (its
// key stays, as a plain value). What bbolt then walks is a tree.
const (
	pageHeaderSize   = 16
	elementSize      = 16
	bucketHeaderSize = 16

	flagBranch = 0x01
	flagLeaf   = 0x02
	bucketFlag = 0x01

	metaMagic   = 0xED0CDAED
	metaVersion = 2
	metaSumSize = 56 // bytes of the meta covered by its checksum

	// maxTreeLevels bounds the branch levels of one bucket's B+tree: a
	// tree of 2^24 pages with two children a branch is 24 levels deep.
	maxTreeLevels = 32
	// maxBucketDepth bounds the nesting of buckets.
	maxBucketDepth = 64
	// maxWarnings bounds the damage reported for one database.
	maxWarnings = 1000
	// maxNameInPath bounds a bucket name quoted in a warning.
	maxNameInPath = 256
	// maxBucketOffsets bounds the buckets whose offset is remembered, and
	// maxOffsetDepth how deep they may be: records are found at most five
	// buckets down (containerd's v1/<ns>/snapshots/<snapshotter>/<key>).
	maxBucketOffsets = 1 << 17
	maxOffsetDepth   = 5
)

// belowNotRead ends the warning about a page cut out.
const belowNotRead = "; what is below it is not read"

// meta is the part of a meta page the check uses.
type meta struct {
	id       uint64 // of the meta page: 0 or 1
	pageSize uint32
	root     uint64
	pgid     uint64
	txid     uint64
}

// parseMeta decodes and validates a meta page's body (b starts after the
// page header), as bbolt's Meta.Validate does.
func parseMeta(b []byte) (meta, bool) {
	if len(b) < metaSumSize+8 {
		return meta{}, false
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != metaMagic || le.Uint32(b[4:]) != metaVersion {
		return meta{}, false
	}
	h := fnv.New64a()
	h.Write(b[:metaSumSize])
	if h.Sum64() != le.Uint64(b[metaSumSize:]) {
		return meta{}, false
	}
	return meta{pageSize: le.Uint32(b[8:]), root: le.Uint64(b[16:]), pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}, true
}

// file is the private copy: read and patched in place.
type file interface {
	io.ReaderAt
	io.WriterAt
}

// checker walks one database's page graph.
type checker struct {
	f     file
	name  string // the database as warnings name it
	size  int64
	ps    uint64 // page size
	pages uint64 // usable pages: below the high-water mark and inside the file
	seen  []uint64
	// visited counts the pages read, each once at most.
	visited int
	warns   []evidence.Warning
	damage  map[string][]evidence.Warning // by bucket path key
	offsets map[string]int64              // of each bucket's root page (inline: its page in the value), by path key
	more    int                           // warnings past maxWarnings
	err     error                         // an I/O error on the copy
}

// checkPages validates the page graph of the bbolt file f (size bytes) as
// bbolt's read-only transactions will walk it, and patches the damaged
// parts out of f. It returns the damage found; a database whose meta pages
// or root page are unusable is an error.
func checkPages(f file, size int64, name string) (*checker, error) {
	c := &checker{f: f, name: name, size: size, damage: map[string][]evidence.Warning{}, offsets: map[string]int64{}}
	m, ok := c.pickMeta()
	if !ok {
		return nil, &evidence.FormatError{File: name, Offset: 0, Msg: "no valid bbolt meta page"}
	}
	if m.pageSize < 1024 || m.pageSize > 1<<24 || m.pageSize&(m.pageSize-1) != 0 {
		return nil, &evidence.FormatError{File: name, Offset: 0, Msg: fmt.Sprintf("meta page: page size %d is not a power of two from 1 KiB to 16 MiB", m.pageSize)}
	}
	c.ps = uint64(m.pageSize)
	c.pages = min(m.pgid, uint64(size)/c.ps)
	c.seen = make([]uint64, (c.pages+63)/64)
	if !c.node(nil, m.root, m.id, 0, 0) {
		if c.err != nil {
			return nil, c.err
		}
		w := c.warns[len(c.warns)-1]
		return nil, &evidence.FormatError{File: name, Offset: w.Offset, Msg: strings.TrimSuffix(w.Msg, belowNotRead) + "; the database cannot be read"}
	}
	if c.err != nil {
		return nil, c.err
	}
	if c.more > 0 {
		c.warns = append(c.warns, evidence.Warnf(name, -1, "%d more damaged subtrees not listed", c.more))
	}
	return c, nil
}

// pickMeta chooses the meta page bbolt will: the page size of the first
// valid meta (page 0, else page 1 found at 1 KiB × 2^i), then of meta 0
// and 1 the valid one with the higher transaction id.
func (c *checker) pickMeta() (meta, bool) {
	buf := make([]byte, 4096)
	ps := uint64(0)
	if n, _ := c.f.ReadAt(buf, 0); n == len(buf) {
		if m, ok := parseMeta(buf[pageHeaderSize:]); ok {
			ps = uint64(m.pageSize)
		}
	}
	for i := 0; ps == 0 && i <= 14; i++ {
		pos := int64(1024) << i
		if pos >= c.size-1024 {
			break
		}
		n, _ := c.f.ReadAt(buf, pos)
		if m, ok := parseMeta(buf[pageHeaderSize:n]); ok {
			ps = uint64(m.pageSize)
		}
	}
	if ps == 0 || ps > 1<<24 {
		return meta{}, false
	}
	var best meta
	found := false
	for id := uint64(0); id < 2; id++ {
		b := make([]byte, pageHeaderSize+metaSumSize+8)
		if n, _ := c.f.ReadAt(b, int64(id*ps)); n != len(b) {
			continue
		}
		if m, ok := parseMeta(b[pageHeaderSize:]); ok && (!found || m.txid > best.txid) {
			m.id = id
			best, found = m, true
		}
	}
	return best, found
}

// pathKey is a bucket path as a map key (names may hold "/").
func pathKey(path []string) string { return strings.Join(path, "\x00") }

// pathName is a bucket path as warnings print it.
func pathName(path []string) string {
	if len(path) == 0 {
		return "the root bucket"
	}
	return "bucket " + strings.Join(path, "/")
}

// warn records damage in the bucket at path, found at page id.
func (c *checker) warn(path []string, id uint64, format string, args ...any) {
	if len(c.warns) >= maxWarnings {
		c.more++
		return
	}
	off := int64(-1)
	if id < c.pages || (c.ps > 0 && id < uint64(c.size)/c.ps) {
		off = int64(id * c.ps)
	}
	w := evidence.Warnf(c.name, off, "%s: %s", pathName(path), fmt.Sprintf(format, args...))
	c.warns = append(c.warns, w)
	// The damage is the bucket's and every enclosing bucket's.
	for i := len(path); i >= 0; i-- {
		k := pathKey(path[:i])
		c.damage[k] = append(c.damage[k], w)
	}
}

func (c *checker) read(off uint64, n int) []byte {
	b := make([]byte, n)
	if _, err := c.f.ReadAt(b, int64(off)); err != nil && c.err == nil {
		c.err = fmt.Errorf("%s: reading the private copy: %w", c.name, err)
	}
	return b
}

func (c *checker) write(off uint64, b []byte) {
	if _, err := c.f.WriteAt(b, int64(off)); err != nil && c.err == nil {
		c.err = fmt.Errorf("%s: patching the private copy: %w", c.name, err)
	}
}

func (c *checker) isSeen(id uint64) bool { return c.seen[id/64]&(1<<(id%64)) != 0 }
func (c *checker) setSeen(id uint64)     { c.seen[id/64] |= 1 << (id % 64) }

// header is a page header.
type header struct {
	id       uint64
	flags    uint16
	count    uint16
	overflow uint32
}

func parseHeader(b []byte) header {
	le := binary.LittleEndian
	return header{id: le.Uint64(b), flags: le.Uint16(b[8:]), count: le.Uint16(b[10:]), overflow: le.Uint32(b[12:])}
}

// pageProblem says what makes page id, referenced from page from, unusable
// as a node of a tree; "" when it is usable. It marks the page's span seen.
func (c *checker) pageProblem(id, from uint64) (header, string) {
	var h header
	switch {
	case id < 2:
		return h, fmt.Sprintf("page %d points to page %d, a meta page", from, id)
	case id >= c.pages:
		return h, fmt.Sprintf("page %d points to page %d, past the end of the database (%d pages)", from, id, c.pages)
	case c.isSeen(id):
		return h, fmt.Sprintf("page %d points to page %d, which is already part of the tree (a loop)", from, id)
	}
	h = parseHeader(c.read(id*c.ps, pageHeaderSize))
	span := c.ps * (1 + uint64(h.overflow))
	switch {
	case h.id != id:
		return h, fmt.Sprintf("page %d (from page %d) says it is page %d", id, from, h.id)
	case h.flags != flagBranch && h.flags != flagLeaf:
		return h, fmt.Sprintf("page %d (from page %d) is not a branch or leaf page (flags %#x)", id, from, h.flags)
	case uint64(h.overflow) >= c.pages-id:
		return h, fmt.Sprintf("page %d (from page %d) overflows %d pages, past the end of the database (%d pages)", id, from, h.overflow, c.pages)
	case pageHeaderSize+uint64(h.count)*elementSize > span:
		return h, fmt.Sprintf("page %d (from page %d) has %d elements, more than its %d bytes hold", id, from, h.count, span)
	case h.flags == flagBranch && h.count == 0:
		return h, fmt.Sprintf("page %d (from page %d) is a branch page with no elements", id, from)
	}
	for p := id; p <= id+uint64(h.overflow); p++ {
		if c.isSeen(p) {
			return h, fmt.Sprintf("page %d (from page %d) overlaps page %d, already part of the tree", id, from, p)
		}
	}
	for p := id; p <= id+uint64(h.overflow); p++ {
		c.setSeen(p)
	}
	c.visited++
	return h, ""
}

// node checks the page id of the bucket at path, a node level levels below
// the bucket's root (from is the page that points at it), and what hangs
// below it. It returns false when the page is unusable: the caller cuts
// the reference.
func (c *checker) node(path []string, id, from uint64, level, depth int) bool {
	if c.err != nil {
		return false
	}
	h, why := c.pageProblem(id, from)
	if why != "" {
		at := id
		if h == (header{}) {
			at = from // the page itself is not there: name the reference
		}
		c.warn(path, at, "%s%s", why, belowNotRead)
		return false
	}
	off := id * c.ps
	span := c.ps * (1 + uint64(h.overflow))
	elems := c.read(off+pageHeaderSize, int(h.count)*elementSize)
	le := binary.LittleEndian
	var drop []int
	if h.flags == flagBranch {
		if level >= maxTreeLevels {
			c.warn(path, id, "branch page %d is %d levels below the bucket's root, deeper than a bbolt tree goes; what is below it is not read", id, level)
			return false
		}
		data := dataRegion{next: pageHeaderSize + uint64(h.count)*elementSize, end: span}
		for i := range int(h.count) {
			e := elems[i*elementSize:]
			eoff := uint64(pageHeaderSize + i*elementSize)
			pos, ksize, child := le.Uint32(e), le.Uint32(e[4:]), le.Uint64(e[8:])
			if why := data.take(eoff+uint64(pos), uint64(ksize)); why != "" {
				c.warn(path, id, "branch page %d: element %d's key %s; the child it points to is not read", id, i, why)
				drop = append(drop, i)
				continue
			}
			if !c.node(path, child, id, level+1, depth) {
				drop = append(drop, i)
			}
		}
	} else {
		drop = c.leaf(path, off, span, elems, id, depth)
	}
	c.dropElements(off, h, elems, drop)
	return true
}

// leaf checks the elements of a leaf page (or inline page) at off, span
// bytes long, and the buckets they hold. It returns the elements to drop.
func (c *checker) leaf(path []string, off, span uint64, elems []byte, id uint64, depth int) []int {
	le := binary.LittleEndian
	var drop []int
	data := dataRegion{next: pageHeaderSize + uint64(len(elems)), end: span}
	for i := range len(elems) / elementSize {
		e := elems[i*elementSize:]
		eoff := uint64(pageHeaderSize + i*elementSize)
		flags, pos, ksize, vsize := le.Uint32(e), le.Uint32(e[4:]), le.Uint32(e[8:]), le.Uint32(e[12:])
		if why := data.take(eoff+uint64(pos), uint64(ksize)+uint64(vsize)); why != "" {
			c.warn(path, id, "page %d: element %d's key and value %s; the element is not read", id, i, why)
			drop = append(drop, i)
			continue
		}
		if flags&bucketFlag == 0 {
			continue
		}
		kOff := off + eoff + uint64(pos)
		name := string(c.read(kOff, int(min(ksize, maxNameInPath))))
		if ksize > maxNameInPath {
			name += "…"
		}
		sub := append(path[:len(path):len(path)], name)
		vOff := kOff + uint64(ksize)
		if !c.bucket(sub, vOff, uint64(vsize), id, depth+1) {
			// No longer a bucket: bbolt's Bucket() refuses the key, and
			// ForEach gives its bytes as a value.
			le.PutUint32(e, flags&^bucketFlag)
			c.write(off+eoff, e[:4])
		}
	}
	return drop
}

// bucket checks the bucket whose header is the value at vOff (vsize bytes)
// of page id.
func (c *checker) bucket(path []string, vOff, vsize, id uint64, depth int) bool {
	if depth > maxBucketDepth {
		c.warn(path, id, "buckets nested more than %d deep; the bucket is not read", maxBucketDepth)
		return false
	}
	if vsize < bucketHeaderSize {
		c.warn(path, id, "page %d: the bucket's header is %d bytes, not %d; the bucket is not read", id, vsize, bucketHeaderSize)
		return false
	}
	root := binary.LittleEndian.Uint64(c.read(vOff, 8))
	if root != 0 {
		if !c.node(path, root, id, 0, depth) {
			return false
		}
		c.offset(path, root*c.ps)
		return true
	}
	// An inline bucket: a leaf page inside the value.
	if vsize < bucketHeaderSize+pageHeaderSize {
		c.warn(path, id, "page %d: the inline bucket's value is %d bytes, too short for its page; the bucket is not read", id, vsize)
		return false
	}
	pOff := vOff + bucketHeaderSize
	span := vsize - bucketHeaderSize
	h := parseHeader(c.read(pOff, pageHeaderSize))
	switch {
	case h.flags != flagLeaf:
		c.warn(path, id, "page %d: the inline bucket's page is not a leaf (flags %#x); the bucket is not read", id, h.flags)
		return false
	case pageHeaderSize+uint64(h.count)*elementSize > span:
		c.warn(path, id, "page %d: the inline bucket's page has %d elements, more than its %d bytes hold; the bucket is not read", id, h.count, span)
		return false
	}
	elems := c.read(pOff+pageHeaderSize, int(h.count)*elementSize)
	drop := c.leaf(path, pOff, span, elems, id, depth)
	c.dropElements(pOff, h, elems, drop)
	c.offset(path, pOff)
	return true
}

// offset remembers where a bucket's page is, for warnings about its keys.
func (c *checker) offset(path []string, off uint64) {
	if len(c.offsets) < maxBucketOffsets && len(path) <= maxOffsetDepth {
		c.offsets[pathKey(path)] = int64(off)
	}
}

// dataRegion is the part of a page after its element array, where bbolt
// writes the elements' keys and values one after the other. An element
// whose data lies elsewhere — outside the page, inside the element array,
// over another element's data — is refused: cutting elements out of the
// array and clearing bucket flags then never changes bytes another element
// reads.
type dataRegion struct {
	next, end uint64 // the first byte not yet taken; the page's size
}

// take claims n bytes at start (from the page's start) for one element.
func (d *dataRegion) take(start, n uint64) string {
	switch {
	case start+n > d.end:
		return "lies outside the page"
	case start < d.next:
		return "overlaps the element array or another element's data"
	}
	d.next = start + n
	return ""
}

// dropElements rewrites the element array of the page at off without the
// elements in drop. Each kept element moves left by 16 bytes per dropped
// one before it, so its pos (counted from the element) grows as much. A
// branch left with no element becomes an empty leaf.
func (c *checker) dropElements(off uint64, h header, elems []byte, drop []int) {
	if len(drop) == 0 {
		return
	}
	le := binary.LittleEndian
	out := make([]byte, 0, len(elems))
	gone := 0
	for i := range int(h.count) {
		if gone < len(drop) && drop[gone] == i {
			gone++
			continue
		}
		e := append([]byte(nil), elems[i*elementSize:(i+1)*elementSize]...)
		posAt := 0
		if h.flags != flagBranch {
			posAt = 4
		}
		le.PutUint32(e[posAt:], le.Uint32(e[posAt:])+uint32(gone*elementSize))
		out = append(out, e...)
	}
	hb := make([]byte, 4)
	flags := h.flags
	if len(out) == 0 {
		flags = flagLeaf
	}
	le.PutUint16(hb, flags)
	le.PutUint16(hb[2:], uint16(len(out)/elementSize))
	c.write(off+8, hb)
	c.write(off+pageHeaderSize, out)
}
