package storage

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	_ "modernc.org/sqlite" // pure-Go SQLite, for Podman's db.sql
)

// Podman's SQLite state (libpod/sqlite_state_internal.go): tables and the
// columns read here.
const (
	sqlContainerConfig = "SELECT ID, Name, COALESCE(PodID, ''), JSON FROM ContainerConfig"
	sqlContainerState  = "SELECT ID, JSON FROM ContainerState"
	sqlContainerExit   = "SELECT ID, ExitCode FROM ContainerExitCode"
	sqlPodConfig       = "SELECT ID, JSON FROM PodConfig"
	sqlPodState        = "SELECT ID, JSON FROM PodState"
	sqlDBConfig        = "SELECT GraphRoot FROM DBConfig"
	sqlExecSessions    = "SELECT ID FROM ContainerExecSession"
	sqliteWALSuffix    = "-wal"
)

// copyOut copies a file of the evidence into dir under base, refusing one
// larger than max.
func copyOut(src evidence.Source, name, dir, base string, max int64) error {
	f, err := src.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Size() > max {
		return &evidence.FormatError{File: "/" + name, Offset: -1, Msg: fmt.Sprintf("%d bytes, over the %d-byte limit", f.Size(), max)}
	}
	out, err := os.OpenFile(filepath.Join(dir, base), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return boltdb.TempError(err)
	}
	if _, err := io.Copy(out, io.NewSectionReader(f, 0, f.Size())); err != nil {
		out.Close()
		return fmt.Errorf("/%s: copying %d bytes: %w", name, f.Size(), boltdb.TempError(err))
	}
	return out.Close()
}

// readLibpodSQLite reads Podman's SQLite state database. The database and
// its write-ahead log (which holds the latest transactions until a
// checkpoint) are copied to a private temp directory, and only the copy is
// opened, query-only: SQLite never touches the evidence.
func readLibpodSQLite(src evidence.Source, name string) (*libpodDB, error) {
	tmp, done, err := boltdb.TempDir("deadnode-libpod-sql-*")
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", name, err)
	}
	defer done()
	if err := copyOut(src, name, tmp, "db.sql", maxDBSize); err != nil {
		return nil, err
	}
	if err := copyOut(src, name+sqliteWALSuffix, tmp, "db.sql"+sqliteWALSuffix, maxDBSize); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	file := "/" + name
	out := newLibpodDB(file)
	warnf := func(format string, args ...any) evidence.Warning { return evidence.Warnf(file, -1, format, args...) }
	err = boltdb.Contain(file, func() error {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(tmp, "db.sql")+"?_pragma=query_only(1)&_pragma=busy_timeout(1000)")
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Ping(); err != nil {
			return &evidence.FormatError{File: file, Offset: -1, Msg: "not a readable SQLite database", Err: err}
		}
		var g string
		if err := db.QueryRow(sqlDBConfig).Scan(&g); err == nil {
			out.runtimeCfg["graph-root"] = g
		}
		err = rows(db, sqlContainerConfig, func(sc func(...any) error) error {
			var id, name, pod, js string
			if err := sc(&id, &name, &pod, &js); err != nil {
				return err
			}
			c := &lpContainer{id: id, name: name}
			if cfg, err := decodeLibpodConfig([]byte(js)); err != nil {
				c.warnings = append(c.warnings, warnf("ContainerConfig %s: JSON: %v", id, err))
			} else {
				if cfg.Pod == "" {
					cfg.Pod = pod
				}
				c.config = cfg
			}
			if out.containers[id] == nil {
				out.order = append(out.order, id)
			}
			out.containers[id] = c
			return nil
		})
		if !rowsRead(err) {
			return &evidence.FormatError{File: file, Offset: -1, Msg: "not a Podman state database (ContainerConfig)", Err: err}
		} else if err != nil {
			out.warnings = append(out.warnings, warnf("ContainerConfig: %v", err))
		}
		err = rows(db, sqlContainerState, func(sc func(...any) error) error {
			var id, js string
			if err := sc(&id, &js); err != nil {
				return err
			}
			c := out.containers[id]
			if c == nil {
				out.warnings = append(out.warnings, warnf("ContainerState %s has no ContainerConfig", id))
				return nil
			}
			if st, err := decodeLibpodState([]byte(js)); err != nil {
				c.warnings = append(c.warnings, warnf("ContainerState %s: JSON: %v", id, err))
			} else {
				c.state = st
			}
			return nil
		})
		if err != nil {
			out.warnings = append(out.warnings, warnf("ContainerState: %v", err))
		}
		rows(db, sqlExecSessions, func(sc func(...any) error) error {
			var id string
			if err := sc(&id); err != nil {
				return err
			}
			out.execIDs[id] = true
			return nil
		})
		// Exit codes of removed containers; absent in older schemas.
		rows(db, sqlContainerExit, func(sc func(...any) error) error {
			var id string
			var code int
			if err := sc(&id, &code); err != nil {
				return err
			}
			if c := out.containers[id]; c != nil {
				c.exitCode = &code
			}
			return nil
		})
		err = rows(db, sqlPodConfig, func(sc func(...any) error) error {
			var id, js string
			if err := sc(&id, &js); err != nil {
				return err
			}
			p := &lpPodRec{config: &libpodPod{ID: id}}
			if err := object([]byte(js), p.config); err != nil {
				out.warnings = append(out.warnings, warnf("PodConfig %s: JSON: %v", id, err))
				p.config = &libpodPod{ID: id}
			}
			if p.config.ID == "" {
				p.config.ID = id
			}
			out.pods[id] = p
			return nil
		})
		if err != nil {
			out.warnings = append(out.warnings, warnf("PodConfig: %v", err))
		}
		err = rows(db, sqlPodState, func(sc func(...any) error) error {
			var id, js string
			if err := sc(&id, &js); err != nil {
				return err
			}
			p := out.pods[id]
			if p == nil {
				return nil
			}
			var ps libpodPodState
			if err := object([]byte(js), &ps); err != nil {
				out.warnings = append(out.warnings, warnf("PodState %s: JSON: %v", id, err))
				return nil
			}
			p.state = &ps
			return nil
		})
		if err != nil {
			out.warnings = append(out.warnings, warnf("PodState: %v", err))
		}
		for _, id := range out.order {
			if c := out.containers[id]; c.config != nil && c.config.Pod != "" {
				if p := out.pods[c.config.Pod]; p != nil {
					p.containers = append(p.containers, id)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rows runs a query and calls fn with a scanner for each row, at most
// maxRecords rows.
// A row that cannot be scanned (a NULL where a value belongs, a value of
// another type) is skipped: its error is one of the joined error returned
// with the rest read, so that one bad row does not hide those after it.
// A query that cannot run at all is its error alone.
func rows(db *sql.DB, q string, fn func(scan func(...any) error) error) error {
	r, err := db.Query(q)
	if err != nil {
		return err
	}
	defer r.Close()
	n := 0
	var bad []error
	for r.Next() {
		if n >= maxRecords {
			return errors.Join(append(bad, fmt.Errorf("more than %d rows; the rest is not read", maxRecords))...)
		}
		n++
		if err := fn(r.Scan); err != nil {
			if len(bad) < 16 {
				bad = append(bad, fmt.Errorf("row %d: %w", n, err))
			}
		}
	}
	return errors.Join(append(bad, r.Err())...)
}

// rowsRead says whether rows read the table (some rows may have been
// skipped: its error joined them), as against a query that could not run.
func rowsRead(err error) bool {
	_, joined := err.(interface{ Unwrap() []error })
	return err == nil || joined
}
