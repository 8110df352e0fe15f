package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/internal/ondisk"
)

// FuzzConfigV2 feeds config.v2.json and hostconfig.json to the decoders
// and to the spec builder.
func FuzzConfigV2(f *testing.F) {
	f.Add([]byte(`{"ID":"x","State":{"Running":true,"Pid":1},"Config":{"User":"1000:1000"},"MountPoints":{"/d":{"Source":"/s","RW":true}}}`), []byte(`{"Privileged":true,"SecurityOpt":["seccomp=unconfined"]}`))
	f.Fuzz(func(t *testing.T, cfgJSON, hcJSON []byte) {
		cfg, err := decodeConfigV2(cfgJSON)
		if err != nil {
			if cfg != nil {
				t.Fatal("record and error")
			}
			return
		}
		hc, _ := decodeHostConfig(hcJSON)
		sp := buildSpec(cfg, hc, cfgJSON)
		if sp == nil || len(sp.Raw) == 0 {
			t.Fatal("no spec")
		}
		_ = ondisk.K8sAttempt(cfg.Name)
	})
}

// FuzzImageConfig feeds image configs and repositories.json to the
// decoders.
func FuzzImageConfig(f *testing.F) {
	f.Add([]byte(`{"rootfs":{"diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]},"history":[{"created_by":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := decodeImageConfig(b); err == nil {
			ids := chainIDs(c.RootFS.DiffIDs)
			if len(ids) != len(c.RootFS.DiffIDs) {
				t.Fatal("chain ids")
			}
		}
		if r, err := decodeRepositories(b); err == nil {
			for _, refs := range r {
				for _, id := range refs {
					_ = validDigest(id)
				}
			}
		}
	})
}

// FuzzParseLower checks that every entry parseLower accepts is an l/ link
// name that cannot climb out of the driver directory.
func FuzzParseLower(f *testing.F) {
	f.Add([]byte("l/AAAA:l/BBBB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseLower(b)
		if err != nil {
			return
		}
		if len(entries) == 0 || len(entries) > maxLowers {
			t.Fatalf("%d entries", len(entries))
		}
		for _, e := range entries {
			short, ok := strings.CutPrefix(e, "l/")
			if !ok || short == "" || short == "." || short == ".." || strings.ContainsAny(short, "/\x00") {
				t.Fatalf("entry %q accepted", e)
			}
		}
	})
}

// FuzzResolveLower builds a data root whose l/ link has a fuzzed target
// and whose lower file is fuzzed, and checks that whatever is resolved
// stays a diff directory under overlay2/.
func FuzzResolveLower(f *testing.F) {
	f.Add("l/X:l/BASE", "../m-init/diff")
	f.Add("l/X", "/etc")
	f.Add("l/X", "../../../../etc")
	f.Add("l/X", "X")
	f.Fuzz(func(t *testing.T, lower, target string) {
		if len(target) > 512 || strings.ContainsRune(target, 0) {
			return
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		dir := func(n string) { tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755}) }
		file := func(n, c string) {
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(c))})
			tw.Write([]byte(c))
		}
		r := "var/lib/docker/"
		for _, d := range []string{"etc/", "etc/x/", "etc/x/diff/", r, r + "containers/", r + "containers/c/", r + "overlay2/", r + "overlay2/l/", r + "overlay2/m/", r + "overlay2/m/diff/", r + "overlay2/m-init/", r + "overlay2/m-init/diff/", r + "overlay2/base/", r + "overlay2/base/diff/"} {
			dir(d)
		}
		file(r+"containers/c/config.v2.json", `{"ID":"c"}`)
		file(r+"image/overlay2/layerdb/mounts/c/mount-id", "m")
		file(r+"image/overlay2/layerdb/mounts/c/init-id", "m-init")
		file(r+"overlay2/m/lower", lower)
		tw.WriteHeader(&tar.Header{Name: r + "overlay2/l/X", Typeflag: tar.TypeSymlink, Linkname: target})
		tw.WriteHeader(&tar.Header{Name: r + "overlay2/l/BASE", Typeflag: tar.TypeSymlink, Linkname: "../base/diff"})
		tw.Close()
		src, err := evidence.NewArchive(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), "fuzz.tar", nil)
		if err != nil {
			return
		}
		defer src.Close()
		s, err := Open(src, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Containers {
			for _, d := range c.LowerDirs {
				rel, ok := strings.CutPrefix(d, "/var/lib/docker/overlay2/")
				parts := strings.Split(rel, "/")
				if !ok || len(parts) != 2 || parts[1] != "diff" || parts[0] == "l" || parts[0] == ".." {
					t.Fatalf("lower %q escapes overlay2 (lower %q, target %q)", d, lower, target)
				}
			}
		}
	})
}
