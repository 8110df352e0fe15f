package containerd

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/deadnode/deadnode/evidence"
	bolt "go.etcd.io/bbolt"
)

// MaxDBSize bounds the size of a bbolt database copied out of the evidence.
const MaxDBSize = 8 << 30

// openDB copies a bbolt database out of the evidence into a private temp
// file and opens the copy read-only, so that bbolt never maps, locks or
// touches the evidence. The returned cleanup closes and removes the copy.
func openDB(src evidence.Source, name string) (*bolt.DB, func(), error) {
	f, err := src.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if f.Size() > MaxDBSize {
		return nil, nil, &evidence.FormatError{File: name, Offset: -1, Msg: fmt.Sprintf("database is %d bytes, over the %d-byte limit", f.Size(), int64(MaxDBSize))}
	}
	tmp, err := os.CreateTemp("", "deadnode-bolt-*.db")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	if _, err := io.Copy(tmp, io.NewSectionReader(f, 0, f.Size())); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("%s: copy: %w", name, err)
	}
	var db *bolt.DB
	err = contain(name, func() error {
		var err error
		db, err = bolt.Open(tmp.Name(), 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		return err
	})
	if err != nil {
		cleanup()
		return nil, nil, &evidence.FormatError{File: name, Offset: -1, Msg: "not a readable bbolt database", Err: err}
	}
	return db, func() { db.Close(); cleanup() }, nil
}

// contain runs fn and turns a panic — bbolt panics on some torn pages, and
// an out-of-range page reference faults inside the mapping — into an error
// naming the file.
func contain(name string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: database is corrupt (reader panicked: %v)", name, r)
		}
	}()
	return fn()
}
