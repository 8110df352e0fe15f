package containerd

import (
	"path"
	"slices"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	"github.com/deadnode/deadnode/forensics/model"
	bolt "go.etcd.io/bbolt"
)

// MaxDBSize bounds the size of a bbolt database copied out of the evidence.
const MaxDBSize = boltdb.DefaultMaxSize

// openDB opens a bbolt database of the evidence (a "/"-rooted path)
// through its checked private copy (see boltdb.Open). A database that may
// not be read is an error naming what may not be.
func (s *Store) openDB(name string) (*boltdb.DB, error) {
	db, err := boltdb.Open(s.src, s.rel(name), name, &boltdb.Options{MaxSize: MaxDBSize})
	return db, pathutil.Denied(s.src, s.rel(name), err)
}

// readMeta reads meta.db: each namespace (of only, when set) and its
// containers, images, content, snapshot keys and leases. Subtrees the
// database's page check cut out are store warnings.
func (s *Store) readMeta(only []string) error {
	db, err := s.openDB(path.Join(s.Root, metaDBPath))
	if err != nil {
		return err
	}
	defer db.Close()
	s.Warnings = append(s.Warnings, db.Warnings...)
	s.extra = map[string]*ctrExtra{}
	return db.View(func(tx *bolt.Tx) error {
		v1 := tx.Bucket([]byte(bucketV1))
		if v1 == nil {
			return &evidence.FormatError{File: db.File, Offset: -1, Msg: "no v1 schema bucket: not a containerd metadata database"}
		}
		w := where{db: db, path: []string{bucketV1}}
		s.DBVersion = int(readVarint(v1, keyVersion, w, &s.Warnings))
		if s.DBVersion != 3 && s.DBVersion != 4 {
			s.Warnings = append(s.Warnings, w.warnf("database version %d; read as version 3/4", s.DBVersion))
		}
		return v1.ForEach(func(k, v []byte) error {
			if v != nil {
				return nil
			}
			ns := string(k)
			if len(only) > 0 && !slices.Contains(only, ns) {
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
}

// eachRecord calls fn for each record of a bucket family of parent (a
// bucket of buckets: containers, images, leases, …; "" for parent itself)
// with the record's bucket and where it is. Plain values are skipped; with
// damaged, a record whose bucket the page check cut out is passed with a
// nil bucket, so that it can still be listed by its key.
func eachRecord(parent *bolt.Bucket, family string, w where, damaged bool, fn func(k []byte, b *bolt.Bucket, w where)) {
	fb := parent
	if family != "" {
		if fb = parent.Bucket([]byte(family)); fb == nil {
			return
		}
		w = w.sub(family)
	}
	fb.ForEach(func(k, v []byte) error {
		rw := w.sub(string(k))
		b := fb.Bucket(k)
		if b == nil && (!damaged || len(rw.damage()) == 0) {
			return nil
		}
		fn(k, b, rw)
		return nil
	})
}

func (s *Store) countNamespaces() {
	idx := map[string]*model.Namespace{}
	for i := range s.Namespaces {
		idx[s.Namespaces[i].Name] = &s.Namespaces[i]
	}
	count := func(ns string, f func(n *model.Namespace)) {
		if n := idx[ns]; n != nil {
			f(n)
		}
	}
	for _, c := range s.Containers {
		count(c.Namespace, func(n *model.Namespace) {
			if c.Kind == model.KindSandbox {
				n.Sandboxes++
			} else {
				n.Containers++
			}
		})
	}
	for _, im := range s.Images {
		count(im.Namespace, func(n *model.Namespace) { n.Images++ })
	}
	for _, sp := range s.Snapshots {
		count(sp.Namespace, func(n *model.Namespace) { n.Snapshots++ })
	}
	for _, c := range s.Content {
		count(c.Namespace, func(n *model.Namespace) { n.Content++ })
	}
	for _, l := range s.Leases {
		count(l.Namespace, func(n *model.Namespace) { n.Leases++ })
	}
}
