package docker

import (
	"path"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// findOrphans lists the overlay2 directories no layer, container or -init
// layer owns, and the layerdb/mounts records of containers whose
// containers/<id> directory is gone.
func (s *Store) findOrphans() {
	known := map[string]bool{}
	for _, c := range s.Containers {
		known[c.ID] = true
	}
	md := path.Join(s.imageStore(), layerDBMounts)
	ents, warns := ondisk.List(s.src, md, maxEntries, "read-write layer records")
	s.Warnings = append(s.Warnings, warns...)
	for _, e := range ents {
		id := path.Base(e.Name)
		if e.Mode.IsDir() && pathutil.PlainName(id) && !known[id] {
			s.Orphans = append(s.Orphans, Orphan{Runtime: model.RuntimeDocker, Mtime: model.T(e.Mtime), Path: "/" + path.Join(md, id), Why: "read-write layer record of a container whose containers/" + id + " directory is gone"})
			if s.Driver == driverOverlay2 {
				rw := s.readRWLayer(id)
				rw.Warnings = append(rw.Warnings, evidence.Warnf("", -1, "the container's record is gone: containers/%s is not in the data root", id))
				s.RWLayers = append(s.RWLayers, rw)
			}
		}
	}
	if s.driverDir == "" {
		return
	}
	owned := map[string]bool{linkDir: true}
	for _, l := range s.Layers {
		owned[l.CacheID] = true
	}
	for _, rw := range s.RWLayers {
		owned[rw.MountID], owned[rw.InitID] = true, true
	}
	ents, warns = ondisk.List(s.src, s.driverDir, maxEntries, "layer directories")
	s.Warnings = append(s.Warnings, warns...)
	for _, e := range ents {
		n := path.Base(e.Name)
		if !owned[n] {
			what := "directory"
			if !e.Mode.IsDir() {
				what = e.Mode.Type().String() + " entry"
			}
			s.Orphans = append(s.Orphans, Orphan{Runtime: model.RuntimeDocker, Mtime: model.T(e.Mtime), Path: "/" + path.Join(s.driverDir, n), Why: what + " no image layer, container or -init layer refers to"})
		}
	}
}
