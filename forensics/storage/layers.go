package storage

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// readList streams one JSON list file of the store; a missing file is
// an empty list. fn gets each record, its index and byte offset, and where
// a warning about it points.
func (s *Store) readList(file string, fn func(i int, raw json.RawMessage, at recordAt)) {
	f, err := s.src.Open(file)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.Warnings = append(s.Warnings, evidence.Warnf("/"+file, -1, "%v", pathutil.Denied(s.src, file, err)))
		}
		return
	}
	defer f.Close()
	size := f.Size()
	if size > maxListJSON {
		// One record is held whole while it is decoded: the file's bound
		// is also a record's.
		s.Warnings = append(s.Warnings, evidence.Warnf("/"+file, -1, "%d bytes, more than the %d read: the records past that are not read", size, maxListJSON))
		size = maxListJSON
	}
	if _, err := decodeList(io.NewSectionReader(f, 0, size), maxRecords, func(i int, off int64, raw json.RawMessage) {
		fn(i, raw, recordAt{"/" + file, off})
	}); err != nil {
		s.Warnings = append(s.Warnings, ondisk.Warning("/"+file, "JSON list", err))
	}
}

// recordAt is a record of a list file: the file and the record's offset.
type recordAt struct {
	file string
	off  int64
}

func (r recordAt) warnf(format string, args ...any) evidence.Warning {
	return evidence.Warnf(r.file, r.off, format, args...)
}

// readLayers reads layers.json (and the run root's volatile-layers.json):
// the layers, their directories, and where they are mounted.
func (s *Store) readLayers() {
	files := []string{s.listFile(s.graph, layersSuffix+"/"+layersJSON)}
	if s.run != "" {
		files = append(files, s.listFile(s.run, layersSuffix+"/"+volatileLayersJSN))
	}
	for _, file := range files {
		s.readList(file, func(i int, raw json.RawMessage, at recordAt) {
			l, err := decodeLayer(raw)
			if err != nil {
				s.Warnings = append(s.Warnings, at.warnf("record %d: %v", i, err))
				return
			}
			if !pathutil.PlainName(l.ID) {
				s.Warnings = append(s.Warnings, at.warnf("record %d: layer id %q is not a plain name", i, l.ID))
				return
			}
			if s.byLayer[l.ID] != nil {
				s.Warnings = append(s.Warnings, at.warnf("layer %s listed twice; the first is kept", l.ID))
				return
			}
			lr := Layer{ID: l.ID, Names: l.Names, Parent: l.Parent, Created: model.T(l.Created), CompressedDigest: l.CompressedDigest, CompressedSize: l.CompressedSize,
				DiffDigest: l.UncompressedDigest, DiffSize: l.UncompressedSize, MountPoint: l.MountPoint, Containers: []string{}, Warnings: []evidence.Warning{}}
			if s.driverDir != "" && s.Driver == driverOverlay {
				d := path.Join(s.driverDir, l.ID, diffDir)
				if w, ok := ondisk.CheckDir(s.src, d, "layer directory"); !ok {
					lr.Warnings = append(lr.Warnings, w)
				} else {
					lr.Dir = "/" + d
				}
				if b, err := evidence.ReadFile(s.src, path.Join(s.driverDir, l.ID, linkFile), maxSmallFile); err == nil && pathutil.PlainName(strings.TrimSpace(string(b))) {
					lr.Link = strings.TrimSpace(string(b))
				}
			}
			s.Layers = append(s.Layers, lr)
			s.byLayer[l.ID] = &s.Layers[len(s.Layers)-1]
		})
	}
	// Appending may have moved the slice: index again.
	for i := range s.Layers {
		s.byLayer[s.Layers[i].ID] = &s.Layers[i]
	}
	if s.run != "" {
		s.readList(s.listFile(s.run, layersSuffix+"/"+mountpointsJSON), func(i int, raw json.RawMessage, at recordAt) {
			var mp struct {
				ID   string `json:"id"`
				Path string `json:"path"`
			}
			if err := object(raw, &mp); err != nil {
				s.Warnings = append(s.Warnings, at.warnf("record %d: %v", i, err))
				return
			}
			if l := s.byLayer[mp.ID]; l != nil {
				l.MountPoint = mp.Path
			}
		})
	}
	for i := range s.Layers {
		s.Warnings = append(s.Warnings, s.Layers[i].Warnings...)
	}
}

// chain is the layer chain from id down, top first.
func (s *Store) chain(id string) ([]string, []evidence.Warning) {
	var warn []evidence.Warning
	ids, loop, missing := ondisk.Chain(id, maxChain, func(p string) (string, bool) {
		l := s.byLayer[p]
		if l == nil {
			return "", false
		}
		return l.Parent, true
	})
	if loop != "" {
		warn = append(warn, evidence.Warnf("", -1, "layer parent chain loops at %s; cut there", loop))
	}
	if missing != "" {
		warn = append(warn, evidence.Warnf("", -1, "layer %s is not in layers.json; chain incomplete", missing))
	}
	return ids, warn
}

// containerLayers resolves a container's layer directories.
func (s *Store) containerLayers(c *model.Container, layerID string) {
	if layerID == "" {
		c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "no container layer recorded"))
		return
	}
	l := s.byLayer[layerID]
	if l == nil {
		c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "container layer %s is not in layers.json", layerID))
		return
	}
	l.Containers = append(l.Containers, c.ID)
	if s.driverDir == "" || s.Driver != driverOverlay {
		return
	}
	c.UpperDir = l.Dir
	ids, warn := s.chain(l.Parent)
	var want []string
	for _, id := range ids {
		want = append(want, s.byLayer[id].Dir)
	}
	lowerName := path.Join(s.driverDir, layerID, lowerFile)
	got, err := s.lowerFromFile(lowerName)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist) && len(want) == 0:
		// A layer with no parent has no lower file.
	case err != nil:
		w := evidence.WarningOf(err)
		w.Msg += "; lower directories computed from layers.json"
		c.Warnings = append(c.Warnings, w)
		c.Warnings = append(c.Warnings, warn...)
		c.LowerDirs = append(c.LowerDirs, want...)
	default:
		c.LowerDirs = got
		if !slices.Equal(got, want) && len(warn) == 0 {
			c.Warnings = append(c.Warnings, evidence.Warnf("", -1, "/%s and layers.json disagree on the lower directories (lower file: %s; layers.json: %s); the lower file is what was mounted", lowerName, strings.Join(got, ":"), strings.Join(want, ":")))
		}
	}
}

// lowerFromFile reads and resolves an overlay lower file.
func (s *Store) lowerFromFile(name string) ([]string, error) {
	ls, err := s.lowers.Read(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Dir)
	}
	return out, nil
}
