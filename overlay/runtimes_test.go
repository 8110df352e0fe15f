package overlay

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// storeLayers reads an overlay2 / containers-storage layer: its diff/ is
// the upper dir, its "lower" file names the lower dirs (top first) through
// the driver's l/ short links.
func storeLayers(t *testing.T, src evidence.Source, driverDir, id string) []Layer {
	layers := []Layer{{Source: src, Dir: driverDir + "/" + id + "/diff", Kind: LayerDir, Name: id[:12]}}
	b, err := evidence.ReadFile(src, driverDir+"/"+id+"/lower", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), ":") {
		target, err := src.Readlink(driverDir + "/" + l)
		if err != nil {
			t.Fatal(err)
		}
		dir := path.Join(driverDir, path.Dir(l), target)
		if strings.HasPrefix(target, "/") {
			dir = strings.TrimPrefix(target, "/")
		}
		layers = append(layers, Layer{Source: src, Dir: dir, Kind: LayerDir, Name: l})
	}
	return layers
}

// groundTruthListing formats a view as the fixtures' merged-*.txt kernel
// listings: path type mode uid gid size sha256 linktarget, sorted by path.
func groundTruthListing(t *testing.T, v *View) []string {
	var out []string
	for e, err := range v.Walk(context.Background(), ".") {
		if err != nil {
			t.Errorf("walk: %v", err)
			continue
		}
		typ := map[string]string{"dir": "d", "file": "f", "symlink": "l", "fifo": "p", "socket": "s", "char": "c", "block": "b"}[e.Type()]
		size, sum, link := "-", "-", "-"
		switch typ {
		case "f":
			size = fmt.Sprint(e.Stat.Size)
			f, err := v.OpenEntry(e)
			if err != nil {
				t.Fatal(err)
			}
			sum = hashReader(t, io.NewSectionReader(f, 0, f.Size()))
			f.Close()
		case "l":
			size, link = fmt.Sprint(len(e.LinkTarget)), e.LinkTarget
		}
		p := "/" + e.Path
		if e.Path == "." {
			p = "/"
		}
		mode := uint32(e.Stat.Mode.Perm())
		if e.Stat.Mode&os.ModeSetuid != 0 {
			mode |= 0o4000
		}
		if e.Stat.Mode&os.ModeSetgid != 0 {
			mode |= 0o2000
		}
		if e.Stat.Mode&os.ModeSticky != 0 {
			mode |= 0o1000
		}
		out = append(out, fmt.Sprintf("%s\t%s\t%04o\t%d\t%d\t%s\t%s\t%s", p, typ, mode, e.Stat.UID, e.Stat.GID, size, sum, link))
	}
	sort.Strings(out)
	return out
}

// Docker overlay2 and Podman containers-storage, read in place from the
// archived stores, give exactly the kernel's listing of the merged dirs
// taken on the live host.
func TestRuntimeStoresMatchKernelListing(t *testing.T) {
	for _, c := range []struct {
		archive, driverDir, layer, listing string
	}{
		{"runtimes-c1/docker-root.tar.gz", "var/lib/docker/overlay2", "6134f5f8d91859135e6aee0b6bd600b9ee32b26ef35cef934196411b424e63a3", "merged-docker-f8a96d9431afcdcda37c334276774b7f696bc5c5c20c89182ad28a3f450eaed5.txt"},
		{"runtimes-c1/storage-root.tar.gz", "var/lib/containers/storage/overlay", "8b3f6761c8a638d70517e8ca7c41e7ebe9f2136d552f7ed92fe7e465c21807d9", "merged-podman-015674db7f57680cac399505aa6e903f2837396a880b3e6bfa0ce13193fb8672.txt"},
	} {
		t.Run(c.listing[:13], func(t *testing.T) {
			src, err := evidence.OpenArchive(context.Background(), fixturePath(t, c.archive), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			v, err := New(storeLayers(t, src, c.driverDir, c.layer), nil)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(fixturePath(t, "runtimes-c1/ground-truth/"+c.listing))
			if err != nil {
				t.Fatal(err)
			}
			wl := strings.Split(strings.TrimRight(string(want), "\n"), "\n")
			got := groundTruthListing(t, v)
			if len(got) != len(wl) {
				t.Errorf("%d entries, kernel listing %d", len(got), len(wl))
			}
			gs := map[string]bool{}
			for _, l := range got {
				gs[l] = true
			}
			ws := map[string]bool{}
			for _, l := range wl {
				ws[l] = true
				if !gs[l] {
					t.Errorf("kernel only: %q", l)
				}
			}
			for _, l := range got {
				if !ws[l] {
					t.Errorf("view only:   %q", l)
				}
			}
		})
	}
}
