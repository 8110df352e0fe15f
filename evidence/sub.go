package evidence

import (
	"io/fs"
	"os"
	"strings"
)

// Sub returns a Source rooted at dir inside src (dir must be a directory
// free of links, e.g. from Resolve). Names of the returned entries are
// relative to dir. Closing it does not close src.
func Sub(src Source, dir string) (Source, error) {
	dir, err := Clean(dir)
	if err != nil {
		return nil, err
	}
	if dir == "." {
		return src, nil
	}
	st, err := src.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !st.Mode.IsDir() {
		return nil, &fs.PathError{Op: "sub", Path: dir, Err: fs.ErrInvalid}
	}
	return &subSource{src: src, dir: dir}, nil
}

type subSource struct {
	src Source
	dir string
}

func (s *subSource) full(name string) (string, error) {
	c, err := Clean(name)
	if err != nil {
		return "", err
	}
	if c == "." {
		return s.dir, nil
	}
	return join(s.dir, c), nil
}

func (s *subSource) rel(st *Stat) *Stat {
	if st == nil {
		return nil
	}
	n := strings.TrimPrefix(strings.TrimPrefix(st.Name, s.dir+"/"), "/")
	if st.Name == s.dir {
		n = "."
	}
	if n == "" {
		n = "."
	}
	st.Name = n
	return st
}

func (s *subSource) relErr(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		n := strings.TrimPrefix(pe.Path, s.dir+"/")
		if pe.Path == s.dir {
			n = "."
		}
		return &fs.PathError{Op: pe.Op, Path: n, Err: pe.Err}
	}
	return err
}

func (s *subSource) Lstat(name string) (*Stat, error) {
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	st, err := s.src.Lstat(f)
	return s.rel(st), s.relErr(err)
}

func (s *subSource) ReadDir(name string) ([]*Stat, error) {
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	l, err := s.src.ReadDir(f)
	for _, st := range l {
		s.rel(st)
	}
	return l, s.relErr(err)
}

func (s *subSource) ReadDirNames(name string) ([]string, error) {
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	l, err := ReadDirNames(s.src, f)
	return l, s.relErr(err)
}

func (s *subSource) Readlink(name string) (string, error) {
	f, err := s.full(name)
	if err != nil {
		return "", err
	}
	t, err := s.src.Readlink(f)
	return t, s.relErr(err)
}

func (s *subSource) Xattrs(name string) (map[string][]byte, error) {
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	x, err := s.src.Xattrs(f)
	return x, s.relErr(err)
}

func (s *subSource) Open(name string) (File, error) {
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	fl, err := s.src.Open(f)
	return fl, s.relErr(err)
}

func (s *subSource) String() string { return s.src.String() + "//" + s.dir }
func (s *subSource) Close() error   { return nil }

func (s *subSource) HostPath(name string) (string, error) {
	hp, ok := s.src.(HostPather)
	if !ok {
		return "", fs.ErrInvalid
	}
	f, err := s.full(name)
	if err != nil {
		return "", err
	}
	return hp.HostPath(f)
}

func (s *subSource) OpenDirFD(name string) (*os.File, error) {
	o, ok := s.src.(DirFDOpener)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	fd, err := o.OpenDirFD(f)
	return fd, s.relErr(err)
}
