package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/internal/records"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Options tune Open.
type Options struct {
	// Root is the Docker data root inside the evidence; empty detects it.
	Root string
}

// Store is everything read from one Docker data root of the evidence. It
// is read once by Open; reading it afterwards is safe from several
// goroutines (VerifyImages too, when the Source is).
type Store struct {
	Root   string // the data root inside the evidence (resolved, with a leading "/")
	Driver string // the storage driver whose image store was read ("overlay2")
	// Records are the namespaces, containers, pods, images and snapshots
	// read, and the orphans: layer directories and read-write layer
	// records that no image layer or container refers to (what a removal
	// left behind).
	model.Records
	// Layers are the image layers of layerdb, by chain id.
	Layers []Layer
	// RWLayers are the containers' read-write layers (layerdb/mounts), with
	// where each of their lower directories comes from.
	RWLayers []RWLayer
	// ImageConfigs are the image configs of imagedb, with their history.
	ImageConfigs []ImageConfig
	// Notes say how the root was found.
	Notes []string
	// Warnings are problems with single records; the rest was read.
	Warnings []evidence.Warning

	src       evidence.Source
	root      string // resolved, no leading "/"
	driverDir string // resolved <root>/overlay2, no leading "/"; "" when absent
	byChain   map[string]*Layer
	byCache   map[string]string // cache-id -> chain id
	lowers    *ondisk.Lowers    // overlay2 lower files, l/<short> links resolved once
}

// Layer is an image layer of layerdb/sha256/<chainID>.
type Layer struct {
	ChainID  string             `json:"chain_id"`
	DiffID   string             `json:"diff_id"`
	Parent   string             `json:"parent"`
	Size     int64              `json:"size"`
	CacheID  string             `json:"cache_id"`
	Dir      string             `json:"dir"`  // overlay2/<cache-id>/diff inside the evidence
	Link     string             `json:"link"` // its short name under overlay2/l/
	Warnings []evidence.Warning `json:"warnings"`
}

// RWLayer is a container's read-write layer and what lies below it.
type RWLayer struct {
	ContainerID string `json:"container_id"`
	MountID     string `json:"mount_id"`
	InitID      string `json:"init_id"`
	Parent      string `json:"parent"` // chain id of the image's top layer
	UpperDir    string `json:"upper_dir"`
	InitDir     string `json:"init_dir"`
	// Lowers are the lower directories, top first, as the overlay mount
	// stacks them.
	Lowers   []Lower            `json:"lowers"`
	Warnings []evidence.Warning `json:"warnings"`
}

// Lower is one lower directory of a container.
type Lower struct {
	Short   string `json:"short"` // the entry of the lower file ("l/<short>"), "" when computed from layerdb
	Dir     string `json:"dir"`
	CacheID string `json:"cache_id"` // the overlay2/<dir> it belongs to
	ChainID string `json:"chain_id"` // the image layer it is, "" for the init layer
	// Init marks the <mount-id>-init layer: made by dockerd when the
	// container was created (/etc/hosts, /etc/resolv.conf, /.dockerenv…
	// placeholders), not part of the image.
	Init bool `json:"init"`
}

// Orphan is something of the data root nothing refers to.
type Orphan = model.Orphan

// ImageConfig is an image config of imagedb/content/sha256.
type ImageConfig struct {
	ID           string             `json:"id"` // sha256:<hex>, the config's digest
	Names        []string           `json:"names"`
	Created      model.Time         `json:"created"`
	Architecture string             `json:"architecture"`
	OS           string             `json:"os"`
	User         string             `json:"user"`
	Env          []string           `json:"env"`
	Entrypoint   []string           `json:"entrypoint"`
	Cmd          []string           `json:"cmd"`
	WorkingDir   string             `json:"working_dir"`
	Labels       map[string]string  `json:"labels"`
	DiffIDs      []string           `json:"diff_ids"`
	ChainIDs     []string           `json:"chain_ids"`
	History      []History          `json:"history"`
	Size         int64              `json:"size"` // bytes of the config blob
	Warnings     []evidence.Warning `json:"warnings"`
}

// History is one step of an image's history.
type History struct {
	Created    model.Time `json:"created"`
	CreatedBy  string     `json:"created_by"`
	Comment    string     `json:"comment,omitempty"`
	EmptyLayer bool       `json:"empty_layer"`
}

// ErrNotFound is returned when no Docker data root is found in the evidence.
var ErrNotFound = fmt.Errorf("no Docker data root found: %w", model.ErrRuntimeNotFound)

var knownRoots = []string{defaultRoot, "var/snap/docker/common/var-lib-docker"}

// isRoot says whether r (resolved) looks like a Docker data root; a
// permission error says it could not be told.
func isRoot(src evidence.Source, r string) (bool, error) {
	var denied error
	for _, d := range []string{containersDir, imageDir} {
		st, err := src.Lstat(path.Join(r, d))
		if err == nil && st.Mode.IsDir() {
			return true, nil
		}
		if err != nil && errors.Is(err, fs.ErrPermission) {
			denied = err
		}
	}
	return false, denied
}

// Detect returns the Docker data roots found in the evidence, in order of
// preference, with notes on how each was found, and the places that exist
// but may not be read (errors.Is fs.ErrPermission; nil when none).
func Detect(src evidence.Source) (roots []string, notes []string, denied error) {
	f := finder(src)
	return f.Roots, f.Notes, errors.Join(f.Denied...)
}

// finder looks for Docker's data root: daemon.json's, the default places,
// then rootless daemons' in the users' homes.
func finder(src evidence.Source) *pathutil.Finder {
	f := &pathutil.Finder{Src: src, What: "Docker data root", Hint: "use --docker-root", IsRoot: func(r string) (bool, error) { return isRoot(src, r) }}
	if b := f.ReadConfig(daemonConfig, maxConfig); b != nil {
		var cfg struct {
			DataRoot string `json:"data-root"`
			Graph    string `json:"graph"`
		}
		if json.Unmarshal(b, &cfg) == nil {
			for _, dr := range []string{cfg.DataRoot, cfg.Graph} {
				if dr != "" {
					f.Host(dr, fmt.Sprintf("Docker data root %s from /%s", dr, daemonConfig))
				}
			}
		}
	}
	for _, k := range knownRoots {
		f.Known(k, "")
	}
	// Rootless daemons keep their data root in the user's home.
	for _, h := range pathutil.Homes(src) {
		if r, err := evidence.Resolve(src, path.Join(h.Dir, rootlessRoot), true); err == nil {
			f.Add(r, fmt.Sprintf("rootless Docker data root in /%s", h.Dir))
		}
	}
	return f
}

// Open reads the Docker data root of the evidence (detected unless
// opt.Root is set; nil options are the defaults). A root that exists but
// may not be read is a *fs.PathError (errors.Is fs.ErrPermission) naming
// it, not ErrNotFound.
func Open(src evidence.Source, opt *Options) (*Store, error) {
	o := ptr.Value(opt)
	r, notes, warns, err := pathutil.Root(src, o.Root, func() *pathutil.Finder { return finder(src) }, ErrNotFound)
	if err != nil {
		return nil, err
	}
	s := &Store{src: src, Notes: notes, Warnings: warns, byChain: map[string]*Layer{}, byCache: map[string]string{}}
	if st, err := src.Lstat(r); err != nil {
		return nil, err
	} else if !st.Mode.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: "/" + r, Err: fs.ErrInvalid}
	}
	s.root = r
	s.Root = "/" + r
	s.Driver = s.findDriver()
	if s.Driver == driverOverlay2 {
		if d, err := evidence.Resolve(src, path.Join(r, driverOverlay2), true); err == nil {
			if st, err := src.Lstat(d); err == nil && st.Mode.IsDir() {
				s.driverDir = d
			}
		}
		if s.driverDir == "" {
			s.Warnings = append(s.Warnings, evidence.Warnf(s.Root+"/"+driverOverlay2, -1, "not in the evidence; no layer directories"))
		}
		s.lowers = &ondisk.Lowers{Src: src, DriverDir: s.driverDir, LinkDir: linkDir, DiffDir: diffDir, MaxFile: maxLowerFile, MaxLowers: maxLowers}
	}
	s.readLayers()
	s.readImages()
	s.readContainers()
	s.findOrphans()
	s.buildPods()
	s.buildSnapshots()
	s.countNamespace()
	records.Normalise(&s.Records)
	return s, nil
}

// findDriver picks the storage driver whose image store is in the root.
func (s *Store) findDriver() string {
	ents, err := s.src.ReadDir(path.Join(s.root, imageDir))
	if err != nil {
		return driverOverlay2
	}
	var drivers []string
	for _, e := range ents {
		if e.Mode.IsDir() {
			drivers = append(drivers, path.Base(e.Name))
		}
	}
	for _, d := range drivers {
		if d == driverOverlay2 {
			if len(drivers) > 1 {
				s.Notes = append(s.Notes, fmt.Sprintf("image stores of several storage drivers (%s); reading %s", strings.Join(drivers, ", "), driverOverlay2))
			}
			return d
		}
	}
	if len(drivers) > 0 {
		s.Warnings = append(s.Warnings, evidence.Warnf("", -1, "storage driver %s: only overlay2 layers are resolved; containers are listed without layer directories", drivers[0]))
		return drivers[0]
	}
	return driverOverlay2
}

// Info names the runtime and its root (model.Runtime).
func (s *Store) Info() model.RuntimeInfo {
	return model.RuntimeInfo{Name: model.RuntimeDocker, Root: s.Root, Notes: s.Notes, Warnings: s.Warnings}
}

// Recorded returns the records read (model.Runtime).
func (s *Store) Recorded() *model.Records { return &s.Records }

// Reader finds and reads Docker's data root in the evidence
// (model.Reader). It is safe for concurrent use.
var Reader model.Reader = records.Reader{Runtime: model.RuntimeDocker, Roots: knownRoots,
	Read: func(src evidence.Source, opt *model.ReaderOptions) ([]model.Runtime, error) {
		s, err := Open(src, &Options{Root: opt.Root})
		if err != nil {
			return nil, err
		}
		return []model.Runtime{s}, nil
	}}
