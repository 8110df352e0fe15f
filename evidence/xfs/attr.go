package xfs

import "encoding/binary"

// Bounds on what one inode's attributes may hold.
const (
	maxXattrs     = 1 << 16
	maxXattrBytes = 64 << 20
)

type xattrSet struct {
	f     *FS
	ip    *inode
	out   map[string][]byte
	total int
}

// add files one on-disk attribute under its Linux name: the root
// namespace is trusted.*, the secure one security.*, the rest user.*;
// parent pointers and incomplete attributes are left out. XFS keeps POSIX
// ACLs as trusted.SGI_ACL_FILE/DEFAULT; like the kernel, they are also
// shown as system.posix_acl_access/default in the Linux xattr format.
func (s *xattrSet) add(flags uint8, name, value []byte, pos int64) error {
	if flags&attrIncomplete != 0 {
		return nil
	}
	var prefix string
	switch flags & (attrRoot | attrSecure | attrParent) {
	case 0:
		prefix = "user."
	case attrRoot:
		prefix = "trusted."
	case attrSecure:
		prefix = "security."
	case attrParent:
		return nil
	default:
		s.f.warnf("%s: offset %d: attribute %q in more than one namespace (flags 0x%x) skipped", s.ip.what("attribute"), pos, name, flags)
		return nil
	}
	if len(name) == 0 {
		s.f.warnf("%s: offset %d: attribute with an empty name skipped", s.ip.what("attribute"), pos)
		return nil
	}
	if len(s.out) >= maxXattrs || s.total+len(name)+len(value) > maxXattrBytes {
		return ferr(s.ip.what("attribute fork"), pos, "more than %d attributes or %d bytes", maxXattrs, maxXattrBytes)
	}
	if s.out == nil {
		s.out = map[string][]byte{}
	}
	s.total += len(name) + len(value)
	s.out[prefix+string(name)] = append([]byte{}, value...)
	if flags&attrRoot != 0 {
		var sys string
		switch string(name) {
		case aclFileName:
			sys = "system.posix_acl_access"
		case aclDefaultName:
			sys = "system.posix_acl_default"
		}
		if sys != "" {
			if v, ok := aclXattr(value); ok {
				s.out[sys] = v
			} else {
				s.f.warnf("%s: offset %d: malformed %s", s.ip.what("attribute"), pos, name)
			}
		}
	}
	return nil
}

// aclXattr converts an XFS on-disk ACL (big-endian count, then tag, id,
// perm, pad) to the Linux posix_acl xattr format (little-endian version 2,
// then tag, perm, id).
func aclXattr(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := be.Uint32(b)
	if n > (maxXattrValue-4)/12 || len(b) != 4+int(n)*12 {
		return nil, false
	}
	le := binary.LittleEndian
	out := make([]byte, 4+int(n)*8)
	le.PutUint32(out, 2)
	for i := 0; i < int(n); i++ {
		e := b[4+i*12:]
		tag, id, perm := be.Uint32(e), be.Uint32(e[4:]), be.Uint16(e[8:])
		switch tag {
		case 0x02, 0x08: // ACL_USER, ACL_GROUP
		case 0x01, 0x04, 0x10, 0x20: // USER_OBJ, GROUP_OBJ, MASK, OTHER
			id = 0xffffffff
		default:
			return nil, false
		}
		o := out[4+i*8:]
		le.PutUint16(o, uint16(tag))
		le.PutUint16(o[2:], perm)
		le.PutUint32(o[4:], id)
	}
	return out, true
}

// xattrs returns the extended attributes of ip (nil when none).
func (f *FS) xattrs(ip *inode) (map[string][]byte, error) {
	if ip.afork == nil || ip.aformat == fmtExtents && ip.anextents == 0 {
		return nil, nil
	}
	s := &xattrSet{f: f, ip: ip}
	var err error
	switch ip.aformat {
	case fmtLocal:
		err = f.attrShortform(s)
	case fmtExtents, fmtBtree:
		err = f.attrTree(s)
	default:
		err = ferr(ip.what("attribute fork"), ip.pos+diAformat, "format %d", ip.aformat)
	}
	return s.out, err
}

// attrShortform reads attributes kept inline in the inode.
func (f *FS) attrShortform(s *xattrSet) error {
	ip := s.ip
	b := ip.afork
	base := ip.pos + dinodeV3Core + int64(ip.forkoff)
	what := ip.what("shortform attributes")
	if len(b) < 4 {
		return ferr(what, base, "no room for a header")
	}
	tot := int(be.Uint16(b))
	if tot < 4 || tot > len(b) {
		return ferr(what, base, "%d bytes of attributes in a %d-byte fork", tot, len(b))
	}
	count := int(b[2])
	p := 4
	for i := 0; i < count; i++ {
		if p+3 > tot {
			return ferr(what, base+int64(p), "entry %d of %d past the end", i, count)
		}
		nl, vl, fl := int(b[p]), int(b[p+1]), b[p+2]
		if p+3+nl+vl > tot {
			return ferr(what, base+int64(p), "entry %d (%d+%d bytes) past the end", i, nl, vl)
		}
		if err := s.add(fl, b[p+3:p+3+nl], b[p+3+nl:p+3+nl+vl], base+int64(p)); err != nil {
			return err
		}
		p += 3 + nl + vl
	}
	return nil
}

// attrTree reads attributes kept in leaf blocks (block 0 of the fork
// is a leaf, or the root of a dabtree whose leaves are chained).
func (f *FS) attrTree(s *xattrSet) error {
	ip := s.ip
	fk, err := f.attrFork(ip)
	if err != nil {
		return err
	}
	what := ip.what("attribute block")
	lb := uint64(0)
	for depth := 0; ; depth++ {
		b, pos, err := fk.readBlocks(lb, 1, 12)
		if err != nil {
			return err
		}
		if err := f.checkHdr(ip, b, pos, 48, 12, 16, what); err != nil {
			return err
		}
		magic := be.Uint16(b[8:])
		if magic == attr3LeafMagic {
			break
		}
		if magic != da3NodeMagic {
			return ferr(what, pos+8, "no attribute leaf or node magic (0x%04x)", magic)
		}
		if depth >= daMaxDepth {
			return ferr(what, pos, "attribute tree deeper than %d levels", daMaxDepth)
		}
		count := int(be.Uint16(b[da3BlkinfoLen:]))
		if count < 1 || count > (len(b)-da3NodeHdr)/8 {
			return ferr(what, pos+da3BlkinfoLen, "%d entries in a node block", count)
		}
		lb = uint64(be.Uint32(b[da3NodeHdr+4:]))
		if lb == 0 {
			return ferr(what, pos+da3NodeHdr, "node points back at the root")
		}
	}
	seen := map[uint64]bool{}
	for lb != 0 || len(seen) == 0 {
		if seen[lb] {
			return ferr(what, -1, "leaf chain loops back to block %d", lb)
		}
		seen[lb] = true
		b, pos, err := fk.readBlocks(lb, 1, 12)
		if err != nil {
			return err
		}
		if err := f.checkHdr(ip, b, pos, 48, 12, 16, what); err != nil {
			return err
		}
		if be.Uint16(b[8:]) != attr3LeafMagic {
			return ferr(what, pos+8, "sibling is not an attribute leaf")
		}
		if err := f.attrLeaf(s, fk, b, pos); err != nil {
			return err
		}
		lb = uint64(be.Uint32(b))
	}
	return nil
}

func (f *FS) attrLeaf(s *xattrSet, fk *fork, b []byte, pos int64) error {
	ip := s.ip
	what := ip.what("attribute leaf")
	count := int(be.Uint16(b[da3BlkinfoLen:]))
	if count > (len(b)-attr3LeafHdr)/8 {
		return ferr(what, pos+da3BlkinfoLen, "%d entries in a leaf block", count)
	}
	for i := 0; i < count; i++ {
		e := attr3LeafHdr + i*8
		idx := int(be.Uint16(b[e+4:]))
		fl := b[e+6]
		at := pos + int64(idx)
		if idx < attr3LeafHdr+count*8 || idx >= len(b) {
			return ferr(what, pos+int64(e), "entry %d names offset %d", i, idx)
		}
		if fl&attrLocal != 0 {
			if idx+3 > len(b) {
				return ferr(what, at, "local entry past the block")
			}
			vl, nl := int(be.Uint16(b[idx:])), int(b[idx+2])
			if idx+3+nl+vl > len(b) {
				return ferr(what, at, "local entry of %d+%d bytes past the block", nl, vl)
			}
			if err := s.add(fl, b[idx+3:idx+3+nl], b[idx+3+nl:idx+3+nl+vl], at); err != nil {
				return err
			}
			continue
		}
		if idx+9 > len(b) {
			return ferr(what, at, "remote entry past the block")
		}
		blk, vl, nl := be.Uint32(b[idx:]), be.Uint32(b[idx+4:]), int(b[idx+8])
		if idx+9+nl > len(b) {
			return ferr(what, at, "remote entry name past the block")
		}
		if fl&attrIncomplete != 0 {
			continue
		}
		v, err := f.attrRemote(ip, fk, uint64(blk), vl, at)
		if err != nil {
			return err
		}
		if err := s.add(fl, b[idx+9:idx+9+nl], v, at); err != nil {
			return err
		}
	}
	return nil
}

// attrRemote reads a value kept in its own blocks of the attribute fork,
// each with a v5 remote header.
func (f *FS) attrRemote(ip *inode, fk *fork, blk uint64, vlen uint32, at int64) ([]byte, error) {
	what := ip.what("remote attribute value")
	if vlen > maxXattrValue {
		return nil, ferr(what, at, "value of %d bytes (limit %d)", vlen, maxXattrValue)
	}
	per := int(f.blockSize) - attr3RmtHdr
	out := make([]byte, 0, vlen)
	for i := uint64(0); len(out) < int(vlen); i++ {
		b, pos, err := fk.readBlocks(blk+i, 1, 12)
		if err != nil {
			return nil, err
		}
		if err := f.remoteHdr(ip, b, pos, attr3RmtMagic, len(out), per, int(vlen)-len(out), what); err != nil {
			return nil, err
		}
		n := int(be.Uint32(b[8:]))
		if n == 0 {
			return nil, ferr(what, pos+8, "empty remote block")
		}
		out = append(out, b[attr3RmtHdr:attr3RmtHdr+n]...)
	}
	return out, nil
}

// remoteHdr checks the header of a remote attribute or symlink block:
// magic, offset of its bytes in the value, byte count, owner, disk
// address, CRC.
func (f *FS) remoteHdr(ip *inode, b []byte, pos int64, magic uint32, off, per, left int, what loc) error {
	if be.Uint32(b) != magic {
		return ferr(what, pos, "no remote block magic")
	}
	if o := int(be.Uint32(b[4:])); o != off {
		return ferr(what, pos+4, "block holds bytes from %d, expected %d", o, off)
	}
	if n := int64(be.Uint32(b[8:])); n > int64(per) || n > int64(left) {
		return ferr(what, pos+8, "block claims %d bytes (room %d, %d left)", n, per, left)
	}
	if own := be.Uint64(b[32:]); own != ip.ino {
		return ferr(what, pos+32, "block belongs to inode %d", own)
	}
	if d := be.Uint64(b[40:]); d != uint64(pos>>9) {
		return ferr(what, pos+40, "block records disk address %d, read at %d", d, pos>>9)
	}
	return nil
}

// readlink returns the target of symbolic link ip. A remote target is
// kept in one buffer per extent, each with a v5 header.
func (f *FS) readlink(ip *inode) (string, error) {
	what := ip.what("symlink")
	if ip.size <= 0 || ip.size >= symlinkMaxLen {
		return "", ferr(what, ip.pos+diSize, "target of %d bytes", ip.size)
	}
	if ip.format == fmtLocal {
		return string(ip.dfork[:ip.size]), nil
	}
	fk, err := f.dataFork(ip)
	if err != nil {
		return "", err
	}
	out := make([]byte, 0, ip.size)
	err = fk.each(func(e extent) error {
		if len(out) >= int(ip.size) {
			return errStop
		}
		if e.count > 4 || e.unwritten {
			return ferr(what, -1, "extent of %d blocks (unwritten %v) for a %d-byte target", e.count, e.unwritten, ip.size)
		}
		b, pos, err := fk.readBlocks(e.off, e.count, 12)
		if err != nil {
			return err
		}
		if err := f.remoteHdr(ip, b, pos, symlinkMagic, len(out), len(b)-symlinkHdr, int(ip.size)-len(out), what); err != nil {
			return err
		}
		n := int(be.Uint32(b[8:]))
		if n == 0 {
			return ferr(what, pos+8, "empty symlink block")
		}
		out = append(out, b[symlinkHdr:symlinkHdr+n]...)
		return nil
	})
	if err != nil && err != errStop {
		return "", err
	}
	if len(out) != int(ip.size) {
		return "", ferr(what, -1, "blocks hold %d of the %d bytes of the target", len(out), ip.size)
	}
	return string(out), nil
}
