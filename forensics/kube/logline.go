package kube

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// lineReader reads lines of at most max bytes from a stream; the rest of a
// longer line is skipped (its last tailMax bytes kept in tail) and the
// line is marked truncated. Memory stays at max + tailMax + the buffer.
type lineReader struct {
	br      *bufio.Reader
	max     int
	tailMax int
	off     int64 // offset of the next line
	lineNo  int64
	buf     []byte
	tail    []byte
}

const tailMax = 4096

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max, tailMax: tailMax}
}

// rawLine is one physical line.
type rawLine struct {
	head      []byte // up to max bytes, without the newline
	tail      []byte // the last bytes of a truncated line
	off       int64
	no        int64
	truncated bool
	size      int64 // bytes of the line without its newline
}

// next returns the next line; io.EOF when none is left. The returned
// slices are valid until the next call.
func (lr *lineReader) next() (rawLine, error) {
	lr.buf, lr.tail = lr.buf[:0], lr.tail[:0]
	l := rawLine{off: lr.off}
	var size int64
	for {
		frag, err := lr.br.ReadSlice('\n')
		lr.off += int64(len(frag))
		size += int64(len(frag))
		if room := lr.max - len(lr.buf); room > 0 {
			lr.buf = append(lr.buf, frag[:min(room, len(frag))]...)
			if len(frag) > room {
				lr.keepTail(frag[room:])
			}
		} else {
			lr.keepTail(frag)
		}
		switch {
		case err == nil, errors.Is(err, io.EOF):
			if err != nil && size == 0 {
				return l, io.EOF
			}
			lr.lineNo++
			l.no = lr.lineNo
			l.size = size
			head, tail := lr.buf, lr.tail
			if err == nil { // drop the newline, wherever it landed
				l.size--
				if len(tail) > 0 {
					tail = tail[:len(tail)-1]
				} else {
					head = head[:len(head)-1]
				}
			}
			l.truncated = l.size > int64(lr.max)
			l.head, l.tail = head, tail
			return l, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return l, err
		}
	}
}

func (lr *lineReader) keepTail(b []byte) {
	if len(b) >= lr.tailMax {
		lr.tail = append(lr.tail[:0], b[len(b)-lr.tailMax:]...)
		return
	}
	if over := len(lr.tail) + len(b) - lr.tailMax; over > 0 {
		lr.tail = append(lr.tail[:0], lr.tail[over:]...)
	}
	lr.tail = append(lr.tail, b...)
}

// criLine is a parsed CRI log line: "<RFC3339Nano> <stream> <tags> <text>".
type criLine struct {
	t       time.Time
	stream  string
	partial bool
	text    []byte
}

// ParseCRILine parses one line of a CRI container log (as the kubelet's
// parseCRILog: the tags field is ":"-separated and only "P" marks a
// partial line).
func ParseCRILine(line []byte) (time.Time, string, bool, []byte, error) {
	c, err := parseCRI(line)
	return c.t, c.stream, c.partial, c.text, err
}

func parseCRI(line []byte) (criLine, error) {
	var c criLine
	ts, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return c, errors.New("no timestamp delimiter")
	}
	if len(ts) > 64 {
		return c, errors.New("timestamp field too long")
	}
	t, err := parseTime(ts)
	if err != nil {
		return c, fmt.Errorf("timestamp: %v", err)
	}
	c.t = t
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		stream, rest = rest, nil
	}
	switch string(stream) {
	case "stdout":
		c.stream = "stdout"
	case "stderr":
		c.stream = "stderr"
	default:
		return c, fmt.Errorf("stream %q is neither stdout nor stderr", truncate(string(stream), 32))
	}
	tags, text, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		tags, text = rest, nil
	}
	first, _, _ := bytes.Cut(tags, []byte(":"))
	c.partial = string(first) == "P"
	c.text = text
	return c, nil
}

// dockerLine is a parsed json-file line.
type dockerLine struct {
	t       time.Time
	stream  string
	partial bool // the message has no trailing newline: Docker split it
	text    string
}

// ParseDockerLine parses one line of a Docker json-file log
// ({"log":"…\n","stream":"stdout","time":"…"}).
func ParseDockerLine(line []byte) (time.Time, string, bool, string, error) {
	d, err := parseDocker(line, nil, false)
	return d.t, d.stream, d.partial, d.text, err
}

func parseDocker(head, tail []byte, truncated bool) (dockerLine, error) {
	if truncated {
		return parseDockerTruncated(head, tail)
	}
	if d, ok := parseDockerFast(head); ok {
		return d, nil
	}
	var d dockerLine
	var j struct {
		Log    *string `json:"log"`
		Stream string  `json:"stream"`
		Time   string  `json:"time"`
	}
	if err := json.Unmarshal(head, &j); err != nil {
		return d, fmt.Errorf("json: %v", err)
	}
	if j.Log == nil {
		return d, errors.New("no log field")
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return d, fmt.Errorf("time: %v", err)
	}
	d.t, d.stream = t.UTC(), j.Stream
	d.text = *j.Log
	if strings.HasSuffix(d.text, "\n") {
		d.text = d.text[:len(d.text)-1]
	} else {
		d.partial = true
	}
	return d, nil
}

// parseDockerFast reads the json-file driver's own shape
// ({"log":"…","stream":"…","time":"…"} and optional string fields) without
// reflection; anything else (attrs, odd spacing, escapes in keys) is left
// to encoding/json.
func parseDockerFast(b []byte) (dockerLine, bool) {
	var d dockerLine
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return d, false
	}
	i := 1
	var haveLog, haveTime bool
	for i < len(b)-1 {
		key, n, esc := jsonString(b[i:])
		if n == 0 || esc || i+n >= len(b) || b[i+n] != ':' {
			return d, false
		}
		i += n + 1
		val, n, esc := jsonString(b[i:])
		if n == 0 {
			return d, false // not a string (attrs), or malformed
		}
		i += n
		switch string(key) {
		case "log":
			if esc {
				s, ok := unescapeJSON(val)
				if !ok {
					return d, false
				}
				d.text = s
			} else {
				d.text = string(val)
			}
			haveLog = true
		case "stream":
			switch {
			case esc:
				return d, false
			case string(val) == "stdout":
				d.stream = "stdout"
			case string(val) == "stderr":
				d.stream = "stderr"
			default:
				d.stream = string(val)
			}
		case "time":
			t, err := parseTime(val)
			if esc || err != nil {
				return d, false
			}
			d.t, haveTime = t, true
		}
		if i < len(b)-1 {
			if b[i] != ',' {
				return d, false
			}
			i++
		}
	}
	if !haveLog || !haveTime {
		return d, false
	}
	if strings.HasSuffix(d.text, "\n") {
		d.text = d.text[:len(d.text)-1]
	} else {
		d.partial = true
	}
	return d, true
}

// jsonString finds a JSON string at the start of b: its raw body, the
// bytes it took (0 when b does not start with a well-formed string this
// fast path takes: ASCII, no control characters), and whether the body
// holds escapes (then encoding/json decodes it).
func jsonString(b []byte) ([]byte, int, bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, 0, false
	}
	esc := false
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return b[1:i], i + 1, esc
		case c == '\\':
			esc = true
			i++
		case c < 0x20 || c >= 0x80:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// unescapeJSON undoes the escapes of a JSON string body (ASCII, as
// jsonString checked); false for anything encoding/json would treat
// differently (a bad escape, a lone surrogate).
func unescapeJSON(b []byte) (string, bool) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(b) {
			return "", false
		}
		if e, ok := simpleEscape(b[i]); ok {
			out = append(out, e)
			continue
		}
		switch b[i] {
		case 'u':
			r, ok := hex4(b[i+1:])
			if !ok {
				return "", false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if i+2 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
					return "", false
				}
				r2, ok := hex4(b[i+3:])
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return string(out), true
}

// simpleEscape is the byte a one-character JSON escape stands for (\n for
// the n of "\n"); false for u and anything else.
func simpleEscape(c byte) (byte, bool) {
	switch c {
	case '"', '\\', '/':
		return c, true
	case 'n':
		return '\n', true
	case 't':
		return '\t', true
	case 'r':
		return '\r', true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	}
	return 0, false
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, h := range b[:4] {
		r <<= 4
		switch {
		case h >= '0' && h <= '9':
			r |= rune(h - '0')
		case h >= 'a' && h <= 'f':
			r |= rune(h-'a') + 10
		case h >= 'A' && h <= 'F':
			r |= rune(h-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}

// parseTime reads RFC 3339 with nanoseconds, the layout runtimes write
// ("2026-11-26T21:13:58.120004511Z"), without allocating; other offsets
// and shapes go to time.Parse. The result is UTC.
func parseTime(b []byte) (time.Time, error) {
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	if len(b) >= 20 && b[len(b)-1] == 'Z' && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' {
		y, ok1 := num(b[0:4])
		mo, ok2 := num(b[5:7])
		d, ok3 := num(b[8:10])
		h, ok4 := num(b[11:13])
		mi, ok5 := num(b[14:16])
		sec, ok6 := num(b[17:19])
		ns := 0
		ok7 := true
		frac := b[19 : len(b)-1]
		if len(frac) > 0 {
			if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
				ok7 = false
			} else {
				ns, ok7 = num(frac[1:])
				for k := len(frac) - 1; k < 9; k++ {
					ns *= 10
				}
			}
		}
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mo >= 1 && mo <= 12 && d >= 1 && d <= daysIn(mo, y) && h < 24 && mi < 60 && sec < 60 {
			return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC), nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func daysIn(m, y int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// parseDockerTruncated reads what it can of a json-file line too long to
// hold: the log string's beginning from the head, stream and time from the
// tail (Docker writes them after the log).
func parseDockerTruncated(head, tail []byte) (dockerLine, error) {
	var d dockerLine
	const prefix = `{"log":"`
	if !bytes.HasPrefix(head, []byte(prefix)) {
		return d, errors.New("an over-long line that does not start with a log field")
	}
	d.text = unescapeJSONPrefix(head[len(prefix):])
	d.stream = jsonStringAfter(tail, `"stream":"`)
	ts := jsonStringAfter(tail, `"time":"`)
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return d, fmt.Errorf("over-long line: time not found at its end: %v", err)
	}
	d.t = t.UTC()
	return d, nil
}

func jsonStringAfter(b []byte, key string) string {
	i := bytes.LastIndex(b, []byte(key))
	if i < 0 {
		return ""
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// unescapeJSONPrefix decodes the beginning of a JSON string body that was
// cut; it stops at the closing quote or at an incomplete escape.
func unescapeJSONPrefix(b []byte) string {
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '"' {
			break
		}
		if c != '\\' {
			out.WriteByte(c)
			continue
		}
		if i+1 >= len(b) {
			break
		}
		i++
		if e, ok := simpleEscape(b[i]); ok {
			out.WriteByte(e)
			continue
		}
		switch b[i] {
		case 'u':
			if i+4 >= len(b) {
				return out.String()
			}
			r, ok := hex4(b[i+1 : i+5])
			if !ok {
				r = utf8.RuneError
			}
			out.WriteRune(r)
			i += 4
		default:
			out.WriteByte(b[i])
		}
	}
	return out.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
