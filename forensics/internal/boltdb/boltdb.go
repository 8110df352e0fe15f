// Package boltdb opens bbolt databases of the evidence (containerd's
// meta.db, libpod's bolt_state.db) without letting bbolt near the evidence:
// the file is copied into a private temp file and the copy is opened
// read-only. Contain turns a reader's panic on a corrupt file into an
// error.
package boltdb

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/deadnode/deadnode/evidence"
	bolt "go.etcd.io/bbolt"
)

// Open copies the bbolt database name of src (at most max bytes) out of
// the evidence into a private temp file and opens the copy read-only, so
// that bbolt never maps, locks or touches the evidence. file is how errors
// name the database. The returned cleanup closes and removes the copy.
func Open(src evidence.Source, name, file string, max int64) (*bolt.DB, func(), error) {
	f, err := src.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if f.Size() > max {
		return nil, nil, &evidence.FormatError{File: file, Offset: -1, Msg: fmt.Sprintf("database is %d bytes, over the %d-byte limit", f.Size(), max)}
	}
	tmp, err := os.CreateTemp("", "deadnode-bolt-*.db")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	if _, err := io.Copy(tmp, io.NewSectionReader(f, 0, f.Size())); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("%s: copy: %w", file, err)
	}
	var db *bolt.DB
	err = Contain(file, func() error {
		var err error
		db, err = bolt.Open(tmp.Name(), 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		return err
	})
	if err != nil {
		cleanup()
		return nil, nil, &evidence.FormatError{File: file, Offset: -1, Msg: "not a readable bbolt database", Err: err}
	}
	return db, func() { db.Close(); cleanup() }, nil
}

// Contain runs fn and turns a panic — bbolt panics on some torn pages, and
// an out-of-range page reference faults inside the mapping — into an error
// naming the file.
func Contain(name string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: database is corrupt (reader panicked: %v)", name, r)
		}
	}()
	return fn()
}
