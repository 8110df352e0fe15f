package containerd

import (
	"context"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

// nodeSource opens the committed sample node (its archive holds the node
// under node/).
func nodeSource(t testing.TB) evidence.Source {
	t.Helper()
	a, err := evidence.OpenArchive(context.Background(), testfix.NodeArchive(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	src, err := evidence.Sub(a, "node")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// hiding is a Source without the entries below the given names: evidence
// collected without them.
type hiding struct {
	evidence.Source
	hide []string
}

func (h hiding) hidden(name string) bool {
	name = strings.Trim(name, "/")
	for _, p := range h.hide {
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

func (h hiding) Lstat(name string) (*evidence.Stat, error) {
	if h.hidden(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
	}
	return h.Source.Lstat(name)
}

func (h hiding) ReadDir(name string) ([]*evidence.Stat, error) {
	if h.hidden(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	ents, err := h.Source.ReadDir(name)
	var out []*evidence.Stat
	for _, e := range ents {
		if !h.hidden(e.Name) {
			out = append(out, e)
		}
	}
	return out, err
}

func (h hiding) Open(name string) (evidence.File, error) {
	if h.hidden(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return h.Source.Open(name)
}

func findCtr(s *Store, ns, id string) *model.Container {
	for i := range s.Containers {
		if c := &s.Containers[i]; c.Namespace == ns && c.ID == id {
			return c
		}
	}
	return nil
}

// A container created and never started (forge-default-idle: ctr
// container create) has no task in the captured state directory, and no
// CRI status: it is created, as containerd's clients say, and the task
// directory read is its source. Never when the state directory was not
// captured.
func TestStateCreatedFromCapturedStateDir(t *testing.T) {
	src := nodeSource(t)
	s, err := Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.StateDir != "/run/containerd" {
		t.Fatalf("state dir %q", s.StateDir)
	}
	idle := findCtr(s, "default", "forge-default-idle")
	if idle == nil || idle.Status.State != model.StateCreated || !reflect.DeepEqual(idle.Status.Sources, []string{"/run/containerd/io.containerd.runtime.v2.task"}) || len(idle.Warnings) != 0 {
		t.Errorf("forge-default-idle: %+v", idle)
	}
	// The others keep what their own files say.
	for id, want := range map[string]string{
		"forge-default-cache": model.StateStopped,
		"4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007": model.StateRunning,
		"f617888dbd39d44a9b551aa1d2562a8e3b6a4ea8b8706a48c3d608d6c52f183c": model.StateExited,
	} {
		ns := "k8s.io"
		if strings.HasPrefix(id, "forge") {
			ns = "default"
		}
		if c := findCtr(s, ns, id); c == nil || c.Status.State != want {
			t.Errorf("%s: %+v, want %s", id, c, want)
		}
	}
	for name, hide := range map[string][]string{
		"no state dir":           {"run"},
		"state dir without task": {"run/containerd/io.containerd.runtime.v2.task"},
	} {
		s, err := Open(hiding{src, hide}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if idle := findCtr(s, "default", "forge-default-idle"); idle == nil || idle.Status.State != model.StateUnknown || len(idle.Status.Sources) != 0 {
			t.Errorf("%s: forge-default-idle %+v, want unknown", name, idle)
		}
	}
}
