package ext4

import (
	"fmt"
)

// xattrEntry is one extended attribute as stored: its name index (the
// namespace), the rest of its name, and its value.
type xattrEntry struct {
	index uint8
	name  string
	value []byte
}

// maxXattrTotal bounds the value bytes read for one inode's attributes
// (an inode body, one block and values in EA inodes).
const maxXattrTotal = 4 << 20

// xattrPrefix is the name prefix of each namespace, as the kernel lists
// them; namespaces the kernel does not list (system.data of inline data,
// the fscrypt context, richacl, lustre) are marked hidden.
func xattrPrefix(idx uint8) (prefix string, visible bool) {
	switch idx {
	case xattrIdxUser:
		return "user.", true
	case xattrIdxACLAcc:
		return "system.posix_acl_access", true
	case xattrIdxACLDef:
		return "system.posix_acl_default", true
	case xattrIdxTrusted:
		return "trusted.", true
	case xattrIdxSec:
		return "security.", true
	case xattrIdxHurd:
		return "gnu.", true
	case xattrIdxSystem:
		return "system.", false
	case xattrIdxRichACL:
		return "system.richacl", false
	case xattrIdxEncrypt:
		return "c", false
	case xattrIdxLustre:
		return "lustre.", false
	}
	return fmt.Sprintf("index%d.", idx), false
}

// parseXattrRegion reads the entries of an xattr region: entries start at
// entStart and end with four zero bytes (or the region's end); a value at
// offset o lies at region[valueBase+o:], or in an EA inode. Each entry,
// offset and size is checked against the region.
func (f *FS) parseXattrRegion(region []byte, entStart, valueBase int, what string, ino uint32, regionOff int64, total *int) ([]xattrEntry, error) {
	var out []xattrEntry
	off := entStart
	for off+4 <= len(region) && le.Uint32(region[off:]) != 0 {
		bad := func(format string, args ...any) error {
			return formatErr(what, ino, regionOff+int64(off), fmt.Sprintf(format, args...))
		}
		if off+xattrEntryHdr > len(region) {
			return out, bad("entry header past the end of the region")
		}
		nameLen := int(region[off])
		idx := region[off+1]
		voffs := int(le.Uint16(region[off+2:]))
		vinum := le.Uint32(region[off+4:])
		vsize := int(le.Uint32(region[off+8:]))
		next := off + xattrEntryHdr + (nameLen+3)&^3
		if next > len(region) {
			return out, bad("entry name of %d bytes past the end of the region", nameLen)
		}
		if vsize > xattrMaxValue {
			return out, bad("value of %d bytes (at most %d)", vsize, xattrMaxValue)
		}
		*total += vsize
		if *total > maxXattrTotal {
			return out, bad("more than %d bytes of attribute values", maxXattrTotal)
		}
		e := xattrEntry{index: idx, name: string(region[off+xattrEntryHdr : off+xattrEntryHdr+nameLen])}
		switch {
		case vinum != 0:
			if !f.sb.has(incompatEAInode) {
				return out, bad("value in inode %d without the ea_inode feature", vinum)
			}
			v, err := f.eaInodeValue(vinum, vsize, ino)
			if err != nil {
				return out, err
			}
			e.value = v
		case vsize > 0:
			vs := valueBase + voffs
			if vs < entStart || vs > len(region) || len(region)-vs < vsize {
				return out, bad("value of %d bytes at offset %d outside the %d-byte region", vsize, voffs, len(region)-valueBase)
			}
			e.value = append([]byte(nil), region[vs:vs+vsize]...)
		}
		out = append(out, e)
		off = next
	}
	return out, nil
}

// eaInodeValue reads an attribute value kept in its own inode (ea_inode).
func (f *FS) eaInodeValue(vino uint32, size int, owner uint32) ([]byte, error) {
	in, err := f.inode(vino)
	if err != nil {
		return nil, err
	}
	if !in.has(flagEAInode) || in.has(flagInlineData) || !in.isReg() || in.size != uint64(size) {
		return nil, formatErr("xattr value inode", owner, in.off, fmt.Sprintf("inode %d is not an EA inode of %d bytes (flags %#x, size %d)", vino, size, in.flags, in.size))
	}
	buf := make([]byte, size)
	fl := &file{f: f, in: in, size: int64(size)}
	if _, err := fl.ReadAt(buf, 0); err != nil && size > 0 {
		return nil, err
	}
	return buf, nil
}

// xattrEntries returns every attribute of an inode, in-inode ones first.
func (f *FS) xattrEntries(in *inode) ([]xattrEntry, error) {
	var total int
	out, err := f.ibodyXattrs(in, &total)
	if err != nil {
		return out, err
	}
	if in.fileACL != 0 {
		ents, err := f.xattrBlock(in, in.fileACL, f.readBlock, &total)
		out = append(out, ents...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// ibodyXattrs reads the attributes kept in the inode itself (total counts
// their bytes against the bound). Inline data (system.data) lives only
// there, as the kernel reads it: damage in the external block is not its.
func (f *FS) ibodyXattrs(in *inode, total *int) ([]xattrEntry, error) {
	if in.ibody == nil {
		return nil, nil
	}
	return f.parseXattrRegion(in.ibody, 4, 4, "inode xattrs", in.ino, in.off+goodOldInode+int64(in.extraIsize), total)
}

// xattrBlock reads the external attribute block of an inode.
func (f *FS) xattrBlock(in *inode, blk uint64, rd blockReader, total *int) ([]xattrEntry, error) {
	if !f.validBlock(blk) {
		return nil, pastErr("xattr block", in.ino, in.off+inFileACLLo, fmt.Sprintf("block %d outside the filesystem (%d blocks)", blk, f.sb.blocksCount))
	}
	b, err := rd(blk, "xattr block", in.ino)
	if err != nil {
		return nil, err
	}
	off := int64(blk) * f.bs
	if m, n := le.Uint32(b), le.Uint32(b[8:]); m != xattrMagic || n != 1 {
		return nil, formatErr("xattr block", in.ino, off, fmt.Sprintf("bad header (magic %#x, %d blocks)", m, n))
	}
	if f.sb.metadataCsum() {
		var bn [8]byte
		le.PutUint64(bn[:], blk)
		c := crc32c(f.sb.csumSeed, bn[:])
		c = crc32c(c, b[:0x10])
		c = crc32c(c, []byte{0, 0, 0, 0})
		c = crc32c(c, b[0x14:])
		if c != le.Uint32(b[0x10:]) {
			f.warnf("ext4 xattr block (inode %d): offset %d: checksum mismatch", in.ino, off)
		}
	}
	return f.parseXattrRegion(b, xattrBlockHdr, 0, "xattr block", in.ino, off, total)
}

// inlineData returns the system.data attribute of an inline-data inode
// (the part of its content past i_block).
func inlineData(ents []xattrEntry) []byte {
	for _, e := range ents {
		if e.index == xattrIdxSystem && e.name == "data" {
			return e.value
		}
	}
	return nil
}

// visibleXattrs turns stored attributes into what getxattr(2) returns:
// full names, POSIX ACLs converted from ext4's compact form to the
// xattr form, namespaces the kernel does not list left out.
func visibleXattrs(ents []xattrEntry, ino uint32) (map[string][]byte, error) {
	var out map[string][]byte
	for _, e := range ents {
		prefix, ok := xattrPrefix(e.index)
		if !ok {
			continue
		}
		v := e.value
		if e.index == xattrIdxACLAcc || e.index == xattrIdxACLDef {
			if e.name != "" {
				continue
			}
			var err error
			if v, err = aclToXattr(v); err != nil {
				return out, formatErr("posix acl", ino, -1, err.Error())
			}
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[prefix+e.name] = v
	}
	return out, nil
}

// ACL tags.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

// aclToXattr converts an ext4 ACL (version 1 header; 4-byte entries for
// the owner, group, mask and other, 8-byte ones carrying an id for named
// users and groups) to the POSIX ACL xattr form (version 2; 8-byte
// entries, id 0xFFFFFFFF where none applies).
func aclToXattr(v []byte) ([]byte, error) {
	if len(v) < 4 || le.Uint32(v) != 1 {
		return nil, fmt.Errorf("not an ext4 ACL (%d bytes)", len(v))
	}
	out := make([]byte, 4, 4+2*len(v))
	le.PutUint32(out, 2)
	for p := 4; p < len(v); {
		if p+4 > len(v) {
			return nil, fmt.Errorf("ACL entry at %d truncated", p)
		}
		tag, perm := le.Uint16(v[p:]), le.Uint16(v[p+2:])
		id := uint32(0xFFFFFFFF)
		switch tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
			p += 4
		case aclUser, aclGroup:
			if p+8 > len(v) {
				return nil, fmt.Errorf("ACL entry at %d truncated", p)
			}
			id = le.Uint32(v[p+4:])
			p += 8
		default:
			return nil, fmt.Errorf("ACL entry at %d has tag %#x", p, tag)
		}
		var e [8]byte
		le.PutUint16(e[0:], tag)
		le.PutUint16(e[2:], perm)
		le.PutUint32(e[4:], id)
		out = append(out, e[:]...)
	}
	return out, nil
}
