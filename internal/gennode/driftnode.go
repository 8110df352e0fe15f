package gennode

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// DriftShape sizes a DriftNode.
type DriftShape struct {
	Layers     int   // image layers
	ImageFiles int   // files in the image, spread over the layers
	ImageBytes int64 // their total size
	UpperFiles int   // entries of the container's upper layer
	UpperBytes int64 // their total size
}

// DriftLayout says where DriftNode put things.
type DriftLayout struct {
	ContainerID string
	UpperDir    string   // host path of the container's upper layer
	LowerDirs   []string // host paths, top to bottom
	Added       int      // upper files not in the image
	Modified    int      // image paths rewritten with other content
	CopiedUp    int      // image files copied up with the same content
	Whiteouts   int      // image files deleted
}

// DriftNode writes a containerd node (as Containerd does) with one pod
// sandbox and one container whose image has shape.Layers layers filled
// with files, and an upper layer with added, modified, copied-up and
// deleted files. Contents are pseudo-random (fixed seed); image files are
// 4–40 KiB and added files larger, so that sizes tell them apart the way
// real binaries and data do. Whiteouts need root (mknod).
func DriftNode(dir string, shape DriftShape) (*DriftLayout, error) {
	g, err := containerdGen(dir, 2, 2+2*shape.Layers, shape.Layers)
	if err != nil {
		return nil, err
	}
	c := g.containers[1]
	if c.sandbox || c.img < 0 {
		return nil, fmt.Errorf("gennode: container 1 has no image")
	}
	snap := func(id uint64) string {
		return g.path(OverlayRoot + "/snapshots/" + strconv.FormatUint(id, 10) + "/fs")
	}
	out := &DriftLayout{ContainerID: c.id, UpperDir: snap(c.storageID)}
	img := g.images[c.img]
	for i := len(img.layers) - 1; i >= 0; i-- {
		out.LowerDirs = append(out.LowerDirs, snap(img.layers[i].storageID))
	}
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	buf := make([]byte, 1<<20)
	write := func(p string, size int64, mode os.FileMode) error {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		for size > 0 {
			n := min(size, int64(len(buf)))
			for i := 0; i < int(n); i += 8 {
				v := rng.Uint64()
				for k := 0; k < 8 && i+k < int(n); k++ {
					buf[i+k] = byte(v >> (8 * k))
				}
			}
			if _, err := f.Write(buf[:n]); err != nil {
				f.Close()
				return err
			}
			size -= n
		}
		return f.Close()
	}
	// Image: files spread over the layers (bottom layer = last lower dir).
	per := shape.ImageFiles / shape.Layers
	avg := shape.ImageBytes / int64(max(shape.ImageFiles, 1))
	var imagePaths []string
	for l := 0; l < shape.Layers; l++ {
		root := out.LowerDirs[shape.Layers-1-l]
		for i := 0; i < per; i++ {
			rel := fmt.Sprintf("usr/lib/l%d/d%03d/f%05d", l, i%500, i)
			size := avg/2 + int64(rng.IntN(int(avg)+1))
			if err := write(filepath.Join(root, rel), size, 0o644); err != nil {
				return nil, err
			}
			imagePaths = append(imagePaths, rel)
		}
	}
	// Upper: 80% added, 10% modified, 8% copied up unchanged, 2% deleted.
	n := shape.UpperFiles
	out.Modified, out.CopiedUp, out.Whiteouts = n/10, n*8/100, n*2/100
	out.Added = n - out.Modified - out.CopiedUp - out.Whiteouts
	upAvg := shape.UpperBytes / int64(max(out.Added+out.Modified, 1))
	for i := 0; i < out.Added; i++ {
		rel := fmt.Sprintf("data/new/d%03d/n%05d", i%100, i)
		size := upAvg/2 + int64(rng.IntN(int(upAvg)+1))
		if err := write(filepath.Join(out.UpperDir, rel), size, 0o644); err != nil {
			return nil, err
		}
	}
	k := 0
	next := func() string { p := imagePaths[(k*7919)%len(imagePaths)]; k++; return p }
	for i := 0; i < out.Modified; i++ {
		if err := write(filepath.Join(out.UpperDir, next()), upAvg, 0o644); err != nil {
			return nil, err
		}
	}
	for i := 0; i < out.CopiedUp; i++ {
		rel := next()
		for _, lo := range out.LowerDirs {
			if b, err := os.ReadFile(filepath.Join(lo, rel)); err == nil {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(out.UpperDir, rel)), 0o755); err != nil {
					return nil, err
				}
				if err := os.WriteFile(filepath.Join(out.UpperDir, rel), b, 0o600); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	for i := 0; i < out.Whiteouts; i++ {
		p := filepath.Join(out.UpperDir, next())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		os.Remove(p)
		if err := syscall.Mknod(p, syscall.S_IFCHR, 0); err != nil {
			return nil, fmt.Errorf("gennode: whiteout %s (needs root): %w", p, err)
		}
	}
	return out, nil
}
