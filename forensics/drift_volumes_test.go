package forensics

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/classify"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/overlay"
)

// Volumes of every kind in drift: an emptyDir placed by the spec, one the
// spec omits, a read-write host path (only with HostPaths), a read-only
// one (never), a single-file host path mount.
func TestDriftVolumeKinds(t *testing.T) {
	dir := t.TempDir()
	write := func(p, c string, mode os.FileMode) {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("upper/app/run.sh", "#!/bin/sh\necho\n", 0o755)
	write("lower/bin/busybox", "\x7fELF-not-really-but-identical", 0o755)
	write("vols/cache/x/tool", "\x7fELF-not-really-but-identical", os.ModeSetuid|0o755)
	write("vols/scratch/.s/sync.sh", "#!/bin/sh\nsleep 1\n", 0o755)
	write("host/srv/data/cron.sh", "#!/bin/sh\n", 0o755)
	write("host/ro/readme", "ro\n", 0o644)
	write("host/single", "one\n", 0o644)
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	at := func(s string) *string { return &s }
	ds := &DriftSource{
		Container: model.Container{ID: "c1", Runtime: "containerd", Namespace: "k8s.io", ContainerName: "app", Pod: &model.PodRef{Namespace: "ns", Name: "p", UID: "u"}},
		Upper:     overlay.Layer{Source: src, Dir: "upper", Kind: overlay.LayerDir, Name: "/upper"},
		Lowers:    []overlay.Layer{{Source: src, Dir: "lower", Kind: overlay.LayerDir, Name: "/lower"}},
		Volumes: []kube.Mount{
			{ContainerPath: at("/tmp/cache"), Origin: "volume:cache", Kind: kube.MountVolume, Volume: "cache", VolumeKind: kube.VolEmptyDir, EvidencePath: "/vols/cache", Exists: true, Writable: true},
			{Origin: "volume:scratch", Kind: kube.MountVolume, Volume: "scratch", VolumeKind: kube.VolEmptyDir, EvidencePath: "/vols/scratch", Exists: true, Writable: true},
			{ContainerPath: at("/etc/cron.d"), Origin: "host:/host/srv/data", Kind: kube.MountHostPath, EvidencePath: "/host/srv/data", Exists: true, Writable: true},
			{ContainerPath: at("/ro"), Origin: "host:/host/ro", Kind: kube.MountHostPath, EvidencePath: "/host/ro", Exists: true, ReadOnly: true},
			{ContainerPath: at("/etc/single"), Origin: "host:/host/single", Kind: kube.MountHostPath, EvidencePath: "/host/single", Exists: true, Writable: true},
			{ContainerPath: at("/gone"), Origin: "volume:gone", Kind: kube.MountVolume, Volume: "gone", Writable: true},
		},
		VolumeSource: src,
	}
	run := func(opt *DriftOptions) (map[string]DriftEntry, []string, []string) {
		es, ws, err := DriftAll(context.Background(), ds, opt)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]DriftEntry{}
		var order, warns []string
		for _, e := range es {
			got[e.Path] = e
			order = append(order, e.Path)
		}
		for _, w := range ws {
			warns = append(warns, w.String())
		}
		return got, order, warns
	}
	got, order, warns := run(nil)
	if want := "/app /app/run.sh /(volume:scratch)/.s /(volume:scratch)/.s/sync.sh /tmp/cache/x /tmp/cache/x/tool"; strings.Join(order, " ") != want {
		t.Errorf("entries %s\nwant %s", strings.Join(order, " "), want)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "volume:gone at /gone: its content is not in the evidence") {
		t.Errorf("warnings %q", warns)
	}
	tool := got["/tmp/cache/x/tool"]
	if tool.Volume != "cache" || tool.Layer != "/vols/cache" || tool.EvidencePath != "/vols/cache/x/tool" || tool.IdenticalTo != "/bin/busybox" || tool.Mode != "4755" ||
		strings.Join(tool.Flags, ",") != classify.FlagVolatile+","+classify.FlagSetuid || tool.Note != "" {
		t.Errorf("tool %+v", tool)
	}
	if f := tool.Finding(); f.Severity < model.SeverityHigh {
		t.Errorf("a setuid copy of busybox in an emptyDir: %s (%s)", f.Severity, f.Why)
	}
	if s := got["/(volume:scratch)/.s/sync.sh"]; s.Volume != "scratch" || s.ExecKind != classify.ExecScript || !strings.Contains(s.Note, "container path unknown") {
		t.Errorf("sync.sh %+v", s)
	}
	got, order, _ = run(&DriftOptions{HostPaths: true})
	if want := "/app /app/run.sh /(volume:scratch)/.s /(volume:scratch)/.s/sync.sh /etc/cron.d/cron.sh /etc/single /tmp/cache/x /tmp/cache/x/tool"; strings.Join(order, " ") != want {
		t.Errorf("entries with host paths %s\nwant %s", strings.Join(order, " "), want)
	}
	cron := got["/etc/cron.d/cron.sh"]
	if cron.Volume != "host:/host/srv/data" || cron.Change != ChangeAdded || strings.Join(cron.Flags, ",") != classify.FlagPersistence {
		t.Errorf("cron.sh %+v", cron)
	}
	if f := cron.Finding(); f.Severity != model.SeverityHigh {
		t.Errorf("a script in a cron directory of the node: %s", f.Severity)
	}
	if one := got["/etc/single"]; one.Volume != "host:/host/single" || one.EvidencePath != "/host/single" || one.Size != 4 {
		t.Errorf("single-file mount %+v", one)
	}
}
