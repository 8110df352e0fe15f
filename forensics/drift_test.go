package forensics

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
	"github.com/deadnode/deadnode/overlay"
)

func collect(t *testing.T, ds *DriftSource, opt DriftOptions) map[string]DriftEntry {
	t.Helper()
	out := map[string]DriftEntry{}
	all, w, err := DriftAll(context.Background(), ds, &opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if _, dup := out[f.Path]; dup {
			t.Errorf("%s reported twice", f.Path)
		}
		out[f.Path] = f
	}
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	return out
}

type row struct {
	change, typ, exec string
	flags             []string
	identical         string
}

func checkRows(t *testing.T, got map[string]DriftEntry, want map[string]row) {
	t.Helper()
	var paths []string
	for p := range got {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if len(got) != len(want) {
		t.Errorf("%d findings %v, want %d", len(got), paths, len(want))
	}
	for p, w := range want {
		f, ok := got[p]
		if !ok {
			t.Errorf("%s: no finding", p)
			continue
		}
		if f.Change != w.change || f.Type != w.typ || f.ExecKind != w.exec || f.IdenticalTo != w.identical {
			t.Errorf("%s: %s %s exec=%q identical=%q, want %s %s exec=%q identical=%q", p, f.Change, f.Type, f.ExecKind, f.IdenticalTo, w.change, w.typ, w.exec, w.identical)
		}
		if w.flags == nil {
			w.flags = []string{}
		}
		if !reflect.DeepEqual(f.Flags, w.flags) {
			t.Errorf("%s: flags %v, want %v", p, f.Flags, w.flags)
		}
	}
}

const busyboxSHA = "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6"

// The drift table of GROUND_TRUTH.md for the attacked container, row by row.
var attackedRows = map[string]row{
	"/tmp/.x":                    {ChangeAdded, "dir", "", []string{classify.FlagHidden, classify.FlagVolatile}, ""},
	"/tmp/.x/miner":              {ChangeAdded, "file", classify.ExecELF, []string{classify.FlagHidden, classify.FlagVolatile}, "/bin/busybox"},
	"/usr/local/bin/backdoor.sh": {ChangeAdded, "file", classify.ExecScript, nil, ""},
	"/var/tmp/.kworker":          {ChangeAdded, "file", classify.ExecScript, []string{classify.FlagHidden, classify.FlagVolatile}, ""},
	"/etc/passwd":                {ChangeModified, "file", "", []string{classify.FlagPersistence}, ""},
	"/etc/motd":                  {ChangeDeleted, "whiteout", "", nil, ""},
	"/app/config.ini":            {ChangeDeleted, "whiteout", "", nil, ""},
	"/root/.loot":                {ChangeAdded, "dir", "", []string{classify.FlagHidden}, ""},
	"/root/.loot/creds.txt":      {ChangeAdded, "file", "", []string{classify.FlagHidden}, ""},
	"/tmp/heartbeat":             {ChangeAdded, "file", "", []string{classify.FlagVolatile}, ""},
	"/tmp/server.log":            {ChangeAdded, "file", "", []string{classify.FlagVolatile}, ""},
	"/etc/hosts":                 {ChangeAdded, "file", classify.ExecBit, []string{classify.FlagBenign}, ""},
	"/etc/hostname":              {ChangeAdded, "file", classify.ExecBit, []string{classify.FlagBenign}, ""},
	"/etc/resolv.conf":           {ChangeAdded, "file", classify.ExecBit, []string{classify.FlagBenign}, ""},
}

func fixtureNode(t *testing.T) *Node {
	t.Helper()
	n, err := OpenPath(context.Background(), testfix.NodeArchive(t), &Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func containerDrift(t *testing.T, n *Node, ref string) map[string]DriftEntry {
	t.Helper()
	c, err := n.FindContainer(ref)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := n.ContainerDrift(c)
	if err != nil {
		t.Fatal(err)
	}
	return collect(t, ds, DriftOptions{})
}

func TestDriftAttackedContainer(t *testing.T) {
	n := fixtureNode(t)
	got := containerDrift(t, n, "shop/shop-frontend-7d9c8b6f5-x2k4q/app")
	checkRows(t, got, attackedRows)
	miner := got["/tmp/.x/miner"]
	if miner.SHA256 != busyboxSHA || miner.ELF == nil || miner.ELF.Machine != "EM_X86_64" || miner.ELF.Type != "exec" || !miner.ELF.Static || miner.Mode != "0755" {
		t.Errorf("miner: %+v %+v", miner, miner.ELF)
	}
	if miner.EvidencePath != "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs/tmp/.x/miner" || miner.Pod != "shop/shop-frontend-7d9c8b6f5-x2k4q" || miner.ContainerName != "app" {
		t.Errorf("miner provenance: %s %s %s", miner.EvidencePath, miner.Pod, miner.ContainerName)
	}
	pw := got["/etc/passwd"]
	if !strings.HasPrefix(pw.SHA256, "8149bd48") || pw.LowerSHA256 == "" || pw.LowerSHA256 == pw.SHA256 {
		t.Errorf("passwd: %s vs %s", pw.SHA256, pw.LowerSHA256)
	}
	if got["/usr/local/bin/backdoor.sh"].Interpreter != "/bin/sh" || got["/etc/motd"].LowerType != "file" || got["/app/config.ini"].LowerSHA256 == "" {
		t.Errorf("backdoor %+v motd %+v", got["/usr/local/bin/backdoor.sh"], got["/etc/motd"])
	}
	if got["/tmp/server.log"].Mtime.IsZero() || got["/tmp/server.log"].Atime.IsZero() {
		t.Errorf("times missing: %+v", got["/tmp/server.log"])
	}
}

func TestDriftOtherContainers(t *testing.T) {
	n := fixtureNode(t)
	checkRows(t, containerDrift(t, n, "jobs/report-job-28374651-q7wzt/report"), map[string]row{
		"/tmp/report.txt":         {ChangeAdded, "file", "", []string{classify.FlagVolatile}, ""},
		"/var/tmp/out":            {ChangeAdded, "dir", "", []string{classify.FlagVolatile}, ""},
		"/var/tmp/out/report.txt": {ChangeAdded, "file", "", []string{classify.FlagVolatile}, ""},
		"/etc/hosts":              {ChangeAdded, "file", classify.ExecBit, []string{classify.FlagBenign}, ""},
		"/etc/hostname":           {ChangeAdded, "file", classify.ExecBit, []string{classify.FlagBenign}, ""},
		"/etc/resolv.conf":        {ChangeAdded, "file", classify.ExecBit, []string{classify.FlagBenign}, ""},
	})
	checkRows(t, containerDrift(t, n, "forge-default-cache"), map[string]row{
		"/data":           {ChangeAdded, "dir", "", nil, ""},
		"/data/c.txt":     {ChangeAdded, "file", "", nil, ""},
		"/tmp/started":    {ChangeAdded, "file", "", []string{classify.FlagVolatile}, ""},
		"/etc/os-release": {ChangeDeleted, "whiteout", "", nil, ""},
	})
	if len(containerDrift(t, n, "forge-default-idle")) != 0 {
		t.Error("the never-started container has drift")
	}
}

func TestDriftContainerdCheckpointImage(t *testing.T) {
	n := fixtureNode(t)
	im, err := n.FindImage("k8s.io", "sha256:59633960fda9a188befcefff9d80fd7afe76cbe3540012e71f55835d04873a96")
	if err != nil {
		t.Fatal(err)
	}
	ds, cl, err := n.CheckpointImageDrift(context.Background(), im)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if ds.Container.ID != "4b324cab25486a33822d1672700ac0cdad1d9d183089b7126b778bc3343c4007" || len(ds.Lowers) != 2 {
		t.Errorf("checkpoint container %s lowers %d", ds.Container.ID, len(ds.Lowers))
	}
	got := collect(t, ds, DriftOptions{})
	for p, w := range map[string]row{
		"/tmp/.x/miner":         {ChangeAdded, "file", classify.ExecELF, []string{classify.FlagHidden, classify.FlagVolatile}, "/bin/busybox"},
		"/etc/motd":             {ChangeDeleted, "whiteout", "", nil, ""},
		"/app/config.ini":       {ChangeDeleted, "whiteout", "", nil, ""},
		"/root/.loot/creds.txt": {ChangeAdded, "file", "", []string{classify.FlagHidden}, ""},
		"/etc/passwd":           {ChangeModified, "file", "", []string{classify.FlagPersistence}, ""},
	} {
		f := got[p]
		if f.Change != w.change || f.Type != w.typ || f.ExecKind != w.exec || f.IdenticalTo != w.identical || !reflect.DeepEqual(f.Flags, nonNilFlags(w.flags)) {
			t.Errorf("%s: %+v", p, f)
		}
	}
	if !strings.HasPrefix(got["/tmp/.x/miner"].EvidencePath, "checkpoint containerd.io/checkpoint/4b324cab") {
		t.Errorf("evidence path %q", got["/tmp/.x/miner"].EvidencePath)
	}
}

func nonNilFlags(f []string) []string {
	if f == nil {
		return []string{}
	}
	return f
}

func TestDriftPodmanCheckpoints(t *testing.T) {
	for _, name := range []string{"ckpt-leave-running.tar", "ckpt-leave-running.tar.gz", "ckpt-default-zstd.tar.zst", "ckpt.tar.gz"} {
		t.Run(name, func(t *testing.T) {
			ds, cl, err := CheckpointArchiveDrift(context.Background(), testfix.Fixture(t, "podman-checkpoint", name), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if ds.Container.ID != "a44f14ae919e952b90e66273cb43627333c5313bca51e84884e7aeecb11995c7" {
				t.Errorf("container %q", ds.Container.ID)
			}
			got := collect(t, ds, DriftOptions{})
			want := map[string]row{
				"/usr/local/bin/dropper": {ChangeAddedOrModified, "file", classify.ExecELF, nil, ""},
				"/etc/passwd":            {ChangeAddedOrModified, "file", "", []string{classify.FlagPersistence}, ""},
				"/tmp/note":              {ChangeAddedOrModified, "file", "", []string{classify.FlagVolatile}, ""},
				"/tmp/heartbeat":         {ChangeAddedOrModified, "file", "", []string{classify.FlagVolatile}, ""},
				"/tmp/server.log":        {ChangeAddedOrModified, "file", "", []string{classify.FlagVolatile}, ""},
				"/etc/motd":              {ChangeDeleted, "whiteout", "", nil, ""},
			}
			for p, w := range want {
				f := got[p]
				if f.Change != w.change || f.Type != w.typ || f.ExecKind != w.exec || !reflect.DeepEqual(f.Flags, nonNilFlags(w.flags)) {
					t.Errorf("%s: %+v", p, f)
				}
			}
			if got["/usr/local/bin/dropper"].SHA256 != busyboxSHA || got["/etc/motd"].Note != "listed in deleted.files; image not at hand" {
				t.Errorf("dropper %s motd note %q", got["/usr/local/bin/dropper"].SHA256, got["/etc/motd"].Note)
			}
			for p, f := range got {
				if _, ok := want[p]; !ok && f.Type != "dir" {
					t.Errorf("unexpected finding %s %+v", p, f)
				}
			}
		})
	}
}

// synthetic builds an image of two lower layers and an upper layer with one
// entry of every change class, exec kind and flag.
func synthetic(t *testing.T) (string, *DriftSource) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root for whiteouts and trusted.overlay xattrs (CI runs as root)")
	}
	root := t.TempDir()
	l1, l2, up := filepath.Join(root, "l1"), filepath.Join(root, "l2"), filepath.Join(root, "up")
	w := func(p, s string, mode os.FileMode) {
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(s), mode))
		must(t, os.Chmod(p, mode))
	}
	lsBin, err := os.ReadFile("/usr/bin/ls")
	must(t, err)
	libc, err := filepath.EvalSymlinks("/lib/x86_64-linux-gnu/libm.so.6")
	must(t, err)
	libcBytes, err := os.ReadFile(libc)
	must(t, err)
	// Lower layers.
	w(l1+"/bin/tool", "#!/bin/sh\necho tool\n", 0o755)
	w(l1+"/etc/config", "a=1\n", 0o644)
	w(l1+"/etc/same", "same\n", 0o644)
	w(l1+"/etc/chmodded", "keep\n", 0o644)
	w(l1+"/opt/gone/a", "a", 0o644)
	w(l1+"/opt/gone/b/c", "c", 0o644)
	w(l1+"/var/cache/x", "x", 0o644)
	w(l1+"/var/cache/y", "y", 0o644)
	w(l1+"/srv/link-target", "t", 0o644)
	must(t, os.Symlink("link-target", l1+"/srv/lnk"))
	w(l1+"/srv/becomes-link", "file", 0o644)
	w(l2+"/usr/bin/ls-orig", string(lsBin), 0o755)
	w(l2+"/etc/meta", "metacopy data\n", 0o644)
	// Upper layer.
	w(up+"/etc/config", "a=2\n", 0o644)    // modified
	w(up+"/tmp/stolen", "same\n", 0o644)   // a data copy of /etc/same
	w(up+"/etc/same", "same\n", 0o644)     // copy-up, identical: metadata_only (mtime)
	w(up+"/etc/chmodded", "keep\n", 0o600) // metadata_only (mode)
	must(t, os.MkdirAll(up+"/opt", 0o755))
	must(t, syscall.Mknod(up+"/opt/gone", syscall.S_IFCHR, 0)) // deleted_dir
	must(t, os.MkdirAll(up+"/var/cache", 0o755))
	must(t, syscall.Setxattr(up+"/var/cache", "trusted.overlay.opaque", []byte("y"), 0)) // opaque_dir
	w(up+"/var/cache/new", "n", 0o644)
	must(t, os.MkdirAll(up+"/srv", 0o755))
	must(t, os.Symlink("/etc/passwd", up+"/srv/lnk"))          // modified link
	must(t, os.Symlink("/etc/shadow", up+"/srv/becomes-link")) // type_changed
	w(up+"/usr/bin/ls-copy", string(lsBin), 0o755)             // elf dyn, identical_to
	w(up+"/usr/lib/libevil.so", string(libcBytes), 0o755)      // shared library
	w(up+"/usr/local/bin/suid", "#!/usr/bin/env python3\n", os.ModeSetuid|0o755)
	w(up+"/usr/local/bin/sgid", "sgid-bin", os.ModeSetgid|0o711) // exec_bit + setgid
	w(up+"/usr/local/bin/cap", "cap-bin", 0o755)
	must(t, syscall.Setxattr(up+"/usr/local/bin/cap", "security.capability", []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0))
	w(up+"/etc/cron.d/job", "* * * * * root /tmp/x\n", 0o644)
	w(up+"/root/.ssh/authorized_keys", "ssh-ed25519 AAAA\n", 0o600)
	w(up+"/dev/shm/drop", "z", 0o777)
	w(up+"/dev/termination-log", "", 0o666)
	w(up+"/etc/xwh-dir/placeholder", "", 0o644)
	must(t, syscall.Setxattr(up+"/etc/xwh-dir", "trusted.overlay.opaque", []byte("x"), 0))
	w(up+"/etc/meta", "", 0o600) // metacopy: data stays in the lower file
	must(t, os.Truncate(up+"/etc/meta", 14))
	must(t, syscall.Setxattr(up+"/etc/meta", "trusted.overlay.metacopy", nil, 0))
	w(up+"/bin/tool", "", 0o755) // xattr whiteout inside an opaque=x dir
	must(t, syscall.Setxattr(up+"/bin", "trusted.overlay.opaque", []byte("x"), 0))
	must(t, syscall.Setxattr(up+"/bin/tool", "trusted.overlay.whiteout", nil, 0))
	src, err := evidence.OpenDir(root)
	must(t, err)
	t.Cleanup(func() { src.Close() })
	lay := func(d string) overlay.Layer {
		return overlay.Layer{Source: src, Dir: d, Kind: overlay.LayerDir, Name: d}
	}
	return root, &DriftSource{
		Container: model.Container{Runtime: "containerd", ID: "synthetic", Namespace: "test"},
		Upper:     lay("up"),
		Lowers:    []overlay.Layer{lay("l2"), lay("l1")},
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDriftEveryClass(t *testing.T) {
	_, ds := synthetic(t)
	got := collect(t, ds, DriftOptions{})
	defer func() {
		if t.Failed() {
			for p, f := range got {
				t.Logf("%s %s %s %s %v %q", p, f.Change, f.Type, f.ExecKind, f.Flags, f.IdenticalTo)
			}
		}
	}()
	checkRows(t, got, map[string]row{
		"/etc/config":                {ChangeModified, "file", "", nil, ""},
		"/etc/same":                  {ChangeMetadataOnly, "file", "", nil, ""},
		"/etc/chmodded":              {ChangeMetadataOnly, "file", "", nil, ""},
		"/opt/gone":                  {ChangeDeletedDir, "whiteout", "", nil, ""},
		"/var/cache":                 {ChangeOpaqueDir, "dir", "", nil, ""},
		"/var/cache/new":             {ChangeAdded, "file", "", nil, ""},
		"/srv/lnk":                   {ChangeModified, "symlink", "", nil, ""},
		"/srv/becomes-link":          {ChangeTypeChanged, "symlink", "", nil, ""},
		"/usr/bin/ls-copy":           {ChangeAdded, "file", classify.ExecELF, nil, "/usr/bin/ls-orig"},
		"/usr/lib/libevil.so":        {ChangeAdded, "file", classify.ExecLibrary, nil, ""},
		"/usr/local/bin/suid":        {ChangeAdded, "file", classify.ExecScript, []string{classify.FlagSetuid}, ""},
		"/usr/local/bin/sgid":        {ChangeAdded, "file", classify.ExecBit, []string{classify.FlagSetgid}, ""},
		"/usr/local/bin/cap":         {ChangeAdded, "file", classify.ExecBit, []string{classify.FlagCapability}, ""},
		"/etc/cron.d":                {ChangeAdded, "dir", "", []string{classify.FlagPersistence}, ""},
		"/etc/cron.d/job":            {ChangeAdded, "file", "", []string{classify.FlagPersistence}, ""},
		"/root":                      {ChangeAdded, "dir", "", nil, ""},
		"/root/.ssh":                 {ChangeAdded, "dir", "", []string{classify.FlagHidden}, ""},
		"/root/.ssh/authorized_keys": {ChangeAdded, "file", "", []string{classify.FlagHidden, classify.FlagPersistence}, ""},
		"/dev":                       {ChangeAdded, "dir", "", nil, ""},
		"/dev/shm":                   {ChangeAdded, "dir", "", []string{classify.FlagVolatile}, ""},
		"/dev/shm/drop":              {ChangeAdded, "file", classify.ExecBit, []string{classify.FlagVolatile, classify.FlagWorldWrite}, ""},
		"/dev/termination-log":       {ChangeAdded, "file", "", []string{classify.FlagWorldWrite, classify.FlagBenign}, ""},
		"/etc/xwh-dir":               {ChangeAdded, "dir", "", nil, ""},
		"/etc/xwh-dir/placeholder":   {ChangeAdded, "file", "", nil, ""},
		"/etc/meta":                  {ChangeMetadataOnly, "file", "", nil, ""},
		"/bin/tool":                  {ChangeDeleted, "whiteout", "", nil, ""},
		"/usr/lib":                   {ChangeAdded, "dir", "", nil, ""},
		"/tmp":                       {ChangeAdded, "dir", "", []string{classify.FlagVolatile}, ""},
		"/tmp/stolen":                {ChangeAdded, "file", "", []string{classify.FlagVolatile}, ""},
		"/usr/local":                 {ChangeAdded, "dir", "", nil, ""},
		"/usr/local/bin":             {ChangeAdded, "dir", "", nil, ""},
	})
	if f := got["/opt/gone"]; f.Hides != 3 || f.LowerType != "dir" {
		t.Errorf("deleted_dir hides %d (%s), want 3", f.Hides, f.LowerType)
	}
	if f := got["/var/cache"]; f.Hides != 2 {
		t.Errorf("opaque_dir hides %d, want 2", f.Hides)
	}
	if f := got["/etc/chmodded"]; len(f.MetadataChanged) == 0 || f.MetadataChanged[0] != "mode" || f.SHA256 != f.LowerSHA256 {
		t.Errorf("chmodded: %+v", f)
	}
	if f := got["/etc/meta"]; f.SHA256 != f.LowerSHA256 || f.SHA256 == "" || !strings.Contains(f.Note, "metacopy") {
		t.Errorf("metacopy: %+v", f)
	}
	if f := got["/srv/becomes-link"]; f.LowerType != "file" || f.LinkTarget != "/etc/shadow" {
		t.Errorf("type_changed: %+v", f)
	}
	if f := got["/srv/lnk"]; f.LinkTarget != "/etc/passwd" || f.LowerLinkTarget != "link-target" {
		t.Errorf("link: %+v", f)
	}
	if f := got["/usr/bin/ls-copy"]; f.ELF == nil || f.ELF.Type != "dyn" || f.ELF.Static || f.ELF.Interp != "/lib64/ld-linux-x86-64.so.2" {
		t.Errorf("ls: %+v", f.ELF)
	}
	if f := got["/usr/lib/libevil.so"]; f.ELF == nil || !f.ELF.SharedLib {
		t.Errorf("lib: %+v", f.ELF)
	}
	if f := got["/usr/local/bin/suid"]; f.Interpreter != "/usr/bin/env python3" || f.Mode != "4755" {
		t.Errorf("suid: %+v", f)
	}
	// Data files are looked up in the image only when asked.
	if f := collect(t, ds, DriftOptions{IdenticalAll: true})["/tmp/stolen"]; f.IdenticalTo != "/etc/same" {
		t.Errorf("identical-all: %+v", f)
	}
	// Without hashing: no sums, no identical_to, classes still right.
	nh := collect(t, ds, DriftOptions{NoHash: true})
	if f := nh["/usr/bin/ls-copy"]; f.SHA256 != "" || f.IdenticalTo != "" || f.ExecKind != classify.ExecELF {
		t.Errorf("no-hash: %+v", f)
	}
	if nh["/etc/config"].Change != ChangeModified {
		t.Errorf("no-hash modified: %+v", nh["/etc/config"])
	}
	// Without the image: everything present is added_or_modified.
	alone := *ds
	alone.Lowers = nil
	if f := collect(t, &alone, DriftOptions{})["/etc/config"]; f.Change != ChangeAddedOrModified {
		t.Errorf("no image: %+v", f)
	}
}

// Issue 16 (degraded): two dropped files whose names are different
// invalid UTF-8 print the same in JSON (U+FFFD); path_bytes keeps their
// exact bytes apart.
func TestDriftInvalidUTF8Names(t *testing.T) {
	root := t.TempDir()
	up := filepath.Join(root, "up", "tmp")
	must(t, os.MkdirAll(up, 0o755))
	must(t, os.WriteFile(filepath.Join(up, "\xff\xfe"), []byte("a"), 0o644))
	must(t, os.WriteFile(filepath.Join(up, "\xfe\xff"), []byte("b"), 0o644))
	src, err := evidence.OpenDir(root)
	must(t, err)
	defer src.Close()
	ds := &DriftSource{Container: model.Container{ID: "x"}, Upper: overlay.Layer{Source: src, Dir: "up", Kind: overlay.LayerDir, Name: "up"}}
	got := collect(t, ds, DriftOptions{})
	a, b := got["/tmp/\xff\xfe"], got["/tmp/\xfe\xff"]
	if a.PathBytes != "L3RtcC///g==" || b.PathBytes != "L3RtcC/+/w==" {
		t.Errorf("path_bytes %q %q", a.PathBytes, b.PathBytes)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !strings.Contains(string(ja), `"path_bytes":"L3RtcC///g=="`) || string(ja) == string(jb) {
		t.Errorf("JSON %s / %s", ja, jb)
	}
	if got["/tmp"].PathBytes != "" {
		t.Errorf("a valid name has path_bytes %q", got["/tmp"].PathBytes)
	}
}

// Issue 16.4: a tree deeper than any walk descends is reported as what it
// is — an entry of its own, judged — and drift goes on with the rest.
func TestDriftTooDeepIsAFinding(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "up", "tmp")
	for i := 0; i < evidence.DefaultMaxDepth+5; i++ {
		p = filepath.Join(p, "d")
	}
	must(t, os.MkdirAll(p, 0o755))
	must(t, os.WriteFile(filepath.Join(root, "up", "tmp", "x.sh"), []byte("#!/bin/sh\n"), 0o755))
	src, err := evidence.OpenDir(root)
	must(t, err)
	defer src.Close()
	ds := &DriftSource{Container: model.Container{ID: "deep"}, Upper: overlay.Layer{Source: src, Dir: "up", Kind: overlay.LayerDir, Name: "up"}}
	all, _, err := DriftAll(context.Background(), ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	var deep []DriftEntry
	sawScript := false
	for _, e := range all {
		if e.Change == ChangeTooDeep {
			deep = append(deep, e)
		}
		sawScript = sawScript || e.Path == "/tmp/x.sh"
	}
	want := "/tmp" + strings.Repeat("/d", evidence.DefaultMaxDepth-1)
	if len(deep) != 1 || deep[0].Path != want || deep[0].Finding().Severity != model.SeverityMedium || !sawScript {
		t.Fatalf("too deep: %d entries (%v), script %v", len(deep), deep, sawScript)
	}
}
