package ext4_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence/ext4"
)

// TestDirHash computes the htree hash of assorted names with every hash
// version and checks each against e2fsprogs (debugfs dx_hash): names
// around the 16- and 32-byte block boundaries of TEA and half-MD4, bytes
// above 0x7f (where the signed and unsigned variants part), the longest
// name, with the fixtures' seed and with the default one.
func TestDirHash(t *testing.T) {
	img := fixtureDir(t) + "/ext4-4k.img"
	names := []string{"a", "entry-00001", "dropper", strings.Repeat("x", 15), strings.Repeat("y", 16), strings.Repeat("z", 17),
		strings.Repeat("q", 31), strings.Repeat("r", 32), strings.Repeat("s", 33), strings.Repeat("n", 255),
		"caf\xc3\xa9-\xff\x80", "\xe9t\xe9-\xfe", "mixed.Name_123"}
	// By number: debugfs knows the unsigned variants by number only.
	algs := []string{"0", "1", "2", "3", "4", "5"}
	seeds := []string{"2f1c8a2e-5d3b-4c7a-8e9f-102030405060", "00000000-0000-0000-0000-000000000000"}
	line := regexp.MustCompile(`Hash of (.*) is 0x([0-9a-f]+) \(minor`)
	n := 0
	for _, seed := range seeds {
		raw, _ := hex.DecodeString(strings.ReplaceAll(seed, "-", ""))
		var s [4]uint32
		for i := range s {
			s[i] = binary.LittleEndian.Uint32(raw[4*i:])
		}
		for v, alg := range algs {
			var cmds []string
			for _, name := range names {
				cmds = append(cmds, fmt.Sprintf("dx_hash -h %s -s %s %s", alg, seed, name))
			}
			cmd := exec.Command("debugfs", "-f", "-", img)
			cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("debugfs: %v", err)
			}
			got := line.FindAllStringSubmatch(string(out), -1)
			if len(got) != len(names) {
				t.Fatalf("%s: debugfs printed %d hashes for %d names:\n%s", alg, len(got), len(names), out)
			}
			for i, name := range names {
				want := got[i][2]
				h, ok := ext4.DirHash([]byte(name), v, s)
				if !ok || fmt.Sprintf("%x", h) != strings.TrimLeft(want, "0") && fmt.Sprintf("%08x", h) != want {
					t.Errorf("%s seed %s %q: %08x, debugfs %s", alg, seed, name, h, want)
				}
				n++
			}
		}
	}
	if n != len(seeds)*len(algs)*len(names) {
		t.Errorf("compared %d hashes", n)
	}
}

// TestHtreeLookup looks every name of the 3000-entry directory up through
// its htree index alone, on each image (4 KiB and 1 KiB blocks, ext3), and
// finds the inode the listing gives.
func TestHtreeLookup(t *testing.T) {
	for _, img := range []string{"ext4-4k", "ext4-1k", "ext3"} {
		fsys, _ := openImage(t, img)
		ents, err := fsys.ReadDir("edge/big")
		if err != nil || len(ents) != 3001 {
			t.Fatalf("%s: %d entries, %v", img, len(ents), err)
		}
		for _, e := range ents {
			base := e.Name[len("edge/big/"):]
			ino, ok, err := fsys.DxLookup("edge/big", base)
			if err != nil || !ok || ino != e.Ino {
				t.Fatalf("%s: htree lookup of %s: %d %v %v, want %d", img, base, ino, ok, err, e.Ino)
			}
		}
		for _, missing := range []string{"entry-99999", "nope", "entry-0000"} {
			if _, ok, err := fsys.DxLookup("edge/big", missing); ok || err != nil {
				t.Errorf("%s: %s: found %v, %v", img, missing, ok, err)
			}
		}
	}
}
