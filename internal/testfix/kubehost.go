package testfix

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// KubeHostMin is the committed, trimmed host fixture (testdata/kube-host).
func KubeHostMin(t testing.TB) string {
	return filepath.Join(RepoRoot(t), "testdata", "kube-host", "node-host-a.min.tar.zst")
}

var kubeHost struct {
	once    sync.Once
	dir     string
	archive string
	err     string
}

// KubeHost returns the compromised node host as a directory, rebuilt once
// per test binary: the committed node collection extracted (its top-level
// node/ stripped), then the trimmed host fixture over it, both with their
// xattrs, whiteouts and owners (as root).
func KubeHost(t testing.TB) string {
	t.Helper()
	buildKubeHost(t)
	return kubeHost.dir
}

// KubeHostArchive returns the same host as a .tar.zst collection made from
// that directory (as an examiner's collection would be).
func KubeHostArchive(t testing.TB) string {
	t.Helper()
	buildKubeHost(t)
	return kubeHost.archive
}

func buildKubeHost(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Fatal("rebuilding the host fixture with its whiteouts and trusted.* xattrs needs root (CI runs as root)")
	}
	kubeHost.once.Do(func() {
		// Built once into testdata/.cache (gitignored), keyed by the two
		// inputs' digests; a build goes to a temp sibling renamed into place,
		// so concurrent test binaries never see half a tree.
		key, err := fileDigests(NodeArchive(t), KubeHostMin(t))
		if err != nil {
			kubeHost.err = err.Error()
			return
		}
		final := filepath.Join(RepoRoot(t), "testdata", ".cache", "kube-host-"+key+kubeHostRecipe)
		if _, err := os.Stat(filepath.Join(final, "node-host-a.tar.zst")); err == nil {
			kubeHost.dir, kubeHost.archive = filepath.Join(final, "root"), filepath.Join(final, "node-host-a.tar.zst")
			return
		}
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			kubeHost.err = err.Error()
			return
		}
		base, err := os.MkdirTemp(filepath.Dir(final), ".build-")
		if err != nil {
			kubeHost.err = err.Error()
			return
		}
		defer os.RemoveAll(base)
		dir := filepath.Join(base, "root")
		if err := os.Mkdir(dir, 0o755); err != nil {
			kubeHost.err = err.Error()
			return
		}
		steps := [][]string{
			{"tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpzf", NodeArchive(t), "-C", dir, "--strip-components=1"},
			{"sh", "-c", `zstd -dc "$1" | tar --xattrs --xattrs-include='*' --numeric-owner -xp -C "$2"`, "sh", KubeHostMin(t), dir},
			// no atime/ctime pax records: they would be the extraction's
			// times, and the archive (golden outputs read it) must be the
			// same in every clone
			{"sh", "-c", `tar --xattrs --xattrs-include='*' --numeric-owner --sort=name --pax-option=delete=atime,delete=ctime -C "$1" -cf - . | zstd -q -3 -o "$2"`, "sh", dir, filepath.Join(base, "node-host-a.tar.zst")},
		}
		for _, s := range steps {
			if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
				kubeHost.err = s[0] + ": " + err.Error() + "\n" + string(out)
				return
			}
		}
		if err := os.Rename(base, final); err != nil {
			if _, serr := os.Stat(filepath.Join(final, "node-host-a.tar.zst")); serr != nil {
				kubeHost.err = err.Error()
				return
			}
		}
		kubeHost.dir, kubeHost.archive = filepath.Join(final, "root"), filepath.Join(final, "node-host-a.tar.zst")
	})
	if kubeHost.err != "" {
		t.Fatalf("host fixture: %s", kubeHost.err)
	}
}

// kubeHostRecipe names how the cached host is built: change it when the
// steps change, so that a cache built the old way is not reused.
const kubeHostRecipe = "-r2"

// fileDigests is a short digest of the named files' contents.
func fileDigests(files ...string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
