package forensics

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/image"
	"github.com/deadnode/deadnode/internal/testfix"
)

func storedDiffs(t *testing.T, root string) (map[string]string, []image.Verification) {
	t.Helper()
	n, err := OpenPath(context.Background(), root, &Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	res, err := n.VerifyImages(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, r := range res {
		status[r.Name] = r.Status
	}
	return status, res
}

// TestVerifyStoredLayers: Docker's and containers-storage's unpacked
// layers verify against their tar-split records, and tampering with the
// base layer on disk is named path by path.
func TestVerifyStoredLayers(t *testing.T) {
	for _, c := range []struct{ archive, layerGlob string }{
		{"docker-root.tar.gz", "var/lib/docker/overlay2/c3897d149a97c0b0779003e593018649467d3ed40855942427bb8b51039ca24b/diff"},
		{"storage-root.tar.gz", "var/lib/containers/storage/overlay/03936a86dced807a48655bdb473b69bd3eb651a018fc8324fcb6f401d908a28a/diff"},
	} {
		t.Run(c.archive, func(t *testing.T) {
			arch := testfix.Fixture(t, "runtimes-c1", c.archive)
			status, res := storedDiffs(t, arch)
			if len(res) != 2 || status["forge.local/shop/web:1.4"] != image.StatusVerified || status["forge.local/base/bbox:1.35-c1"] != image.StatusVerified {
				t.Fatalf("untouched: %v", status)
			}
			if n := len(res[0].Layers) + len(res[1].Layers); n != 4 {
				t.Errorf("%d layers checked, want 4", n)
			}
			// Tamper with an extracted copy's base layer.
			dir := testfix.Extract(t, arch)
			base := filepath.Join(dir, c.layerGlob)
			if _, err := os.Stat(base); err != nil {
				// The archive may hold its tree below a top directory.
				m, _ := filepath.Glob(filepath.Join(dir, "*", c.layerGlob))
				if len(m) != 1 {
					t.Fatalf("base layer not found: %v", err)
				}
				base = m[0]
			}
			b, err := os.ReadFile(filepath.Join(base, "bin/busybox"))
			if err != nil {
				t.Fatal(err)
			}
			b[1000000] ^= 0xff
			must(t, os.WriteFile(filepath.Join(base, "bin/busybox"), b, 0o755))
			must(t, os.Chmod(filepath.Join(base, "etc/group"), 0o666))
			must(t, os.WriteFile(filepath.Join(base, "usr/bin/.implant"), []byte("x"), 0o755))
			status, res = storedDiffs(t, dir)
			if status["forge.local/shop/web:1.4"] != image.StatusTampered || status["forge.local/base/bbox:1.35-c1"] != image.StatusTampered {
				t.Fatalf("tampered: %v", status)
			}
			var got []string
			for _, d := range res[0].Layers[0].Differences {
				got = append(got, d.What+" "+d.Path)
			}
			sort.Strings(got)
			want := []string{"added_on_disk /usr/bin/.implant", "content /bin/busybox", "diff_id ", "mode /etc/group"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("differences %q, want %q", got, want)
			}
			if res[0].Layers[1].Status != image.StatusVerified {
				t.Errorf("upper layers must still verify: %+v", res[0].Layers[1])
			}
		})
	}
}
