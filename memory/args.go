package memory

import (
	"context"
	"errors"
	"fmt"

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
	return checkpoint.SplitArgs(buf[:n]), err
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
// reason is returned, joined with the others'. It stops with ctx.Err()
// when ctx is cancelled.
func FillArgs(ctx context.Context, cp *checkpoint.Checkpoint, cmd, env bool) error {
	r, err := Open(cp, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	for i := range cp.Processes {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := &cp.Processes[i]
		if p.State != checkpoint.StateAlive && p.State != checkpoint.StateStopped {
			continue
		}
		s, err := r.Space(p.PID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range []struct {
			want bool
			what string
			read func() ([]string, error)
			dst  *[]string
		}{{cmd, "argv", s.Cmdline, &p.Cmdline}, {env, "environment", s.Environ, &p.Environ}} {
			if !f.want {
				continue
			}
			l, err := f.read()
			if err != nil {
				errs = append(errs, fmt.Errorf("pid %d %s: %w", p.PID, f.what, err))
			}
			if l != nil || err == nil {
				*f.dst = l
			}
		}
	}
	return errors.Join(errs...)
}
