package boltdb_test

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	"github.com/deadnode/deadnode/forensics/internal/boltdb/bolttest"
	"github.com/deadnode/deadnode/internal/testfix"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

const (
	metaMember = "node/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"
	// A sandbox of the sample node: its bucket's root is a branch page.
	sbJobs = "1cb04cd4472039e05df53c366c2fc24ab4159d4e8049a11dba7bd716fffe515d"
)

func metaDB(t testing.TB) *bolttest.File {
	t.Helper()
	f, err := bolttest.Parse(bolttest.Fixture(t, testfix.NodeArchive(t), metaMember))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// privateTemp points TMPDIR at an empty directory of the test and returns
// a function listing what is in it.
func privateTemp(t *testing.T) func() []string {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	return func() []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
}

// open opens the bytes of a database as the file "meta.db" of a source.
func open(t *testing.T, b []byte) (*boltdb.DB, error) {
	t.Helper()
	dir := t.TempDir()
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return boltdb.Open(&bolttest.Source{Source: src, Name: "meta.db", Data: b}, "meta.db", "/meta.db", nil)
}

// walk reads every key of every bucket through bbolt, and counts them.
func walk(t *testing.T, db *boltdb.DB) int {
	t.Helper()
	n := 0
	var visit func(b *bolt.Bucket, depth int)
	visit = func(b *bolt.Bucket, depth int) {
		b.ForEach(func(k, v []byte) error {
			n++
			if v == nil && depth < 64 {
				visit(b.Bucket(k), depth+1)
			}
			return nil
		})
	}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			n++
			visit(b, 1)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("walking the checked copy: %v", err)
	}
	return n
}

func TestFixtureIntact(t *testing.T) {
	ls := privateTemp(t)
	f := metaDB(t)
	db, err := open(t, f.B)
	if err != nil {
		t.Fatal(err)
	}
	if names := ls(); len(names) != 0 {
		t.Errorf("the open copy has a name in TMPDIR: %v", names)
	}
	defer db.Close()
	if len(db.Warnings) != 0 {
		t.Fatalf("warnings on an intact database: %v", db.Warnings)
	}
	// The tree holds 63 pages of the file's 128 (the rest are free or
	// past the high-water mark, 77).
	if db.PagesChecked != 63 {
		t.Errorf("%d pages checked, want 63", db.PagesChecked)
	}
	if off := db.Offset("v1", "k8s.io", "containers", sbJobs); off != 40*4096 {
		t.Errorf("offset of the sandbox's bucket %d, want page 40", off)
	}
	if n := walk(t, db); n != 404 {
		t.Errorf("%d keys walked, want 404", n)
	}
}

// damage is one way of breaking the sample node's meta.db, and what the
// check must say of it.
type damage struct {
	name  string
	apply func(t *testing.T, f *bolttest.File)
	at    int64    // the warning's offset
	says  []string // in the warning
	// keys is what bbolt still reads of the 404 keys: all but the cut
	// subtree's (page 38 holds 3 keys of the sandbox's record, page 27
	// its 6 others and its 3 inline buckets' 9).
	keys int
}

// sandboxRoot is the root page of the jobs sandbox's bucket: a branch
// page of two children.
func sandboxRoot(t *testing.T, f *bolttest.File) uint64 {
	_, _, root, err := f.Bucket("v1", "k8s.io", "containers", sbJobs)
	if err != nil {
		t.Fatal(err)
	}
	if f.Flags(root) != bolttest.FlagBranch || f.Count(root) != 2 {
		t.Fatalf("page %d: flags %#x count %d, want a branch of 2", root, f.Flags(root), f.Count(root))
	}
	return root
}

var metaDamage = []damage{
	{"self-loop", func(t *testing.T, f *bolttest.File) {
		r := sandboxRoot(t, f)
		f.SetChild(r, 1, r)
	}, 40 * 4096, []string{"bucket v1/k8s.io/containers/" + sbJobs, "page 40 points to page 40, which is already part of the tree (a loop)"}, 401},
	{"two-page loop", func(t *testing.T, f *bolttest.File) {
		r := sandboxRoot(t, f)
		c := f.Child(r, 1)
		f.Branch(c, r) // the second child points back at the root
	}, 38 * 4096, []string{"bucket v1/k8s.io/containers/" + sbJobs, "page 38 points to page 40, which is already part of the tree (a loop)"}, 401},
	{"child 2^40", func(t *testing.T, f *bolttest.File) {
		f.SetChild(sandboxRoot(t, f), 0, 1<<40)
	}, 40 * 4096, []string{"bucket v1/k8s.io/containers/" + sbJobs, "page 40 points to page 1099511627776, past the end of the database (77 pages)"}, 389},
	{"child past the end", func(t *testing.T, f *bolttest.File) {
		f.SetChild(sandboxRoot(t, f), 0, f.Pages()+10)
	}, 40 * 4096, []string{"page 40 points to page 138, past the end of the database"}, 389},
	{"leaf with an absurd count", func(t *testing.T, f *bolttest.File) {
		f.SetCount(f.Child(sandboxRoot(t, f), 0), 0xffff)
	}, 27 * 4096, []string{"bucket v1/k8s.io/containers/" + sbJobs, "page 27 (from page 40) has 65535 elements, more than its 4096 bytes hold"}, 389},
}

func TestDamagedPages(t *testing.T) {
	for _, d := range metaDamage {
		t.Run(d.name, func(t *testing.T) {
			ls := privateTemp(t)
			f := metaDB(t)
			d.apply(t, f)
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			db, err := open(t, f.B)
			if err != nil {
				t.Fatal(err)
			}
			n := walk(t, db)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			db.Close()
			// Bounded: no page is read twice, and what the check and
			// bbolt's walk allocate is a few MiB, not a runaway.
			if db.PagesChecked > int(f.Pages()) {
				t.Errorf("%d pages checked of %d", db.PagesChecked, f.Pages())
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("%d bytes allocated", alloc)
			}
			if len(db.Warnings) != 1 || db.Warnings[0].File != "/meta.db" || db.Warnings[0].Offset != d.at {
				t.Fatalf("warnings %#v, want one at offset %d", db.Warnings, d.at)
			}
			for _, s := range d.says {
				if !strings.Contains(db.Warnings[0].Msg, s) {
					t.Errorf("warning %q does not say %q", db.Warnings[0], s)
				}
			}
			// The damage is the bucket's and its parents', no one else's.
			if dm := db.Damage("v1", "k8s.io", "containers", sbJobs); len(dm) != 1 {
				t.Errorf("damage of the sandbox's bucket: %v", dm)
			}
			if dm := db.Damage("v1", "k8s.io"); len(dm) != 1 {
				t.Errorf("damage of the namespace's bucket: %v", dm)
			}
			if dm := db.Damage("v1", "default"); len(dm) != 0 {
				t.Errorf("damage of the default namespace: %v", dm)
			}
			// The rest is read: only the cut subtree's keys are missing.
			if n != d.keys {
				t.Errorf("%d keys walked, want %d of 404", n, d.keys)
			}
			if names := ls(); len(names) != 0 {
				t.Errorf("left in TMPDIR: %v", names)
			}
		})
	}
}

func TestDamagedRootRefused(t *testing.T) {
	ls := privateTemp(t)
	f := metaDB(t)
	root := f.Root()
	f.SetHeader(root, 999, bolttest.FlagLeaf, f.Count(root), 0) // says it is another page
	_, err := open(t, f.B)
	var fe *evidence.FormatError
	if !errors.As(err, &fe) || fe.File != "/meta.db" || fe.Offset != int64(root*4096) || !strings.Contains(err.Error(), "/meta.db: offset 274432: the root bucket: page 67 (from page 0) says it is page 999; the database cannot be read") {
		t.Errorf("err %v", err)
	}
	if names := ls(); len(names) != 0 {
		t.Errorf("left in TMPDIR: %v", names)
	}
}

func TestTempDirCleanup(t *testing.T) {
	ls := privateTemp(t)
	dir, done, err := boltdb.TempDir("deadnode-test-*")
	if err != nil {
		t.Fatal(err)
	}
	if r := boltdb.Registered(); len(r) != 1 || r[0] != dir {
		t.Fatalf("registered %v, want %s", r, dir)
	}
	if err := os.WriteFile(dir+"/db.sql", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A signal ends the process before done runs: the hook removes it.
	boltdb.CleanupTemp()
	if names := ls(); len(names) != 0 {
		t.Errorf("left in TMPDIR after CleanupTemp: %v", names)
	}
	if r := boltdb.Registered(); len(r) != 0 {
		t.Errorf("still registered: %v", r)
	}
	done() // and done after it is harmless
}

// A temp directory too small for the copy: the error names the temp
// space, not the database, as what is wrong (issue 15.5), and nothing is
// left in it.
func TestTempSpaceFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting a small tmpfs needs root (CI runs as root)")
	}
	db := metaDB(t) // read before TMPDIR is small: the archive spills there
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	t.Setenv("TMPDIR", dir)
	_, err := open(t, db.B) // 512 KiB
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/meta.db: copying 524288 bytes: no space left in the temp directory "+dir+" for a private copy of a database (set TMPDIR to a larger space)") {
		t.Errorf("err %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
}
