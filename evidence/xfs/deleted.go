package xfs

import (
	"context"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// Deleted implements vfs.Recoverer.
func (f *FS) Deleted(ctx context.Context, dir string) ([]vfs.Deleted, error) {
	return nil, nil
}
