package ext4_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/evidence/ext4"
)

// TestKernelEquivalence reads every fixture image with the pure-Go reader
// and through the kernel's own ext4 driver (a read-only loop mount, read
// through evidence.OpenDir: statx, readlink, llistxattr/lgetxattr, read)
// and requires the two to agree on every entry: lstat (type, mode, owner,
// size, links, inode, device numbers, a/m/c/birth times to the
// nanosecond), directory listings, symlink targets, extended attributes
// (trusted.* and POSIX ACLs included) and the sha256 of every file.
func TestKernelEquivalence(t *testing.T) {
	for _, name := range fixtureImages {
		t.Run(name, func(t *testing.T) {
			fsys, img := openImage(t, name)
			kern, err := evidence.OpenDir(mountImage(t, img))
			if err != nil {
				t.Fatal(err)
			}
			defer kern.Close()
			n := compareTrees(t, kern, fsys)
			t.Logf("%s: %d entries agree (kinds %v)", name, n.total, n.kinds)
			if n.total < 4000 || n.kinds["reg"] < 3100 || n.kinds["symlink"] < 540 || n.kinds["dir"] < 300 ||
				n.kinds["chr"] < 9 || n.kinds["fifo"] < 7 || n.kinds["blk"] < 1 || n.kinds["sock"] < 1 || n.xattrs < 20 {
				t.Errorf("the comparison covered too little: %d entries, %v, %d with xattrs", n.total, n.kinds, n.xattrs)
			}
			for _, w := range fsys.Warnings() {
				t.Errorf("warning on a healthy image: %s", w)
			}
		})
	}
}

type coverage struct {
	total  int
	kinds  map[string]int
	xattrs int
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeCharDevice != 0:
		return "chr"
	case m&fs.ModeDevice != 0:
		return "blk"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "sock"
	case m.IsRegular():
		return "reg"
	}
	return "other"
}

func compareTrees(t *testing.T, kern, ours evidence.Source) coverage {
	t.Helper()
	cov := coverage{kinds: map[string]int{}}
	fails := 0
	fail := func(format string, args ...any) {
		fails++
		if fails <= 40 {
			t.Errorf(format, args...)
		}
	}
	err := evidence.Walk(context.Background(), kern, ".", func(ks *evidence.Stat, err error) error {
		if err != nil {
			fail("kernel walk: %v", err)
			return nil
		}
		cov.total++
		cov.kinds[kind(ks.Mode)]++
		os, err := ours.Lstat(ks.Name)
		if err != nil {
			fail("lstat %s: %v", ks.Name, err)
			return nil
		}
		if !reflect.DeepEqual(ks, os) {
			fail("lstat %s:\nkernel %+v\nours   %+v", ks.Name, *ks, *os)
		}
		kx, kerr := kern.Xattrs(ks.Name)
		ox, oerr := ours.Xattrs(ks.Name)
		if kerr != nil || oerr != nil {
			fail("xattrs %s: kernel %v, ours %v", ks.Name, kerr, oerr)
		} else if !reflect.DeepEqual(kx, ox) {
			fail("xattrs %s:\nkernel %q\nours   %q", ks.Name, kx, ox)
		}
		if len(kx) > 0 {
			cov.xattrs++
		}
		switch {
		case ks.Mode.IsDir():
			kl, kerr := kern.ReadDir(ks.Name)
			ol, oerr := ours.ReadDir(ks.Name)
			if kerr != nil || oerr != nil {
				fail("readdir %s: kernel %v, ours %v", ks.Name, kerr, oerr)
			} else if !reflect.DeepEqual(kl, ol) {
				fail("readdir %s: kernel %d entries %v, ours %d %v", ks.Name, len(kl), names(kl), len(ol), names(ol))
			}
		case ks.Mode&fs.ModeSymlink != 0:
			kt, kerr := kern.Readlink(ks.Name)
			ot, oerr := ours.Readlink(ks.Name)
			if kerr != nil || oerr != nil || kt != ot {
				fail("readlink %s: kernel %q %v, ours %q %v", ks.Name, kt, kerr, ot, oerr)
			}
		case ks.Mode.IsRegular():
			kh, kerr := hashFile(kern, ks.Name)
			oh, oerr := hashFile(ours, ks.Name)
			if kerr != nil || oerr != nil || kh != oh {
				fail("content %s: kernel %s %v, ours %s %v", ks.Name, kh, kerr, oh, oerr)
			}
		default:
			if _, err := ours.Open(ks.Name); err == nil {
				fail("open %s (%v) succeeded", ks.Name, ks.Mode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fails > 40 {
		t.Errorf("... and %d more differences", fails-40)
	}
	return cov
}

func names(l []*evidence.Stat) []string {
	var out []string
	for i, s := range l {
		if i == 8 {
			out = append(out, fmt.Sprintf("... %d more", len(l)-8))
			break
		}
		out = append(out, s.Name)
	}
	return out
}

func hashFile(src evidence.Source, name string) (string, error) {
	f, err := src.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", err
	}
	if n != f.Size() {
		return "", fmt.Errorf("read %d of %d bytes", n, f.Size())
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// TestEncryptedDirectory reads an image with an fscrypt directory made by
// e4crypt: the directory itself is an ordinary entry (as the kernel
// shows it), its names and content are refused with ErrEncrypted, and the
// rest of the filesystem reads on.
func TestEncryptedDirectory(t *testing.T) {
	fsys, img := openImage(t, "ext4-encrypt")
	kern, err := evidence.OpenDir(mountImage(t, img))
	if err != nil {
		t.Fatal(err)
	}
	defer kern.Close()
	for _, name := range []string{".", "secret", "plain"} {
		ks, kerr := kern.Lstat(name)
		os, oerr := fsys.Lstat(name)
		if kerr != nil || oerr != nil || !reflect.DeepEqual(ks, os) {
			t.Errorf("lstat %s: kernel %+v %v, ours %+v %v", name, ks, kerr, os, oerr)
		}
		kx, _ := kern.Xattrs(name)
		ox, err := fsys.Xattrs(name)
		if err != nil || !reflect.DeepEqual(kx, ox) {
			t.Errorf("xattrs %s: kernel %q, ours %q %v", name, kx, ox, err)
		}
	}
	if _, err := fsys.ReadDir("secret"); !errors.Is(err, ext4.ErrEncrypted) {
		t.Errorf("readdir of the encrypted directory: %v", err)
	}
	kl, err := kern.ReadDir("secret")
	if err != nil || len(kl) != 3 {
		t.Errorf("the kernel lists %d (encrypted) names: %v", len(kl), err)
	}
	for _, e := range kl {
		if _, err := fsys.Lstat(e.Name); !errors.Is(err, ext4.ErrEncrypted) {
			t.Errorf("lstat %s: %v", e.Name, err)
		}
	}
	kh, _ := hashFile(kern, "plain")
	if oh, err := hashFile(fsys, "plain"); err != nil || oh != kh {
		t.Errorf("plain: %s %v, kernel %s", oh, err, kh)
	}
}
