package diskimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence/disk"
	"github.com/deadnode/deadnode/evidence/ext4"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/evidence/volume"
	"github.com/deadnode/deadnode/evidence/xfs"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Options tune Open. Nil or the zero value picks the root and assembles.
type Options struct {
	// Volume names the root filesystem's volume instead of looking for
	// it: a volume id as `disk ls` lists them ("p2", "vg0/root",
	// "whole") or an fstab source ("UUID=…", "LABEL=…", "/dev/vg0/root").
	Volume string
	// NoAssemble reads the root filesystem alone: nothing its fstab or
	// mount units name is mounted.
	NoAssemble bool
	// Disk tunes the image reader: its cache, and the opener of backing
	// images (by default, the directory of the image).
	Disk *disk.Options
	// CacheBytes bounds each filesystem's metadata block cache (0: the
	// readers' default, 32 MiB).
	CacheBytes int64

	listOnly bool // List: no root is not an error
}

// Image is a disk image opened as the node it holds: a vfs.Source over
// the root filesystem with the node's other filesystems mounted where its
// fstab (and its systemd mount units) put them. It also implements
// vfs.Recoverer over the same namespace. The exported fields describe
// what was found and done; they must not be changed. An Image is safe
// for concurrent use (its filesystems are).
type Image struct {
	Path   string
	Disk   disk.Info
	Layout *volume.Layout
	// Filesystems are the volumes holding a filesystem signature, in the
	// layout's order, with what was done with each.
	Filesystems []*Filesystem
	// Root is the root filesystem (one of Filesystems).
	Root *Filesystem
	// Mounts is the mount table as assembled — the root at "/" first —
	// and every entry of the node's configuration that was not mounted,
	// with the reason.
	Mounts []Mount
	// Notes say how the node was assembled and what was skipped; they
	// carry names from the evidence (renderers escape them).
	Notes []string

	img      disk.Image
	table    *mountTable
	closeErr error
}

// Filesystem is a volume holding a filesystem signature.
type Filesystem struct {
	Volume string `json:"volume"` // "p2", "vg0/root", "whole"
	Type   string `json:"type"`   // as the probe names it: ext4, xfs, vfat, swap, …
	Label  string `json:"label,omitempty"`
	UUID   string `json:"uuid,omitempty"`
	Size   int64  `json:"size"` // bytes of the volume
	// Read is true when deadnode reads this type (ext2/3/4, XFS) and the
	// filesystem opened.
	Read bool `json:"read"`
	// Holds says what of a node the filesystem holds at its root ("etc",
	// "var/lib/containerd", …), for the filesystems read.
	Holds []string `json:"holds,omitempty"`
	// MountPoint is where the filesystem is in the assembled node ("/"
	// for the root); empty when it is not mounted.
	MountPoint string `json:"mount_point,omitempty"`
	// Note says why it is not read or not mounted.
	Note string `json:"note,omitempty"`

	vol      *volume.Volume
	src      vfs.Source
	warnings func() []string
	info     any
}

// Info is the filesystem reader's description of its superblock
// (ext4.Info, xfs.Info), nil when not read.
func (f *Filesystem) Info() any { return f.info }

// Source is the filesystem as a vfs.Source (nil when not read). Its
// names are relative to the filesystem's own root.
func (f *Filesystem) Source() vfs.Source { return f.src }

// Warnings are the problems the filesystem's reader met so far.
func (f *Filesystem) Warnings() []string {
	if f.warnings == nil {
		return nil
	}
	return f.warnings()
}

// Mount is one entry of the assembled mount table, or one entry of the
// node's configuration that was not mounted.
type Mount struct {
	MountPoint string `json:"mount_point"`           // "/", "/var"
	Source     string `json:"source"`                // as the configuration names it: "UUID=…", "/dev/mapper/vg0-var"; for the root, the volume id
	Type       string `json:"type,omitempty"`        // the configured type ("xfs", "auto", "swap", "tmpfs")
	Options    string `json:"options,omitempty"`     // the configured options, comma-separated
	Origin     string `json:"origin"`                // "/etc/fstab line 2", "/etc/systemd/system/var.mount", "picked", "--volume"
	Volume     string `json:"volume,omitempty"`      // the volume mounted (or found for the source)
	FSType     string `json:"fs_type,omitempty"`     // the volume's filesystem type
	UUID       string `json:"uuid,omitempty"`        // the volume's filesystem UUID
	BindSource string `json:"bind_source,omitempty"` // a bind mount's source directory in the node
	Mounted    bool   `json:"mounted"`
	Note       string `json:"note,omitempty"` // why it is not mounted, or what is odd
	point      string // where it is mounted, resolved in the node (when Mounted)
}

// ErrNoRoot is returned when no filesystem of the image holds a node and
// none was named (Options.Volume).
var ErrNoRoot = errors.New("no filesystem of the disk image holds a node's root")

// Probe reports whether the file at path is a disk image by its content:
// a VM image header (qcow2, VMDK, and the formats refused with a hint:
// EWF, VHD/VHDX, VDI), a partition table (GPT, MBR), an LVM physical
// volume or an ext2/3/4 or XFS filesystem at its start.
func Probe(path string) bool {
	f, err := vfs.OpenNoatime(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.IsDir() {
		return false
	}
	head := make([]byte, ProbeBytes)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return false
	}
	return Match(head[:n])
}

// maxFilesystems bounds the filesystems opened on one disk (each reads
// its superblock and root, and replays its journal when the node died
// unclean); the others are listed, with a note.
var maxFilesystems = 256

// ProbeBytes is how much of the start of a file Match needs to see.
const ProbeBytes = 8 << 10

var (
	vmMagics = [][]byte{
		[]byte("QFI\xfb"), []byte("KDMV"), []byte("# Disk DescriptorFile"), []byte("COWD"),
		[]byte("EVF\x09\x0d\x0a\xff\x00"), []byte("EVF2\x0d\x0a\x81\x00"), []byte("LVF\x09\x0d\x0a\xff\x00"),
		[]byte("vhdxfile"), []byte("conectix"),
	}
	gptMagic = []byte("EFI PART")
	lvmLabel = []byte("LABELONE")
)

// Match reports whether head, the first bytes of a file (ProbeBytes of
// them, or the whole of a smaller file), is the start of a disk image
// (see Probe). A tar header is never one.
func Match(head []byte) bool {
	if vfs.IsTarHeader(head) {
		return false
	}
	for _, m := range vmMagics {
		if bytes.HasPrefix(head, m) {
			return true
		}
	}
	if len(head) >= 0x44 && binary.LittleEndian.Uint32(head[0x40:]) == 0xbeda107f { // VDI
		return true
	}
	for _, off := range []int{512, 4096} {
		if len(head) >= off+8 && bytes.Equal(head[off:off+8], gptMagic) {
			return true
		}
	}
	for s := 0; s < 4; s++ {
		if len(head) >= s*512+8 && bytes.Equal(head[s*512:s*512+8], lvmLabel) {
			return true
		}
	}
	if len(head) >= 4 && bytes.Equal(head[:4], []byte("XFSB")) {
		return true
	}
	if len(head) >= 0x43a && binary.LittleEndian.Uint16(head[0x438:]) == 0xef53 {
		return true
	}
	return isMBR(head)
}

// isMBR reports a DOS partition table: the boot signature and at least
// one sane entry (status 0 or 0x80, a type, a start and a size), none
// insane.
func isMBR(h []byte) bool {
	if len(h) < 512 || h[510] != 0x55 || h[511] != 0xaa {
		return false
	}
	used := 0
	for i := 0; i < 4; i++ {
		e := h[446+16*i : 446+16*i+16]
		if e[0] != 0 && e[0] != 0x80 {
			return false
		}
		typ := e[4]
		start := binary.LittleEndian.Uint32(e[8:])
		size := binary.LittleEndian.Uint32(e[12:])
		if typ == 0 {
			continue
		}
		if start == 0 || size == 0 {
			return false
		}
		used++
	}
	return used > 0
}

// Open opens the disk image at path (raw, split raw, qcow2, VMDK; see
// package disk), reads its partition table, LVM volumes and filesystems,
// picks the root filesystem (Options.Volume, or the one holding a node)
// and mounts the others where the root's /etc/fstab and systemd mount
// units put them (unless Options.NoAssemble). A qcow2 overlay's backing
// image or a VMDK child's parent is looked for beside the image, as QEMU
// does (disk.BackingDir: inside that directory only), unless
// Options.Disk.Backing says otherwise.
func Open(path string, opt *Options) (*Image, error) {
	o := ptr.Value(opt)
	img, err := openDisk(path, o.Disk)
	if err != nil {
		return nil, err
	}
	im, err := openImage(img, path, &o)
	if err != nil {
		img.Close()
		return nil, err
	}
	return im, nil
}

// openDisk opens the image at path, looking for backing images beside it
// unless opt names an opener.
func openDisk(path string, opt *disk.Options) (disk.Image, error) {
	do := ptr.Value(opt)
	if do.Backing == nil {
		do.Backing = disk.BackingDir(filepath.Dir(path), &do)
	}
	return disk.Open(path, &do)
}

func openImage(img disk.Image, path string, o *Options) (*Image, error) {
	layout, err := volume.Scan(img, img.Size(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	im := &Image{Path: path, Disk: img.Info(), Layout: layout, img: img}
	for in := &im.Disk; in != nil; in = in.Backing { // the image's own (a dirty bit, its backing file)
		im.Notes = append(im.Notes, in.Notes...)
	}
	for _, w := range layout.Warnings {
		im.Notes = append(im.Notes, fmt.Sprintf("%s: %s", w.Item, w.Message))
	}
	im.openFilesystems(o)
	if err := im.pickRoot(o); err != nil {
		if !o.listOnly {
			im.closeFilesystems()
			return nil, err
		}
		im.Notes = append(im.Notes, err.Error())
		return im, nil
	}
	im.table = newMountTable(path, im.Root)
	if o.NoAssemble {
		im.Notes = append(im.Notes, "the root filesystem is read alone: its fstab and mount units are not applied (no-assemble)")
	} else {
		im.assemble()
	}
	for _, f := range im.Filesystems {
		if f.Read && f.MountPoint == "" && f.Note == "" {
			f.Note = "not mounted by the node's configuration"
		}
	}
	return im, nil
}

// Kind names the evidence kind: "disk:" and the container format
// ("disk:raw", "disk:split-raw", "disk:qcow2", "disk:vmdk-stream", …).
func (im *Image) Kind() string { return "disk:" + string(im.Disk.Format) }

// fsOpeners open the filesystem types deadnode reads, by the probe's
// type name.
var fsOpeners = map[string]func(r io.ReaderAt, size int64, name string, cache int64) (*Filesystem, error){
	"ext2": openExt4, "ext3": openExt4, "ext4": openExt4, "xfs": openXFS,
}

func openXFS(r io.ReaderAt, size int64, name string, cache int64) (*Filesystem, error) {
	fs, err := xfs.Open(r, size, &xfs.Options{Name: name, CacheBytes: cache})
	if err != nil {
		return nil, err
	}
	return &Filesystem{src: fs, warnings: fs.Warnings, info: fs.Info()}, nil
}

func openExt4(r io.ReaderAt, size int64, name string, cache int64) (*Filesystem, error) {
	fs, err := ext4.Open(r, size, &ext4.Options{Name: name, CacheBytes: cache})
	if err != nil {
		return nil, err
	}
	return &Filesystem{src: fs, warnings: fs.Warnings, info: fs.Info()}, nil
}

// notRead says why a filesystem type is not read.
var notRead = map[string]string{
	"swap":        "swap space: not a filesystem",
	"vfat":        "vfat is not read (an EFI or boot partition; mount it to look)",
	"LVM2_member": "an LVM physical volume: its logical volumes are listed on their own",
	"crypto_LUKS": "LUKS-encrypted: not read (open it with cryptsetup and give the decrypted device)",
	"jbd":         "an external ext3/4 journal: not a filesystem",
}

// openFilesystems opens every readable volume holding a filesystem deadnode
// reads, and records the others with the reason they are skipped.
func (im *Image) openFilesystems(o *Options) {
	opened := 0
	for _, v := range im.Layout.Volumes {
		if v.FS == nil {
			if !v.Readable && v.Kind == "lv" {
				im.Notes = append(im.Notes, fmt.Sprintf("%s: not readable: %s", v.ID, v.Note))
			}
			continue
		}
		f := &Filesystem{Volume: v.ID, Type: v.FS.Type, Label: v.FS.Label, UUID: v.FS.UUID, Size: v.Size, vol: v}
		im.Filesystems = append(im.Filesystems, f)
		if v.FS.Type == "LVM2_member" {
			f.Note = notRead[v.FS.Type]
			continue
		}
		if !v.Readable {
			f.Note = "not readable: " + v.Note
			im.Notes = append(im.Notes, fmt.Sprintf("%s (%s): %s", v.ID, v.FS.Type, f.Note))
			continue
		}
		op := fsOpeners[v.FS.Type]
		if op == nil {
			f.Note = notRead[v.FS.Type]
			if f.Note == "" {
				f.Note = v.FS.Type + " is not read"
			}
			im.Notes = append(im.Notes, fmt.Sprintf("%s (%s): skipped: %s", v.ID, v.FS.Type, f.Note))
			continue
		}
		if opened >= maxFilesystems {
			f.Note = fmt.Sprintf("not opened: more than %d filesystems on the disk", maxFilesystems)
			im.Notes = append(im.Notes, fmt.Sprintf("%s (%s): %s", v.ID, v.FS.Type, f.Note))
			continue
		}
		opened++
		r, err := v.Open()
		if err != nil {
			f.Note = err.Error()
			im.Notes = append(im.Notes, fmt.Sprintf("%s (%s): %v", v.ID, v.FS.Type, err))
			continue
		}
		opened, err := op(r, r.Size(), fmt.Sprintf("%s (%s %s)", im.Path, v.ID, v.FS.Type), o.CacheBytes)
		if err != nil {
			f.Note = "cannot be read: " + err.Error()
			im.Notes = append(im.Notes, fmt.Sprintf("%s (%s): %v", v.ID, v.FS.Type, err))
			continue
		}
		f.src, f.warnings, f.info, f.Read = opened.src, opened.warnings, opened.info, true
		f.Holds = holds(f.src)
	}
}

// nodeDirs are what a node's root holds: /etc, then the runtimes' and the
// kubelet's state.
var nodeDirs = []string{"etc", "var/lib/containerd", "var/lib/docker", "var/lib/containers", "var/lib/kubelet"}

// holds lists the nodeDirs present (as directories, links followed inside
// the filesystem) in src.
func holds(src vfs.Source) []string {
	var out []string
	for _, d := range nodeDirs {
		if isDir(src, d) {
			out = append(out, d)
		}
	}
	return out
}

func isDir(src vfs.Source, name string) bool {
	r, err := vfs.Resolve(src, name, true)
	if err != nil {
		return false
	}
	st, err := src.Lstat(r)
	return err == nil && st.Mode.IsDir()
}

func (im *Image) closeFilesystems() {
	for _, f := range im.Filesystems {
		if f.src != nil {
			f.src.Close()
		}
	}
}

// Close releases the filesystems and the image.
func (im *Image) Close() error {
	if im.img == nil {
		return im.closeErr
	}
	im.closeFilesystems()
	im.closeErr = im.img.Close()
	im.img = nil
	return im.closeErr
}

// Warnings are the problems the filesystems' readers met so far, each
// prefixed with its volume.
func (im *Image) Warnings() []string {
	var out []string
	for _, f := range im.Filesystems {
		for _, w := range f.Warnings() {
			out = append(out, f.Volume+": "+w)
		}
	}
	return out
}

// Filesystem returns the filesystem of a volume id, nil when none.
func (im *Image) Filesystem(volumeID string) *Filesystem {
	for _, f := range im.Filesystems {
		if f.Volume == volumeID {
			return f
		}
	}
	return nil
}

// pickRoot chooses the root filesystem: the one Options.Volume names, or
// the one holding a node. Its errors do not name the image: Open's
// caller does.
func (im *Image) pickRoot(o *Options) error {
	if o.Volume != "" {
		v, err := im.Layout.Lookup(o.Volume)
		if err != nil {
			return fmt.Errorf("volume %w", err)
		}
		f := im.Filesystem(v.ID)
		if f == nil || !f.Read {
			why := "it holds no filesystem signature"
			if f != nil {
				why = f.Note
			}
			return fmt.Errorf("volume %s cannot be the root: %s", v.ID, why)
		}
		im.setRoot(f, "--volume", fmt.Sprintf("root filesystem: %s, as asked", describe(f)))
		return nil
	}
	type cand struct {
		f     *Filesystem
		score int
		why   string
	}
	var cands []cand
	for _, f := range im.Filesystems {
		if !f.Read {
			continue
		}
		c := cand{f: f}
		hasEtc := len(f.Holds) > 0 && f.Holds[0] == "etc"
		switch {
		case hasEtc && len(f.Holds) > 1:
			c.score, c.why = 3, "it holds /etc and /"+f.Holds[1]
		case hasEtc:
			if p, ok := im.fstabNamesVar(f); ok {
				c.score, c.why = 3, "it holds /etc, whose fstab mounts "+p+" from another filesystem of the image"
			} else {
				c.score, c.why = 1, "it holds /etc but no container runtime or kubelet state"
			}
		}
		if c.score > 0 {
			cands = append(cands, c)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	if len(cands) == 0 {
		var read []*Filesystem
		for _, f := range im.Filesystems {
			if f.Read {
				read = append(read, f)
			}
		}
		if len(read) == 1 {
			im.setRoot(read[0], "picked", fmt.Sprintf("root filesystem: %s, the only filesystem read (it holds no /etc)", describe(read[0])))
			return nil
		}
		return im.noRoot()
	}
	best := cands[0]
	var ties []cand
	for _, c := range cands[1:] {
		if c.score == best.score {
			ties = append(ties, c)
		}
	}
	if len(ties) > 0 {
		// the one whose own fstab mounts itself at / wins a tie
		all := append([]cand{best}, ties...)
		for _, c := range all {
			if im.fstabRootIs(c.f) {
				best = c
				break
			}
		}
	}
	im.setRoot(best.f, "picked", fmt.Sprintf("root filesystem: %s: %s", describe(best.f), best.why))
	if len(ties) > 0 {
		var other []string
		for _, c := range append([]cand{cands[0]}, ties...) {
			if c.f != best.f {
				other = append(other, c.f.Volume)
			}
		}
		im.Notes = append(im.Notes, fmt.Sprintf("other filesystems also look like a node's root (%s): pick one with --volume", strings.Join(other, ", ")))
	}
	return nil
}

func (im *Image) noRoot() error {
	var b strings.Builder
	for _, f := range im.Filesystems {
		fmt.Fprintf(&b, "; %s: %s", f.Volume, f.Type)
		if !f.Read {
			fmt.Fprintf(&b, " (%s)", f.Note)
		}
	}
	if len(im.Filesystems) == 0 {
		b.WriteString("; no volume holds a filesystem signature")
	}
	return fmt.Errorf("%w%s (see 'deadnode disk ls %s'; name one with --volume)", ErrNoRoot, b.String(), im.Path)
}

func (im *Image) setRoot(f *Filesystem, origin, note string) {
	im.Root = f
	f.MountPoint = "/"
	im.Mounts = append(im.Mounts, Mount{MountPoint: "/", Source: f.Volume, Type: f.Type, Origin: origin, Volume: f.Volume, FSType: f.Type, UUID: f.UUID, Mounted: true})
	im.Notes = append(im.Notes, note)
}

// describe names a filesystem for notes: "p2 ext4 UUID … (LABEL root)".
func describe(f *Filesystem) string {
	s := f.Volume + " " + f.Type
	if f.UUID != "" {
		s += " UUID " + f.UUID
	}
	if f.Label != "" {
		s += " (label " + f.Label + ")"
	}
	return s
}

// fstabNamesVar reports whether f's /etc/fstab mounts /var, /var/lib or a
// runtime's directory from another readable filesystem of this image.
func (im *Image) fstabNamesVar(f *Filesystem) (string, bool) {
	ents, _ := readFstab(f.src)
	for _, e := range ents {
		switch {
		case e.Point == "/var" || e.Point == "/var/lib", strings.HasPrefix(e.Point, "/var/lib/") && isNodeDir(e.Point):
		default:
			continue
		}
		v, err := im.Layout.Lookup(e.Source)
		if err != nil || v.ID == f.Volume {
			continue
		}
		if o := im.Filesystem(v.ID); o != nil && o.Read {
			return e.Point, true
		}
	}
	return "", false
}

func isNodeDir(p string) bool {
	for _, d := range nodeDirs[1:] {
		if p == "/"+d {
			return true
		}
	}
	return false
}

// fstabRootIs reports whether f's fstab mounts f itself at /.
func (im *Image) fstabRootIs(f *Filesystem) bool {
	ents, _ := readFstab(f.src)
	for _, e := range ents {
		if e.Point == "/" {
			v, err := im.Layout.Lookup(e.Source)
			return err == nil && v.ID == f.Volume
		}
	}
	return false
}

// readFstab reads etc/fstab of a filesystem (links followed inside it).
func readFstab(src vfs.Source) ([]MountEntry, []string) {
	data, err := readSmall(src, "etc/fstab", maxFstabBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []string{"/etc/fstab: not read: " + err.Error()}
	}
	return ParseFstab(data, "/etc/fstab")
}

// readSmall reads a file of src (links followed inside src), refusing one
// larger than max.
func readSmall(src vfs.Source, name string, max int64) ([]byte, error) {
	r, err := vfs.Resolve(src, name, true)
	if err != nil {
		return nil, err
	}
	f, err := src.Open(r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, larger than %d", name, f.Size(), max)
	}
	buf := make([]byte, f.Size())
	n, err := f.ReadAt(buf, 0)
	if err != nil && !(err == io.EOF && n == len(buf)) {
		return nil, err
	}
	return buf, nil
}
