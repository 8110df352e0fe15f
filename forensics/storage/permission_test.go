package storage

import (
	"os"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/asuser"
	"github.com/deadnode/deadnode/internal/testfix"
)

func TestMain(m *testing.M) {
	asuser.Dispatch(map[string]func([]string) int{"open": asuser.OpenHelper(
		func(src evidence.Source) (*Store, error) { return Open(src, nil) }, ErrNotFound,
		func(s *Store) int { return len(s.Containers) })})
	os.Exit(m.Run())
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
