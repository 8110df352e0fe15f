package containerd

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/internal/gennode"
	bolt "go.etcd.io/bbolt"
)

func genTree(t *testing.T, containers, snapshots int) string {
	t.Helper()
	dir := t.TempDir()
	if err := gennode.Containerd(dir, containers, snapshots); err != nil {
		t.Fatal(err)
	}
	return dir
}

func openStore(t *testing.T, dir string) (*Store, error) {
	t.Helper()
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return Open(src, nil)
}

func TestGeneratedTree(t *testing.T) {
	dir := genTree(t, 10, 30)
	s, err := openStore(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	plan := gennode.PlanContainerd(10, 30)
	var ctrs, sbs int
	for _, c := range s.Containers {
		if c.Kind == "sandbox" {
			sbs++
		} else {
			ctrs++
		}
		if c.UpperDir == "" || len(c.LowerDirs) == 0 || len(c.Warnings) != 0 {
			t.Errorf("%s: upper %q lowers %v warnings %v", c.ID, c.UpperDir, c.LowerDirs, c.Warnings)
		}
		if _, err := os.Stat(filepath.Join(dir, c.UpperDir)); err != nil {
			t.Errorf("%s: upper dir %s: %v", c.ID, c.UpperDir, err)
		}
	}
	if ctrs+sbs != 10 || sbs != plan.Sandboxes {
		t.Errorf("%d containers + %d sandboxes, plan %+v", ctrs, sbs, plan)
	}
	if len(s.Snapshots) != 30 {
		t.Errorf("%d snapshots", len(s.Snapshots))
	}
	if len(s.Warnings) != 0 {
		t.Errorf("warnings %v", s.Warnings)
	}
}

// editDB applies fn to a bbolt database of the tree (test set-up only).
func editDB(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestSnapshotParentLoop(t *testing.T) {
	dir := genTree(t, 2, 6)
	// Take a committed layer with a parent, walk to the root of its chain,
	// and make that root's parent the layer: a loop.
	editDB(t, filepath.Join(dir, gennode.OverlayDBPath), func(tx *bolt.Tx) error {
		sb := tx.Bucket([]byte("v1")).Bucket([]byte("snapshots"))
		parent := map[string]string{}
		var top string
		sb.ForEach(func(k, _ []byte) error {
			b := sb.Bucket(k)
			parent[string(k)] = string(b.Get([]byte("parent")))
			if b.Get([]byte("kind"))[0] == kindCommitted && len(b.Get([]byte("parent"))) > 0 {
				top = string(k)
			}
			return nil
		})
		if top == "" {
			t.Fatalf("no committed chain in %v", parent)
		}
		root := top
		for parent[root] != "" {
			root = parent[root]
		}
		return sb.Bucket([]byte(root)).Put([]byte("parent"), []byte(top))
	})
	s, err := openStore(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	looped := 0
	for _, c := range s.Containers {
		for _, w := range c.Warnings {
			if strings.Contains(w.String(), "parent chain loops") {
				looped++
			}
		}
		if len(c.LowerDirs) > 10 {
			t.Errorf("%s: %d lower dirs", c.ID, len(c.LowerDirs))
		}
	}
	if looped == 0 {
		t.Errorf("no container reports the loop: %+v", s.Containers)
	}
}

func TestTruncatedMetaDB(t *testing.T) {
	dir := genTree(t, 4, 12)
	p := filepath.Join(dir, gennode.MetaDBPath)
	for _, size := range []int64{0, 100, 4096, 5000, 3 * 4096} {
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		_, err := openStore(t, dir)
		if err == nil || !strings.Contains(err.Error(), "meta.db") {
			t.Errorf("truncated to %d: %v", size, err)
		}
	}
}

func TestBitFlippedMetaDB(t *testing.T) {
	dir := genTree(t, 20, 60)
	p := filepath.Join(dir, gennode.MetaDBPath)
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Both meta pages' magic: bbolt refuses the file.
	b := append([]byte(nil), orig...)
	b[16] ^= 0xff
	b[4096+16] ^= 0xff
	os.WriteFile(p, b, 0o600)
	if _, err := openStore(t, dir); err == nil || !strings.Contains(err.Error(), "meta.db") || !strings.Contains(err.Error(), "bbolt") {
		t.Errorf("flipped magic: %v", err)
	}
	// Flips across every page: never a panic, always a store or an error
	// naming the file.
	stores, errs := 0, 0
	step := (len(orig) - 2*4096) / 40
	for off := 2 * 4096; off < len(orig); off += step {
		for _, delta := range []int{0, 8, 12, 40, 200, 1500} {
			if off+delta >= len(orig) {
				continue
			}
			b := append([]byte(nil), orig...)
			b[off+delta] ^= 0x5a
			b[off+delta+1] ^= 0xa5
			os.WriteFile(p, b, 0o600)
			s, err := openStore(t, dir)
			switch {
			case err != nil:
				errs++
				if !strings.Contains(err.Error(), "meta.db") {
					t.Errorf("flip at %d: error does not name the file: %v", off+delta, err)
				}
			case s != nil:
				stores++
			}
		}
	}
	t.Logf("%d flips read with warnings or intact, %d refused", stores, errs)
	if stores+errs == 0 {
		t.Fatal("no flips tried")
	}
}

func TestRootLinksStayInEvidence(t *testing.T) {
	real := genTree(t, 2, 6) // a valid node outside the evidence
	for name, target := range map[string]string{
		"to-slash":  "/",
		"climb-out": "../../../../../../../../" + strings.TrimPrefix(filepath.Join(real, "var/lib/containerd"), "/"),
		"absolute":  filepath.Join(real, "var/lib/containerd"),
	} {
		t.Run(name, func(t *testing.T) {
			ev := t.TempDir()
			os.MkdirAll(filepath.Join(ev, "var/lib"), 0o755)
			if err := os.Symlink(target, filepath.Join(ev, "var/lib/containerd")); err != nil {
				t.Fatal(err)
			}
			_, err := openStore(t, ev)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("link %s -> %s: %v (the node outside the evidence was read)", name, target, err)
			}
		})
	}
	// meta.db itself a link to a real database on the host.
	ev := t.TempDir()
	os.MkdirAll(filepath.Join(ev, "var/lib/containerd/io.containerd.metadata.v1.bolt"), 0o755)
	os.Symlink(filepath.Join(real, gennode.MetaDBPath), filepath.Join(ev, "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"))
	if _, err := openStore(t, ev); !errors.Is(err, ErrNotFound) {
		t.Errorf("meta.db symlink to the host: %v", err)
	}
}

// A snapshot's parent chain that loops, or names a parent the
// snapshotter's database lacks, cuts the lower layers there with a
// warning naming the snapshot.
func TestLayersChainCut(t *testing.T) {
	s := &Store{Root: "/r", storage: map[string]map[string]*storageSnapshot{"overlayfs": {
		"top":  {id: 9, kind: kindActive, parent: "mid"},
		"mid":  {id: 5, kind: kindCommitted, parent: "base"},
		"base": {id: 2, kind: kindCommitted, parent: "mid"}, // back to mid
		"lost": {id: 7, kind: kindActive, parent: "gone"},
	}}}
	up, lowers, warn := s.layers("overlayfs", "top")
	want := []string{"/r/io.containerd.snapshotter.v1.overlayfs/snapshots/5/fs", "/r/io.containerd.snapshotter.v1.overlayfs/snapshots/2/fs"}
	if up != "/r/io.containerd.snapshotter.v1.overlayfs/snapshots/9/fs" || !reflect.DeepEqual(lowers, want) ||
		len(warn) != 1 || warn[0].String() != `snapshot parent chain loops at "mid"; lower layers cut there` {
		t.Errorf("loop: %s %q %v", up, lowers, warn)
	}
	_, lowers, warn = s.layers("overlayfs", "lost")
	if len(lowers) != 0 || len(warn) != 1 || warn[0].String() != `parent snapshot "gone" is missing from the snapshotter's database; lower layers incomplete` {
		t.Errorf("missing: %q %v", lowers, warn)
	}
}
