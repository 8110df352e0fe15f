package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// ExecSession is a libpod exec session record (podman exec): a live one,
// or one deleted from the state database whose bytes are still in its
// free pages. libpod keeps the full command of each session, so a
// deleted record can hold what an attacker ran through exec.
type ExecSession = model.Exec

// carveExec reads the exec sessions of the libpod state database, deleted
// ones included.
func (s *Store) carveExec() {
	if s.StateDB == "" {
		return
	}
	live := map[string]bool{}
	if s.libpod != nil {
		live = s.libpod.execIDs
	}
	xs, torn, err := carveExecSessions(s.src, strings.TrimPrefix(s.StateDB, "/"), live)
	if err != nil {
		s.Warnings = append(s.Warnings, evidence.WarningOf(err))
	}
	if torn > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%s: %d exec session record remnants too torn to decode", s.StateDB, torn))
	}
	s.Execs = xs
	found := map[string]bool{}
	for _, x := range xs {
		found[x.ID] = true
	}
	for _, id := range slices.Sorted(maps.Keys(live)) {
		if !found[id] {
			s.Warnings = append(s.Warnings, evidence.Warnf(s.StateDB, -1, "live exec session %s: its record was not found", id))
		}
	}
}

// execRecord is libpod's ExecSession JSON.
type execRecord struct {
	ID          string `json:"id"`
	ContainerID string `json:"containerId"`
	State       int    `json:"state"`
	Pid         int    `json:"pid"`
	ExitCode    *int   `json:"exitCode"`
	Config      struct {
		Command     []string          `json:"command"`
		Environment map[string]string `json:"environment"`
		User        string            `json:"user"`
		WorkDir     string            `json:"workDir"`
		Privileged  bool              `json:"privileged"`
	} `json:"config"`
}

// execMarker starts every exec session record: {"id":"<64 hex>","containerId":"
var execMarker = []byte(`{"id":"`)

const (
	execIDLen    = 64
	execCtrKey   = `","containerId":"`
	maxExecScan  = 1 << 20 // bytes read per step of the scan
	maxExecCarve = 10000   // records carved from one file
	maxExecTorn  = 1 << 16 // candidates that do not decode, before the scan of a file stops
)

func execStateName(s int) string {
	switch s {
	case 1:
		return "created"
	case 2:
		return "running"
	case 3:
		return "stopped"
	}
	return "unknown"
}

// decodeExecRecordFrom decodes one exec session record from the start of
// rd (trailing bytes, a page's other contents, are ignored), reading only
// what the decoder needs: a candidate torn after a few bytes costs a few
// bytes.
func decodeExecRecordFrom(rd io.Reader) (*execRecord, error) {
	var r execRecord
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, jsonErr(err, 0)
	}
	if !isHexID(r.ID) || !isHexID(r.ContainerID) {
		return nil, fmt.Errorf("not an exec session record")
	}
	return &r, nil
}

func isHexID(s string) bool {
	if len(s) != execIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// carveExecSessions scans a libpod state database file of the evidence,
// free pages included, for exec session records. live holds the ids still
// recorded in the database. Records torn across non-adjacent pages are
// counted in the returned number of unreadable candidates.
func carveExecSessions(src evidence.Source, name string, live map[string]bool) ([]ExecSession, int, error) {
	f, err := src.Open(name)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	size := f.Size()
	var out []ExecSession
	torn := 0
	head := len(execMarker) + execIDLen + len(execCtrKey)
	buf := make([]byte, maxExecScan+head)
	for base := int64(0); base < size && len(out) < maxExecCarve; base += maxExecScan {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-base)], base)
		if err != nil && err != io.EOF {
			return out, torn, &evidence.FormatError{File: "/" + name, Offset: base, Err: err}
		}
		win := buf[:n]
		for i := 0; i < len(win) && i < maxExecScan; {
			j := bytes.Index(win[i:], execMarker)
			if j < 0 || i+j >= maxExecScan {
				break
			}
			at := i + j
			i = at + 1
			if at+head > len(win) || !isHexID(string(win[at+len(execMarker):at+len(execMarker)+execIDLen])) ||
				string(win[at+len(execMarker)+execIDLen:at+head]) != execCtrKey {
				continue
			}
			off := base + int64(at)
			rec, err := decodeExecRecordFrom(io.NewSectionReader(f, off, min(size-off, maxJSON)))
			if err != nil {
				if torn++; torn >= maxExecTorn {
					return out, torn, nil
				}
				continue
			}
			out = append(out, ExecSession{
				Runtime: model.RuntimePodman, ID: rec.ID, ContainerID: rec.ContainerID, State: execStateName(rec.State), Pid: rec.Pid, ExitCode: rec.ExitCode,
				Command: rec.Config.Command, Environment: rec.Config.Environment, User: rec.Config.User, WorkDir: rec.Config.WorkDir,
				Privileged: rec.Config.Privileged, Live: live[rec.ID], Source: "/" + name, Offset: off,
			})
			if len(out) >= maxExecCarve {
				break
			}
		}
	}
	return out, torn, nil
}
