package pathutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
)

// denying is a Source where nothing below dir may be reached, as for a
// user without search permission on dir.
type denying struct {
	evidence.Source
	dir string
}

func (d denying) Lstat(name string) (*evidence.Stat, error) {
	if strings.HasPrefix(strings.Trim(name, "/"), d.dir+"/") {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrPermission}
	}
	return d.Source.Lstat(name)
}

func tree(t *testing.T, files ...string) evidence.Source {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestDenied(t *testing.T) {
	src := denying{tree(t, "var/lib/rt/db"), "var/lib/rt"}
	_, err := src.Lstat("var/lib/rt/db")
	got := Denied(src, "var/lib/rt/db", err)
	var pe *fs.PathError
	if !errors.As(got, &pe) || pe.Path != "/var/lib/rt" || !errors.Is(got, fs.ErrPermission) {
		t.Errorf("%v", got)
	}
	if other := errors.New("x"); Denied(src, "a", other) != other || Denied(src, "a", nil) != nil {
		t.Error("other errors are not kept")
	}
}

func TestFinder(t *testing.T) {
	src := denying{tree(t, "etc/rt.conf", "srv/rt/marker", "var/lib/rt/marker", "opt/rt/marker"), "var/lib/rt"}
	f := &Finder{Src: src, What: "rt root", Hint: "use --rt-root", IsRoot: func(r string) (bool, error) {
		_, err := src.Lstat(r + "/marker")
		if errors.Is(err, fs.ErrPermission) {
			return false, err
		}
		return err == nil, nil
	}}
	// A config naming a host path under a prefix: found with the prefix
	// dropped; a default place that may not be read; another one that is.
	if r, note := f.Host("/chroot/srv/rt", "root from /etc/rt.conf"); r != "srv/rt" || note != "root from /etc/rt.conf (not in the evidence as it is; found at /srv/rt)" {
		t.Errorf("host: %q %q", r, note)
	}
	if r := f.Known("var/lib/rt", ""); r != "" {
		t.Errorf("known unreadable: %q", r)
	}
	if r := f.Known("opt/rt", ""); r != "opt/rt" {
		t.Errorf("known: %q", r)
	}
	root, warns, err := f.Pick(errors.New("none"), false)
	if err != nil || root != "/srv/rt" || len(warns) != 2 || warns[0].String() != "more than one rt root in the evidence (/srv/rt, /opt/rt); reading /srv/rt (use --rt-root)" || warns[1].String() != "open /var/lib/rt: permission denied; not looked at" {
		t.Errorf("pick: %q %q %v", root, warns, err)
	}
	// A caller that reads every root is not warned that there are several.
	if _, warns, err := f.Pick(errors.New("none"), true); err != nil || len(warns) != 1 || warns[0].String() != "open /var/lib/rt: permission denied; not looked at" {
		t.Errorf("pick all: %q %v", warns, err)
	}
	// Nothing readable found: the permission error, not "none".
	g := &Finder{Src: src, IsRoot: f.IsRoot}
	g.Known("var/lib/rt", "")
	if _, _, err := g.Pick(errors.New("none"), true); !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "/var/lib/rt") {
		t.Errorf("pick none: %v", err)
	}
}

// A path of thousands of components (a runc root recorded in a crafted
// container's options) is not looked for: each try resolved what was
// left of it, and four containers took 17 s to open.
func TestRebaseRefusesCraftedPaths(t *testing.T) {
	src, err := evidence.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	calls := 0
	ok := func(string) bool { calls++; return true }
	for _, p := range []string{"/" + strings.Repeat("a/", 2000), "/" + strings.Repeat("x", 5000)} {
		if r, note := Rebase(src, p, ok); r != "" || note != "" || calls != 0 {
			t.Errorf("%d bytes: %q %q, %d tries", len(p), r, note, calls)
		}
	}
	if r, _ := Rebase(src, "/run/containerd/runc/k8s.io", ok); r != "run/containerd/runc/k8s.io" || calls != 1 {
		t.Errorf("a plain path: %q after %d tries", r, calls)
	}
}
