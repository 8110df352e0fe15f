package overlay

import (
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// subSource is a layer directory inside a Source: names are joined to dir.
// Errors keep the full name inside the evidence, which says which layer
// dir was read. (evidence.Sub of this tree turns a root-level ".name" into
// "name"; the view needs .dockerenv, .wh.* and the like.)
type subSource struct {
	evidence.Source
	dir string
}

func newSub(src evidence.Source, dir string) evidence.Source {
	if dir == "." || dir == "" {
		return src
	}
	return &subSource{Source: src, dir: dir}
}

func (s *subSource) full(name string) (string, error) {
	c, err := evidence.Clean(name)
	if err != nil {
		return "", err
	}
	if c == "." {
		return s.dir, nil
	}
	return s.dir + "/" + c, nil
}

func (s *subSource) rel(st *evidence.Stat) *evidence.Stat {
	if st != nil {
		if st.Name == s.dir {
			st.Name = "."
		} else {
			st.Name = strings.TrimPrefix(st.Name, s.dir+"/")
		}
	}
	return st
}

func (s *subSource) Lstat(name string) (*evidence.Stat, error) {
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	st, err := s.Source.Lstat(f)
	return s.rel(st), err
}

func (s *subSource) ReadDir(name string) ([]*evidence.Stat, error) {
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	l, err := s.Source.ReadDir(f)
	for _, st := range l {
		s.rel(st)
	}
	return l, err
}

func (s *subSource) Readlink(name string) (string, error) {
	f, err := s.full(name)
	if err != nil {
		return "", err
	}
	return s.Source.Readlink(f)
}

func (s *subSource) Xattrs(name string) (map[string][]byte, error) {
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	return s.Source.Xattrs(f)
}

func (s *subSource) Open(name string) (evidence.File, error) {
	f, err := s.full(name)
	if err != nil {
		return nil, err
	}
	return s.Source.Open(f)
}

func (s *subSource) String() string { return s.Source.String() + "//" + s.dir }
func (s *subSource) Close() error   { return nil }
