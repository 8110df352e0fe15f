package storage

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
	toml "github.com/pelletier/go-toml/v2"
)

// Options tune Open and OpenAll.
type Options struct {
	// GraphRoot is the graph root inside the evidence; empty detects it.
	GraphRoot string
	// RunRoot is the run root inside the evidence; empty derives it.
	RunRoot string
}

// Root is a graph root found in the evidence and its run root.
type Root struct {
	Graph string `json:"graph"` // resolved, with a leading "/"
	Run   string `json:"run"`   // resolved, with a leading "/"; "" when not in the evidence
	Note  string `json:"note,omitempty"`
}

// Store is everything read from one containers-storage graph root.
type Store struct {
	GraphRoot string
	RunRoot   string
	Driver    string
	StateDB   string // the libpod state database read ("" when none)
	// Records are the namespaces, containers, pods, images and snapshots
	// read; the execs: libpod's exec session records, live ones and
	// deleted ones carved from the state database's free pages, in file
	// order; and the orphans: layer and container directories no record
	// refers to (what a removal left behind).
	model.Records
	// Layers are the records of layers.json with their directories.
	Layers []Layer
	// ImageRecords are the records of images.json with their manifests.
	ImageRecords []ImageRecord
	// Notes say how the root was found.
	Notes []string
	// Warnings are problems with single records; the rest was read.
	Warnings []string

	src       evidence.Source
	graph     string // resolved, no leading "/"
	run       string
	driverDir string
	byLayer   map[string]*Layer
	libpod    *libpodDB
	// libpodUnread is set when a libpod state database is present but
	// could not be read.
	libpodUnread bool
	runtime      string          // of the images and layers: podman unless only CRI-O made containers
	links        map[string]link // l/<short> -> its resolution
}

// link is the resolution of an l/<short> entry.
type link struct {
	dir string
	err error
}

// Layer is a record of layers.json.
type Layer struct {
	ID               string     `json:"id"`
	Names            []string   `json:"names"`
	Parent           string     `json:"parent"`
	Created          model.Time `json:"created"`
	CompressedDigest string     `json:"compressed_diff_digest"`
	CompressedSize   int64      `json:"compressed_size"`
	DiffDigest       string     `json:"diff_digest"`
	DiffSize         int64      `json:"diff_size"`
	Dir              string     `json:"dir"`  // overlay/<id>/diff inside the evidence
	Link             string     `json:"link"` // its short name under overlay/l/
	MountPoint       string     `json:"mount_point"`
	Containers       []string   `json:"containers"`
	Warnings         []string   `json:"warnings"`
}

// ImageRecord is a record of images.json.
type ImageRecord struct {
	ID                string     `json:"id"`
	Digest            string     `json:"digest"` // of the manifest
	Names             []string   `json:"names"`
	TopLayer          string     `json:"top_layer"`
	Layers            []string   `json:"layers"` // the layer chain, top first
	Created           model.Time `json:"created"`
	ManifestMediaType string     `json:"manifest_media_type"`
	ManifestSize      int64      `json:"manifest_size"`
	ConfigDigest      string     `json:"config_digest"`
	Warnings          []string   `json:"warnings"`
}

// Orphan is something of the store no record refers to.
type Orphan = model.Orphan

// ErrNotFound is returned when no graph root is found in the evidence.
var ErrNotFound = fmt.Errorf("no containers-storage graph root found: %w", model.ErrRuntimeNotFound)

func (s *Store) out(rel string) string { return "/" + rel }

// isGraphRoot says whether r (resolved) holds a containers-storage store.
func isGraphRoot(src evidence.Source, r string) bool {
	for _, m := range []string{driverOverlay + containersSuffix, driverOverlay + layersSuffix, driverOverlay + imagesSuffix, "vfs" + layersSuffix} {
		if st, err := src.Lstat(path.Join(r, m)); err == nil && st.Mode.IsDir() {
			return true
		}
	}
	return false
}

func isDir(src evidence.Source, r string) bool {
	st, err := src.Lstat(r)
	return err == nil && st.Mode.IsDir()
}

// Detect returns the graph roots found in the evidence, in order of
// preference.
func Detect(src evidence.Source) []Root {
	var out []Root
	seen := map[string]bool{}
	add := func(g, run, note string) {
		if g == "" || seen[g] || !isGraphRoot(src, g) {
			return
		}
		seen[g] = true
		r := Root{Graph: "/" + g, Note: note}
		if run != "" && isDir(src, run) {
			r.Run = "/" + run
		}
		out = append(out, r)
	}
	defRun := ""
	if r, err := evidence.Resolve(src, defaultRunRoot, true); err == nil {
		defRun = r
	}
	if p, err := evidence.Resolve(src, storageConf, true); err == nil {
		if b, err := evidence.ReadFile(src, p, 1<<20); err == nil {
			var cfg struct {
				Storage struct {
					GraphRoot string `toml:"graphroot"`
					RunRoot   string `toml:"runroot"`
				} `toml:"storage"`
			}
			if toml.Unmarshal(b, &cfg) == nil && cfg.Storage.GraphRoot != "" {
				g, how := pathutil.Rebase(src, cfg.Storage.GraphRoot, func(r string) bool { return isGraphRoot(src, r) })
				run := defRun
				if cfg.Storage.RunRoot != "" {
					if r, _ := pathutil.Rebase(src, cfg.Storage.RunRoot, func(r string) bool { return isDir(src, r) }); r != "" {
						run = r
					}
				}
				add(g, run, fmt.Sprintf("graph root %s from /%s%s", cfg.Storage.GraphRoot, storageConf, how))
			}
		}
	}
	if r, err := evidence.Resolve(src, defaultGraphRoot, true); err == nil {
		add(r, defRun, "")
	}
	for _, h := range homes(src) {
		r, err := evidence.Resolve(src, path.Join(h.dir, rootlessStore), true)
		if err != nil {
			continue
		}
		run := ""
		if h.uid != 0 {
			if rr, err := evidence.Resolve(src, fmt.Sprintf("run/user/%d/containers", h.uid), true); err == nil {
				run = rr
			}
		}
		add(r, run, fmt.Sprintf("rootless store of /%s", h.dir))
	}
	return out
}

type home struct {
	dir string
	uid uint32
}

// homes lists /root and every /home/* directory of the evidence.
func homes(src evidence.Source) []home {
	out := []home{{dir: "root"}}
	ents, err := src.ReadDir("home")
	if err != nil {
		return out
	}
	for i, e := range ents {
		if i >= 4096 {
			break
		}
		if e.Mode.IsDir() && plainName(path.Base(e.Name)) {
			out = append(out, home{dir: path.Join("home", path.Base(e.Name)), uid: e.UID})
		}
	}
	return out
}

// OpenAll reads every graph root of the evidence (or only opt.GraphRoot).
func OpenAll(src evidence.Source, opt Options) ([]*Store, error) {
	var roots []Root
	if opt.GraphRoot != "" {
		roots = []Root{{Graph: opt.GraphRoot, Run: opt.RunRoot}}
	} else {
		roots = Detect(src)
	}
	if len(roots) == 0 {
		return nil, ErrNotFound
	}
	var out []*Store
	for _, r := range roots {
		s, err := openRoot(src, r)
		if err != nil {
			return out, fmt.Errorf("%s: %w", r.Graph, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Open reads the first graph root of the evidence (or opt.GraphRoot).
func Open(src evidence.Source, opt Options) (*Store, error) {
	if opt.GraphRoot != "" {
		return openRoot(src, Root{Graph: opt.GraphRoot, Run: opt.RunRoot})
	}
	roots := Detect(src)
	if len(roots) == 0 {
		return nil, ErrNotFound
	}
	s, err := openRoot(src, roots[0])
	if err == nil && len(roots) > 1 {
		var g []string
		for _, r := range roots {
			g = append(g, r.Graph)
		}
		s.Warnings = append(s.Warnings, fmt.Sprintf("more than one graph root in the evidence (%s); reading %s (OpenAll reads them all)", strings.Join(g, ", "), roots[0].Graph))
	}
	return s, err
}

func openRoot(src evidence.Source, root Root) (*Store, error) {
	s := &Store{src: src, byLayer: map[string]*Layer{}, Driver: driverOverlay, runtime: model.RuntimePodman, links: map[string]link{}}
	g, err := evidence.Resolve(src, root.Graph, true)
	if err != nil {
		return nil, err
	}
	if !isDir(src, g) {
		return nil, &fs.PathError{Op: "open", Path: "/" + g, Err: fs.ErrNotExist}
	}
	s.graph, s.GraphRoot = g, "/"+g
	if root.Note != "" {
		s.Notes = append(s.Notes, root.Note)
	}
	if root.Run != "" {
		if r, err := evidence.Resolve(src, root.Run, true); err == nil && isDir(src, r) {
			s.run, s.RunRoot = r, "/"+r
		}
	}
	if d, err := evidence.Resolve(src, path.Join(g, driverOverlay), true); err == nil && isDir(src, d) {
		s.driverDir = d
	}
	if !isDir(src, path.Join(g, driverOverlay+layersSuffix)) && isDir(src, path.Join(g, "vfs"+layersSuffix)) {
		s.Driver = "vfs"
		s.Warnings = append(s.Warnings, "storage driver vfs: only overlay layers are resolved; containers are listed without layer directories")
	}
	s.readLibpod()
	s.readLayers()
	s.readImages()
	s.readContainers()
	s.carveExec()
	s.findOrphans()
	s.buildPods()
	s.buildSnapshots()
	s.countNamespaces()
	s.normalise()
	return s, nil
}

func (s *Store) listFile(dir, name string) string {
	return path.Join(dir, s.Driver+name)
}

// readList streams one JSON list file of the store; a missing file is
// an empty list.
func (s *Store) readList(file string, fn func(i int, off int64, raw json.RawMessage)) {
	f, err := s.src.Open(file)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: %v", file, err))
		}
		return
	}
	defer f.Close()
	if _, err := decodeList(io.NewSectionReader(f, 0, f.Size()), maxRecords, fn); err != nil {
		s.Warnings = append(s.Warnings, (&evidence.FormatError{File: "/" + file, Offset: -1, Msg: "JSON list", Err: err}).Error())
	}
}

func (s *Store) readLibpod() {
	db := path.Join(s.graph, libpodDir, boltStateFile)
	if _, err := s.src.Lstat(db); err == nil {
		lp, err := readLibpod(s.src, db)
		if err != nil {
			s.libpodUnread = true
			s.Warnings = append(s.Warnings, fmt.Sprintf("libpod state unread, containers have no recorded state: %v", err))
		} else {
			s.libpod, s.StateDB = lp, "/"+db
			s.Warnings = append(s.Warnings, lp.warnings...)
			if g := lp.runtimeCfg["graph-root"]; g != "" && !strings.HasSuffix(s.GraphRoot, strings.TrimRight(g, "/")) {
				s.Notes = append(s.Notes, fmt.Sprintf("libpod state at %s was made for graph root %s", s.StateDB, g))
			}
		}
	}
	sq := path.Join(s.graph, libpodDir, sqliteState)
	if _, err := s.src.Lstat(sq); err != nil {
		return
	}
	if s.libpod != nil {
		// Podman keeps using BoltDB when bolt_state.db exists and no
		// database_backend is configured.
		s.Notes = append(s.Notes, fmt.Sprintf("/%s is present too; the state was read from %s", sq, s.StateDB))
		return
	}
	lp, err := readLibpodSQLite(s.src, sq)
	if err != nil {
		s.libpodUnread = true
		s.Warnings = append(s.Warnings, fmt.Sprintf("libpod state unread, containers have no recorded state: %v", err))
		return
	}
	s.libpod, s.StateDB, s.libpodUnread = lp, "/"+sq, false
	s.Warnings = append(s.Warnings, lp.warnings...)
}

// carveExec reads the exec sessions of the libpod state database, deleted
// ones included.
func (s *Store) carveExec() {
	if s.StateDB == "" {
		return
	}
	live := map[string]bool{}
	if s.libpod != nil {
		live = s.libpod.execIDs
	}
	xs, torn, err := carveExecSessions(s.src, strings.TrimPrefix(s.StateDB, "/"), live)
	if err != nil {
		s.Warnings = append(s.Warnings, err.Error())
	}
	if torn > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%s: %d exec session record remnants too torn to decode", s.StateDB, torn))
	}
	s.Execs = xs
	for id := range live {
		found := false
		for _, x := range xs {
			found = found || x.ID == id
		}
		if !found {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: live exec session %s: its record was not found", s.StateDB, id))
		}
	}
}

func (s *Store) readLayers() {
	var files []string
	files = append(files, s.listFile(s.graph, layersSuffix+"/"+layersJSON))
	if s.run != "" {
		files = append(files, s.listFile(s.run, layersSuffix+"/"+volatileLayersJSN))
	}
	for _, file := range files {
		s.readList(file, func(i int, off int64, raw json.RawMessage) {
			l, err := decodeLayer(raw)
			if err != nil {
				s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: offset %d: record %d: %v", file, off, i, err))
				return
			}
			if !plainName(l.ID) {
				s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: offset %d: record %d: layer id %q is not a plain name", file, off, i, l.ID))
				return
			}
			if s.byLayer[l.ID] != nil {
				s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: offset %d: layer %s listed twice; the first is kept", file, off, l.ID))
				return
			}
			lr := Layer{ID: l.ID, Names: l.Names, Parent: l.Parent, Created: model.T(l.Created), CompressedDigest: l.CompressedDigest, CompressedSize: l.CompressedSize,
				DiffDigest: l.UncompressedDigest, DiffSize: l.UncompressedSize, MountPoint: l.MountPoint, Containers: []string{}}
			if s.driverDir != "" && s.Driver == driverOverlay {
				d := path.Join(s.driverDir, l.ID, diffDir)
				if st, err := s.src.Lstat(d); err != nil {
					lr.Warnings = append(lr.Warnings, fmt.Sprintf("layer directory /%s: %v", d, err))
				} else if !st.Mode.IsDir() {
					lr.Warnings = append(lr.Warnings, fmt.Sprintf("layer directory /%s is not a directory", d))
				} else {
					lr.Dir = "/" + d
				}
				if b, err := evidence.ReadFile(s.src, path.Join(s.driverDir, l.ID, linkFile), maxSmallFile); err == nil && plainName(strings.TrimSpace(string(b))) {
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
		file := s.listFile(s.run, layersSuffix+"/"+mountpointsJSON)
		s.readList(file, func(i int, off int64, raw json.RawMessage) {
			var mp struct {
				ID   string `json:"id"`
				Path string `json:"path"`
			}
			if err := object(raw, &mp); err != nil {
				s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: offset %d: record %d: %v", file, off, i, err))
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
func (s *Store) chain(id string) ([]string, []string) {
	var out, warn []string
	seen := map[string]bool{}
	for p := id; p != ""; {
		if seen[p] || len(seen) >= maxChain {
			warn = append(warn, fmt.Sprintf("layer parent chain loops at %s; cut there", p))
			break
		}
		seen[p] = true
		l := s.byLayer[p]
		if l == nil {
			warn = append(warn, fmt.Sprintf("layer %s is not in layers.json; chain incomplete", p))
			break
		}
		out = append(out, p)
		p = l.Parent
	}
	return out, warn
}

// bigDataName is the file name containers-storage gives an image's big
// data item: the key itself when it is made of [0-9a-z.], else "=" and
// its base64.
func bigDataName(key string) string {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return "=" + base64.StdEncoding.EncodeToString([]byte(key))
		}
	}
	return key
}

func (s *Store) readImages() {
	file := s.listFile(s.graph, imagesSuffix+"/"+imagesJSON)
	dir := s.listFile(s.graph, imagesSuffix)
	s.readList(file, func(i int, off int64, raw json.RawMessage) {
		im, err := decodeImage(raw)
		if err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: offset %d: record %d: %v", file, off, i, err))
			return
		}
		if !plainName(im.ID) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: offset %d: record %d: image id %q is not a plain name", file, off, i, im.ID))
			return
		}
		rec := ImageRecord{ID: im.ID, Digest: im.Digest, Names: im.Names, TopLayer: im.TopLayer, Created: model.T(im.Created), ManifestSize: im.BigDataSizes[manifestKey]}
		if im.TopLayer != "" {
			var w []string
			rec.Layers, w = s.chain(im.TopLayer)
			for _, x := range w {
				rec.Warnings = append(rec.Warnings, fmt.Sprintf("image %s: %s", im.ID, x))
			}
		}
		mf := path.Join(dir, im.ID, bigDataName(manifestKey))
		if b, err := evidence.ReadFile(s.src, mf, maxJSON); err == nil {
			var m struct {
				MediaType string `json:"mediaType"`
				Config    struct {
					Digest string `json:"digest"`
				} `json:"config"`
			}
			if err := object(b, &m); err != nil {
				rec.Warnings = append(rec.Warnings, (&evidence.FormatError{File: "/" + mf, Offset: -1, Msg: "manifest JSON", Err: err}).Error())
			} else {
				rec.ManifestMediaType, rec.ConfigDigest = m.MediaType, m.Config.Digest
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			rec.Warnings = append(rec.Warnings, fmt.Sprintf("/%s: %v", mf, err))
		}
		s.Warnings = append(s.Warnings, rec.Warnings...)
		s.ImageRecords = append(s.ImageRecords, rec)
	})
	sort.Slice(s.ImageRecords, func(i, j int) bool { return s.ImageRecords[i].ID < s.ImageRecords[j].ID })
}

// Info names the runtime and its root (model.Runtime).
func (s *Store) Info() model.RuntimeInfo {
	ws := make([]evidence.Warning, len(s.Warnings))
	for i, w := range s.Warnings {
		ws[i] = evidence.Warning{Offset: -1, Msg: w}
	}
	return model.RuntimeInfo{Name: "containers-storage", Root: s.GraphRoot, Notes: s.Notes, Warnings: ws}
}

// Recorded returns the records read (model.Runtime).
func (s *Store) Recorded() *model.Records { return &s.Records }

// Reader finds and reads every containers-storage graph root (Podman,
// CRI-O) in the evidence (model.Reader).
var Reader model.Reader = reader{}

type reader struct{}

func (reader) Name() string { return "containers-storage" }

func (reader) Locations() []string { return []string{defaultGraphRoot} }

func (reader) Open(src evidence.Source, opt *model.ReaderOptions) ([]model.Runtime, error) {
	var o Options
	if opt != nil {
		o.GraphRoot = opt.Root
	}
	ss, err := OpenAll(src, o)
	out := make([]model.Runtime, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out, err
}
