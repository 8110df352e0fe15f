package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/evidence"
)

// Seeds are the host fixture's own files (testdata/seeds, copied from
// testdata/kube-host) and the real runtimes' logs (testdata/runtimes-c1).
func seed(f *testing.F, names ...string) {
	f.Helper()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzManifest(f *testing.F) {
	seed(f, "seeds/log-shipper.yaml", "seeds/node-problem-detector.yaml")
	f.Add([]byte(apiserverJSON))
	f.Add([]byte(multiDoc))
	f.Add([]byte(billionLaughs()))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxConfigBytes {
			return
		}
		docs := splitYAMLDocuments(b)
		total := 0
		for _, d := range docs {
			total += len(d)
		}
		if total > len(b) {
			t.Fatalf("documents hold %d bytes of %d", total, len(b))
		}
		for i, d := range docs {
			if i >= MaxDocuments {
				break
			}
			doc, err := decodeYAML(d)
			if err != nil || doc == nil {
				continue
			}
			p := StaticPod{Configured: i%2 == 0, IgnoredByKubelet: i > 0}
			parsePodManifest(&p, doc)
			judgeStaticPod(&p)
			if p.Why == "" {
				t.Fatal("a judgement without a reason")
			}
			f := p.Finding()
			if f.Analyzer != "static_pod" || f.Severity < 0 || f.Severity > 4 {
				t.Fatalf("finding %+v", f)
			}
			if p.IgnoredByKubelet && p.Severity > 2 {
				t.Fatalf("an ignored manifest at %s", p.Severity)
			}
		}
	})
}

func FuzzKubeletConfig(f *testing.F) {
	seed(f, "seeds/kubelet-config.yaml", "seeds/kubelet.conf")
	f.Add([]byte(safeConfig))
	f.Add([]byte("{\"readOnlyPort\": 10255, \"authorization\": {\"mode\": \"AlwaysAllow\"}}"))
	empty, err := evidence.NewArchive(context.Background(), bytes.NewReader(make([]byte, 1024)), 1024, "empty.tar", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxConfigBytes {
			return
		}
		doc, err := decodeYAML(b)
		if err != nil {
			return
		}
		c := &KubeletConfig{}
		for _, s := range settingSpecs {
			if s.def != nil {
				s.field(c).apply(s.def, Provenance{Origin: OriginDefault})
			}
		}
		applyLayer(c, configLayer{info: FileInfo{Path: "/c.yaml"}, origin: OriginConfigFile, doc: doc})
		for _, fd := range ConfigFindings(c, nil) {
			if fd.Why == "" || fd.Analyzer != "kubelet" {
				t.Fatalf("finding %+v", fd)
			}
		}
		// The same bytes as a kubeconfig.
		k := Kubeconfig{}
		parseKubeconfig(empty, &k, doc, "/")
		KubeconfigFindings(k)
	})
}

func FuzzJWT(f *testing.F) {
	seed(f, "seeds/sa-token")
	f.Add([]byte(boundToken("a", "b", "c", "d")))
	f.Add([]byte("eyJhbGciOiJub25lIn0.e30."))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := DecodeJWT(b)
		if err == nil && (j == nil || len(j.SHA256) != 64 || j.Header.Alg == "") {
			t.Fatalf("decoded %+v", j)
		}
		if j != nil && j.Bytes > MaxTokenBytes {
			t.Fatalf("token of %d bytes decoded", j.Bytes)
		}
	})
}

// runLog feeds bytes through the log reader as one file of format.
func runLog(t *testing.T, b []byte, format string, max int) []LogLine {
	lf := LogFile{Format: format, FileInfo: FileInfo{EvidencePath: "/fuzz.log"}}
	c := &cursor{files: []LogFile{lf}, idx: 1, max: max, pending: map[string]*LogLine{}, stats: map[string]*fileStats{"/fuzz.log": {file: lf}}}
	c.cur = &c.files[0]
	c.lr = newLineReader(bytes.NewReader(b), max)
	var out []LogLine
	for c.advance(context.Background()) {
		if c.headErr != nil {
			continue
		}
		out = append(out, c.head)
		if len(c.head.Text) > max {
			t.Fatalf("a line of %d bytes past the %d bound", len(c.head.Text), max)
		}
	}
	if n := int64(bytes.Count(b, []byte("\n"))); c.lr != nil && c.lr.lineNo < n {
		t.Fatalf("read %d of %d lines", c.lr.lineNo, n)
	}
	return out
}

func FuzzCRILog(f *testing.F) {
	seed(f, "seeds/cri-0.log",
		"runtimes-c1/podman/overlay-containers/015674db7f57680cac399505aa6e903f2837396a880b3e6bfa0ce13193fb8672/userdata/ctr.log")
	f.Add([]byte("2026-11-26T10:00:02Z stdout P hel\n2026-11-26T10:00:02Z stderr F e\n2026-11-26T10:00:03Z stdout F lo\n"))
	f.Add([]byte("2026-11-26T10:00:02Z stdout F:x\n2026-11-26T10:00:02Z stdout\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, max := range []int{16, 4096} {
			for _, l := range runLog(t, b, FormatCRI, max) {
				if l.Stream != "stdout" && l.Stream != "stderr" {
					t.Fatalf("stream %q", l.Stream)
				}
			}
		}
		// The fast time parser agrees with time.Parse.
		if sp := bytes.IndexByte(b, ' '); sp > 0 {
			ft, ferr := parseTime(b[:sp])
			st, serr := time.Parse(time.RFC3339Nano, string(b[:sp]))
			if (ferr == nil) != (serr == nil) || ferr == nil && !ft.Equal(st) {
				t.Fatalf("parseTime(%q) = %v, %v; time.Parse: %v, %v", b[:sp], ft, ferr, st, serr)
			}
		}
		ts, stream, _, text, err := ParseCRILine(b)
		if err == nil && (ts.IsZero() && !strings.HasPrefix(string(b), "0001") || stream == "" || len(text) > len(b)) {
			t.Fatalf("parsed %v %q %q", ts, stream, text)
		}
	})
}

func FuzzDockerLog(f *testing.F) {
	seed(f, "runtimes-c1/docker/containers/f8a96d9431afcdcda37c334276774b7f696bc5c5c20c89182ad28a3f450eaed5/f8a96d9431afcdcda37c334276774b7f696bc5c5c20c89182ad28a3f450eaed5-json.log",
		"runtimes-c1/docker/containers/cea7943353fc7725d626fedcabd42b1ad24c3ef83f66e62bf700ff40ac2dfeda/cea7943353fc7725d626fedcabd42b1ad24c3ef83f66e62bf700ff40ac2dfeda-json.log")
	f.Add([]byte(`{"log":"split ","stream":"stdout","time":"2026-11-26T09:00:01Z"}` + "\n" + `{"log":"\u00e9\\u0041\n","stream":"stdout","time":"2026-11-26T09:00:01.5Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, max := range []int{24, 4096} {
			runLog(t, b, FormatDockerJSON, max)
		}
		ParseDockerLine(b)
		parseDockerTruncated(b, b)
		// The fast path agrees with encoding/json where it answers.
		if fast, ok := parseDockerFast(b); ok {
			var j struct {
				Log    *string `json:"log"`
				Stream string  `json:"stream"`
				Time   string  `json:"time"`
			}
			if err := json.Unmarshal(b, &j); err != nil || j.Log == nil {
				t.Fatalf("fast path read %q, encoding/json: %v", b, err)
			}
			want := strings.TrimSuffix(*j.Log, "\n")
			tt, err := time.Parse(time.RFC3339Nano, j.Time)
			if fast.text != want || fast.stream != j.Stream || err != nil || !tt.Equal(fast.t) {
				t.Fatalf("fast %+v, json %q %q %q", fast, want, j.Stream, j.Time)
			}
		}
	})
}

func FuzzUnit(f *testing.F) {
	seed(f, "seeds/kubelet.service", "seeds/10-kubeadm.conf")
	f.Add([]byte(kubeadmDropIn))
	f.Add([]byte("[Service]\nEnvironment=\"A=--x ${B}\" B='c d'\nExecStart=-@/bin/k argv0 $A ${B}x \\\n --y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxConfigBytes {
			return
		}
		env := map[string]EnvVar{}
		var exec string
		ds, _ := serviceDirectives(b)
		for _, kv := range ds {
			switch kv.Key {
			case "Environment":
				words, _ := splitQuoted(kv.Value)
				for _, w := range words {
					if k, v, ok := strings.Cut(w, "="); ok {
						env[k] = EnvVar{Name: k, Value: v}
					}
				}
			case "ExecStart":
				exec = kv.Value
			}
		}
		for _, v := range parseEnvFile(string(b)) {
			env[v.Name] = v
		}
		args, _ := expandExec(exec, "/u", env)
		if len(args) > MaxArgs+1 {
			t.Fatalf("%d args", len(args))
		}
		ParseFlags(args)
	})
}
