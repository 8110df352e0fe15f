package storage

import (
	"os"
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
	asuser.ExpectDenied(t, testfix.Extract(t, testfix.Fixture(t, "runtimes-c1", "storage-root.tar.gz")), "/var/lib/containers/storage")
}
