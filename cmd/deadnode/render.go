package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
)

// render prints v as the -o flag asks: JSON (indented), JSONL (one value
// per line; a slice prints one element per line) or a table drawn by
// table, which receives a tabwriter.
func (a *app) render(v any, table func(w io.Writer)) error {
	switch a.output {
	case "json":
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case "jsonl":
		enc := json.NewEncoder(a.stdout)
		enc.SetEscapeHTML(false)
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Slice {
			for i := 0; i < rv.Len(); i++ {
				if err := enc.Encode(rv.Index(i).Interface()); err != nil {
					return err
				}
			}
			return nil
		}
		return enc.Encode(v)
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

// cleanCell keeps hostile names from breaking the table: control characters
// are shown escaped.
func cleanCell(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}

// short abbreviates a 64-hex-digit id (optionally "alg:"-prefixed) for
// tables; other names are kept whole.
func short(id string) string {
	pre, hex := "", id
	if i := strings.IndexByte(id, ':'); i >= 0 {
		pre, hex = id[:i+1], id[i+1:]
	}
	if len(hex) < 32 || strings.Trim(hex, "0123456789abcdef") != "" {
		return id
	}
	return pre + hex[:12]
}
