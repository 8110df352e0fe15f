package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/deadnode/deadnode/evidence"
)

// images is the directory of CRIU images inside a source.
type images struct {
	src evidence.Source
	dir string
}

func (im *images) path(name string) string {
	if im.dir == "." || im.dir == "" {
		return name
	}
	return path.Join(im.dir, name)
}

// label names an image in messages: the source, then the path inside it.
func (im *images) label(name string) string {
	return im.src.String() + ":" + im.path(name)
}

func (im *images) exists(name string) bool {
	st, err := im.src.Lstat(im.path(name))
	return err == nil && st.Mode.IsRegular()
}

// open opens a protobuf image; the caller closes the returned file.
func (im *images) open(name string) (*ImageReader, io.Closer, error) {
	f, err := im.src.Open(im.path(name))
	if err != nil {
		return nil, nil, err
	}
	ir, err := NewImageReader(f, f.Size(), im.label(name))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return ir, f, nil
}

func (im *images) readFile(name string, max int64) ([]byte, error) {
	return evidence.ReadFile(im.src, im.path(name), max)
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// detectImagesDir finds the CRIU images in src by content: a directory
// holding inventory.img (with the INVENTORY magic) and pstree.img. It looks
// at dir when given, else at the root, at "checkpoint" and at the root's
// other subdirectories.
func detectImagesDir(src evidence.Source, dir string) (string, error) {
	try := func(d string) bool {
		im := &images{src: src, dir: d}
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
