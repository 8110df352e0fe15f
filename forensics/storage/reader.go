package storage

import (
	"fmt"
	"io/fs"
	"path"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/records"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Options tune Open and OpenAll.
type Options struct {
	// GraphRoot is the graph root inside the evidence; empty detects it.
	GraphRoot string
	// RunRoot is the run root inside the evidence; empty derives it.
	RunRoot string
}

// Store is everything read from one containers-storage graph root. It is
// read once by Open; reading it afterwards is safe from several
// goroutines (VerifyImages too, when the Source is).
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
	Warnings []evidence.Warning

	src       evidence.Source
	graph     string // resolved, no leading "/"
	run       string
	driverDir string
	byLayer   map[string]*Layer
	libpod    *libpodDB
	// libpodUnread is set when a libpod state database is present but
	// could not be read.
	libpodUnread bool
	runtime      string         // of the images and layers: podman unless only CRI-O made containers
	lowers       *ondisk.Lowers // overlay lower files, l/<short> links resolved once
}

// Layer is a record of layers.json.
type Layer struct {
	ID               string             `json:"id"`
	Names            []string           `json:"names"`
	Parent           string             `json:"parent"`
	Created          model.Time         `json:"created"`
	CompressedDigest string             `json:"compressed_diff_digest"`
	CompressedSize   int64              `json:"compressed_size"`
	DiffDigest       string             `json:"diff_digest"`
	DiffSize         int64              `json:"diff_size"`
	Dir              string             `json:"dir"`  // overlay/<id>/diff inside the evidence
	Link             string             `json:"link"` // its short name under overlay/l/
	MountPoint       string             `json:"mount_point"`
	Containers       []string           `json:"containers"`
	Warnings         []evidence.Warning `json:"warnings"`
}

// ImageRecord is a record of images.json.
type ImageRecord struct {
	ID                string             `json:"id"`
	Digest            string             `json:"digest"` // of the manifest
	Names             []string           `json:"names"`
	TopLayer          string             `json:"top_layer"`
	Layers            []string           `json:"layers"` // the layer chain, top first
	Created           model.Time         `json:"created"`
	ManifestMediaType string             `json:"manifest_media_type"`
	ManifestSize      int64              `json:"manifest_size"`
	ConfigDigest      string             `json:"config_digest"`
	Warnings          []evidence.Warning `json:"warnings"`
}

// Orphan is something of the store no record refers to.
type Orphan = model.Orphan

// ErrNotFound is returned when no graph root is found in the evidence.
var ErrNotFound = fmt.Errorf("no containers-storage graph root found: %w", model.ErrRuntimeNotFound)

// OpenAll reads every graph root of the evidence (or only opt.GraphRoot;
// nil options are the defaults). A root that exists but may not be read
// is a *fs.PathError (errors.Is fs.ErrPermission) naming it, when no root
// is found.
func OpenAll(src evidence.Source, opt *Options) ([]*Store, error) {
	o := ptr.Value(opt)
	var roots []Root
	var denied []evidence.Warning
	if o.GraphRoot != "" {
		roots = []Root{{Graph: o.GraphRoot, Run: o.RunRoot}}
	} else {
		f, found := finder(src)
		_, warns, err := f.Pick(ErrNotFound, true) // OpenAll reads every root found
		if err != nil {
			return nil, err
		}
		roots, denied = found, warns
	}
	var out []*Store
	for _, r := range roots {
		s, err := openRoot(src, r)
		if err != nil {
			return out, fmt.Errorf("%s: %w", r.Graph, err)
		}
		out = append(out, s)
	}
	if len(out) > 0 {
		out[0].Warnings = append(out[0].Warnings, denied...)
	}
	return out, nil
}

// Open reads the first graph root of the evidence (or opt.GraphRoot; nil
// options are the defaults).
func Open(src evidence.Source, opt *Options) (*Store, error) {
	o := ptr.Value(opt)
	if o.GraphRoot != "" {
		return openRoot(src, Root{Graph: o.GraphRoot, Run: o.RunRoot})
	}
	f, roots := finder(src)
	_, warns, err := f.Pick(ErrNotFound, false)
	if err != nil {
		return nil, err
	}
	s, err := openRoot(src, roots[0])
	if err == nil {
		s.Warnings = append(s.Warnings, warns...)
	}
	return s, err
}

func openRoot(src evidence.Source, root Root) (*Store, error) {
	s := &Store{src: src, byLayer: map[string]*Layer{}, Driver: driverOverlay, runtime: model.RuntimePodman}
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
	s.lowers = &ondisk.Lowers{Src: src, DriverDir: s.driverDir, LinkDir: linkDir, DiffDir: diffDir, MaxFile: maxLowerFile, MaxLowers: maxLowers}
	if !isDir(src, path.Join(g, driverOverlay+layersSuffix)) && isDir(src, path.Join(g, "vfs"+layersSuffix)) {
		s.Driver = "vfs"
		s.Warnings = append(s.Warnings, evidence.Warnf("", -1, "storage driver vfs: only overlay layers are resolved; containers are listed without layer directories"))
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
	records.Normalise(&s.Records)
	return s, nil
}

// listFile is a file of one of the driver's stores: <dir>/<driver><name>.
func (s *Store) listFile(dir, name string) string {
	return path.Join(dir, s.Driver+name)
}

// Info names the runtime and its root (model.Runtime).
func (s *Store) Info() model.RuntimeInfo {
	return model.RuntimeInfo{Name: runtimeName, Root: s.GraphRoot, Notes: s.Notes, Warnings: s.Warnings}
}

// Recorded returns the records read (model.Runtime).
func (s *Store) Recorded() *model.Records { return &s.Records }

// Reader finds and reads every containers-storage graph root (Podman,
// CRI-O) in the evidence (model.Reader). It is safe for concurrent use.
var Reader model.Reader = records.Reader{Runtime: runtimeName, Roots: []string{defaultGraphRoot},
	Read: func(src evidence.Source, opt *model.ReaderOptions) ([]model.Runtime, error) {
		ss, err := OpenAll(src, &Options{GraphRoot: opt.Root})
		out := make([]model.Runtime, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out, err
	}}
