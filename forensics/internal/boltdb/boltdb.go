// Package boltdb opens the bbolt databases of the evidence (containerd's
// meta.db and its snapshotters' metadata.db, libpod's bolt_state.db)
// without letting bbolt near the evidence, and without letting a damaged
// file take bbolt down.
//
// Contract: the database is copied (at most Options.MaxSize bytes) into a
// private, unnamed temp file — nothing is left in the temp directory
// whatever way the process ends — and the copy is checked before bbolt
// maps it: every page of the tree bbolt will walk is read once, bounded in
// depth, and a damaged subtree (a page that points back into the tree, out
// of the file, at a meta page, a page whose header or elements do not fit
// it) is cut out of the copy and reported as an evidence.Warning naming
// the bucket, the page and its byte offset; every other subtree is read.
// Only a database whose meta pages or root page are unusable is refused,
// with an *evidence.FormatError. A panic or fault of bbolt that the check
// did not foresee is contained by DB.View and becomes an error naming the
// file. The evidence is only read. A DB is safe for concurrent use (as a
// bolt.DB is); the package's functions are safe to call from several
// goroutines.
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

// DefaultMaxSize bounds the size of a database copied out of the evidence.
const DefaultMaxSize = 8 << 30

// Options tune Open.
type Options struct {
	// MaxSize bounds the database's size (DefaultMaxSize when 0).
	MaxSize int64
}

// DB is a database of the evidence opened on its private copy.
type DB struct {
	// File names the database in errors and warnings.
	File string
	// Warnings are the damaged subtrees cut out of the copy: bbolt never
	// sees them, and everything else is read.
	Warnings []evidence.Warning
	// PagesChecked is how many pages the check read (each at most once).
	PagesChecked int

	db      *bolt.DB
	damage  map[string][]evidence.Warning
	offsets map[string]int64
}

// Open copies the bbolt database name of src out of the evidence into a
// private temp file, checks its pages (cutting damaged subtrees out of the
// copy) and opens the copy read-only. file is how errors and warnings name
// the database.
func Open(src evidence.Source, name, file string, opt *Options) (*DB, error) {
	max := int64(DefaultMaxSize)
	if opt != nil && opt.MaxSize > 0 {
		max = opt.MaxSize
	}
	f, err := src.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Size() > max {
		return nil, &evidence.FormatError{File: file, Offset: -1, Msg: fmt.Sprintf("database is %d bytes, over the %d-byte limit", f.Size(), max)}
	}
	tmp, err := privateFile()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if _, err := io.Copy(tmp, io.NewSectionReader(f, 0, f.Size())); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("%s: copying %d bytes: %w", file, f.Size(), TempError(err))
	}
	var c *checker
	err = Contain(file, func() error {
		var err error
		c, err = checkPages(tmp, f.Size(), file)
		return err
	})
	if err != nil {
		tmp.Close()
		return nil, err
	}
	d := &DB{File: file, Warnings: c.warns, PagesChecked: c.visited, damage: c.damage, offsets: c.offsets}
	err = Contain(file, func() error {
		var err error
		// bbolt is handed the open copy: it never opens anything by name.
		d.db, err = bolt.Open(tmp.Name(), 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second,
			OpenFile: func(string, int, os.FileMode) (*os.File, error) { return tmp, nil }})
		return err
	})
	if err != nil {
		tmp.Close()
		return nil, &evidence.FormatError{File: file, Offset: -1, Msg: "not a readable bbolt database", Err: err}
	}
	return d, nil
}

// View runs fn in a read-only transaction; a panic or fault of bbolt is an
// error naming the file.
func (d *DB) View(fn func(tx *bolt.Tx) error) error {
	return Contain(d.File, func() error { return d.db.View(fn) })
}

// Damage returns the warnings about damage in the bucket at path (bucket
// names from the top) and the buckets below it.
func (d *DB) Damage(path ...string) []evidence.Warning { return d.damage[pathKey(path)] }

// Offset is the byte offset in the file of the page of the bucket at
// path: its root page, or for an inline bucket the page inside its value;
// -1 when unknown (a bucket more than five deep, or past the first 2^17).
func (d *DB) Offset(path ...string) int64 {
	if off, ok := d.offsets[pathKey(path)]; ok {
		return off
	}
	return -1
}

// Close closes the database; its copy is gone with it.
func (d *DB) Close() error { return d.db.Close() }

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
