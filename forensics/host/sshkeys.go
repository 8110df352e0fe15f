package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"path"
	"slices"
	"sort"
	"strings"
)

const (
	etcPasswd    = "/etc/passwd"
	sshdConfig   = "/etc/ssh/sshd_config"
	maxSSHDDepth = 4
)

// AuthorizedKey is one key of an authorized_keys file (sshd(8)
// AUTHORIZED_KEYS FILE FORMAT).
type AuthorizedKey struct {
	User        string   `json:"user"` // the account it logs in as ("" when unknown)
	Type        string   `json:"type"`
	Fingerprint string   `json:"fingerprint"` // "SHA256:…" as ssh-keygen -l prints it
	Comment     string   `json:"comment"`
	Options     []string `json:"options"`
	Command     string   `json:"command,omitempty"` // a forced command="…"
	From        string   `json:"from,omitempty"`
	Environment []string `json:"environment,omitempty"`
	// Bad says why sshd would not accept the line ("" when it would).
	Bad string `json:"bad,omitempty"`
}

// keyTypes are the key types sshd accepts (and their certificates).
func isKeyType(t string) bool {
	switch t {
	case "ssh-rsa", "ssh-dss", "ssh-ed25519", "ssh-ed448", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
		"sk-ecdsa-sha2-nistp256@openssh.com", "sk-ssh-ed25519@openssh.com":
		return true
	}
	return strings.HasSuffix(t, "-cert-v01@openssh.com") && len(t) < 64
}

// parseAuthorizedKey reads one non-comment line of an authorized_keys
// file.
func parseAuthorizedKey(line string) AuthorizedKey {
	k := AuthorizedKey{Options: []string{}}
	s := strings.TrimSpace(line)
	first, _ := cutFields(s, 1)
	if len(first) == 1 && !isKeyType(first[0]) {
		// options: up to the first unquoted blank
		opts, rest, ok := cutOptions(s)
		if !ok {
			k.Bad = "unterminated quote in the options"
			return k
		}
		k.Options = opts
		s = strings.TrimLeft(rest, " \t")
		for _, o := range opts {
			name, val, hasVal := strings.Cut(o, "=")
			val = unquoteOpt(val)
			switch strings.ToLower(name) {
			case "command":
				if hasVal {
					k.Command = val
				}
			case "from":
				k.From = val
			case "environment":
				if len(k.Environment) < 16 {
					k.Environment = append(k.Environment, val)
				}
			}
		}
	}
	f, rest := cutFields(s, 2)
	if len(f) < 2 {
		k.Bad = "no key"
		if len(f) == 1 {
			k.Type = short(f[0])
		}
		return k
	}
	k.Type = short(f[0])
	k.Comment = strings.TrimSpace(rest)
	if len(k.Comment) > 1024 {
		k.Comment = k.Comment[:1024]
	}
	if !isKeyType(f[0]) {
		k.Bad = "unknown key type"
		return k
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		k.Bad = "the key is not base64"
		return k
	}
	sum := sha256.Sum256(blob)
	k.Fingerprint = "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
	// the blob starts with its own type as an SSH string
	if len(blob) < 4 {
		k.Bad = "the key blob is too short"
		return k
	}
	n := binary.BigEndian.Uint32(blob)
	if uint64(n) > uint64(len(blob)-4) || string(blob[4:4+n]) != f[0] {
		k.Bad = "the key blob's type does not match " + k.Type
	}
	return k
}

// cutOptions splits the leading options of an authorized_keys line.
func cutOptions(s string) ([]string, string, bool) {
	var opts []string
	var cur bytes.Buffer
	q := false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if q {
			if c == '\\' && i+1 < len(s) && s[i+1] == '"' {
				cur.WriteString(`\"`)
				i++
				continue
			}
			if c == '"' {
				q = false
			}
			cur.WriteByte(c)
			continue
		}
		if c == ' ' || c == '\t' {
			break
		}
		if c == '"' {
			q = true
		}
		if c == ',' {
			if len(opts) < 64 {
				opts = append(opts, cur.String())
			}
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if q {
		return nil, "", false
	}
	if cur.Len() > 0 && len(opts) < 64 {
		opts = append(opts, cur.String())
	}
	return opts, s[i:], true
}

func unquoteOpt(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return strings.ReplaceAll(v, `\"`, `"`)
}

// home is a home directory and the accounts whose home it is.
type home struct {
	dir   string // resolved
	users []string
}

// homeDirs returns the homes of /etc/passwd, /root and /home/*, resolved
// inside the evidence, each once.
func (ps *persist) homeDirs() []string {
	var out []string
	for _, h := range ps.homeList() {
		out = append(out, h.dir)
	}
	return out
}

func (ps *persist) homeList() []home {
	if ps.homesDone {
		return ps.homeCache
	}
	ps.homesDone = true
	byDir := map[string]*home{}
	var order []string
	addHome := func(dir, user string) {
		if len(order) >= MaxHomes || !strings.HasPrefix(dir, "/") {
			return
		}
		rd, err := ps.res.follow(dir)
		if err != nil {
			return
		}
		st, _ := lstat(ps.src, rd)
		if st == nil || !st.Mode.IsDir() {
			return
		}
		h := byDir[rd]
		if h == nil {
			h = &home{dir: rd}
			byDir[rd] = h
			order = append(order, rd)
		}
		if user != "" && len(h.users) < 16 {
			for _, u := range h.users {
				if u == user {
					return
				}
			}
			h.users = append(h.users, user)
		}
	}
	if b, err := readResolved(ps.src, ps.res, etcPasswd); err == nil {
		ps.uidOf = map[string]string{}
		for l := range lines(b) {
			f := strings.Split(l.Text, ":")
			if len(f) >= 7 && f[5] != "" {
				addHome(f[5], f[0])
				if len(ps.uidOf) < MaxHomes {
					ps.uidOf[f[0]] = f[2]
				}
			}
		}
	} else if !isNotExist(err) {
		ps.w.at(etcPasswd, -1, "%v", err)
	}
	addHome("/root", "")
	if rd, ents := ps.listDir("/home"); rd != "" {
		for _, e := range ents {
			if e.Mode.IsDir() {
				addHome(path.Join(rd, baseName(e.Name)), "")
			}
		}
	}
	for _, d := range order {
		ps.homeCache = append(ps.homeCache, *byDir[d])
	}
	return ps.homeCache
}

// sshdKeyFiles reads AuthorizedKeysFile from sshd_config and the files
// it includes: the patterns of key files ("%h/.ssh/authorized_keys").
func (ps *persist) sshdKeyFiles() []string {
	var pats, matchPats []string
	var read func(p string, depth int, matched bool)
	seen := map[string]bool{}
	read = func(p string, depth int, matched bool) {
		if depth > maxSSHDDepth || seen[p] || len(seen) > 64 {
			return
		}
		seen[p] = true
		b, err := readResolved(ps.src, ps.res, p)
		if err != nil {
			return
		}
		// A Match block's settings apply to some connections only. An
		// included file starts in its includer's state, and the includer's
		// is as it was after it.
		inMatch := matched
		for l := range lines(b) {
			f := sshdWords(l.Text)
			if len(f) < 2 || strings.HasPrefix(f[0], "#") {
				continue
			}
			switch strings.ToLower(f[0]) {
			case "match":
				inMatch = !(len(f) == 2 && strings.EqualFold(f[1], "all"))
			case "authorizedkeysfile":
				var these []string
				for _, x := range f[1:] {
					if x != "none" && len(these) < 8 {
						these = append(these, x)
					}
				}
				switch {
				case inMatch:
					// for the users it matches: their keys files count too
					for _, x := range these {
						if !slices.Contains(matchPats, x) && len(matchPats) < 8 {
							matchPats = append(matchPats, x)
						}
					}
				case pats == nil:
					pats = append([]string{}, these...) // the first value wins, as sshd takes it
				}
			case "include":
				for _, inc := range f[1:] {
					if !strings.HasPrefix(inc, "/") {
						inc = "/etc/ssh/" + inc
					}
					dir, pat := path.Split(inc)
					if strings.ContainsAny(pat, "*?[") {
						_, ents := ps.listDir(dir)
						var names []string
						for _, e := range ents {
							if n := baseName(e.Name); fnmatch(pat, n) {
								names = append(names, n)
							}
						}
						sort.Strings(names)
						for _, n := range names {
							read(path.Join(dir, n), depth+1, inMatch)
						}
					} else {
						read(inc, depth+1, inMatch)
					}
				}
			}
		}
	}
	read(sshdConfig, 0, false)
	if pats == nil {
		pats = []string{".ssh/authorized_keys", ".ssh/authorized_keys2"}
	}
	for _, x := range matchPats {
		if !slices.Contains(pats, x) {
			pats = append(pats, x)
		}
	}
	return pats
}

// sshdWords splits an sshd_config line as sshd does: the keyword ends at
// white space or "=" ("AuthorizedKeysFile=/etc/ssh/keys/%u"), the
// arguments are separated by white space.
func sshdWords(line string) []string {
	line = strings.TrimSpace(line)
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return strings.Fields(line)
	}
	rest := strings.TrimLeft(line[i:], " \t")
	rest = strings.TrimPrefix(rest, "=")
	return append([]string{line[:i]}, strings.Fields(rest)...)
}

// homes lists every key of every home's authorized_keys files.
func (ps *persist) homes() {
	pats := ps.sshdKeyFiles()
	done := map[string]bool{}
	for _, h := range ps.homeList() {
		users := h.users
		if len(users) == 0 {
			users = []string{""}
		}
		for _, u := range users {
			for _, pat := range pats {
				p := expandSSHDPattern(pat, h.dir, u, ps.uidOf[u])
				if p == "" || done[p] {
					continue
				}
				done[p] = true
				ps.keyFile(p, u)
			}
		}
	}
	// the defaults too, when sshd_config names other files
	for _, h := range ps.homeList() {
		for _, n := range []string{".ssh/authorized_keys", ".ssh/authorized_keys2"} {
			p := path.Join(h.dir, n)
			if !done[p] {
				done[p] = true
				u := ""
				if len(h.users) > 0 {
					u = h.users[0]
				}
				ps.keyFile(p, u)
			}
		}
	}
}

// expandSSHDPattern expands %h, %u, %% of an AuthorizedKeysFile pattern;
// a relative pattern is relative to the home.
func expandSSHDPattern(pat, home, user, uid string) string {
	if strings.Contains(pat, "%u") && user == "" || strings.Contains(pat, "%U") && uid == "" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		if pat[i] == '%' && i+1 < len(pat) {
			switch pat[i+1] {
			case 'h':
				b.WriteString(home)
			case 'u':
				b.WriteString(user)
			case 'U':
				b.WriteString(uid)
			case '%':
				b.WriteByte('%')
			default:
				return ""
			}
			i++
			continue
		}
		b.WriteByte(pat[i])
	}
	p := b.String()
	if !strings.HasPrefix(p, "/") {
		p = path.Join(home, p)
	}
	return path.Clean(p)
}

func (ps *persist) keyFile(p, user string) {
	cf := ps.readConf(p)
	if cf == nil {
		return
	}
	for l := range contentLines(cf.data) {
		t := l.Text
		k := parseAuthorizedKey(t)
		k.User = user
		target := k.Comment
		if target == "" {
			target = k.Fingerprint
		}
		e := Entry{Path: cf.path, Line: l.Num, Kind: KindAuthorizedKey, Target: target, Enabled: k.Bad == "", EvidencePath: cf.file, Key: &k, Flags: []string{}}
		ps.stamp(&e, cf.path, cf.st)
		if l.Long {
			addFlag(&e, FlagLongLine)
		}
		if k.Bad != "" {
			e.Note = "sshd would not accept this line: " + k.Bad
		}
		if k.Command != "" {
			addFlag(&e, FlagCommandOption)
			ps.runs(&e, "", k.Command)
		}
		for _, env := range k.Environment {
			if rePreloadEnv.MatchString(env) || strings.HasPrefix(env, "LD_PRELOAD=") {
				addFlag(&e, FlagPreloadsLib)
			}
		}
		ps.add(e)
	}
}
