package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"sigs.k8s.io/yaml"
)

// decodeYAML reads one YAML or JSON document the way the kubelet does
// (sigs.k8s.io/yaml: YAML 1.1 scalars, then JSON), into a generic tree with
// numbers kept exact. The YAML library stops alias bombs ("excessive
// aliasing") and deep nesting (10000 levels); the caller bounds the size.
func decodeYAML(b []byte) (map[string]any, error) {
	if n := aliasTokens(b); n > 0 && n*len(b)/2 > maxAliasWork {
		return nil, fmt.Errorf("%d YAML aliases in %d bytes could expand to %d nodes (limit %d): not decoded", n, len(b), n*len(b)/2, maxAliasWork)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("document is a %s, not an object", jsonKind(v))
	}
	return m, nil
}

// maxAliasWork bounds the alias expansion a document may ask for, counted
// as aliases × half its size (an alias expands to at most every node of
// the document, a node takes two bytes at least). The YAML library stops
// classic alias bombs itself (at ~400,000 alias-driven nodes), but that
// still costs seconds and ~100 MB per file; the kubelet's own files use a
// few aliases at most.
const maxAliasWork = 2_000_000

// aliasTokens counts what may be YAML aliases: "*name" after a space, a
// flow indicator, ':' or '-', or at a line start (a '*' inside a quoted
// string counts too: the bound errs on the side of refusing).
func aliasTokens(b []byte) int {
	n := 0
	for i := 0; i < len(b)-1; i++ {
		if b[i] != '*' {
			continue
		}
		if i > 0 {
			switch b[i-1] {
			case ' ', '\t', '\n', '[', '{', ',', ':', '-':
			default:
				continue
			}
		}
		c := b[i+1]
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ',' && c != ']' && c != '}' {
			n++
		}
	}
	return n
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// lookup walks exact keys (the kubelet's decoder is case-sensitive).
func lookup(m map[string]any, keys ...string) (any, bool) {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[k]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

func getMap(m map[string]any, keys ...string) map[string]any {
	v, _ := lookup(m, keys...)
	mm, _ := v.(map[string]any)
	return mm
}

func getList(m map[string]any, keys ...string) []any {
	v, _ := lookup(m, keys...)
	l, _ := v.([]any)
	return l
}

func getString(m map[string]any, keys ...string) string {
	v, _ := lookup(m, keys...)
	s, _ := v.(string)
	return s
}

func getBool(m map[string]any, keys ...string) (bool, bool) {
	v, ok := lookup(m, keys...)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	return b, ok
}

func getInt(m map[string]any, keys ...string) (int64, bool) {
	v, ok := lookup(m, keys...)
	if !ok {
		return 0, false
	}
	return toInt(v)
}

func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			f, ferr := strconv.ParseFloat(string(n), 64)
			if ferr != nil || f != float64(int64(f)) {
				return 0, false
			}
			return int64(f), true
		}
		return i, true
	case float64:
		if n != float64(int64(n)) {
			return 0, false
		}
		return int64(n), true
	}
	return 0, false
}

func getStrings(m map[string]any, keys ...string) []string {
	var out []string
	for _, v := range getList(m, keys...) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
