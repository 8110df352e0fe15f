package diskimage

import (
	"bytes"
	"fmt"
	"path"
	"strings"
)

// Bounds on what the node's mount configuration may hold.
const (
	maxFstabBytes = 1 << 20 // /etc/fstab
	maxUnitBytes  = 64 << 10
	maxUnits      = 512  // .mount units read
	maxMountLines = 4096 // entries of fstab and units together
	maxFieldBytes = 4096 // one field (a path, an option list)
)

// MountEntry is one line of /etc/fstab or one systemd .mount unit, as
// the node's configuration states it (fields unescaped).
type MountEntry struct {
	Source  string // "UUID=…", "/dev/mapper/vg0-var", "tmpfs", a bind source path
	Point   string // the mount point, cleaned: "/var"
	Type    string // "xfs", "ext4", "auto", "none", "swap", "tmpfs", …
	Options []string
	Origin  string // "/etc/fstab line 4", "/etc/systemd/system/var.mount"
}

// Has reports whether the entry's options include opt.
func (e *MountEntry) Has(opt string) bool {
	for _, o := range e.Options {
		if o == opt {
			return true
		}
	}
	return false
}

// ParseFstab reads an fstab(5) file: one entry a line, fields separated
// by blanks (spec, mount point, type, options, dump, pass; the last three
// optional), '#' comments, octal escapes (\040) in fields. Lines that are
// not entries are returned as problems with their line number; the rest
// are read. Bounded: at most maxMountLines entries and maxFieldBytes a
// field.
func ParseFstab(data []byte, file string) ([]MountEntry, []string) {
	var out []MountEntry
	var probs []string
	if len(data) > maxFstabBytes {
		probs = append(probs, fmt.Sprintf("%s: %d bytes, only the first %d read", file, len(data), maxFstabBytes))
		data = data[:maxFstabBytes]
	}
	n := 0
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if len(out) >= maxMountLines {
			probs = append(probs, fmt.Sprintf("%s: more than %d entries, the rest ignored", file, maxMountLines))
			break
		}
		f := strings.Fields(string(line))
		if len(f) < 2 {
			probs = append(probs, fmt.Sprintf("%s line %d: not an fstab entry (%d fields)", file, n, len(f)))
			continue
		}
		for len(f) < 4 {
			f = append(f, map[int]string{2: "auto", 3: "defaults"}[len(f)])
		}
		bad := false
		for i := range f[:4] {
			if len(f[i]) > maxFieldBytes {
				bad = true
			}
			f[i] = unescapeOctal(f[i])
		}
		if bad {
			probs = append(probs, fmt.Sprintf("%s line %d: a field longer than %d bytes", file, n, maxFieldBytes))
			continue
		}
		e := MountEntry{Source: f[0], Type: f[2], Options: splitOptions(f[3]), Origin: fmt.Sprintf("%s line %d", file, n)}
		if f[2] == "swap" || f[1] == "none" {
			e.Point = "none" // swap has no mount point; "none" mounts nothing
		} else if p, ok := cleanPoint(f[1]); ok {
			e.Point = p
		} else {
			probs = append(probs, fmt.Sprintf("%s line %d: mount point %q is not an absolute path", file, n, f[1]))
			continue
		}
		out = append(out, e)
	}
	return out, probs
}

// cleanPoint cleans an absolute mount point; a relative one is refused.
func cleanPoint(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", false
	}
	return path.Clean(p), true
}

// unescapeOctal undoes fstab's \NNN octal escapes (\040 for a space).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 || s[0] > '3' {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

func splitOptions(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// ParseMountUnit reads a systemd .mount unit's [Mount] section: What=,
// Where=, Type=, Options= (the last assignment wins, as systemd reads
// them; backslash-newline continues a line). A unit without What= or an
// absolute Where= is a problem, not an entry.
func ParseMountUnit(data []byte, file string) (MountEntry, error) {
	if len(data) > maxUnitBytes {
		return MountEntry{}, fmt.Errorf("%s: %d bytes, larger than %d", file, len(data), maxUnitBytes)
	}
	e := MountEntry{Origin: file, Type: "auto"}
	section := ""
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.TrimSuffix(strings.TrimPrefix(line, "["), "]")
			continue
		}
		if section != "Mount" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) > maxFieldBytes {
			return MountEntry{}, fmt.Errorf("%s: %s= longer than %d bytes", file, strings.TrimSpace(k), maxFieldBytes)
		}
		switch strings.TrimSpace(k) {
		case "What":
			e.Source = v
		case "Where":
			e.Point = v
		case "Type":
			if v != "" {
				e.Type = v
			}
		case "Options":
			e.Options = splitOptions(v)
		}
	}
	if e.Source == "" {
		return MountEntry{}, fmt.Errorf("%s: no What= in its [Mount] section", file)
	}
	p, ok := cleanPoint(e.Point)
	if !ok {
		return MountEntry{}, fmt.Errorf("%s: Where=%q is not an absolute path", file, e.Point)
	}
	e.Point = p
	// systemd refuses a unit whose name is not its Where= escaped
	// ("Where= setting doesn't match unit name"): it mounts nothing.
	if base := path.Base(file); strings.HasSuffix(base, ".mount") {
		if want := unitNameFromPath(p) + ".mount"; base != want {
			return MountEntry{}, fmt.Errorf("%s: Where=%s does not match the unit's name (systemd refuses it: it would be %s)", file, p, want)
		}
	}
	return e, nil
}

// unitNameFromPath escapes a path as systemd-escape --path does: slashes
// at the ends dropped, the others made "-", every byte outside
// [A-Za-z0-9:_.] (and a leading ".") written \xNN; "/" is "-".
func unitNameFromPath(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0,
			!(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '.'):
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
