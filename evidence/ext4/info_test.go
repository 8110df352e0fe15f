package ext4_test

import (
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestInfoMatchesDumpe2fs compares the superblock facts Info reports with
// what dumpe2fs -h reads from the same image.
func TestInfoMatchesDumpe2fs(t *testing.T) {
	for _, name := range append(append([]string{}, fixtureImages...), replayImage) {
		fsys, img := openImage(t, name)
		out, err := exec.Command("dumpe2fs", "-h", img).Output()
		if err != nil {
			t.Fatalf("dumpe2fs: %v", err)
		}
		d := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				d[k] = strings.TrimSpace(v)
			}
		}
		num := func(k string) uint64 {
			n, err := strconv.ParseUint(d[k], 10, 64)
			if err != nil {
				t.Fatalf("%s: dumpe2fs %q: %q", name, k, d[k])
			}
			return n
		}
		info := fsys.Info()
		feats := strings.Fields(d["Filesystem features"])
		sort.Strings(feats)
		ours := append([]string(nil), info.Features...)
		sort.Strings(ours)
		checks := []struct {
			what      string
			got, want any
		}{
			{"label", info.Label, d["Filesystem volume name"]},
			{"uuid", info.UUID, d["Filesystem UUID"]},
			{"features", strings.Join(ours, " "), strings.Join(feats, " ")},
			{"blocks", info.Blocks, num("Block count")},
			{"block size", uint64(info.BlockSize), num("Block size")},
			{"inodes", uint64(info.Inodes), num("Inode count")},
			{"journal inode", uint64(info.JournalInode), num("Journal inode")},
		}
		if name != replayImage { // the replayed superblock is newer than the one on disk
			checks = append(checks, struct {
				what      string
				got, want any
			}{"free blocks", info.FreeBlocks, num("Free blocks")}, struct {
				what      string
				got, want any
			}{"free inodes", uint64(info.FreeInodes), num("Free inodes")})
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: %s: ours %v, dumpe2fs %v", name, c.what, c.got, c.want)
			}
		}
		if info.Clean != (name != replayImage) {
			t.Errorf("%s: clean %v", name, info.Clean)
		}
		if want := map[string]string{"ext3": "ext3"}[name]; want != "" && info.Type != want || want == "" && info.Type != "ext4" {
			t.Errorf("%s: type %s", name, info.Type)
		}
	}
}
