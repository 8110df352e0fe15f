package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
)

// Options tune Open.
type Options struct {
	// Root is the Docker data root inside the evidence; empty detects it.
	Root string
}

// Store is everything read from one Docker data root of the evidence.
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
	Warnings []string

	src       evidence.Source
	root      string // resolved, no leading "/"
	driverDir string // resolved <root>/overlay2, no leading "/"; "" when absent
	byChain   map[string]*Layer
	byCache   map[string]string // cache-id -> chain id
	links     map[string]link   // l/<short> -> its resolution
}

// link is the resolution of an l/<short> entry.
type link struct {
	dir, id string
	err     error
}

// Layer is an image layer of layerdb/sha256/<chainID>.
type Layer struct {
	ChainID  string   `json:"chain_id"`
	DiffID   string   `json:"diff_id"`
	Parent   string   `json:"parent"`
	Size     int64    `json:"size"`
	CacheID  string   `json:"cache_id"`
	Dir      string   `json:"dir"`  // overlay2/<cache-id>/diff inside the evidence
	Link     string   `json:"link"` // its short name under overlay2/l/
	Warnings []string `json:"warnings"`
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
	Lowers   []Lower  `json:"lowers"`
	Warnings []string `json:"warnings"`
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
	ID           string            `json:"id"` // sha256:<hex>, the config's digest
	Names        []string          `json:"names"`
	Created      model.Time        `json:"created"`
	Architecture string            `json:"architecture"`
	OS           string            `json:"os"`
	User         string            `json:"user"`
	Env          []string          `json:"env"`
	Entrypoint   []string          `json:"entrypoint"`
	Cmd          []string          `json:"cmd"`
	WorkingDir   string            `json:"working_dir"`
	Labels       map[string]string `json:"labels"`
	DiffIDs      []string          `json:"diff_ids"`
	ChainIDs     []string          `json:"chain_ids"`
	History      []History         `json:"history"`
	Size         int64             `json:"size"` // bytes of the config blob
	Warnings     []string          `json:"warnings"`
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

// isRoot says whether r (resolved) looks like a Docker data root.
func isRoot(src evidence.Source, r string) bool {
	for _, d := range []string{containersDir, imageDir} {
		if st, err := src.Lstat(path.Join(r, d)); err == nil && st.Mode.IsDir() {
			return true
		}
	}
	return false
}

// Detect returns the Docker data roots found in the evidence, in order of
// preference, with notes on how each was found.
func Detect(src evidence.Source) (roots []string, notes []string) {
	seen := map[string]bool{}
	add := func(r, why string) {
		if r == "" || seen[r] || !isRoot(src, r) {
			return
		}
		seen[r] = true
		roots = append(roots, "/"+r)
		if why != "" {
			notes = append(notes, why)
		}
	}
	if p, err := evidence.Resolve(src, daemonConfig, true); err == nil {
		if b, err := evidence.ReadFile(src, p, 1<<20); err == nil {
			var cfg struct {
				DataRoot string `json:"data-root"`
				Graph    string `json:"graph"`
			}
			if json.Unmarshal(b, &cfg) == nil {
				for _, dr := range []string{cfg.DataRoot, cfg.Graph} {
					if dr == "" {
						continue
					}
					r, how := rebase(src, dr)
					add(r, fmt.Sprintf("Docker data root %s from /%s%s", dr, daemonConfig, how))
				}
			}
		}
	}
	for _, k := range knownRoots {
		if r, err := evidence.Resolve(src, k, true); err == nil {
			add(r, "")
		}
	}
	// Rootless daemons keep their data root in the user's home.
	for _, home := range homes(src) {
		if r, err := evidence.Resolve(src, path.Join(home, ".local/share/docker"), true); err == nil {
			add(r, fmt.Sprintf("rootless Docker data root in /%s", home))
		}
	}
	return roots, notes
}

// homes lists root's and every /home/* home directory of the evidence.
func homes(src evidence.Source) []string {
	out := []string{"root"}
	ents, err := src.ReadDir("home")
	if err != nil {
		return out
	}
	for i, e := range ents {
		if i >= 4096 {
			break
		}
		if e.Mode.IsDir() && plainName(path.Base(e.Name)) {
			out = append(out, path.Join("home", path.Base(e.Name)))
		}
	}
	return out
}

// rebase finds a host-absolute path of the seized node inside the evidence,
// dropping leading components until what is left is a data root (see
// pathutil.Rebase).
func rebase(src evidence.Source, abs string) (string, string) {
	return pathutil.Rebase(src, abs, func(r string) bool { return isRoot(src, r) })
}

// Open reads the Docker data root of the evidence (detected unless
// opt.Root is set).
func Open(src evidence.Source, opt Options) (*Store, error) {
	s := &Store{src: src, byChain: map[string]*Layer{}, byCache: map[string]string{}, links: map[string]link{}}
	root := opt.Root
	if root == "" {
		roots, notes := Detect(src)
		if len(roots) == 0 {
			return nil, ErrNotFound
		}
		root = roots[0]
		s.Notes = append(s.Notes, notes...)
		if len(roots) > 1 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("more than one Docker data root in the evidence (%s); reading %s", strings.Join(roots, ", "), root))
		}
	}
	r, err := evidence.Resolve(src, root, true)
	if err != nil {
		return nil, err
	}
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
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s/%s: not in the evidence; no layer directories", s.Root, driverOverlay2))
		}
	}
	s.readLayers()
	s.readImages()
	s.readContainers()
	s.findOrphans()
	s.buildPods()
	s.buildSnapshots()
	s.countNamespace()
	s.normalise()
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
		s.Warnings = append(s.Warnings, fmt.Sprintf("storage driver %s: only overlay2 layers are resolved; containers are listed without layer directories", drivers[0]))
		return drivers[0]
	}
	return driverOverlay2
}

func (s *Store) imageStore() string { return path.Join(s.root, imageDir, s.Driver) }

// readSmall reads a small one-line file (an id, a digest, a number).
func (s *Store) readSmall(name string) (string, error) {
	b, err := evidence.ReadFile(s.src, name, maxSmallFile)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (s *Store) readLayers() {
	dir := path.Join(s.imageStore(), layerDBSha)
	ents, err := s.src.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: %v", dir, err))
		}
		return
	}
	for i, e := range ents {
		if i >= maxEntries {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: more than %d layers; the rest is not read", dir, maxEntries))
			break
		}
		name := path.Base(e.Name)
		if !e.Mode.IsDir() {
			continue
		}
		if !validHex(name) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s/%s: not a chain id; skipped", dir, name))
			continue
		}
		ld := path.Join(dir, name)
		l := Layer{ChainID: "sha256:" + name}
		warn := func(format string, a ...any) {
			l.Warnings = append(l.Warnings, fmt.Sprintf("/%s: ", ld)+fmt.Sprintf(format, a...))
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
		} else if !plainName(v) {
			warn("cache-id %q is not a plain name", v)
		} else {
			l.CacheID = v
			s.byCache[v] = l.ChainID
			if s.driverDir != "" {
				l.Dir, l.Link = s.layerDir(v, warn)
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
func (s *Store) layerDir(id string, warn func(string, ...any)) (dir, link string) {
	d := path.Join(s.driverDir, id, diffDir)
	if st, err := s.src.Lstat(d); err != nil {
		warn("layer directory /%s: %v", d, err)
		return "", ""
	} else if !st.Mode.IsDir() {
		warn("layer directory /%s is not a directory (%v)", d, st.Mode.Type())
		return "", ""
	}
	if v, err := s.readSmall(path.Join(s.driverDir, id, linkFile)); err == nil && plainName(v) {
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

func (s *Store) readImages() {
	store := s.imageStore()
	names := map[string][]string{}
	repoFile := path.Join(store, repositoriesFile)
	if b, err := evidence.ReadFile(s.src, repoFile, maxJSON); err == nil {
		repos, err := decodeRepositories(b)
		if err != nil {
			s.Warnings = append(s.Warnings, (&evidence.FormatError{File: "/" + repoFile, Offset: -1, Msg: "repositories JSON", Err: err}).Error())
		}
		for _, refs := range repos {
			for ref, id := range refs {
				if !validDigest(id) {
					s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: %s names %q, not an image id", repoFile, ref, id))
					continue
				}
				names[id] = append(names[id], ref)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: %v", repoFile, err))
	}
	dir := path.Join(store, imageDBContent)
	ents, err := s.src.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: %v", dir, err))
	}
	seen := map[string]bool{}
	for i, e := range ents {
		if i >= maxEntries {
			s.Warnings = append(s.Warnings, fmt.Sprintf("/%s: more than %d images; the rest is not read", dir, maxEntries))
			break
		}
		name := path.Base(e.Name)
		if !e.Mode.IsRegular() || !validHex(name) {
			continue
		}
		id := "sha256:" + name
		seen[id] = true
		s.readImageConfig(path.Join(dir, name), id, names[id])
	}
	for id, ns := range names {
		if seen[id] {
			continue
		}
		ic := ImageConfig{ID: id, Names: ns, Warnings: []string{fmt.Sprintf("image %s is named in /%s but its config is not in /%s", id, repoFile, dir)}}
		sort.Strings(ic.Names)
		s.Warnings = append(s.Warnings, ic.Warnings...)
		s.addImage(ic)
	}
	sort.Slice(s.ImageConfigs, func(i, j int) bool { return s.ImageConfigs[i].ID < s.ImageConfigs[j].ID })
	sort.Slice(s.Images, func(i, j int) bool {
		if s.Images[i].Name != s.Images[j].Name {
			return s.Images[i].Name < s.Images[j].Name
		}
		return s.Images[i].Target.Digest < s.Images[j].Target.Digest
	})
}

func (s *Store) readImageConfig(file, id string, names []string) {
	ic := ImageConfig{ID: id, Names: names}
	sort.Strings(ic.Names)
	b, err := evidence.ReadFile(s.src, file, maxJSON)
	if err != nil {
		ic.Warnings = append(ic.Warnings, fmt.Sprintf("/%s: %v", file, err))
	} else {
		ic.Size = int64(len(b))
		if h := sha256.Sum256(b); "sha256:"+hex.EncodeToString(h[:]) != id {
			ic.Warnings = append(ic.Warnings, fmt.Sprintf("/%s: content digest is sha256:%x, not the image id: the config was altered", file, h))
		}
		c, err := decodeImageConfig(b)
		if err != nil {
			ic.Warnings = append(ic.Warnings, (&evidence.FormatError{File: "/" + file, Offset: -1, Msg: "image config JSON", Err: err}).Error())
		} else {
			ic.Created = model.T(c.Created)
			ic.Architecture, ic.OS = c.Architecture, c.OS
			ic.User, ic.Env, ic.Entrypoint, ic.Cmd = c.Config.User, c.Config.Env, c.Config.Entrypoint, c.Config.Cmd
			ic.WorkingDir, ic.Labels = c.Config.WorkingDir, c.Config.Labels
			for _, d := range c.RootFS.DiffIDs {
				if !validDigest(d) {
					ic.Warnings = append(ic.Warnings, fmt.Sprintf("/%s: diff_id %q is not a sha256 digest; chain ids stop there", file, d))
					break
				}
				ic.DiffIDs = append(ic.DiffIDs, d)
			}
			ic.ChainIDs = chainIDs(ic.DiffIDs)
			for _, h := range c.History {
				ic.History = append(ic.History, History{Created: model.T(h.Created), CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer})
			}
			for _, ch := range ic.ChainIDs {
				if s.byChain[ch] == nil {
					ic.Warnings = append(ic.Warnings, fmt.Sprintf("layer %s of image %s is not in layerdb", ch, id))
				}
			}
		}
	}
	s.Warnings = append(s.Warnings, ic.Warnings...)
	s.addImage(ic)
}

func (s *Store) addImage(ic ImageConfig) {
	s.ImageConfigs = append(s.ImageConfigs, ic)
	names := ic.Names
	if len(names) == 0 {
		names = []string{ic.ID} // dangling: shown by its id, as "docker images" shows <none>
	}
	for _, n := range names {
		s.Images = append(s.Images, model.Image{
			Runtime:   model.RuntimeDocker,
			Namespace: Namespace,
			Name:      n,
			Target:    model.Descriptor{Digest: ic.ID, MediaType: mediaTypeImageConfig, Size: ic.Size},
			CreatedAt: ic.Created,
			Labels:    ic.Labels,
			Warnings:  ic.Warnings,
		})
	}
}

// Info names the runtime and its root (model.Runtime).
func (s *Store) Info() model.RuntimeInfo {
	ws := make([]evidence.Warning, len(s.Warnings))
	for i, w := range s.Warnings {
		ws[i] = evidence.Warning{Offset: -1, Msg: w}
	}
	return model.RuntimeInfo{Name: model.RuntimeDocker, Root: s.Root, Notes: s.Notes, Warnings: ws}
}

// Recorded returns the records read (model.Runtime).
func (s *Store) Recorded() *model.Records { return &s.Records }

// Reader finds and reads Docker's data root in the evidence
// (model.Reader).
var Reader model.Reader = reader{}

type reader struct{}

func (reader) Name() string { return model.RuntimeDocker }

func (reader) Locations() []string { return knownRoots }

func (reader) Open(src evidence.Source, opt *model.ReaderOptions) ([]model.Runtime, error) {
	var o Options
	if opt != nil {
		o.Root = opt.Root
	}
	s, err := Open(src, o)
	if err != nil {
		return nil, err
	}
	return []model.Runtime{s}, nil
}
