package disk

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// A VMDK text descriptor (VMware "Virtual Disk Format 5.0", section 4):
//
//	# Disk DescriptorFile
//	version=1
//	CID=fffffffe
//	parentCID=ffffffff                 (ffffffff: no parent)
//	parentFileNameHint="parent.vmdk"   (a child's parent)
//	createType="monolithicFlat"
//	RW 4192256 FLAT "disk-flat.vmdk" 0 (access, sectors, type, file, offset in sectors)
//	RW 4192256 SPARSE "disk-s001.vmdk"
//	RW 2048 ZERO
//	ddb.geometry.cylinders = "4161"
const (
	vmdkMaxExtents = 4096
	noParentCID    = "ffffffff"
)

type descriptor struct {
	version    string
	cid        string
	parentCID  string
	parentHint string
	createType string
	extents    []descExtent
}

type descExtent struct {
	access  string
	sectors int64
	typ     string
	file    string
	offset  int64 // sectors
	at      int64 // byte offset of the line in the descriptor
}

func (d *descriptor) hasParent() bool {
	return d.parentCID != "" && !strings.EqualFold(d.parentCID, noParentCID) && d.parentHint != ""
}

// parseDescriptor parses descriptor text; what and base name the structure
// and its offset in errors.
func parseDescriptor(text []byte, what string, base int64) (*descriptor, error) {
	if int64(len(text)) > vmdkMaxDescBytes {
		return nil, &vfs.FormatError{File: what, Offset: base, Msg: fmt.Sprintf("%d bytes, over the %d-byte bound", len(text), vmdkMaxDescBytes)}
	}
	d := &descriptor{}
	// fields are the header keys kept; the disk database (ddb.*) and
	// others are read past.
	fields := map[string]*string{
		"version": &d.version, "CID": &d.cid, "parentCID": &d.parentCID,
		"parentFileNameHint": &d.parentHint, "createType": &d.createType,
	}
	var total int64
	pos := int64(0)
	for len(text) > 0 {
		line := text
		next := len(text)
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, next = text[:i], i+1
		}
		at := base + pos
		pos += int64(next)
		text = text[next:]
		s := strings.TrimSpace(string(bytes.TrimRight(line, "\r")))
		if s == "" || s[0] == '#' {
			continue
		}
		switch f := strings.Fields(s); {
		case len(f) >= 3 && isAccess(f[0]) && isDecimal(f[1]):
			e, err := parseExtentLine(s, at, what)
			if err != nil {
				return nil, err
			}
			if len(d.extents) >= vmdkMaxExtents {
				return nil, &vfs.FormatError{File: what, Offset: at, Msg: fmt.Sprintf("more than %d extents", vmdkMaxExtents)}
			}
			total += e.sectors
			if total > maxVirtualSize/512 {
				return nil, &vfs.FormatError{File: what, Offset: at, Msg: "extents add up past the size bound"}
			}
			d.extents = append(d.extents, e)
		default:
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				continue // tolerated, as VMware does
			}
			k = strings.TrimSpace(k)
			v = strings.Trim(strings.TrimSpace(v), `"`)
			if field := fields[k]; field != nil {
				*field = v
			}
		}
	}
	return d, nil
}

func isAccess(s string) bool { return s == "RW" || s == "RDONLY" || s == "NOACCESS" }

func isDecimal(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseExtentLine parses ACCESS SECTORS TYPE ["FILE" [OFFSET]].
func parseExtentLine(s string, at int64, what string) (descExtent, error) {
	bad := func(format string, args ...any) (descExtent, error) {
		return descExtent{}, &vfs.FormatError{File: what + " extent", Offset: at, Msg: fmt.Sprintf(format, args...)}
	}
	f := strings.Fields(s)
	e := descExtent{access: f[0], typ: f[2], at: at}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n <= 0 || n > maxVirtualSize/512 {
		return bad("size %q sectors out of range", f[1])
	}
	e.sectors = n
	rest := s
	for range 3 { // skip the three fields
		rest = strings.TrimLeft(rest, " \t")
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			rest = ""
			break
		}
		rest = rest[i:]
	}
	rest = strings.TrimSpace(rest)
	if rest != "" {
		if rest[0] != '"' {
			return bad("file name not quoted: %q", rest)
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return bad("file name quote not closed")
		}
		e.file = rest[1 : 1+end]
		rest = strings.TrimSpace(rest[2+end:])
		if rest != "" {
			tok := strings.Fields(rest)[0]
			off, err := strconv.ParseInt(tok, 10, 64)
			if err != nil || off < 0 || off > maxVirtualSize/512 {
				return bad("offset %q out of range", tok)
			}
			e.offset = off
		}
	}
	return e, nil
}

// descImage is a disk assembled from a descriptor's extents.
type descImage struct {
	concat
	parentImg Image
}

func (m *descImage) Close() error {
	err := m.concat.Close()
	if m.parentImg != nil {
		if e := m.parentImg.Close(); err == nil {
			err = e
		}
	}
	return err
}

func openDescriptor(f readerAtCloser, size int64, path, dir string, opts *Options, depth int) (Image, error) {
	text := make([]byte, size)
	if err := readFull(f, text, 0, path+" vmdk descriptor"); err != nil {
		return nil, err
	}
	d, err := parseDescriptor(text, path+" vmdk descriptor", 0)
	if err != nil {
		return nil, err
	}
	if len(d.extents) == 0 {
		return nil, &vfs.FormatError{File: path + " vmdk descriptor", Offset: 0, Msg: "no extents"}
	}
	m := &descImage{concat: concat{format: VMDKDescriptor}}
	m.info.Format = VMDKDescriptor
	m.info.Files = []string{path}
	fail := func(err error) (Image, error) {
		m.Close()
		return nil, err
	}
	if d.hasParent() {
		m.info.BackingFile = d.parentHint
		if opts.Backing == nil {
			return nil, &BackingFileError{Path: path, Backing: d.parentHint}
		}
		if depth >= maxBackingHops {
			return nil, fmt.Errorf("%s: parent chain deeper than %d images", path, maxBackingHops)
		}
		p, note, err := openBacking(opts, path, d.parentHint, "vmdk")
		if err != nil {
			return nil, fmt.Errorf("%s: vmdk parent %q: %w", path, d.parentHint, err)
		}
		m.parentImg, m.info.Notes = p, append(m.info.Notes, note)
		pi := p.Info()
		m.info.Backing = &pi
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	files := map[string]*os.File{}
	open := func(e descExtent) (*os.File, int64, error) {
		if e.file == "" {
			return nil, 0, &vfs.FormatError{File: path + " vmdk descriptor extent", Offset: e.at, Msg: e.typ + " extent without a file name"}
		}
		name := filepath.FromSlash(e.file)
		if filepath.IsAbs(name) || strings.HasPrefix(e.file, "/") {
			return nil, 0, fmt.Errorf("%s: extent file %q: absolute names are not followed (extents must lie beside the descriptor)", path, e.file)
		}
		if ef, ok := files[name]; ok {
			fi, err := ef.Stat()
			if err != nil {
				return nil, 0, err
			}
			return ef, fi.Size(), nil
		}
		ef, err := vfs.OpenInRootNoatime(root, name)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: extent file %q: %w", path, e.file, err)
		}
		fi, err := ef.Stat()
		if err != nil {
			ef.Close()
			return nil, 0, err
		}
		if !fi.Mode().IsRegular() {
			ef.Close()
			return nil, 0, fmt.Errorf("%s: extent file %q is not a regular file", path, e.file)
		}
		files[name] = ef
		m.closer = append(m.closer, ef)
		m.info.Files = append(m.info.Files, filepath.Join(dir, name))
		return ef, fi.Size(), nil
	}
	c := newCache(opts.CacheBytes)
	var pos, gdBytes int64
	for i, e := range d.extents {
		bytesLen := e.sectors * 512
		pt := part{start: pos, size: bytesLen}
		m.info.Extents = append(m.info.Extents, Extent{Access: e.access, Type: e.typ, File: e.file, Start: pos, Size: bytesLen, Offset: e.offset * 512})
		if e.access == "NOACCESS" {
			pt.r = &noAccess{path: path, at: e.at}
			m.parts = append(m.parts, pt)
			pos += bytesLen
			continue
		}
		switch e.typ {
		case "ZERO":
			// pt.r nil: zeros
		case "FLAT", "VMFS":
			ef, fsz, err := open(e)
			if err != nil {
				return fail(err)
			}
			pt.r = &fileSection{r: ef, fileSize: fsz, offset: e.offset * 512, name: filepath.Join(dir, e.file)}
			if e.offset*512+bytesLen > fsz {
				m.info.Notes = append(m.info.Notes, fmt.Sprintf("extent file %q holds %d bytes, the descriptor says %d from %d: reading the missing part fails", e.file, fsz, bytesLen, e.offset*512))
			}
		case "SPARSE":
			ef, fsz, err := open(e)
			if err != nil {
				return fail(err)
			}
			head := make([]byte, 4)
			if _, err := ef.ReadAt(head, 0); err != nil || !bytes.Equal(head, magicVMDK) {
				return fail(&vfs.FormatError{File: filepath.Join(dir, e.file) + " vmdk sparse extent", Offset: 0, Msg: "no KDMV magic"})
			}
			se, err := parseSparseExtent(ef, fsz, filepath.Join(dir, e.file), c, uint32(i+1))
			if err != nil {
				return fail(err)
			}
			// the grain directories are kept: their sum is bounded as one is
			// (each extent may name the same file, and be 64 MiB of directory)
			if gdBytes += int64(len(se.gd)) * 4; gdBytes > vmdkMaxGDBytes {
				return fail(&vfs.FormatError{File: path + " vmdk descriptor", Offset: e.at, Msg: fmt.Sprintf("the grain directories of the sparse extents add up past %d bytes", vmdkMaxGDBytes)})
			}
			if se.size < bytesLen {
				m.info.Notes = append(m.info.Notes, fmt.Sprintf("sparse extent %q has capacity %d bytes, the descriptor says %d: the rest reads as unallocated", e.file, se.size, bytesLen))
				se.size = bytesLen
			}
			if m.parentImg != nil {
				se.parent, se.parentSize, se.parentBase = m.parentImg, m.parentImg.Size(), pos
			}
			if se.compressed {
				m.info.Compression = "deflate"
			}
			m.info.ClusterSize = se.grainSize
			m.info.Notes = append(m.info.Notes, se.notes...)
			pt.r = se
		case "VMFSSPARSE", "SESPARSE":
			return fail(&UnsupportedError{Path: path, What: "VMDK " + e.typ + " extent (ESXi snapshot delta)", Hint: "consolidate the snapshot on the host, or convert with qemu-img convert -O raw"})
		case "VMFSRDM", "VMFSRAW":
			return fail(&UnsupportedError{Path: path, What: "VMDK " + e.typ + " extent (a raw device mapping)", Hint: "image the mapped device itself"})
		default:
			return fail(&vfs.FormatError{File: path + " vmdk descriptor extent", Offset: e.at, Msg: fmt.Sprintf("unknown extent type %q", e.typ)})
		}
		m.parts = append(m.parts, pt)
		pos += bytesLen
	}
	m.size = pos
	m.info.Size = pos
	return m, nil
}

type noAccess struct {
	path string
	at   int64
}

func (n *noAccess) ReadAt(p []byte, off int64) (int, error) {
	return 0, &vfs.FormatError{File: n.path + " vmdk descriptor extent", Offset: n.at, Msg: "NOACCESS extent: its data is not in the image"}
}

var _ io.ReaderAt = (*noAccess)(nil)
