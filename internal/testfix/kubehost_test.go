package testfix

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// The rebuilt host holds the ground truth's planted files with their
// recorded digests, and the node collection's files beside them.
func TestKubeHostRebuilt(t *testing.T) {
	dir := KubeHost(t)
	b, err := os.ReadFile(filepath.Join(dir, "var/lib/kubelet/pods/3f1c2a9e-8b7d-4e21-9c55-1a2b3c4d5e6f/volumes/kubernetes.io~empty-dir/scratch/.cache/sync.sh"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != "1304b838da98ab1af297a69b7ebd7cae3caeed0aec3cd151136684a7c259859d" {
		t.Errorf("emptyDir drop sha256 %s", got)
	}
	for _, p := range []string{
		"etc/kubernetes/manifests/log-shipper.yaml",
		"var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db",
		"var/lib/dpkg/info/curl.md5sums",
		"usr/bin/curl",
	} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "usr/bin/perl")); !os.IsNotExist(err) {
		t.Errorf("perl (a dropped package) is present: %v", err)
	}
	if st, err := os.Stat(KubeHostArchive(t)); err != nil || st.Size() < 1<<20 {
		t.Fatalf("archive: %v", err)
	}
}
