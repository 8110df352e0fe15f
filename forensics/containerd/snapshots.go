package containerd

import (
	"errors"
	"io/fs"
	"path"
	"strconv"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
	bolt "go.etcd.io/bbolt"
)

// MaxChain bounds a snapshot parent chain (a loop is reported).
const MaxChain = 4096

// storageSnapshot is one record of a snapshotter's metadata.db.
type storageSnapshot struct {
	id           uint64
	kind         int
	parent       string
	inodes, size int64
}

// readSnapshotKeys reads a namespace's snapshots/<snapshotter>/<key>
// buckets of meta.db.
func (s *Store) readSnapshotKeys(ns string, nb *bolt.Bucket, w where) {
	eachRecord(nb, bucketSnapshots, w, false, func(sn []byte, snb *bolt.Bucket, sw where) {
		eachRecord(snb, "", sw, false, func(k []byte, b *bolt.Bucket, kw where) {
			sp := model.Snapshot{Runtime: model.RuntimeContainerd, Namespace: ns, Snapshotter: string(sn), Key: string(k), Kind: "unknown", Containers: []string{}}
			sp.Name, sp.Parent = string(b.Get([]byte(keyName))), string(b.Get([]byte(keyParent)))
			sp.CreatedAt, sp.UpdatedAt, sp.Labels = stamps(b, kw, &sp.Warnings)
			s.Warnings = append(s.Warnings, sp.Warnings...)
			s.Snapshots = append(s.Snapshots, sp)
		})
	})
}

// readSnapshotters joins every snapshot with its snapshotter's database.
func (s *Store) readSnapshotters() {
	byName := map[string]bool{}
	for _, sn := range s.Snapshots {
		byName[sn.Snapshotter] = true
	}
	s.storage = map[string]map[string]*storageSnapshot{}
	for sn := range byName {
		if !pathutil.PlainName(sn) {
			s.Warnings = append(s.Warnings, evidence.Warnf("", -1, "snapshotter name %q is not a plain name; its snapshots are not resolved", sn))
			continue
		}
		dbName := path.Join(s.Root, snapshotterDir+sn, "metadata.db")
		recs, err := s.readStorage(dbName)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				s.Warnings = append(s.Warnings, evidence.Warnf(dbName, -1, "not in the evidence; snapshots of %q have no directories", sn))
			} else {
				s.Warnings = append(s.Warnings, evidence.WarningOf(err))
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
				sp.Warnings = append(sp.Warnings, evidence.Warnf("", -1, "snapshot %q is not in the snapshotter's database", sp.Name))
			}
			continue
		}
		sp.ID = strconv.FormatUint(rec.id, 10)
		sp.Kind = kindName(rec.kind)
		sp.Size, sp.Inodes = rec.size, rec.inodes
		sp.Dir = s.snapshotDir(sp.Snapshotter, rec.id)
	}
}

// readStorage reads the v1/snapshots/<name> records of a snapshotter's
// metadata.db.
func (s *Store) readStorage(name string) (map[string]*storageSnapshot, error) {
	db, err := s.openDB(name)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	s.Warnings = append(s.Warnings, db.Warnings...)
	out := map[string]*storageSnapshot{}
	err = db.View(func(tx *bolt.Tx) error {
		v1 := tx.Bucket([]byte(bucketV1))
		if v1 == nil {
			return &evidence.FormatError{File: name, Offset: -1, Msg: "no v1 bucket: not a snapshotter database"}
		}
		eachRecord(v1, bucketSnapshots, where{db: db, path: []string{bucketV1}}, false, func(k []byte, b *bolt.Bucket, kw where) {
			id, ok := readUvarint(b, keyID)
			if !ok {
				s.Warnings = append(s.Warnings, kw.warnf("no id"))
				return
			}
			r := &storageSnapshot{id: id, parent: string(b.Get([]byte(keyParent)))}
			if kv := b.Get([]byte(keyKind)); len(kv) == 1 {
				r.kind = int(kv[0])
			}
			r.inodes = readVarint(b, keyInodes, kw, &s.Warnings)
			r.size = readVarint(b, keySize, kw, &s.Warnings)
			out[string(k)] = r
		})
		return nil
	})
	return out, err
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

// layers returns the upper directory and the lower directories (top to
// bottom) of a snapshot of a snapshotter, following the parent chain of the
// snapshotter's database.
func (s *Store) layers(snapshotter, name string) (upper string, lowers []string, warn []evidence.Warning) {
	recs := s.storage[snapshotter]
	if recs == nil {
		return "", nil, []evidence.Warning{evidence.Warnf("", -1, "no database for snapshotter %q", snapshotter)}
	}
	r := recs[name]
	if r == nil {
		return "", nil, []evidence.Warning{evidence.Warnf("", -1, "snapshot %q is not in the %s snapshotter's database", name, snapshotter)}
	}
	if r.kind != kindView {
		upper = s.snapshotDir(snapshotter, r.id)
	} else {
		lowers = append(lowers, s.snapshotDir(snapshotter, r.id))
	}
	chain, loop, missing := ondisk.Chain(name, MaxChain+1, func(id string) (string, bool) {
		pr := recs[id]
		if pr == nil {
			return "", false
		}
		return pr.parent, true
	})
	for _, p := range chain[1:] {
		lowers = append(lowers, s.snapshotDir(snapshotter, recs[p].id))
	}
	if loop != "" {
		warn = append(warn, evidence.Warnf("", -1, "snapshot parent chain loops at %q; lower layers cut there", loop))
	}
	if missing != "" {
		warn = append(warn, evidence.Warnf("", -1, "parent snapshot %q is missing from the snapshotter's database; lower layers incomplete", missing))
	}
	if snapshotter == "native" {
		// A native snapshot is a full copy: its parents are not layers.
		lowers = nil
	}
	return upper, lowers, warn
}

// LayerSnapshot finds the snapshot a layer was unpacked to: the snapshot
// whose key is the layer's chain id in a namespace (overlayfs preferred
// when several snapshotters hold one).
func (s *Store) LayerSnapshot(ns, chainID string) (model.Snapshot, bool) {
	if chainID == "" {
		return model.Snapshot{}, false
	}
	var found model.Snapshot
	ok := false
	for _, sn := range s.Snapshots {
		if sn.Namespace != ns || sn.Key != chainID {
			continue
		}
		if !ok || found.Snapshotter != "overlayfs" {
			found, ok = sn, true
		}
	}
	return found, ok
}
