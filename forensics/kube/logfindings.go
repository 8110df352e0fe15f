package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

// LogFindings reads the selected logs once and judges each file as a
// runtime-written log (one finding per file and kind):
//   - lines older than a line before them: medium when a step back is over
//     a minute, low otherwise — a runtime writes in time order, so lines
//     out of order were inserted by hand or follow a clock set back;
//   - lines not in the runtime's format: low — written by something else,
//     or damaged;
//   - lines over the line bound: low — runtimes split lines at 16 KiB.
//
// Warnings are the per-line problems Logs reports.
func LogFindings(ctx context.Context, src evidence.Source, f LogFilter) ([]model.Finding, []evidence.Warning) {
	stats := map[string]*fileStats{}
	var warns []evidence.Warning
	logs(ctx, src, f, stats, func(_ LogLine, err error) bool {
		if err != nil {
			warns = append(warns, warningOf(err))
		}
		return true
	})
	var out []model.Finding
	paths := slices.Sorted(maps.Keys(stats))
	for _, p := range paths {
		st := stats[p]
		lf := st.file
		base := model.Finding{Analyzer: "logs", Runtime: lf.Runtime, ContainerID: lf.ContainerID, Pod: lf.Pod, Path: lf.Path,
			EvidencePath: lf.EvidencePath, Refs: []string{}, Details: LogFileReport{LogFile: lf, Lines: st.lines, BadLines: st.bad,
				TruncatedLines: st.truncated, Regressions: st.regressions, MaxStepBack: st.maxBack.String(), StepBackLine: st.backAt}}
		if st.regressions > 0 {
			g := base
			g.Severity, g.Kind = model.SeverityLow, "log_time_regression"
			if st.maxBack > time.Minute {
				g.Severity = model.SeverityMedium
			}
			g.Why = fmt.Sprintf("%d of %d lines of %s are older than a line before them (the largest step back, %s, at line %d): a runtime writes in time order, so these were inserted by hand or follow a clock set back", st.regressions, st.lines, lf.Path, st.maxBack, st.backAt)
			g.Summary = fmt.Sprintf("%d log lines out of time order in %s", st.regressions, lf.Path)
			out = append(out, g)
		}
		if st.bad > 0 {
			g := base
			g.Severity, g.Kind = model.SeverityLow, "malformed_log_lines"
			g.Why = fmt.Sprintf("%d of %d lines of %s are not %s log lines: written by something other than the runtime, or damaged", st.bad, st.lines, lf.Path, lf.Format)
			g.Summary = fmt.Sprintf("%d malformed log lines in %s", st.bad, lf.Path)
			out = append(out, g)
		}
		if st.truncated > 0 {
			g := base
			g.Severity, g.Kind = model.SeverityLow, "oversized_log_lines"
			g.Why = fmt.Sprintf("%d lines of %s are longer than the %d-byte bound (shown cut): runtimes split lines at 16 KiB, so these were not written by the runtime", st.truncated, lf.Path, maxLine(f))
			g.Summary = fmt.Sprintf("%d oversized log lines in %s", st.truncated, lf.Path)
			out = append(out, g)
		}
	}
	model.SortFindings(out)
	return model.NonNil(out), warns
}

// LogFileReport is a log finding's own record.
type LogFileReport struct {
	LogFile
	Lines          int64  `json:"lines"`
	BadLines       int64  `json:"bad_lines"`
	TruncatedLines int64  `json:"truncated_lines"`
	Regressions    int64  `json:"regressions"`
	MaxStepBack    string `json:"max_step_back"`
	StepBackLine   int64  `json:"step_back_line"`
}

func maxLine(f LogFilter) int {
	if f.MaxLineBytes > 0 {
		return f.MaxLineBytes
	}
	return MaxLineBytes
}
