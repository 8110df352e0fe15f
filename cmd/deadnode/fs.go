package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/overlay"
	"github.com/deadnode/deadnode/render"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "fs ls",
		args:    "CONTAINER [PATH] [-R] [--hash] [--image | --layer N | --volumes]",
		summary: "list a container's merged root filesystem with the layer each entry comes from",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o fsLsFlags
			fs.BoolVarP(&o.recursive, "recursive", "R", false, "list the whole tree below PATH")
			fs.BoolVar(&o.hash, "hash", false, "sha256 of every regular file")
			viewFlags(fs, &o.view)
			return func(a *app, args []string) error { return runFsLs(a, args, o) }
		},
	})
	register(&command{
		name:    "fs cat",
		args:    "CONTAINER PATH [--image | --layer N | --volumes]",
		summary: "write a file of a container's merged root to stdout (links resolved inside the container); --image: the image's version of it",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var v viewFlag
			viewFlags(fs, &v)
			return func(a *app, args []string) error { return runFsCat(a, args, v) }
		},
	})
	register(&command{
		name:    "fs stat",
		args:    "CONTAINER PATH [-L] [--image | --layer N | --volumes]",
		summary: "metadata of a path of a container's merged root: origin layer, overlay attributes, xattrs, sha256",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var follow bool
			var v viewFlag
			fs.BoolVarP(&follow, "dereference", "L", false, "follow a final symbolic link (inside the container)")
			viewFlags(fs, &v)
			return func(a *app, args []string) error { return runFsStat(a, args, follow, v) }
		},
	})
}

type fsLsFlags struct {
	recursive, hash bool
	view            viewFlag
}

// viewFlag chooses the layers a fs command reads.
type viewFlag struct {
	image   bool
	layer   int
	volumes bool
}

func viewFlags(fs *pflag.FlagSet, v *viewFlag) {
	fs.BoolVar(&v.image, "image", false, "the image's version: the merged image layers without the container's upper layer (works for files the container deleted or changed)")
	fs.IntVar(&v.layer, "layer", -1, "one layer alone, numbered as fs ls's LAYER column (0 the upper layer, 1… the image's, top first)")
	fs.BoolVar(&v.volumes, "volumes", false, "the container as its processes saw it: its layers with its mounts (pod volumes, host paths, runtime files) at their container paths; mounts of unknown container path under /(volume:NAME)")
}

// containerView opens the view of a container's layers the flags ask for.
func (a *app) containerView(ref string, vf viewFlag) (*overlay.View, *model.Container, error) {
	if vf.image && vf.layer >= 0 {
		return nil, nil, usagef("--image and --layer exclude each other")
	}
	n, c, err := a.container(ref)
	if err != nil {
		return nil, nil, err
	}
	v, err := n.ContainerView(c, &forensics.ViewOptions{Image: vf.image, Layer: vf.layer})
	if err != nil {
		return nil, nil, err
	}
	return v, c, nil
}

// container opens the node and finds the container ref names.
func (a *app) container(ref string) (*forensics.Node, *model.Container, error) {
	n, err := a.node()
	if err != nil {
		return nil, nil, err
	}
	c, err := n.FindContainer(ref)
	if err != nil {
		return nil, nil, err
	}
	return n, c, nil
}

// fsView is what the fs commands read of a container: the overlay view of
// its layers (*overlay.View) or that view with its mounts over it
// (*forensics.MountedView, --volumes).
type fsView[E fsViewEntry] interface {
	LstatEntry(name string) (E, error)
	StatEntry(name string) (E, error)
	ReadDirEntries(name string) ([]E, error)
	OpenEntry(e E) (evidence.File, error)
	OpenFile(name string) (evidence.File, error)
}

// fsViewEntry is an entry of an fsView.
type fsViewEntry interface{ Type() string }

// layerBase is what a view's layer numbers are offset by to read as the
// container's: with --image the view starts at layer 1, with --layer N at N.
func (vf viewFlag) layerBase(c *model.Container) int {
	switch {
	case vf.layer >= 0:
		return vf.layer
	case vf.image && c.UpperDir != "":
		return 1
	}
	return 0
}

// fsEntry is one line of fs ls.
type fsEntry struct {
	Path       string     `json:"path"`
	PathBytes  string     `json:"path_bytes,omitempty"` // exact bytes (base64) when the path is not valid UTF-8
	Type       string     `json:"type"`
	Mode       string     `json:"mode"` // octal with setuid/setgid/sticky, e.g. "0755"
	UID        uint32     `json:"uid"`
	GID        uint32     `json:"gid"`
	Size       int64      `json:"size"`
	Mtime      model.Time `json:"mtime"`
	LinkTarget string     `json:"link_target,omitempty"`
	SHA256     string     `json:"sha256,omitempty"`
	Layer      int        `json:"layer"` // 0 = the upper (writable) layer; -1 an entry of a mount (--volumes)
	LayerName  string     `json:"layer_name"`
	// Origin (--volumes) is "layer", a mount's origin ("volume:<name>",
	// "host:<path>", "runtime:<what>"), or "mount_point"; EvidencePath
	// is then where a mount's entry lies in the evidence.
	Origin       string `json:"origin,omitempty"`
	EvidencePath string `json:"evidence_path,omitempty"`
	Note         string `json:"note,omitempty"`

	mode fs.FileMode
}

// lsMode prints a mode as ls -l does.
func lsMode(m fs.FileMode) string {
	b := []byte("?rwxrwxrwx")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m.IsRegular():
		b[0] = '-'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	}
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(i int, set bool, c byte) {
		if !set {
			return
		}
		if b[i] == '-' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	special(3, m&fs.ModeSetuid != 0, 's')
	special(6, m&fs.ModeSetgid != 0, 's')
	special(9, m&fs.ModeSticky != 0, 't')
	return string(b)
}

// ctrPath shows a merged path as the container sees it.
func ctrPath(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}

func newFsEntry(e *overlay.Entry, base int) fsEntry {
	return fsEntry{
		Path: ctrPath(e.Path), PathBytes: model.PathBytes(ctrPath(e.Path)), Type: e.Type(), Mode: evidence.ModeString(e.Stat.Mode), UID: e.Stat.UID, GID: e.Stat.GID,
		Size: e.Stat.Size, Mtime: model.T(e.Stat.Mtime), LinkTarget: e.LinkTarget,
		Layer: base + e.Origin.Layer, LayerName: e.Origin.LayerName, mode: e.Stat.Mode,
	}
}

// hashEntry returns the sha256 of a regular file of the view; name (its
// container path) is in a read error.
func hashEntry[E fsViewEntry](v fsView[E], e E, name string) (string, error) {
	f, err := v.OpenEntry(e)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// layerLabel shortens a layer name for tables: the snapshot or layer id.
func layerLabel(i int, name string) string {
	n := strings.TrimSuffix(strings.TrimSuffix(name, "/"), "/fs")
	n = strings.TrimSuffix(n, "/diff")
	return fmt.Sprintf("%d:%s", i, short(path.Base(n)))
}

func runFsLs(a *app, args []string, o fsLsFlags) error {
	if len(args) < 1 || len(args) > 2 {
		return usagef("fs ls takes CONTAINER [PATH]")
	}
	p := "/"
	if len(args) == 2 {
		p = args[1]
	}
	if o.view.volumes {
		return runFsLsMounted(a, args[0], p, o)
	}
	v, c, err := a.containerView(args[0], o.view)
	if err != nil {
		return err
	}
	base := o.view.layerBase(c)
	return listFs(a, v, p, o, fsListing[*overlay.Entry]{
		dir:    func(top *overlay.Entry) string { return top.Path },
		walk:   func(p string) iter.Seq2[*overlay.Entry, error] { return v.Walk(context.Background(), p) },
		entry:  func(e *overlay.Entry) fsEntry { return newFsEntry(e, base) },
		column: "LAYER",
		origin: func(e fsEntry) string { return layerLabel(e.Layer, e.LayerName) },
	})
}

// fsListing says how fs ls shows the entries of one kind of view.
type fsListing[E fsViewEntry] struct {
	dir    func(top E) string // what PATH's listing reads, top being PATH's entry
	walk   func(dir string) iter.Seq2[E, error]
	entry  func(E) fsEntry
	column string               // the origin column's header
	origin func(fsEntry) string // its cell
}

// listFs is fs ls on a view: PATH's tree (-R), a directory's entries or
// the entry itself, streamed (-o jsonl) or as one table or document.
func listFs[E fsViewEntry](a *app, v fsView[E], p string, o fsLsFlags, l fsListing[E]) error {
	top, err := v.StatEntry(p)
	if err != nil {
		return err
	}
	var all []fsEntry
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	emit := func(e E) {
		fe := l.entry(e)
		if o.hash && fe.mode.IsRegular() {
			if fe.SHA256, err = hashEntry(v, e, fe.Path); err != nil {
				fe.Note = err.Error()
				a.warn(err.Error())
			}
		}
		if a.output == "jsonl" {
			enc.Encode(fe) // streamed
			return
		}
		all = append(all, fe)
	}
	switch {
	case o.recursive:
		for e, err := range l.walk(l.dir(top)) {
			if err != nil {
				a.warn(err.Error())
				continue
			}
			emit(e)
		}
	case top.Type() == "dir":
		ents, err := v.ReadDirEntries(l.dir(top))
		if err != nil {
			for _, e := range splitErr(err) {
				a.warn(e.Error())
			}
		}
		for _, e := range ents {
			emit(e)
		}
	default:
		if e, err := v.LstatEntry(p); err == nil {
			top = e
		}
		emit(top)
	}
	if a.output == "jsonl" {
		return nil
	}
	if all == nil {
		all = []fsEntry{}
	}
	hdr := []string{"MODE=", "UID=", "GID=", "SIZE=", "MTIME=", l.column}
	if o.hash {
		hdr = append(hdr, "SHA256#")
	}
	t := render.Cols(append(hdr, "PATH/")...)
	for _, e := range all {
		name := e.Path
		if e.LinkTarget != "" {
			name += " -> " + e.LinkTarget
		}
		cells := []any{lsMode(e.mode), e.UID, e.GID, e.Size, e.Mtime, l.origin(e)}
		if o.hash {
			cells = append(cells, e.SHA256)
		}
		t.Row(append(cells, name)...)
	}
	return a.show(all, t)
}

// splitErr undoes errors.Join.
func splitErr(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func runFsCat(a *app, args []string, vf viewFlag) error {
	if len(args) != 2 {
		return usagef("fs cat takes CONTAINER PATH")
	}
	if vf.volumes {
		v, _, err := a.mountedView(args[0], vf)
		if err != nil {
			return err
		}
		return catFile(a, v, args[1])
	}
	v, _, err := a.containerView(args[0], vf)
	if err != nil {
		return err
	}
	return a.inImageHint(args[0], args[1], vf, catFile(a, v, args[1]))
}

// inImageHint adds to a "does not exist" from the container's merged view
// what the examiner wants to know next: the image has the path, so the
// container deleted (or hid) it, and --image reads it.
func (a *app) inImageHint(ref, name string, vf viewFlag, err error) error {
	if err == nil || !errors.Is(err, fs.ErrNotExist) || vf.image || vf.layer >= 0 {
		return err
	}
	iv, _, ierr := a.containerView(ref, viewFlag{image: true, layer: -1})
	if ierr != nil {
		return err
	}
	if _, ierr := iv.LstatEntry(name); ierr != nil {
		return err
	}
	return fmt.Errorf("%w (the image has it: the container deleted or hid it; --image reads the image's version)", err)
}

// catFile writes a file of a view to stdout.
func catFile(a *app, v interface {
	OpenFile(name string) (evidence.File, error)
}, name string) error {
	f, err := v.OpenFile(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(a.stdout, io.NewSectionReader(f, 0, f.Size()))
	return err
}

// fsStat is the output of fs stat.
type fsStat struct {
	Container string     `json:"container"`
	Path      string     `json:"path"`
	Type      string     `json:"type"`
	Mode      string     `json:"mode"`
	UID       uint32     `json:"uid"`
	GID       uint32     `json:"gid"`
	Size      int64      `json:"size"`
	Nlink     uint64     `json:"nlink"`
	Ino       uint64     `json:"ino"`
	DevMajor  uint32     `json:"dev_major,omitempty"`
	DevMinor  uint32     `json:"dev_minor,omitempty"`
	Atime     model.Time `json:"atime"`
	model.FileTimes
	LinkTarget string             `json:"link_target,omitempty"`
	Resolves   string             `json:"resolves_to,omitempty"` // where a symlink leads inside the container
	SHA256     string             `json:"sha256,omitempty"`
	Origin     overlay.Origin     `json:"origin"`
	Data       *overlay.Origin    `json:"data,omitempty"` // metacopy: where the data is
	Metacopy   *overlay.Metacopy  `json:"metacopy,omitempty"`
	Merged     []overlay.Origin   `json:"merged,omitempty"`
	Opaque     bool               `json:"opaque"`
	Redirect   string             `json:"redirect,omitempty"`
	Overlay    map[string]string  `json:"overlay_xattrs,omitempty"` // raw overlay attributes of the origin, hex for binary values
	Xattrs     map[string]string  `json:"xattrs,omitempty"`
	Anomalies  []evidence.Warning `json:"anomalies,omitempty"`
	Errors     []string           `json:"errors,omitempty"`
	// ViewOrigin (--volumes) is the entry's origin as fs ls --volumes
	// names it; Mount the mount it lies in (Origin is then layer -1, named
	// after the mount, at the entry's evidence path).
	ViewOrigin string               `json:"view_origin,omitempty"`
	Mount      *forensics.ViewMount `json:"mount,omitempty"`
	Note       string               `json:"note,omitempty"`
}

// newFsStat is fs stat's output for an entry's metadata.
func newFsStat(container, path, typ string, st *evidence.Stat, linkTarget string) fsStat {
	return fsStat{
		Container: container, Path: path, Type: typ, Mode: evidence.ModeString(st.Mode), UID: st.UID, GID: st.GID,
		Size: st.Size, Nlink: st.Nlink, Ino: st.Ino, DevMajor: st.DevMajor, DevMinor: st.DevMinor,
		Atime: model.T(st.Atime), FileTimes: model.TimesOf(st),
		LinkTarget: linkTarget,
	}
}

// fail adds an error met while reading the entry.
func (out *fsStat) fail(err error) { out.Errors = append(out.Errors, err.Error()) }

// keep stores v in *dst, or adds err to out's errors.
func keep[T any](out *fsStat, dst *T, v T, err error) {
	if err != nil {
		out.fail(err)
		return
	}
	*dst = v
}

// xattrText shows a value as text when it is printable, else as hex.
func xattrText(b []byte) string {
	s := string(b)
	printable := len(s) > 0
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			printable = false
			break
		}
	}
	if printable {
		return s
	}
	return "0x" + hex.EncodeToString(b)
}

func xattrMap(xs map[string][]byte) map[string]string {
	if len(xs) == 0 {
		return nil
	}
	out := make(map[string]string, len(xs))
	for k, v := range xs {
		out[k] = xattrText(v)
	}
	return out
}

func runFsStat(a *app, args []string, follow bool, vf viewFlag) error {
	if len(args) != 2 {
		return usagef("fs stat takes CONTAINER PATH")
	}
	if vf.volumes {
		return runFsStatMounted(a, args[0], args[1], follow, vf)
	}
	v, c, err := a.containerView(args[0], vf)
	if err != nil {
		return err
	}
	var e *overlay.Entry
	if follow {
		e, err = v.StatEntry(args[1])
	} else {
		e, err = v.LstatEntry(args[1])
	}
	if err != nil {
		return a.inImageHint(args[0], args[1], vf, err)
	}
	st := e.Stat
	out := newFsStat(c.ID, ctrPath(e.Path), e.Type(), st, e.LinkTarget)
	out.Origin, out.Merged, out.Opaque, out.Redirect, out.Anomalies = e.Origin, e.Merged, e.Opaque, e.Redirect, e.Anomalies
	base := vf.layerBase(c)
	out.Origin.Layer += base
	for i := range out.Merged {
		out.Merged[i].Layer += base
	}
	if e.LinkTarget != "" {
		r, err := v.Resolve(e.Path)
		keep(&out, &out.Resolves, ctrPath(r), err)
	}
	if st.Mode.IsRegular() {
		if o, mc, err := v.DataOrigin(e); err != nil {
			out.fail(err)
		} else if mc != nil {
			o.Layer += base
			out.Data, out.Metacopy = &o, mc
		}
		h, err := hashEntry(v, e, out.Path)
		keep(&out, &out.SHA256, h, err)
	}
	xs, err := v.OverlayXattrs(e)
	keep(&out, &out.Overlay, xattrMap(xs), err)
	xs, err = v.Xattrs(e)
	keep(&out, &out.Xattrs, xattrMap(xs), err)
	return a.show(out, fsStatTable(out, st.Mode))
}

// fsStatTable is fs stat's key-value table.
func fsStatTable(out fsStat, mode fs.FileMode) *render.Table {
	t := render.KeyValue()
	kv := t.KVAlways
	{
		kv("Container", out.Container)
		kv("Path", out.Path)
		kv("Type", out.Type)
		kv("Mode", fmt.Sprintf("%s (%s)", out.Mode, lsMode(mode)))
		kv("Owner", fmt.Sprintf("%d:%d", out.UID, out.GID))
		kv("Size", out.Size)
		kv("Links", out.Nlink)
		kv("Inode", out.Ino)
		if mode&fs.ModeDevice != 0 {
			kv("Device", fmt.Sprintf("%d:%d", out.DevMajor, out.DevMinor))
		}
		kv("Access", out.Atime)
		kv("Modify", out.Mtime)
		kv("Change", out.Ctime)
		kv("Birth", out.Btime)
		if out.LinkTarget != "" {
			kv("Link target", out.LinkTarget)
			kv("Resolves to", out.Resolves)
		}
		if out.SHA256 != "" {
			kv("SHA256", out.SHA256)
		}
		if out.ViewOrigin != "" {
			kv("Origin", out.ViewOrigin)
		}
		if m := out.Mount; m != nil {
			kv("Mount", fmt.Sprintf("%s at %s (%s, %s)", m.Origin, m.At, firstOfStr(m.VolumeKind, m.Kind), m.EvidencePath))
			kv("Evidence path", out.Origin.Path)
		} else if out.ViewOrigin != forensics.OriginMountPoint {
			kv("Origin layer", fmt.Sprintf("%d %s (%s)", out.Origin.Layer, out.Origin.LayerName, out.Origin.Path))
		}
		if out.Note != "" {
			kv("Note", out.Note)
		}
		if out.Data != nil {
			kv("Data layer", fmt.Sprintf("%d %s (%s), metacopy", out.Data.Layer, out.Data.LayerName, out.Data.Path))
		}
		for _, m := range out.Merged {
			kv("Merged from", fmt.Sprintf("%d %s (%s)", m.Layer, m.LayerName, m.Path))
		}
		kv("Opaque", out.Opaque)
		if out.Redirect != "" {
			kv("Redirect", out.Redirect)
		}
		printMap(t, "Overlay xattr", out.Overlay)
		printMap(t, "Xattr", out.Xattrs)
		for _, s := range out.Anomalies {
			kv("Anomaly", s)
		}
		for _, s := range out.Errors {
			kv("Error", s)
		}
	}
	return t
}
