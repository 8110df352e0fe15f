// Package testfix finds and prepares the real fixtures for tests, all of
// them in the repository: the node collection and the other fixtures
// committed under testdata/, and the few archives derived from them. Tests that need root (extracting whiteouts and trusted.*
// xattrs) fail rather than skip when not run as root: CI runs as root.
package testfix

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// NodeArchive is the committed containerd node collection.
func NodeArchive(t testing.TB) string {
	return filepath.Join(RepoRoot(t), "testdata", "containerd-node", "containerd-node.tar.gz")
}

// Fixture returns the path of a fixture under the repository's testdata/
// (testdata/README.md says where each came from), failing when it is
// absent. A few archives are not committed but derived from committed ones
// (see derived): those are made on first use, checked against the sha256 of
// the tar stream the original held, and cached under testdata/tmp/
// (gitignored), so the tests read exactly the evidence the original held.
func Fixture(t testing.TB, elem ...string) string {
	t.Helper()
	rel := filepath.ToSlash(filepath.Join(elem...))
	if d, ok := derived[rel]; ok {
		return d.make(t, RepoRoot(t), rel)
	}
	p := filepath.Join(append([]string{RepoRoot(t), "testdata"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture missing: %v", err)
	}
	return p
}

// derivation makes one archive from a committed one: the same tar stream
// (whose sha256 is tarSHA256), decompressed and, with gzip, compressed again
// deterministically (no name, zero time).
type derivation struct {
	from      string // committed, under testdata/
	tarSHA256 string // of the tar stream, the same in both
	gzip      bool   // gzip the stream; else the plain tar
}

// derived are the archives the tests use by the shared fixtures' names that
// are made from a committed one (testdata/README.md):
//   - podman's uncompressed export of the leave-running checkpoint is the
//     gunzip of its gzip export (podman compresses its own tar stream);
//   - the gzip export of the final checkpoint is the zstd export's stream,
//     gzipped (the shared ckpt.tar.gz is a second dump of the same state);
//   - the Docker and containers-storage roots are committed as .tar.zst (a
//     third of the size of the .tar.gz: the long window sees the layers
//     both stores share) and gzipped back to the exact tar stream of the
//     shared .tar.gz.
var derived = map[string]derivation{
	"podman-checkpoint/ckpt-leave-running.tar": {"podman-checkpoint/ckpt-leave-running.tar.gz", "6e50da8b4733519118c2ab19f1436f20640bda94f7e562599955fa9ed9ebcfe4", false},
	"podman-checkpoint/ckpt.tar.gz":            {"podman-checkpoint/ckpt-default-zstd.tar.zst", "4e7e4c105474078b5c9783f4d31858e9a678c0deaef6f4d8f3c85249de941c38", true},
	"runtimes-c1/docker-root.tar.gz":           {"runtimes-c1/docker-root.tar.zst", "3c2ee4634c72f8eba698cc0e60c0ced8003dd4409b6583bbe42e0d9fa6bc0d57", true},
	"runtimes-c1/storage-root.tar.gz":          {"runtimes-c1/storage-root.tar.zst", "de654f3cd0d6861fb66e00a7d9f21141f29efc1a3e81dca3b2758b488017bb67", true},
}

var (
	derivedMu   sync.Mutex
	derivedDone = map[string]bool{} // checked in this process
)

func (d derivation) make(t testing.TB, root, rel string) string {
	t.Helper()
	derivedMu.Lock()
	defer derivedMu.Unlock()
	out := filepath.Join(root, "testdata", "tmp", filepath.FromSlash(rel))
	if derivedDone[out] {
		return out
	}
	if sum, err := tarStreamSHA256(out); err == nil && sum == d.tarSHA256 {
		derivedDone[out] = true
		return out
	}
	src := filepath.Join(root, "testdata", filepath.FromSlash(d.from))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	// Written beside and renamed: test binaries of several packages run at once.
	tmp, err := os.CreateTemp(filepath.Dir(out), ".derive-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(tmp.Name())
	if err := d.write(tmp, src); err != nil {
		tmp.Close()
		t.Fatalf("deriving %s from %s: %v", rel, d.from, err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if sum, err := tarStreamSHA256(tmp.Name()); err != nil || sum != d.tarSHA256 {
		t.Fatalf("derived %s: tar stream sha256 %s (%v), want %s", rel, sum, err, d.tarSHA256)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		t.Fatal(err)
	}
	derivedDone[out] = true
	return out
}

func (d derivation) write(w io.Writer, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return err
	}
	defer r.Close()
	if !d.gzip {
		_, err = io.Copy(w, r)
		return err
	}
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, r); err != nil {
		return err
	}
	return zw.Close()
}

// decompress reads gzip or zstd by magic, else the bytes as they are.
func decompress(f *os.File) (io.ReadCloser, error) {
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// tarStreamSHA256 is the sha256 of an archive's tar stream, decompressed.
func tarStreamSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Extract unpacks a tar archive with its xattrs, devices and owners into a
// fresh temp dir, as an examiner's extracted copy would be, and returns it.
func Extract(t testing.TB, archive string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("extracting the fixture with its whiteouts and trusted.* xattrs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	cmd := exec.Command("tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", archive, "-C", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x %s: %v\n%s", archive, err, out)
	}
	return dir
}

// PrivateCache points the cache of decompressed collections
// ($XDG_CACHE_HOME/deadnode) at the repository's gitignored
// testdata/.cache/xdg, so that tests never write to the user's own cache
// (and reuse what earlier runs decompressed). Call it from TestMain.
func PrivateCache() {
	dir, err := os.Getwd()
	if err != nil {
		return
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return
		}
		dir = parent
	}
	xdg := filepath.Join(dir, "testdata", ".cache", "xdg")
	if os.MkdirAll(xdg, 0o700) == nil {
		os.Setenv("XDG_CACHE_HOME", xdg)
	}
}
