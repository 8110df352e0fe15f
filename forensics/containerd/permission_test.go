package containerd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/asuser"
	"github.com/deadnode/deadnode/internal/testfix"
)

func TestMain(m *testing.M) {
	asuser.Dispatch(map[string]func([]string) int{"open": helperOpen})
	os.Exit(m.Run())
}

// helperOpen opens the containerd root of the evidence directory
// args[0] and prints what it got, for a test running it as nobody.
func helperOpen(args []string) int {
	src, err := evidence.OpenDir(args[0])
	if err != nil {
		fmt.Println("evidence:", err)
		return 1
	}
	defer src.Close()
	s, err := Open(src, nil)
	if err != nil {
		fmt.Printf("error: %v\npermission: %v\n", err, errors.Is(err, fs.ErrPermission))
		var pe *fs.PathError
		if errors.As(err, &pe) {
			fmt.Printf("path: %s\n", pe.Path)
		}
		return 0
	}
	for _, w := range s.Warnings {
		fmt.Printf("warning: %s\n", w)
	}
	for _, c := range s.Containers {
		fmt.Printf("container %s %s %q\n", c.ID, c.Status.State, c.Warnings)
	}
	return 0
}

// An examiner without root reading a node extracted by root: the
// containerd root is root-only (0700, as containerd makes it). That is a
// permission error naming /var/lib/containerd, never "no containerd root"
// (issue 15). A database or a state directory that may not be read is
// named too.
func TestPermissionDeniedAsNobody(t *testing.T) {
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	node := filepath.Join(dir, "node")
	asuser.Open(t, node)
	run := func(t *testing.T) string {
		t.Helper()
		out, err := asuser.Run(t, "open", node)
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		return out
	}
	t.Run("root-only containerd root", func(t *testing.T) {
		st, err := os.Stat(filepath.Join(node, "var/lib/containerd"))
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("the fixture's /var/lib/containerd is %v (%v), want 0700", st.Mode(), err)
		}
		out := run(t)
		if !strings.Contains(out, "error: open /var/lib/containerd: permission denied\n") || !strings.Contains(out, "permission: true\n") || !strings.Contains(out, "path: /var/lib/containerd\n") {
			t.Errorf("as nobody:\n%s", out)
		}
	})
	t.Run("root-only meta.db", func(t *testing.T) {
		chmod(t, filepath.Join(node, "var/lib/containerd"), 0o755)
		chmod(t, filepath.Join(node, metaName), 0o600)
		defer chmod(t, filepath.Join(node, metaName), 0o644)
		out := run(t)
		if !strings.Contains(out, "error: open /"+metaName+": permission denied\n") || !strings.Contains(out, "permission: true\n") {
			t.Errorf("as nobody:\n%s", out)
		}
	})
	t.Run("root-only state directory", func(t *testing.T) {
		chmod(t, filepath.Join(node, "var/lib/containerd"), 0o755)
		chmod(t, filepath.Join(node, "run/containerd"), 0o700)
		out := run(t)
		// The root is read; what may not be read is named (the
		// snapshotter's directory is root-only too, and so are the CRI
		// status files), and no container is said to be created for want
		// of a task it could not see.
		for _, want := range []string{
			"warning: open /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs: permission denied\n",
			"warning: open /run/containerd: permission denied\n",
			`container forge-default-idle unknown ["no database for snapshotter \"overlayfs\"" "open /run/containerd: permission denied"]`,
			`container f617888dbd39d44a9b551aa1d2562a8e3b6a4ea8b8706a48c3d608d6c52f183c unknown ["no database for snapshotter \"overlayfs\"" "open /var/lib/containerd/io.containerd.grpc.v1.cri/containers/f617888dbd39d44a9b551aa1d2562a8e3b6a4ea8b8706a48c3d608d6c52f183c/status: permission denied" "open /run/containerd: permission denied"]`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("as nobody, no %q in:\n%s", want, out)
			}
		}
	})
}

func chmod(t *testing.T, p string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}
