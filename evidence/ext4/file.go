package ext4

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// file is an open regular file (or the content of a symlink, directory or
// EA inode read internally). Data blocks are read straight from the
// device into the caller's buffer, one read per contiguous run; only the
// block map's own blocks go through the block cache.
type file struct {
	f      *FS
	in     *inode
	name   string
	size   int64
	inline []byte      // the whole content of an inline-data inode
	rd     blockReader // metadata reader for the block map; nil: the FS's own

	mu        sync.Mutex
	pos       int64
	last      run // the run found last, for sequential reads
	lastStart uint64
	lastOK    bool
}

var _ vfs.File = (*file)(nil)

// openFile prepares the content of an inode for reading.
func (f *FS) openFile(in *inode, name string) (*file, error) {
	fl := &file{f: f, in: in, name: name, size: int64(in.size)}
	if in.has(flagInlineData) {
		data, err := f.inlineContent(in)
		if err != nil {
			return nil, err
		}
		fl.inline = data
	}
	return fl, nil
}

// maxInline bounds the content of an inline-data inode (i_block plus the
// system.data attribute, which lives in the inode body).
const maxInline = iBlockSize + maxBlockSize

// inlineContent returns the content of an inline-data inode: the first 60
// bytes in i_block, the rest in the system.data attribute.
func (f *FS) inlineContent(in *inode) ([]byte, error) {
	if in.size > maxInline {
		return nil, formatErr("inline data", in.ino, in.off, fmt.Sprintf("size %d too large for inline data", in.size))
	}
	n := int(in.size)
	out := make([]byte, n)
	copy(out, in.block[:min(n, iBlockSize)])
	if n <= iBlockSize {
		return out, nil
	}
	var total int
	ents, err := f.ibodyXattrs(in, &total)
	if err != nil {
		return nil, err
	}
	rest := inlineData(ents)
	if len(rest) < n-iBlockSize {
		return nil, formatErr("inline data", in.ino, in.off, fmt.Sprintf("size %d but only %d bytes inline", n, iBlockSize+len(rest)))
	}
	copy(out[iBlockSize:], rest)
	return out, nil
}

func (fl *file) Size() int64 { return fl.size }

func (fl *file) Close() error { return nil }

func (fl *file) Read(p []byte) (int, error) {
	fl.mu.Lock()
	pos := fl.pos
	fl.mu.Unlock()
	n, err := fl.ReadAt(p, pos)
	fl.mu.Lock()
	fl.pos = pos + int64(n)
	fl.mu.Unlock()
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek lets the file serve io.ReadSeeker callers (http.ServeContent, io.Copy
// through a SectionReader works without it).
func (fl *file) Seek(offset int64, whence int) (int64, error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += fl.pos
	case io.SeekEnd:
		offset += fl.size
	default:
		return 0, errors.New("seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	fl.pos = offset
	return offset, nil
}

func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrInvalid}
	}
	if off >= fl.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(len(p)) > fl.size-off {
		p = p[:fl.size-off]
	}
	if fl.inline != nil {
		n := copy(p, fl.inline[off:])
		if n < want {
			return n, io.EOF
		}
		return n, nil
	}
	bs := fl.f.bs
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		lblk := uint64(pos / bs)
		inb := pos % bs
		r, err := fl.runAt(lblk)
		if err != nil {
			return n, &fs.PathError{Op: "read", Path: fl.name, Err: err}
		}
		chunk := len(p) - n
		if avail := int64(r.n)*bs - inb; avail < int64(chunk) {
			chunk = int(avail)
		}
		if r.phys == 0 || r.uninit {
			clear(p[n : n+chunk])
		} else if err := fl.f.readData(p[n:n+chunk], r.phys, inb, fl.in.ino); err != nil {
			return n, &fs.PathError{Op: "read", Path: fl.name, Err: err}
		}
		n += chunk
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// runAt maps logical block lblk, reusing the last run found when it
// covers lblk.
func (fl *file) runAt(lblk uint64) (run, error) {
	fl.mu.Lock()
	if fl.lastOK && lblk >= fl.lastStart && lblk-fl.lastStart < fl.last.n {
		r := fl.last
		d := lblk - fl.lastStart
		fl.mu.Unlock()
		if r.phys != 0 {
			r.phys += d
		}
		r.n -= d
		return r, nil
	}
	fl.mu.Unlock()
	r, err := fl.f.mapBlock(fl.in, lblk, fl.rd)
	if err != nil {
		return r, err
	}
	fl.mu.Lock()
	fl.last, fl.lastStart, fl.lastOK = r, lblk, true
	fl.mu.Unlock()
	return r, nil
}

// readData reads file data at byte inb of physical block phys into p,
// straight from the device (through the journal replay map where one is
// in force).
func (f *FS) readData(p []byte, phys uint64, inb int64, ino uint32) error {
	if f.replay != nil {
		for len(p) > 0 {
			chunk := min(int64(len(p)), f.bs-inb)
			src := phys
			if j, ok := f.replay[phys]; ok {
				src = j
			}
			if err := f.readDevice(p[:chunk], int64(src)*f.bs+inb, ino); err != nil {
				return err
			}
			if f.escaped[phys] && inb < 4 {
				var m [4]byte
				be.PutUint32(m[:], jbdMagic)
				copy(p[:chunk], m[inb:])
			}
			p, phys, inb = p[chunk:], phys+1, 0
		}
		return nil
	}
	return f.readDevice(p, int64(phys)*f.bs+inb, ino)
}

func (f *FS) readDevice(p []byte, off int64, ino uint32) error {
	if off < 0 || off > f.size || f.size-off < int64(len(p)) {
		return pastErr("data", ino, off, fmt.Sprintf("%d bytes past the end of the device (%d bytes)", len(p), f.size))
	}
	if err := readFull(f.r, p, off); err != nil {
		return formatErr("data", ino, off, "read error: "+err.Error())
	}
	return nil
}
