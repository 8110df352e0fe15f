package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/overlay"
	"github.com/deadnode/deadnode/render"
)

// The fs commands with --volumes: the container's layers with its mounts
// over them (forensics.MountedView).

// mountedView opens a container's --volumes view.
func (a *app) mountedView(ref string, vf viewFlag) (*forensics.MountedView, *model.Container, error) {
	if vf.image || vf.layer >= 0 {
		return nil, nil, usagef("--volumes shows the merged root with its mounts: it excludes --image and --layer")
	}
	n, err := a.node()
	if err != nil {
		return nil, nil, err
	}
	c, err := n.FindContainer(ref)
	if err != nil {
		return nil, nil, err
	}
	v, ws, err := n.MountedView(c)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range ws {
		a.warn(w.String())
	}
	return v, c, nil
}

func newMountedFsEntry(e *forensics.MountedEntry) fsEntry {
	p := e.ContainerPath()
	fe := fsEntry{
		Path: p, PathBytes: model.PathBytes(p), Type: e.Type(), Mode: evidence.ModeString(e.Stat.Mode), UID: e.Stat.UID, GID: e.Stat.GID,
		Size: e.Stat.Size, Mtime: model.T(e.Stat.Mtime), LinkTarget: e.LinkTarget, Layer: -1,
		Origin: e.Origin, EvidencePath: e.EvidencePath, Note: e.Note, mode: e.Stat.Mode,
	}
	if e.Layer != nil {
		fe.Layer, fe.LayerName = e.Layer.Origin.Layer, e.Layer.Origin.LayerName
	}
	return fe
}

// hashMounted returns the sha256 of a regular file of the view.
func hashMounted(v *forensics.MountedView, e *forensics.MountedEntry) (string, error) {
	f, err := v.OpenEntry(e)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, f.Size())); err != nil {
		return "", fmt.Errorf("%s: %w", e.ContainerPath(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func runFsLsMounted(a *app, ref, p string, o fsLsFlags) error {
	v, _, err := a.mountedView(ref, o.view)
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
	emit := func(e *forensics.MountedEntry) {
		fe := newMountedFsEntry(e)
		if o.hash && e.Stat.Mode.IsRegular() {
			if fe.SHA256, err = hashMounted(v, e); err != nil {
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
		for e, err := range v.Walk(p) {
			if err != nil {
				a.warn(err.Error())
				continue
			}
			emit(e)
		}
	case top.Stat.Mode.IsDir():
		ents, err := v.ReadDirEntries(p)
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
	hdr := []string{"MODE=", "UID=", "GID=", "SIZE=", "MTIME=", "ORIGIN"}
	if o.hash {
		hdr = append(hdr, "SHA256#")
	}
	t := render.Cols(append(hdr, "PATH/")...)
	for _, e := range all {
		name := e.Path
		if e.LinkTarget != "" {
			name += " -> " + e.LinkTarget
		}
		origin := e.Origin
		if origin == forensics.OriginLayer {
			origin = layerLabel(e.Layer, e.LayerName)
		}
		cells := []any{lsMode(e.mode), e.UID, e.GID, e.Size, e.Mtime, origin}
		if o.hash {
			cells = append(cells, e.SHA256)
		}
		t.Row(append(cells, name)...)
	}
	return a.show(all, t)
}

func runFsCatMounted(a *app, ref, p string, vf viewFlag) error {
	v, _, err := a.mountedView(ref, vf)
	if err != nil {
		return err
	}
	f, err := v.OpenFile(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(a.stdout, io.NewSectionReader(f, 0, f.Size()))
	return err
}

func runFsStatMounted(a *app, ref, p string, follow bool, vf viewFlag) error {
	v, c, err := a.mountedView(ref, vf)
	if err != nil {
		return err
	}
	var e *forensics.MountedEntry
	if follow {
		e, err = v.StatEntry(p)
	} else {
		e, err = v.LstatEntry(p)
	}
	if err != nil {
		return err
	}
	st := e.Stat
	out := fsStat{
		Container: c.ID, Path: e.ContainerPath(), Type: e.Type(), Mode: evidence.ModeString(st.Mode), UID: st.UID, GID: st.GID,
		Size: st.Size, Nlink: st.Nlink, Ino: st.Ino, DevMajor: st.DevMajor, DevMinor: st.DevMinor,
		Atime: model.T(st.Atime), Mtime: model.T(st.Mtime), Ctime: model.T(st.Ctime), Btime: model.T(st.Btime),
		LinkTarget: e.LinkTarget, ViewOrigin: e.Origin, Mount: e.Mount, Note: e.Note,
	}
	fail := func(err error) { out.Errors = append(out.Errors, err.Error()) }
	if l := e.Layer; l != nil {
		out.Origin, out.Merged, out.Opaque, out.Redirect, out.Anomalies = l.Origin, l.Merged, l.Opaque, l.Redirect, l.Anomalies
		if st.Mode.IsRegular() {
			if o, mc, err := v.Root.DataOrigin(l); err != nil {
				fail(err)
			} else if mc != nil {
				out.Data, out.Metacopy = &o, mc
			}
		}
		if xs, err := v.Root.OverlayXattrs(l); err != nil {
			fail(err)
		} else {
			out.Overlay = xattrMap(xs)
		}
	} else {
		out.Origin = overlay.Origin{Layer: -1, LayerName: e.Origin, Path: e.EvidencePath}
	}
	if e.LinkTarget != "" {
		if r, err := v.Resolve(e.ContainerPath()); err == nil {
			out.Resolves = r
		} else {
			fail(err)
		}
	}
	if st.Mode.IsRegular() {
		if h, err := hashMounted(v, e); err != nil {
			fail(err)
		} else {
			out.SHA256 = h
		}
	}
	if xs, err := v.Xattrs(e); err != nil {
		fail(err)
	} else {
		out.Xattrs = xattrMap(xs)
	}
	return a.show(out, fsStatTable(out, st.Mode))
}
