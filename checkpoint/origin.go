package checkpoint

import (
	"archive/tar"
	"context"
	"io"
	"path"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// Where each task's executable comes from: the container's own changes
// (rootfs-diff.tar, or containerd's RW layer), the caller's lookup in the
// image, or unknown; "deleted" when it was unlinked while running.

// exePaths lists the executables of the tasks.
func exePaths(cp *Checkpoint) map[string]bool {
	m := map[string]bool{}
	for _, p := range cp.Processes {
		if p.Exe != "" {
			m[strings.TrimPrefix(path.Clean("/"+p.Exe), "/")] = false
		}
	}
	return m
}

// setOrigins fills ExeOrigin: "deleted" stays, a path in the diff is
// "container_diff", else the caller's lookup, else "unknown".
func setOrigins(cp *Checkpoint, inDiff map[string]bool, opt *Options) {
	for i := range cp.Processes {
		p := &cp.Processes[i]
		if p.Exe == "" || p.ExeOrigin == OriginDeleted {
			continue
		}
		key := strings.TrimPrefix(path.Clean("/"+p.Exe), "/")
		switch {
		case inDiff[key]:
			p.ExeOrigin = OriginContainerDiff
		case opt != nil && opt.ExeOrigin != nil:
			if o := opt.ExeOrigin(p.Exe); o != "" {
				p.ExeOrigin = o
			}
		}
	}
}

// scanDiff reads the headers of a tar of the container's changes (plain,
// gzip or zstd: told by its magic) and marks which of the wanted paths it
// holds as regular files. Memory stays bounded: only wanted names are kept.
func scanDiff(ctx context.Context, r evidence.File, label string, want map[string]bool) (map[string]bool, *RootfsDiff, error) {
	info := &RootfsDiff{Size: r.Size()}
	for m, err := range evidence.TarStream(ctx, io.NewSectionReader(r, 0, r.Size()), &evidence.TarOptions{Label: label}) {
		if err != nil {
			return want, info, err
		}
		if t := m.Header.Typeflag; t != tar.TypeReg && t != tar.TypeLink {
			continue
		}
		info.Files++
		if _, ok := want[m.Name]; ok {
			want[m.Name] = true
		}
	}
	return want, info, nil
}

// readRootfsDiff scans rootfs-diff.tar beside the images for the tasks'
// executables and sets their origins.
func (cp *Checkpoint) readRootfsDiff(ctx context.Context, opt *Options) error {
	top := cp.top
	if !top.exists(fileRootfsDiff) {
		setOrigins(cp, nil, opt)
		return nil
	}
	f, err := top.src.Open(top.path(fileRootfsDiff))
	if err != nil {
		cp.addWarning(evidence.Warnf(top.label(fileRootfsDiff), -1, "%v; executables' origin unknown", err))
		setOrigins(cp, nil, opt)
		return nil
	}
	have, info, err := scanDiff(ctx, f, top.label(fileRootfsDiff), exePaths(cp))
	f.Close()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cp.warn(err)
	}
	info.Member = fileRootfsDiff
	cp.RootfsDiff = info
	setOrigins(cp, have, opt)
	return nil
}
