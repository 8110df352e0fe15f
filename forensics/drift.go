package forensics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/overlay"
)

// Change classes of a drift finding.
const (
	ChangeAdded           = "added"             // no entry in the image
	ChangeModified        = "modified"          // content (or link target) differs from the image's
	ChangeMetadataOnly    = "metadata_only"     // copied up with the same content: mode, owner, times or xattrs changed
	ChangeTypeChanged     = "type_changed"      // e.g. a file replaced by a symlink
	ChangeDeleted         = "deleted"           // a whiteout of an image file
	ChangeDeletedDir      = "deleted_dir"       // a whiteout of an image directory
	ChangeOpaqueDir       = "opaque_dir"        // a directory made opaque: hides the image's contents
	ChangeAddedOrModified = "added_or_modified" // the image is not at hand to tell
)

// Exec kinds, flags and ELF facts are classify's (shared with the host's
// package drift and the triage).
const (
	ExecELF     = classify.ExecELF
	ExecScript  = classify.ExecScript
	ExecBit     = classify.ExecBit
	ExecLibrary = classify.ExecLibrary

	FlagHidden      = classify.FlagHidden
	FlagVolatile    = classify.FlagVolatile
	FlagPersistence = classify.FlagPersistence
	FlagBenign      = classify.FlagBenign
	FlagSetuid      = classify.FlagSetuid
	FlagSetgid      = classify.FlagSetgid
	FlagCapability  = classify.FlagCapability
	FlagWorldWrite  = classify.FlagWorldWrite
)

// ELFInfo describes an ELF file.
type ELFInfo = classify.ELFInfo

// DriftEntry is one drift entry of a container.
type DriftEntry struct {
	Runtime         string     `json:"runtime"`
	ContainerID     string     `json:"container_id"`
	Namespace       string     `json:"namespace"`
	Pod             string     `json:"pod"` // namespace/name, "" when none
	ContainerName   string     `json:"container_name"`
	Path            string     `json:"path"`
	PathBytes       string     `json:"path_bytes,omitempty"` // the path's exact bytes (base64) when it is not valid UTF-8
	Change          string     `json:"change"`
	Type            string     `json:"type"`
	LowerType       string     `json:"lower_type,omitempty"`
	Size            int64      `json:"size"`
	Mode            string     `json:"mode"` // octal permission bits with setuid/setgid/sticky, e.g. "0755"
	UID             uint32     `json:"uid"`
	GID             uint32     `json:"gid"`
	Atime           model.Time `json:"atime"`
	Mtime           model.Time `json:"mtime"`
	Ctime           model.Time `json:"ctime"`
	Btime           model.Time `json:"btime"`
	SHA256          string     `json:"sha256"`
	LowerSHA256     string     `json:"lower_sha256"`
	LinkTarget      string     `json:"link_target,omitempty"`
	LowerLinkTarget string     `json:"lower_link_target,omitempty"`
	ExecKind        string     `json:"exec_kind"`
	ELF             *ELFInfo   `json:"elf,omitempty"`
	Interpreter     string     `json:"interpreter,omitempty"`
	Flags           []string   `json:"flags"`
	IdenticalTo     string     `json:"identical_to"`
	MetadataChanged []string   `json:"metadata_changed,omitempty"` // mode, owner, mtime, xattrs
	Hides           int        `json:"hides,omitempty"`            // entries a deleted_dir/opaque_dir hides
	EvidencePath    string     `json:"evidence_path"`
	Layer           string     `json:"layer"`
	// Volume names the pod volume a file lies in ("host:<path>" for a
	// host path mount), for files the container wrote through a mount
	// rather than into its writable layer; Layer is then the mount's
	// content in the evidence, and Path the container path (the
	// PseudoPath of the mount when the container path is unknown).
	Volume string `json:"volume,omitempty"`
	Note   string `json:"note,omitempty"`
	// Diff is how a modified file differs from the image's version (with
	// DriftOptions.Diff).
	Diff *FileDiff `json:"diff,omitempty"`
}

// IsExec says whether the finding is an executable of any kind.
func (f *DriftEntry) IsExec() bool { return f.ExecKind != "" }

// DriftOptions tune Drift.
type DriftOptions struct {
	NoHash bool // skip content hashing (no sha256, no identical_to; modified judged by size)
	// MaxIdentical bounds the image files of one size hashed when looking
	// for identical_to (default 32).
	MaxIdentical int
	// IdenticalAll looks for identical_to for every added or modified file;
	// by default only executables (ELF, scripts, libraries, exec bit) are
	// looked up, which spares indexing the image when none was dropped.
	IdenticalAll bool
	// Diff adds a unified diff to every modified text file (sizes and
	// hashes for binary ones).
	Diff bool
	// HostPaths walks the read-write host path mounts of DriftSource.Volumes
	// too (by default only the pod's writable volumes: emptyDir). A host
	// path is the node's own content, shared with the node and other
	// containers: everything in it is reported as added.
	HostPaths bool
}

// DriftSource is what drift compares: an upper layer (a snapshot dir, a
// checkpoint's RW layer, a rootfs-diff.tar) and the image's lower layers
// (nil when the image is not at hand).
type DriftSource struct {
	Container model.Container
	Upper     overlay.Layer
	Lowers    []overlay.Layer
	// Volumes are the container's writable mounts (emptyDir volumes, host
	// paths mounted read-write), read from VolumeSource: what the
	// container wrote there never reached its upper layer.
	Volumes      []kube.Mount
	VolumeSource evidence.Source
}

// ContainerDrift returns the drift source of a container of the node.
func (n *Node) ContainerDrift(c *model.Container) (*DriftSource, error) {
	if c.UpperDir == "" {
		return nil, fmt.Errorf("container %s has no writable layer in the evidence", c.ID)
	}
	ds := &DriftSource{Container: *c, Upper: overlay.Layer{Source: n.Src, Dir: strings.TrimPrefix(c.UpperDir, "/"), Kind: overlay.LayerDir, Name: c.UpperDir}}
	for _, l := range c.LowerDirs {
		ds.Lowers = append(ds.Lowers, overlay.Layer{Source: n.Src, Dir: strings.TrimPrefix(l, "/"), Kind: overlay.LayerDir, Name: l})
	}
	ms, _ := n.ContainerMounts(c, false) // the kubelet's warnings are the kubelet command's
	for _, m := range ms {
		if m.Writable {
			ds.Volumes = append(ds.Volumes, m)
		}
	}
	ds.VolumeSource = n.Src
	return ds, nil
}

// MaxHeader is how much of a file is read to recognise its kind.
const MaxHeader = classify.MaxHeader

// Drift classifies every entry of the upper layer against the merged view
// of the lower layers and yields the entries in lexical path order, as
// they are found; then every entry of the container's writable volumes
// (DriftSource.Volumes: emptyDir, and read-write host paths with
// DriftOptions.HostPaths), a volume at a time in the order of their
// container paths, each as added with Volume set. A problem with a single entry is yielded as an
// evidence.Warning (the walk goes on); any other error ends the walk
// (the layers cannot be read, or ctx was cancelled).
func Drift(ctx context.Context, ds *DriftSource, opt *DriftOptions) iter.Seq2[DriftEntry, error] {
	var o DriftOptions
	if opt != nil {
		o = *opt
	}
	if o.MaxIdentical <= 0 {
		o.MaxIdentical = 32
	}
	return func(yield func(DriftEntry, error) bool) {
		stopped := false
		d := &drifter{ds: ds, opt: o, lowerHash: map[string]string{}}
		d.fn = func(e DriftEntry) {
			if !stopped && !yield(e, nil) {
				stopped = true
			}
		}
		d.onWarn = func(w evidence.Warning) {
			if !stopped && !yield(DriftEntry{}, w) {
				stopped = true
			}
		}
		if err := d.walk(ctx, &stopped); err != nil && !stopped {
			yield(DriftEntry{}, err)
		}
	}
}

// DriftAll collects Drift's entries and warnings.
func DriftAll(ctx context.Context, ds *DriftSource, opt *DriftOptions) ([]DriftEntry, []evidence.Warning, error) {
	return collectStream(Drift(ctx, ds, opt))
}

// collectStream gathers a stream's values and its warnings (evidence.Warning
// errors); another error stops it and is returned with what came before.
func collectStream[T any](seq iter.Seq2[T, error]) ([]T, []evidence.Warning, error) {
	var out []T
	var warns []evidence.Warning
	for v, err := range seq {
		var w evidence.Warning
		switch {
		case err == nil:
			out = append(out, v)
		case errors.As(err, &w):
			warns = append(warns, w)
		default:
			return out, warns, err
		}
	}
	return out, warns, nil
}

func (d *drifter) walk(ctx context.Context, stopped *bool) error {
	ds := d.ds
	var err error
	d.bufs.New = func() any { return make([]byte, 256<<10) }
	if len(ds.Lowers) > 0 {
		d.lower, err = overlay.New(ds.Lowers, nil)
		if err != nil {
			return err
		}
	}
	up, err := evidence.Sub(ds.Upper.Source, orDot(ds.Upper.Dir))
	if err != nil {
		return fmt.Errorf("upper layer %s: %w", ds.Upper.Name, err)
	}
	d.up = up
	defer d.flushWarnings()
	for _, del := range ds.Upper.Deleted {
		p, err := evidence.Clean(del)
		if err != nil || p == "." {
			d.warn("deleted path %q refused: %v", del, err)
			continue
		}
		d.deleted = append(d.deleted, p)
	}
	sort.Strings(d.deleted)
	// Entries are classified in chunks, in parallel (hashing dominates),
	// and their entries emitted in path order after each chunk.
	var chunk []item
	flush := func() {
		d.run(chunk)
		chunk = chunk[:0]
	}
	queueDeleted := func(before string) {
		for len(d.deleted) > 0 && d.deleted[0] < before {
			chunk = append(chunk, item{deleted: d.deleted[0]})
			d.deleted = d.deleted[1:]
		}
	}
	err = evidence.Walk(ctx, up, ".", func(st *evidence.Stat, err error) error {
		if *stopped {
			return fs.SkipAll
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if st != nil {
				d.warn("%s: %v", st.Name, err)
				return nil
			}
			return err
		}
		if st.Name == "." {
			return nil
		}
		queueDeleted(st.Name)
		chunk = append(chunk, item{st: st})
		if len(chunk) >= driftChunk {
			flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	queueDeleted("\xff")
	flush()
	vols := append([]kube.Mount(nil), ds.Volumes...)
	sort.SliceStable(vols, func(i, j int) bool { return mountAt(vols[i]) < mountAt(vols[j]) })
	for i := range vols {
		m := &vols[i]
		if !m.Writable || (m.Kind == kube.MountHostPath && !d.opt.HostPaths) {
			continue
		}
		if err := d.walkVolume(ctx, m, &chunk, stopped); err != nil {
			return err
		}
		flush()
	}
	d.flushWarnings()
	return ctx.Err()
}

// walkVolume queues the entries of a writable mount's content.
func (d *drifter) walkVolume(ctx context.Context, m *kube.Mount, chunk *[]item, stopped *bool) error {
	src := d.ds.VolumeSource
	if src == nil || !m.Exists || m.EvidencePath == "" {
		d.warn("%s at %s: its content is not in the evidence", m.Origin, mountAt(*m))
		return nil
	}
	dir, err := evidence.Resolve(src, m.EvidencePath, true)
	if err != nil {
		d.warn("%s: %v", m.EvidencePath, err)
		return nil
	}
	err = evidence.Walk(ctx, src, dir, func(st *evidence.Stat, err error) error {
		if *stopped {
			return fs.SkipAll
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			name := dir
			if st != nil {
				name = st.Name
			}
			d.warn("%s: %v", name, err)
			return nil
		}
		rel := ""
		if st.Name != dir {
			rel = strings.TrimPrefix(st.Name, dir+"/")
			if dir == "." {
				rel = st.Name
			}
		} else if st.Mode.IsDir() {
			return nil // the volume's own directory
		}
		*chunk = append(*chunk, item{st: st, vol: m, rel: rel})
		if len(*chunk) >= driftChunk {
			d.run(*chunk)
			*chunk = (*chunk)[:0]
		}
		return nil
	})
	return err
}

// driftChunk is how many entries are classified before their findings
// are emitted.
const driftChunk = 256

// item is an upper entry, or a path of deleted.files.
type item struct {
	st      *evidence.Stat
	deleted string
	vol     *kube.Mount // an entry of a writable volume, at rel in it
	rel     string
}

// run classifies a chunk of items with one worker per CPU and emits the
// findings in item order.
func (d *drifter) run(items []item) {
	if len(items) == 0 {
		return
	}
	outs := make([][]DriftEntry, len(items))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(items)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := &job{drifter: d, buf: d.bufs.Get().([]byte)}
			defer d.bufs.Put(j.buf)
			for {
				i := int(next.Add(1)) - 1
				if i >= len(items) {
					return
				}
				j.out = nil
				if it := items[i]; it.vol != nil {
					j.volumeEntry(it.vol, it.rel, it.st)
				} else if it.st != nil {
					j.entry(it.st)
				} else {
					j.whiteout(it.deleted, nil, "listed in deleted.files")
				}
				outs[i] = j.out
			}
		}()
	}
	wg.Wait()
	d.flushWarnings()
	for _, o := range outs {
		for _, f := range o {
			d.fn(f)
		}
	}
}

func orDot(s string) string {
	if s == "" {
		return "."
	}
	return s
}

type drifter struct {
	ds      *DriftSource
	opt     DriftOptions
	fn      func(DriftEntry)
	onWarn  func(evidence.Warning)
	pending []evidence.Warning
	nwarn   int
	up      evidence.Source
	lower   *overlay.View
	deleted []string

	bySize    map[int64][]string
	sizeOnce  sync.Once
	bufs      sync.Pool
	mu        sync.Mutex // guards lowerHash and warnings
	lowerHash map[string]string
}

// job is one worker's view of a drift: the shared drifter plus its own
// buffer and the findings of the entry it is classifying.
type job struct {
	*drifter
	buf []byte
	out []DriftEntry
}

// warn records a warning about one entry (from any worker); the
// iterating goroutine yields it with the next chunk.
func (d *drifter) warn(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nwarn < maxDriftWarnings {
		d.nwarn++
		d.pending = append(d.pending, evidence.Warnf(d.ds.Upper.Name, -1, format, args...))
	}
}

// maxDriftWarnings bounds the warnings of one container's drift.
const maxDriftWarnings = 1000

// flushWarnings yields the pending warnings (on the iterating goroutine).
func (d *drifter) flushWarnings() {
	d.mu.Lock()
	ws := d.pending
	d.pending = nil
	d.mu.Unlock()
	for _, w := range ws {
		d.onWarn(w)
	}
}

func (d *drifter) base(p string, st *evidence.Stat) DriftEntry {
	c := d.ds.Container
	f := DriftEntry{
		Runtime:       c.Runtime,
		ContainerID:   c.ID,
		Namespace:     c.Namespace,
		ContainerName: c.ContainerName,
		Path:          "/" + p,
		PathBytes:     model.PathBytes("/" + p),
		Flags:         []string{},
		Layer:         d.ds.Upper.Name,
	}
	if c.Pod != nil {
		f.Pod = c.Pod.Namespace + "/" + c.Pod.Name
	}
	if st != nil {
		f.Type = overlay.TypeOf(st.Mode)
		f.Size = st.Size
		f.Mode = evidence.ModeString(st.Mode)
		f.UID, f.GID = st.UID, st.GID
		f.Atime, f.Mtime, f.Ctime, f.Btime = model.T(st.Atime), model.T(st.Mtime), model.T(st.Ctime), model.T(st.Btime)
		f.EvidencePath = evidencePath(d.ds.Upper, p)
	}
	return f
}

func evidencePath(l overlay.Layer, p string) string {
	if l.Kind == overlay.LayerTar {
		return l.Name + ":" + p
	}
	return "/" + path.Join(strings.TrimPrefix(l.Dir, "/"), p)
}

// lowerEntry looks a path up in the lower view (nil when absent).
func (d *drifter) lowerEntry(p string) (*overlay.Entry, error) {
	if d.lower == nil {
		return nil, nil
	}
	e, err := d.lower.LstatEntry(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, evidence.ErrSymlinkInPath) || errors.Is(err, fs.ErrInvalid) {
			return nil, nil
		}
		// A path under a lower non-directory, or under a lower symlink,
		// does not exist in the lower view.
		var pe *fs.PathError
		if errors.As(err, &pe) && strings.Contains(err.Error(), "not a directory") {
			return nil, nil
		}
		return nil, err
	}
	return e, nil
}

func (d *drifter) overlayXattr(xs map[string][]byte, suffix string) ([]byte, bool) {
	for _, p := range []string{overlay.XattrTrustedPrefix, overlay.XattrUserPrefix} {
		if v, ok := xs[p+suffix]; ok {
			return v, true
		}
	}
	return nil, false
}

func (d *job) entry(st *evidence.Stat) error {
	p := st.Name
	if d.ds.Upper.Kind == overlay.LayerTar {
		kind, target := overlay.ParseWhiteoutName(path.Base(p))
		switch kind {
		case overlay.Whiteout:
			d.whiteout(path.Join(path.Dir(p), target), st, "")
			return nil
		case overlay.OpaqueWhiteout:
			d.opaque(path.Dir(p), st)
			return nil
		case overlay.WhiteoutMeta:
			return nil
		}
	}
	var xs map[string][]byte
	if d.ds.Upper.Kind == overlay.LayerDir {
		var err error
		if xs, err = d.up.Xattrs(p); err != nil {
			d.warn("%s: xattrs: %v", p, err)
		}
		if st.IsWhiteout() {
			d.whiteout(p, st, "")
			return nil
		}
		if _, ok := d.overlayXattr(xs, overlay.XattrWhiteout); ok && st.Mode.IsRegular() && st.Size == 0 {
			d.whiteout(p, st, "xattr whiteout")
			return nil
		}
	}
	lo, err := d.lowerEntry(p)
	if err != nil {
		d.warn("%s: lower lookup: %v", p, err)
	}
	f := d.base(p, st)
	if st.Mode.IsDir() {
		opq, _ := d.overlayXattr(xs, overlay.XattrOpaque)
		switch {
		case lo != nil && lo.Stat.Mode.IsDir() && len(opq) == 1 && opq[0] == overlay.OpaqueYes:
			f.Change = ChangeOpaqueDir
			f.Hides = d.countLower(p)
			f.LowerType = "dir"
			d.emit(f, st, nil)
		case lo == nil:
			f.Change = d.addedChange()
			d.emit(f, st, nil)
		case !lo.Stat.Mode.IsDir():
			f.Change = ChangeTypeChanged
			f.LowerType = lo.Type()
			d.emit(f, st, nil)
		default:
			// A copied-up parent: a finding only when its own mode or
			// owner changed (its times move with every child).
			if ch := metaDiff(st, lo.Stat, false); len(ch) > 0 {
				f.Change = ChangeMetadataOnly
				f.MetadataChanged = ch
				f.LowerType = "dir"
				d.emit(f, st, nil)
			}
		}
		return nil
	}
	if st.Mode&fs.ModeSymlink != 0 {
		if f.LinkTarget, err = d.up.Readlink(p); err != nil {
			d.warn("%s: readlink: %v", p, err)
		}
	}
	switch {
	case lo == nil:
		f.Change = d.addedChange()
	case lo.Type() != f.Type:
		f.Change = ChangeTypeChanged
		f.LowerType = lo.Type()
		f.LowerLinkTarget = lo.LinkTarget
	default:
		f.LowerType = lo.Type()
		f.LowerLinkTarget = lo.LinkTarget
		f.Change = ChangeModified
		if st.Mode&fs.ModeSymlink != 0 {
			if f.LinkTarget == lo.LinkTarget {
				f.Change = ChangeMetadataOnly
			}
		}
	}
	var meta bool
	if st.Mode.IsRegular() {
		_, meta = d.overlayXattr(xs, overlay.XattrMetacopy)
	}
	d.content(&f, st, lo, meta)
	if f.Change == ChangeMetadataOnly {
		f.MetadataChanged = metaDiff(st, lo.Stat, true)
		if d.lower != nil {
			if lx, err := d.lower.Xattrs(lo); err == nil && !sameXattrs(xs, lx) {
				f.MetadataChanged = append(f.MetadataChanged, "xattrs")
			}
		}
	}
	d.emit(f, st, xs)
	return nil
}

func (d *drifter) addedChange() string {
	if d.lower == nil {
		return ChangeAddedOrModified
	}
	return ChangeAdded
}

// content hashes a regular file, compares it with the lower one, and
// recognises executables.
func (d *job) content(f *DriftEntry, st *evidence.Stat, lo *overlay.Entry, metacopy bool) {
	if !st.Mode.IsRegular() {
		return
	}
	if metacopy {
		// Metadata-only copy-up: the data is the lower file's.
		f.Note = "overlay metacopy: data is the lower file's"
		if lo != nil && f.Change == ChangeModified {
			f.Change = ChangeMetadataOnly
		}
		if lo != nil {
			f.SHA256 = d.hashLower(lo)
			f.LowerSHA256 = f.SHA256
			d.classifyLower(f, lo)
		}
		return
	}
	file, err := d.up.Open(st.Name)
	if err != nil {
		f.Note = "unreadable: " + err.Error()
		return
	}
	defer file.Close()
	d.classify(f, file)
	if d.opt.NoHash {
		if lo != nil && f.Change == ChangeModified && lo.Stat.Size == st.Size {
			f.Note = "content not compared (--no-hash); same size as the image's"
		}
		return
	}
	f.SHA256, err = d.hashReader(io.NewSectionReader(file, 0, file.Size()))
	if err != nil {
		f.Note = "read error: " + err.Error()
		return
	}
	if lo != nil && lo.Stat.Mode.IsRegular() {
		f.LowerSHA256 = d.hashLower(lo)
		if f.Change == ChangeModified && f.LowerSHA256 == f.SHA256 && f.SHA256 != "" {
			f.Change = ChangeMetadataOnly
		}
		if d.opt.Diff && f.Change == ChangeModified {
			if lf, err := d.lower.OpenEntry(lo); err == nil {
				f.Diff = textDiff(f.Path, lf, file, f.LowerSHA256, f.SHA256)
				lf.Close()
			}
		}
	}
	if (f.Change == ChangeAdded || f.Change == ChangeModified || f.Change == ChangeTypeChanged) && st.Size > 0 && (f.ExecKind != "" || d.opt.IdenticalAll) {
		f.IdenticalTo = d.identical(st.Size, f.SHA256, "/"+st.Name)
	}
}

func (d *job) hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, r, d.buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (d *job) hashLower(lo *overlay.Entry) string {
	d.mu.Lock()
	h, ok := d.lowerHash[lo.Path]
	d.mu.Unlock()
	if ok {
		return h
	}
	if f, err := d.lower.OpenEntry(lo); err == nil {
		h, _ = d.hashReader(io.NewSectionReader(f, 0, f.Size()))
		f.Close()
	}
	d.mu.Lock()
	d.lowerHash[lo.Path] = h
	d.mu.Unlock()
	return h
}

// identical finds an image file with the same content (e.g. a renamed
// copy of /bin/busybox): image files are indexed by size once, and only
// those of the same size are hashed.
func (d *job) identical(size int64, sum, self string) string {
	if d.lower == nil || sum == "" {
		return ""
	}
	d.sizeOnce.Do(func() {
		d.bySize = map[int64][]string{}
		for e, err := range d.lower.Walk(context.TODO(), ".") {
			if err != nil || e == nil || !e.Stat.Mode.IsRegular() || e.Stat.Size == 0 {
				continue
			}
			d.bySize[e.Stat.Size] = append(d.bySize[e.Stat.Size], e.Path)
		}
	})
	cands := d.bySize[size]
	for i, p := range cands {
		if i >= d.opt.MaxIdentical {
			break
		}
		e, err := d.lower.LstatEntry(p)
		if err != nil {
			continue
		}
		if d.hashLower(e) == sum && "/"+p != self {
			return "/" + p
		}
	}
	return ""
}

// countLower counts the entries of the lower view below p.
func (d *drifter) countLower(p string) int {
	if d.lower == nil {
		return 0
	}
	n := 0
	for e, err := range d.lower.Walk(context.TODO(), p) {
		if err == nil && e != nil && e.Path != p {
			n++
		}
	}
	return n
}

func (d *job) whiteout(p string, st *evidence.Stat, note string) {
	f := d.base(p, st)
	f.Type = "whiteout"
	f.Note = note
	lo, err := d.lowerEntry(p)
	if err != nil {
		d.warn("%s: lower lookup: %v", p, err)
	}
	switch {
	case d.lower == nil:
		f.Change = ChangeDeleted
		f.Note = strings.TrimPrefix(note+"; image not at hand", "; ")
	case lo == nil:
		f.Change = ChangeDeleted
		f.Note = strings.TrimPrefix(note+"; the image has nothing here to delete", "; ")
	case lo.Stat.Mode.IsDir():
		f.Change = ChangeDeletedDir
		f.LowerType = "dir"
		f.Hides = d.countLower(p)
	default:
		f.Change = ChangeDeleted
		f.LowerType = lo.Type()
		if lo.Stat.Mode.IsRegular() && !d.opt.NoHash {
			f.LowerSHA256 = d.hashLower(lo)
		}
		f.LowerLinkTarget = lo.LinkTarget
	}
	d.emit(f, st, nil)
}

func (d *job) opaque(p string, st *evidence.Stat) {
	lo, _ := d.lowerEntry(p)
	if lo == nil || !lo.Stat.Mode.IsDir() {
		return // a new directory: its entries speak for it
	}
	f := d.base(p, st)
	f.Type, f.Change, f.LowerType = "dir", ChangeOpaqueDir, "dir"
	f.Hides = d.countLower(p)
	d.emit(f, nil, nil)
}

func (d *job) emit(f DriftEntry, st *evidence.Stat, xs map[string][]byte) {
	f.Flags = append(f.Flags, classify.PathFlags(f.Path)...)
	if st != nil {
		if st.Mode&fs.ModeSetuid != 0 {
			f.Flags = append(f.Flags, FlagSetuid)
		}
		if st.Mode&fs.ModeSetgid != 0 && !st.Mode.IsDir() {
			f.Flags = append(f.Flags, FlagSetgid)
		}
		if st.Mode&0o002 != 0 && st.Mode&fs.ModeSymlink == 0 && st.Mode&fs.ModeSticky == 0 {
			f.Flags = append(f.Flags, FlagWorldWrite)
		}
		if st.Mode.IsRegular() && st.Size == 0 && classify.RuntimeMountPoint(f.Path) && (f.Change == ChangeAdded || f.Change == ChangeAddedOrModified || f.Change == ChangeModified || f.Change == ChangeMetadataOnly) {
			f.Flags = append(f.Flags, FlagBenign)
		}
	}
	if _, ok := xs["security.capability"]; ok {
		f.Flags = append(f.Flags, FlagCapability)
	}
	d.out = append(d.out, f)
}

// volumeEntry classifies an entry of a writable volume: added, with the
// same content checks as an upper layer's file.
func (d *job) volumeEntry(m *kube.Mount, rel string, st *evidence.Stat) {
	p := m.ContainerPathOf(rel)
	if p == "" {
		p = path.Join(PseudoPath(*m), rel)
	}
	f := d.base(strings.TrimPrefix(p, "/"), nil)
	f.Change = ChangeAdded
	f.Type = overlay.TypeOf(st.Mode)
	f.Size = st.Size
	f.Mode = evidence.ModeString(st.Mode)
	f.UID, f.GID = st.UID, st.GID
	f.Atime, f.Mtime, f.Ctime, f.Btime = model.T(st.Atime), model.T(st.Mtime), model.T(st.Ctime), model.T(st.Btime)
	f.EvidencePath = "/" + st.Name
	f.Layer = m.EvidencePath
	f.Volume = m.Volume
	if m.Kind == kube.MountHostPath || f.Volume == "" {
		f.Volume = m.Origin
	}
	if m.ContainerPath == nil {
		f.Note = "in volume " + m.Volume + " (" + m.VolumeKind + "), which the container's OCI spec does not list: container path unknown"
	}
	src := d.ds.VolumeSource
	xs, err := src.Xattrs(st.Name)
	if err != nil {
		d.warn("%s: xattrs: %v", st.Name, err)
	}
	switch {
	case st.Mode&fs.ModeSymlink != 0:
		if f.LinkTarget, err = src.Readlink(st.Name); err != nil {
			d.warn("%s: readlink: %v", st.Name, err)
		}
	case st.Mode.IsRegular():
		file, err := src.Open(st.Name)
		if err != nil {
			f.Note = strings.TrimPrefix(f.Note+"; unreadable: "+err.Error(), "; ")
			break
		}
		d.classify(&f, file)
		if !d.opt.NoHash {
			if f.SHA256, err = d.hashReader(io.NewSectionReader(file, 0, file.Size())); err != nil {
				f.Note = strings.TrimPrefix(f.Note+"; read error: "+err.Error(), "; ")
			} else if st.Size > 0 && (f.ExecKind != "" || d.opt.IdenticalAll) {
				f.IdenticalTo = d.identical(st.Size, f.SHA256, "")
			}
		}
		file.Close()
	}
	d.emit(f, st, xs)
}

// metaDiff names what differs between two entries' metadata.
func metaDiff(a, b *evidence.Stat, times bool) []string {
	var out []string
	if a.Mode.Perm() != b.Mode.Perm() || a.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != b.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) {
		out = append(out, "mode")
	}
	if a.UID != b.UID || a.GID != b.GID {
		out = append(out, "owner")
	}
	if times && !a.Mtime.Equal(b.Mtime) {
		out = append(out, "mtime")
	}
	return out
}

// sameXattrs compares xattrs other than overlay's own bookkeeping.
func sameXattrs(a, b map[string][]byte) bool {
	clean := func(m map[string][]byte) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if strings.HasPrefix(k, overlay.XattrTrustedPrefix) || strings.HasPrefix(k, overlay.XattrUserPrefix) {
				continue
			}
			out[k] = string(v)
		}
		return out
	}
	ca, cb := clean(a), clean(b)
	if len(ca) != len(cb) {
		return false
	}
	for k, v := range ca {
		if cb[k] != v {
			return false
		}
	}
	return true
}

// classify recognises an executable from its first bytes and mode.
func (d *job) classify(f *DriftEntry, file evidence.File) {
	hdr := make([]byte, MaxHeader)
	n, _ := file.ReadAt(hdr, 0)
	hdr = hdr[:n]
	classifyBytes(f, hdr, file)
}

func classifyBytes(f *DriftEntry, hdr []byte, r io.ReaderAt) {
	var mode uint32
	fmt.Sscanf(f.Mode, "%o", &mode)
	e := classify.File(hdr, r, fs.FileMode(mode&0o777))
	f.ExecKind, f.ELF, f.Interpreter = e.Kind, e.ELF, e.Interpreter
}

func (d *job) classifyLower(f *DriftEntry, lo *overlay.Entry) {
	file, err := d.lower.OpenEntry(lo)
	if err != nil {
		return
	}
	defer file.Close()
	d.classify(f, file)
}
