package forensics

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/gennode"
)

// TestDriftGeneratedNode checks drift's counts on a generated node whose
// changes are known by construction.
func TestDriftGeneratedNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root for whiteouts (CI runs as root)")
	}
	dir := t.TempDir()
	lay, err := gennode.DriftNode(dir, gennode.DriftShape{Layers: 5, ImageFiles: 1000, ImageBytes: 8 << 20, UpperFiles: 200, UpperBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	n, err := OpenPath(context.Background(), dir, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := n.FindContainer(lay.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Join(dir, c.UpperDir) != lay.UpperDir || len(c.LowerDirs) != 5 || filepath.Join(dir, c.LowerDirs[4]) != lay.LowerDirs[4] {
		t.Fatalf("layers %s %v vs %+v", c.UpperDir, c.LowerDirs, lay)
	}
	ds, err := n.ContainerDrift(c)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	all, w, err := DriftAll(context.Background(), ds, nil)
	for _, f := range all {
		if f.Type != "dir" {
			count[f.Change]++
		}
		if f.Change == ChangeAdded && f.IdenticalTo != "" {
			t.Errorf("%s identical to %s", f.Path, f.IdenticalTo)
		}
		if f.Change == ChangeMetadataOnly && (f.SHA256 != f.LowerSHA256 || !strings.Contains(strings.Join(f.MetadataChanged, ","), "mode")) {
			t.Errorf("copy-up %+v", f)
		}
	}
	if err != nil || len(w) != 0 {
		t.Fatal(err, w)
	}
	want := map[string]int{ChangeAdded: lay.Added, ChangeModified: lay.Modified, ChangeMetadataOnly: lay.CopiedUp, ChangeDeleted: lay.Whiteouts}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("%s: %d, want %d (all: %v)", k, count[k], v, count)
		}
	}
}
