package report

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/deadnode/deadnode/checkpoint"
	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/render"
)

//go:embed report.html.tmpl
var pageTemplate string

//go:embed report.css
var pageCSS string

//go:embed report.js
var pageJS string

var tmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"clean":  render.Clean,
	"sev":    func(s model.Severity) string { return s.String() },
	"short":  render.ShortID,
	"plural": render.Plural,
	"join":   strings.Join,
	"pid": func(p *int) string {
		if p == nil {
			return ""
		}
		return fmt.Sprint(*p)
	},
	"time": func(t model.Time) string { return t.String() },
	"inc":  func(i int) int { return i + 1 },
	"hex":  func(v uint64) string { return fmt.Sprintf("0x%x", v) },
}).Parse(pageTemplate))

// page is what the template receives.
type page struct {
	Case        *forensics.Case
	Kubelet     *forensics.KubeletSummary
	CSS         template.CSS
	JS          template.JS
	CSP         string
	Title       string
	Pods        []podGroup
	Severities  []string
	Chart       template.HTML
	SHA256      string
	CkptByID    map[string][]*forensics.CheckpointSummary
	Trees       map[string][]treeRow
	TopFindings int
}

type podGroup struct {
	Name       string
	Risk       model.Severity
	Containers []forensics.ContainerCase
}

// treeRow is one process of a checkpoint's tree, indented.
type treeRow struct {
	Depth   int
	Indent  string
	Process checkpoint.Process
}

// HTML writes the case as one self-contained HTML page.
func HTML(w io.Writer, cs *forensics.Case) error {
	p := page{Case: cs, CSS: template.CSS(pageCSS), JS: template.JS(pageJS),
		Severities: []string{"critical", "high", "medium", "low", "info"},
		CkptByID:   map[string][]*forensics.CheckpointSummary{}, Trees: map[string][]treeRow{}}
	p.CSP = fmt.Sprintf("default-src 'none'; style-src 'sha256-%s'; script-src 'sha256-%s'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		b64sha(pageCSS), b64sha(pageJS))
	p.Title = "deadnode triage"
	if cs.Node.Hostname != "" {
		p.Title += " — " + render.Clean(cs.Node.Hostname)
	}
	if cs.Evidence.SHA256 != nil {
		p.SHA256 = *cs.Evidence.SHA256
	}
	groups := map[string]*podGroup{}
	var order []string
	for _, c := range cs.Containers {
		k := c.Pod
		if k == "" {
			k = "(no pod)"
		}
		g := groups[k]
		if g == nil {
			g = &podGroup{Name: k}
			groups[k] = g
			order = append(order, k)
		}
		if c.Risk > g.Risk {
			g.Risk = c.Risk
		}
		g.Containers = append(g.Containers, c)
	}
	sort.SliceStable(order, func(i, j int) bool { return groups[order[i]].Risk > groups[order[j]].Risk })
	for _, k := range order {
		p.Pods = append(p.Pods, *groups[k])
	}
	for i := range cs.Checkpoints {
		c := &cs.Checkpoints[i]
		p.CkptByID[c.ContainerID] = append(p.CkptByID[c.ContainerID], c)
		p.Trees[c.Ref] = tree(c.Processes)
	}
	p.Chart = chart(cs)
	if k, ok := cs.Node.Kubelet.(*forensics.KubeletSummary); ok {
		p.Kubelet = k
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

func b64sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(h[:])
}

// tree orders processes depth first from the roots, with depth (capped
// for display).
func tree(ps []checkpoint.Process) []treeRow {
	kids := map[uint32][]int{}
	known := map[uint32]bool{}
	for _, p := range ps {
		known[p.PID] = true
	}
	var roots []int
	for i, p := range ps {
		if known[p.PPID] && p.PPID != p.PID {
			kids[p.PPID] = append(kids[p.PPID], i)
		} else {
			roots = append(roots, i)
		}
	}
	var out []treeRow
	seen := map[int]bool{}
	type item struct{ i, d int }
	stack := []item{}
	for k := len(roots) - 1; k >= 0; k-- {
		stack = append(stack, item{roots[k], 0})
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[it.i] {
			continue
		}
		seen[it.i] = true
		d := min(it.d, 16)
		out = append(out, treeRow{Depth: it.d, Indent: strings.Repeat("  ", d), Process: ps[it.i]})
		c := kids[ps[it.i].PID]
		for k := len(c) - 1; k >= 0; k-- {
			stack = append(stack, item{c[k], it.d + 1})
		}
	}
	return out
}

// chart draws the timeline of the case as an inline SVG: one tick per
// event, findings marked by severity.
func chart(cs *forensics.Case) template.HTML {
	if len(cs.Timeline) == 0 {
		return ""
	}
	lo, hi := cs.Timeline[0].Time.Time, cs.Timeline[len(cs.Timeline)-1].Time.Time
	span := hi.Sub(lo)
	if span <= 0 {
		span = time.Second
	}
	const w, h = 1000.0, 120.0
	x := func(t time.Time) float64 { return 20 + (w-40)*float64(t.Sub(lo))/float64(span) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="timeline"><line x1="20" y1="90" x2="%.0f" y2="90" class="axis"/>`, w, h, w-20)
	for _, e := range cs.Timeline {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="80" x2="%.1f" y2="100" class="tick"/>`, x(e.Time.Time), x(e.Time.Time))
	}
	// Findings with a time (drift entries): marks above the axis.
	for _, f := range cs.Findings {
		if f.Severity < model.SeverityMedium {
			continue
		}
		d, ok := f.Details.(forensics.DriftEntry)
		if !ok || d.Mtime.IsZero() || d.Mtime.Before(lo) || d.Mtime.After(hi) {
			continue
		}
		y := map[model.Severity]float64{model.SeverityCritical: 20, model.SeverityHigh: 35, model.SeverityMedium: 50}[f.Severity]
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.0f" r="5" class="mark sev-%s"><title>%s</title></circle>`, x(d.Mtime.Time), y, f.Severity,
			template.HTMLEscapeString(render.Clean(f.Summary)))
	}
	fmt.Fprintf(&b, `<text x="20" y="115" class="label">%s</text><text x="%.0f" y="115" class="label" text-anchor="end">%s</text></svg>`,
		lo.UTC().Format(time.RFC3339), w-20, hi.UTC().Format(time.RFC3339))
	return template.HTML(b.String())
}
