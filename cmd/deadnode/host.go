package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/forensics/host"
	"github.com/deadnode/deadnode/render"
)

func init() {
	register(&command{
		name:    "host persistence",
		args:    "",
		summary: "what the host runs on its own (cron, systemd units and timers, ld.so.preload, authorized_keys, shell rc files, rc.local, init scripts, modules, udev, OCI hooks, runtime configs), each with its owner package and a severity",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			return runHostPersistence
		},
	})
	register(&command{
		name:    "host packages",
		args:    "[--all]",
		summary: "package drift of the host: files the package database (dpkg, rpm sqlite) lists that were modified, removed or changed type, and executables or setuid files in system directories no package owns",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var all bool
			fs.BoolVar(&all, "all", false, "also list the files found as the package shipped them (change \"ok\", info)")
			return func(a *app, args []string) error { return runHostPackages(a, args, all) }
		},
	})
}

func runHostPersistence(a *app, args []string) error {
	if len(args) != 0 {
		return usagef("host persistence takes no arguments")
	}
	n, err := a.evidence()
	if err != nil {
		return err
	}
	p := a.newProgress("host persistence", 0)
	r, err := host.Persistence(context.Background(), n.Src, host.PersistenceOptions{})
	p.Done()
	if err != nil {
		return err
	}
	for _, w := range r.Warnings {
		a.warn(w.String())
	}
	if a.output == "jsonl" {
		return a.show(r.Entries, nil) // one entry a line
	}
	return a.show(r, persistenceTable(r))
}

// persistenceTable lists the entries by severity (highest first), then in
// the report's path order.
func persistenceTable(r *host.PersistenceReport) *render.Table {
	es := append([]host.Entry(nil), r.Entries...)
	sort.SliceStable(es, func(i, j int) bool { return es[i].Severity > es[j].Severity })
	t := render.Cols("SEVERITY", "KIND", "ENABLED=", "OWNER", "MTIME=", "PATH/", "TARGET", "FLAGS", "WHY")
	db := r.PackageDB
	if db == "" {
		db = "none (every entry unowned)"
	}
	sev := map[string]int{}
	for _, e := range es {
		sev[e.Severity.String()]++
	}
	t.Title(fmt.Sprintf("persistence: %s (%s); package database: %s", render.Plural(len(es), "entry"), firstOfStr(counts(sev), "none"), db))
	t.Header()
	for _, e := range es {
		at := e.Path
		if e.Line > 0 {
			at = fmt.Sprintf("%s:%d", e.Path, e.Line)
		}
		owner := ""
		if e.OwnerPackage != nil {
			owner = *e.OwnerPackage
			if e.PackageModified {
				owner += " (modified)"
			}
		}
		flags := strings.Join(e.Flags, ",")
		var missing []string
		for _, p := range e.Programs {
			if !p.Exists && p.Path != "" {
				missing = append(missing, p.Path)
			}
		}
		if len(missing) > 0 {
			flags += " (" + strings.Join(missing, ", ") + ")" // which program target_missing means
		}
		t.Row(e.Severity, e.Kind, e.Enabled, owner, e.Mtime, at, e.Target, flags, e.Why)
	}
	return t
}

func runHostPackages(a *app, args []string, all bool) error {
	if len(args) != 0 {
		return usagef("host packages takes no arguments")
	}
	n, err := a.evidence()
	if err != nil {
		return err
	}
	ctx := context.Background()
	opt := host.PackageOptions{All: all}
	p := a.newProgress("host packages", 0)
	defer p.Done()
	if a.output == "jsonl" {
		// Streamed: a row prints as soon as it is judged, and memory does
		// not grow with the number of files (--all on a full root).
		enc := json.NewEncoder(a.stdout)
		enc.SetEscapeHTML(false)
		var werr error
		r, err := host.StreamPackages(ctx, n.Src, opt, func(c host.FileChange) {
			p.Add(1)
			if werr == nil {
				werr = enc.Encode(c)
			}
		})
		p.Done()
		if err != nil {
			return err
		}
		for _, w := range r.Warnings {
			a.warn(w.String())
		}
		return werr
	}
	var changes []host.FileChange
	r, err := host.StreamPackages(ctx, n.Src, opt, func(c host.FileChange) {
		p.Add(1)
		changes = append(changes, c)
	})
	p.Done()
	if err != nil {
		return err
	}
	r.Changes = nonNil(changes)
	for _, w := range r.Warnings {
		a.warn(w.String())
	}
	return a.show(r, packagesTable(r))
}

// packagesTable lists the changes by severity (highest first), then in the
// report's order (owned files by path, then unowned ones by path).
func packagesTable(r *host.PackageReport) *render.Table {
	cs := append([]host.FileChange(nil), r.Changes...)
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Severity > cs[j].Severity })
	t := render.Cols("SEVERITY", "CHANGE", "PACKAGE", "EXEC", "MODE=", "SIZE=", "MTIME=", "PATH/", "EXPECTED#", "ACTUAL#", "IDENTICAL TO/", "FLAGS", "NOTE")
	var classes []string
	for _, k := range []string{host.ChangeModified, host.ChangeConffileModified, host.ChangeMissing, host.ChangeTypeChanged, host.ChangeModeChanged, host.ChangeUnowned, host.ChangeSetuidUnowned, host.ChangeOK} {
		if r.Counts[k] > 0 {
			classes = append(classes, fmt.Sprintf("%d %s", r.Counts[k], k))
		}
	}
	t.Title(fmt.Sprintf("packages: %s database %s, %d packages, %d owned paths, %d files checked, %d excluded by dpkg filters, %d unowned files scanned",
		r.Format, r.Database, r.Packages, r.OwnedPaths, r.Checked, r.Excluded, r.UnownedScanned))
	t.Title(fmt.Sprintf("changes: %s", firstOfStr(strings.Join(classes, ", "), "none")))
	t.Header()
	for _, c := range cs {
		pkg := ""
		if c.Package != nil {
			pkg = *c.Package
		}
		path := c.Path
		if c.LinkTarget != "" {
			path += " -> " + c.LinkTarget
		}
		var note []string
		if c.DigestAlgo != "" && (c.ExpectedDigest != "" || c.ActualDigest != "") {
			note = append(note, c.DigestAlgo)
		}
		if c.ListedPath != "" && c.Note == "" {
			note = append(note, "listed as "+c.ListedPath)
		}
		if c.ListedType != "" {
			note = append(note, "was "+c.ListedType)
		}
		if c.ListedMode != "" && c.Change == host.ChangeModeChanged {
			note = append(note, "mode was "+c.ListedMode)
		}
		if c.Interpreter != "" {
			note = append(note, "#!"+c.Interpreter)
		}
		if c.Note != "" {
			note = append(note, c.Note)
		}
		size, mode := any(c.Size), c.Mode
		if c.Type == "" {
			size = "" // missing
		}
		t.Row(c.Severity, c.Change, pkg, c.ExecKind, mode, size, c.Mtime, path, c.ExpectedDigest, c.ActualDigest, c.IdenticalTo, strings.Join(c.Flags, ","), strings.Join(note, "; "))
	}
	return t
}
