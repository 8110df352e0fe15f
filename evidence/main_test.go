package evidence

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/deadnode/deadnode/internal/testfix"
)

// TestMain keeps the cache of this package's tests in a private directory
// (not the user's), and runs the helpers the tests start as other
// processes (another user, concurrent commands).
func TestMain(m *testing.M) {
	switch os.Getenv("DEADNODE_EVIDENCE_HELPER") {
	case "open":
		// Open a collection through the cache and list it, as a command would.
		ev, err := Open(context.Background(), os.Getenv("DEADNODE_EVIDENCE_PATH"), &OpenOptions{CacheDir: os.Getenv("DEADNODE_EVIDENCE_CACHE")})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		n := 0
		Walk(context.Background(), ev.Source, ".", func(*Stat, error) error { n++; return nil })
		fmt.Printf("entries=%d hit=%v\n", n, ev.Cache != nil && ev.Cache.Hit)
		ev.Close()
		os.Exit(0)
	case "notes":
		// Open a directory as this (unprivileged) user; print the notes.
		ev, err := Open(context.Background(), os.Getenv("DEADNODE_EVIDENCE_PATH"), nil)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		for _, n := range ev.Notes {
			fmt.Println(n)
		}
		b, err := ReadFile(ev.Source, "f", 100)
		fmt.Printf("read %q %v\n", b, err)
		names, err := ReadDirNames(ev.Source, "d")
		fmt.Printf("listed %q %v\n", names, err)
		ev.Close()
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "deadnode-evidence-test-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// helper runs this test binary as a helper process.
func helper(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"DEADNODE_EVIDENCE_HELPER=" + mode}, env...)...)
	return cmd
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (mounts, other users, trusted.* xattrs); CI runs as root")
	}
}

// tmpfs mounts a tmpfs of size bytes for the test (root only).
func tmpfs(t *testing.T, size int64) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// usedBytes is what a filesystem holds (its blocks in use).
func usedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	fmt.Sscan(string(out), &n)
	return n
}

// genDir is the gitignored directory where large generated inputs are
// kept between runs.
func genDir(t testing.TB) string {
	d := filepath.Join(testfix.RepoRoot(t), "testdata", ".cache", "evidence")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// generated returns a generated input, making it once with make.
func generated(t testing.TB, name string, make func(w io.Writer) error) string {
	t.Helper()
	p := filepath.Join(genDir(t), name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if err := make(f); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	must(t, os.WriteFile(p, data, 0o644))
	return p
}

// heapPeak samples the live heap while fn runs and returns the largest
// value seen above the heap before fn (after a GC).
func heapPeak(fn func()) (peak uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var mu sync.Mutex
	max := base
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			mu.Lock()
			if m.HeapAlloc > max {
				max = m.HeapAlloc
			}
			mu.Unlock()
		}
	}()
	fn()
	close(stop)
	<-done
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > max {
		max = ms.HeapAlloc
	}
	if max < base {
		return 0
	}
	return max - base
}

// smallTar is a collection with a root of its own.
func smallTar(t testing.TB) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range []struct {
		name, body string
		typ        byte
	}{
		{"etc/", "", tar.TypeDir},
		{"etc/hostname", "node-1\n", tar.TypeReg},
		{"var/lib/containerd/meta.db", "bolt", tar.TypeReg},
		{"var/log/big.log", string(bytes.Repeat([]byte("log line\n"), 10000)), tar.TypeReg},
	} {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: 0o644, Size: int64(len(m.body)), ModTime: time.Unix(1700000000, 0)}
		if m.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, m.body)
	}
	tw.Close()
	return buf.Bytes()
}
