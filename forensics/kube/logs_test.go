package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics/model"
)

const (
	logPod = "var/log/pods/web_web-0_" + podA
	logID  = "aaaabbbbccccddddeeeeffff00001111222233334444555566667777888899990"
)

func readLogs(t *testing.T, src evidence.Source, f LogFilter) ([]LogLine, []error) {
	t.Helper()
	var out []LogLine
	var errs []error
	for l, err := range Logs(context.Background(), src, f) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, l)
	}
	return out, errs
}

func texts(ls []LogLine) string {
	var s []string
	for _, l := range ls {
		s = append(s, l.Text)
	}
	return strings.Join(s, "|")
}

// Partial lines (P) are joined per stream up to their F line, across a
// rotation; rotated files (gzip and plain) are read oldest first; a .tmp
// left by a rotation is skipped; a malformed line is a warning with its
// file and offset.
func TestCRILogs(t *testing.T) {
	dir := logPod + "/app/"
	rot1 := "2026-11-26T10:00:00.000000001Z stdout F a\n2026-11-26T10:00:00.000000002Z stdout P b-start \n"
	rot2 := "2026-11-26T10:00:01.000000000Z stdout F b-end\n2026-11-26T10:00:02.000000000Z stdout P hel\n2026-11-26T10:00:02.500000000Z stderr F err\n" +
		"2026-11-26T10:00:03.000000000Z stdout P lo \n2026-11-26T10:00:04.000000000Z stdout F world\n"
	live := "garbage without a time\n2026-11-26T10:00:05.000000000Z stdout F c\n2026-11-26T10:00:06.000000000Z stdout F:x tagged\n" +
		"2026-11-26T10:00:07.000000000Z stdout F \n2026-11-26T10:00:08.000000000Z stderr P never finished"
	for _, s := range trees(t, map[string]node{
		dir + "0.log.20261126-100000.gz":                          file(gz(rot1)),
		dir + "0.log.20261126-100001":                             file(rot2),
		dir + "0.log.20261126-100002.tmp":                         file("partial gzip"),
		dir + "0.log":                                             file(live),
		dir + "1.log":                                             file("2026-11-26T10:00:09.000000000Z stdout F restarted\n"),
		"var/log/containers/web-0_web_app-" + logID + ".log":      symlink("/" + dir + "0.log"),
		"var/log/containers/loop_web_app-" + logID[:63] + "1.log": symlink("loop_web_app-" + logID[:63] + "1.log"),
	}) {
		t.Run(s.name, func(t *testing.T) {
			lines, errs := readLogs(t, s.src, LogFilter{})
			if got := texts(lines); got != "a|b-start b-end|err|hello world|c|tagged||never finished|restarted" {
				t.Errorf("texts %q", got)
			}
			if len(errs) != 3 {
				t.Fatalf("errors %v", errs)
			}
			var fe *evidence.FormatError
			if !errors.As(errs[2], &fe) || fe.File != "/"+dir+"0.log" || fe.Offset != 0 || !strings.Contains(fe.Error(), "line 1") {
				t.Errorf("bad line warning %v", errs[2])
			}
			w := errs[0].Error() + errs[1].Error()
			if !strings.Contains(w, "too many levels of symbolic links") || !strings.Contains(w, ".tmp), not read") {
				t.Errorf("warnings %v", errs[:2])
			}
			b := lines[1]
			if b.Parts != 2 || b.Line != 2 || b.EvidencePath != "/"+dir+"0.log.20261126-100000.gz" || b.Time.String() != "2026-11-26T10:00:00.000000002Z" {
				t.Errorf("joined across rotation %+v", b)
			}
			h := lines[3]
			if h.Parts != 3 || h.Stream != "stdout" || h.Line != 2 || h.Offset != 46 || h.ContainerID != logID || *h.Attempt != 0 {
				t.Errorf("joined %+v", h)
			}
			if p := lines[7]; !p.Partial || p.Stream != "stderr" {
				t.Errorf("unfinished %+v", p)
			}
			if r := lines[8]; *r.Attempt != 1 || r.ContainerID != "" || r.Pod != "web/web-0" || r.PodUID != podA {
				t.Errorf("attempt 1 %+v", r)
			}
			files, _ := LogFiles(context.Background(), s.src, LogFilter{})
			var rot []string
			for _, f := range files {
				rot = append(rot, f.Rotated)
			}
			if strings.Join(rot, ",") != "20261126-100000,20261126-100001,," {
				t.Errorf("rotations %q", rot)
			}
			// Filters: container by id prefix (only attempt 0 has the link),
			// grep, until.
			if got := texts(first(readLogs(t, s.src, LogFilter{Container: logID[:8]}))); got != "a|b-start b-end|err|hello world|c|tagged||never finished" {
				t.Errorf("by id %q", got)
			}
			if got := texts(first(readLogs(t, s.src, LogFilter{Grep: mustRegexp(`^(err|c)$`)}))); got != "err|c" {
				t.Errorf("grep %q", got)
			}
			fs, warns := LogFindings(context.Background(), s.src, LogFilter{})
			if got := kinds(fs); got != "low:malformed_log_lines" || fs[0].Path != "/"+dir+"0.log" || len(warns) != 3 {
				t.Fatalf("findings %s %+v", got, warns)
			}
			// The warnings keep their files (and the bad line its offset),
			// and print as the errors Logs yields.
			for i, want := range []struct {
				file string
				off  int64
			}{{"/var/log/containers/loop_web_app-" + logID[:63] + "1.log", -1}, {"/" + dir + "0.log.20261126-100002.tmp", -1}, {"/" + dir + "0.log", 0}} {
				if w := warns[i]; w.File != want.file || w.Offset != want.off || w.String() != errs[i].Error() {
					t.Errorf("warning %d: %#v, want file %s offset %d", i, w, want.file, want.off)
				}
			}
			var lw evidence.Warning
			if !errors.As(errs[1], &lw) || lw.Msg != "a rotation left unfinished (.tmp), not read" {
				t.Errorf("LogFiles warning yielded as %#v", errs[1])
			}
		})
	}
}

func first(ls []LogLine, _ []error) []LogLine { return ls }

// Docker's json-file: split entries joined, .N rotations oldest first
// (.2.gz before .1), names from config.v2.json.
func TestDockerLogs(t *testing.T) {
	id := "d0c4e7"
	dir := "var/lib/docker/containers/" + id + "/"
	for _, s := range trees(t, map[string]node{
		dir + id + "-json.log.2.gz": file(gz(`{"log":"oldest\n","stream":"stdout","time":"2026-11-26T09:00:00Z"}` + "\n")),
		dir + id + "-json.log.1":    file(`{"log":"split ","stream":"stdout","time":"2026-11-26T09:00:01Z"}` + "\n" + `{"log":"line\u00e9\n","stream":"stdout","time":"2026-11-26T09:00:01.5Z"}` + "\n"),
		dir + id + "-json.log":      file(`{"log":"newest\n","stream":"stderr","attrs":{"a":"b"},"time":"2026-11-26T09:00:02Z"}` + "\n" + `{"stream":"stdout"}` + "\n"),
		dir + "config.v2.json":      file(`{"Name":"/web","Config":{"Labels":{"io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"web","io.kubernetes.pod.uid":"` + podA + `","io.kubernetes.container.name":"app"}}}`),
	}) {
		t.Run(s.name, func(t *testing.T) {
			lines, errs := readLogs(t, s.src, LogFilter{})
			if got := texts(lines); got != "oldest|split lineé|newest" {
				t.Errorf("texts %q", got)
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no log field") {
				t.Errorf("errors %v", errs)
			}
			l := lines[1]
			if l.Parts != 2 || l.Container != "app" || l.Pod != "web/web-0" || l.PodUID != podA || l.ContainerID != id || l.Runtime != model.RuntimeDocker || l.Attempt != nil {
				t.Errorf("line %+v", l)
			}
			if got := texts(first(readLogs(t, s.src, LogFilter{Container: "web/web-0/app"}))); got != "oldest|split lineé|newest" {
				t.Errorf("filter %q", got)
			}
			if got := texts(first(readLogs(t, s.src, LogFilter{DockerRoot: "-"}))); got != "" {
				t.Errorf("docker skipped: %q", got)
			}
		})
	}
}

// Lines of several logs come out merged by time.
func TestMergeByTime(t *testing.T) {
	nodes := map[string]node{}
	var want []string
	for c := 0; c < 5; c++ {
		var b strings.Builder
		for i := 0; i < 20; i++ {
			fmt.Fprintf(&b, "2026-11-26T10:%02d:%02d.000000000Z stdout F c%d-%d\n", i, c, c, i)
		}
		nodes[fmt.Sprintf("%s/c%d/0.log", logPod, c)] = file(b.String())
	}
	for i := 0; i < 20; i++ {
		for c := 0; c < 5; c++ {
			want = append(want, fmt.Sprintf("c%d-%d", c, i))
		}
	}
	for _, s := range trees(t, nodes) {
		lines, errs := readLogs(t, s.src, LogFilter{})
		if len(errs) != 0 || texts(lines) != strings.Join(want, "|") {
			t.Errorf("%s: merged %q %v", s.name, texts(lines), errs)
		}
		// Since/until bounds are inclusive.
		got := texts(first(readLogs(t, s.src, LogFilter{Since: lines[10].Time.Time, Until: lines[12].Time.Time})))
		if got != "c0-2|c1-2|c2-2" {
			t.Errorf("since/until %q", got)
		}
	}
}

// Lines out of time order are judged.
func TestLogFindingsRegression(t *testing.T) {
	log := "2026-11-26T10:00:00Z stdout F one\n2026-11-26T10:05:00Z stdout F two\n2026-11-26T10:01:00Z stdout F inserted\n"
	for _, s := range trees(t, map[string]node{logPod + "/app/0.log": file(log)}) {
		fs, _ := LogFindings(context.Background(), s.src, LogFilter{})
		if got := kinds(fs); got != "medium:log_time_regression" || !strings.Contains(fs[0].Why, "4m0s, at line 3") {
			t.Errorf("%s: %s %+v", s.name, got, fs)
		}
	}
}

func TestLogsCancel(t *testing.T) {
	s := trees(t, map[string]node{logPod + "/app/0.log": file(strings.Repeat("2026-11-26T10:00:00Z stdout F x\n", 1000))})[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var last error
	for _, err := range Logs(ctx, s.src, LogFilter{}) {
		n++
		if n == 10 {
			cancel()
		}
		last = err
	}
	if n != 11 || !errors.Is(last, context.Canceled) {
		t.Errorf("%d lines after cancel, last %v", n, last)
	}
}
