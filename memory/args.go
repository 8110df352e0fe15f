package memory

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/deadnode/deadnode/checkpoint"
)

// MaxArgBytes bounds the bytes read for a command line or an environment.
const MaxArgBytes = 256 << 10

// argStrings reads the NUL-separated strings in [start,end) of the space.
// Bytes that are not captured end the read: the strings before them are
// returned with the error.
func (s *Space) argStrings(start, end uint64) ([]string, error) {
	if start == 0 || end <= start {
		return nil, nil
	}
	if end-start > MaxArgBytes {
		end = start + MaxArgBytes
	}
	buf := make([]byte, end-start)
	n, err := s.Read(buf, start)
	buf = bytes.TrimRight(buf[:n], "\x00")
	if len(buf) == 0 {
		return nil, err
	}
	var out []string
	for _, f := range bytes.Split(buf, []byte{0}) {
		out = append(out, strings.ToValidUTF8(string(f), "\uFFFD"))
	}
	return out, err
}

// Cmdline reads argv from the mm's arg_start..arg_end, through the
// address space (so pages in parent images count too).
func (s *Space) Cmdline() ([]string, error) {
	if s.Process == nil {
		return nil, nil
	}
	return s.argStrings(s.Process.ArgStart, s.Process.ArgEnd)
}

// Environ reads the environment from the mm's env_start..env_end.
func (s *Space) Environ() ([]string, error) {
	if s.Process == nil {
		return nil, nil
	}
	return s.argStrings(s.Process.EnvStart, s.Process.EnvEnd)
}

// FillArgs sets the Cmdline (when cmd) and Environ (when env) of every
// task of cp from its memory, read through this package. cp must give
// access to its pages (compressed archives: opened with Options.Pages).
// A task whose memory cannot be read keeps what checkpoint read and the
// reason is returned, joined with the others'.
func FillArgs(cp *checkpoint.Checkpoint, cmd, env bool) error {
	r, err := Open(cp, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	for i := range cp.Processes {
		p := &cp.Processes[i]
		if p.State != checkpoint.StateAlive && p.State != checkpoint.StateStopped {
			continue
		}
		s, err := r.Space(p.PID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cmd {
			l, err := s.Cmdline()
			if err != nil {
				errs = append(errs, fmt.Errorf("pid %d argv: %w", p.PID, err))
			}
			if l != nil || err == nil {
				p.Cmdline = l
			}
		}
		if env {
			l, err := s.Environ()
			if err != nil {
				errs = append(errs, fmt.Errorf("pid %d environment: %w", p.PID, err))
			}
			if l != nil || err == nil {
				p.Environ = l
			}
		}
	}
	return errors.Join(errs...)
}
