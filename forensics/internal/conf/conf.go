// Package conf splits the node's text configuration into lines and reads
// systemd unit files (systemd.syntax(7)), bounded, for the host and
// Kubernetes readers alike: one reading of a unit, whoever asks.
package conf

import (
	"bytes"
	"iter"
	"strings"
)

// Line is one line of a text file.
type Line struct {
	Num  int    // 1-based
	Text string // without the newline (and a CR before it), cut at the bound
	Long bool   // the line was longer than the bound
}

// Lines yields the lines of b, each cut at maxLine bytes, one at a time:
// a reader that stops at its own bound never holds the rest.
func Lines(b []byte, maxLine int) iter.Seq[Line] {
	return func(yield func(Line) bool) {
		for n := 1; len(b) > 0; n++ {
			i := bytes.IndexByte(b, '\n')
			var l []byte
			if i < 0 {
				l, b = b, nil
			} else {
				l, b = b[:i], b[i+1:]
			}
			tl := Line{Num: n}
			if len(l) > maxLine {
				tl.Long = true
				l = l[:maxLine]
			}
			tl.Text = strings.TrimSuffix(string(l), "\r")
			if !yield(tl) {
				return
			}
		}
	}
}

// MaxUnitValue bounds a value joined from continuation lines (systemd's
// LONG_LINE_MAX).
const MaxUnitValue = 1 << 20

// MaxDirectives bounds the assignments read from one unit file.
const MaxDirectives = 1 << 16

// Directive is one Key=Value of a unit file (or drop-in).
type Directive struct {
	Section string `json:"section"`
	Key     string `json:"key"`
	Value   string `json:"value"`
	Line    int    `json:"line"`
}

// ParseUnit reads a systemd unit file or drop-in as systemd does:
// [Section] headers, Key=Value assignments (key and value trimmed), '#'
// and ';' comments, a trailing backslash continuing the value on the next
// line with the backslash turned into a space (comment lines inside a
// continuation are skipped). It returns the assignments in order, and
// whether a line was cut at maxLine, a value at MaxUnitValue or the
// assignments at MaxDirectives.
func ParseUnit(b []byte, maxLine int) (out []Directive, long bool) {
	section := ""
	var cont *Directive
	var buf strings.Builder
	finish := func() {
		if cont != nil {
			cont.Value = strings.TrimSpace(buf.String())
			out = append(out, *cont)
			cont = nil
			buf.Reset()
		}
	}
	for l := range Lines(b, maxLine) {
		if l.Long {
			long = true
		}
		text := l.Text
		if cont != nil {
			t := strings.TrimLeft(text, " \t")
			if strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
				continue // a comment inside a continuation
			}
			more := continued(text)
			if more {
				text = text[:len(text)-1]
			}
			if buf.Len()+len(text)+1 > MaxUnitValue {
				long = true
			} else {
				buf.WriteByte(' ')
				buf.WriteString(text)
			}
			if !more {
				finish()
			}
			continue
		}
		t := strings.TrimSpace(text)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' {
			if i := strings.IndexByte(t, ']'); i > 0 {
				section = t[1:i]
			}
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		d := Directive{Section: section, Key: strings.TrimSpace(k), Line: l.Num}
		if continued(v) {
			cont = &d
			buf.WriteString(v[:len(v)-1])
			continue
		}
		d.Value = strings.TrimSpace(v)
		out = append(out, d)
		if len(out) >= MaxDirectives {
			return out, true
		}
	}
	finish()
	return out, long
}

// continued says whether a line goes on on the next: it ends in a
// backslash that is not itself escaped (an odd number of them), as
// systemd's config_parse reads it. "a\\" ends in an escaped backslash.
func continued(s string) bool {
	n := len(s) - len(strings.TrimRight(s, "\\"))
	return n%2 == 1
}
