package volume

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/deadnode/deadnode/evidence/vfs"
)

// LVM2's text metadata is a small config language:
//
//	vg0 {                          section: name { … }
//	    id = "Ab12Cd-…"            assignment: name = value
//	    seqno = 3                  values: "string", integer, float,
//	    status = ["READ", "WRITE"]         [list, of, values]
//	    physical_volumes { pv0 { … } }
//	}
//	# comments run to the end of the line
//
// cfgParse turns it into a tree, bounded in depth, node count and list
// length; errors name the byte offset.
const (
	cfgMaxDepth = 32
	cfgMaxNodes = 200000
	cfgMaxList  = 100000
)

type cfgNode struct {
	name     string
	off      int        // byte offset of the name in the text
	children []*cfgNode // a section
	value    *cfgValue  // an assignment
}

type cfgValue struct {
	kind byte // 's' string, 'i' integer, 'f' float, 'l' list
	s    string
	i    int64
	list []cfgValue
}

type cfgParser struct {
	text  string
	pos   int
	nodes int
	what  string // the structure, for errors
	base  int64  // where the text lies, for errors
}

func (p *cfgParser) fail(format string, args ...any) error {
	return &vfs.FormatError{File: p.what, Offset: p.base + int64(p.pos), Msg: fmt.Sprintf(format, args...)}
}

// parseConfig parses metadata text into the top-level section's children.
func parseConfig(text, what string, base int64) (*cfgNode, error) {
	p := &cfgParser{text: text, what: what, base: base}
	root := &cfgNode{}
	if err := p.body(root, 0, true); err != nil {
		return nil, err
	}
	return root, nil
}

func (p *cfgParser) skip() {
	for p.pos < len(p.text) {
		c := p.text[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0:
			p.pos++
		case c == '#':
			for p.pos < len(p.text) && p.text[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func isIdentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.+-/", c) >= 0
}

func (p *cfgParser) body(n *cfgNode, depth int, top bool) error {
	if depth > cfgMaxDepth {
		return p.fail("sections nested deeper than %d", cfgMaxDepth)
	}
	for {
		p.skip()
		if p.pos >= len(p.text) {
			if top {
				return nil
			}
			return p.fail("section %q not closed", n.name)
		}
		if p.text[p.pos] == '}' {
			if top {
				return p.fail("unexpected '}'")
			}
			p.pos++
			return nil
		}
		start := p.pos
		for p.pos < len(p.text) && isIdentChar(p.text[p.pos]) {
			p.pos++
		}
		if p.pos == start {
			return p.fail("unexpected %q", p.text[p.pos])
		}
		p.nodes++
		if p.nodes > cfgMaxNodes {
			return p.fail("more than %d nodes", cfgMaxNodes)
		}
		child := &cfgNode{name: p.text[start:p.pos], off: start}
		p.skip()
		if p.pos >= len(p.text) {
			return p.fail("%q: unexpected end of text", child.name)
		}
		switch p.text[p.pos] {
		case '{':
			p.pos++
			if err := p.body(child, depth+1, false); err != nil {
				return err
			}
		case '=':
			p.pos++
			v, err := p.value(0)
			if err != nil {
				return err
			}
			child.value = &v
		default:
			return p.fail("%q: expected '=' or '{'", child.name)
		}
		n.children = append(n.children, child)
	}
}

func (p *cfgParser) value(depth int) (cfgValue, error) {
	p.skip()
	if p.pos >= len(p.text) {
		return cfgValue{}, p.fail("value expected")
	}
	switch c := p.text[p.pos]; {
	case c == '"':
		start := p.pos
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.text) {
				p.pos = start
				return cfgValue{}, p.fail("string not closed")
			}
			c := p.text[p.pos]
			p.pos++
			if c == '"' {
				return cfgValue{kind: 's', s: b.String()}, nil
			}
			if c == '\\' && p.pos < len(p.text) {
				c = p.text[p.pos]
				p.pos++
			}
			b.WriteByte(c)
		}
	case c == '[':
		if depth > 0 {
			return cfgValue{}, p.fail("nested list")
		}
		p.pos++
		v := cfgValue{kind: 'l'}
		for {
			p.skip()
			if p.pos >= len(p.text) {
				return cfgValue{}, p.fail("list not closed")
			}
			if p.text[p.pos] == ']' {
				p.pos++
				return v, nil
			}
			if len(v.list) > 0 {
				if p.text[p.pos] != ',' {
					return cfgValue{}, p.fail("expected ',' or ']' in a list")
				}
				p.pos++
				p.skip()
				if p.pos < len(p.text) && p.text[p.pos] == ']' { // a trailing comma
					p.pos++
					return v, nil
				}
			}
			if len(v.list) >= cfgMaxList {
				return cfgValue{}, p.fail("list longer than %d", cfgMaxList)
			}
			e, err := p.value(depth + 1)
			if err != nil {
				return cfgValue{}, err
			}
			v.list = append(v.list, e)
		}
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		p.pos++
		for p.pos < len(p.text) && (p.text[p.pos] >= '0' && p.text[p.pos] <= '9' || p.text[p.pos] == '.') {
			p.pos++
		}
		tok := p.text[start:p.pos]
		if p.pos < len(p.text) && isIdentChar(p.text[p.pos]) {
			end := p.pos
			for end < len(p.text) && end-start < 32 && isIdentChar(p.text[end]) {
				end++
			}
			p.pos = start
			return cfgValue{}, p.fail("bad number %q", p.text[start:end])
		}
		if strings.Contains(tok, ".") {
			if _, err := strconv.ParseFloat(tok, 64); err != nil {
				return cfgValue{}, p.fail("bad number %q", tok)
			}
			return cfgValue{kind: 'f', s: tok}, nil
		}
		i, err := strconv.ParseInt(tok, 10, 64)
		if err != nil {
			return cfgValue{}, p.fail("bad integer %q", tok)
		}
		return cfgValue{kind: 'i', i: i}, nil
	default:
		return cfgValue{}, p.fail("unexpected %q where a value belongs", c)
	}
}

// child returns the first child named name.
func (n *cfgNode) child(name string) *cfgNode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (n *cfgNode) str(name string) (string, bool) {
	c := n.child(name)
	if c == nil || c.value == nil || c.value.kind != 's' {
		return "", false
	}
	return c.value.s, true
}

func (n *cfgNode) int(name string) (int64, bool) {
	c := n.child(name)
	if c == nil || c.value == nil || c.value.kind != 'i' {
		return 0, false
	}
	return c.value.i, true
}

func (n *cfgNode) strings(name string) []string {
	c := n.child(name)
	if c == nil || c.value == nil || c.value.kind != 'l' {
		return nil
	}
	var out []string
	for _, v := range c.value.list {
		if v.kind == 's' {
			out = append(out, v.s)
		}
	}
	return out
}

func (n *cfgNode) sections() []*cfgNode {
	var out []*cfgNode
	for _, c := range n.children {
		if c.value == nil {
			out = append(out, c)
		}
	}
	return out
}
