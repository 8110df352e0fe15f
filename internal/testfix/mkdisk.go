package testfix

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Part is one partition of a disk MakeDisk writes: an ext4 filesystem
// made by mke2fs from a directory tree (no mount needed), swap made by
// mkswap, or nothing.
type Part struct {
	Name     string // GPT partition name (PARTLABEL)
	GUID     string // GPT unique partition GUID (PARTUUID); "" lets sgdisk pick
	TypeCode string // sgdisk type code ("8300", "8200", "ef00"); default 8300
	MiB      int    // size
	FS       string // "ext4", "swap" or "" (left empty)
	Label    string // filesystem label
	UUID     string // filesystem UUID
	Tree     string // ext4: the directory whose contents become the filesystem's (mke2fs -d)
}

// MakeDisk writes a GPT disk image into dir/name with the real tools
// (sgdisk, mke2fs -d, mkswap) and returns its path: partitions in order,
// each filesystem made in a file of its own and copied to its
// partition's offset. No mount and no root are needed. A tool missing
// fails the test (scripts/test.sh installs gdisk, e2fsprogs, util-linux).
func MakeDisk(t testing.TB, dir, name, diskGUID string, parts []Part) string {
	t.Helper()
	img := filepath.Join(dir, name)
	total := 2 // MiB: the GPT and its backup, with alignment
	for _, p := range parts {
		total += p.MiB
	}
	run := func(name string, args ...string) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(total)<<20); err != nil {
		t.Fatal(err)
	}
	args := []string{"-o"}
	if diskGUID != "" {
		args = append(args, "-U", diskGUID)
	}
	start := int64(2048)
	for i, p := range parts {
		n := strconv.Itoa(i + 1)
		code := p.TypeCode
		if code == "" {
			code = "8300"
		}
		sectors := int64(p.MiB) << 11
		args = append(args, "-n", fmt.Sprintf("%s:%d:%d", n, start, start+sectors-1), "-t", n+":"+code)
		if p.Name != "" {
			args = append(args, "-c", n+":"+p.Name)
		}
		if p.GUID != "" {
			args = append(args, "-u", n+":"+p.GUID)
		}
		start += sectors
	}
	run("sgdisk", append(args, img)...)
	start = 2048
	for i, p := range parts {
		fsImg := filepath.Join(dir, fmt.Sprintf(".%s.p%d", name, i+1))
		switch p.FS {
		case "ext4":
			a := []string{"-q", "-F", "-t", "ext4", "-E", "root_owner=0:0"}
			if p.Label != "" {
				a = append(a, "-L", p.Label)
			}
			if p.UUID != "" {
				a = append(a, "-U", p.UUID)
			}
			if p.Tree != "" {
				a = append(a, "-d", p.Tree)
			}
			run("mke2fs", append(a, fsImg, fmt.Sprintf("%dM", p.MiB))...)
		case "swap":
			if err := os.WriteFile(fsImg, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(fsImg, int64(p.MiB)<<20); err != nil {
				t.Fatal(err)
			}
			a := []string{}
			if p.Label != "" {
				a = append(a, "-L", p.Label)
			}
			if p.UUID != "" {
				a = append(a, "-U", p.UUID)
			}
			run("mkswap", append(a, fsImg)...)
		}
		if p.FS != "" {
			run("dd", "if="+fsImg, "of="+img, "bs=1M", fmt.Sprintf("seek=%d", start>>11), "conv=notrunc,sparse", "status=none")
			os.Remove(fsImg)
		}
		start += int64(p.MiB) << 11
	}
	return img
}
