package storage

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	bolt "go.etcd.io/bbolt"
)

// lpContainer is what libpod's state database holds about a container.
type lpContainer struct {
	id       string
	name     string
	config   *libpodConfig
	state    *libpodState
	exitCode *int // from the exit-code bucket
	warnings []evidence.Warning
}

// lpPodRec is a libpod pod.
type lpPodRec struct {
	config     *libpodPod
	state      *libpodPodState
	containers []string
}

// libpodDB is everything read from one libpod state database (bolt or
// SQLite).
type libpodDB struct {
	file       string // inside the evidence, with a leading "/"
	containers map[string]*lpContainer
	order      []string
	pods       map[string]*lpPodRec
	runtimeCfg map[string]string
	execIDs    map[string]bool // live exec sessions
	warnings   []evidence.Warning
}

func newLibpodDB(file string) *libpodDB {
	return &libpodDB{file: file, containers: map[string]*lpContainer{}, pods: map[string]*lpPodRec{}, runtimeCfg: map[string]string{}, execIDs: map[string]bool{}}
}

// container returns the record of a container, made on first sight.
func (lp *libpodDB) container(id string) *lpContainer {
	c := lp.containers[id]
	if c == nil {
		c = &lpContainer{id: id}
		lp.containers[id] = c
		lp.order = append(lp.order, id)
	}
	return c
}

// readLibpod reads the libpod state database of the graph root: bolt, or
// else SQLite.
func (s *Store) readLibpod() {
	db := path.Join(s.graph, libpodDir, boltStateFile)
	if _, err := s.src.Lstat(db); err == nil {
		lp, err := readLibpod(s.src, db)
		if err != nil {
			s.libpodUnread = true
			s.Warnings = append(s.Warnings, evidence.Warnf("", -1, "libpod state unread, containers have no recorded state: %v", pathutil.Denied(s.src, db, err)))
		} else {
			s.libpod, s.StateDB = lp, "/"+db
			s.Warnings = append(s.Warnings, lp.warnings...)
			if g := lp.runtimeCfg["graph-root"]; g != "" && !strings.HasSuffix(s.GraphRoot, strings.TrimRight(g, "/")) {
				s.Notes = append(s.Notes, fmt.Sprintf("libpod state at %s was made for graph root %s", s.StateDB, g))
			}
		}
	}
	sq := path.Join(s.graph, libpodDir, sqliteState)
	if _, err := s.src.Lstat(sq); err != nil {
		return
	}
	if s.libpod != nil {
		// Podman keeps using BoltDB when bolt_state.db exists and no
		// database_backend is configured.
		s.Notes = append(s.Notes, fmt.Sprintf("/%s is present too; the state was read from %s", sq, s.StateDB))
		return
	}
	lp, err := readLibpodSQLite(s.src, sq)
	if err != nil {
		s.libpodUnread = true
		s.Warnings = append(s.Warnings, evidence.Warnf("", -1, "libpod state unread, containers have no recorded state: %v", pathutil.Denied(s.src, sq, err)))
		return
	}
	s.libpod, s.StateDB, s.libpodUnread = lp, "/"+sq, false
	s.Warnings = append(s.Warnings, lp.warnings...)
}

// readLibpod reads libpod's bolt state database.
func readLibpod(src evidence.Source, name string) (*libpodDB, error) {
	db, err := boltdb.Open(src, name, "/"+name, &boltdb.Options{MaxSize: maxDBSize})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := newLibpodDB("/" + name)
	out.warnings = append(out.warnings, db.Warnings...)
	// warnf names a key of a bucket: "bolt_state.db: offset N: ctr/<id>/config: …".
	warnf := func(bucket []string, key, format string, args ...any) evidence.Warning {
		where := strings.Join(append(bucket[:len(bucket):len(bucket)], key), "/")
		if key == "" {
			where = strings.Join(bucket, "/")
		}
		return evidence.Warning{File: out.file, Offset: db.Offset(bucket...), Msg: where + ": " + fmt.Sprintf(format, args...)}
	}
	err = db.View(func(tx *bolt.Tx) error {
		cb := tx.Bucket([]byte(bktCtr))
		if cb == nil && tx.Bucket([]byte(bktAllCtrs)) == nil {
			return &evidence.FormatError{File: out.file, Offset: -1, Msg: "no ctr or all-ctrs bucket: not a libpod state database"}
		}
		if rb := tx.Bucket([]byte(bktRuntimeCfg)); rb != nil {
			rb.ForEach(func(k, v []byte) error {
				if v != nil && len(out.runtimeCfg) < 64 {
					out.runtimeCfg[string(k)] = string(v)
				}
				return nil
			})
		}
		if xb := tx.Bucket([]byte(bktExec)); xb != nil {
			xb.ForEach(func(k, v []byte) error {
				if len(out.execIDs) < maxRecords {
					out.execIDs[string(k)] = true
				}
				return nil
			})
		}
		if ab := tx.Bucket([]byte(bktAllCtrs)); ab != nil {
			ab.ForEach(func(k, v []byte) error {
				if len(out.order) < maxRecords && out.containers[string(k)] == nil {
					out.container(string(k)).name = string(v)
				}
				return nil
			})
		}
		if cb != nil {
			cb.ForEach(func(k, v []byte) error {
				id := string(k)
				b := cb.Bucket(k)
				damage := db.Damage(bktCtr, id)
				if b == nil && len(damage) == 0 || len(out.containers) >= maxRecords {
					return nil
				}
				c := out.container(id)
				// The damage is a store warning already; it is the
				// container's too.
				defer func() { c.warnings = append(c.warnings, damage...) }()
				if b == nil {
					return nil
				}
				bucket := []string{bktCtr, id}
				if raw := b.Get([]byte(keyConfig)); raw != nil {
					cfg, err := decodeLibpodConfig(raw)
					if err != nil {
						c.warnings = append(c.warnings, warnf(bucket, keyConfig, "config JSON: %v", err))
					} else {
						c.config = cfg
					}
				} else {
					c.warnings = append(c.warnings, warnf(bucket, "", "no config"))
				}
				if raw := b.Get([]byte(keyState)); raw != nil {
					st, err := decodeLibpodState(raw)
					if err != nil {
						c.warnings = append(c.warnings, warnf(bucket, keyState, "state JSON: %v", err))
					} else {
						c.state = st
					}
				}
				return nil
			})
		}
		if eb := tx.Bucket([]byte(bktExitCode)); eb != nil {
			eb.ForEach(func(k, v []byte) error {
				c := out.containers[string(k)]
				if c == nil || v == nil {
					return nil
				}
				n, err := strconv.Atoi(strings.TrimSpace(string(v)))
				if err != nil {
					c.warnings = append(c.warnings, warnf([]string{bktExitCode}, string(k), "%q is not an exit code", v))
					return nil
				}
				c.exitCode = &n
				return nil
			})
		}
		if pb := tx.Bucket([]byte(bktPod)); pb != nil {
			pb.ForEach(func(k, v []byte) error {
				b := pb.Bucket(k)
				if b == nil || len(out.pods) >= maxRecords {
					return nil
				}
				id := string(k)
				bucket := []string{bktPod, id}
				p := &lpPodRec{}
				if raw := b.Get([]byte(keyConfig)); raw != nil {
					var pc libpodPod
					if err := object(raw, &pc); err != nil {
						out.warnings = append(out.warnings, warnf(bucket, keyConfig, "config JSON: %v", err))
					} else {
						p.config = &pc
					}
				}
				if raw := b.Get([]byte(keyState)); raw != nil {
					var ps libpodPodState
					if err := object(raw, &ps); err != nil {
						out.warnings = append(out.warnings, warnf(bucket, keyState, "state JSON: %v", err))
					} else {
						p.state = &ps
					}
				}
				if p.config == nil {
					p.config = &libpodPod{ID: id}
				}
				if p.config.ID == "" {
					p.config.ID = id
				}
				if cb := b.Bucket([]byte(keyPodContainer)); cb != nil {
					cb.ForEach(func(k, _ []byte) error {
						if len(p.containers) < maxRecords {
							p.containers = append(p.containers, string(k))
						}
						return nil
					})
				}
				out.pods[id] = p
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
