package host

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"iter"
	"path"
	"strings"
	"sync"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/conf"
	"github.com/deadnode/deadnode/forensics/internal/pathutil"
)

// Bounds on what is read from the evidence. Every length, count and
// recursion depth read from a file is held to one of these.
const (
	// MaxConfigFile bounds a configuration file read whole (a crontab, a
	// unit, an rc file, authorized_keys, a hook, a runtime config).
	MaxConfigFile = 8 << 20
	// MaxLine bounds one line of a text file; a longer line is cut there
	// and flagged.
	MaxLine = 64 << 10
	// MaxDBLine bounds one line of the package database (dpkg status field
	// lines, .list and .md5sums lines).
	MaxDBLine = 1 << 20
	// MaxDirEntries bounds the entries read from one directory of
	// persistence configuration (cron.d, unit dirs, hooks.d …).
	MaxDirEntries = 1 << 16
	// MaxEntries bounds the entries one persistence report holds.
	MaxEntries = 1 << 20
	// MaxHomes bounds the home directories looked at.
	MaxHomes = 1 << 14
	// MaxPackages bounds the packages read from a database.
	MaxPackages = 1 << 18
	// MaxOwnedPaths bounds the paths a package database may own in all.
	MaxOwnedPaths = 1 << 23
	// MaxWarnings bounds the warnings a report keeps.
	MaxWarnings = 1000
	// MaxTargetHash bounds the size of a program hashed to describe an
	// entry's target.
	MaxTargetHash = 512 << 20
	// MaxPath bounds a path read from a file (PATH_MAX).
	MaxPath = 4096
)

// warnings collects per-item problems, bounded and safe for concurrent use.
type warnings struct {
	mu   sync.Mutex
	list []evidence.Warning
	lost int
}

// at adds a problem with file at offset off (-1 when unknown).
func (w *warnings) at(file string, off int64, format string, args ...any) {
	w.put(evidence.Warnf(file, off, format, args...))
}

// add adds a problem about no one file.
func (w *warnings) add(format string, args ...any) { w.at("", -1, format, args...) }

// err adds an error, keeping the file and offset of an
// *evidence.FormatError.
func (w *warnings) err(err error) {
	if err != nil {
		w.put(evidence.WarningOf(err))
	}
}

func (w *warnings) put(x evidence.Warning) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.list) >= MaxWarnings {
		w.lost++
		return
	}
	w.list = append(w.list, x)
}

func (w *warnings) done() []evidence.Warning {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]evidence.Warning{}, w.list...)
	if w.lost > 0 {
		out = append(out, evidence.Warnf("", -1, "%d more warnings not kept", w.lost))
	}
	return out
}

// lineReader reads lines of at most max bytes from a stream; a longer line
// is returned cut, with long set, and the rest of it skipped.
type lineReader struct {
	r    *bufio.Reader
	max  int
	off  int64 // offset of the next line
	num  int   // number of the line last returned (1-based)
	buf  []byte
	long bool
}

func newLineReader(r io.Reader, maxLine int) *lineReader {
	size := 64 << 10
	if sr, ok := r.(interface{ Size() int64 }); ok && sr.Size() < int64(size) {
		size = max(int(sr.Size())+1, 512) // bufio's minimum is 16
	}
	return &lineReader{r: bufio.NewReaderSize(r, size), max: maxLine}
}

// each calls fn with each line (without its newline and a final '\r')
// and its offset until the end of the input or fn's error; l.long tells
// fn that the line was cut. A read error is a *evidence.FormatError
// naming file.
func (l *lineReader) each(file string, fn func(line string, off int64) error) error {
	for {
		b, off, err := l.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &evidence.FormatError{File: file, Offset: off, Msg: "read", Err: err}
		}
		if err := fn(strings.TrimRight(string(b), "\r"), off); err != nil {
			return err
		}
	}
}

// next returns the next line without its newline and the line's offset.
// It returns io.EOF after the last line.
func (l *lineReader) next() ([]byte, int64, error) {
	l.buf = l.buf[:0]
	l.long = false
	start := l.off
	for {
		frag, err := l.r.ReadSlice('\n')
		l.off += int64(len(frag))
		if len(l.buf)+len(frag) <= l.max+1 {
			l.buf = append(l.buf, frag...)
		} else {
			l.long = true
			if room := l.max + 1 - len(l.buf); room > 0 {
				l.buf = append(l.buf, frag[:room]...)
			}
		}
		switch {
		case err == nil:
			l.num++
			return l.trim(), start, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(l.buf) == 0 && l.off == start {
				return nil, start, io.EOF
			}
			l.num++
			return l.trim(), start, nil
		default:
			return nil, start, err
		}
	}
}

func (l *lineReader) trim() []byte {
	b := bytes.TrimSuffix(l.buf, []byte("\n"))
	if len(b) > l.max {
		b = b[:l.max]
		l.long = true
	}
	return b
}

// textLine is one line of a text file.
type textLine = conf.Line

// contentLines is lines(b) trimmed of surrounding space, without the
// blank lines and '#' comments.
func contentLines(b []byte) iter.Seq[textLine] {
	return func(yield func(textLine) bool) {
		for l := range lines(b) {
			l.Text = strings.TrimSpace(l.Text)
			if l.Text != "" && l.Text[0] != '#' && !yield(l) {
				return
			}
		}
	}
}

// lines yields the lines of b, each cut at MaxLine.
func lines(b []byte) iter.Seq[textLine] { return conf.Lines(b, MaxLine) }

// readConfig reads a (resolved) regular file of at most MaxConfigFile bytes.
func readConfig(src evidence.Source, name string) ([]byte, error) {
	return evidence.ReadFile(src, name, MaxConfigFile)
}

// name turns an absolute host path into a source name ("etc/crontab").
func srcName(p string) string {
	n, err := evidence.Clean(p)
	if err != nil {
		return "."
	}
	return n
}

// resolver resolves paths inside the evidence, caching directories, so that
// resolving every path of a package database costs one lookup per
// directory.
type resolver struct {
	src  evidence.Source
	mu   sync.Mutex
	dirs map[string]string
}

func newResolver(src evidence.Source) *resolver {
	return &resolver{src: src, dirs: map[string]string{}}
}

// dir resolves a directory path (following every link) to a source name.
func (r *resolver) dir(d string) (string, error) {
	if !cleanAbs(d) {
		d = path.Clean("/" + d)
	}
	r.mu.Lock()
	v, ok := r.dirs[d]
	r.mu.Unlock()
	if ok {
		return v, nil
	}
	var out string
	if d == "/" {
		out = "."
	} else {
		parent, err := r.dir(path.Dir(d))
		if err != nil {
			return "", err
		}
		// parent is resolved (no link left in it): a child that is no
		// link needs one lstat, not a walk from the root
		name := joinName(parent, path.Base(d))
		if st, lerr := r.src.Lstat(name); lerr == nil && st.Mode&fs.ModeSymlink == 0 {
			out = name
		} else if out, err = evidence.Resolve(r.src, name, true); err != nil {
			return "", err
		}
	}
	r.mu.Lock()
	if len(r.dirs) < 1<<20 {
		r.dirs[d] = out
	}
	r.mu.Unlock()
	return out, nil
}

// path resolves p's directories through the evidence's links, leaving its
// last component as it is (a listed symlink stays the link); the result is
// an absolute path ("/usr/bin/dash" for "/bin/dash" on merged /usr).
func (r *resolver) path(p string) (string, error) {
	if len(p) > MaxPath {
		return "", &fs.PathError{Op: "resolve", Path: p[:64] + "…", Err: errors.New("path longer than PATH_MAX")}
	}
	if !cleanAbs(p) {
		p = path.Clean("/" + p)
	}
	if p == "/" {
		return "/", nil
	}
	i := strings.LastIndexByte(p, '/')
	dir, base := p[:i], p[i+1:]
	if dir == "" {
		dir = "/"
	}
	d, err := r.dir(dir)
	if err != nil {
		return "", err
	}
	if d == dir[1:] || d == "." && dir == "/" {
		return p, nil // no link on the way
	}
	return pathutil.Abs(joinName(d, base)), nil
}

// cleanAbs reports whether p is already an absolute, clean path.
func cleanAbs(p string) bool {
	if p == "" || p[0] != '/' || len(p) > 1 && p[len(p)-1] == '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		rest := p[i+1:]
		if strings.HasPrefix(rest, "/") || rest == "." || rest == ".." || strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
			return false
		}
	}
	return true
}

// follow resolves p completely (its last component too).
func (r *resolver) follow(p string) (string, error) {
	rp, err := r.path(p)
	if err != nil {
		return "", err
	}
	n, err := evidence.Resolve(r.src, srcName(rp), true)
	if err != nil {
		return "", err
	}
	return pathutil.Abs(n), nil
}

func joinName(dir, base string) string {
	if dir == "." || dir == "" {
		return base
	}
	return dir + "/" + base
}

// lstat stats an absolute, resolved path; nil when absent.
func lstat(src evidence.Source, p string) (*evidence.Stat, error) {
	st, err := src.Lstat(srcName(p))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, evidence.ErrSymlinkInPath) {
			return nil, nil
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && strings.Contains(err.Error(), "not a directory") {
			return nil, nil
		}
		return nil, err
	}
	return st, nil
}

// readDir lists a directory (a source name), bounded; a missing directory
// is empty.
func readDir(src evidence.Source, name string, w *warnings) []*evidence.Stat {
	ents, err := src.ReadDir(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, evidence.ErrSymlinkInPath) && !strings.Contains(err.Error(), "not a directory") {
			w.at(pathutil.Abs(name), -1, "%v", err)
		}
		return nil
	}
	if len(ents) > MaxDirEntries {
		w.at(pathutil.Abs(name), -1, "%d entries, only the first %d read", len(ents), MaxDirEntries)
		ents = ents[:MaxDirEntries]
	}
	return ents
}

// fnmatch matches name against a shell glob as fnmatch(3) without flags:
// '*' and '?' match any character, '/' included; "[...]" sets and '\'
// escapes. Patterns longer than 4096 bytes never match.
func fnmatch(pattern, name string) bool {
	if len(pattern) > 4096 {
		return false
	}
	// Iterative matching with one backtrack point for the last '*'.
	px, nx := 0, 0
	starP, starN := -1, 0
	for nx < len(name) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starP, starN = px, nx
				px++
				continue
			case '?':
				px++
				nx++
				continue
			case '[':
				if ok, w := matchClass(pattern[px:], name[nx]); w > 0 {
					if ok {
						px += w
						nx++
						continue
					}
				} else if name[nx] == '[' {
					px++
					nx++
					continue
				}
			case '\\':
				if px+1 < len(pattern) && pattern[px+1] == name[nx] {
					px += 2
					nx++
					continue
				}
			default:
				if c == name[nx] {
					px++
					nx++
					continue
				}
			}
		}
		if starP >= 0 {
			starN++
			px, nx = starP+1, starN
			continue
		}
		return false
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// matchClass matches c against the set at the start of p ("[a-z]",
// "[!x]"); w is the set's width in p, 0 when p holds no closed set.
func matchClass(p string, c byte) (ok bool, w int) {
	i := 1
	neg := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		neg = true
		i++
	}
	first := true
	for i < len(p) {
		if p[i] == ']' && !first {
			return ok != neg, i + 1
		}
		first = false
		lo := p[i]
		if lo == '\\' && i+1 < len(p) {
			i++
			lo = p[i]
		}
		hi := lo
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi = p[i+2]
			i += 2
		}
		if lo <= c && c <= hi {
			ok = true
		}
		i++
	}
	return false, 0
}
