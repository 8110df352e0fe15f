package ext4

import (
	"fmt"
	"math/bits"
)

// Hashed (htree) directories. A directory with the index flag keeps, in
// its first block, behind a fake ".." entry that covers the rest of the
// block, a tree of (hash, logical block) pairs sorted by the hash of the
// names; leaves are ordinary directory blocks. Listing a directory reads
// the leaves linearly and never needs the tree; looking one name up in a
// directory too large for the directory cache walks it instead of every
// block.

// Directory hash versions (dx_root_info.hash_version; the unsigned
// variants apply when the superblock says so).
const (
	hashLegacy = iota
	hashHalfMD4
	hashTea
	hashLegacyUnsigned
	hashHalfMD4Unsigned
	hashTeaUnsigned
	hashSiphash
)

// dirHash computes the htree hash of a name (the major hash, its low bit
// clear, as the index stores it). seed is the superblock's s_hash_seed.
func dirHash(name []byte, version int, seed [4]uint32) (uint32, bool) {
	buf := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	if seed != [4]uint32{} {
		buf = seed
	}
	var hash uint32
	unsigned := false
	switch version {
	case hashLegacyUnsigned:
		unsigned = true
		fallthrough
	case hashLegacy:
		hash = dxHackHash(name, unsigned)
	case hashHalfMD4Unsigned:
		unsigned = true
		fallthrough
	case hashHalfMD4:
		var in [8]uint32
		for p := name; ; p = p[32:] {
			str2hashbuf(p, in[:], unsigned)
			halfMD4Transform(&buf, &in)
			if len(p) <= 32 {
				break
			}
		}
		hash = buf[1]
	case hashTeaUnsigned:
		unsigned = true
		fallthrough
	case hashTea:
		var in [4]uint32
		for p := name; ; p = p[16:] {
			str2hashbuf(p, in[:], unsigned)
			teaTransform(&buf, &in)
			if len(p) <= 16 {
				break
			}
		}
		hash = buf[0]
	default:
		return 0, false
	}
	hash &^= 1
	if hash == 0x7fffffff<<1 {
		hash = (0x7fffffff - 1) << 1
	}
	return hash, true
}

// dxHackHash is the legacy hash of ext3's first htree directories.
func dxHackHash(name []byte, unsigned bool) uint32 {
	hash0, hash1 := uint32(0x12a3fe2d), uint32(0x37abe8f9)
	for _, c := range name {
		v := int32(int8(c))
		if unsigned {
			v = int32(c)
		}
		hash := hash1 + (hash0 ^ uint32(v*7152373))
		if hash&0x80000000 != 0 {
			hash -= 0x7fffffff
		}
		hash1, hash0 = hash0, hash
	}
	return hash0 << 1
}

// str2hashbuf packs up to 4*len(buf) bytes of msg into buf, as words
// padded with the length.
func str2hashbuf(msg []byte, buf []uint32, unsigned bool) {
	n := len(msg)
	pad := uint32(n) | uint32(n)<<8
	pad |= pad << 16
	val := pad
	if n > 4*len(buf) {
		n = 4 * len(buf)
	}
	k := 0
	for i := 0; i < n; i++ {
		c := uint32(int32(int8(msg[i])))
		if unsigned {
			c = uint32(msg[i])
		}
		val = c + val<<8
		if i%4 == 3 {
			buf[k] = val
			k++
			val = pad
		}
	}
	if k < len(buf) {
		buf[k] = val
		k++
	}
	for ; k < len(buf); k++ {
		buf[k] = pad
	}
}

func halfMD4Transform(buf *[4]uint32, in *[8]uint32) {
	const k2, k3 = 0x5A827999, 0x6ED9EBA1
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	r := func(fn func(x, y, z uint32) uint32, a, b, c, d, x uint32, s int) uint32 {
		return bits.RotateLeft32(a+fn(b, c, d)+x, s)
	}
	a = r(f, a, b, c, d, in[0], 3)
	d = r(f, d, a, b, c, in[1], 7)
	c = r(f, c, d, a, b, in[2], 11)
	b = r(f, b, c, d, a, in[3], 19)
	a = r(f, a, b, c, d, in[4], 3)
	d = r(f, d, a, b, c, in[5], 7)
	c = r(f, c, d, a, b, in[6], 11)
	b = r(f, b, c, d, a, in[7], 19)

	a = r(g, a, b, c, d, in[1]+k2, 3)
	d = r(g, d, a, b, c, in[3]+k2, 5)
	c = r(g, c, d, a, b, in[5]+k2, 9)
	b = r(g, b, c, d, a, in[7]+k2, 13)
	a = r(g, a, b, c, d, in[0]+k2, 3)
	d = r(g, d, a, b, c, in[2]+k2, 5)
	c = r(g, c, d, a, b, in[4]+k2, 9)
	b = r(g, b, c, d, a, in[6]+k2, 13)

	a = r(h, a, b, c, d, in[3]+k3, 3)
	d = r(h, d, a, b, c, in[7]+k3, 9)
	c = r(h, c, d, a, b, in[2]+k3, 11)
	b = r(h, b, c, d, a, in[6]+k3, 15)
	a = r(h, a, b, c, d, in[1]+k3, 3)
	d = r(h, d, a, b, c, in[5]+k3, 9)
	c = r(h, c, d, a, b, in[0]+k3, 11)
	b = r(h, b, c, d, a, in[4]+k3, 15)

	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}

func teaTransform(buf *[4]uint32, in *[4]uint32) {
	const delta = 0x9E3779B9
	var sum uint32
	b0, b1 := buf[0], buf[1]
	a, b, c, d := in[0], in[1], in[2], in[3]
	for n := 0; n < 16; n++ {
		sum += delta
		b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b)
		b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d)
	}
	buf[0] += b0
	buf[1] += b1
}

// maxDxLevels bounds the index levels below the root (2, or 3 with
// large_dir).
const maxDxLevels = 3

// errNoIndex says a directory's index cannot serve a lookup (not indexed,
// an unknown hash, damage); the caller reads the directory linearly.
var errNoIndex = fmt.Errorf("no usable htree index")

// dxLookup finds name in an indexed directory by walking its hash tree
// from the root to the leaf block that holds the name's hash, and on to
// the next leaves while their first hash continues it (a collision run).
func (f *FS) dxLookup(in *inode, name string) (dirent, bool, error) {
	if !in.has(flagIndex) || in.has(flagInlineData) || in.has(flagCasefold) || in.has(flagEncrypt) {
		return dirent{}, false, errNoIndex
	}
	blockAt := func(lblk uint64) ([]byte, error) {
		r, err := f.mapBlock(in, lblk, nil)
		if err != nil {
			return nil, err
		}
		if r.phys == 0 || r.uninit || lblk*uint64(f.bs) >= in.size {
			return nil, errNoIndex
		}
		return f.readBlock(r.phys, "directory", in.ino)
	}
	root, err := blockAt(0)
	if err != nil {
		return dirent{}, false, err
	}
	if dxCountOffset(in, 0, root) != 0x20 || le.Uint32(root[0x18:]) != 0 {
		return dirent{}, false, errNoIndex
	}
	version := int(root[0x1C])
	if version <= hashTea && f.sb.flags&sbFlagUnsignedHash != 0 {
		version += 3
	}
	levels := int(root[0x1E])
	if levels > maxDxLevels || (levels > 2 && !f.sb.has(incompatLargeDir)) {
		return dirent{}, false, errNoIndex
	}
	hash, ok := dirHash([]byte(name), version, f.sb.hashSeed)
	if !ok {
		return dirent{}, false, errNoIndex
	}
	node, co := root, 0x20
	for level := 0; ; level++ {
		limit, count := int(le.Uint16(node[co:])), int(le.Uint16(node[co+2:]))
		if count == 0 || count > limit || co+8*limit > len(node) {
			return dirent{}, false, errNoIndex
		}
		ent := func(i int) (uint32, uint64) {
			p := co + 8*i
			h := uint32(0)
			if i > 0 {
				h = le.Uint32(node[p:])
			}
			return h, uint64(le.Uint32(node[p+4:]))
		}
		// The last entry whose hash is at or below the name's.
		lo, hi := 1, count
		for lo < hi {
			m := (lo + hi) / 2
			if h, _ := ent(m); h <= hash {
				lo = m + 1
			} else {
				hi = m
			}
		}
		_, blk := ent(lo - 1)
		if level < levels {
			b, err := blockAt(blk)
			if err != nil {
				return dirent{}, false, err
			}
			if dxCountOffset(in, blk, b) != 8 {
				return dirent{}, false, errNoIndex
			}
			node, co = b, 8
			continue
		}
		b, err := blockAt(blk)
		if err != nil {
			return dirent{}, false, err
		}
		var found dirent
		var hit bool
		if err := f.walkDirBlock(b, func(_ int, ino uint32, _ int, n []byte, ft uint8) {
			if !hit && ino != 0 && string(n) == name {
				found, hit = dirent{name: name, ino: ino, ftype: ft}, true
			}
		}); err != nil && !hit {
			return dirent{}, false, errNoIndex
		}
		if hit {
			return found, true, nil
		}
		// Not in this leaf. The next leaf may continue the same hash (its
		// index entry has the collision bit); that is rare, and then, or
		// when the next entry is in another node, the directory is read
		// linearly instead.
		if lo < count {
			if h, _ := ent(lo); h&1 == 0 || h&^1 != hash {
				return dirent{}, false, nil
			}
		} else if level == 0 {
			return dirent{}, false, nil // the last leaf of all
		}
		return dirent{}, false, errNoIndex
	}
}
