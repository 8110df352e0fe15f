package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"

	"github.com/deadnode/deadnode/render"
)

// render prints v as the -o flag asks, or a table drawn by table on a
// tabwriter (commands not yet moved to render.Table).
func (a *app) render(v any, table func(w io.Writer)) error {
	if a.output != "table" {
		return render.Write(a.stdout, v, nil, a.renderOptions())
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// row writes tab-separated cells of a table row.
func row(w io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		s := fmt.Sprint(c)
		if s == "" {
			s = "-"
		}
		io.WriteString(w, cleanCell(s))
	}
	io.WriteString(w, "\n")
}

// cleanCell keeps hostile names from acting on the terminal (see
// render.Clean).
func cleanCell(s string) string { return render.Clean(s) }

// short abbreviates a 64-hex-digit id for tables.
func short(id string) string { return render.ShortID(id) }

// termWidth is the width tables fit: the terminal's when w is one, else
// $COLUMNS when set, else no limit.
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
}

// toolVersion is the module version and VCS revision deadnode was built
// from (as the Go build info records them).
type toolVersion struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Modified bool   `json:"modified"`
}

func buildVersion() toolVersion {
	v := toolVersion{Name: "deadnode", Version: "(devel)"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func versionLine() string {
	v := buildVersion()
	s := v.Name + " " + v.Version
	if v.Commit != "" {
		s += " " + v.Commit
		if v.Modified {
			s += "+modified"
		}
	}
	return s
}

// hasFlagValue reports whether flags lists name.
func hasFlagValue(flags []string, name string) bool {
	for _, f := range flags {
		if f == name {
			return true
		}
	}
	return false
}

// joinNonEmpty joins the non-empty parts with sep.
func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
