package forensics

// This file walks a drift source: the upper layer (and the writable
// volumes) in path order, in chunks classified on every core.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/overlay"
)

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
			var de *evidence.DepthError
			if st != nil && errors.As(err, &de) {
				// A tree deeper than any walk descends is itself evidence
				// (a bomb, or hiding): an entry, not a warning.
				chunk = append(chunk, item{st: st, deep: true})
				return nil
			}
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
	deep    bool // st is a directory nested too deep to walk
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
				if it := items[i]; it.deep {
					j.tooDeep(it.st)
				} else if it.vol != nil {
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
	ctx     context.Context
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
		f.Atime, f.FileTimes = model.T(st.Atime), model.TimesOf(st)
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
