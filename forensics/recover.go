package forensics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/ptr"
)

// ErrNeedsDiskImage is returned by Recover on evidence that is not a disk
// image read by deadnode (a directory, a mounted image, an archive): only
// the filesystem's own structures still hold what was deleted.
var ErrNeedsDiskImage = errors.New("deleted files can only be recovered from the disk image itself (raw, split raw, qcow2, VMDK), read by deadnode without mounting it; a directory, a mounted image or an archive holds only what is still linked")

// RecoverOptions tune Recover.
type RecoverOptions struct {
	// All lists what was deleted anywhere under the runtimes' roots, and
	// the deleted files known only by their inode on the filesystems that
	// hold those roots, besides what was deleted from every container's
	// upper dir.
	All bool
}

// Recovered is a file deleted from the node that its filesystem still
// holds. Nothing in it is live content: the blocks may have been reused
// since (Complete says whether the allocation bitmaps show any taken).
type Recovered struct {
	// ContainerID is the container whose upper dir held the file; null
	// when the file lay elsewhere or only its inode is known.
	ContainerID *string `json:"container_id"`
	// Path is the file's path in the container, null when not in a
	// container or when only the inode is known.
	Path *string `json:"path"`
	// EvidencePath is the file's path in the node's namespace, null when
	// only the inode is known.
	EvidencePath   *string    `json:"evidence_path"`
	Inode          uint64     `json:"inode"`
	Type           string     `json:"type"` // "file", "dir", "symlink", …
	Size           int64      `json:"size"`
	Mode           string     `json:"mode"` // "0644"
	UID            uint32     `json:"uid"`
	GID            uint32     `json:"gid"`
	Mtime          model.Time `json:"mtime"`
	DeletedAt      model.Time `json:"deleted_at"`      // null when the filesystem does not record it
	Method         string     `json:"method"`          // "dirent", "journal" or "inode"
	RecoveredBytes int64      `json:"recovered_bytes"` // of Size, mapped by the surviving block map
	Complete       bool       `json:"complete"`        // every byte mapped and no mapped block taken since
	SHA256         *string    `json:"sha256"`          // of the recovered bytes (holes as zeros); null when none
	Notes          []string   `json:"notes"`           // what was doubtful, where the record came from
	open           func() (io.ReaderAt, error)
}

// Open reads the recovered bytes (RecoveredBytes of them); nil, error
// when nothing is recoverable.
func (r *Recovered) Open() (io.Reader, error) {
	if r.open == nil || r.RecoveredBytes == 0 {
		return nil, fmt.Errorf("inode %d: nothing recoverable", r.Inode)
	}
	ra, err := r.open()
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(ra, 0, r.RecoveredBytes), nil
}

// fsDeleter is implemented by evidence assembled from several
// filesystems (a disk image): what was deleted on the whole filesystems
// holding the names (each read once), their files known only by inode
// included, and the joined errors of those that could not be read.
type fsDeleter interface {
	DeletedFS(ctx context.Context, names ...string) ([]vfs.Deleted, error)
}

// Recover lists the files deleted from the upper dirs of the containers
// refs names (see FindContainer; every container with opt.All) that the
// filesystem still holds, with the sha256 of the bytes that survive. The
// evidence must be a disk image (ErrNeedsDiskImage otherwise). Records
// are sorted by container (in the order named), then path; those known
// only by inode come last. A directory or filesystem whose deleted files
// cannot be read is a warning, and the rest is still recovered. It stops
// with ctx.Err() when cancelled.
func (n *Node) Recover(ctx context.Context, refs []string, opt *RecoverOptions) ([]Recovered, []evidence.Warning, error) {
	o := ptr.Value(opt)
	rec, ok := n.Src.(vfs.Recoverer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: %w", n.Src.String(), ErrNeedsDiskImage)
	}
	if len(refs) == 0 && !o.All {
		return nil, nil, errors.New("recover: name containers, or ask for all")
	}
	if len(refs) > 0 && o.All {
		return nil, nil, errors.New("recover: name containers or ask for all, not both")
	}
	var ctrs []model.Container
	if o.All {
		ctrs = n.Containers()
	}
	for _, r := range refs {
		c, err := n.FindContainer(r)
		if err != nil {
			return nil, nil, err
		}
		ctrs = append(ctrs, *c)
	}
	type upper struct {
		id, dir string // dir resolved in the evidence
	}
	var uppers []upper
	seenUpper := map[string]bool{}
	for _, c := range ctrs {
		if c.UpperDir == "" {
			continue
		}
		d, err := evidence.Resolve(n.Src, c.UpperDir, true)
		if err != nil || seenUpper[d] {
			continue
		}
		seenUpper[d] = true
		uppers = append(uppers, upper{c.ID, d})
	}
	var out []Recovered
	seen := map[string]bool{}
	add := func(d vfs.Deleted) {
		key := fmt.Sprintf("%s\x00%d\x00%s\x00%d", d.Path, d.Inode, d.Method, d.Size)
		if d.Path == "" {
			key += "\x00" + strings.Join(d.Notes, "\x00")
		}
		if seen[key] {
			return
		}
		seen[key] = true
		r := recovered(d)
		if d.Path != "" {
			ep := "/" + d.Path
			r.EvidencePath = &ep
			for _, u := range uppers {
				if d.Path == u.dir || strings.HasPrefix(d.Path, u.dir+"/") {
					id := u.id
					cp := "/" + strings.TrimPrefix(strings.TrimPrefix(d.Path, u.dir), "/")
					r.ContainerID, r.Path = &id, &cp
					break
				}
			}
		}
		out = append(out, r)
	}
	var warns []evidence.Warning
	// take adds the records of one listing (those keep accepts); a
	// listing that failed is a warning about where, the records it gave
	// are kept.
	take := func(where string, ds []vfs.Deleted, err error, keep func(vfs.Deleted) bool) error {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap() // one warning a filesystem
			}
			for _, e := range errs {
				warns = append(warns, evidence.Warnf(where, -1, "deleted files not all listed: %v", e))
			}
		}
		for _, d := range ds {
			if keep(d) {
				add(d)
			}
		}
		return nil
	}
	all := func(vfs.Deleted) bool { return true }
	for _, u := range uppers {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		st, err := n.Src.Lstat(u.dir)
		if err != nil || !st.Mode.IsDir() {
			continue // an upper dir the evidence does not hold
		}
		ds, err := rec.Deleted(ctx, u.dir)
		if err := take("/"+u.dir, ds, err, all); err != nil {
			return nil, nil, err
		}
	}
	if o.All {
		var roots []string
		for _, rt := range n.Runtimes {
			if r := rt.Info().Root; r != "" {
				if d, err := evidence.Resolve(n.Src, r, true); err == nil {
					if st, err := n.Src.Lstat(d); err == nil && st.Mode.IsDir() {
						roots = append(roots, d) // a root the evidence holds as a directory
					}
				}
			}
		}
		for _, root := range roots {
			ds, err := rec.Deleted(ctx, root)
			if err := take("/"+root, ds, err, all); err != nil {
				return nil, nil, err
			}
		}
		// The files known only by inode, on the filesystems holding the
		// roots, each read once (a plain Recoverer is one filesystem).
		// Named ones outside the runtimes' roots are not asked for.
		if len(roots) > 0 {
			var ds []vfs.Deleted
			var err error
			where := "/"
			if fd, ok := n.Src.(fsDeleter); ok {
				ds, err = fd.DeletedFS(ctx, roots...)
				where = "" // its errors name their volumes
			} else {
				ds, err = rec.Deleted(ctx, ".")
			}
			if err := take(where, ds, err, func(d vfs.Deleted) bool { return d.Path == "" }); err != nil {
				return nil, nil, err
			}
		}
	}
	order := map[string]int{}
	for i, u := range uppers {
		if _, ok := order[u.id]; !ok {
			order[u.id] = i
		}
	}
	rank := func(r *Recovered) (int, string) {
		switch {
		case r.ContainerID != nil:
			return order[*r.ContainerID], *r.EvidencePath
		case r.EvidencePath != nil:
			return len(uppers), *r.EvidencePath
		}
		return len(uppers) + 1, ""
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, pi := rank(&out[i])
		rj, pj := rank(&out[j])
		if ri != rj {
			return ri < rj
		}
		if pi != pj {
			return pi < pj
		}
		return out[i].Inode < out[j].Inode
	})
	for i := range out {
		if err := hashRecovered(ctx, &out[i]); err != nil {
			return nil, nil, err
		}
	}
	return out, warns, nil
}

func recovered(d vfs.Deleted) Recovered {
	r := Recovered{
		Inode: d.Inode, Type: evidence.TypeName(d.Mode), Size: d.Size, Mode: evidence.ModeString(d.Mode),
		UID: d.UID, GID: d.GID, Mtime: model.T(d.Mtime), DeletedAt: model.T(d.DeletedAt), Method: d.Method,
		RecoveredBytes: d.Recoverable, Complete: d.Complete, Notes: append([]string{}, d.Notes...), open: d.Open,
	}
	if d.Open == nil {
		r.RecoveredBytes = 0
	}
	return r
}

// hashRecovered reads the recovered bytes for their sha256, stopping when
// ctx is cancelled.
func hashRecovered(ctx context.Context, r *Recovered) error {
	if r.open == nil || r.RecoveredBytes == 0 {
		return nil
	}
	rd, err := r.Open()
	if err != nil {
		r.Notes = append(r.Notes, "recovered bytes unreadable: "+err.Error())
		return nil
	}
	h := sha256.New()
	if _, err := copyCtx(ctx, h, rd, make([]byte, 1<<20)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.Notes = append(r.Notes, "recovered bytes unreadable: "+err.Error())
		return nil
	}
	s := hex.EncodeToString(h.Sum(nil))
	r.SHA256 = &s
	return nil
}
