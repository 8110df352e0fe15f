package containerd

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	toml "github.com/pelletier/go-toml/v2"
)

// maxConfig bounds a containerd config file.
const maxConfig = 1 << 20

// Detect returns the containerd roots found in the evidence, in order of
// preference, with notes on how each was found, and the places that
// exist but may not be read (errors.Is fs.ErrPermission; nil when none).
func Detect(src evidence.Source) (roots []string, notes []string, denied error) {
	f := finder(src)
	return f.Roots, f.Notes, errors.Join(f.Denied...)
}

// finder looks for containerd's root: the root of each config file, then
// the distributions' default places.
func finder(src evidence.Source) *pathutil.Finder {
	f := &pathutil.Finder{Src: src, What: "containerd root", Hint: "use --containerd-root", IsRoot: func(r string) (bool, error) {
		st, err := src.Lstat(path.Join(r, metaDBPath))
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return false, err
			}
			return false, nil
		}
		return st.Mode.IsRegular(), nil
	}}
	for _, cfg := range knownConfigs {
		b := f.ReadConfig(cfg, maxConfig)
		if b == nil {
			continue
		}
		if root, _, err := parseConfig(b, cfg); err == nil && root != "" {
			f.Host(root, fmt.Sprintf("containerd root %s from %s", root, cfg))
		}
	}
	for _, k := range knownRoots {
		f.Known(k, "")
	}
	return f
}

// parseConfig reads root and state from a containerd config file.
func parseConfig(b []byte, name string) (root, state string, err error) {
	var cfg struct {
		Root  string `toml:"root"`
		State string `toml:"state"`
	}
	if err := toml.Unmarshal(b, &cfg); err != nil {
		return "", "", &evidence.FormatError{File: name, Offset: -1, Msg: "TOML", Err: err}
	}
	return cfg.Root, cfg.State, nil
}

// findState locates the state directory (/run/containerd by default, or
// the state of a config file).
func (s *Store) findState() string {
	isDir := func(r string) bool {
		st, err := s.src.Lstat(r)
		return err == nil && st.Mode.IsDir()
	}
	for _, cfg := range knownConfigs {
		p, err := evidence.Resolve(s.src, cfg, true)
		if err != nil {
			continue
		}
		b, err := evidence.ReadFile(s.src, p, maxConfig)
		if err != nil {
			continue
		}
		if _, state, err := parseConfig(b, cfg); err == nil && state != "" {
			if r, _ := pathutil.Rebase(s.src, state, isDir); r != "" {
				return "/" + r
			}
		}
	}
	if r, _ := pathutil.Rebase(s.src, defaultStateDir, isDir); r != "" {
		return "/" + r
	}
	return ""
}
