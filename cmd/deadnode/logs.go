package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/kube"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/render"
)

func init() {
	register(&command{
		name:    "logs",
		args:    "[CONTAINER | --pod NS/NAME] [--since T] [--until T] [--grep RE]",
		summary: "container logs (CRI files with their rotations, Docker json-file, Podman k8s-file), merged by time; T is RFC 3339 or a duration before the newest selected line (2h, 30m, 3d)",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var o logsFlags
			fs.StringVar(&o.pod, "pod", "", "the logs of a pod, NAMESPACE/NAME (with CONTAINER: that container of the pod)")
			fs.StringVar(&o.since, "since", "", "lines at or after T: RFC 3339 (2026-11-26T21:00:00Z), a date (2026-11-26, UTC), or a duration (2h, 90m, 3d) before the newest selected line")
			fs.StringVar(&o.until, "until", "", "lines at or before T (as --since)")
			fs.StringVar(&o.grep, "grep", "", "lines whose text matches this regular expression (Go syntax)")
			return func(a *app, args []string) error { return runLogs(a, args, o) }
		},
	})
}

type logsFlags struct {
	pod, since, until, grep string
}

// maxLogWarnings bounds the per-line warnings printed.
const maxLogWarnings = 100

func runLogs(a *app, args []string, o logsFlags) error {
	if len(args) > 1 {
		return usagef("logs takes at most one CONTAINER")
	}
	var f kube.LogFilter
	if o.grep != "" {
		re, err := regexp.Compile(o.grep)
		if err != nil {
			return usagef("--grep: %v", err)
		}
		f.Grep = re
	}
	if o.pod != "" {
		if ns, name, ok := strings.Cut(o.pod, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return usagef("--pod takes NAMESPACE/NAME")
		}
	}
	for _, t := range []string{o.since, o.until} {
		if _, _, err := parseLogTime(t); err != nil {
			return usagef("%v", err)
		}
	}
	n, err := a.evidence()
	if err != nil {
		return err
	}
	ctx := context.Background()
	f.Containers = n.Containers()
	what, ref := "", ""
	switch {
	case o.pod != "" && len(args) == 1:
		f.Pod, f.Container = o.pod, o.pod+"/"+args[0]
		what, ref = "log of container", f.Container
	case o.pod != "":
		f.Pod = o.pod
		what, ref = "log of pod", o.pod
	case len(args) == 1:
		what, ref = "log of container", args[0]
		if err := logsOf(n, args[0], &f); err != nil {
			return err
		}
	}
	if what != "" {
		if files, _ := kube.LogFiles(ctx, n.Src, f); len(files) == 0 {
			return &forensics.NotFoundError{What: what, Ref: ref, Hint: "deadnode logs alone lists every log"}
		}
	}
	if f.Since, err = logTime(ctx, n, f, o.since, "--since"); err != nil {
		return err
	}
	if f.Until, err = logTime(ctx, n, f, o.until, "--until"); err != nil {
		return err
	}
	lines := a.logLines(kube.Logs(ctx, n.Src, f))
	bw := bufio.NewWriter(a.stdout)
	defer bw.Flush()
	switch a.output {
	case "jsonl":
		return writeJSONLines(bw, lines)
	case "json":
		return writeJSONSeq(bw, lines)
	}
	return writeLogTable(bw, lines, a.renderOptions())
}

// logsOf selects a container's logs: found by the node's lookup, every
// attempt of its name in its pod (or its id outside pods); a reference
// the runtimes do not know is matched by the log files' own names (logs
// outlive the containers they came from).
func logsOf(n *forensics.Node, ref string, f *kube.LogFilter) error {
	c, err := n.FindContainer(ref)
	switch {
	case err == nil:
		if c.Kind == model.KindSandbox {
			if c.Pod == nil || c.Pod.Name == "" {
				return fmt.Errorf("%s is a pod sandbox: it writes no log", ref)
			}
			return fmt.Errorf("%s is a pod sandbox: it writes no log (try --pod %s/%s)", ref, c.Pod.Namespace, c.Pod.Name)
		}
		if c.Pod != nil && c.Pod.UID != "" {
			f.PodUID, f.Container = c.Pod.UID, c.Pod.Namespace+"/"+c.Pod.Name+"/"+c.ContainerName
		} else {
			f.Container = c.ID
		}
	case errors.Is(err, forensics.ErrAmbiguous):
		return err
	default:
		f.Container = ref
	}
	return nil
}

// logLines passes lines on, printing the first warnings.
func (a *app) logLines(seq iter.Seq2[kube.LogLine, error]) iter.Seq2[kube.LogLine, error] {
	return func(yield func(kube.LogLine, error) bool) {
		warned := 0
		for l, err := range seq {
			if err != nil {
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					yield(l, err)
					return
				}
				warned++
				if warned <= maxLogWarnings {
					a.warn(err.Error())
				}
				continue
			}
			if !yield(l, nil) {
				return
			}
		}
		if warned > maxLogWarnings {
			a.warn(fmt.Sprintf("%d more log warnings not shown", warned-maxLogWarnings))
		}
	}
}

// parseLogTime reads T: RFC 3339, a date (UTC midnight), or a duration
// (returned as rel, to be counted back from the newest line).
func parseLogTime(s string) (abs time.Time, rel time.Duration, err error) {
	if s == "" {
		return time.Time{}, 0, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), 0, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil && strings.HasSuffix(s, "d") {
		if days, e := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64); e == nil && days >= 0 && days < 1e5 {
			d, err = time.Duration(days*24*float64(time.Hour)), nil
		}
	}
	if err != nil || d < 0 {
		return time.Time{}, 0, fmt.Errorf("%q is neither RFC 3339 (2026-11-26T21:00:00Z), a date (2026-11-26) nor a duration (2h, 90m, 3d)", s)
	}
	return time.Time{}, d, nil
}

// logTime resolves a --since/--until value; a duration counts back from
// the newest line the filter selects (without its time bounds and grep):
// a dead node has no "now".
func logTime(ctx context.Context, n *forensics.Node, f kube.LogFilter, s, flag string) (time.Time, error) {
	abs, rel, err := parseLogTime(s)
	if err != nil || s == "" || !abs.IsZero() {
		return abs, err
	}
	f.Since, f.Until, f.Grep = time.Time{}, time.Time{}, nil
	var newest time.Time
	for l, err := range kube.Logs(ctx, n.Src, f) {
		if err == nil && l.Time.After(newest) {
			newest = l.Time.Time
		}
	}
	if newest.IsZero() {
		return time.Time{}, fmt.Errorf("%s %s: no dated log line to count back from", flag, s)
	}
	return newest.Add(-rel), nil
}

// writeLogTable prints TIME, STREAM, POD, CONTAINER and TEXT (cleaned: log
// text is the container's, hostile) in aligned blocks of 1000 lines.
func writeLogTable(w io.Writer, lines iter.Seq2[kube.LogLine, error], opt *render.Options) error {
	cols := []string{"TIME=", "STREAM", "POD", "CONTAINER", "TEXT"}
	t := render.Cols(cols...)
	for l, err := range lines {
		if err != nil {
			return err
		}
		name := l.Container
		if name == "" {
			name = render.ShortID(l.ContainerID)
		}
		text := l.Text
		if l.Truncated {
			text += " …(cut)"
		}
		t.Row(l.Time, l.Stream, l.Pod, name, text)
		if t.Len() >= 1000 {
			if err := render.WriteTable(w, t, opt); err != nil {
				return err
			}
			t = render.Cols(cols...)
			t.Title("")
		}
	}
	return render.WriteTable(w, t, opt)
}
