package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/deadnode/deadnode/evidence"
)

// dpkg's database (dpkg(1), deb-md5sums(5), dpkg-divert(1)):
//
//	/var/lib/dpkg/status                    stanzas: Package, Status, Version, Architecture,
//	                                        Multi-Arch, Conffiles (" <path> <md5> [obsolete]")
//	/var/lib/dpkg/info/<pkg>[:<arch>].list  every path the package installed, one a line
//	/var/lib/dpkg/info/<pkg>[:<arch>].md5sums  "<md5>  <path without leading slash>"
//	/var/lib/dpkg/diversions                triples of lines: from, to, diverting package (":" local)
//	/etc/dpkg/dpkg.cfg, dpkg.cfg.d/*        path-exclude= / path-include= filters
const (
	dpkgDir        = "/var/lib/dpkg"
	dpkgStatus     = dpkgDir + "/status"
	dpkgInfo       = dpkgDir + "/info"
	dpkgDiversions = dpkgDir + "/diversions"
	dpkgCfg        = "/etc/dpkg/dpkg.cfg"
	dpkgCfgDir     = "/etc/dpkg/dpkg.cfg.d"
	// maxDpkgStatus bounds the status file.
	maxDpkgStatus = 1 << 30
	// maxConffiles bounds the conffiles of one package.
	maxConffiles = 1 << 16
	// maxDiversions bounds the diversions read.
	maxDiversions = 1 << 16
)

// dpkgPackage is one stanza of dpkg's status file.
type dpkgPackage struct {
	Name      string
	Version   string
	Arch      string
	MultiArch string
	Status    string
	Conffiles []dpkgConffile
	Offset    int64 // of the stanza in the status file
}

type dpkgConffile struct {
	Path     string
	MD5      string // "" for "newconffile"
	Obsolete bool
}

// state is the third word of Status ("installed", "config-files", …).
func (p *dpkgPackage) state() string {
	f := strings.Fields(p.Status)
	if len(f) == 3 {
		return f[2]
	}
	return ""
}

// parseDpkgStatus reads dpkg's status file (RFC 822-like stanzas) from r,
// calling fn for each package stanza. file names r in errors. A stanza
// without Package is skipped with a warning; lines over MaxDBLine are cut.
func parseDpkgStatus(r io.Reader, file string, w *warnings, fn func(*dpkgPackage) error) error {
	lr := newLineReader(io.LimitReader(r, maxDpkgStatus), MaxDBLine)
	var cur *dpkgPackage
	field := ""
	n := 0
	flush := func() error {
		if cur == nil {
			return nil
		}
		p := cur
		cur = nil
		if p.Name == "" {
			w.at(file, p.Offset, "a stanza without a Package field")
			return nil
		}
		n++
		if n > MaxPackages {
			return &evidence.FormatError{File: file, Offset: p.Offset, Msg: fmt.Sprintf("more than %d packages", MaxPackages)}
		}
		return fn(p)
	}
	err := lr.each(file, func(line string, off int64) error {
		if lr.long {
			w.at(file, off, "a line longer than %d bytes, cut", MaxDBLine)
		}
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return err
			}
			field = ""
			return nil
		}
		if cur == nil {
			cur = &dpkgPackage{Offset: off}
		}
		if line[0] == ' ' || line[0] == '\t' {
			if field == "conffiles" {
				if len(cur.Conffiles) >= maxConffiles {
					return nil
				}
				if c, ok := parseConffileLine(line); ok {
					cur.Conffiles = append(cur.Conffiles, c)
				} else {
					w.at(file, off, "package %s: unreadable conffile line", cur.Name)
				}
			}
			return nil
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			w.at(file, off, "not a field line")
			field = ""
			return nil
		}
		field = strings.ToLower(strings.TrimSpace(name))
		val = strings.TrimSpace(val)
		switch field {
		case "package":
			cur.Name = val
		case "version":
			cur.Version = val
		case "architecture":
			cur.Arch = val
		case "multi-arch":
			cur.MultiArch = val
		case "status":
			cur.Status = val
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// parseConffileLine reads " /etc/x 0123…ef [obsolete] [remove-on-upgrade]".
func parseConffileLine(line string) (dpkgConffile, bool) {
	s := strings.TrimSpace(line)
	var c dpkgConffile
	for {
		switch {
		case strings.HasSuffix(s, " obsolete"):
			c.Obsolete = true
			s = strings.TrimSpace(strings.TrimSuffix(s, " obsolete"))
			continue
		case strings.HasSuffix(s, " remove-on-upgrade"):
			s = strings.TrimSpace(strings.TrimSuffix(s, " remove-on-upgrade"))
			continue
		}
		break
	}
	i := strings.LastIndexAny(s, " \t")
	if i <= 0 {
		return c, false
	}
	c.Path, c.MD5 = strings.TrimSpace(s[:i]), s[i+1:]
	if !strings.HasPrefix(c.Path, "/") {
		return c, false
	}
	if c.MD5 == "newconffile" {
		c.MD5 = ""
	} else if !isHex(c.MD5, 32) {
		return c, false
	}
	return c, true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// parseMD5Sums reads a deb-md5sums(5) file, calling fn with each path
// (absolute) and its lower-case md5.
func parseMD5Sums(r io.Reader, file string, w *warnings, fn func(path, md5 string) error) error {
	lr := newLineReader(r, MaxDBLine)
	return lr.each(file, func(line string, off int64) error {
		if line == "" {
			return nil
		}
		if lr.long || len(line) < 34 || !isHex(line[:32], 32) || (line[32] != ' ' && line[32] != '\t') {
			w.at(file, off, "not an md5sums line")
			return nil
		}
		p := strings.TrimLeft(line[33:], " \t")
		p = strings.TrimPrefix(p, "*")
		if p == "" {
			w.at(file, off, "an md5sums line without a path")
			return nil
		}
		return fn("/"+strings.TrimPrefix(p, "/"), strings.ToLower(line[:32]))
	})
}

// parseList reads a dpkg .list file, calling fn with each absolute path.
func parseList(r io.Reader, file string, w *warnings, fn func(path string) error) error {
	lr := newLineReader(r, MaxDBLine)
	return lr.each(file, func(p string, off int64) error {
		if lr.long {
			w.at(file, off, "a path longer than %d bytes skipped", MaxDBLine)
			return nil
		}
		if p == "" || p == "/." || p == "/" {
			return nil
		}
		if !strings.HasPrefix(p, "/") {
			w.at(file, off, "a relative path %q skipped", short(p))
			return nil
		}
		return fn(p)
	})
}

// diversion is one entry of dpkg's diversions file.
type diversion struct {
	To      string
	Package string // ":" for a local diversion
}

// parseDiversions reads dpkg's diversions file (triples of lines).
func parseDiversions(r io.Reader, file string, w *warnings) map[string]diversion {
	out := map[string]diversion{}
	lr := newLineReader(r, MaxPath)
	var trip []string
	for len(out) < maxDiversions {
		b, off, err := lr.next()
		if err != nil {
			if err != io.EOF {
				w.at(file, off, "%v", err)
			}
			break
		}
		trip = append(trip, strings.TrimRight(string(b), "\r"))
		if len(trip) == 3 {
			if strings.HasPrefix(trip[0], "/") && strings.HasPrefix(trip[1], "/") {
				out[trip[0]] = diversion{To: trip[1], Package: trip[2]}
			} else {
				w.at(file, off, "a diversion of non-absolute paths skipped")
			}
			trip = trip[:0]
		}
	}
	if len(trip) != 0 {
		w.at(file, -1, "ends in an incomplete diversion")
	}
	return out
}

// parseDpkgCfg reads path-exclude/path-include options of a dpkg.cfg file.
func parseDpkgCfg(b []byte) []pathFilter {
	var out []pathFilter
	for l := range contentLines(b) {
		s := strings.TrimPrefix(l.Text, "--")
		name, val, ok := strings.Cut(s, "=")
		if !ok {
			name, val, ok = strings.Cut(s, " ")
		}
		if !ok {
			continue
		}
		switch strings.TrimSpace(name) {
		case "path-exclude":
			out = append(out, pathFilter{glob: strings.TrimSpace(val)})
		case "path-include":
			out = append(out, pathFilter{include: true, glob: strings.TrimSpace(val)})
		}
	}
	return out
}

// runPartsName reports whether name is one run-parts(8) (and cron's
// cron.d reader, and dpkg's .d readers) accept: letters, digits, '_' and
// '-' only.
func runPartsName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// readDpkg reads dpkg's database.
func readDpkg(ctx context.Context, src evidence.Source, res *resolver, w *warnings) (*PackageDB, error) {
	db := newDB(FormatDpkg, dpkgStatus, res)
	// path filters: dpkg.cfg then dpkg.cfg.d in name order
	cfgs := []string{dpkgCfg}
	if d, err := res.dir(dpkgCfgDir); err == nil {
		for _, e := range readDir(src, d, w) {
			if b := baseName(e.Name); runPartsName(b) && e.Mode.IsRegular() {
				cfgs = append(cfgs, dpkgCfgDir+"/"+b)
			}
		}
	}
	for _, c := range cfgs {
		if b, err := readResolved(src, res, c); err == nil {
			db.filters = append(db.filters, parseDpkgCfg(b)...)
		} else if !errors.Is(err, fs.ErrNotExist) {
			w.at(c, -1, "%v", err)
		}
	}
	divs := map[string]diversion{}
	if f, err := openResolved(src, res, dpkgDiversions); err == nil {
		divs = parseDiversions(io.NewSectionReader(f, 0, f.Size()), dpkgDiversions, w)
		f.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		w.at(dpkgDiversions, -1, "%v", err)
	}
	// the info directory's names, read once
	infoFiles := map[string]bool{}
	if d, err := res.dir(dpkgInfo); err == nil {
		ents, err := src.ReadDir(d)
		if err != nil {
			w.at(dpkgInfo, -1, "%v", err)
		}
		for _, e := range ents {
			if n := baseName(e.Name); strings.HasSuffix(n, ".list") && e.Mode.IsRegular() {
				infoFiles[n] = true
			}
		}
	}
	f, err := openResolved(src, res, dpkgStatus)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dpkgStatus, err)
	}
	defer f.Close()
	full := false
	err = parseDpkgStatus(io.NewSectionReader(f, 0, f.Size()), dpkgStatus, w, func(p *dpkgPackage) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		st := p.state()
		if st == "not-installed" || st == "" && p.Status == "" {
			return nil
		}
		pk := Package{Name: p.Name, Version: p.Version, Architecture: p.Arch, Status: p.Status}
		n, ok := db.addDpkgPackage(src, p, divs, infoFiles, w)
		if !ok && !full {
			full = true
			w.at(dpkgStatus, -1, "more than %d owned paths; the rest is not read", MaxOwnedPaths)
		}
		pk.Files = n
		db.Packages = append(db.Packages, pk)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// what was read serves: a damaged or oversized status file is a
		// warning, as rpm's reader has it, not the loss of every package
		w.err(err)
		w.at(dpkgStatus, -1, "reading stopped there: %d packages read; the rest are not checked", len(db.Packages))
	}
	db.finish()
	return db, nil
}

// addDpkgPackage adds the paths of one package: its .list with digests
// from .md5sums and its conffiles.
func (db *PackageDB) addDpkgPackage(src evidence.Source, p *dpkgPackage, divs map[string]diversion, infoFiles map[string]bool, w *warnings) (int, bool) {
	conf := map[string]dpkgConffile{}
	for _, c := range p.Conffiles {
		conf[c.Path] = c
	}
	var info string
	for _, cand := range []string{p.Name + ":" + p.Arch, p.Name} {
		if p.Arch == "" && cand != p.Name {
			continue
		}
		if infoFiles[cand+".list"] {
			info = dpkgInfo + "/" + cand
			break
		}
	}
	sums := map[string]string{}
	if info != "" {
		if f, err := openResolved(src, db.res, info+".md5sums"); err == nil {
			err = parseMD5Sums(io.NewSectionReader(f, 0, f.Size()), info+".md5sums", w, func(path, md5 string) error {
				if len(sums) >= MaxOwnedPaths {
					return fmt.Errorf("more than %d md5sums", MaxOwnedPaths)
				}
				sums[path] = md5
				return nil
			})
			f.Close()
			w.err(err)
		} else if !errors.Is(err, fs.ErrNotExist) {
			w.at(info+".md5sums", -1, "%v", err)
		}
	}
	place := func(listed string) (string, string) {
		if d, ok := divs[listed]; ok && d.Package != p.Name {
			return d.To, listed
		}
		return listed, ""
	}
	n := 0
	ok := true
	seen := map[string]bool{}
	addOne := func(listed string) {
		if !ok {
			return
		}
		n++
		at, div := place(listed)
		of := OwnedFile{Path: at, Package: p.Name, Diverted: div}
		if c, isConf := conf[listed]; isConf {
			of.Conffile, of.Obsolete, of.Digest = true, c.Obsolete, strings.ToLower(c.MD5)
		} else if s, has := sums[listed]; has {
			of.Digest = s
		}
		if of.Digest != "" {
			of.Algo = AlgoMD5
		}
		ok = db.add(of, w)
	}
	if info != "" {
		if f, err := openResolved(src, db.res, info+".list"); err == nil {
			err = parseList(io.NewSectionReader(f, 0, f.Size()), info+".list", w, func(path string) error {
				if _, isConf := conf[path]; isConf {
					seen[path] = true
				}
				addOne(path)
				return nil
			})
			f.Close()
			w.err(err)
		} else {
			w.at(info+".list", -1, "%v", err)
		}
	} else if p.state() != "config-files" {
		w.at(dpkgStatus, -1, "package %s (%s) has no .list file in %s", p.Name, p.Status, dpkgInfo)
	}
	// conffiles the list does not name (config-files state, obsolete)
	for _, c := range p.Conffiles {
		if !seen[c.Path] {
			addOne(c.Path)
		}
	}
	return n, ok
}

// openResolved opens an absolute path whose directories may cross links.
func openResolved(src evidence.Source, res *resolver, p string) (evidence.File, error) {
	rp, err := res.follow(p)
	if err != nil {
		return nil, err
	}
	return src.Open(srcName(rp))
}

// readResolved reads a configuration file at an absolute path, following
// links inside the evidence.
func readResolved(src evidence.Source, res *resolver, p string) ([]byte, error) {
	rp, err := res.follow(p)
	if err != nil {
		return nil, err
	}
	return readConfig(src, srcName(rp))
}

func baseName(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// short cuts s for a message.
func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
