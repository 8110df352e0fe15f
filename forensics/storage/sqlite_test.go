package storage

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// podmanSQLiteSchema is the part of Podman's SQLite state schema
// (libpod/sqlite_state_internal.go) the reader uses.
const podmanSQLiteSchema = `
CREATE TABLE DBConfig(ID INTEGER PRIMARY KEY NOT NULL, SchemaVersion INTEGER NOT NULL, OS TEXT NOT NULL, StaticDir TEXT NOT NULL, TmpDir TEXT NOT NULL, GraphRoot TEXT NOT NULL, RunRoot TEXT NOT NULL, GraphDriver TEXT NOT NULL, VolumeDir TEXT NOT NULL, CHECK (ID IN (1)));
CREATE TABLE IDNamespace(ID TEXT PRIMARY KEY NOT NULL);
CREATE TABLE ContainerConfig(ID TEXT PRIMARY KEY NOT NULL, Name TEXT UNIQUE NOT NULL, PodID TEXT, JSON TEXT NOT NULL);
CREATE TABLE ContainerState(ID TEXT PRIMARY KEY NOT NULL, State INTEGER NOT NULL, ExitCode INTEGER, JSON TEXT NOT NULL);
CREATE TABLE ContainerExitCode(ID TEXT PRIMARY KEY NOT NULL, Timestamp INTEGER NOT NULL, ExitCode INTEGER NOT NULL);
CREATE TABLE PodConfig(ID TEXT PRIMARY KEY NOT NULL, Name TEXT UNIQUE NOT NULL, JSON TEXT NOT NULL);
CREATE TABLE PodState(ID TEXT PRIMARY KEY NOT NULL, InfraContainerID TEXT, JSON TEXT NOT NULL);
`

// writeSQLite makes a Podman SQLite state database in WAL mode and copies
// it, with its write-ahead log, into dir while the writer still holds it
// open: the last transactions are only in the -wal file, as on a node
// seized live.
func writeSQLite(t *testing.T, dir string, committed, inWAL []string) {
	t.Helper()
	work := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(work, "db.sql")+"?_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range append([]string{podmanSQLiteSchema}, committed...) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	for _, q := range inWAL {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"db.sql", "db.sql-wal"} {
		b, err := os.ReadFile(filepath.Join(work, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStorageSQLiteState(t *testing.T) {
	f := store(t, "infra", "web", "job")
	f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("infra", ""), ctrRecord("web", ""), ctrRecord("job", "")})
	dir := t.TempDir()
	tree(t, dir, f)
	libpod := filepath.Join(dir, g, "libpod")
	writeSQLite(t, libpod, []string{
		`INSERT INTO DBConfig VALUES (1, 1, 'linux', '/var/lib/containers/storage/libpod', '/run/libpod', '/var/lib/containers/storage', '/run/containers/storage', 'overlay', '/var/lib/containers/storage/volumes')`,
		`INSERT INTO PodConfig VALUES ('P1', 'p1', '{"id":"P1","name":"p1","namespace":"","created":"2026-01-01T00:00:00Z","labels":{"app":"p1"}}')`,
		`INSERT INTO PodState VALUES ('P1', 'infra', '{"cgroupPath":"/machine.slice/p1","infraContainerID":"infra"}')`,
		`INSERT INTO ContainerConfig VALUES ('infra', 'p1-infra', 'P1', '{"id":"infra","name":"p1-infra","pod":"P1","pause":true}')`,
		`INSERT INTO ContainerState VALUES ('infra', 3, 0, '{"state":3,"pid":900,"startedTime":"2026-01-01T00:00:01Z"}')`,
		`INSERT INTO ContainerConfig VALUES ('web', 'p1-web', 'P1', '{"id":"web","name":"p1-web","pod":"P1","rootfsImageName":"img:1"}')`,
		`INSERT INTO ContainerState VALUES ('web', 3, 0, '{"state":3,"pid":901,"startedTime":"2026-01-01T00:00:02Z"}')`,
	}, []string{
		// Only in the write-ahead log: web exited, job created and run.
		`UPDATE ContainerState SET State=6, JSON='{"state":6,"exited":true,"exitCode":137,"startedTime":"2026-01-01T00:00:02Z","finishedTime":"2026-01-01T00:05:00Z"}' WHERE ID='web'`,
		`INSERT INTO ContainerConfig VALUES ('job', 'job', NULL, '{"id":"job","name":"job","labels":{"k":"v"}}')`,
		`INSERT INTO ContainerState VALUES ('job', 6, 3, '{"state":6,"exited":true,"exitCode":3,"startedTime":"2026-01-01T00:01:00Z","finishedTime":"2026-01-01T00:01:01Z"}')`,
		`INSERT INTO ContainerExitCode VALUES ('job', 1767225661, 3)`,
	})
	before, err := os.ReadFile(filepath.Join(libpod, "db.sql-wal"))
	if err != nil || len(before) == 0 {
		t.Fatalf("no write-ahead log: %v", err)
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
	if s.StateDB != "/var/lib/containers/storage/libpod/db.sql" || len(s.Warnings) != 0 {
		t.Fatalf("state db %q warnings %q", s.StateDB, s.Warnings)
	}
	infra, web, job := find(s, "infra"), find(s, "web"), find(s, "job")
	if infra.Kind != model.KindSandbox || infra.Status.State != model.StateRunning || infra.Status.Pid != 900 {
		t.Errorf("infra %+v", infra)
	}
	if web.Status.State != model.StateExited || *web.Status.ExitCode != 137 || web.SandboxID != "infra" || web.Pod == nil || web.Pod.Name != "p1" || web.Image != "img:1" ||
		!reflect.DeepEqual(web.Status.Sources, []string{"/var/lib/containers/storage/libpod/db.sql"}) {
		t.Errorf("web %+v", web)
	}
	if job.Status.State != model.StateExited || *job.Status.ExitCode != 3 || job.Pod != nil || job.Labels["k"] != "v" || len(job.Warnings) != 0 {
		t.Errorf("job %+v", job)
	}
	if len(s.Pods) != 1 || s.Pods[0].Name != "p1" || s.Pods[0].SandboxID != "infra" || s.Pods[0].CgroupParent != "/machine.slice/p1" || len(s.Pods[0].Containers) != 1 {
		t.Errorf("pods %+v", s.Pods)
	}
	// The evidence's database files are untouched.
	after, err := os.ReadFile(filepath.Join(libpod, "db.sql-wal"))
	if err != nil || string(after) != string(before) {
		t.Errorf("db.sql-wal changed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(libpod, "db.sql-shm")); err == nil {
		t.Errorf("a db.sql-shm was made in the evidence")
	}
}

func TestStorageSQLiteTorn(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"truncated":   func(b []byte) []byte { return b[:len(b)/2] },
		"not sqlite":  func(b []byte) []byte { return []byte("garbage, not a database at all") },
		"header only": func(b []byte) []byte { return b[:100] },
		"pages zeroed": func(b []byte) []byte {
			for i := 4096; i < len(b); i++ {
				b[i] = 0
			}
			return b
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := store(t, "a")
			f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("a", "")})
			dir := t.TempDir()
			tree(t, dir, f)
			libpod := filepath.Join(dir, g, "libpod")
			writeSQLite(t, libpod, []string{
				`INSERT INTO ContainerConfig VALUES ('a', 'a', NULL, '{"id":"a","name":"a"}')`,
				`INSERT INTO ContainerState VALUES ('a', 3, 0, '{"state":3,"pid":5}')`,
			}, nil)
			os.Remove(filepath.Join(libpod, "db.sql-wal"))
			b, err := os.ReadFile(filepath.Join(libpod, "db.sql"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(libpod, "db.sql"), damage(b), 0o600); err != nil {
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
			if a == nil || a.UpperDir == "" {
				t.Fatalf("container not read: %+v", s.Containers)
			}
			if s.StateDB == "" {
				if !hasWarning(s.Warnings, "libpod state unread", "/var/lib/containers/storage/libpod/db.sql") || !hasWarning(a.Warnings, "libpod's state database is unreadable") {
					t.Errorf("warnings %q / %q", s.Warnings, a.Warnings)
				}
			} else if a.Status.State != model.StateRunning || a.Status.Pid != 5 {
				t.Errorf("a %+v", a.Status)
			}
			t.Logf("state db %q warnings %q", s.StateDB, s.Warnings)
		})
	}
}

// A row that cannot be scanned (a NULL name, in a table whose schema a
// tamperer loosened) is skipped with a warning, and the rows after it are
// read: the whole libpod state was lost, web's pid 901 with it.
func TestSQLiteBadRowSkipped(t *testing.T) {
	f := store(t, "web", "job")
	f[g+"overlay-containers/containers.json"] = mustJSON(t, []map[string]any{ctrRecord("job", ""), ctrRecord("web", "")})
	dir := t.TempDir()
	tree(t, dir, f)
	libpod := filepath.Join(dir, g, "libpod")
	if err := os.MkdirAll(libpod, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(libpod, "db.sql"))
	if err != nil {
		t.Fatal(err)
	}
	schema := strings.Replace(podmanSQLiteSchema, "Name TEXT UNIQUE NOT NULL, PodID TEXT, JSON TEXT NOT NULL", "Name TEXT, PodID TEXT, JSON TEXT", 1)
	for _, q := range []string{schema,
		`INSERT INTO ContainerConfig VALUES ('job', NULL, NULL, '{"id":"job","name":"job"}')`,
		`INSERT INTO ContainerState VALUES ('job', 3, 0, '{"state":3,"pid":902}')`,
		`INSERT INTO ContainerConfig VALUES ('web', 'web', NULL, '{"id":"web","name":"web"}')`,
		`INSERT INTO ContainerState VALUES ('web', 3, 0, '{"state":3,"pid":901}')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := openStoreDir(t, dir)
	if web := find(s, "web"); web.Status.Pid != 901 {
		t.Errorf("web: state %s pid %d; warnings %v", web.Status.State, web.Status.Pid, s.Warnings)
	}
	if !strings.Contains(fmt.Sprint(s.Warnings), "ContainerConfig: row 1: ") {
		t.Errorf("warnings %v", s.Warnings)
	}
}
