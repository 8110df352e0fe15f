package ext4

import (
	"context"

	"github.com/deadnode/deadnode/evidence/vfs"
)

func (f *FS) Deleted(ctx context.Context, dir string) ([]vfs.Deleted, error) { return nil, nil }
