package storage

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/boltdb"
	bolt "go.etcd.io/bbolt"
)

// lpContainer is what libpod's state database holds about a container.
type lpContainer struct {
	id       string
	name     string
	config   *libpodConfig
	state    *libpodState
	exitCode *int // from the exit-code bucket
	warnings []string
}

// lpPodRec is a libpod pod.
type lpPodRec struct {
	config     *libpodPod
	state      *libpodPodState
	containers []string
}

// libpodState is everything read from one bolt_state.db.
type libpodDB struct {
	file       string // inside the evidence, with a leading "/"
	containers map[string]*lpContainer
	order      []string
	pods       map[string]*lpPodRec
	runtimeCfg map[string]string
	execIDs    map[string]bool // live exec sessions
	warnings   []string
}

// openBolt opens a bbolt database of the evidence through a private
// read-only copy (see boltdb.Open).
func openBolt(src evidence.Source, name string) (*bolt.DB, func(), error) {
	return boltdb.Open(src, name, "/"+name, maxDBSize)
}

// contain turns a reader's panic on a corrupt database into an error
// naming the file (see boltdb.Contain).
func contain(name string, fn func() error) error { return boltdb.Contain(name, fn) }

// readLibpod reads libpod's bolt state database.
func readLibpod(src evidence.Source, name string) (*libpodDB, error) {
	db, done, err := openBolt(src, name)
	if err != nil {
		return nil, err
	}
	defer done()
	out := &libpodDB{file: "/" + name, containers: map[string]*lpContainer{}, pods: map[string]*lpPodRec{}, runtimeCfg: map[string]string{}, execIDs: map[string]bool{}}
	where := func(parts ...string) string { return out.file + ": " + strings.Join(parts, "/") }
	err = contain(out.file, func() error {
		return db.View(func(tx *bolt.Tx) error {
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
					if len(out.order) >= maxRecords {
						return nil
					}
					id := string(k)
					if out.containers[id] == nil {
						out.containers[id] = &lpContainer{id: id, name: string(v)}
						out.order = append(out.order, id)
					}
					return nil
				})
			}
			if cb != nil {
				cb.ForEach(func(k, v []byte) error {
					b := cb.Bucket(k)
					if b == nil || len(out.containers) >= maxRecords {
						return nil
					}
					id := string(k)
					c := out.containers[id]
					if c == nil {
						c = &lpContainer{id: id}
						out.containers[id] = c
						out.order = append(out.order, id)
					}
					if raw := b.Get([]byte(keyConfig)); raw != nil {
						cfg, err := decodeLibpodConfig(raw)
						if err != nil {
							c.warnings = append(c.warnings, fmt.Sprintf("%s: config JSON: %v", where(bktCtr, id, keyConfig), err))
						} else {
							c.config = cfg
						}
					} else {
						c.warnings = append(c.warnings, fmt.Sprintf("%s: no config", where(bktCtr, id)))
					}
					if raw := b.Get([]byte(keyState)); raw != nil {
						st, err := decodeLibpodState(raw)
						if err != nil {
							c.warnings = append(c.warnings, fmt.Sprintf("%s: state JSON: %v", where(bktCtr, id, keyState), err))
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
						c.warnings = append(c.warnings, fmt.Sprintf("%s: %q is not an exit code", where(bktExitCode, string(k)), v))
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
					p := &lpPodRec{}
					if raw := b.Get([]byte(keyConfig)); raw != nil {
						var pc libpodPod
						if err := object(raw, &pc); err != nil {
							out.warnings = append(out.warnings, fmt.Sprintf("%s: config JSON: %v", where(bktPod, id, keyConfig), err))
						} else {
							p.config = &pc
						}
					}
					if raw := b.Get([]byte(keyState)); raw != nil {
						var ps libpodPodState
						if err := object(raw, &ps); err != nil {
							out.warnings = append(out.warnings, fmt.Sprintf("%s: state JSON: %v", where(bktPod, id, keyState), err))
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
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
