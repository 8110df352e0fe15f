package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// ImageDir is one directory of CRIU images inside an evidence source: a
// checkpoint's own (Checkpoint.Images), or the images of the previous
// (pre-)dump of an incremental dump (ImageDir.Parent). It is what package
// memory reads pages through. Safe for concurrent use: every call decodes
// from the source afresh.
type ImageDir struct {
	src    evidence.Source
	dir    string
	closer io.Closer // a host directory Parent opened
}

// NewImageDir is the directory dir of CRIU images inside src (for a
// caller that has only the images; Open finds them by content).
func NewImageDir(src evidence.Source, dir string) *ImageDir {
	return &ImageDir{src: src, dir: dir}
}

func (d *ImageDir) path(name string) string {
	if d.dir == "." || d.dir == "" {
		return name
	}
	return path.Join(d.dir, name)
}

// label names an image in messages: the source, then the path inside it.
func (d *ImageDir) label(name string) string {
	return d.src.String() + ":" + d.path(name)
}

// String names the directory: the source, then the path inside it.
func (d *ImageDir) String() string { return d.src.String() + ":" + d.dir }

// Close releases a host directory Parent opened; a checkpoint's own images
// are released with the Checkpoint.
func (d *ImageDir) Close() error {
	if d.closer != nil {
		err := d.closer.Close()
		d.closer = nil
		return err
	}
	return nil
}

func (d *ImageDir) exists(name string) bool {
	st, err := d.src.Lstat(d.path(name))
	return err == nil && st.Mode.IsRegular()
}

// open opens a protobuf image; the caller closes the returned file.
func (d *ImageDir) open(name string) (*ImageReader, io.Closer, error) {
	f, err := d.src.Open(d.path(name))
	if err != nil {
		return nil, nil, err
	}
	ir, err := NewImageReader(f, f.Size(), d.label(name))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return ir, f, nil
}

// decodeImage opens and decodes one image.
func decodeImage[R any](d *ImageDir, name string, dec decoder[R]) (R, error) {
	ir, c, err := d.open(name)
	if err != nil {
		var zero R
		return zero, err
	}
	defer c.Close()
	return dec(ir)
}

func (d *ImageDir) readFile(name string, max int64) ([]byte, error) {
	return evidence.ReadFile(d.src, d.path(name), max)
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Pagemap decodes pagemap-<pid>.img of this directory (the pid is not
// checked against a pstree: parents of an incremental dump have none).
func (d *ImageDir) Pagemap(pid uint32) (*Pagemap, error) {
	pm, err := d.pagemap(fmt.Sprintf(imgPagemapFmt, pid))
	if pm != nil {
		pm.PID = pid
	}
	return pm, err
}

func (d *ImageDir) pagemap(name string) (*Pagemap, error) {
	pm, err := decodeImage(d, name, DecodePagemap)
	if pm != nil {
		pm.Image = d.label(name)
	}
	return pm, err
}

// ShmemPagemap decodes pagemap-shmem-<shmid>.img: the pages of a shared
// memory object (anonymous shared mapping, memfd or SysV segment), with
// offsets in the object as addresses.
func (d *ImageDir) ShmemPagemap(shmid uint64) (*Pagemap, error) {
	return d.pagemap(fmt.Sprintf(imgPagemapShmemFmt, shmid))
}

// PagesImage is a pages-<id>.img: the raw pages a pagemap's present runs
// point into, at their Offset.
type PagesImage struct {
	Name   string // for messages: the source, then the path inside it
	Member string // the path inside the source (the archive member)
	Size   int64
	// File reads the image; nil when a compressed archive was opened
	// without its pages (Options.Pages): the bytes are then only in the
	// archive's stream.
	File evidence.File
}

// Pages opens pages-<id>.img. Close its File.
func (d *ImageDir) Pages(id uint32) (*PagesImage, error) {
	name := fmt.Sprintf(imgPagesFmt, id)
	p := &PagesImage{Name: d.label(name), Member: d.path(name)}
	f, err := d.src.Open(p.Member)
	switch {
	case err == nil:
		p.File, p.Size = f, f.Size()
	case errors.Is(err, evidence.ErrNotRetained):
		st, err := d.src.Lstat(p.Member)
		if err != nil {
			return nil, err
		}
		p.Size = st.Size
	default:
		return nil, err
	}
	return p, nil
}

// Check says why the image cannot give the need bytes its pagemap
// promises: it is truncated, or CRIU compressed it (this package reads
// pages uncompressed only, as CRIU writes them).
func (p *PagesImage) Check(need int64) error {
	if need <= p.Size {
		return nil
	}
	kind := "truncated"
	if p.File == nil {
		// not kept from the archive: the magic is not at hand
	} else if c := evidence.DetectCompression(p.File); c != evidence.CompressionNone {
		kind = fmt.Sprintf("compressed (%v): compressed pages images are not supported", c)
	} else if p.Size > 4 {
		var m [4]byte
		if _, err := p.File.ReadAt(m[:], 0); err == nil && string(m[:]) == "\x04\x22\x4d\x18" {
			kind = "compressed (lz4): compressed pages images are not supported"
		}
	}
	return &evidence.FormatError{File: p.Name, Offset: p.Size, Msg: fmt.Sprintf("holds %d bytes but the pagemap needs %d: %s", p.Size, need, kind)}
}

// Parent opens the images of the previous (pre-)dump of an incremental
// dump, which the "parent" link (a symlink or a directory) names. A
// relative link is followed inside the source; with outside set, a link
// that leaves a host directory source is followed on the host too (the
// usual case of a CRIU images dir opened on its own, whose parent is a
// sibling "../pre-dump"). An absolute link is never followed. Close the
// parent when done.
func (d *ImageDir) Parent(outside bool) (*ImageDir, error) {
	link := d.path(parentLink)
	st, err := d.src.Lstat(link)
	if err != nil {
		return nil, fmt.Errorf("%s: no parent images: %w", d.label(parentLink), err)
	}
	if st.Mode.IsDir() {
		return &ImageDir{src: d.src, dir: link}, nil
	}
	if st.Mode&fs.ModeSymlink == 0 {
		return nil, fmt.Errorf("%s: not a directory or link", d.label(parentLink))
	}
	target, err := d.src.Readlink(link)
	if err != nil {
		return nil, err
	}
	lexical := path.Join(d.dir, target)
	if !strings.HasPrefix(target, "/") && lexical != ".." && !strings.HasPrefix(lexical, "../") {
		res, err := evidence.Resolve(d.src, link, true)
		if err != nil {
			return nil, err
		}
		if st, err := d.src.Lstat(res); err != nil || !st.Mode.IsDir() {
			return nil, fmt.Errorf("%s -> %s: parent images not in the evidence", d.label(parentLink), target)
		}
		return &ImageDir{src: d.src, dir: res}, nil
	}
	hp, ok := d.src.(evidence.HostPather)
	if !outside || !ok || strings.HasPrefix(target, "/") {
		return nil, fmt.Errorf("%s -> %s: parent images outside the evidence", d.label(parentLink), target)
	}
	base, err := hp.HostPath(d.dir)
	if err != nil {
		return nil, err
	}
	dir, err := evidence.OpenDir(filepath.Join(base, filepath.FromSlash(target)))
	if err != nil {
		return nil, fmt.Errorf("%s -> %s: %w", d.label(parentLink), target, err)
	}
	return &ImageDir{src: dir, dir: ".", closer: dir}, nil
}

// detectImagesDir finds the CRIU images in src by content: a directory
// holding inventory.img (with the INVENTORY magic) and pstree.img. It looks
// at dir when given, else at the root, at "checkpoint" and at the root's
// other subdirectories.
func detectImagesDir(src evidence.Source, dir string) (string, error) {
	try := func(d string) bool {
		im := &ImageDir{src: src, dir: d}
		if !im.exists(imgInventory) || !im.exists(imgPstree) {
			return false
		}
		ir, c, err := im.open(imgInventory)
		if err != nil {
			return false
		}
		defer c.Close()
		return ir.Magic() == magicInventory
	}
	if dir != "" {
		d, err := evidence.Clean(dir)
		if err != nil {
			return "", err
		}
		if !try(d) {
			return "", fmt.Errorf("%s: %s holds no CRIU images (inventory.img and pstree.img)", src, d)
		}
		return d, nil
	}
	for _, d := range []string{".", dirCheckpoint} {
		if try(d) {
			return d, nil
		}
	}
	ents, err := src.ReadDir(".")
	if err != nil {
		return "", err
	}
	for i, e := range ents {
		if i >= 256 {
			break
		}
		if e.Mode.IsDir() && e.Name != dirCheckpoint && try(e.Name) {
			return e.Name, nil
		}
	}
	return "", fmt.Errorf("%s: no CRIU images found (no directory with inventory.img and pstree.img)", src)
}
