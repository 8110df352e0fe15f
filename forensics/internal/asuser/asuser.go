// Package asuser runs part of a test as an unprivileged user (nobody),
// so that tests see what an examiner without root sees: evidence
// extracted by root whose directories they may not read. The test binary
// is copied where nobody may run it and started again under
// setpriv --reuid=65534 --regid=65534 --clear-groups; the package's
// TestMain dispatches to the helper named by the environment. For tests
// only; CI runs as root.
package asuser

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// HelperEnv names the helper a re-run test binary is to run.
const HelperEnv = "DEADNODE_ASUSER_HELPER"

// Nobody is the user and group the helpers run as.
const Nobody = "65534"

// Dispatch runs the helper named by the environment, if any, and exits
// with its status; call it first in TestMain. helpers get the arguments
// given to Run.
func Dispatch(helpers map[string]func(args []string) int) {
	name := os.Getenv(HelperEnv)
	if name == "" {
		return
	}
	h := helpers[name]
	if h == nil {
		os.Stderr.WriteString("no helper " + name + "\n")
		os.Exit(3)
	}
	var args []string
	if a := os.Getenv(HelperEnv + "_ARGS"); a != "" {
		args = strings.Split(a, "\x1f")
	}
	os.Exit(h(args))
}

// Open makes dir and the test's directories above it, up to the temp
// directory, traversable by others, so that nobody can reach what is
// inside (t.TempDir makes them 0700). dir must be in the temp directory,
// and the temp directory traversable by others.
func Open(t testing.TB, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	rel, err := filepath.Rel(tmp, dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		t.Fatalf("%s is not in the temp directory %s", dir, tmp)
	}
	if st, err := os.Stat(tmp); err != nil || st.Mode().Perm()&0o001 == 0 {
		t.Fatalf("the temp directory %s is not traversable by others (%v)", tmp, err)
	}
	for d := dir; d != tmp; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Run runs helper as nobody in a copy of the test binary and returns its
// combined output and exit error.
func Run(t testing.TB, helper string, args ...string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("running a helper as another user needs root (CI runs as root)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "test.bin")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	Open(t, filepath.Dir(bin))
	cmd := exec.Command("setpriv", "--reuid="+Nobody, "--regid="+Nobody, "--clear-groups", bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), HelperEnv+"="+helper, HelperEnv+"_ARGS="+strings.Join(args, "\x1f"), "HOME=/nonexistent")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// OpenHelper is a helper (for Dispatch) that opens a runtime's store in
// the evidence directory args[0] with open and prints what came of it:
// the error, whether it is a permission error and whether it is
// notFound, or else the store's container count as count tells it.
func OpenHelper[S any](open func(evidence.Source) (S, error), notFound error, count func(S) int) func(args []string) int {
	return func(args []string) int {
		src, err := evidence.OpenDir(args[0])
		if err != nil {
			fmt.Println("evidence:", err)
			return 1
		}
		defer src.Close()
		s, err := open(src)
		if err != nil {
			fmt.Printf("error: %v\npermission: %v\nnot found: %v\n", err, errors.Is(err, fs.ErrPermission), errors.Is(err, notFound))
			return 0
		}
		fmt.Printf("%d containers\n", count(s))
		return 0
	}
}

// ExpectDenied runs the OpenHelper registered as "open" as nobody on the
// evidence directory dir, and checks that the runtime's root (its path in
// the evidence, root-only as runtimes make it) is reported as a permission
// error naming it, never as not found.
func ExpectDenied(t *testing.T, dir, root string) {
	t.Helper()
	Open(t, dir)
	out, err := Run(t, "open", dir)
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if want := "error: open " + root + ": permission denied\npermission: true\nnot found: false\n"; !strings.Contains(out, want) {
		t.Errorf("as nobody:\n%s\nwant:\n%s", out, want)
	}
}
