package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// helperOpen opens the store of the evidence directory args[0] and
// prints what it got, for a test running it as nobody.
func helperOpen(args []string) int {
	src, err := evidence.OpenDir(args[0])
	if err != nil {
		fmt.Println("evidence:", err)
		return 1
	}
	defer src.Close()
	s, err := Open(src, nil)
	if err != nil {
		fmt.Printf("error: %v\npermission: %v\nnot found: %v\n", err, errors.Is(err, fs.ErrPermission), errors.Is(err, ErrNotFound))
		return 0
	}
	fmt.Printf("%d containers\n", len(s.Containers))
	return 0
}

// An examiner without root reading a node extracted by root: the
// graph root /var/lib/containers/storage is root-only, as the runtime makes it. That is a
// permission error naming it, never "not found" (issue 15).
func TestPermissionDeniedAsNobody(t *testing.T) {
	dir := testfix.Extract(t, testfix.Fixture(t, "runtimes-c1", "storage-root.tar.gz"))
	asuser.Open(t, dir)
	out, err := asuser.Run(t, "open", dir)
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(out, "error: open /var/lib/containers/storage: permission denied\npermission: true\nnot found: false\n") {
		t.Errorf("as nobody:\n%s", out)
	}
}
