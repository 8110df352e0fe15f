package containerd

import (
	"os"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb/bolttest"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

const (
	metaName = "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"
	sbJobs   = "1cb04cd4472039e05df53c366c2fc24ab4159d4e8049a11dba7bd716fffe515d"
)

// damagedNode is the sample node with its meta.db replaced by a damaged
// copy made by damage.
func damagedNode(t *testing.T, damage func(f *bolttest.File)) evidence.Source {
	t.Helper()
	f, err := bolttest.Parse(bolttest.Fixture(t, testfix.NodeArchive(t), "node/"+metaName))
	if err != nil {
		t.Fatal(err)
	}
	damage(f)
	return &bolttest.Source{Source: nodeSource(t), Name: metaName, Data: f.B}
}

func bucketRoot(t *testing.T, f *bolttest.File, path ...string) uint64 {
	_, _, root, err := f.Bucket(path...)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The breaks of issue 16.5 and 16.6 on the sample node's meta.db: bbolt
// overflowed its stack on the loops (a fatal error, and the private copy
// left in TMPDIR), and indexed out of range on a child id of 2^40 (0 of 6
// containers listed). Now the damaged subtree is cut out, named in a
// warning, and every container is listed.
func TestDamagedMetaDB(t *testing.T) {
	sb := []string{"v1", "k8s.io", "containers", sbJobs}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, f *bolttest.File)
		says   string // the warning, after the file
		// whole: the sandbox's bucket itself is cut out: it is listed by
		// its id alone.
		whole bool
	}{
		{"self-loop", func(t *testing.T, f *bolttest.File) {
			r := bucketRoot(t, f, sb...)
			f.SetChild(r, 1, r)
		}, "offset 163840: bucket v1/k8s.io/containers/" + sbJobs + ": page 40 points to page 40, which is already part of the tree (a loop); what is below it is not read", false},
		{"two-page loop", func(t *testing.T, f *bolttest.File) {
			r := bucketRoot(t, f, sb...)
			f.Branch(f.Child(r, 1), r)
		}, "offset 155648: bucket v1/k8s.io/containers/" + sbJobs + ": page 38 points to page 40, which is already part of the tree (a loop)", false},
		{"child 2^40", func(t *testing.T, f *bolttest.File) {
			f.SetChild(bucketRoot(t, f, sb...), 0, 1<<40)
		}, "offset 163840: bucket v1/k8s.io/containers/" + sbJobs + ": page 40 points to page 1099511627776, past the end of the database (77 pages)", false},
		{"child past the file end", func(t *testing.T, f *bolttest.File) {
			f.SetChild(bucketRoot(t, f, sb...), 0, f.Pages()+1)
		}, "offset 163840: bucket v1/k8s.io/containers/" + sbJobs + ": page 40 points to page 129, past the end of the database (77 pages)", false},
		{"leaf with an absurd count", func(t *testing.T, f *bolttest.File) {
			f.SetCount(f.Child(bucketRoot(t, f, sb...), 0), 0xffff)
		}, "offset 110592: bucket v1/k8s.io/containers/" + sbJobs + ": page 27 (from page 40) has 65535 elements, more than its 4096 bytes hold", false},
		{"a sub-bucket's leaf with an absurd count", func(t *testing.T, f *bolttest.File) {
			f.SetCount(bucketRoot(t, f, append(sb, "extensions")...), 0xffff)
		}, "offset 49152: bucket v1/k8s.io/containers/" + sbJobs + "/extensions: page 12 (from page 27) has 65535 elements, more than its 4096 bytes hold", false},
		{"bucket root 2^40", func(t *testing.T, f *bolttest.File) {
			if err := f.SetBucketRoot(1<<40, sb...); err != nil {
				t.Fatal(err)
			}
		}, "offset 208896: bucket v1/k8s.io/containers/" + sbJobs + ": page 51 points to page 1099511627776, past the end of the database (77 pages)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			src := damagedNode(t, func(f *bolttest.File) { tc.damage(t, f) })
			s, err := Open(src, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db: " + tc.says
			found := false
			for _, w := range s.Warnings {
				found = found || strings.HasPrefix(w.String(), want)
			}
			if !found {
				t.Errorf("no store warning %q in %q", want, s.Warnings)
			}
			if len(s.Containers) != 6 {
				t.Fatalf("%d containers, want the 6 of the node", len(s.Containers))
			}
			for _, c := range s.Containers {
				if c.ID != sbJobs {
					if len(c.Warnings) != 0 {
						t.Errorf("%s: warnings %q", c.ID, c.Warnings)
					}
					continue
				}
				// The damaged record carries its damage.
				if len(c.Warnings) == 0 || !strings.HasPrefix(c.Warnings[0].String(), want) {
					t.Errorf("sandbox warnings %q", c.Warnings)
				}
				// Cut out whole, it is known by its id (and the state
				// directory, which says it ran).
				if tc.whole && (c.Image != "" || c.SnapshotKey != "" || c.Status.State != model.StateRunning) {
					t.Errorf("sandbox known only by its id: %+v", c)
				}
			}
			// The other pod is whole.
			if app := findCtr(s, "k8s.io", "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007"); app == nil || app.Status.State != model.StateRunning || app.Pod == nil || app.UpperDir == "" {
				t.Errorf("app %+v", app)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("left in TMPDIR: %v", ents)
			}
		})
	}
}
