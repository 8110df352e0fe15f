package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
)

// readSmall reads a small one-line file (an id, a digest, a number).
func (s *Store) readSmall(name string) (string, error) {
	b, err := evidence.ReadFile(s.src, name, maxSmallFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readLayers reads image/overlay2/layerdb/sha256/<chain id>: the image
// layers and their overlay2 directories.
func (s *Store) readLayers() {
	dir := path.Join(s.imageStore(), layerDBSha)
	ents, warns := ondisk.List(s.src, dir, maxEntries, "layers")
	s.Warnings = append(s.Warnings, warns...)
	for _, e := range ents {
		name := path.Base(e.Name)
		if !e.Mode.IsDir() {
			continue
		}
		if !validHex(name) {
			s.Warnings = append(s.Warnings, evidence.Warnf("/"+path.Join(dir, name), -1, "not a chain id; skipped"))
			continue
		}
		ld := path.Join(dir, name)
		l := Layer{ChainID: "sha256:" + name, Warnings: []evidence.Warning{}}
		warn := func(format string, a ...any) {
			l.Warnings = append(l.Warnings, evidence.Warnf("/"+ld, -1, format, a...))
		}
		if v, err := s.readSmall(path.Join(ld, diffIDFile)); err != nil {
			warn("diff: %v", err)
		} else if !validDigest(v) {
			warn("diff %q is not a sha256 digest", v)
		} else {
			l.DiffID = v
		}
		if v, err := s.readSmall(path.Join(ld, parentFile)); err == nil {
			if validDigest(v) {
				l.Parent = v
			} else {
				warn("parent %q is not a sha256 digest", v)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			warn("parent: %v", err)
		}
		if v, err := s.readSmall(path.Join(ld, sizeFile)); err == nil {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				warn("size %q is not a byte count", v)
			} else {
				l.Size = n
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			warn("size: %v", err)
		}
		if v, err := s.readSmall(path.Join(ld, cacheIDFile)); err != nil {
			warn("cache-id: %v", err)
		} else if !pathutil.PlainName(v) {
			warn("cache-id %q is not a plain name", v)
		} else {
			l.CacheID = v
			s.byCache[v] = l.ChainID
			if s.driverDir != "" {
				l.Dir, l.Link = s.layerDir(v, &l.Warnings)
			}
		}
		s.Layers = append(s.Layers, l)
	}
	for i := range s.Layers {
		s.byChain[s.Layers[i].ChainID] = &s.Layers[i]
		s.Warnings = append(s.Warnings, s.Layers[i].Warnings...)
	}
}

// layerDir is overlay2/<id>/diff when it is a directory of the evidence,
// and the layer's short link name.
func (s *Store) layerDir(id string, warn *[]evidence.Warning) (dir, link string) {
	d := path.Join(s.driverDir, id, diffDir)
	if w, ok := ondisk.CheckDir(s.src, d, "layer directory"); !ok {
		*warn = append(*warn, w)
		return "", ""
	}
	if v, err := s.readSmall(path.Join(s.driverDir, id, linkFile)); err == nil && pathutil.PlainName(v) {
		link = v
	}
	return "/" + d, link
}

// chainIDs computes the chain ids of a list of diff ids.
func chainIDs(diffIDs []string) []string {
	out := make([]string, 0, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out = append(out, d)
			continue
		}
		h := sha256.Sum256([]byte(out[i-1] + " " + d))
		out = append(out, "sha256:"+hex.EncodeToString(h[:]))
	}
	return out
}

// readRWLayer resolves a container's read-write layer and its lowers.
func (s *Store) readRWLayer(id string) RWLayer {
	rw := RWLayer{ContainerID: id, Lowers: []Lower{}, Warnings: []evidence.Warning{}}
	md := path.Join(s.imageStore(), layerDBMounts, id)
	warn := func(file, format string, a ...any) {
		rw.Warnings = append(rw.Warnings, evidence.Warnf(file, -1, format, a...))
	}
	v, err := s.readSmall(path.Join(md, mountIDFile))
	if err != nil {
		warn("/"+path.Join(md, mountIDFile), "%v; no layer directories", err)
		return rw
	}
	if !pathutil.PlainName(v) {
		warn("/"+path.Join(md, mountIDFile), "%q is not a plain name; no layer directories", v)
		return rw
	}
	rw.MountID = v
	if chain, ok := s.byCache[v]; ok {
		// the container would write into an image layer every container
		// of that image reads
		warn("/"+path.Join(md, mountIDFile), "%q is the directory of image layer %s, not a container's own", v, chain)
	}
	if v, err := s.readSmall(path.Join(md, initIDFile)); err == nil {
		if pathutil.PlainName(v) {
			rw.InitID = v
		} else {
			warn("/"+path.Join(md, initIDFile), "%q is not a plain name", v)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		warn("/"+path.Join(md, initIDFile), "%v", err)
	}
	if v, err := s.readSmall(path.Join(md, parentFile)); err == nil {
		if validDigest(v) {
			rw.Parent = v
		} else {
			warn("/"+path.Join(md, parentFile), "%q is not a chain id", v)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		warn("/"+path.Join(md, parentFile), "%v", err)
	}
	if s.driverDir == "" {
		return rw
	}
	up := path.Join(s.driverDir, rw.MountID, diffDir)
	if w, ok := ondisk.CheckDir(s.src, up, "upper directory"); !ok {
		rw.Warnings = append(rw.Warnings, w)
	} else {
		rw.UpperDir = "/" + up
	}
	if rw.InitID != "" {
		rw.InitDir = "/" + path.Join(s.driverDir, rw.InitID, diffDir)
	}
	want, wwarn := s.chainLowers(rw)
	lowerName := path.Join(s.driverDir, rw.MountID, lowerFile)
	got, err := s.lowerFromFile(lowerName, rw.InitID)
	switch {
	case err != nil && errors.Is(err, fs.ErrNotExist) && len(want) == 0:
		// A container made from scratch has no lowers.
	case err != nil:
		w := evidence.WarningOf(err)
		w.Msg += "; lower directories computed from layerdb"
		rw.Warnings = append(rw.Warnings, w)
		rw.Warnings = append(rw.Warnings, wwarn...)
		rw.Lowers = want
	default:
		rw.Lowers = got
		if !slices.EqualFunc(got, want, func(a, b Lower) bool { return a.Dir == b.Dir }) && len(wwarn) == 0 {
			warn("", "/%s and layerdb disagree on the lower directories (lower file: %s; layerdb: %s); the lower file is what was mounted", lowerName, dirs(got), dirs(want))
		}
	}
	return rw
}

// chainLowers computes the lowers from layerdb: the init layer, then the
// parent chain's cache directories.
func (s *Store) chainLowers(rw RWLayer) ([]Lower, []evidence.Warning) {
	var out []Lower
	if rw.InitID != "" {
		out = append(out, Lower{Dir: rw.InitDir, CacheID: rw.InitID, Init: true})
	}
	var warn []evidence.Warning
	_, loop, missing := ondisk.Chain(rw.Parent, maxChain, func(p string) (string, bool) {
		l := s.byChain[p]
		if l == nil {
			return "", false
		}
		out = append(out, Lower{Dir: l.Dir, CacheID: l.CacheID, ChainID: l.ChainID})
		return l.Parent, true
	})
	if loop != "" {
		warn = append(warn, evidence.Warnf("", -1, "layer parent chain loops at %s; lower layers cut there", loop))
	}
	if missing != "" {
		warn = append(warn, evidence.Warnf("", -1, "layer %s is not in layerdb; lower layers incomplete", missing))
	}
	return out, warn
}

// lowerFromFile reads and resolves an overlay2 lower file.
func (s *Store) lowerFromFile(name, initID string) ([]Lower, error) {
	ls, err := s.lowers.Read(name)
	if err != nil {
		return nil, err
	}
	out := make([]Lower, 0, len(ls))
	for _, l := range ls {
		out = append(out, Lower{Short: l.Short, Dir: l.Dir, CacheID: l.ID, ChainID: s.byCache[l.ID], Init: l.ID == initID && initID != ""})
	}
	return out, nil
}

func dirs(l []Lower) string {
	var d []string
	for _, x := range l {
		d = append(d, x.Dir)
	}
	return strings.Join(d, ":")
}
