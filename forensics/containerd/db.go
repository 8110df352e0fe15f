package containerd

import (
	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	bolt "go.etcd.io/bbolt"
)

// MaxDBSize bounds the size of a bbolt database copied out of the evidence.
const MaxDBSize = 8 << 30

// openDB opens a bbolt database of the evidence through a private
// read-only copy (see boltdb.Open).
func openDB(src evidence.Source, name string) (*bolt.DB, func(), error) {
	return boltdb.Open(src, name, name, MaxDBSize)
}

// contain turns a reader's panic on a corrupt database into an error
// naming the file (see boltdb.Contain).
func contain(name string, fn func() error) error { return boltdb.Contain(name, fn) }
