package render

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/deadnode/deadnode/internal/ptr"
)

// Format is an output format.
type Format string

// Formats every command offers.
const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
	FormatJSONL Format = "jsonl"
)

// ParseFormat checks a -o value.
func ParseFormat(s string, extra ...Format) (Format, error) {
	for _, f := range append([]Format{FormatTable, FormatJSON, FormatJSONL}, extra...) {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("-o must be table, json or jsonl, not %q", s)
}

// Kind says how a column's cells may be shortened to fit a width.
type Kind int

const (
	// Text shortens at the end, with an ellipsis.
	Text Kind = iota
	// Path shortens in the middle, keeping both ends of a path.
	Path
	// ID is a hex id or digest: printed short (12 digits) unless Wide, and
	// shortened in the middle when that is still too long.
	ID
	// Fixed never shortens (numbers, states, times).
	Fixed
)

// Column is a table column.
type Column struct {
	Name string
	Kind Kind
}

// Table is rows of cells under columns, or key-value lines. Titles and
// blank lines split it into blocks, each aligned on its own (a header row
// starts each block of a table that has one).
type Table struct {
	Columns []Column
	lines   []line
	// kv marks a key-value table: "Key:  value" lines, no header.
	kv bool
	// explicitHeaders is set once Title or Header was used: the first
	// block then gets no implied header.
	explicitHeaders bool
}

type lineKind int

const (
	lineRow lineKind = iota
	lineHeader
	lineTitle
	lineBlank
)

type line struct {
	kind  lineKind
	cells []string
}

// NewTable starts a table with these columns.
func NewTable(cols ...Column) *Table { return &Table{Columns: cols} }

// Cols makes Text columns from names; a name may end in a kind marker:
// "ID#" (ID), "DIR/" (Path), "SIZE=" (Fixed).
func Cols(names ...string) *Table {
	t := &Table{}
	for _, n := range names {
		k := Text
		switch {
		case strings.HasSuffix(n, "#"):
			k, n = ID, strings.TrimSuffix(n, "#")
		case strings.HasSuffix(n, "/") && n != "/":
			k, n = Path, strings.TrimSuffix(n, "/")
		case strings.HasSuffix(n, "="):
			k, n = Fixed, strings.TrimSuffix(n, "=")
		}
		t.Columns = append(t.Columns, Column{Name: n, Kind: k})
	}
	return t
}

// KeyValue starts a key-value table ("Key:  value" lines).
func KeyValue() *Table {
	return &Table{kv: true, Columns: []Column{{Name: "KEY", Kind: Fixed}, {Name: "VALUE", Kind: Text}}}
}

// Row adds a row; each cell prints with fmt.Sprint, "" as "-".
func (t *Table) Row(cells ...any) {
	r := make([]string, len(cells))
	for i, c := range cells {
		s := fmt.Sprint(c)
		if s == "" && !t.kv {
			s = "-"
		}
		r[i] = s
	}
	t.lines = append(t.lines, line{kind: lineRow, cells: r})
}

// Len is the number of rows.
func (t *Table) Len() int {
	n := 0
	for _, l := range t.lines {
		if l.kind == lineRow {
			n++
		}
	}
	return n
}

// Title adds a line of its own (e.g. "container x: 3 findings") that ends
// the block before it; with headers, the rows after it start with a
// header row of their own (call Header).
func (t *Table) Title(s string) {
	t.explicitHeaders = true
	t.lines = append(t.lines, line{kind: lineTitle, cells: []string{s}})
}

// Header adds the column names as a row (the first block gets one by
// itself unless Title or Header was used).
func (t *Table) Header() {
	t.explicitHeaders = true
	t.lines = append(t.lines, line{kind: lineHeader})
}

// Break adds an empty line that ends a block.
func (t *Table) Break() { t.lines = append(t.lines, line{kind: lineBlank}) }

// KVBreak adds an empty line between two records of a key-value table.
func (t *Table) KVBreak() { t.Break() }

// KV adds a key-value line (skipped when the value prints empty).
func (t *Table) KV(key string, v any) {
	if s := fmt.Sprint(v); s != "" {
		t.lines = append(t.lines, line{kind: lineRow, cells: []string{key + ":", s}})
	}
}

// KVAlways adds a key-value line even when the value is empty.
func (t *Table) KVAlways(key string, v any) {
	t.lines = append(t.lines, line{kind: lineRow, cells: []string{key + ":", fmt.Sprint(v)}})
}

// Options say how to write.
type Options struct {
	Format Format
	// Width is the terminal's width in columns; 0 means no limit.
	Width int
	// Wide prints every cell whole (ids and hashes too).
	Wide bool
}

// Write prints v as JSON (indented) or JSON Lines (a slice prints one
// element per line), or t as a table.
func Write(w io.Writer, v any, t *Table, opt *Options) error {
	o := ptr.Value(opt)
	switch o.Format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case FormatJSONL:
		enc := json.NewEncoder(w)
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
	if t == nil {
		return nil
	}
	return t.write(w, o)
}

// WriteTable prints a table.
func WriteTable(w io.Writer, t *Table, opt *Options) error {
	o := ptr.Value(opt)
	return t.write(w, o)
}

const gap = 2

func (t *Table) write(w io.Writer, o Options) error {
	lines := t.lines
	if !t.kv && !t.explicitHeaders {
		lines = append([]line{{kind: lineHeader}}, lines...)
	}
	n := len(t.Columns)
	var b strings.Builder
	for start := 0; start < len(lines); {
		end := start
		for end < len(lines) && (lines[end].kind == lineRow || lines[end].kind == lineHeader) {
			end++
		}
		if end == start {
			l := lines[start]
			if l.kind == lineTitle {
				b.WriteString(Clean(l.cells[0]))
			}
			b.WriteByte('\n')
			start++
			continue
		}
		block := make([][]string, 0, end-start)
		kinds := make([]lineKind, 0, end-start)
		for _, l := range lines[start:end] {
			cells := make([]string, min(n, len(l.cells)))
			if l.kind == lineHeader {
				cells = make([]string, n)
				for i, c := range t.Columns {
					cells[i] = c.Name
				}
			} else {
				for i := range cells {
					s := Clean(l.cells[i])
					if t.Columns[i].Kind == ID && !o.Wide {
						s = ShortID(s)
					}
					cells[i] = s
				}
			}
			block = append(block, cells)
			kinds = append(kinds, l.kind)
		}
		width := make([]int, n)
		for _, r := range block {
			for i, c := range r {
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
		if o.Width > 0 && !o.Wide {
			fit(t.Columns, width, o.Width, t.kv)
		}
		for ri, r := range block {
			var line strings.Builder
			for i, c := range r {
				switch {
				case t.kv && i == 0:
				case kinds[ri] == lineHeader:
					c = shorten(c, width[i], Text)
				default:
					c = shorten(c, width[i], t.Columns[i].Kind)
				}
				line.WriteString(c)
				if i < len(r)-1 {
					line.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+gap))
				}
			}
			b.WriteString(line.String())
			b.WriteByte('\n')
		}
		start = end
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// min widths a column keeps when shrunk.
func minWidth(c Column) int {
	switch c.Kind {
	case ID:
		return 12
	case Path:
		return 20
	case Text:
		return 12
	}
	return 1 << 30
}

// fit shrinks the widest shrinkable columns until the row fits total.
func fit(cols []Column, width []int, total int, kv bool) {
	sum := func() int {
		s := gap * (len(width) - 1)
		for _, w := range width {
			s += w
		}
		return s
	}
	for over := sum() - total; over > 0; over = sum() - total {
		best := -1
		for i, c := range cols {
			if kv && i == 0 {
				continue
			}
			if c.Kind == Fixed || width[i] <= minWidth(c) || (c.Kind == Text && len(cols) > 1 && !kv && i != len(cols)-1 && width[i] < 24) {
				continue
			}
			if best < 0 || width[i] > width[best] {
				best = i
			}
		}
		if best < 0 {
			return
		}
		width[best] = max(minWidth(cols[best]), width[best]-over)
	}
}

// shorten cuts s to n runes with an ellipsis, in the middle for ids and
// paths, at the end for text.
func shorten(s string, n int, k Kind) string {
	if utf8.RuneCountInString(s) <= n || n < 2 || k == Fixed {
		return s
	}
	r := []rune(s)
	if k == Text {
		return string(r[:n-1]) + "…"
	}
	head := (n - 1) / 2
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// Plural counts in words: "1 finding", "0 findings", "3 entries".
func Plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if k := len(what); k > 1 && what[k-1] == 'y' && !strings.ContainsRune("aeiou", rune(what[k-2])) {
		return strconv.Itoa(n) + " " + what[:k-1] + "ies"
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// ShortID abbreviates a 64-hex-digit id (optionally "alg:"-prefixed) to 12
// digits; other text is kept whole.
func ShortID(id string) string {
	pre, hex := "", id
	if i := strings.IndexByte(id, ':'); i >= 0 {
		pre, hex = id[:i+1], id[i+1:]
	}
	if len(hex) < 32 || strings.Trim(hex, "0123456789abcdef") != "" {
		return id
	}
	return pre + hex[:12]
}

// Clean makes text from the evidence safe for a terminal or a line-based
// format: text that is valid UTF-8 made only of printable runes and spaces
// is kept as it is; otherwise it is escaped as a Go string literal's body
// (\x1b, \u009b, \n, \xff …), so nothing in it can act on the terminal.
func Clean(s string) string {
	if safe(s) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

func safe(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return false
		}
		if !unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
		i += n
	}
	return true
}

// Line writes one line of text from the evidence (a note, a warning),
// cleaned, with a prefix.
func Line(w io.Writer, prefix, text string) {
	io.WriteString(w, prefix+Clean(text)+"\n")
}
