package host

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/conf"
	"github.com/deadnode/deadnode/internal/testfix"
)

// fixtureSeeds adds files of the compromised host (real Debian files) as
// seeds.
func fixtureSeeds(f *testing.F, paths ...string) {
	root := testfix.KubeHost(f)
	for _, p := range paths {
		matches, _ := filepath.Glob(filepath.Join(root, p))
		for _, m := range matches {
			if st, err := os.Lstat(m); err != nil || !st.Mode().IsRegular() {
				continue // links point into the evidence, not the host
			}
			b, err := os.ReadFile(m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

func FuzzCronLine(f *testing.F) {
	fixtureSeeds(f, "etc/crontab", "etc/cron.d/*")
	f.Add([]byte("@reboot root /x\nA=b\n*/5 * * * *\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, system := range []bool{true, false} {
			for _, l := range parseCrontab(b, system) {
				if l.Line < 1 || len(l.Text) > MaxLine {
					t.Fatalf("line %d, %d bytes", l.Line, len(l.Text))
				}
				if !l.Env && l.Bad == "" && (l.Job.Schedule == "" || l.Job.Command == "" || system && l.Job.User == "") {
					t.Fatalf("a job without its fields: %+v", l)
				}
			}
		}
		parseAnacrontab(b)
	})
}

func FuzzUnitFile(f *testing.F) {
	fixtureSeeds(f, "usr/lib/systemd/system/*", "etc/systemd/system/*.service", "etc/systemd/system/*.timer", "etc/systemd/system/*/*.conf")
	f.Add([]byte("[Service]\nExecStart=/a \\\n# c\n b\nExecStart=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _ := parseUnitFile(b)
		for _, x := range d {
			if len(x.Value) > conf.MaxUnitValue+MaxLine || x.Line < 1 {
				t.Fatalf("value of %d bytes at line %d", len(x.Value), x.Line)
			}
		}
		m := mergeUnit([]unitSource{{"/u", d}, {"/d", d}})
		for _, e := range m.exec {
			analyzeCommand(e.Command)
		}
	})
}

func FuzzDpkgStatus(f *testing.F) {
	fixtureSeeds(f, "var/lib/dpkg/status")
	f.Add([]byte("Package: a\nConffiles:\n /x 0123456789abcdef0123456789abcdef obsolete\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var w warnings
		n := 0
		err := parseDpkgStatus(bytes.NewReader(b), "status", &w, func(p *dpkgPackage) error {
			n++
			if p.Name == "" {
				t.Fatal("a package without a name")
			}
			for _, c := range p.Conffiles {
				if !strings.HasPrefix(c.Path, "/") || c.MD5 != "" && len(c.MD5) != 32 {
					t.Fatalf("conffile %+v", c)
				}
			}
			return nil
		})
		if err != nil && n > MaxPackages {
			t.Fatal(err)
		}
		parseDiversions(bytes.NewReader(b), "diversions", &w)
		parseDpkgCfg(b)
	})
}

func FuzzMD5Sums(f *testing.F) {
	fixtureSeeds(f, "var/lib/dpkg/info/*.md5sums", "var/lib/dpkg/info/dash.list")
	f.Fuzz(func(t *testing.T, b []byte) {
		var w warnings
		parseMD5Sums(bytes.NewReader(b), "x.md5sums", &w, func(p, m string) error {
			if !strings.HasPrefix(p, "/") || len(m) != 32 || strings.ToLower(m) != m {
				t.Fatalf("%q %q", p, m)
			}
			return nil
		})
		parseList(bytes.NewReader(b), "x.list", &w, func(p string) error {
			if !strings.HasPrefix(p, "/") {
				t.Fatalf("%q", p)
			}
			return nil
		})
	})
}

func FuzzAuthorizedKeys(f *testing.F) {
	fixtureSeeds(f, "root/.ssh/authorized_keys")
	f.Add([]byte(`command="a,b \"c\"",no-pty,environment="X=1" ssh-rsa AAAA x` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for l := range lines(b) {
			k := parseAuthorizedKey(l.Text)
			if k.Bad == "" && (k.Fingerprint == "" || !isKeyType(k.Type)) {
				t.Fatalf("accepted %+v", k)
			}
			if len(k.Options) > 64 || len(k.Comment) > 1024 {
				t.Fatalf("unbounded %+v", k)
			}
		}
	})
}

// rpmSeeds are the header blobs of the committed rpm database.
func rpmSeeds(f *testing.F) [][]byte {
	a, err := evidence.OpenArchive(context.Background(), rpmRoot, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer a.Close()
	tmp := f.TempDir()
	if err := copyOut(a, newResolver(a), "/var/lib/rpm/rpmdb.sqlite", filepath.Join(tmp, "db"), 1<<30); err != nil {
		f.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(tmp, "db")+"?_pragma=query_only(1)")
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(sqlRPMPackages)
	if err != nil {
		f.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var n int
		var b []byte
		if err := rows.Scan(&n, &b); err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) != 2 {
		f.Fatalf("%d headers", len(out))
	}
	return out
}

func FuzzRPMHeader(f *testing.F) {
	for _, b := range rpmSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseRPMHeader(b)
		if err != nil {
			return
		}
		if h.Name == "" || len(h.Files) > maxRPMFiles {
			t.Fatalf("%q %d files", h.Name, len(h.Files))
		}
	})
}

func FuzzCommand(f *testing.F) {
	fixtureSeeds(f, "etc/cron.d/*", "etc/cron.daily/*")
	f.Add([]byte(`sh -c "$(curl -s x)" 2>&1 & { a; } | b`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cf := analyzeCommand(string(b))
		if len(cf.Programs) > 64+64 {
			t.Fatalf("%d programs", len(cf.Programs))
		}
	})
}

func FuzzOCIHook(f *testing.F) {
	fixtureSeeds(f, "usr/share/containers/oci/hooks.d/*.json")
	f.Add([]byte(`{"hook": "/x", "stage": ["prestart"], "cmds": ["a"], "annotation": ["b"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseOCIHook(b)
		if err == nil && h.Program == "" {
			t.Fatal("a hook without a program")
		}
	})
}
