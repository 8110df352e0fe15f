package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

func TestMountCommand(t *testing.T) {
	dir := testfix.Extract(t, testfix.NodeArchive(t))
	mnt := t.TempDir()
	_, stderr, code := runCLI(t, "--root", dir, "mount", "shop/shop-frontend-7d9c8b6f5-x2k4q/app", mnt)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	defer syscall.Unmount(mnt, syscall.MNT_DETACH)
	b, err := os.ReadFile(filepath.Join(mnt, "etc/passwd"))
	if err != nil || !strings.Contains(string(b), "sysupd:x:0:0") {
		t.Errorf("passwd through the mount: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "app/config.ini")); !os.IsNotExist(err) {
		t.Errorf("the whiteout of /app/config.ini is not honoured: %v", err)
	}
	if _, _, code := runCLI(t, "--root", testfix.NodeArchive(t), "mount", "4b324cab", t.TempDir()); code != 1 {
		t.Errorf("mount from an archive: exit %d, want 1", code)
	}
}
