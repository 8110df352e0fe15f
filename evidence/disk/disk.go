package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// Image is a disk image opened as the disk it holds.
type Image interface {
	io.ReaderAt
	// Size is the virtual disk's size in bytes.
	Size() int64
	// Format is the container format the image was read as.
	Format() Format
	// Info describes the image (format, size, files, clusters, backing).
	Info() Info
	Close() error
}

// Format names a disk image container format.
type Format string

const (
	Raw            Format = "raw"             // a plain disk image (or a block device)
	SplitRaw       Format = "split-raw"       // name.001, name.002… read as one raw image
	QCOW2          Format = "qcow2"           // QEMU copy-on-write v2 or v3
	VMDKSparse     Format = "vmdk-sparse"     // VMDK hosted sparse extent (monolithicSparse)
	VMDKStream     Format = "vmdk-stream"     // VMDK streamOptimized (compressed grains, markers)
	VMDKDescriptor Format = "vmdk-descriptor" // VMDK text descriptor naming FLAT/SPARSE/ZERO extents
)

// Info describes an opened image. Field names are stable JSON.
type Info struct {
	Format      Format   `json:"format"`
	Size        int64    `json:"size"`                   // virtual disk size in bytes
	Files       []string `json:"files"`                  // host files read, in disk order
	Version     int      `json:"version,omitempty"`      // qcow2 or VMDK sparse version
	ClusterSize int64    `json:"cluster_size,omitempty"` // qcow2 cluster or VMDK grain, bytes
	Compression string   `json:"compression,omitempty"`  // "zlib", "zstd" (qcow2), "deflate" (VMDK)
	BackingFile string   `json:"backing_file,omitempty"` // as the image names it
	Backing     *Info    `json:"backing,omitempty"`      // the backing image, when opened
	Extents     []Extent `json:"extents,omitempty"`      // of a VMDK descriptor
	Notes       []string `json:"notes,omitempty"`        // what was odd but did not stop reading
}

// Extent is one extent of a VMDK descriptor.
type Extent struct {
	Access string `json:"access"`           // RW, RDONLY
	Type   string `json:"type"`             // FLAT, VMFS, SPARSE, ZERO
	File   string `json:"file,omitempty"`   // as the descriptor names it
	Start  int64  `json:"start"`            // byte offset in the virtual disk
	Size   int64  `json:"size"`             // bytes
	Offset int64  `json:"offset,omitempty"` // byte offset in the file (FLAT)
}

// Options tune Open. The zero value (or nil) is fine.
type Options struct {
	// Backing opens the image a qcow2 image or a VMDK child names as its
	// backing file or parent (the name as recorded, unresolved). Nil refuses
	// such images with a *BackingFileError. BackingDir makes one that opens
	// names inside one directory.
	Backing BackingOpener
	// CacheBytes bounds the per-image cache of tables and decompressed
	// clusters; 0 means DefaultCacheBytes.
	CacheBytes int64
}

// BackingOpener opens a backing file by the name an image records.
type BackingOpener func(name string) (Image, error)

// DefaultCacheBytes is the cache bound when Options.CacheBytes is 0.
const DefaultCacheBytes = 8 << 20

// Bounds on what headers may claim.
const (
	maxVirtualSize = 1 << 56 // 64 PiB: past any real disk, below int64 overflow in every sum
	maxSplitParts  = 100000
	maxBackingHops = 16
)

// UnsupportedError is a format or feature deadnode recognises but does not
// read. errors.Is(err, ErrUnsupported) holds.
type UnsupportedError struct {
	Path string // the image file
	What string // "EWF (E01) image", "qcow2 encryption", …
	Hint string // what to do instead
}

// ErrUnsupported matches every *UnsupportedError.
var ErrUnsupported = errors.New("unsupported disk image")

func (e *UnsupportedError) Error() string {
	s := e.Path + ": " + e.What + " is not read"
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// BackingFileError refuses an image that needs a backing file (a qcow2
// backing file, a VMDK parent) when Options.Backing is nil.
type BackingFileError struct {
	Path    string // the image
	Backing string // the backing file as the image names it
}

func (e *BackingFileError) Error() string {
	return fmt.Sprintf("%s: the image has a backing file %q: give an opener for it (disk.Options.Backing) or flatten the chain (qemu-img convert -O raw)", e.Path, e.Backing)
}

// Open opens the disk image at path read-only, detecting its format by
// content (a split raw image by its .001 name).
func Open(path string, opts *Options) (Image, error) {
	return openDepth(path, opts, 0)
}

func openDepth(path string, opts *Options, depth int) (Image, error) {
	if opts == nil {
		opts = &Options{}
	}
	f, err := vfs.OpenNoatime(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, &os.PathError{Op: "open disk image", Path: path, Err: errors.New("is a directory")}
	}
	size := fi.Size()
	if !fi.Mode().IsRegular() {
		// a block device: its size is where a seek to the end lands
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, err
		}
	}
	if parts := splitSiblings(path); len(parts) > 1 {
		f.Close()
		return openSplit(path, parts)
	}
	img, err := openReader(f, size, path, filepath.Dir(path), opts, depth)
	if err != nil {
		f.Close()
		return nil, err
	}
	return img, nil
}

// OpenReader opens an image held by r (size bytes) by content, as Open does
// for a file; name is used in messages and Info. Extent files of a VMDK
// descriptor are refused (there is no directory to resolve them in).
// Closing the image does not close r.
func OpenReader(r io.ReaderAt, size int64, name string, opts *Options) (Image, error) {
	if opts == nil {
		opts = &Options{}
	}
	return openReader(nopCloser{r}, size, name, "", opts, 0)
}

type nopCloser struct{ io.ReaderAt }

func (nopCloser) Close() error { return nil }

type readerAtCloser interface {
	io.ReaderAt
	io.Closer
}

// Magic numbers of the formats read or refused.
var (
	magicQCOW   = []byte("QFI\xfb")
	magicVMDK   = []byte("KDMV")
	magicCOWD   = []byte("COWD")
	magicEWF    = []byte("EVF\x09\x0d\x0a\xff\x00")
	magicEWF2   = []byte("EVF2\x0d\x0a\x81\x00")
	magicLEF    = []byte("LVF\x09\x0d\x0a\xff\x00")
	magicVHDX   = []byte("vhdxfile")
	magicVHD    = []byte("conectix")
	descHeader  = []byte("# Disk DescriptorFile")
	magicVDI    = uint32(0xbeda107f)
	maxDescSize = int64(1 << 20)
)

func openReader(f readerAtCloser, size int64, path, dir string, opts *Options, depth int) (Image, error) {
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, magicQCOW):
		return openQCOW2(f, size, path, opts, depth)
	case bytes.HasPrefix(head, magicVMDK):
		return openVMDKSparse(f, size, path, opts, depth)
	case bytes.HasPrefix(head, descHeader) && size <= maxDescSize:
		if dir == "" {
			return nil, &UnsupportedError{Path: path, What: "VMDK descriptor without a directory", Hint: "open it with disk.Open from its path"}
		}
		img, err := openDescriptor(f, size, path, dir, opts, depth)
		if err == nil {
			f.Close() // the descriptor is read whole; the extents hold their own files
		}
		return img, err
	case bytes.HasPrefix(head, magicCOWD):
		return nil, &UnsupportedError{Path: path, What: "VMware ESX sparse (COWD) extent", Hint: "convert it with qemu-img convert -O raw"}
	case bytes.HasPrefix(head, magicEWF), bytes.HasPrefix(head, magicEWF2), bytes.HasPrefix(head, magicLEF):
		return nil, &UnsupportedError{Path: path, What: "EWF (E01/Ex01) image", Hint: "convert it with ewfexport -t raw (or mount it with ewfmount) and give the raw image"}
	case bytes.HasPrefix(head, magicVHDX):
		return nil, &UnsupportedError{Path: path, What: "VHDX image", Hint: "convert it with qemu-img convert -f vhdx -O raw"}
	case bytes.HasPrefix(head, magicVHD):
		return nil, &UnsupportedError{Path: path, What: "dynamic VHD image", Hint: "convert it with qemu-img convert -f vpc -O raw"}
	case len(head) >= 0x44 && binary.LittleEndian.Uint32(head[0x40:]) == magicVDI:
		return nil, &UnsupportedError{Path: path, What: "VirtualBox VDI image", Hint: "convert it with qemu-img convert -f vdi -O raw"}
	}
	return &rawImage{r: f, size: size, path: path}, nil
}

// splitSiblings returns name.001, name.002… when path is the first part of
// a split raw image (its name ends in a run of at least three digits equal
// to 1, and the second part exists); otherwise nil.
func splitSiblings(path string) []string {
	base := filepath.Base(path)
	dot := strings.LastIndexByte(base, '.')
	if dot < 0 {
		return nil
	}
	digits := base[dot+1:]
	if len(digits) < 3 || len(digits) > 6 {
		return nil
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil
		}
	}
	if v, _ := strconv.Atoi(digits); v != 1 {
		return nil
	}
	stem, width := base[:dot+1], len(digits)
	parts := []string{base}
	dir := filepath.Dir(path)
	for i := 2; i <= maxSplitParts; i++ {
		next := fmt.Sprintf("%s%0*d", stem, width, i)
		if len(next) != len(base) {
			break
		}
		if _, err := os.Lstat(filepath.Join(dir, next)); err != nil {
			break
		}
		parts = append(parts, next)
	}
	if len(parts) < 2 {
		return nil
	}
	return parts
}

// BackingDir returns an opener for backing files inside dir: a name
// resolves, as QEMU resolves it, against the directory of the image that
// names it (dir itself for the image opened), and inside dir only
// (through an os.Root: no absolute name, no climbing out, no symlink
// out). A chain deeper than 16 images, or one that comes back to an image
// already in it, is refused. The opener counts the images of one chain:
// make one per Open.
func BackingDir(dir string, opts *Options) BackingOpener {
	var mu sync.Mutex
	hops := 0
	var seen []os.FileInfo
	// from opens names found in an image at base (a directory relative to
	// dir, slash-separated).
	var from func(base string) BackingOpener
	from = func(base string) BackingOpener {
		return func(name string) (Image, error) {
			mu.Lock()
			hops++
			h := hops
			mu.Unlock()
			if h > maxBackingHops {
				return nil, fmt.Errorf("backing chain deeper than %d images at %q (a loop?)", maxBackingHops, name)
			}
			if filepath.IsAbs(name) {
				return nil, fmt.Errorf("backing file %q: absolute names are not followed; put the file beside the image and give BackingDir that directory", name)
			}
			rel := path.Join(base, filepath.ToSlash(name))
			root, err := os.OpenRoot(dir)
			if err != nil {
				return nil, err
			}
			defer root.Close()
			f, err := vfs.OpenInRootNoatime(root, filepath.FromSlash(rel))
			if err != nil {
				return nil, fmt.Errorf("backing file %q: %w", name, err)
			}
			fi, err := f.Stat()
			if err != nil || !fi.Mode().IsRegular() {
				f.Close()
				if err == nil {
					err = errors.New("not a regular file")
				}
				return nil, fmt.Errorf("backing file %q: %w", name, err)
			}
			mu.Lock()
			for _, s := range seen {
				if os.SameFile(s, fi) {
					mu.Unlock()
					f.Close()
					return nil, fmt.Errorf("backing file %q: the chain comes back to an image already in it (a loop)", name)
				}
			}
			seen = append(seen, fi)
			mu.Unlock()
			o := Options{Backing: from(path.Dir(rel))}
			if opts != nil {
				o.CacheBytes = opts.CacheBytes
			}
			img, err := openReader(f, fi.Size(), filepath.Join(dir, filepath.FromSlash(rel)), filepath.Join(dir, filepath.FromSlash(path.Dir(rel))), &o, h)
			if err != nil {
				f.Close()
				return nil, err
			}
			return img, nil
		}
	}
	return from(".")
}

// readFull reads len(p) bytes at off, turning a short read into a
// FormatError naming what was read.
func readFull(r io.ReaderAt, p []byte, off int64, what string) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &vfs.FormatError{File: what, Offset: off, Msg: fmt.Sprintf("read %d of %d bytes", n, len(p)), Err: err}
}

// clip trims a read of len(p) at off to a disk of size bytes; eof says the
// read was cut (io.EOF is then due).
func clip(p []byte, off, size int64) ([]byte, bool, error) {
	if off < 0 {
		return nil, false, errors.New("negative offset")
	}
	if off >= size {
		return p[:0], true, nil
	}
	if rem := size - off; int64(len(p)) > rem {
		return p[:rem], true, nil
	}
	return p, false, nil
}

// readBlocks is ReadAt of a disk of size bytes stored in blocks of bs
// bytes (qcow2 clusters, VMDK grains): read fills each piece of p from
// block b, starting at byte in of it.
func readBlocks(p []byte, off, size, bs int64, read func(p []byte, b, in int64) error) (int, error) {
	r, eof, err := clip(p, off, size)
	if err != nil {
		return 0, err
	}
	done := 0
	for done < len(r) {
		pos := off + int64(done)
		in := pos % bs
		chunk := r[done:]
		if rem := bs - in; int64(len(chunk)) > rem {
			chunk = chunk[:rem]
		}
		if err := read(chunk, pos/bs, in); err != nil {
			return done, err
		}
		done += len(chunk)
	}
	if eof {
		return done, io.EOF
	}
	return done, nil
}

// closeWithParent closes an image's file, then its parent image (nil when
// it has none).
func closeWithParent(own io.Closer, parent Image) error {
	err := own.Close()
	if parent != nil {
		err = errors.Join(err, parent.Close())
	}
	return err
}

// parentInfo is a parent image's Info for Info.Backing (nil without one).
// qemuFormat is the name QEMU gives an image's format (backing_fmt).
func qemuFormat(f Format) string {
	switch f {
	case Raw, SplitRaw:
		return "raw"
	case QCOW2:
		return "qcow2"
	case VMDKSparse, VMDKStream, VMDKDescriptor:
		return "vmdk"
	}
	return string(f)
}

// openBacking opens the backing image (or parent) a child image names and
// checks that it is what the child says it is: the format its header
// records (qcow2's backing_fmt; a VMDK child's parent is a VMDK). Where
// the child records none, the backing image is read as its content says,
// as QEMU probes it, and the note says so. The note names the host file
// read, so that an examiner sees which file completed the image.
func openBacking(opts *Options, path, name, want string) (Image, string, error) {
	b, err := opts.Backing(name)
	if err != nil {
		return nil, "", err
	}
	got := qemuFormat(b.Format())
	if want != "" && got != want {
		b.Close()
		return nil, "", fmt.Errorf("it is a %s image, but %s records its backing format as %s", got, path, want)
	}
	host := name
	if fs := b.Info().Files; len(fs) > 0 {
		host = fs[0]
	}
	note := fmt.Sprintf("backing file %q read from %s (%s)", name, host, got)
	if want == "" {
		note += "; the image records no backing format: probed by its content, as QEMU does"
	}
	return b, note, nil
}

func parentInfo(parent Image) *Info {
	if parent == nil {
		return nil
	}
	in := parent.Info()
	return &in
}

// readParent fills p, an unallocated piece of a child image at pos, from
// its parent (backing file) of size bytes: zeros past the parent's end.
// The error is the parent's, as it said it.
func readParent(p []byte, parent io.ReaderAt, pos, size int64) error {
	if pos >= size {
		zero(p)
		return nil
	}
	n := len(p)
	if rem := size - pos; int64(n) > rem {
		n = int(rem)
		zero(p[n:])
	}
	m, err := parent.ReadAt(p[:n], pos)
	if m == n {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func zero(p []byte) {
	clear(p)
}
