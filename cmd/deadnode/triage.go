package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/render"
	"github.com/deadnode/deadnode/report"
)

func init() {
	register(&command{
		name:    "triage",
		args:    "[-f REPORT.html [--force]] [--no-memory] [--checkpoint SOURCE ...]",
		summary: "one ranked case of the node: every analyzer's findings, containers ranked by risk, the timeline around the findings, the evidence's hash and the tool's version",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o triageFlags
			fs.StringVarP(&o.report, "file", "f", "", "also write a self-contained HTML report to this file")
			fs.BoolVar(&o.force, "force", false, "overwrite an existing report file")
			fs.BoolVar(&o.noMemory, "no-memory", false, "do not read checkpoints' process memory")
			fs.StringArrayVar(&o.checkpoints, "checkpoint", nil, "a checkpoint archive or CRIU images directory on the host to include (repeatable)")
			return func(a *app, args []string) error { return runTriage(a, args, o) }
		},
	})
}

type triageFlags struct {
	report      string
	force       bool
	noMemory    bool
	checkpoints []string
}

func runTriage(a *app, args []string, o triageFlags) error {
	if len(args) != 0 {
		return usagef("triage takes no arguments")
	}
	if err := a.checkOutput(o.report, o.checkpoints...); err != nil {
		return err
	}
	n, err := a.evidence()
	if err != nil {
		return err
	}
	// The report is opened before the work: an existing one is refused at
	// once, not after the whole triage.
	var rf *os.File
	if o.report != "" {
		if rf, err = a.createOut(o.report, o.force, o.checkpoints...); err != nil {
			return err
		}
		defer rf.Close()
	}
	p := a.newProgress("triage", 0)
	defer p.Done()
	p.Start("triage: hashing the evidence", 0)
	ev, err := n.Identify(context.Background())
	if err != nil {
		if rf != nil {
			os.Remove(o.report) // nothing was written to it
		}
		return err
	}
	ev.Path = a.root // as the examiner named it
	cs, err := forensics.Triage(context.Background(), n, &forensics.TriageOptions{
		NoMemory: o.noMemory, CheckpointPaths: o.checkpoints, Evidence: ev,
		CommandLine: append([]string{"deadnode"}, os.Args[1:]...),
		Analyzers:   triageAnalyzers(),
		Progress:    func(s string) { p.Start("triage: "+s, 0) },
	})
	p.Done()
	if err != nil {
		if rf != nil {
			os.Remove(o.report) // nothing was written to it
		}
		return err
	}
	for _, w := range cs.Warnings {
		a.warn(w.String())
	}
	if rf != nil {
		if err := writeReport(rf, cs); err != nil {
			return err
		}
		if err := rf.Close(); err != nil {
			return err
		}
	}
	return a.show(cs, triageTable(cs))
}

// triageAnalyzers are the analyzers triage adds to the runtimes' own
// (the library's defaults: the same case as forensics.Triage gives).
var triageAnalyzers = forensics.DefaultAnalyzers

// writeReport writes the HTML report.
var writeReport = report.HTML

func triageTable(cs *forensics.Case) *render.Table {
	t := render.Cols("SEVERITY", "ANALYZER", "KIND", "CONTAINER#", "POD", "PID=", "SUMMARY")
	t.Title(joinNonEmpty(" ", cs.Tool.Name, cs.Tool.Version, cs.Tool.Commit) + " — " + cs.GeneratedAt.String())
	sum := "(directory: " + cs.Evidence.SHA256Note + ")"
	if cs.Evidence.SHA256 != nil {
		sum = "sha256 " + *cs.Evidence.SHA256
	}
	what := fmt.Sprintf("%s, %d bytes", cs.Evidence.Kind, cs.Evidence.Size)
	if cs.Evidence.Kind == string(evidence.KindDir) {
		what = "a directory"
	}
	t.Title(fmt.Sprintf("evidence %s (%s) %s", cs.Evidence.Path, what, sum))
	t.Title(fmt.Sprintf("node %s, %s: %s, %s, %s (%s)", firstOfStr(cs.Node.Hostname, "(hostname not recorded)"), firstOfStr(cs.Node.OS, "(OS not recorded)"), render.Plural(len(cs.Containers), "container"), render.Plural(cs.Node.Pods, "pod"), render.Plural(len(cs.Findings), "finding"), counts(cs.Counts)))
	t.Break()
	t.Title("CONTAINERS BY RISK")
	ct := 0
	for _, c := range cs.Containers {
		if c.Risk == model.SeverityInfo && c.Findings == 0 {
			continue
		}
		ct++
		t.Title(fmt.Sprintf("  %-8s %s %s %s (%s) image %s: %s", c.Risk, render.ShortID(c.ID), c.Runtime, c.Name, c.State, c.Image, render.Plural(c.Findings, "finding")))
	}
	if ct == 0 {
		t.Title("  none with findings above info")
	}
	t.Break()
	t.Title("FINDINGS (above info)")
	t.Header()
	for _, f := range cs.Findings {
		if f.Severity == model.SeverityInfo {
			continue
		}
		pid := ""
		if f.Pid != nil {
			pid = fmt.Sprint(*f.Pid)
		}
		t.Row(f.Severity, f.Analyzer, f.Kind, f.ContainerID, f.Pod, pid, f.Summary)
	}
	return t
}

func counts(m map[string]int) string {
	var parts []string
	for _, s := range []string{"critical", "high", "medium", "low", "info"} {
		if m[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

func firstOfStr(s ...string) string {
	for _, v := range s {
		if v != "" && v != "/" {
			return v
		}
	}
	return ""
}
