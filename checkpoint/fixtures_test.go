package checkpoint

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"

	"github.com/deadnode/deadnode/internal/testfix"
)

func pids(cp *Checkpoint) []uint32 {
	var out []uint32
	for _, p := range cp.Processes {
		out = append(out, p.PID)
	}
	return out
}

// groundTruthPstree reads "-- pstree pids: [1,7,…]" and the per-task image
// names of "checkpoint/" from a podman ground-truth listing.
func groundTruthPodman(t *testing.T, file string) (tree []uint32, perTask []string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`checkpoint/((?:core|fs|ids|mm|pagemap)-[0-9]+\.img)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if s, ok := strings.CutPrefix(line, "-- pstree pids: "); ok {
			if err := json.Unmarshal([]byte(s), &tree); err != nil {
				t.Fatal(err)
			}
		}
		if m := re.FindStringSubmatch(line); m != nil {
			perTask = append(perTask, m[1])
		}
	}
	return tree, perTask
}

// podmanGroundTruth names the archive whose ground-truth listing applies:
// a derived archive holds the tar stream of the committed one it is made
// from (internal/testfix).
func podmanGroundTruth(name string) string {
	switch name {
	case "ckpt-leave-running.tar":
		return "ckpt-leave-running.tar.gz"
	case "ckpt.tar.gz":
		return "ckpt-default-zstd.tar.zst"
	}
	return name
}

func TestPodmanArchives(t *testing.T) {
	for _, name := range []string{"ckpt-leave-running.tar", "ckpt-leave-running.tar.gz", "ckpt-default-zstd.tar.zst", "ckpt.tar.gz"} {
		t.Run(name, func(t *testing.T) {
			tree, perTask := groundTruthPodman(t, testfix.Fixture(t, "podman-checkpoint", "ground-truth", podmanGroundTruth(name)+".txt"))
			cp, err := OpenPath(ctx, testfix.Fixture(t, "podman-checkpoint", name), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cp.Close()
			if got := pids(cp); !slices.Equal(got, tree) {
				t.Fatalf("pids %v, ground truth %v", got, tree)
			}
			// Stale images: exactly the per-task images of pids not in pstree.
			var wantStale []string
			for _, img := range perTask {
				n, _ := strconv.Atoi(strings.TrimSuffix(img[strings.LastIndex(img, "-")+1:], ".img"))
				if !slices.Contains(tree, uint32(n)) {
					wantStale = append(wantStale, img)
				}
			}
			sort.Strings(wantStale)
			got := slices.Clone(cp.StaleImages)
			sort.Strings(got)
			if !slices.Equal(got, wantStale) {
				t.Errorf("stale images %v, want %v", got, wantStale)
			}
			if strings.Contains(name, "zst") || name == "ckpt.tar.gz" {
				if !slices.Contains(cp.StaleImages, "pagemap-23.img") || slices.Contains(pids(cp), 23) {
					t.Errorf("pid 23 must be stale: %v", cp.StaleImages)
				}
			}
			if cp.Format != "podman" || cp.ImagesDir != "checkpoint" {
				t.Errorf("format %q dir %q", cp.Format, cp.ImagesDir)
			}
			c := cp.Container
			if c.ID != "a44f14ae919e952b90e66273cb43627333c5313bca51e84884e7aeecb11995c7" || c.Name != "forge-podman-app" ||
				c.Image != "forge.local/shop/app:1.0" || c.ImageID != "259696f574f3e9aafa0411eecec9cd90eda29444756aecab29b3f425f583d6a9" ||
				c.Pod != "shop-backend-5f6d7c8b9-abcde" || c.Namespace != "shop" || c.Engine != "podman" || c.Runtime != "runc" {
				t.Errorf("container %+v", c)
			}
			if c.CreatedAt.Format("2006-01-02T15:04:05.999999999Z07:00") != "2026-11-27T02:34:53.720428137Z" {
				t.Errorf("created %v", c.CreatedAt)
			}
			if c.CheckpointedAt.IsZero() || c.CheckpointedAt.Before(c.CreatedAt) {
				t.Errorf("checkpointed %v", c.CheckpointedAt)
			}
			if !slices.Equal(cp.DeletedFiles, []string{"/etc/motd"}) {
				t.Errorf("deleted files %v", cp.DeletedFiles)
			}
			if cp.Network == nil || !slices.Equal(cp.Network.IPs, []string{"10.88.0.4/16"}) {
				t.Errorf("network %+v", cp.Network)
			}
			if cp.RootfsDiff == nil || cp.RootfsDiff.Size != 1988096 || cp.RootfsDiff.Files != 5 {
				t.Errorf("rootfs diff %+v", cp.RootfsDiff)
			}
			want := map[uint32]struct {
				comm, exe, origin string
				ppid              uint32
			}{
				1:  {"server.sh", "/bin/busybox", OriginUnknown, 0},
				7:  {"httpd", "/bin/busybox", OriginUnknown, 1},
				9:  {"sleep", "/bin/busybox", OriginUnknown, 1},
				18: {"sh", "/bin/busybox", OriginUnknown, 1},
				19: {"dropper", "/usr/local/bin/dropper", OriginContainerDiff, 1},
				22: {"sleep", "/usr/local/bin/dropper", OriginContainerDiff, 19},
			}
			for _, p := range cp.Processes {
				if len(p.Errors) > 0 {
					t.Errorf("pid %d errors %v", p.PID, p.Errors)
				}
				if p.State != StateAlive || len(p.Threads) != 1 || p.Root != "/" {
					t.Errorf("pid %d state %s threads %d root %q", p.PID, p.State, len(p.Threads), p.Root)
				}
				if p.PID == 23 || p.PID == 24 {
					if p.Comm != "sleep" || p.PPID != 18 {
						t.Errorf("pid %d: %s ppid %d", p.PID, p.Comm, p.PPID)
					}
					continue
				}
				w := want[p.PID]
				if p.Comm != w.comm || p.Exe != w.exe || p.ExeOrigin != w.origin || p.PPID != w.ppid {
					t.Errorf("pid %d: comm %q exe %q origin %q ppid %d, want %+v", p.PID, p.Comm, p.Exe, p.ExeOrigin, p.PPID, w)
				}
			}
			httpd := cp.Process(7)
			if len(httpd.Sockets) != 1 || httpd.Sockets[0].Src != "127.0.0.1:8080" || httpd.Sockets[0].State != "LISTEN" || httpd.Sockets[0].FD != 3 {
				t.Errorf("httpd sockets %+v", httpd.Sockets)
			}
			if httpd.Cwd != "/app/www" {
				t.Errorf("httpd cwd %q", httpd.Cwd)
			}
			srv := cp.Process(1)
			var fds []string
			for _, f := range srv.FDs {
				fds = append(fds, fmt.Sprintf("%d:%s", f.FD, f.Path))
			}
			if strings.Join(fds, " ") != "0:/dev/null 1:pipe:[54645] 2:pipe:[54646] 10:/app/server.sh" {
				t.Errorf("server.sh fds %v", fds)
			}
			// The secret-bearing shell: its argv is in pages-4.img, which
			// is read in place for the plain tar and not kept otherwise.
			sh := cp.Process(18)
			if sh.PagesID != 4 {
				t.Errorf("pid 18 pages id %d", sh.PagesID)
			}
			if len(sh.Cmdline) != 3 || sh.Cmdline[0] != "sh" || !strings.HasPrefix(sh.Cmdline[2], "X=FORGE-SECRET-7f3a9c;") {
				t.Errorf("pid 18 cmdline %q", sh.Cmdline)
			}
			if !slices.Contains(sh.Environ, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
				t.Errorf("pid 18 environ %q", sh.Environ)
			}
			// Pages of compressed archives are not kept by default (their
			// command lines come from a second streaming pass).
			if _, err := cp.Pages(4); (err == nil) != (name == "ckpt-leave-running.tar") {
				t.Errorf("pages-4.img open: %v", err)
			}
		})
	}
}

func TestPodmanZstdWithPages(t *testing.T) {
	cp, err := OpenPath(ctx, testfix.Fixture(t, "podman-checkpoint", "ckpt-default-zstd.tar.zst"), &Options{Pages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	sh := cp.Process(18)
	if len(sh.Cmdline) != 3 || !strings.HasPrefix(sh.Cmdline[2], "X=FORGE-SECRET-7f3a9c;") {
		t.Fatalf("cmdline %q", sh.Cmdline)
	}
	// pages-4.img offset 69397 holds argv at 0x7ffd340c6f15 (ground truth).
	pm, err := cp.Pagemap(18)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := pm.Lookup(0x7ffd340c6f15)
	if !ok || e.Offset+int64(0x7ffd340c6f15-e.Vaddr) != 69397 {
		t.Fatalf("lookup %+v %v", e, ok)
	}
	f, err := cp.Pages(pm.PagesID)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 19)
	if _, err := f.ReadAt(buf, 43610); err != nil || string(buf) != "FORGE-SECRET-7f3a9c" {
		t.Fatalf("pages-4 @43610: %q %v", buf, err)
	}
	if _, err := cp.Pagemap(23); err == nil {
		t.Fatal("stale pid 23 must not have a pagemap")
	}
}

func TestExeOriginLookup(t *testing.T) {
	var asked []string
	cp, err := OpenPath(ctx, testfix.Fixture(t, "podman-checkpoint", "ckpt-leave-running.tar"), &Options{ExeOrigin: func(p string) string {
		asked = append(asked, p)
		if p == "/bin/busybox" {
			return OriginImage
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if cp.Process(1).ExeOrigin != OriginImage || cp.Process(19).ExeOrigin != OriginContainerDiff {
		t.Fatalf("origins %q %q", cp.Process(1).ExeOrigin, cp.Process(19).ExeOrigin)
	}
	if slices.Contains(asked, "/usr/local/bin/dropper") {
		t.Fatal("the lookup must not be asked about a path of the diff")
	}
}

// critJSON loads a crit decode --pretty file.
func critJSON(t *testing.T, name string) []map[string]any {
	b, err := os.ReadFile(testfix.Fixture(t, "criu-dump", "crit-json", name))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.Entries
}

func num(v any) uint64 {
	switch x := v.(type) {
	case float64:
		return uint64(x)
	case string:
		n, _ := strconv.ParseUint(strings.TrimPrefix(x, "0x"), 16, 64)
		return n
	}
	return 0
}

func TestCRIUDumpAgainstCrit(t *testing.T) {
	dir := testfix.Fixture(t, "criu-dump", "images")
	cp, err := OpenPath(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if cp.CRIUVersion != "4.1.1" || cp.ImageVersion != 2 || cp.CRIURunID != "be000668-7966-4dbe-9899-2b7f47ab29b3" || cp.Format != "criu" {
		t.Errorf("version %q img %d run %q format %q", cp.CRIUVersion, cp.ImageVersion, cp.CRIURunID, cp.Format)
	}
	if len(cp.Processes) != 1 {
		t.Fatalf("processes %v", pids(cp))
	}
	p := cp.Processes[0]
	pt := critJSON(t, "pstree.json")[0]
	if uint64(p.PID) != num(pt["pid"]) || uint64(p.PPID) != num(pt["ppid"]) || uint64(p.PGID) != num(pt["pgid"]) || uint64(p.SID) != num(pt["sid"]) {
		t.Errorf("pstree %+v vs %v", p, pt)
	}
	var tids []uint32
	for _, th := range p.Threads {
		tids = append(tids, th.TID)
	}
	if !slices.Equal(tids, []uint32{1360, 1362, 1363, 1364}) {
		t.Errorf("threads %v", tids)
	}
	core := critJSON(t, "core-1360.json")[0]
	tc := core["tc"].(map[string]any)
	creds := core["thread_core"].(map[string]any)["creds"].(map[string]any)
	if p.Comm != tc["comm"] || p.State != StateAlive || tc["task_state"] != "Alive" {
		t.Errorf("comm %q state %q", p.Comm, p.State)
	}
	capEff := creds["cap_eff"].([]any)
	if p.Caps.Effective != num(capEff[0])|num(capEff[1])<<32 || p.UID != uint32(num(creds["uid"])) || p.Loginuid != uint32(num(tc["loginuid"])) {
		t.Errorf("caps %x uid %d loginuid %d", p.Caps.Effective, p.UID, p.Loginuid)
	}
	for _, th := range p.Threads {
		c := critJSON(t, fmt.Sprintf("core-%d.json", th.TID))[0]
		regs := c["thread_info"].(map[string]any)["gpregs"].(map[string]any)
		if th.IP != num(regs["ip"]) || th.SP != num(regs["sp"]) || th.Comm != c["thread_core"].(map[string]any)["comm"] || th.Arch != "x86_64" {
			t.Errorf("thread %d ip %x sp %x comm %q", th.TID, th.IP, th.SP, th.Comm)
		}
	}
	// fds: fdinfo-2 x files.img.
	files := map[uint64]map[string]any{}
	for _, f := range critJSON(t, "files.json") {
		files[num(f["id"])] = f
	}
	fdinfo := critJSON(t, "fdinfo-2.json")
	if len(p.FDs) != len(fdinfo) {
		t.Fatalf("%d fds, crit %d", len(p.FDs), len(fdinfo))
	}
	for i, fi := range fdinfo {
		fd := p.FDs[i]
		f := files[num(fi["id"])]
		if uint64(fd.FD) != num(fi["fd"]) || uint64(fd.ID) != num(fi["id"]) || !strings.EqualFold(string(fd.Type), map[string]string{"REG": "reg", "PIPE": "pipe", "INETSK": "inet"}[fi["type"].(string)]) {
			t.Errorf("fd %+v vs %v", fd, fi)
		}
		if reg, ok := f["reg"].(map[string]any); ok {
			wantFlags := strings.ReplaceAll(reg["flags"].(string), " | ", "|")
			gotFlags := strings.TrimPrefix(strings.TrimPrefix(fd.Flags, "O_RDONLY|"), "O_RDONLY")
			if fd.Path != reg["name"] || gotFlags != wantFlags || fd.Pos != num(reg["pos"]) || uint64(fd.Mode) != num(reg["mode"]) {
				t.Errorf("fd %d: path %q flags %q pos %d mode %o; crit %v", fd.FD, fd.Path, fd.Flags, fd.Pos, fd.Mode, reg)
			}
		}
	}
	fd3, fd4 := p.FDs[3], p.FDs[4]
	if fd3.FD != 3 || !strings.HasSuffix(fd3.Path, "/forge-target.log") || fd3.Flags != "O_WRONLY|O_APPEND|O_LARGEFILE" {
		t.Errorf("fd 3 %+v", fd3)
	}
	if fd4.FD != 4 || fd4.Path != "/etc/hostname" || !strings.HasPrefix(fd4.Flags, "O_RDONLY") {
		t.Errorf("fd 4 %+v", fd4)
	}
	if len(p.Sockets) != 1 {
		t.Fatalf("sockets %+v", p.Sockets)
	}
	s := p.Sockets[0]
	if s.FD != 5 || s.Family != "inet" || s.Type != "stream" || s.Protocol != "tcp" || s.State != "LISTEN" || s.Src != "127.0.0.1:9099" || s.Inode != 58273 || s.Backlog != 8 {
		t.Errorf("socket %+v", s)
	}
	if p.FDs[7].FD != 251 || p.FDs[7].Path != "pipe:[58267]" {
		t.Errorf("fd 251 %+v", p.FDs[7])
	}
	fsj := critJSON(t, "fs-1360.json")[0]
	if p.Cwd != files[num(fsj["cwd_id"])]["reg"].(map[string]any)["name"] || p.Root != "/" || uint64(p.Umask) != num(fsj["umask"]) {
		t.Errorf("cwd %q root %q umask %o", p.Cwd, p.Root, p.Umask)
	}
	mmj := critJSON(t, "mm-1360.json")[0]
	if p.Exe != "/tmp/forge/criu-target/forge-target" || p.ArgStart != num(mmj["mm_arg_start"]) || p.EnvEnd != num(mmj["mm_env_end"]) || p.Brk != num(mmj["mm_brk"]) {
		t.Errorf("mm exe %q args %x env end %x", p.Exe, p.ArgStart, p.EnvEnd)
	}
	vmas := mmj["vmas"].([]any)
	if len(p.VMAs) != len(vmas) {
		t.Fatalf("%d vmas, crit %d", len(p.VMAs), len(vmas))
	}
	for i, v := range vmas {
		m := v.(map[string]any)
		if p.VMAs[i].Start != num(m["start"]) || p.VMAs[i].End != num(m["end"]) || p.VMAs[i].Pgoff != num(m["pgoff"]) {
			t.Errorf("vma %d %+v vs %v", i, p.VMAs[i], m)
		}
	}
	if p.VMAs[5].Kind != "heap" || p.VMAs[5].Start != 0x556851ae2000 || p.VMAs[0].File != p.Exe || p.VMAs[0].Perms != "r--p" {
		t.Errorf("vmas %+v %+v", p.VMAs[0], p.VMAs[5])
	}
	if len(p.Auxv) != len(mmj["mm_saved_auxv"].([]any)) {
		t.Errorf("auxv %d", len(p.Auxv))
	}
	// pagemap: crit shows nr_pages (CRIU 4.1 wrote compat_nr_pages).
	pm, err := cp.Pagemap(1360)
	if err != nil {
		t.Fatal(err)
	}
	pmj := critJSON(t, "pagemap-1360.json")
	if uint64(pm.PagesID) != num(pmj[0]["pages_id"]) || len(pm.Entries) != len(pmj)-1 {
		t.Fatalf("pagemap id %d entries %d, crit %d", pm.PagesID, len(pm.Entries), len(pmj)-1)
	}
	for i, e := range pm.Entries {
		m := pmj[i+1]
		wantFlags := uint32(0)
		for _, f := range strings.Split(m["flags"].(string), " | ") {
			wantFlags |= map[string]uint32{"PE_PARENT": PageParent, "PE_LAZY": PageLazy, "PE_PRESENT": PagePresent}[f]
		}
		if e.Vaddr != num(m["vaddr"]) || e.NrPages != num(m["nr_pages"]) || e.Flags != wantFlags {
			t.Errorf("pagemap %d %+v vs %v", i, e, m)
		}
	}
	if pm.PresentPages() != 36 || p.PageCount != 36 || cp.Stats.PagesWritten != 36 {
		t.Errorf("present pages %d, stats %d", pm.PresentPages(), cp.Stats.PagesWritten)
	}
	// GROUND_TRUTH: pages-1.img offset 12972 is heap vaddr 0x556851ae22ac.
	e, ok := pm.Lookup(0x556851ae22ac)
	if !ok || e.Offset+int64(0x556851ae22ac-e.Vaddr) != 12972 {
		t.Errorf("lookup %+v", e)
	}
	if !slices.Equal(p.Cmdline, []string{"./forge-target", "/tmp/forge/criu-target"}) {
		t.Errorf("cmdline %q", p.Cmdline)
	}
}

func TestContainerdImagePathDir(t *testing.T) {
	cp, err := OpenPath(ctx, testfix.Fixture(t, "containerd-node", "ctr-checkpoint-image-path", "images"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if got := pids(cp); !slices.Equal(got, []uint32{1, 8, 50, 101, 51, 103}) {
		t.Fatalf("pids %v", got)
	}
	checkAttacked(t, cp, 101, 103)
}

// checkAttacked asserts the attacked container's tree (GROUND_TRUTH §1).
func checkAttacked(t *testing.T, cp *Checkpoint, sleep1, sleep2 uint32) {
	t.Helper()
	type w struct {
		ppid       uint32
		comm, exe  string
		pagesID    uint32
		pgid       uint32
		socketDesc string
	}
	want := map[uint32]w{
		1:      {0, "server.sh", "/bin/busybox", 1, 1, ""},
		8:      {1, "httpd", "/bin/busybox", 2, 8, "127.0.0.1:8080"},
		50:     {1, "miner", "/tmp/.x/miner", 3, 50, ""},
		sleep1: {50, "sleep", "/tmp/.x/miner", 4, 50, ""},
		51:     {1, "nc", "/bin/busybox", 5, 51, "[::]:4444"},
		sleep2: {1, "sleep", "/bin/busybox", 6, 1, ""},
	}
	for _, p := range cp.Processes {
		x := want[p.PID]
		if p.PPID != x.ppid || p.Comm != x.comm || p.Exe != x.exe || p.PagesID != x.pagesID || p.PGID != x.pgid || len(p.Errors) > 0 {
			t.Errorf("pid %d: ppid %d comm %q exe %q pages %d pgid %d errors %v; want %+v", p.PID, p.PPID, p.Comm, p.Exe, p.PagesID, p.PGID, p.Errors, x)
		}
		var socks []string
		for _, s := range p.Sockets {
			socks = append(socks, s.Src)
			if s.State != "LISTEN" || s.Protocol != "tcp" || s.FD != 3 {
				t.Errorf("pid %d socket %+v", p.PID, s)
			}
		}
		if strings.Join(socks, ",") != x.socketDesc {
			t.Errorf("pid %d sockets %v, want %q", p.PID, socks, x.socketDesc)
		}
	}
	miner := cp.Process(50)
	if len(miner.Cmdline) != 4 || miner.Cmdline[0] != "busybox" || !strings.Contains(miner.Cmdline[3], "WALLET=FORGE-SECRET-7f3a9c") {
		t.Errorf("miner cmdline %q", miner.Cmdline)
	}
	if cp.Process(51).Sockets[0].Family != "inet6" {
		t.Errorf("nc socket %+v", cp.Process(51).Sockets[0])
	}
}

func TestContainerdNode(t *testing.T) {
	a, err := evidence.OpenArchive(context.Background(), testfix.Fixture(t, "containerd-node", "containerd-node.tar.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const content = "node/var/lib/containerd/io.containerd.content.v1.content"
	found, err := FindContainerd(ctx, a, content)
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, f := range found {
		digests = append(digests, f.Digest+" "+f.CriuTar+" "+f.Image)
	}
	want := []string{
		"sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96 sha256:e0887a740405e8e82b548ba2e2a06fa92d61b1da04314b768ed186adad0a5d05 forge.local/shop/app:1.0",
		"sha256:d3d78e7b9623e022a3a060efa46f163236ebf1bb9195f9ef3d9b7876b96e73b1 sha256:89fecbd6387b971748b7ef9d8e01fb663a5a5384f1973b2c114f5a055bade86b forge.local/library/busybox:1.35",
	}
	if !slices.Equal(digests, want) || found[0].CriuTarSize != 480256 {
		t.Fatalf("found %v", digests)
	}

	cp, err := OpenContainerd(ctx, a, content, "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96",
		&ContainerdOptions{ImageName: "containerd.io/checkpoint/4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007:11-27-2026-02:31:57"})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if got := pids(cp); !slices.Equal(got, []uint32{1, 8, 50, 91, 51, 93}) {
		t.Fatalf("pids %v", got)
	}
	checkAttacked(t, cp, 91, 93)
	c := cp.Container
	if c.ID != "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007" || c.Name != "app" || c.Pod != "shop-frontend-7d9c8b6f5-x2k4q" ||
		c.Namespace != "shop" || c.Image != "forge.local/shop/app:1.0" || c.Engine != "containerd" || cp.Format != "containerd" ||
		c.CheckpointedAt.Format("2006-01-02 15:04:05") != "2026-11-27 02:31:57" || c.CheckpointedAtSource != "image_name" {
		t.Errorf("container %+v", c)
	}
	if cp.Process(50).ExeOrigin != OriginContainerDiff || cp.Process(91).ExeOrigin != OriginContainerDiff || cp.Process(1).ExeOrigin != OriginUnknown {
		t.Errorf("origins %q %q", cp.Process(50).ExeOrigin, cp.Process(1).ExeOrigin)
	}
	if cp.RootfsDiff == nil || cp.RootfsDiff.Member != "sha256:42b65dc18ad7d0a1e2d79c437cfb324bdd4b8fd59d3cf4638c6b7ca7c5fac4cf" || cp.RootfsDiff.Size != 1065188 {
		t.Errorf("rw layer %+v", cp.RootfsDiff)
	}
	// The CRIU tar blob is read in place: pages-3 holds the secret at the
	// ground truth's offset.
	f, err := cp.Pages(3)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 19)
	if _, err := f.ReadAt(buf, 43659); err != nil || string(buf) != "FORGE-SECRET-7f3a9c" {
		t.Errorf("pages-3 @43659: %q %v", buf, err)
	}
	f.Close()

	cp2, err := OpenContainerd(ctx, a, content, "sha256:d3d78e7b9623e022a3a060efa46f163236ebf1bb9195f9ef3d9b7876b96e73b1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp2.Close()
	if got := pids(cp2); !slices.Equal(got, []uint32{1, 12}) || cp2.Processes[0].Comm != "sh" || cp2.Processes[1].Comm != "sleep" || cp2.Processes[1].PPID != 1 {
		t.Fatalf("default checkpoint %v", pids(cp2))
	}
	if cp2.Container.ID != "forge-default-cache" || cp2.Container.Image != "forge.local/library/busybox:1.35" || cp2.Container.Annotations["com.example.role"] != "cache" {
		t.Errorf("default container %+v", cp2.Container)
	}
	for _, fd := range cp2.Processes[1].FDs {
		if fd.Type != "pipe" {
			t.Errorf("sleep fd %+v", fd)
		}
	}
	if _, err := OpenContainerd(ctx, a, content, "sha256:013186c8be0daeb5aba409480e2295e5afd755816f6a562a2d11169983737912", nil); err == nil || !strings.Contains(err.Error(), "not a checkpoint image") {
		t.Errorf("an image manifest must be refused: %v", err)
	}
	if _, err := OpenContainerd(ctx, a, content, "sha256:../../etc", nil); err == nil {
		t.Error("a malformed digest must be refused")
	}
	// No kubelet checkpoints in this node.
	if l, err := Find(a, "node"); err != nil || len(l) != 0 {
		t.Errorf("find %v %v", l, err)
	}
}

func TestFindKubelet(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var", "lib", "kubelet", "checkpoints")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(testfix.Fixture(t, "podman-checkpoint", "ckpt-leave-running.tar"))
	if err != nil {
		t.Fatal(err)
	}
	name := "checkpoint-shop-backend-5f6d7c8b9-abcde_shop-app-2026-11-27T02:35:10Z.tar"
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoint-not-a-tar_x-y-2026-11-27T02:35:10Z.tar"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := evidence.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	l, err := Find(src, ".")
	if err != nil || len(l) != 1 {
		t.Fatalf("find %+v %v", l, err)
	}
	if l[0].Path != "var/lib/kubelet/checkpoints/"+name || l[0].Pod != "shop-backend-5f6d7c8b9-abcde" || l[0].NamespaceContainer != "shop-app" ||
		l[0].CheckpointedAt.Format("15:04:05") != "02:35:10" || l[0].Size != 2673152 {
		t.Fatalf("found %+v", l[0])
	}
	cp, err := OpenKubelet(ctx, src, l[0].Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if cp.Container.CheckpointedAtSource != "file_name" || cp.Container.CheckpointedAt.Format("15:04:05") != "02:35:10" || len(cp.Processes) != 7 {
		t.Fatalf("kubelet checkpoint %+v %v", cp.Container, pids(cp))
	}
}

// TestCmdlineOddOrder: a compressed archive whose pages images come before
// the mm and pagemap images still gets its command lines (the streaming
// collector misses them; the fallback pass reads them).
func TestCmdlineOddOrder(t *testing.T) {
	src, err := os.Open(testfix.Fixture(t, "podman-checkpoint", "ckpt-leave-running.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	type member struct {
		h    *tar.Header
		data []byte
	}
	var first, rest []member
	tr := tar.NewReader(src)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if strings.Contains(h.Name, "/pages-") {
			first = append(first, member{h, b})
		} else {
			rest = append(rest, member{h, b})
		}
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range append(first, rest...) {
		tw.WriteHeader(m.h)
		tw.Write(m.data)
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "odd.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cp, err := OpenPath(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	for _, pid := range []uint32{1, 7, 18, 19} {
		if len(cp.Process(pid).Cmdline) == 0 {
			t.Errorf("pid %d: no command line", pid)
		}
	}
	if got := cp.Process(7).Cmdline; strings.Join(got, " ") != "httpd -p 127.0.0.1:8080 -h /app/www" {
		t.Errorf("httpd %q", got)
	}
}

var ctx = context.Background()

// warnText joins warnings as lines, as they print.
func warnText(ws []evidence.Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.String())
		b.WriteByte('\n')
	}
	return b.String()
}
