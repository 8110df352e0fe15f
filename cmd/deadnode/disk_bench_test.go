package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/internal/gennode"
	"github.com/deadnode/deadnode/internal/testfix"
)

// benchDiskDir holds the disk images of the speed benchmarks: a generated
// node (an image of 20,000 files / 256 MiB in 5 layers, an upper layer of
// 2,000 files / 128 MiB) written into a GPT disk as ext4 (mke2fs -d) and
// as XFS (mkfs.xfs, then the kernel's mount and cp -a). Made once, as
// root, and kept; delete the directory to make it again.
var benchDiskDir = filepath.Join(os.TempDir(), "deadnode-bench-disk")

var benchDiskOnce struct {
	sync.Once
	id  string
	err error
}

func benchDisk(b *testing.B) (dir, id string) {
	b.Helper()
	benchDiskOnce.Do(func() { benchDiskOnce.id, benchDiskOnce.err = makeBenchDisk(b) })
	if benchDiskOnce.err != nil {
		b.Fatal(benchDiskOnce.err)
	}
	return benchDiskDir, benchDiskOnce.id
}

func makeBenchDisk(b *testing.B) (string, error) {
	marker := filepath.Join(benchDiskDir, "READY")
	if id, err := os.ReadFile(marker); err == nil {
		return strings.TrimSpace(string(id)), nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("making the benchmark disks needs root (whiteouts, the XFS copy)")
	}
	os.RemoveAll(benchDiskDir)
	tree := filepath.Join(benchDiskDir, "tree")
	lay, err := gennode.DriftNode(tree, gennode.DriftShape{Layers: 5, ImageFiles: 20000, ImageBytes: 256 << 20, UpperFiles: 2000, UpperBytes: 128 << 20})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(tree, "etc"), 0o755); err != nil {
		return "", err
	}
	testfix.MakeDisk(b, benchDiskDir, "ext4.raw", "", []testfix.Part{{Name: "root", MiB: 1024, FS: "ext4", Label: "root", Tree: tree}})
	img := testfix.MakeDisk(b, benchDiskDir, "xfs.raw", "", []testfix.Part{{Name: "root", MiB: 1024}})
	sh := func(name string, args ...string) (string, error) {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s %v: %v: %s", name, args, err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	l, err := sh("losetup", "--show", "-f", "-o", fmt.Sprint(1<<20), "--sizelimit", fmt.Sprint(1<<30), img)
	if err != nil {
		return "", err
	}
	defer exec.Command("losetup", "-d", l).Run()
	if _, err := sh("mkfs.xfs", "-q", "-L", "root", l); err != nil {
		return "", err
	}
	mnt := filepath.Join(benchDiskDir, "mnt")
	os.MkdirAll(mnt, 0o755)
	if _, err := sh("mount", l, mnt); err != nil {
		return "", err
	}
	_, cpErr := sh("cp", "-a", tree+"/.", mnt+"/")
	if err := syscall.Unmount(mnt, 0); err != nil {
		return "", err
	}
	if cpErr != nil {
		return "", cpErr
	}
	os.RemoveAll(tree) // the disks hold it
	return lay.ContainerID, os.WriteFile(marker, []byte(lay.ContainerID+"\n"), 0o644)
}

// benchKernelMount mounts the benchmark disk's partition read-only for the
// life of the benchmark.
func benchKernelMount(b *testing.B, img, fstype string) string {
	b.Helper()
	out, err := exec.Command("losetup", "--show", "-f", "-r", "-o", fmt.Sprint(1<<20), "--sizelimit", fmt.Sprint(1<<30), img).CombinedOutput()
	if err != nil {
		b.Fatalf("losetup: %v %s", err, out)
	}
	l := strings.TrimSpace(string(out))
	mnt := b.TempDir()
	if out, err := exec.Command("mount", "-o", "ro", "-t", fstype, l, mnt).CombinedOutput(); err != nil {
		exec.Command("losetup", "-d", l).Run()
		b.Fatalf("mount: %v %s", err, out)
	}
	b.Cleanup(func() {
		syscall.Unmount(mnt, 0)
		exec.Command("losetup", "-d", l).Run()
	})
	return mnt
}

// benchDiskCommand runs one command per iteration on the disk image and,
// side by side, on the kernel's read-only mount of the same filesystem
// (page cache warm after the first iteration of each).
func benchDiskCommand(b *testing.B, args func(root, id string) []string) {
	dir, id := benchDisk(b)
	for _, fs := range []string{"ext4", "xfs"} {
		img := filepath.Join(dir, fs+".raw")
		b.Run(fs+"/image", func(b *testing.B) { benchRun(b, args(img, id)) })
		b.Run(fs+"/kernel-mount", func(b *testing.B) { benchRun(b, args(benchKernelMount(b, img, fs), id)) })
	}
}

func benchRun(b *testing.B, argv []string) {
	if code := run(argv, io.Discard, io.Discard); code != 0 { // warm the page cache
		b.Fatalf("%v: exit %d", argv, code)
	}
	b.ReportAllocs()
	for b.Loop() {
		if code := run(argv, io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}

// BenchmarkDiskDriftAll: `drift --all -o json` on a raw disk image against
// the kernel's mount of it (issue 12.6: within 1.5×).
func BenchmarkDiskDriftAll(b *testing.B) {
	benchDiskCommand(b, func(root, id string) []string { return []string{"--root", root, "drift", "--all", "-o", "json"} })
}

// BenchmarkDiskFsLsHash: `fs ls CONTAINER / -R --hash -o json`, likewise.
func BenchmarkDiskFsLsHash(b *testing.B) {
	benchDiskCommand(b, func(root, id string) []string {
		return []string{"--root", root, "fs", "ls", id, "/", "-R", "--hash", "-o", "json"}
	})
}
