package kube

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence"
)

// node is one entry of a test tree: a file (data), a symlink (link) or a
// directory (dir).
type node struct {
	data  string
	link  string
	dir   bool
	mode  os.FileMode
	mtime time.Time
}

func file(data string) node                { return node{data: data} }
func symlink(target string) node           { return node{link: target} }
func fileAt(data string, t time.Time) node { return node{data: data, mtime: t} }

var baseTime = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

type namedSource struct {
	name string
	src  evidence.Source
}

// trees builds the tree as a directory and as a tar archive (read in
// place), the two forms every test runs on.
func trees(t testing.TB, nodes map[string]node) []namedSource {
	t.Helper()
	dir := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	madeDirs := map[string]bool{}
	var addDirs func(p string)
	addDirs = func(p string) {
		if p == "." || p == "/" || madeDirs[p] {
			return
		}
		addDirs(path.Dir(p))
		madeDirs[p] = true
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755, ModTime: baseTime})
	}
	for _, n := range names {
		e := nodes[n]
		rel := strings.TrimPrefix(n, "/")
		host := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		addDirs(path.Dir(rel))
		mt := e.mtime
		if mt.IsZero() {
			mt = baseTime
		}
		mode := e.mode
		switch {
		case e.dir:
			if mode == 0 {
				mode = 0o755
			}
			os.MkdirAll(host, mode)
			os.Chtimes(host, mt, mt)
			if !madeDirs[rel] {
				madeDirs[rel] = true
				tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: int64(mode), ModTime: mt})
			}
		case e.link != "":
			if err := os.Symlink(e.link, host); err != nil {
				t.Fatal(err)
			}
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: rel, Linkname: e.link, Mode: 0o777, ModTime: mt})
		default:
			if mode == 0 {
				mode = 0o644
			}
			if err := os.WriteFile(host, []byte(e.data), mode); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(host, mt, mt)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Size: int64(len(e.data)), Mode: int64(mode), ModTime: mt})
			tw.Write([]byte(e.data))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := evidence.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	a, err := evidence.NewArchive(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), "tree.tar", nil)
	if err != nil {
		t.Fatal(err)
	}
	return []namedSource{{"dir", d}, {"tar", a}}
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func mustRegexp(s string) *regexp.Regexp { return regexp.MustCompile(s) }
