package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/overlay"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "fs ls",
		args:    "CONTAINER [PATH] [-R] [--hash]",
		summary: "list a container's merged root filesystem with the layer each entry comes from",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o fsLsFlags
			fs.BoolVarP(&o.recursive, "recursive", "R", false, "list the whole tree below PATH")
			fs.BoolVar(&o.hash, "hash", false, "sha256 of every regular file")
			return func(a *app, args []string) error { return runFsLs(a, args, o) }
		},
	})
	register(&command{
		name:    "fs cat",
		args:    "CONTAINER PATH",
		summary: "write a file of a container's merged root to stdout (links resolved inside the container)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			return runFsCat
		},
	})
	register(&command{
		name:    "fs stat",
		args:    "CONTAINER PATH [-L]",
		summary: "metadata of a path of a container's merged root: origin layer, overlay attributes, xattrs, sha256",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var follow bool
			fs.BoolVarP(&follow, "dereference", "L", false, "follow a final symbolic link (inside the container)")
			return func(a *app, args []string) error { return runFsStat(a, args, follow) }
		},
	})
}

type fsLsFlags struct{ recursive, hash bool }

// containerView opens the merged view of a container's layers.
func (a *app) containerView(ref string) (*overlay.View, *model.Container, error) {
	n, err := a.node()
	if err != nil {
		return nil, nil, err
	}
	c, err := n.FindContainer(ref)
	if err != nil {
		return nil, nil, err
	}
	ds, err := n.ContainerDrift(c)
	if err != nil {
		return nil, nil, err
	}
	v, err := overlay.New(append([]overlay.Layer{ds.Upper}, ds.Lowers...), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	return v, c, nil
}

// fsEntry is one line of fs ls.
type fsEntry struct {
	Path       string     `json:"path"`
	Type       string     `json:"type"`
	Mode       string     `json:"mode"` // octal with setuid/setgid/sticky, e.g. "0755"
	UID        uint32     `json:"uid"`
	GID        uint32     `json:"gid"`
	Size       int64      `json:"size"`
	Mtime      model.Time `json:"mtime"`
	LinkTarget string     `json:"link_target,omitempty"`
	SHA256     string     `json:"sha256,omitempty"`
	Layer      int        `json:"layer"` // 0 = the upper (writable) layer
	LayerName  string     `json:"layer_name"`
	Note       string     `json:"note,omitempty"`

	mode fs.FileMode
}

// octalMode prints permission bits in octal with setuid, setgid, sticky.
func octalMode(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
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

func newFsEntry(e *overlay.Entry) fsEntry {
	return fsEntry{
		Path: ctrPath(e.Path), Type: e.Type(), Mode: octalMode(e.Stat.Mode), UID: e.Stat.UID, GID: e.Stat.GID,
		Size: e.Stat.Size, Mtime: model.T(e.Stat.Mtime), LinkTarget: e.LinkTarget,
		Layer: e.Origin.Layer, LayerName: e.Origin.LayerName, mode: e.Stat.Mode,
	}
}

// hashEntry returns the sha256 of a regular file of the view.
func hashEntry(v *overlay.View, e *overlay.Entry) (string, error) {
	f, err := v.OpenEntry(e)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
		return "", fmt.Errorf("%s: %w", ctrPath(e.Path), err)
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
	v, _, err := a.containerView(args[0])
	if err != nil {
		return err
	}
	top, err := v.StatEntry(p)
	if err != nil {
		return err
	}
	var all []fsEntry
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	emit := func(e *overlay.Entry) {
		fe := newFsEntry(e)
		if o.hash && e.Stat.Mode.IsRegular() {
			if fe.SHA256, err = hashEntry(v, e); err != nil {
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
		for e, err := range v.Walk(context.Background(), top.Path) {
			if err != nil {
				a.warn(err.Error())
				continue
			}
			emit(e)
		}
	case top.Stat.Mode.IsDir():
		ents, err := v.ReadDirEntries(top.Path)
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
	return a.render(all, func(w io.Writer) {
		hdr := []any{"MODE", "UID", "GID", "SIZE", "MTIME", "LAYER"}
		if o.hash {
			hdr = append(hdr, "SHA256")
		}
		row(w, append(hdr, "PATH")...)
		for _, e := range all {
			name := e.Path
			if e.LinkTarget != "" {
				name += " -> " + e.LinkTarget
			}
			cells := []any{lsMode(e.mode), e.UID, e.GID, e.Size, e.Mtime, layerLabel(e.Layer, e.LayerName)}
			if o.hash {
				cells = append(cells, short(e.SHA256))
			}
			row(w, append(cells, name)...)
		}
	})
}

// splitErr undoes errors.Join.
func splitErr(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func runFsCat(a *app, args []string) error {
	if len(args) != 2 {
		return usagef("fs cat takes CONTAINER PATH")
	}
	v, _, err := a.containerView(args[0])
	if err != nil {
		return err
	}
	f, err := v.OpenFile(args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(a.stdout, io.NewSectionReader(f, 0, f.Size()))
	return err
}

// fsStat is the output of fs stat.
type fsStat struct {
	Container  string             `json:"container"`
	Path       string             `json:"path"`
	Type       string             `json:"type"`
	Mode       string             `json:"mode"`
	UID        uint32             `json:"uid"`
	GID        uint32             `json:"gid"`
	Size       int64              `json:"size"`
	Nlink      uint64             `json:"nlink"`
	Ino        uint64             `json:"ino"`
	DevMajor   uint32             `json:"dev_major,omitempty"`
	DevMinor   uint32             `json:"dev_minor,omitempty"`
	Atime      model.Time         `json:"atime"`
	Mtime      model.Time         `json:"mtime"`
	Ctime      model.Time         `json:"ctime"`
	Btime      model.Time         `json:"btime"`
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

func runFsStat(a *app, args []string, follow bool) error {
	if len(args) != 2 {
		return usagef("fs stat takes CONTAINER PATH")
	}
	v, c, err := a.containerView(args[0])
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
		return err
	}
	st := e.Stat
	out := fsStat{
		Container: c.ID, Path: ctrPath(e.Path), Type: e.Type(), Mode: octalMode(st.Mode), UID: st.UID, GID: st.GID,
		Size: st.Size, Nlink: st.Nlink, Ino: st.Ino, DevMajor: st.DevMajor, DevMinor: st.DevMinor,
		Atime: model.T(st.Atime), Mtime: model.T(st.Mtime), Ctime: model.T(st.Ctime), Btime: model.T(st.Btime),
		LinkTarget: e.LinkTarget, Origin: e.Origin, Merged: e.Merged, Opaque: e.Opaque, Redirect: e.Redirect, Anomalies: e.Anomalies,
	}
	fail := func(err error) { out.Errors = append(out.Errors, err.Error()) }
	if e.LinkTarget != "" {
		if r, err := v.Resolve(e.Path); err == nil {
			out.Resolves = ctrPath(r)
		} else {
			fail(err)
		}
	}
	if st.Mode.IsRegular() {
		if o, mc, err := v.DataOrigin(e); err != nil {
			fail(err)
		} else if mc != nil {
			out.Data, out.Metacopy = &o, mc
		}
		if h, err := hashEntry(v, e); err != nil {
			fail(err)
		} else {
			out.SHA256 = h
		}
	}
	if xs, err := v.OverlayXattrs(e); err != nil {
		fail(err)
	} else {
		out.Overlay = xattrMap(xs)
	}
	if xs, err := v.Xattrs(e); err != nil {
		fail(err)
	} else {
		out.Xattrs = xattrMap(xs)
	}
	return a.render(out, func(w io.Writer) {
		kv := func(k string, v any) { fmt.Fprintf(w, "%s:\t%s\n", k, cleanCell(fmt.Sprint(v))) }
		kv("Container", out.Container)
		kv("Path", out.Path)
		kv("Type", out.Type)
		kv("Mode", fmt.Sprintf("%s (%s)", out.Mode, lsMode(st.Mode)))
		kv("Owner", fmt.Sprintf("%d:%d", out.UID, out.GID))
		kv("Size", out.Size)
		kv("Links", out.Nlink)
		kv("Inode", out.Ino)
		if st.Mode&fs.ModeDevice != 0 {
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
		kv("Origin layer", fmt.Sprintf("%d %s (%s)", out.Origin.Layer, out.Origin.LayerName, out.Origin.Path))
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
		printMap(w, "Overlay xattr", out.Overlay)
		printMap(w, "Xattr", out.Xattrs)
		for _, s := range out.Anomalies {
			kv("Anomaly", s)
		}
		for _, s := range out.Errors {
			kv("Error", s)
		}
	})
}
