package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/render"
)

func init() {
	register(&command{
		name:    "recover",
		args:    "[CONTAINER ... | --all] [-d OUTDIR]",
		summary: "files deleted from containers' upper dirs that the disk image's filesystem still holds (never shown as live content)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o recoverFlags
			fs.BoolVar(&o.all, "all", false, "every container, everything deleted under the runtimes' roots, and the files known only by inode on their filesystems")
			fs.StringVarP(&o.dir, "dir", "d", "", "write each recovered file here (created; existing files are not overwritten), with manifest.json")
			return func(a *app, args []string) error { return runRecover(a, args, o) }
		},
	})
}

type recoverFlags struct {
	all bool
	dir string
}

// recoverManifest is manifest.json of recover -d: the records, each with
// the file its bytes were written to.
type recoverManifest struct {
	Evidence  string          `json:"evidence"`
	Recovered []recoveredFile `json:"recovered"`
}

type recoveredFile struct {
	forensics.Recovered
	// File is the name in OUTDIR of the recovered bytes; null when
	// nothing was recoverable.
	File *string `json:"file"`
}

func runRecover(a *app, args []string, o recoverFlags) error {
	if len(args) == 0 && !o.all {
		return usagef("name containers, or --all")
	}
	if len(args) > 0 && o.all {
		return usagef("name containers or give --all, not both")
	}
	if o.dir != "" {
		if err := a.checkOutput(o.dir); err != nil {
			return err
		}
	}
	n, err := a.node()
	if err != nil {
		return err
	}
	recs, warns, err := n.Recover(context.Background(), args, &forensics.RecoverOptions{All: o.all})
	if errors.Is(err, forensics.ErrNeedsDiskImage) {
		return fmt.Errorf("%s: %w", a.root, forensics.ErrNeedsDiskImage)
	}
	if err != nil {
		return err
	}
	for _, w := range warns {
		a.warn(w.String())
	}
	if o.dir != "" {
		files, err := a.writeRecovered(o.dir, recs)
		if err != nil {
			return err
		}
		return a.showRecovered(files, true)
	}
	files := make([]recoveredFile, len(recs))
	for i := range recs {
		files[i] = recoveredFile{Recovered: recs[i]}
	}
	return a.showRecovered(files, false)
}

func (a *app) showRecovered(files []recoveredFile, written bool) error {
	cols := []string{"CONTAINER#", "PATH/", "INODE=", "TYPE", "SIZE=", "RECOVERED=", "COMPLETE=", "METHOD", "MTIME=", "DELETED AT=", "SHA256#"}
	if written {
		cols = append(cols, "FILE")
	}
	t := render.Cols(cols...)
	recs := make([]forensics.Recovered, len(files))
	for i, f := range files {
		r := f.Recovered
		recs[i] = r
		p := ""
		switch {
		case r.Path != nil:
			p = *r.Path
		case r.EvidencePath != nil:
			p = *r.EvidencePath
		}
		cells := []any{deref(r.ContainerID), p, r.Inode, r.Type, r.Size, r.RecoveredBytes, r.Complete, r.Method, r.Mtime, r.DeletedAt, deref(r.SHA256)}
		if written {
			cells = append(cells, deref(f.File))
		}
		t.Row(cells...)
	}
	if a.output == "table" && len(files) == 0 {
		fmt.Fprintln(a.stdout, "nothing deleted was found that the filesystem still holds")
		return nil
	}
	if written {
		return a.show(files, t)
	}
	return a.show(recs, t)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// writeRecovered writes each record's recovered bytes to dir (created),
// as NNNN-ino<inode>-<name>, never over an existing file and never inside
// the evidence, then manifest.json.
func (a *app) writeRecovered(dir string, recs []forensics.Recovered) ([]recoveredFile, error) {
	if err := a.checkOutput(dir); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s exists and is not empty: name a new directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := make([]recoveredFile, len(recs))
	for i := range recs {
		r := &recs[i]
		files[i] = recoveredFile{Recovered: *r}
		if r.RecoveredBytes == 0 || r.SHA256 == nil {
			continue
		}
		name := fmt.Sprintf("%04d-ino%d-%s", i+1, r.Inode, safeName(r))
		if err := a.writeOne(filepath.Join(dir, name), r); err != nil {
			return nil, err
		}
		files[i].File = &name
	}
	m := recoverManifest{Evidence: a.root, Recovered: files}
	f, err := a.createOut(filepath.Join(dir, "manifest.json"), false)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		f.Close()
		return nil, err
	}
	return files, f.Close()
}

func (a *app) writeOne(name string, r *forensics.Recovered) error {
	rd, err := r.Open()
	if err != nil {
		return err
	}
	f, err := a.createOut(name, false)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rd); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

// safeName is the base name of a record's path, kept to a portable file
// name ("unnamed" when only the inode is known).
func safeName(r *forensics.Recovered) string {
	base := "unnamed"
	if r.EvidencePath != nil {
		base = path.Base(*r.EvidencePath)
	}
	var b strings.Builder
	for _, c := range base {
		switch {
		case c == '/' || c == 0 || c < 0x20 || c == 0x7f:
			b.WriteByte('_')
		default:
			b.WriteRune(c)
		}
		if b.Len() >= 100 {
			break
		}
	}
	s := b.String()
	if s == "." || s == ".." || s == "" {
		s = "unnamed"
	}
	return s
}
