package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/vfs"
)

// Options tune Open and its variants. Nil means the defaults.
type Options struct {
	// ExeOrigin tells where an executable path comes from when the
	// checkpoint's own container diff does not hold it (for instance by
	// looking the path up in the node's image layers): it returns
	// "image", "container_diff" or "unknown". Nil leaves "unknown".
	ExeOrigin func(path string) (origin string)
	// Pages keeps the pages images of compressed archives (spilled to a
	// private temp file) so that memory can be read at random. Without it
	// a compressed archive's pages are never written anywhere: command
	// lines are then copied out of the stream. Uncompressed archives and
	// directories are always read in place.
	Pages bool
	// Skip leaves parts of the checkpoint undecoded, for callers that do
	// not need them (package memory needs neither descriptors, mounts nor
	// command lines): those fields stay empty.
	Skip Parts
	// MaxRootfsDiff bounds the size of a compressed archive's
	// rootfs-diff.tar that is spilled to find executables in it
	// (default 512 MiB; past it exe_origin stays "unknown").
	MaxRootfsDiff int64
	// TempDir is where compressed archives spill (default os.TempDir()).
	TempDir string
}

// Parts of a checkpoint that Options.Skip can leave undecoded.
type Parts uint

const (
	// PartFDs: each task's open files and sockets, cwd, root and umask
	// (fdinfo-*, fs-*, ids-* images).
	PartFDs Parts = 1 << iota
	// PartMounts: the container's mounts (mountpoints-*).
	PartMounts
	// PartCmdlines: each task's argv and environment, read from its
	// pages (for a compressed archive without Pages, a second pass over
	// its stream).
	PartCmdlines
	// PartExeOrigins: where each task's executable comes from (a scan of
	// rootfs-diff.tar, Options.ExeOrigin); RootfsDiff stays nil.
	PartExeOrigins
)

func (o *Options) skips(p Parts) bool { return o != nil && o.Skip&p != 0 }

func (o *Options) pages() bool { return o != nil && o.Pages }

func (o *Options) maxDiff() int64 {
	if o == nil || o.MaxRootfsDiff <= 0 {
		return 512 << 20
	}
	return o.MaxRootfsDiff
}

// Open decodes the checkpoint held by src. dir names the directory of the
// CRIU images inside src; "" detects it by content (the root, then
// "checkpoint", then the root's other directories). The engine files
// around the images (config.dump, spec.dump, …) are read from the parent
// of dir. src stays owned by the caller and must outlive the Checkpoint.
// Open stops with ctx.Err() when ctx is cancelled.
func Open(ctx context.Context, src evidence.Source, dir string, opt *Options) (*Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := detectImagesDir(src, dir)
	if err != nil {
		return nil, err
	}
	top := "."
	if d != "." {
		top = path.Dir(d)
	}
	cp := &Checkpoint{Source: src.String(), ImagesDir: d, Format: "criu", imgs: &ImageDir{src: src, dir: d}, top: &ImageDir{src: src, dir: top}}
	if err := decodeImages(ctx, cp, opt); err != nil {
		return nil, err
	}
	readEngineFiles(cp, opt)
	if cp.CRIUVersion == "" {
		cp.CRIUVersion = criuVersion(cp.imgs)
	}
	if cp.Container.CheckpointedAt.IsZero() {
		if st, err := src.Lstat(cp.imgs.path(imgInventory)); err == nil && !st.Mtime.IsZero() {
			cp.Container.CheckpointedAt, cp.Container.CheckpointedAtSource = st.Mtime, "mtime"
		}
	}
	if !opt.skips(PartExeOrigins) {
		if err := cp.readRootfsDiff(ctx, opt); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return cp, nil
}

// NotCheckpointError is a path that is none of the forms a checkpoint
// comes in. It is an evidence.ErrUnsupportedFormat.
type NotCheckpointError struct {
	Path string
	Saw  string // what the path holds instead
}

func (e *NotCheckpointError) Error() string {
	return fmt.Sprintf("%s: not a checkpoint: %s (a checkpoint is a directory of CRIU images, or a .tar, .tar.gz or .tar.zst archive of one)", e.Path, e.Saw)
}

func (e *NotCheckpointError) Is(target error) bool { return target == evidence.ErrUnsupportedFormat }

// OpenPath opens a checkpoint archive (.tar, .tar.gz, .tar.zst, of any
// engine, or a containerd criu tar) or a directory of CRIU images on the
// host. The Checkpoint owns the opened source: Close it. OpenPath stops
// with ctx.Err() when ctx is cancelled.
func OpenPath(ctx context.Context, hostPath string, opt *Options) (*Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// evidence decides what the path is, by content, as for --root.
	kind, err := evidence.Identify(hostPath)
	var ue *evidence.UnsupportedError
	switch {
	case errors.As(err, &ue):
		return nil, &NotCheckpointError{Path: hostPath, Saw: ue.Saw}
	case err != nil:
		return nil, err
	case kind == evidence.KindDisk:
		return nil, &NotCheckpointError{Path: hostPath, Saw: "a disk image"}
	}
	if kind == evidence.KindDir {
		d, err := evidence.OpenDir(hostPath)
		if err != nil {
			return nil, err
		}
		cp, err := Open(ctx, d, "", opt)
		if err != nil {
			d.Close()
			return nil, err
		}
		if m := kubeletName.FindStringSubmatch(path.Base(hostPath)); m != nil {
			applyKubeletName(cp, m)
		}
		cp.closer = d.Close
		return cp, nil
	}
	f, err := OpenHost(hostPath)
	if err != nil {
		return nil, err
	}
	var col *argCollector
	if !opt.pages() && !opt.skips(PartCmdlines) && evidence.DetectCompression(f) != evidence.CompressionNone {
		// The command lines are copied out of a second stream, read
		// alongside the index pass.
		col = startArgCollector(ctx, hostPath)
	}
	cp, err := openArchive(ctx, f, hostPath, col, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	if cp.Format == "criu" {
		cp.Format = "criu-tar"
	}
	if m := kubeletName.FindStringSubmatch(path.Base(hostPath)); m != nil {
		applyKubeletName(cp, m)
	}
	return cp, nil
}

// OpenHost opens a host file read-only without touching its access time
// where the kernel allows (O_NOATIME needs the file's owner or
// CAP_FOWNER), as package evidence does; anything but a regular file is
// refused.
func OpenHost(name string) (evidence.File, error) {
	f, err := vfs.OpenNoatime(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: evidence.ErrNotRegular}
	}
	return &hostFile{File: f, size: st.Size()}, nil
}

type hostFile struct {
	*os.File
	size int64
}

func (h *hostFile) Size() int64 { return h.size }

// archiveOptions keep, from a compressed archive, only what needs random
// access: the CRIU images and the engine's small files (each at most
// maxMetadata bytes), rootfs-diff.tar up to MaxRootfsDiff, and the pages
// images only when asked.
func archiveOptions(opt *Options) *evidence.ArchiveOptions {
	ao := &evidence.ArchiveOptions{}
	if opt != nil {
		ao.TempDir = opt.TempDir
	}
	pages := opt.pages()
	maxDiff := opt.maxDiff()
	ao.Retain = func(name string, size int64) bool {
		base := path.Base(name)
		switch {
		case strings.HasPrefix(base, imgPagesPrefix) && strings.HasSuffix(base, ".img"):
			return pages
		case base == fileRootfsDiff:
			return size <= maxDiff
		}
		return size <= maxMetadata
	}
	return ao
}

// Close releases what the Checkpoint opened: the source OpenPath,
// OpenKubelet or OpenContainerd opened, and what its methods cached.
func (cp *Checkpoint) Close() error {
	cp.mu.Lock()
	diff := cp.diff
	cp.diff = nil
	cp.mu.Unlock()
	var err error
	if diff != nil {
		err = diff.close()
	}
	if cp.closer != nil {
		if e := cp.closer(); err == nil {
			err = e
		}
		cp.closer = nil
	}
	return err
}
