package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
	toml "github.com/pelletier/go-toml/v2"
)

// Root is a graph root found in the evidence and its run root.
type Root struct {
	Graph string `json:"graph"` // resolved, with a leading "/"
	Run   string `json:"run"`   // resolved, with a leading "/"; "" when not in the evidence
	Note  string `json:"note,omitempty"`
}

// isGraphRoot says whether r (resolved) holds a containers-storage store;
// a permission error says it could not be told.
func isGraphRoot(src evidence.Source, r string) (bool, error) {
	var denied error
	for _, m := range []string{driverOverlay + containersSuffix, driverOverlay + layersSuffix, driverOverlay + imagesSuffix, "vfs" + layersSuffix} {
		st, err := src.Lstat(path.Join(r, m))
		if err == nil && st.Mode.IsDir() {
			return true, nil
		}
		if err != nil && errors.Is(err, fs.ErrPermission) {
			denied = err
		}
	}
	return false, denied
}

func isDir(src evidence.Source, r string) bool {
	st, err := src.Lstat(r)
	return err == nil && st.Mode.IsDir()
}

// Detect returns the graph roots found in the evidence, in order of
// preference, and the places that exist but may not be read (errors.Is
// fs.ErrPermission; nil when none).
func Detect(src evidence.Source) ([]Root, error) {
	f, roots := finder(src)
	return roots, errors.Join(f.Denied...)
}

// finder looks for graph roots: storage.conf's, the default one, then
// rootless stores in the users' homes; each with its run root.
func finder(src evidence.Source) (*pathutil.Finder, []Root) {
	f := &pathutil.Finder{Src: src, What: "graph root", Hint: "use --storage-root; OpenAll reads them all", IsRoot: func(r string) (bool, error) { return isGraphRoot(src, r) }}
	var out []Root
	add := func(g, run, note string) {
		if g == "" {
			return
		}
		r := Root{Graph: "/" + g, Note: note}
		if run != "" && isDir(src, run) {
			r.Run = "/" + run
		}
		out = append(out, r)
	}
	defRun := ""
	if r, err := evidence.Resolve(src, defaultRunRoot, true); err == nil {
		defRun = r
	}
	if b := f.ReadConfig(storageConf, maxConfig); b != nil {
		var cfg struct {
			Storage struct {
				GraphRoot string `toml:"graphroot"`
				RunRoot   string `toml:"runroot"`
			} `toml:"storage"`
		}
		if toml.Unmarshal(b, &cfg) == nil && cfg.Storage.GraphRoot != "" {
			g, note := f.Host(cfg.Storage.GraphRoot, fmt.Sprintf("graph root %s from /%s", cfg.Storage.GraphRoot, storageConf))
			run := defRun
			if cfg.Storage.RunRoot != "" {
				if r, _ := pathutil.Rebase(src, cfg.Storage.RunRoot, func(r string) bool { return isDir(src, r) }); r != "" {
					run = r
				}
			}
			add(g, run, note)
		}
	}
	add(f.Known(defaultGraphRoot, ""), defRun, "")
	for _, h := range pathutil.Homes(src) {
		r, err := evidence.Resolve(src, path.Join(h.Dir, rootlessStore), true)
		note := fmt.Sprintf("rootless store of /%s", h.Dir)
		if err != nil || !f.Add(r, note) {
			continue
		}
		run := ""
		if h.UID != 0 {
			if rr, err := evidence.Resolve(src, fmt.Sprintf("run/user/%d/containers", h.UID), true); err == nil {
				run = rr
			}
		}
		add(r, run, note)
	}
	return f, out
}
