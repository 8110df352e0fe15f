package host

import (
	"path"
	"regexp"
	"strings"

	"github.com/deadnode/deadnode/forensics/classify"
)

// Flags a persistence entry earns by what it runs.
const (
	FlagFetchRun      = "fetch_and_run"       // downloads code and runs it (curl … | sh, $(wget …), download && chmod +x)
	FlagDecodeRun     = "decode_and_run"      // decodes a blob and runs it (base64 -d | sh)
	FlagReverseShell  = "reverse_shell"       // connects a shell to the network (/dev/tcp, nc -e, socat exec:)
	FlagInlineCode    = "inline_code"         // an interpreter given code on its command line (sh -c, python -c)
	FlagRunsVolatile  = "runs_from_volatile"  // runs a program from /tmp, /var/tmp, /dev/shm, /run
	FlagRunsHidden    = "runs_from_hidden"    // runs a program under a hidden name
	FlagPreloadsLib   = "preloads_library"    // sets LD_PRELOAD or writes ld.so.preload
	FlagCommandOption = "command_option"      // authorized_keys: command="…" forced command
	FlagTargetMissing = "target_missing"      // the program it runs is not in the evidence
	FlagTargetCopy    = "target_renamed_copy" // the program it runs is a copy of a package binary under another name
	FlagUnownedDropIn = "unowned_dropin"      // a drop-in no package owns changes the unit
	FlagLongLine      = "long_line"           // a line was cut at MaxLine
)

// severeFlags raise an entry to high whatever its owner (unless a
// package ships it unmodified).
var severeFlags = []string{FlagFetchRun, FlagDecodeRun, FlagReverseShell, FlagRunsVolatile, FlagRunsHidden, FlagPreloadsLib, FlagTargetCopy}

// The patterns run over the command lower-cased, each only in windows
// around the places its keywords occur (at most maxHits per pattern), so
// that a hostile 64 KiB line costs a few windows, not a regular-expression
// pass per pattern over all of it.
var (
	reFetch    = `(curl|wget|fetch|aria2c|tftp|lwp-download|lynx\s+-source|python[0-9.]*\s+-m\s+urllib)`
	reShell    = `(sudo\s+)?(/[^\s|;&]*/)?(ba|da|z|k|a|tc|c)?sh|python[0-9.]*|perl|ruby|php|node|lua|busybox\s+sh`
	fetchKeys  = []string{"curl", "wget", "fetch", "aria2c", "tftp", "lwp-download", "lynx", "urllib"}
	cmdPattern = []struct {
		flag string
		keys []string
		re   *regexp.Regexp
	}{
		{FlagFetchRun, fetchKeys, regexp.MustCompile(`\b` + reFetch + `\b[^|;&]*\|\s*(` + reShell + `)\b`)},
		{FlagFetchRun, fetchKeys, regexp.MustCompile("(\\$\\(|`|<\\()\\s*" + reFetch + `\b`)},
		{FlagFetchRun, fetchKeys, regexp.MustCompile(`\b` + reFetch + `\b[^;&|]*(\s-o\s*|>\s*)\S+.*(&&|;|\|\|).*(chmod\s+[+0-7]*[x75]|\s\./|\bsh\s+/|\bbash\s+/|\bexec\b)`)},
		{FlagDecodeRun, []string{"base64", "openssl", "xxd", "gunzip", "zcat", "rev"}, regexp.MustCompile(`(base64\s+(-d|--decode)|openssl\s+(enc\s+)?(-base64|base64)\s+.*-d|xxd\s+-r|\bgunzip\b|\bzcat\b|\brev\b)[^;&]*\|\s*(` + reShell + `)\b`)},
		{FlagDecodeRun, []string{"eval"}, regexp.MustCompile(`\beval\b.*(base64|\\x[0-9a-f]{2}|xxd)`)},
		{FlagReverseShell, []string{"/dev/tcp", "/dev/udp", "nc", "socat", "mkfifo", "-i", "socket", "fsockopen"},
			regexp.MustCompile(`(/dev/(tcp|udp)/|\bnc(at)?\b[^|;&]*\s-[a-z]*[ec]\b|\bsocat\b.*\bexec:|\bmkfifo\b.*\b(nc|ncat|telnet|openssl)\b|\b(ba)?sh\s+-i\s*[>&<]|\bsocket\.(socket|connect)|\bfsockopen\b|io::socket|tcpsocket)`)},
		{FlagInlineCode, []string{" -c", " -e", " -r", "\t-c", "\t-e", "-ic", "-ec", "-lc", "-xc"}, regexp.MustCompile(`(^|[\s/;|&(])((ba|da|z|k|a)?sh|python[0-9.]*|perl|ruby|node|php|lua)\s+(-[a-z]*[ce]|-r)\s`)},
		{FlagPreloadsLib, []string{"ld_preload"}, regexp.MustCompile(`\bld_preload\s*=`)},
	}
	rePreloadEnv = regexp.MustCompile(`\bLD_PRELOAD\s*=`)
)

// maxHits bounds the keyword places a pattern is tried at; a window is
// how much of the command around a place it reads; maxAnalyzed is how
// much of a command the patterns read at all (a longer command is flagged
// long_line).
const (
	maxHits      = 64
	windowBefore = 64
	windowAfter  = 2048
	maxAnalyzed  = 16 << 10
)

// matchAround reports whether re matches a window of s around an
// occurrence of one of keys. A place inside the last window read is not
// read again.
func matchAround(s string, keys []string, re *regexp.Regexp) bool {
	hits := 0
	for _, k := range keys {
		from, readTo := 0, -1
		for hits < maxHits {
			i := strings.Index(s[from:], k)
			if i < 0 {
				break
			}
			i += from
			from = i + len(k)
			if i+len(k)+windowBefore < readTo {
				continue // read with the previous window
			}
			hits++
			lo, hi := max(0, i-windowBefore), min(len(s), i+windowAfter)
			if re.MatchString(" " + s[lo:hi] + " ") {
				return true
			}
			readTo = hi
		}
	}
	return false
}

// cmdFacts is what a command line says about what it runs.
type cmdFacts struct {
	// Programs are the programs the command runs, in order: the first word
	// of every simple command (past assignments and wrappers such as env,
	// nohup, sudo) and the script an interpreter is given.
	Programs []string
	Flags    []string
}

// analyzeCommand reads a shell command line (a cron command, a systemd
// Exec line, a hook, an authorized_keys command=) for what it runs.
func analyzeCommand(cmd string) cmdFacts {
	var cf cmdFacts
	if len(cmd) > MaxLine {
		cmd = cmd[:MaxLine]
	}
	add := func(f string) {
		if !hasFlag(cf.Flags, f) {
			cf.Flags = append(cf.Flags, f)
		}
	}
	lower := strings.ToLower(cmd)
	if len(lower) > maxAnalyzed {
		lower = lower[:maxAnalyzed]
		add(FlagLongLine)
	}
	for _, p := range cmdPattern {
		if !hasFlag(cf.Flags, p.flag) && matchAround(lower, p.keys, p.re) {
			add(p.flag)
		}
	}
	cf.Programs = programs(cmd, 0)
	for _, p := range cf.Programs {
		if !strings.HasPrefix(p, "/") {
			continue
		}
		if classify.Volatile(p) {
			add(FlagRunsVolatile)
		}
		if hiddenProgram(p) {
			add(FlagRunsHidden)
		}
	}
	return cf
}

// xdgDirs are the dot-directories of a home where programs and units
// live by convention (Debian's ~/.profile puts ~/.local/bin on PATH): a
// program there is not "hidden".
var xdgDirs = []string{".local/bin", ".local/share", ".config"}

// hiddenProgram reports whether a program path has a component starting
// with a dot, other than a home's XDG directories.
func hiddenProgram(p string) bool {
	rest := p
	for _, h := range []string{"/root/", "/home/"} {
		if r, ok := strings.CutPrefix(p, h); ok {
			if h == "/home/" {
				_, r, _ = strings.Cut(r, "/") // the user's directory
			}
			for _, x := range xdgDirs {
				if r2, ok := strings.CutPrefix(r, x+"/"); ok {
					rest = "/" + r2
					break
				}
			}
		}
	}
	return classify.Hidden(rest)
}

// wrappers run the rest of their command line as a program.
var wrappers = map[string]bool{
	"exec": true, "nohup": true, "sudo": true, "env": true, "nice": true, "ionice": true, "setsid": true,
	"stdbuf": true, "chrt": true, "taskset": true, "command": true, "builtin": true, "time": true, "timeout": true,
	"then": true, "do": true, "else": true, "if": true, "while": true, "until": true, "!": true, "flock": true,
	"runuser": true, "su": false, "chroot": false, "xargs": true, "watch": true, "unbuffer": true, "doas": true,
}

// interpreters run the script given as their first non-option argument.
var interpreters = map[string]bool{
	"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "ash": true, "csh": true, "tcsh": true, "busybox": true,
	"python": true, "python2": true, "python3": true, "perl": true, "ruby": true, "node": true, "php": true, "lua": true,
}

func isInterpreter(p string) bool {
	b := path.Base(p)
	if interpreters[b] {
		return true
	}
	return strings.HasPrefix(b, "python3.") || strings.HasPrefix(b, "python2.")
}

// programs returns the programs a shell command line runs.
func programs(cmd string, depth int) []string {
	if depth > 4 {
		return nil
	}
	var out []string
	for _, simple := range splitSimple(cmd) {
		toks := shellWords(simple)
		i := 0
		// assignments, wrappers and their options
		for i < len(toks) {
			t := toks[i]
			if isAssignment(t) || redirection(t) {
				i++
				continue
			}
			if wrappers[path.Base(t)] {
				i++
				// skip the wrapper's options (and a timeout's duration,
				// a nice's level)
				for i < len(toks) && (strings.HasPrefix(toks[i], "-") || isAssignment(toks[i]) || isNumberish(toks[i])) {
					if (toks[i] == "-n" || toks[i] == "-u" || toks[i] == "-c" && path.Base(t) == "flock") && i+1 < len(toks) {
						i++
					}
					i++
				}
				continue
			}
			break
		}
		if i >= len(toks) {
			continue
		}
		prog := toks[i]
		if strings.HasPrefix(prog, "{") || strings.HasPrefix(prog, "}") || prog == "[" || prog == "[[" || prog == "test" || prog == "true" || prog == "false" || prog == ":" || prog == "cd" || prog == "fi" || prog == "done" || prog == "echo" || prog == "printf" {
			continue
		}
		out = append(out, prog)
		if isInterpreter(prog) {
			rest := toks[i+1:]
			if path.Base(prog) == "busybox" && len(rest) > 0 {
				rest = rest[1:]
			}
			for j := 0; j < len(rest); j++ {
				a := rest[j]
				if redirection(a) {
					continue
				}
				if a == "-c" || a == "-e" || a == "-r" || strings.HasPrefix(a, "-") && strings.ContainsAny(a[1:], "ce") && len(a) <= 4 {
					if j+1 < len(rest) {
						out = append(out, programs(rest[j+1], depth+1)...)
					}
					break
				}
				if strings.HasPrefix(a, "-") {
					continue
				}
				out = append(out, a) // the script it runs
				break
			}
		}
		if len(out) > 64 {
			break
		}
	}
	return out
}

func isAssignment(t string) bool {
	i := strings.IndexByte(t, '=')
	if i <= 0 {
		return false
	}
	for _, c := range t[:i] {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func isNumberish(t string) bool {
	if t == "" {
		return false
	}
	for _, c := range t {
		if !('0' <= c && c <= '9' || c == '.' || c == 's' || c == 'm' || c == 'h') {
			return false
		}
	}
	return '0' <= t[0] && t[0] <= '9'
}

func redirection(t string) bool {
	t = strings.TrimLeft(t, "0123456789&")
	return strings.HasPrefix(t, ">") || strings.HasPrefix(t, "<")
}

// shellRole is what one byte of a command line is to a POSIX shell.
type shellRole uint8

const (
	shellPlain   shellRole = iota // unquoted: may be an operator or a blank
	shellQuoting                  // a quote, or a backslash that escapes the next byte
	shellLiteral                  // quoted or escaped: never an operator or a blank
)

// scanShell walks s as a shell quotes it, calling fn with each byte and
// its role until fn returns false. Inside double quotes a backslash
// escapes only " \ $ and `; elsewhere it escapes any byte.
func scanShell(s string, fn func(c byte, r shellRole) bool) {
	q := byte(0)
	for i := 0; i < len(s); i++ {
		c, r := s[i], shellPlain
		switch {
		case q != 0 && c == q:
			q, r = 0, shellQuoting
		case q == '"' && c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0,
			q == 0 && c == '\\' && i+1 < len(s):
			if !fn(c, shellQuoting) {
				return
			}
			i++
			c, r = s[i], shellLiteral
		case q != 0:
			r = shellLiteral
		case c == '\'' || c == '"':
			q, r = c, shellQuoting
		}
		if !fn(c, r) {
			return
		}
	}
}

// splitSimple cuts a command line into simple commands at unquoted ; & |
// newlines, parentheses, braces and command substitutions.
func splitSimple(s string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	i := -1
	skip := false
	scanShell(s, func(c byte, r shellRole) bool {
		i++
		if skip {
			skip = false
			return true
		}
		if r == shellPlain {
			switch {
			case c == '&' && (i > 0 && (s[i-1] == '>' || s[i-1] == '<') || i+1 < len(s) && s[i+1] == '>'):
				// a redirection (2>&1, &>file), not a separator
			case c == ';' || c == '&' || c == '|' || c == '\n' || c == '(' || c == ')' || c == '`':
				flush()
				return true
			case c == '$' && i+1 < len(s) && s[i+1] == '(':
				flush()
				skip = true
				return true
			case (c == '{' || c == '}') && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == ';'):
				flush()
				return true
			}
		}
		cur.WriteByte(c)
		return len(out) <= 256
	})
	flush()
	return out
}

// shellWords splits a simple command into words, removing quotes.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	scanShell(s, func(c byte, r shellRole) bool {
		switch {
		case r == shellQuoting:
			in = true
		case r == shellPlain && (c == ' ' || c == '\t' || c == '\r'):
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
		return len(out) <= 1024
	})
	if in && len(out) <= 1024 {
		out = append(out, cur.String())
	}
	return out
}
