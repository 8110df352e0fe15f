package containerd

import (
	"fmt"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/internal/records"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/ptr"
)

// Store is everything read from one containerd root of the evidence. It is
// read once by Open; reading it afterwards is safe from several goroutines
// (the methods that read the evidence again, ContentStore, VerifyImages,
// Checkpoints, OpenCheckpoint, are too when the Source is).
type Store struct {
	Root      string // containerd root inside the evidence (resolved, with a leading "/")
	StateDir  string // state directory inside the evidence ("" when not captured)
	DBVersion int
	// Records are the namespaces, containers, pods, images, content,
	// snapshots and leases read.
	model.Records
	// Notes say how the root was found.
	Notes []string
	// Warnings are problems with single records (and the subtrees of a
	// damaged database left out); the rest was read.
	Warnings []evidence.Warning

	src     evidence.Source
	extra   map[string]*ctrExtra
	storage map[string]map[string]*storageSnapshot
	blobs   map[string]map[string]int64
}

// ErrNotFound is returned when no containerd root is found in the evidence.
var ErrNotFound = fmt.Errorf("no containerd root with a metadata database found: %w", model.ErrRuntimeNotFound)

// Options tune Open.
type Options struct {
	// Root is containerd's root inside the evidence; empty detects it.
	Root string
	// Namespaces keeps only these containerd namespaces (all when empty).
	Namespaces []string
}

// Open reads the containerd root of the evidence (detected unless
// opt.Root is set; nil options are the defaults). A root that exists but
// may not be read is a *fs.PathError (errors.Is fs.ErrPermission) naming
// it, not ErrNotFound.
func Open(src evidence.Source, opt *Options) (*Store, error) {
	o := ptr.Value(opt)
	r, notes, warns, err := pathutil.Root(src, o.Root, func() *pathutil.Finder { return finder(src) }, ErrNotFound)
	if err != nil {
		return nil, err
	}
	s := &Store{src: src, Root: "/" + r, Notes: notes, Warnings: warns}
	s.StateDir = s.findState()
	if err := s.readMeta(o.Namespaces); err != nil {
		return nil, err
	}
	s.readSnapshotters()
	s.resolveContainers()
	s.readStatus()
	s.buildPods()
	s.countNamespaces()
	records.Normalise(&s.Records)
	return s, nil
}

// rel is a "/"-rooted path of the evidence as a Source name.
func (s *Store) rel(p string) string { return strings.TrimPrefix(p, "/") }

// Info names the runtime and its root (model.Runtime).
func (s *Store) Info() model.RuntimeInfo {
	return model.RuntimeInfo{Name: model.RuntimeContainerd, Root: s.Root, Notes: s.Notes, Warnings: s.Warnings}
}

// Recorded returns the records read (model.Runtime).
func (s *Store) Recorded() *model.Records { return &s.Records }

// Reader finds and reads containerd's root in the evidence
// (model.Reader). It is safe for concurrent use.
var Reader model.Reader = records.Reader{Runtime: model.RuntimeContainerd, Roots: knownRoots,
	Read: func(src evidence.Source, opt *model.ReaderOptions) ([]model.Runtime, error) {
		s, err := Open(src, &Options{Root: opt.Root, Namespaces: opt.Namespaces})
		if err != nil {
			return nil, err
		}
		return []model.Runtime{s}, nil
	}}
