package main

import (
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/overlay"
)

// The fs commands with --volumes: the container's layers with its mounts
// over them (forensics.MountedView).

// mountedView opens a container's --volumes view.
func (a *app) mountedView(ref string, vf viewFlag) (*forensics.MountedView, *model.Container, error) {
	if vf.image || vf.layer >= 0 {
		return nil, nil, usagef("--volumes shows the merged root with its mounts: it excludes --image and --layer")
	}
	n, c, err := a.container(ref)
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

func runFsLsMounted(a *app, ref, p string, o fsLsFlags) error {
	v, _, err := a.mountedView(ref, o.view)
	if err != nil {
		return err
	}
	return listFs(a, v, p, o, fsListing[*forensics.MountedEntry]{
		dir:    func(*forensics.MountedEntry) string { return p },
		walk:   v.Walk,
		entry:  newMountedFsEntry,
		column: "ORIGIN",
		origin: func(e fsEntry) string {
			if e.Origin == forensics.OriginLayer {
				return layerLabel(e.Layer, e.LayerName)
			}
			return e.Origin
		},
	})
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
	out := newFsStat(c.ID, e.ContainerPath(), e.Type(), st, e.LinkTarget)
	out.ViewOrigin, out.Mount, out.Note = e.Origin, e.Mount, e.Note
	if l := e.Layer; l != nil {
		out.Origin, out.Merged, out.Opaque, out.Redirect, out.Anomalies = l.Origin, l.Merged, l.Opaque, l.Redirect, l.Anomalies
		if st.Mode.IsRegular() {
			if o, mc, err := v.Root.DataOrigin(l); err != nil {
				out.fail(err)
			} else if mc != nil {
				out.Data, out.Metacopy = &o, mc
			}
		}
		xs, err := v.Root.OverlayXattrs(l)
		keep(&out, &out.Overlay, xattrMap(xs), err)
	} else {
		out.Origin = overlay.Origin{Layer: -1, LayerName: e.Origin, Path: e.EvidencePath}
	}
	if e.LinkTarget != "" {
		r, err := v.Resolve(e.ContainerPath())
		keep(&out, &out.Resolves, r, err)
	}
	if st.Mode.IsRegular() {
		h, err := hashEntry(v, e, out.Path)
		keep(&out, &out.SHA256, h, err)
	}
	xs, err := v.Xattrs(e)
	keep(&out, &out.Xattrs, xattrMap(xs), err)
	return a.show(out, fsStatTable(out, st.Mode))
}
