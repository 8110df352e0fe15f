package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

func TestListContainersExample(t *testing.T) {
	out, err := exec.Command("go", "run", ".", testfix.NodeArchive(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := `pod jobs/report-job-28374651-q7wzt (uid 9b8e7d6c-5a4f-4b3a-8c2d-1e0f9a8b7c6d, ip 10.244.1.3)
  container report f617888dbd39d44a9b551aa1d2562a8e3b6a4ea8b8706a48c3d608d6c52f183c [exited] image forge.local/library/busybox:1.35
    upper /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/8/fs
    lower /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/2/fs
pod shop/shop-frontend-7d9c8b6f5-x2k4q (uid 3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f, ip 10.244.1.2)
  container app 4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007 [running] image forge.local/shop/app:1.0
    upper /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs
    lower /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/3/fs
    lower /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/2/fs
no pod: container default/forge-default-cache [stopped] image forge.local/library/busybox:1.35
    upper /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/9/fs
    lower /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/4/fs
no pod: container default/forge-default-idle [created] image forge.local/library/busybox:1.35
    upper /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/10/fs
    lower /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/4/fs
`
	if strings.TrimSpace(string(out)) != strings.TrimSpace(want) {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}
