package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/deadnode/deadnode/evidence/diskimage"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Kind says what a path of evidence is, as Open found it by its content.
type Kind string

const (
	KindDir     Kind = "dir"     // a directory: a mounted image or an extracted copy
	KindTar     Kind = "tar"     // an uncompressed tar collection, read in place
	KindTarGz   Kind = "tar.gz"  // a gzip-compressed tar collection
	KindTarZstd Kind = "tar.zst" // a zstd-compressed tar collection
	// KindDisk is a disk image; an opened one's Kind names its container
	// format after it: "disk:raw", "disk:split-raw", "disk:qcow2",
	// "disk:vmdk-sparse", "disk:vmdk-stream", "disk:vmdk-descriptor".
	KindDisk Kind = "disk"
)

// OpenOptions tune Open. Nil or the zero value is usable: a compressed
// collection is then decompressed once into the user's cache and reused.
type OpenOptions struct {
	// Retain decides which members of a compressed collection keep their
	// data (see ArchiveOptions.Retain); nil keeps all. A caller that
	// needs only runtime metadata says so here and spills (and caches)
	// less. A cache entry holding fewer members than Retain asks for is
	// rebuilt with both sets.
	Retain func(name string, size int64) bool
	// TempDir is where a compressed collection is decompressed when it is
	// not cached (default os.TempDir()).
	TempDir string
	// MaxSpill bounds the decompressed bytes written (holes not counted);
	// see ArchiveOptions.MaxSpill.
	MaxSpill int64
	// MaxMembers and MaxXattrBytes bound the archive index (defaults
	// DefaultMaxMembers, DefaultMaxXattrBytes).
	MaxMembers    int
	MaxXattrBytes int64
	// CacheDir holds the decompressed collections (default
	// $XDG_CACHE_HOME/deadnode, or ~/.cache/deadnode). It must be owned
	// by the user and not writable by group or others, and must not be
	// inside the evidence.
	CacheDir string
	// NoCache decompresses into TempDir, privately, for this Open only.
	NoCache bool
	// Within, when set, is the directory evidence that path is part of (a
	// checkpoint archive inside a node's directory): the cache is refused
	// inside it too, as it is inside the evidence itself.
	Within string
	// MaxCacheBytes bounds the disk space of the whole cache (default
	// the smaller of DefaultMaxCacheBytes and half the free space of its
	// filesystem); the least recently used entries are evicted first.
	MaxCacheBytes int64
	// Progress, when set, is called while a compressed collection is
	// decompressed and indexed (the CLI draws a bar on a terminal).
	Progress func(Progress)
	// Disk tunes how a disk image is read (the root volume, no assembly,
	// the image reader's backing-file opener and cache); nil picks the
	// root and assembles the node from its fstab.
	Disk *diskimage.Options
}

// Evidence is a path of the examiner's machine opened as evidence: what
// it is, the read-only Source over it, and what was noted while opening
// it. Close releases everything (so does Source.Close). It is safe for
// concurrent use once opened, as its Source is.
type Evidence struct {
	Kind Kind
	Path string // absolute path on the host
	Size int64  // bytes of the file (0 for a directory)
	// Root is the directory of the collection read as the node's root:
	// "." or, for a collection holding one top-level directory and no
	// root of its own, that directory.
	Root   string
	Source Source
	// Notes say how the evidence was read (a directory read as the root,
	// access times a writable mount may change) and what was odd in it
	// (archive damage, duplicate or refused members, what was left out
	// to stay within bounds), in that order of discovery. They carry text
	// from the evidence: renderers escape them.
	Notes []Warning
	// Cache says how the cache served a compressed collection (nil when
	// it was not used).
	Cache *CacheInfo

	archive *Archive
	dir     *Dir
	disk    *diskimage.Image
	base    Source // the source before Root was applied
}

// Disk returns the opened disk image — its layout, filesystems, mount
// table — of a disk image's evidence (nil for other kinds).
func (e *Evidence) Disk() *diskimage.Image { return e.disk }

// ReaderWarnings are what the readers of the evidence met and went past
// while reading it so far, after it was opened (an entry left out of its
// directory, a damaged block): a disk image's filesystems', a
// directory's. No record carries them; a caller says them when done.
func (e *Evidence) ReaderWarnings() []string {
	switch {
	case e.disk != nil:
		return e.disk.Warnings()
	case e.dir != nil:
		return e.dir.Warnings()
	}
	return nil
}

// Archive returns the indexed archive of a tar collection (nil for
// other kinds).
func (e *Evidence) Archive() *Archive { return e.archive }

// Dir returns the directory source of a directory (nil for other kinds).
func (e *Evidence) Dir() *Dir { return e.dir }

// Close releases the evidence.
func (e *Evidence) Close() error {
	if e.base == nil {
		return nil
	}
	err := e.base.Close()
	e.base = nil
	return err
}

// ErrUnsupportedFormat is matched (errors.Is) by an *UnsupportedError.
var ErrUnsupportedFormat = errors.New("unsupported evidence format")

// UnsupportedError says what Open saw at a path it cannot read as
// evidence.
type UnsupportedError struct {
	Path string
	Saw  string // "a zip archive", "an empty file", "a qcow2 disk image", …
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s: %v: %s (deadnode reads a directory, a tar collection: .tar, .tar.gz, .tar.zst, or a disk image: raw, split raw, qcow2, VMDK)", e.Path, ErrUnsupportedFormat, e.Saw)
}

func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupportedFormat }

// probeHead is how many bytes of a file the probes see.
const probeHead = 64 << 10

// A probe recognises one kind of evidence by its content and opens it.
// match sees the first probeHead bytes (all of a smaller file) and may
// read more through r.
type probe struct {
	kind  Kind
	match func(head []byte, r io.ReaderAt, size int64) bool
	open  func(ctx context.Context, f *os.File, ev *Evidence, o *OpenOptions) error
}

// probes are tried in order; the first that matches opens the file.
// Disk images plug in here, before the tar probes: raw (a partition
// table or a filesystem at offset 0), qcow2, VMDK — each opening its
// volumes and their ext4/XFS filesystems and setting ev.Source, Kind
// ("disk:qcow2", …) and Notes.
var probes = []probe{
	{KindDisk, func(h []byte, _ io.ReaderAt, _ int64) bool { return diskimage.Match(h) }, openDisk},
	{KindTarGz, compressedTar(CompressionGzip), openTar},
	{KindTarZstd, compressedTar(CompressionZstd), openTar},
	{KindTar, func(h []byte, _ io.ReaderAt, _ int64) bool { return vfs.IsTarHeader(h) }, openTar},
}

// Open opens a path of the examiner's machine as evidence, deciding by
// its content, never by its name, what it is: a directory, a tar
// collection (plain, read in place; gzip or zstd, decompressed once —
// into the cache, reused by the next Open of the same file), or a disk
// image (raw, split raw, qcow2, VMDK; package diskimage reads its
// partitions, LVM volumes and ext4/XFS filesystems, picks the node's
// root and mounts the rest from its fstab, as OpenOptions.Disk says).
// Anything else is an *UnsupportedError saying what was seen. A
// collection (or directory) holding one top-level directory and no root
// of its own is read from inside it, with a note. Indexing a collection
// stops with ctx.Err() when ctx is cancelled.
func Open(ctx context.Context, path string, opt *OpenOptions) (*Evidence, error) {
	o := ptr.Value(opt)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	// Path is the evidence as the caller named it (messages and records
	// print it so); abs is used only to compare places.
	ev := &Evidence{Path: path, Root: "."}
	switch {
	case st.IsDir():
		if o.CacheDir != "" && !o.NoCache {
			// Nothing is cached for a directory, but a cache named inside
			// it is refused all the same: nothing is written there.
			if err := notInside(o.CacheDir, abs, o.Within); err != nil {
				return nil, err
			}
		}
		d, err := OpenDir(path)
		if err != nil {
			return nil, err
		}
		ev.Kind, ev.dir, ev.base = KindDir, d, d
		if note, ok := d.atimeNote(); ok {
			ev.Notes = append(ev.Notes, Warnf("", -1, "%s", note))
		}
	case st.Mode().IsRegular() || st.Mode()&fs.ModeDevice != 0 && st.Mode()&fs.ModeCharDevice == 0:
		if err := openFile(ctx, ev, &o); err != nil {
			return nil, err
		}
	default:
		return nil, &UnsupportedError{Path: path, Saw: notFileOrDir(st.Mode())}
	}
	ev.Source = ev.base
	if ev.disk != nil {
		return ev, nil // the node's root filesystem, picked and assembled
	}
	if top, ok := singleTopDir(ev.base); ok {
		if s, err := Sub(ev.base, top); err == nil {
			ev.Notes = append(ev.Notes, Warnf("", -1, "the evidence holds one top-level directory %q and no root of its own; reading it as the node's root", top))
			ev.Root = top
			t := &topSource{Source: s, parent: ev.base}
			if _, ok := ev.base.(HostPather); ok {
				ev.Source = &topDirSource{t}
			} else {
				ev.Source = t
			}
		}
	}
	return ev, nil
}

// openFile probes a file (or block device) and opens it.
func openFile(ctx context.Context, ev *Evidence, o *OpenOptions) error {
	f, size, head, err := readHead(ev.Path)
	if err != nil {
		return err
	}
	ev.Size = size
	for _, p := range probes {
		if p.match(head, f, size) {
			ev.Kind = p.kind
			if err := p.open(ctx, f, ev, o); err != nil {
				f.Close()
				return err
			}
			return nil
		}
	}
	f.Close()
	return &UnsupportedError{Path: ev.Path, Saw: describe(head, size)}
}

// readHead opens a regular file or block device read-only (no access
// time where allowed) and reads its first bytes for the probes.
func readHead(name string) (*os.File, int64, []byte, error) {
	f, err := openHostNoatime(name)
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	size := st.Size()
	if m := st.Mode(); !m.IsRegular() && (m&fs.ModeDevice == 0 || m&fs.ModeCharDevice != 0) {
		f.Close()
		return nil, 0, nil, &UnsupportedError{Path: name, Saw: notFileOrDir(m)}
	}
	if !st.Mode().IsRegular() {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, 0, nil, err
		}
	}
	head := make([]byte, min(size, probeHead))
	if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
		f.Close()
		return nil, 0, nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return f, size, head, nil
}

// Identify says by content what Open would take path for — KindDir, a
// tar collection (KindTar, KindTarGz, KindTarZstd) or KindDisk — without
// opening it as evidence; anything else is an *UnsupportedError saying
// what was seen. A package that reads a path its own way (a checkpoint
// archive, streamed) decides with it, so that there is one decision.
func Identify(path string) (Kind, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return KindDir, nil
	}
	f, size, head, err := readHead(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, p := range probes {
		if p.match(head, f, size) {
			return p.kind, nil
		}
	}
	return "", &UnsupportedError{Path: path, Saw: describe(head, size)}
}

// openDisk opens a disk image (package diskimage): its partitions, LVM
// volumes and filesystems, the node's root picked and the rest mounted
// from its fstab. The image is read again by its path (a split image's
// siblings and a VMDK descriptor's extents are found beside it), so f is
// closed.
func openDisk(ctx context.Context, f *os.File, ev *Evidence, o *OpenOptions) error {
	f.Close()
	if err := ctx.Err(); err != nil {
		return err
	}
	im, err := diskimage.Open(ev.Path, o.Disk)
	if err != nil {
		return err
	}
	ev.Kind, ev.disk, ev.base = Kind(im.Kind()), im, im
	for _, n := range im.Notes {
		ev.Notes = append(ev.Notes, Warnf("", -1, "%s", n))
	}
	return nil
}

// openTar indexes a tar collection: in place when plain, through the
// cache (or a private spill) when compressed. It owns f from then on.
func openTar(ctx context.Context, f *os.File, ev *Evidence, o *OpenOptions) error {
	ao := &ArchiveOptions{Retain: o.Retain, MaxMembers: o.MaxMembers, MaxSpill: o.MaxSpill, TempDir: o.TempDir, MaxXattrBytes: o.MaxXattrBytes, Progress: o.Progress}
	if ev.Kind == KindTar || o.NoCache {
		a, err := NewArchive(ctx, f, ev.Size, ev.Path, ao)
		if err != nil {
			return err
		}
		a.closer = f
		ev.archive, ev.base = a, a
		ev.Notes = append(ev.Notes, a.Warnings()...)
		return nil
	}
	a, info, notes, err := openCached(ctx, f, ev, o, ao)
	if err != nil {
		return err
	}
	f.Close() // the cache entry holds everything now
	ev.archive, ev.base, ev.Cache = a, a, info
	ev.Notes = append(ev.Notes, notes...)
	ev.Notes = append(ev.Notes, a.Warnings()...)
	return nil
}

// compressedTar matches a gzip or zstd stream whose first 512 bytes
// decompress to a tar header.
func compressedTar(c Compression) func([]byte, io.ReaderAt, int64) bool {
	return func(head []byte, r io.ReaderAt, size int64) bool {
		if detectMagic(head) != c {
			return false
		}
		first, ok := firstBlock(r, size, c)
		return ok && vfs.IsTarHeader(first)
	}
}

// firstBlock decompresses the first 512 bytes of a compressed stream.
func firstBlock(r io.ReaderAt, size int64, c Compression) ([]byte, bool) {
	dr, err := Decompress(io.NewSectionReader(r, 0, min(size, 16<<20)), c)
	if err != nil {
		return nil, false
	}
	defer dr.Close()
	var blk [512]byte
	if _, err := io.ReadFull(dr, blk[:]); err != nil {
		return nil, false
	}
	return blk[:], true
}

// describe says what a file that no probe matched looks like.
// notFileOrDir says what a path that is neither a file nor a directory is.
func notFileOrDir(m fs.FileMode) string {
	what := TypeName(m)
	switch what {
	case "char", "block":
		what += " device"
	}
	return "a " + what + ", not a file or directory"
}

func describe(h []byte, size int64) string {
	has := func(off int, m string) bool { return len(h) >= off+len(m) && string(h[off:off+len(m)]) == m }
	switch {
	case size == 0:
		return "an empty file"
	case has(0, "\x1f\x8b"):
		return "gzip-compressed data that does not start with a tar header"
	case has(0, "\x28\xb5\x2f\xfd"):
		return "zstd-compressed data that does not start with a tar header"
	case has(0, "BZh"):
		return "bzip2-compressed data (recompress the collection with gzip or zstd)"
	case has(0, "\xfd7zXZ\x00"):
		return "xz-compressed data (recompress the collection with gzip or zstd)"
	case has(0, "PK\x03\x04"):
		return "a zip archive"
	case has(0, "\x89PNG\r\n\x1a\n"):
		return "a PNG image"
	case has(0, "\xff\xd8\xff"):
		return "a JPEG image"
	case has(0, "%PDF-"):
		return "a PDF document"
	case has(0, "7z\xbc\xaf\x27\x1c"):
		return "a 7-zip archive"
	case has(0, "QFI\xfb"):
		return "a qcow2 disk image"
	case has(0, "KDMV"), has(0, "# Disk DescriptorFile"):
		return "a VMDK disk image"
	case has(0, "conectix"), has(0, "vhdxfile"):
		return "a VHD/VHDX disk image"
	case has(0, "LUKS\xba\xbe"):
		return "a LUKS encrypted volume"
	case has(0, "XFSB"):
		return "an XFS filesystem image"
	case has(1080, "\x53\xef"):
		return "an ext2/3/4 filesystem image"
	case has(512, "EFI PART"):
		return "a disk image with a GPT partition table"
	case has(510, "\x55\xaa"):
		return "a disk image with an MBR partition table"
	case has(0, "\x7fELF"):
		return "an ELF executable"
	case len(h) >= 512 && bytes.Equal(h[:512], zeroBlock[:512]):
		return "data that starts with a block of zeros (an empty tar archive, or a raw image deadnode does not recognise)"
	}
	n := min(len(h), 16)
	return fmt.Sprintf("no format deadnode reads (first bytes % x)", h[:n])
}

var rootDirs = map[string]bool{"etc": true, "var": true, "run": true, "usr": true, "bin": true, "lib": true, "opt": true, "home": true, "root": true, "srv": true, "tmp": true, "sbin": true, "boot": true, "mnt": true, "data": true}

// singleTopDir finds the one top-level directory of a collection that has
// no root of its own (tar -C /collect node/).
func singleTopDir(src Source) (string, bool) {
	names, err := ReadDirNames(src, ".")
	if err != nil || len(names) != 1 || rootDirs[names[0]] {
		return "", false
	}
	st, err := src.Lstat(names[0])
	if err != nil || !st.Mode.IsDir() {
		return "", false
	}
	return names[0], true
}

// topSource is the top-level directory read as the root; closing it
// closes the whole evidence.
type topSource struct {
	Source
	parent Source
}

func (t *topSource) Close() error { return t.parent.Close() }

func (t *topSource) ReadDirNames(name string) ([]string, error) { return ReadDirNames(t.Source, name) }

// topDirSource is a topSource over a directory: it maps names to host
// paths too.
type topDirSource struct{ *topSource }

func (t *topDirSource) HostPath(name string) (string, error) {
	return t.Source.(HostPather).HostPath(name)
}

// OpenDirFD opens a directory as a descriptor (see Dir.OpenDirFD).
func (t *topDirSource) OpenDirFD(name string) (*os.File, error) {
	o, ok := t.Source.(DirFDOpener)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return o.OpenDirFD(name)
}

// atimeNote says what access times reading the directory can change,
// when the kernel does not rule it out (a read-only mount or clone).
func (d *Dir) atimeNote() (string, bool) {
	if d.ReadOnlyMount() || d.ReadOnlyClone() {
		return "", false
	}
	if hasCap(unix.CAP_FOWNER) {
		return "the evidence directory is on a writable mount: reading a symbolic link's target can update the link's access time (the kernel has no O_NOATIME for readlink); mount the image read-only to rule that out", true
	}
	return "the evidence directory is on a writable mount and deadnode runs without CAP_FOWNER: the kernel refuses O_NOATIME on files and directories this user does not own, so reading such a file or listing such a directory can update its access time, and reading a symbolic link's target can update the link's access time (the kernel has no O_NOATIME for readlink); mount the image read-only, or run as root, to rule that out", true
}

// hasCap says whether the process has capability c in its effective set.
func hasCap(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0
}
