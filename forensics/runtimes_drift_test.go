package forensics

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// groundDrift is a row of runtimes-c1's drift ground truth (made from the
// upper dir and the kernel's merged view by the fixture's script).
type groundDrift struct {
	Path        string `json:"path"`
	Class       string `json:"class"`
	SHA256      string `json:"sha256"`
	LowerSHA256 string `json:"lower_sha256"`
	UpperMode   string `json:"upper_mode"`
}

var hidesRE = regexp.MustCompile(`hides (\d+) lower`)

// expectedChange maps the ground truth's class to ours ("" = no finding).
func expectedChange(class string) string {
	switch {
	case strings.HasPrefix(class, "dir copy-up"):
		return ""
	case class == "added", class == "added dir":
		return ChangeAdded
	case strings.HasPrefix(class, "copy-up only"):
		return ChangeMetadataOnly
	case strings.HasPrefix(class, "modified"):
		return ChangeModified
	case strings.HasPrefix(class, "type changed"):
		return ChangeTypeChanged
	case strings.HasPrefix(class, "deleted file"):
		return ChangeDeleted
	case strings.HasPrefix(class, "deleted dir"):
		return ChangeDeletedDir
	case strings.HasPrefix(class, "opaque dir"):
		return ChangeOpaqueDir
	}
	return "?" + class
}

// TestDriftDockerAndPodmanGroundTruth checks the drift of the attacked
// Docker and Podman containers of runtimes-c1 row by row.
func TestDriftDockerAndPodmanGroundTruth(t *testing.T) {
	for _, c := range []struct{ archive, id string }{
		{"docker-root.tar.gz", "f8a96d9431afcdcda37c334276774b7f696bc5c5c20c89182ad28a3f450eaed5"},
		{"storage-root.tar.gz", "015674db7f57680cac399505aa6e903f2837396a880b3e6bfa0ce13193fb8672"},
	} {
		t.Run(c.archive, func(t *testing.T) {
			runtime := "docker"
			if strings.HasPrefix(c.archive, "storage") {
				runtime = "podman"
			}
			b, err := os.ReadFile(testfix.Fixture(t, "runtimes-c1", "ground-truth", "drift-"+runtime+"-"+c.id+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var rows []groundDrift
			if err := json.Unmarshal(b, &rows); err != nil {
				t.Fatal(err)
			}
			n, err := OpenPath(context.Background(), testfix.Fixture(t, "runtimes-c1", c.archive), &Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			ctr, err := n.FindContainer(c.id)
			if err != nil {
				t.Fatal(err)
			}
			if ctr.Runtime != runtime {
				t.Errorf("runtime %q", ctr.Runtime)
			}
			ds, err := n.ContainerDrift(ctr)
			if err != nil {
				t.Fatal(err)
			}
			got := collect(t, ds, DriftOptions{})
			want := 0
			for _, r := range rows {
				ch := expectedChange(r.Class)
				f, ok := got[r.Path]
				if ch == "" {
					if ok {
						t.Errorf("%s: a copied-up parent reported as %s", r.Path, f.Change)
					}
					continue
				}
				want++
				if !ok {
					t.Errorf("%s (%s): no finding", r.Path, r.Class)
					continue
				}
				if f.Change != ch {
					t.Errorf("%s: %s, ground truth %q", r.Path, f.Change, r.Class)
				}
				if r.SHA256 != "-" && f.SHA256 != r.SHA256 {
					t.Errorf("%s: sha256 %s, want %s", r.Path, f.SHA256, r.SHA256)
				}
				if r.LowerSHA256 != "-" && f.LowerSHA256 != r.LowerSHA256 {
					t.Errorf("%s: lower sha256 %s, want %s", r.Path, f.LowerSHA256, r.LowerSHA256)
				}
				if m := hidesRE.FindStringSubmatch(r.Class); m != nil {
					if n, _ := strconv.Atoi(m[1]); f.Hides != n {
						t.Errorf("%s: hides %d, want %s", r.Path, f.Hides, m[1])
					}
				}
				if r.UpperMode != "0000" && f.Mode != r.UpperMode {
					t.Errorf("%s: mode %s, want %s", r.Path, f.Mode, r.UpperMode)
				}
			}
			if len(got) != want {
				var extra []string
				for p := range got {
					extra = append(extra, p)
				}
				t.Errorf("%d findings, ground truth has %d: %v", len(got), want, extra)
			}
		})
	}
}
