package storage

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb/bolttest"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

const stateName = "var/lib/containers/storage/libpod/bolt_state.db"

// The breaks of issue 16.5 on Podman's bolt_state.db (bbolt grew to 11 GB
// in 60 s on a two-page loop) and 16.6, made from the real database of
// the containers-storage fixture. Its container buckets are single leaf
// pages, so the loops are built on branch pages added past the
// high-water mark and made the root of the migrate container's bucket.
func TestDamagedLibpodState(t *testing.T) {
	archive := testfix.Fixture(t, "runtimes-c1", "storage-root.tar.zst")
	mig := []string{"ctr", ctrMigrate}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, f *bolttest.File) (page uint64)
		says   string // with %d for the damaged page
		whole  bool   // the bucket itself is cut out
	}{
		{"self-loop", func(t *testing.T, f *bolttest.File) uint64 {
			n := f.Append()
			f.Branch(n, leafRoot(t, f, mig), n)
			setRoot(t, f, n, mig)
			return n
		}, "page %[1]d points to page %[1]d, which is already part of the tree (a loop)", false},
		{"two-page loop", func(t *testing.T, f *bolttest.File) uint64 {
			n, m := f.Append(), f.Append()
			f.Branch(n, leafRoot(t, f, mig), m)
			f.Branch(m, n)
			setRoot(t, f, n, mig)
			return m
		}, "page %[1]d points to page %[2]d, which is already part of the tree (a loop)", false},
		{"child 2^40", func(t *testing.T, f *bolttest.File) uint64 {
			n := f.Append()
			f.Branch(n, leafRoot(t, f, mig), 1<<40)
			setRoot(t, f, n, mig)
			return n
		}, "page %[1]d points to page 1099511627776, past the end of the database", false},
		{"child past the file end", func(t *testing.T, f *bolttest.File) uint64 {
			n := f.Append()
			f.Branch(n, leafRoot(t, f, mig), f.Pages()+3)
			setRoot(t, f, n, mig)
			return n
		}, "page %[1]d points to page 35, past the end of the database (27 pages)", false},
		{"leaf with an absurd count", func(t *testing.T, f *bolttest.File) uint64 {
			r := leafRoot(t, f, mig)
			f.SetCount(r, 0xffff)
			return r
		}, "page %[1]d (from page 2) has 65535 elements, more than its 16384 bytes hold", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			f, err := bolttest.Parse(bolttest.Fixture(t, archive, stateName))
			if err != nil {
				t.Fatal(err)
			}
			page := tc.damage(t, f)
			a, err := evidence.OpenArchive(context.Background(), archive, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			s, err := Open(&bolttest.Source{Source: a, Name: stateName, Data: f.B}, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := "/" + stateName + ": offset " + fmt.Sprint(page*4096) + ": bucket ctr/" + ctrMigrate + ": " + fmt.Sprintf(tc.says, page, page-1)
			if !hasWarning(s.Warnings, want) {
				t.Errorf("no store warning %q in %q", want, s.Warnings)
			}
			if s.StateDB == "" || len(s.Containers) != 2 {
				t.Fatalf("state db %q, %d containers", s.StateDB, len(s.Containers))
			}
			for _, c := range s.Containers {
				switch c.ID {
				case ctrCart:
					// Untouched: its state as libpod recorded it.
					if c.Status.State != model.StateRunning || c.Pod == nil || len(c.Warnings) != 0 {
						t.Errorf("cart %+v", c)
					}
				case ctrMigrate:
					if !hasWarning(c.Warnings, want) {
						t.Errorf("migrate warnings %q", c.Warnings)
					}
					// Cut in part, the bucket's own leaf is still read;
					// cut whole, the container has no recorded state.
					if tc.whole != (c.Status.State == model.StateUnknown) {
						t.Errorf("migrate state %s", c.Status.State)
					}
				}
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("left in TMPDIR: %v", ents)
			}
		})
	}
}

// leafRoot is the root page of a bucket, a leaf.
func leafRoot(t *testing.T, f *bolttest.File, path []string) uint64 {
	_, _, root, err := f.Bucket(path...)
	if err != nil {
		t.Fatal(err)
	}
	if f.Flags(root) != bolttest.FlagLeaf {
		t.Fatalf("bucket %v: page %d is not a leaf", path, root)
	}
	return root
}

func setRoot(t *testing.T, f *bolttest.File, root uint64, path []string) {
	if err := f.SetBucketRoot(root, path...); err != nil {
		t.Fatal(err)
	}
}
