package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// rawImage is a plain disk image or block device: the file is the disk.
type rawImage struct {
	r    readerAtCloser
	size int64
	path string
}

func (m *rawImage) ReadAt(p []byte, off int64) (int, error) {
	q, eof, err := clip(p, off, m.size)
	if err != nil {
		return 0, err
	}
	n, err := m.r.ReadAt(q, off)
	if err == io.EOF && n == len(q) {
		err = nil
	}
	if err == nil && eof {
		err = io.EOF
	}
	return n, err
}

func (m *rawImage) Size() int64    { return m.size }
func (m *rawImage) Format() Format { return Raw }
func (m *rawImage) Close() error   { return m.r.Close() }
func (m *rawImage) Info() Info {
	return Info{Format: Raw, Size: m.size, Files: []string{m.path}}
}

// concat reads several ReaderAts end to end as one (split raw parts, VMDK
// descriptor extents).
type concat struct {
	parts  []part
	size   int64
	format Format
	info   Info
	closer []io.Closer
}

type part struct {
	start, size int64
	r           io.ReaderAt // nil: zeros (a ZERO extent)
}

func (c *concat) ReadAt(p []byte, off int64) (int, error) {
	q, eof, err := clip(p, off, c.size)
	if err != nil {
		return 0, err
	}
	done := 0
	for done < len(q) {
		pos := off + int64(done)
		// the part holding pos: the last one starting at or before it
		i := sort.Search(len(c.parts), func(i int) bool { return c.parts[i].start > pos }) - 1
		if i < 0 {
			return done, fmt.Errorf("disk offset %d before the first part", pos)
		}
		pt := c.parts[i]
		in := pos - pt.start
		chunk := q[done:]
		if rem := pt.size - in; int64(len(chunk)) > rem {
			chunk = chunk[:rem]
		}
		if pt.r == nil {
			zero(chunk)
		} else {
			n, err := pt.r.ReadAt(chunk, in)
			if n < len(chunk) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return done + n, err
			}
		}
		done += len(chunk)
	}
	if eof {
		return done, io.EOF
	}
	return done, nil
}

func (c *concat) Size() int64    { return c.size }
func (c *concat) Format() Format { return c.format }
func (c *concat) Info() Info     { return c.info }
func (c *concat) Close() error {
	var errs []error
	for _, cl := range c.closer {
		errs = append(errs, cl.Close())
	}
	return errors.Join(errs...)
}

// fileSection is a part of a file that must hold size bytes: reading past the
// file's end is an error naming the file (the data is missing, not zero).
type fileSection struct {
	r        io.ReaderAt
	fileSize int64
	offset   int64
	name     string
}

func (s *fileSection) ReadAt(p []byte, off int64) (int, error) {
	pos := s.offset + off
	if pos+int64(len(p)) > s.fileSize {
		avail := max(s.fileSize-pos, 0)
		n := 0
		if avail > 0 {
			n, _ = s.r.ReadAt(p[:avail], pos)
		}
		return n, fmt.Errorf("%s: the file ends at %d: bytes %d-%d of the disk it should hold are missing", s.name, s.fileSize, pos, pos+int64(len(p)))
	}
	n, err := s.r.ReadAt(p, pos)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return n, err
}

// openSplit opens name.001, name.002… (the names from splitSiblings, all in
// path's directory) as one raw image.
func openSplit(path string, names []string) (Image, error) {
	dir := filepath.Dir(path)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	c := &concat{format: SplitRaw}
	var pos int64
	for _, name := range names {
		f, err := vfs.OpenInRootNoatime(root, name)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.closer = append(c.closer, f)
		fi, err := f.Stat()
		if err != nil {
			c.Close()
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			c.Close()
			return nil, fmt.Errorf("%s: part of a split image is not a regular file", filepath.Join(dir, name))
		}
		if fi.Size() == 0 {
			continue
		}
		c.parts = append(c.parts, part{start: pos, size: fi.Size(), r: f})
		c.info.Files = append(c.info.Files, filepath.Join(dir, name))
		pos += fi.Size()
		if pos > maxVirtualSize {
			c.Close()
			return nil, fmt.Errorf("%s: split image larger than %d bytes", path, int64(maxVirtualSize))
		}
	}
	c.size = pos
	c.info.Format, c.info.Size = SplitRaw, pos
	return c, nil
}
