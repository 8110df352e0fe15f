// Package bolttest edits the pages of a bbolt file in memory, so that
// tests and fuzz targets can build damaged databases — loops, references
// out of the file, absurd element counts — from real ones. It is for
// tests only: nothing here checks what it is told to write.
package bolttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// Page header flags.
const (
	FlagBranch = 0x01
	FlagLeaf   = 0x02
)

var le = binary.LittleEndian

// File is a bbolt file's bytes.
type File struct {
	B        []byte
	PageSize uint64
}

// Parse reads the page size of b's first meta page.
func Parse(b []byte) (*File, error) {
	if len(b) < 4096 || le.Uint32(b[16:]) != 0xED0CDAED {
		return nil, fmt.Errorf("not a bbolt file")
	}
	return &File{B: b, PageSize: uint64(le.Uint32(b[24:]))}, nil
}

// Pages is the number of pages in the file.
func (f *File) Pages() uint64 { return uint64(len(f.B)) / f.PageSize }

// meta is the offset of the meta page bbolt uses (the higher txid).
func (f *File) meta() uint64 {
	m0, m1 := uint64(16), f.PageSize+16
	if le.Uint64(f.B[m1+48:]) > le.Uint64(f.B[m0+48:]) {
		return m1
	}
	return m0
}

// Root is the root page of the root bucket.
func (f *File) Root() uint64 { return le.Uint64(f.B[f.meta()+16:]) }

// HighWater is the meta page's high-water mark (pages in use).
func (f *File) HighWater() uint64 { return le.Uint64(f.B[f.meta()+40:]) }

// setHighWater sets both meta pages' high-water mark, with new checksums.
func (f *File) setHighWater(n uint64) {
	for _, m := range []uint64{16, f.PageSize + 16} {
		le.PutUint64(f.B[m+40:], n)
		h := fnv.New64a()
		h.Write(f.B[m : m+56])
		le.PutUint64(f.B[m+56:], h.Sum64())
	}
}

func (f *File) off(id uint64) uint64 { return id * f.PageSize }

// Flags, Count and Overflow read a page header.
func (f *File) Flags(id uint64) uint16    { return le.Uint16(f.B[f.off(id)+8:]) }
func (f *File) Count(id uint64) uint16    { return le.Uint16(f.B[f.off(id)+10:]) }
func (f *File) Overflow(id uint64) uint32 { return le.Uint32(f.B[f.off(id)+12:]) }

// SetHeader writes a page header.
func (f *File) SetHeader(id, self uint64, flags, count uint16, overflow uint32) {
	o := f.off(id)
	le.PutUint64(f.B[o:], self)
	le.PutUint16(f.B[o+8:], flags)
	le.PutUint16(f.B[o+10:], count)
	le.PutUint32(f.B[o+12:], overflow)
}

// SetCount writes a page's element count.
func (f *File) SetCount(id uint64, n uint16) { le.PutUint16(f.B[f.off(id)+10:], n) }

// elem is the offset of element i of the page at off.
func elem(off uint64, i int) uint64 { return off + 16 + uint64(i)*16 }

// Child is the page branch element i of page id points to.
func (f *File) Child(id uint64, i int) uint64 { return le.Uint64(f.B[elem(f.off(id), i)+8:]) }

// SetChild points branch element i of page id at child.
func (f *File) SetChild(id uint64, i int, child uint64) {
	le.PutUint64(f.B[elem(f.off(id), i)+8:], child)
}

// Branch writes a branch page at id whose elements point at children.
// The first child's key is 0x00 and the others' 0xff, 0xff 0xff, …: a
// key lookup goes to the first child.
func (f *File) Branch(id uint64, children ...uint64) {
	o := f.off(id)
	clear(f.B[o : o+f.PageSize])
	f.SetHeader(id, id, FlagBranch, uint16(len(children)), 0)
	k := elem(o, len(children))
	for i, c := range children {
		key := []byte{0}
		if i > 0 {
			key = bytes.Repeat([]byte{0xff}, i)
		}
		e := elem(o, i)
		le.PutUint32(f.B[e:], uint32(k-e)) // pos, from the element
		le.PutUint32(f.B[e+4:], uint32(len(key)))
		le.PutUint64(f.B[e+8:], c)
		k += uint64(copy(f.B[k:], key))
	}
}

// Append adds an empty page at the high-water mark (growing the file when
// it is full) and returns its id.
func (f *File) Append() uint64 {
	id := f.HighWater()
	if (id+1)*f.PageSize > uint64(len(f.B)) {
		f.B = append(f.B, make([]byte, (id+1)*f.PageSize-uint64(len(f.B)))...)
	}
	f.setHighWater(id + 1)
	return id
}

// Bucket finds the bucket at path: the page of the leaf element that
// holds it, the element's offset, and the bucket's root page (0 for an
// inline bucket).
func (f *File) Bucket(path ...string) (leaf uint64, elemOff uint64, root uint64, err error) {
	root = f.Root()
	for depth, name := range path {
		if root == 0 {
			return 0, 0, 0, fmt.Errorf("%v: inline buckets are not walked", path[:depth])
		}
		leaf, elemOff, err = f.find(root, []byte(name))
		if err != nil {
			return 0, 0, 0, fmt.Errorf("%v: %w", path[:depth+1], err)
		}
		pos, ksize := le.Uint32(f.B[elemOff+4:]), le.Uint32(f.B[elemOff+8:])
		root = le.Uint64(f.B[elemOff+uint64(pos)+uint64(ksize):])
	}
	return leaf, elemOff, root, nil
}

// find looks key up in the tree at page id: the leaf page and the
// element's offset.
func (f *File) find(id uint64, key []byte) (uint64, uint64, error) {
	for range 64 {
		o := f.off(id)
		n := int(f.Count(id))
		if f.Flags(id) == FlagLeaf {
			for i := range n {
				e := elem(o, i)
				pos, ksize := le.Uint32(f.B[e+4:]), le.Uint32(f.B[e+8:])
				if bytes.Equal(f.B[e+uint64(pos):e+uint64(pos)+uint64(ksize)], key) {
					return id, e, nil
				}
			}
			return 0, 0, fmt.Errorf("key %q not found", key)
		}
		next := f.Child(id, 0)
		for i := range n {
			e := elem(o, i)
			pos, ksize := le.Uint32(f.B[e:]), le.Uint32(f.B[e+4:])
			if bytes.Compare(f.B[e+uint64(pos):e+uint64(pos)+uint64(ksize)], key) <= 0 {
				next = f.Child(id, i)
			}
		}
		id = next
	}
	return 0, 0, fmt.Errorf("tree deeper than 64")
}

// SetBucketRoot points the bucket at path to page root.
func (f *File) SetBucketRoot(root uint64, path ...string) error {
	_, e, _, err := f.Bucket(path...)
	if err != nil {
		return err
	}
	pos, ksize := le.Uint32(f.B[e+4:]), le.Uint32(f.B[e+8:])
	le.PutUint64(f.B[e+uint64(pos)+uint64(ksize):], root)
	return nil
}

// Fixture reads the member name of a committed archive (the real
// databases the damaged ones are made from).
func Fixture(t testing.TB, archive, name string) []byte {
	t.Helper()
	a, err := evidence.OpenArchive(context.Background(), archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := evidence.ReadFile(a, name, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Source is an evidence Source whose file Name reads as Data: the
// evidence with one database replaced.
type Source struct {
	evidence.Source
	Name string // without a leading "/"
	Data []byte
}

func (s *Source) Open(name string) (evidence.File, error) {
	if strings.TrimPrefix(name, "/") == s.Name {
		return &bytesFile{bytes.NewReader(s.Data)}, nil
	}
	return s.Source.Open(name)
}

func (s *Source) Lstat(name string) (*evidence.Stat, error) {
	st, err := s.Source.Lstat(name)
	if err == nil && strings.TrimPrefix(name, "/") == s.Name {
		c := *st
		c.Size = int64(len(s.Data))
		return &c, nil
	}
	return st, err
}

type bytesFile struct{ *bytes.Reader }

func (f *bytesFile) Close() error { return nil }

// TreePages lists the pages of the tree of an intact file: branch and
// leaf pages reached from the root bucket, through sub-buckets too.
func (f *File) TreePages() []uint64 {
	var out []uint64
	seen := map[uint64]bool{}
	var node func(id uint64)
	node = func(id uint64) {
		if seen[id] || id >= f.Pages() {
			return
		}
		seen[id] = true
		out = append(out, id)
		o := f.off(id)
		for i := range int(f.Count(id)) {
			e := elem(o, i)
			if f.Flags(id) == FlagBranch {
				node(f.Child(id, i))
				continue
			}
			flags, pos, ksize := le.Uint32(f.B[e:]), le.Uint32(f.B[e+4:]), le.Uint32(f.B[e+8:])
			if flags&1 != 0 {
				if root := le.Uint64(f.B[e+uint64(pos)+uint64(ksize):]); root != 0 {
					node(root)
				}
			}
		}
	}
	node(f.Root())
	return out
}

// Mutate applies edits to the pages of tree (see TreePages), 8 bytes an
// edit: the page (an index into tree), the field, the element, how to
// read the value, and a 32-bit value. The fields are a page's flags,
// count, overflow and id, and an element's child (branch) or value size
// (leaf), pos, key size, and a leaf element's bucket root (or its bucket
// flag). Values are another page of the tree, the raw value, 2^40 plus
// it, or just past the file's end: the references a damaged or hostile
// file makes.
func (f *File) Mutate(tree []uint64, edits []byte) {
	if len(tree) == 0 {
		return
	}
	for ; len(edits) >= 8; edits = edits[8:] {
		id := tree[int(edits[0])%len(tree)]
		o := f.off(id)
		raw := le.Uint32(edits[4:])
		var v uint64
		switch edits[3] % 4 {
		case 0:
			v = tree[int(raw)%len(tree)]
		case 1:
			v = uint64(raw)
		case 2:
			v = 1<<40 | uint64(raw)
		case 3:
			v = f.Pages() + uint64(raw%16)
		}
		n := int(f.Count(id))
		e := elem(o, int(edits[2])%max(n, 1))
		if e+16 > o+f.PageSize {
			continue
		}
		branch := f.Flags(id) == FlagBranch
		switch edits[1] % 8 {
		case 0:
			le.PutUint16(f.B[o+8:], uint16(raw))
		case 1:
			le.PutUint16(f.B[o+10:], uint16(raw))
		case 2:
			le.PutUint32(f.B[o+12:], raw)
		case 3:
			le.PutUint64(f.B[o:], v)
		case 4:
			if branch {
				le.PutUint64(f.B[e+8:], v)
			} else {
				le.PutUint32(f.B[e+12:], raw)
			}
		case 5:
			if branch {
				le.PutUint32(f.B[e:], raw)
			} else {
				le.PutUint32(f.B[e+4:], raw)
			}
		case 6:
			if branch {
				le.PutUint32(f.B[e+4:], raw)
			} else {
				le.PutUint32(f.B[e+8:], raw)
			}
		case 7:
			if branch || n == 0 {
				continue
			}
			flags, pos, ksize := le.Uint32(f.B[e:]), uint64(le.Uint32(f.B[e+4:])), uint64(le.Uint32(f.B[e+8:]))
			if flags&1 == 0 || e+pos+ksize+8 > uint64(len(f.B)) {
				le.PutUint32(f.B[e:], flags^1)
				continue
			}
			le.PutUint64(f.B[e+pos+ksize:], v)
		}
	}
}

// Edit is one edit of Mutate, for seeds.
func Edit(page, field, elem, how byte, value uint32) []byte {
	b := []byte{page, field, elem, how, 0, 0, 0, 0}
	le.PutUint32(b[4:], value)
	return b
}
