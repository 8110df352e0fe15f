package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/overlay"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "export",
		args:    "CONTAINER [--merged | --upper] -f OUT.tar|- [--manifest FILE]",
		summary: "write a container's merged root (or its upper layer as an OCI layer diff) as a tar, with a sha256 manifest",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o exportFlags
			fs.BoolVar(&o.merged, "merged", false, "the merged root filesystem (default)")
			fs.BoolVar(&o.upper, "upper", false, "the upper (writable) layer as an OCI layer diff with .wh. whiteouts")
			fs.StringVarP(&o.file, "file", "f", "", "the tar to write; - for stdout")
			fs.StringVar(&o.manifest, "manifest", "", "write the manifest (path, type, size, sha256, mode of every member) as JSON to FILE")
			fs.BoolVar(&o.force, "force", false, "overwrite existing output files")
			fs.BoolVar(&o.noXattrs, "no-xattrs", false, "leave extended attributes out")
			return func(a *app, args []string) error { return runExport(a, args, o) }
		},
	})
}

type exportFlags struct {
	merged, upper, force, noXattrs bool
	file, manifest                 string
}

// exportSummary is what export prints when done.
type exportSummary struct {
	Tool      forensics.ToolInfo `json:"tool"`
	Container string             `json:"container"`
	Kind      string             `json:"kind"` // merged or upper
	File      string             `json:"file"`
	Members   int                `json:"members"`
	Bytes     int64              `json:"bytes"`  // size of the tar
	SHA256    string             `json:"sha256"` // of the tar
	Manifest  string             `json:"manifest,omitempty"`
	Errors    []string           `json:"errors,omitempty"`
}

type countHash struct {
	w io.Writer
	n int64
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func (c *countHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func runExport(a *app, args []string, o exportFlags) error {
	for _, out := range []string{o.file, o.manifest} {
		if err := a.checkOutput(out); err != nil {
			return err
		}
	}
	if len(args) != 1 {
		return usagef("export takes one CONTAINER")
	}
	if o.merged && o.upper {
		return usagef("--merged and --upper exclude each other")
	}
	if o.file == "" {
		return usagef("-f OUT.tar (or - for stdout) is required")
	}
	kind := "merged"
	if o.upper {
		kind = "upper"
	}
	var out io.Writer
	if o.file == "-" {
		if f, ok := a.stdout.(*os.File); ok && isTerminal(f) {
			return usagef("refusing to write a tar to a terminal; redirect stdout or use -f FILE")
		}
		out = a.stdout
	}
	n, err := a.node()
	if err != nil {
		return err
	}
	c, err := n.FindContainer(args[0])
	if err != nil {
		return err
	}
	ds, err := n.ContainerDrift(c)
	if err != nil {
		return err
	}
	if o.manifest != "" && !o.force {
		if _, err := os.Lstat(o.manifest); err == nil {
			return fmt.Errorf("%s exists (use --force to overwrite)", o.manifest)
		}
	}
	if out == nil {
		f, err := a.createOut(o.file, o.force)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	// The manifest is opened before the work too: an existing one is
	// refused before a tar is written, and it may not be the tar itself.
	var mf *os.File
	if o.manifest != "" {
		if o.file != "-" {
			ts, terr := os.Stat(o.file)
			if ms, merr := os.Stat(o.manifest); terr == nil && merr == nil && ts.Mode().IsRegular() && os.SameFile(ts, ms) {
				return usagef("--manifest %s is the tar itself", o.manifest)
			}
		}
		if mf, err = a.createOut(o.manifest, o.force); err != nil {
			return err
		}
		defer mf.Close()
	}
	cw := &countHash{w: out, h: sha256.New()}
	p := a.newProgress("export "+kind, 0)
	opt := &overlay.ExportOptions{NoXattrs: o.noXattrs, Progress: func(pr overlay.Progress) { p.Add(1) }}
	var man []overlay.ManifestEntry
	members := 0
	// The manifest is kept only when it is to be written: an export of 10⁶
	// members then holds no entry per member.
	collect := func(exp iter.Seq2[overlay.ManifestEntry, error]) error {
		if o.manifest == "" {
			n, err := overlay.CountManifest(exp)
			members = n
			return err
		}
		m, err := overlay.CollectManifest(exp)
		man, members = m, len(m)
		return err
	}
	var xerr error
	if o.upper {
		var lower *overlay.View
		if len(ds.Lowers) > 0 {
			if lower, err = overlay.New(ds.Lowers, nil); err != nil {
				p.Done()
				return fmt.Errorf("container %s: lower layers: %w", c.ID, err)
			}
		}
		xerr = collect(overlay.ExportUpper(context.Background(), cw, ds.Upper, lower, opt))
	} else {
		v, err := overlay.New(append([]overlay.Layer{ds.Upper}, ds.Lowers...), nil)
		if err != nil {
			p.Done()
			return fmt.Errorf("container %s: %w", c.ID, err)
		}
		xerr = collect(overlay.ExportMerged(context.Background(), cw, v, opt))
	}
	p.Done()
	sum := exportSummary{Tool: forensics.ToolVersion(), Container: c.ID, Kind: kind, File: o.file, Members: members, Bytes: cw.n, SHA256: hex.EncodeToString(cw.h.Sum(nil)), Manifest: o.manifest}
	if xerr != nil {
		// A failing writer leaves a truncated tar and is an error; errors
		// of single entries are reported and the export stands.
		if errors.Is(xerr, overlay.ErrOutput) {
			return xerr
		}
		for _, e := range splitErr(xerr) {
			sum.Errors = append(sum.Errors, e.Error())
			a.warn(e.Error())
		}
	}
	if f, ok := out.(*os.File); ok && out != a.stdout {
		// Flush a written tar to disk before reporting its hash (devices
		// and pipes have nothing to sync).
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if err := f.Sync(); err != nil {
				return err
			}
		}
	}
	if mf != nil {
		enc := json.NewEncoder(mf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if man == nil {
			man = []overlay.ManifestEntry{}
		}
		err = enc.Encode(man)
		if cerr := mf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	// With the tar on stdout, the summary goes to stderr.
	if o.file == "-" {
		saved := a.stdout
		a.stdout = a.stderr
		defer func() { a.stdout = saved }()
	}
	return a.render(sum, func(w io.Writer) {
		kv := func(k string, v any) { fmt.Fprintf(w, "%s:\t%s\n", k, cleanCell(fmt.Sprint(v))) }
		kv("Container", sum.Container)
		kv("Export", sum.Kind)
		kv("File", sum.File)
		kv("Members", sum.Members)
		kv("Bytes", sum.Bytes)
		kv("SHA256", sum.SHA256)
		if sum.Manifest != "" {
			kv("Manifest", sum.Manifest)
		}
		kv("Errors", len(sum.Errors))
	})
}
