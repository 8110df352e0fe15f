package boltdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The private copies of the evidence's databases live in the temp
// directory. A bbolt copy has no name at all: it is made with O_TMPFILE
// (or, where the filesystem refuses that, made and unlinked at once) and
// handed to bbolt as an open file, so that nothing is left behind whatever
// way the process ends. A copy that needs a name (SQLite opens its
// write-ahead log by name) is registered while it exists, and CleanupTemp
// removes what is registered: the CLI calls it when a signal ends it.

var registry = struct {
	sync.Mutex
	paths map[string]bool
}{paths: map[string]bool{}}

// register records a named temp file or directory; release forgets it.
func register(p string) (release func()) {
	registry.Lock()
	registry.paths[p] = true
	registry.Unlock()
	return func() {
		registry.Lock()
		delete(registry.paths, p)
		registry.Unlock()
	}
}

// CleanupTemp removes every named private copy still registered. It is
// meant for the moment a signal ends the process (deferred removals do not
// run then); it is safe to call at any time and from any goroutine, and
// more than once.
func CleanupTemp() {
	registry.Lock()
	defer registry.Unlock()
	for p := range registry.paths {
		os.RemoveAll(p)
		delete(registry.paths, p)
	}
}

// Registered lists the named private copies that exist now (for tests).
func Registered() []string {
	registry.Lock()
	defer registry.Unlock()
	var out []string
	for p := range registry.paths {
		out = append(out, p)
	}
	return out
}

// privateFile makes an unnamed read-write file in the temp directory.
func privateFile() (*os.File, error) {
	dir := os.TempDir()
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "deadnode-bolt (unlinked)")), nil
	}
	f, err := os.CreateTemp(dir, "deadnode-bolt-*.db")
	if err != nil {
		return nil, TempError(err)
	}
	release := register(f.Name())
	rmErr := os.Remove(f.Name())
	release()
	if rmErr != nil {
		f.Close()
		return nil, rmErr
	}
	return f, nil
}

// TempDir makes a private directory in the temp directory for a copy that
// needs a name, registered until done removes it.
func TempDir(pattern string) (dir string, done func(), err error) {
	dir, err = os.MkdirTemp("", pattern)
	if err != nil {
		return "", nil, TempError(err)
	}
	release := register(dir)
	return dir, func() { os.RemoveAll(dir); release() }, nil
}

// TempError says that the temp directory is the problem when it is full.
func TempError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("no space left in the temp directory %s for a private copy of a database (set TMPDIR to a larger space): %w", os.TempDir(), err)
	}
	return err
}
