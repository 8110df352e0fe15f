package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
	toml "github.com/pelletier/go-toml/v2"
	bolt "go.etcd.io/bbolt"
)

// Options tune Open.
type Options struct {
	// Root is containerd's root inside the evidence; empty detects it.
	Root string
	// Namespaces keeps only these containerd namespaces (all when empty).
	Namespaces []string
}

// Store is everything read from one containerd root of the evidence.
type Store struct {
	Root      string // containerd root inside the evidence (resolved, with a leading "/")
	StateDir  string // state directory inside the evidence ("" when not captured)
	DBVersion int
	// Records are the namespaces, containers, pods, images, content,
	// snapshots and leases read.
	model.Records
	// Notes say how the root was found.
	Notes []string
	// Warnings are problems with single records; the rest was read.
	Warnings []string

	src     evidence.Source
	extra   map[string]*ctrExtra
	storage map[string]map[string]*storageSnapshot
	blobs   map[string]map[string]int64
}

// ErrNotFound is returned when no containerd root is found in the evidence.
var ErrNotFound = fmt.Errorf("no containerd root with a metadata database found: %w", model.ErrRuntimeNotFound)

// Detect returns the containerd roots found in the evidence, in order of
// preference, with notes on how each was found.
func Detect(src evidence.Source) (roots []string, notes []string) {
	seen := map[string]bool{}
	add := func(r, why string) {
		if r == "" || seen[r] {
			return
		}
		if st, err := src.Lstat(path.Join(r, metaDBPath)); err == nil && st.Mode.IsRegular() {
			seen[r] = true
			roots = append(roots, "/"+r)
			if why != "" {
				notes = append(notes, why)
			}
		}
	}
	for _, cfg := range knownConfigs {
		root, _, err := readConfig(src, cfg)
		if err != nil || root == "" {
			continue
		}
		r, how := rebase(src, root, metaDBPath)
		add(r, fmt.Sprintf("containerd root %s from %s%s", root, cfg, how))
	}
	for _, k := range knownRoots {
		r, err := evidence.Resolve(src, k, true)
		if err == nil {
			add(r, "")
		}
	}
	return roots, notes
}

// readConfig reads root and state from a containerd config file.
func readConfig(src evidence.Source, name string) (root, state string, err error) {
	p, err := evidence.Resolve(src, name, true)
	if err != nil {
		return "", "", err
	}
	b, err := evidence.ReadFile(src, p, 1<<20)
	if err != nil {
		return "", "", err
	}
	var cfg struct {
		Root  string `toml:"root"`
		State string `toml:"state"`
	}
	if err := toml.Unmarshal(b, &cfg); err != nil {
		return "", "", &evidence.FormatError{File: name, Offset: -1, Msg: "TOML", Err: err}
	}
	return cfg.Root, cfg.State, nil
}

// rebase finds a host-absolute path of the seized node inside the evidence
// (see pathutil.Rebase): the first place, dropping leading components, that
// holds marker.
func rebase(src evidence.Source, abs, marker string) (string, string) {
	return pathutil.Rebase(src, abs, func(r string) bool {
		_, err := src.Lstat(path.Join(r, marker))
		return err == nil
	})
}

// Open reads the containerd root of the evidence (detected unless
// opt.Root is set).
func Open(src evidence.Source, opt Options) (*Store, error) {
	s := &Store{src: src}
	root := opt.Root
	if root == "" {
		roots, notes := Detect(src)
		if len(roots) == 0 {
			return nil, ErrNotFound
		}
		root = roots[0]
		s.Notes = append(s.Notes, notes...)
		if len(roots) > 1 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("more than one containerd root in the evidence (%s); reading %s (use --containerd-root)", strings.Join(roots, ", "), root))
		}
	}
	r, err := evidence.Resolve(src, root, true)
	if err != nil {
		return nil, err
	}
	s.Root = "/" + strings.TrimPrefix(r, "/")
	s.StateDir = s.findState()
	if err := s.readMeta(opt.Namespaces); err != nil {
		return nil, err
	}
	s.readSnapshotters()
	s.resolveContainers()
	s.readStatus()
	s.buildPods()
	s.countNamespaces()
	s.normalise()
	return s, nil
}

func (s *Store) rel(p string) string { return strings.TrimPrefix(p, "/") }

// findState locates the state directory (/run/containerd by default).
func (s *Store) findState() string {
	for _, cfg := range knownConfigs {
		if _, state, err := readConfig(s.src, cfg); err == nil && state != "" {
			if r, _ := rebase(s.src, state, "."); r != "" {
				return "/" + r
			}
		}
	}
	if r, _ := rebase(s.src, defaultStateDir, "."); r != "" {
		return "/" + r
	}
	return ""
}

type ctrExtra struct {
	runcRoot string
	cri      *criMetadata
}

func (s *Store) readMeta(only []string) error {
	name := path.Join(s.Root, metaDBPath)
	db, done, err := openDB(s.src, s.rel(name))
	if err != nil {
		return err
	}
	defer done()
	keep := func(ns string) bool {
		if len(only) == 0 {
			return true
		}
		for _, o := range only {
			if o == ns {
				return true
			}
		}
		return false
	}
	s.extra = map[string]*ctrExtra{}
	return contain(name, func() error {
		return db.View(func(tx *bolt.Tx) error {
			v1 := tx.Bucket([]byte(bucketV1))
			if v1 == nil {
				return &evidence.FormatError{File: name, Offset: -1, Msg: "no v1 schema bucket: not a containerd metadata database"}
			}
			w := where{file: name, path: bucketV1}
			s.DBVersion = int(readVarint(v1, keyVersion, w, &s.Warnings))
			if s.DBVersion != 3 && s.DBVersion != 4 {
				s.Warnings = append(s.Warnings, w.errf("database version %d; read as version 3/4", s.DBVersion))
			}
			return v1.ForEach(func(k, v []byte) error {
				if v != nil {
					return nil
				}
				ns := string(k)
				if !keep(ns) {
					return nil
				}
				nb := v1.Bucket(k)
				nw := w.sub(ns)
				s.Namespaces = append(s.Namespaces, model.Namespace{Runtime: model.RuntimeContainerd, Name: ns, Labels: readLabels(nb, bucketLabels, nw, &s.Warnings)})
				s.readContainers(ns, nb, nw)
				s.readImages(ns, nb, nw)
				s.readContent(ns, nb, nw)
				s.readSnapshotKeys(ns, nb, nw)
				s.readLeases(ns, nb, nw)
				return nil
			})
		})
	})
}

func (s *Store) readContainers(ns string, nb *bolt.Bucket, w where) {
	cb := nb.Bucket([]byte(bucketContainers))
	if cb == nil {
		return
	}
	w = w.sub(bucketContainers)
	cb.ForEach(func(k, v []byte) error {
		b := cb.Bucket(k)
		if b == nil {
			return nil
		}
		cw := w.sub(string(k))
		var warn []string
		c := model.Container{
			Runtime:     model.RuntimeContainerd,
			ID:          string(k),
			Namespace:   ns,
			Kind:        model.KindContainer,
			Image:       string(b.Get([]byte(keyImage))),
			CreatedAt:   model.T(readTime(b, keyCreatedAt, cw, &warn)),
			UpdatedAt:   model.T(readTime(b, keyUpdatedAt, cw, &warn)),
			Labels:      readLabels(b, bucketLabels, cw, &warn),
			Snapshotter: string(b.Get([]byte(keySnapshotter))),
			SnapshotKey: string(b.Get([]byte(keySnapshotKey))),
			SandboxID:   string(b.Get([]byte(keySandboxID))),
			LowerDirs:   []string{},
			Status:      model.Status{State: model.StateUnknown, Sources: []string{}},
		}
		ex := &ctrExtra{}
		if rb := b.Bucket([]byte(bucketRuntime)); rb != nil {
			c.RuntimeHandler = string(rb.Get([]byte(keyName)))
			if o := rb.Get([]byte(keyOptions)); o != nil {
				if _, val, err := decodeAny(o); err != nil {
					warn = append(warn, cw.errf("runtime options: %v", err))
				} else {
					_, ex.runcRoot = runcOptions(val)
				}
			}
		}
		if eb := b.Bucket([]byte(bucketExtensions)); eb != nil {
			for _, key := range []string{criContainerMeta, criSandboxMeta} {
				if v := eb.Get([]byte(key)); v != nil {
					m, err := decodeCRIMetadata(v)
					if err != nil {
						warn = append(warn, cw.errf("extension %s: %v", key, err))
						continue
					}
					ex.cri = m
				}
			}
		}
		if c.Labels[labelCRIKind] == model.KindSandbox {
			c.Kind = model.KindSandbox
		}
		if m := ex.cri; m != nil {
			md := m.Metadata
			if c.Kind == model.KindSandbox {
				c.ContainerName = md.Config.Metadata.Name
				c.Pod = &model.PodRef{Namespace: md.Config.Metadata.Namespace, Name: md.Config.Metadata.Name, UID: md.Config.Metadata.UID}
				c.SandboxID = c.ID
				c.LogPath = md.Config.LogDirectory
			} else {
				c.ContainerName = md.Config.Metadata.Name
				if c.SandboxID == "" {
					c.SandboxID = md.SandboxID
				}
				c.LogPath = md.LogPath
			}
			c.Attempt = md.Config.Metadata.Attempt
			c.ImageRef = md.ImageRef
			c.Annotations = md.Config.Annotations
			if c.RuntimeHandler == "" {
				c.RuntimeHandler = md.RuntimeHandler
			}
		}
		if c.ContainerName == "" {
			c.ContainerName = c.Labels[labelCtrName]
		}
		if c.Pod == nil && c.Labels[labelPodName] != "" {
			c.Pod = &model.PodRef{Namespace: c.Labels[labelPodNS], Name: c.Labels[labelPodName], UID: c.Labels[labelPodUID]}
		}
		if c.Kind == model.KindSandbox && c.SandboxID == "" {
			c.SandboxID = c.ID
		}
		if sp := b.Get([]byte(keySpec)); sp != nil {
			_, val, err := decodeAny(sp)
			if err == nil {
				priv := ex.cri != nil && ex.cri.Metadata.Config.Linux.SecurityContext.Privileged
				c.Spec, err = model.ParseSpec(val, priv)
			}
			if err != nil {
				warn = append(warn, cw.errf("spec: %v", err))
			}
		}
		c.Warnings = warn
		s.Warnings = append(s.Warnings, warn...)
		s.extra[ns+"/"+c.ID] = ex
		s.Containers = append(s.Containers, c)
		return nil
	})
}

func (s *Store) readImages(ns string, nb *bolt.Bucket, w where) {
	ib := nb.Bucket([]byte(bucketImages))
	if ib == nil {
		return
	}
	w = w.sub(bucketImages)
	ib.ForEach(func(k, v []byte) error {
		b := ib.Bucket(k)
		if b == nil {
			return nil
		}
		iw := w.sub(string(k))
		var warn []string
		im := model.Image{
			Runtime:     model.RuntimeContainerd,
			Namespace:   ns,
			Name:        string(k),
			CreatedAt:   model.T(readTime(b, keyCreatedAt, iw, &warn)),
			UpdatedAt:   model.T(readTime(b, keyUpdatedAt, iw, &warn)),
			Labels:      readLabels(b, bucketLabels, iw, &warn),
			Annotations: readLabels(b, bucketAnnotation, iw, &warn),
		}
		if tb := b.Bucket([]byte(bucketTarget)); tb != nil {
			im.Target = model.Descriptor{
				Digest:    string(tb.Get([]byte(keyDigest))),
				MediaType: string(tb.Get([]byte(keyMediaType))),
				Size:      readVarint(tb, keySize, iw.sub(bucketTarget), &warn),
			}
			if !validDigest(im.Target.Digest) {
				warn = append(warn, iw.errf("target digest %q is not a valid digest", im.Target.Digest))
			}
		} else {
			warn = append(warn, iw.errf("no target"))
		}
		im.Checkpoint = im.Labels[labelCheckpoint] == "true"
		im.Warnings = warn
		s.Warnings = append(s.Warnings, warn...)
		s.Images = append(s.Images, im)
		return nil
	})
}

func (s *Store) blobPath(d string) string {
	alg, hex, _ := strings.Cut(d, ":")
	return path.Join(s.Root, contentBlobsDir, alg, hex)
}

func (s *Store) readContent(ns string, nb *bolt.Bucket, w where) {
	cb := nb.Bucket([]byte(bucketContent))
	if cb == nil {
		return
	}
	bb := cb.Bucket([]byte(bucketBlob))
	if bb == nil {
		return
	}
	w = w.sub(bucketContent + "/" + bucketBlob)
	bb.ForEach(func(k, v []byte) error {
		b := bb.Bucket(k)
		if b == nil {
			return nil
		}
		bw := w.sub(string(k))
		var warn []string
		c := model.Content{
			Runtime:   model.RuntimeContainerd,
			Namespace: ns,
			Digest:    string(k),
			Size:      readVarint(b, keySize, bw, &warn),
			Labels:    readLabels(b, bucketLabels, bw, &warn),
			CreatedAt: model.T(readTime(b, keyCreatedAt, bw, &warn)),
			UpdatedAt: model.T(readTime(b, keyUpdatedAt, bw, &warn)),
			BlobSize:  -1,
		}
		if validDigest(c.Digest) {
			c.BlobPath = s.blobPath(c.Digest)
			if size, ok := s.blobSize(c.Digest); ok {
				c.Present, c.BlobSize = true, size
				if size != c.Size {
					warn = append(warn, bw.errf("blob file is %d bytes, the record says %d", size, c.Size))
				}
			}
		} else {
			warn = append(warn, bw.errf("not a valid digest; no blob path derived"))
		}
		c.Warnings = warn
		s.Warnings = append(s.Warnings, warn...)
		s.Content = append(s.Content, c)
		return nil
	})
}

func (s *Store) readSnapshotKeys(ns string, nb *bolt.Bucket, w where) {
	sb := nb.Bucket([]byte(bucketSnapshots))
	if sb == nil {
		return
	}
	w = w.sub(bucketSnapshots)
	sb.ForEach(func(sn, v []byte) error {
		snb := sb.Bucket(sn)
		if snb == nil {
			return nil
		}
		sw := w.sub(string(sn))
		snb.ForEach(func(k, v []byte) error {
			b := snb.Bucket(k)
			if b == nil {
				return nil
			}
			kw := sw.sub(string(k))
			var warn []string
			s.Snapshots = append(s.Snapshots, model.Snapshot{
				Runtime:     model.RuntimeContainerd,
				Namespace:   ns,
				Snapshotter: string(sn),
				Key:         string(k),
				Name:        string(b.Get([]byte(keyName))),
				Parent:      string(b.Get([]byte(keyParent))),
				CreatedAt:   model.T(readTime(b, keyCreatedAt, kw, &warn)),
				UpdatedAt:   model.T(readTime(b, keyUpdatedAt, kw, &warn)),
				Labels:      readLabels(b, bucketLabels, kw, &warn),
				Kind:        "unknown",
				Containers:  []string{},
				Warnings:    warn,
			})
			s.Warnings = append(s.Warnings, warn...)
			return nil
		})
		return nil
	})
}

func (s *Store) readLeases(ns string, nb *bolt.Bucket, w where) {
	lb := nb.Bucket([]byte(bucketLeases))
	if lb == nil {
		return
	}
	w = w.sub(bucketLeases)
	lb.ForEach(func(k, v []byte) error {
		b := lb.Bucket(k)
		if b == nil {
			return nil
		}
		lw := w.sub(string(k))
		l := model.Lease{Runtime: model.RuntimeContainerd, Namespace: ns, ID: string(k), Labels: readLabels(b, bucketLabels, lw, &s.Warnings), Resources: []model.LeaseResource{}}
		l.CreatedAt = model.T(readTime(b, keyCreatedAt, lw, &s.Warnings))
		if cb := b.Bucket([]byte(bucketContent)); cb != nil {
			cb.ForEach(func(d, _ []byte) error {
				l.Resources = append(l.Resources, model.LeaseResource{Type: "content", ID: string(d)})
				return nil
			})
		}
		if sb := b.Bucket([]byte(bucketSnapshots)); sb != nil {
			sb.ForEach(func(sn, _ []byte) error {
				if b2 := sb.Bucket(sn); b2 != nil {
					b2.ForEach(func(key, _ []byte) error {
						l.Resources = append(l.Resources, model.LeaseResource{Type: "snapshots/" + string(sn), ID: string(key)})
						return nil
					})
				}
				return nil
			})
		}
		if ib := b.Bucket([]byte(bucketIngests)); ib != nil {
			ib.ForEach(func(r, _ []byte) error {
				l.Resources = append(l.Resources, model.LeaseResource{Type: "ingests", ID: string(r)})
				return nil
			})
		}
		s.Leases = append(s.Leases, l)
		return nil
	})
}

// storageSnapshot is one record of a snapshotter's metadata.db.
type storageSnapshot struct {
	id             uint64
	kind           int
	parent         string
	inodes, size   int64
	created, updat time.Time
}

// readSnapshotters joins every snapshot with its snapshotter's database.
func (s *Store) readSnapshotters() {
	byName := map[string]bool{}
	for _, sn := range s.Snapshots {
		byName[sn.Snapshotter] = true
	}
	s.storage = map[string]map[string]*storageSnapshot{}
	for sn := range byName {
		if !safeName(sn) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("snapshotter name %q is not a plain name; its snapshots are not resolved", sn))
			continue
		}
		dbName := path.Join(s.Root, snapshotterDir+sn, "metadata.db")
		recs, err := s.readStorage(dbName)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				s.Warnings = append(s.Warnings, fmt.Sprintf("%s: not in the evidence; snapshots of %q have no directories", dbName, sn))
			} else {
				s.Warnings = append(s.Warnings, err.Error())
			}
			continue
		}
		s.storage[sn] = recs
	}
	for i := range s.Snapshots {
		sp := &s.Snapshots[i]
		rec := s.storage[sp.Snapshotter][sp.Name]
		if rec == nil {
			if s.storage[sp.Snapshotter] != nil {
				sp.Warnings = append(sp.Warnings, fmt.Sprintf("snapshot %q is not in the snapshotter's database", sp.Name))
			}
			continue
		}
		sp.ID = strconv.FormatUint(rec.id, 10)
		sp.Kind = kindName(rec.kind)
		sp.Size, sp.Inodes = rec.size, rec.inodes
		sp.Dir = s.snapshotDir(sp.Snapshotter, rec.id)
	}
}

func safeName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00")
}

func kindName(k int) string {
	switch k {
	case kindView:
		return "view"
	case kindActive:
		return "active"
	case kindCommitted:
		return "committed"
	}
	return "unknown"
}

// snapshotDir is the directory holding a snapshot's files.
func (s *Store) snapshotDir(snapshotter string, id uint64) string {
	d := path.Join(s.Root, snapshotterDir+snapshotter, "snapshots", strconv.FormatUint(id, 10))
	if snapshotter == "overlayfs" || snapshotter == "fuse-overlayfs" || snapshotter == "stargz" {
		d = path.Join(d, "fs")
	}
	return d
}

func (s *Store) readStorage(name string) (map[string]*storageSnapshot, error) {
	db, done, err := openDB(s.src, s.rel(name))
	if err != nil {
		return nil, err
	}
	defer done()
	out := map[string]*storageSnapshot{}
	err = contain(name, func() error {
		return db.View(func(tx *bolt.Tx) error {
			v1 := tx.Bucket([]byte(bucketV1))
			if v1 == nil {
				return &evidence.FormatError{File: name, Offset: -1, Msg: "no v1 bucket: not a snapshotter database"}
			}
			sb := v1.Bucket([]byte(bucketSnapshots))
			if sb == nil {
				return nil
			}
			w := where{file: name, path: "v1/snapshots"}
			return sb.ForEach(func(k, v []byte) error {
				b := sb.Bucket(k)
				if b == nil {
					return nil
				}
				kw := w.sub(string(k))
				id, ok := readUvarint(b, keyID)
				if !ok {
					s.Warnings = append(s.Warnings, kw.errf("no id"))
					return nil
				}
				r := &storageSnapshot{id: id, parent: string(b.Get([]byte(keyParent)))}
				if kv := b.Get([]byte(keyKind)); len(kv) == 1 {
					r.kind = int(kv[0])
				}
				r.inodes = readVarint(b, keyInodes, kw, &s.Warnings)
				r.size = readVarint(b, keySize, kw, &s.Warnings)
				out[string(k)] = r
				return nil
			})
		})
	})
	return out, err
}

// MaxChain bounds a snapshot parent chain (a loop is reported).
const MaxChain = 4096

// Layers returns the upper directory and the lower directories (top to
// bottom) of a snapshot of a snapshotter, following the parent chain of the
// snapshotter's database.
func (s *Store) layers(snapshotter, name string) (upper string, lowers []string, warn []string) {
	recs := s.storage[snapshotter]
	if recs == nil {
		return "", nil, []string{fmt.Sprintf("no database for snapshotter %q", snapshotter)}
	}
	r := recs[name]
	if r == nil {
		return "", nil, []string{fmt.Sprintf("snapshot %q is not in the %s snapshotter's database", name, snapshotter)}
	}
	seen := map[string]bool{name: true}
	if r.kind != kindView {
		upper = s.snapshotDir(snapshotter, r.id)
	} else {
		lowers = append(lowers, s.snapshotDir(snapshotter, r.id))
	}
	for p := r.parent; p != ""; {
		if seen[p] || len(seen) > MaxChain {
			warn = append(warn, fmt.Sprintf("snapshot parent chain loops at %q; lower layers cut there", p))
			break
		}
		seen[p] = true
		pr := recs[p]
		if pr == nil {
			warn = append(warn, fmt.Sprintf("parent snapshot %q is missing from the snapshotter's database; lower layers incomplete", p))
			break
		}
		lowers = append(lowers, s.snapshotDir(snapshotter, pr.id))
		p = pr.parent
	}
	if snapshotter == "native" {
		// A native snapshot is a full copy: its parents are not layers.
		lowers = nil
	}
	return upper, lowers, warn
}

func (s *Store) resolveContainers() {
	idx := map[string]int{}
	for i, sp := range s.Snapshots {
		idx[sp.Namespace+"\x00"+sp.Snapshotter+"\x00"+sp.Key] = i
	}
	for i := range s.Containers {
		c := &s.Containers[i]
		if c.SnapshotKey == "" {
			c.Warnings = append(c.Warnings, "no snapshot key: the container has no root filesystem snapshot")
			continue
		}
		j, ok := idx[c.Namespace+"\x00"+c.Snapshotter+"\x00"+c.SnapshotKey]
		if !ok {
			c.Warnings = append(c.Warnings, fmt.Sprintf("snapshot %q (%s) is not in the metadata database", c.SnapshotKey, c.Snapshotter))
			continue
		}
		sp := &s.Snapshots[j]
		sp.Containers = append(sp.Containers, c.ID)
		up, lo, warn := s.layers(c.Snapshotter, sp.Name)
		c.UpperDir = up
		if lo != nil {
			c.LowerDirs = lo
		}
		c.Warnings = append(c.Warnings, warn...)
	}
}

// readStatus fills each container's status from what the evidence holds:
// the CRI plugin's status file, runc's state.json, the shim's task bundle.
func (s *Store) readStatus() {
	for i := range s.Containers {
		c := &s.Containers[i]
		st := &c.Status
		if c.Kind == model.KindContainer {
			p := path.Join(s.Root, criStateDir, "containers", c.ID, "status")
			if safeName(c.ID) {
				if b, err := evidence.ReadFile(s.src, s.rel(p), 1<<20); err == nil {
					var cs criStatus
					if err := json.Unmarshal(b, &cs); err != nil {
						c.Warnings = append(c.Warnings, (&evidence.FormatError{File: p, Offset: -1, Msg: "CRI status JSON", Err: err}).Error())
					} else {
						st.Sources = append(st.Sources, p)
						st.Pid = cs.Pid
						st.Reason = cs.Reason
						if cs.StartedAt > 0 {
							st.StartedAt = model.T(time.Unix(0, cs.StartedAt).UTC())
						}
						switch {
						case cs.FinishedAt > 0:
							st.State = model.StateExited
							st.FinishedAt = model.T(time.Unix(0, cs.FinishedAt).UTC())
							code := cs.ExitCode
							st.ExitCode = &code
						case cs.StartedAt > 0:
							st.State = model.StateRunning
						case cs.CreatedAt > 0:
							st.State = model.StateCreated
						}
					}
				}
			}
		}
		if s.StateDir == "" || !safeName(c.ID) || !safeName(c.Namespace) {
			continue
		}
		ex := s.extra[c.Namespace+"/"+c.ID]
		runcRoot := path.Join(s.StateDir, defaultRuncRoot)
		if ex != nil && ex.runcRoot != "" {
			if r, _ := rebase(s.src, ex.runcRoot, "."); r != "" {
				runcRoot = "/" + r
			}
		}
		sp := path.Join(runcRoot, c.Namespace, c.ID, "state.json")
		if b, err := evidence.ReadFile(s.src, s.rel(sp), 4<<20); err == nil {
			var rs runcState
			if err := json.Unmarshal(b, &rs); err != nil {
				c.Warnings = append(c.Warnings, (&evidence.FormatError{File: sp, Offset: -1, Msg: "runc state JSON", Err: err}).Error())
			} else {
				st.Sources = append(st.Sources, sp)
				if st.State == model.StateUnknown || st.State == model.StateCreated {
					st.State = model.StateRunning
				}
				if st.Pid == 0 && st.State == model.StateRunning {
					st.Pid = rs.InitPid
				}
			}
			continue
		}
		bundle := path.Join(s.StateDir, taskV2Dir, c.Namespace, c.ID)
		if _, err := s.src.Lstat(s.rel(path.Join(bundle, "config.json"))); err == nil {
			st.Sources = append(st.Sources, bundle)
			if st.State == model.StateUnknown {
				// The shim still held a task, but runc had no state for it.
				st.State = model.StateStopped
			}
		}
	}
}

func (s *Store) buildPods() {
	byID := map[string]*model.Pod{}
	var order []string
	for _, c := range s.Containers {
		if c.Kind != model.KindSandbox {
			continue
		}
		p := &model.Pod{Runtime: model.RuntimeContainerd, SandboxID: c.ID, RuntimeNS: c.Namespace, CreatedAt: c.CreatedAt, Labels: map[string]string{}, State: c.Status.State, Containers: []model.PodContainer{}, Warnings: []string{}}
		if c.Pod != nil {
			p.Namespace, p.Name, p.UID = c.Pod.Namespace, c.Pod.Name, c.Pod.UID
		}
		for k, v := range c.Labels {
			p.Labels[k] = v
		}
		if ex := s.extra[c.Namespace+"/"+c.ID]; ex != nil && ex.cri != nil {
			p.IP = ex.cri.Metadata.IP
			p.CgroupParent = ex.cri.Metadata.Config.Linux.CgroupParent
		}
		byID[c.Namespace+"/"+c.ID] = p
		order = append(order, c.Namespace+"/"+c.ID)
	}
	for _, c := range s.Containers {
		if c.Kind != model.KindContainer || (c.SandboxID == "" && c.Pod == nil) {
			continue
		}
		key := c.Namespace + "/" + c.SandboxID
		p := byID[key]
		if p == nil {
			// The sandbox is gone from the database: keep the pod as the
			// container's labels name it.
			p = &model.Pod{Runtime: model.RuntimeContainerd, SandboxID: c.SandboxID, RuntimeNS: c.Namespace, Labels: map[string]string{}, State: model.StateUnknown, Containers: []model.PodContainer{}}
			if c.Pod != nil {
				p.Namespace, p.Name, p.UID = c.Pod.Namespace, c.Pod.Name, c.Pod.UID
			}
			p.Warnings = []string{fmt.Sprintf("sandbox %q is not in the metadata database; pod known from its containers", c.SandboxID)}
			byID[key] = p
			order = append(order, key)
		}
		p.Containers = append(p.Containers, model.PodContainer{ID: c.ID, Name: c.ContainerName, Image: c.Image, State: c.Status.State})
	}
	for _, k := range order {
		p := byID[k]
		sort.Slice(p.Containers, func(i, j int) bool { return p.Containers[i].Name < p.Containers[j].Name })
		s.Pods = append(s.Pods, *p)
	}
	model.SortPods(s.Pods)
}

func (s *Store) countNamespaces() {
	idx := map[string]*model.Namespace{}
	for i := range s.Namespaces {
		idx[s.Namespaces[i].Name] = &s.Namespaces[i]
	}
	for _, c := range s.Containers {
		if n := idx[c.Namespace]; n != nil {
			if c.Kind == model.KindSandbox {
				n.Sandboxes++
			} else {
				n.Containers++
			}
		}
	}
	for _, im := range s.Images {
		if n := idx[im.Namespace]; n != nil {
			n.Images++
		}
	}
	for _, sp := range s.Snapshots {
		if n := idx[sp.Namespace]; n != nil {
			n.Snapshots++
		}
	}
	for _, c := range s.Content {
		if n := idx[c.Namespace]; n != nil {
			n.Content++
		}
	}
	for _, l := range s.Leases {
		if n := idx[l.Namespace]; n != nil {
			n.Leases++
		}
	}
}

// normalise makes empty lists print as [] rather than null.
func (s *Store) normalise() {
	for i := range s.Containers {
		s.Containers[i].Warnings = model.NonNil(s.Containers[i].Warnings)
	}
	for i := range s.Images {
		s.Images[i].Warnings = model.NonNil(s.Images[i].Warnings)
	}
	for i := range s.Content {
		s.Content[i].Warnings = model.NonNil(s.Content[i].Warnings)
	}
	for i := range s.Snapshots {
		s.Snapshots[i].Warnings = model.NonNil(s.Snapshots[i].Warnings)
	}
}

// blobSize says whether the content store holds a regular file for a
// digest, and its size. Each algorithm's directory is listed once.
func (s *Store) blobSize(d string) (int64, bool) {
	alg, hex, _ := strings.Cut(d, ":")
	if s.blobs == nil {
		s.blobs = map[string]map[string]int64{}
	}
	files, ok := s.blobs[alg]
	if !ok {
		files = map[string]int64{}
		ents, err := s.src.ReadDir(s.rel(path.Join(s.Root, contentBlobsDir, alg)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.Warnings = append(s.Warnings, err.Error())
		}
		for _, e := range ents {
			if e.Mode.IsRegular() {
				files[path.Base(e.Name)] = e.Size
			}
		}
		s.blobs[alg] = files
	}
	size, ok := files[hex]
	return size, ok
}

// Info names the runtime and its root (model.Runtime).
func (s *Store) Info() model.RuntimeInfo {
	return model.RuntimeInfo{Name: model.RuntimeContainerd, Root: s.Root, Notes: s.Notes, Warnings: warningsOf(s.Warnings)}
}

// Recorded returns the records read (model.Runtime).
func (s *Store) Recorded() *model.Records { return &s.Records }

func warningsOf(ws []string) []evidence.Warning {
	out := make([]evidence.Warning, len(ws))
	for i, w := range ws {
		out[i] = evidence.Warning{Offset: -1, Msg: w}
	}
	return out
}

// Reader finds and reads containerd's root in the evidence
// (model.Reader).
var Reader model.Reader = reader{}

type reader struct{}

func (reader) Name() string { return model.RuntimeContainerd }

func (reader) Locations() []string { return knownRoots }

func (reader) Open(src evidence.Source, opt *model.ReaderOptions) ([]model.Runtime, error) {
	var o Options
	if opt != nil {
		o = Options{Root: opt.Root, Namespaces: opt.Namespaces}
	}
	s, err := Open(src, o)
	if err != nil {
		return nil, err
	}
	return []model.Runtime{s}, nil
}
