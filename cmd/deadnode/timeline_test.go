package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/forensics/model"
	"github.com/deadnode/deadnode/internal/testfix"
)

func TestTimelineBodyfile(t *testing.T) {
	out, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "timeline", "--format", "bodyfile")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var miner []string
	created := 0
	for i, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 11 {
			t.Fatalf("line %d has %d fields: %q", i, len(f), l)
		}
		if f[0] != "0" || f[2] != "0" {
			t.Errorf("line %d: md5/inode %q %q", i, f[0], f[2])
		}
		for _, k := range []int{4, 5, 6, 7, 8, 9, 10} {
			if _, err := strconv.ParseInt(f[k], 10, 64); err != nil {
				t.Errorf("line %d field %d %q: %v", i, k, f[k], err)
			}
		}
		if strings.Contains(f[1], ":/tmp/.x/miner (added)") {
			miner = f
		}
		if strings.HasPrefix(f[1], "[container] container 4b324cab") && strings.HasSuffix(f[1], "created") {
			created++
			if f[10] != strconv.FormatInt(time.Date(2026, 11, 27, 2, 30, 16, 0, time.UTC).Unix(), 10) {
				t.Errorf("container created at %s", f[10])
			}
		}
	}
	want := []string{"0", "shop/shop-frontend-7d9c8b6f5-x2k4q/app:/tmp/.x/miner (added)", "0", "r/rrwxr-xr-x", "0", "0", "1982256"}
	if miner == nil || strings.Join(miner[:7], "|") != strings.Join(want, "|") {
		t.Fatalf("miner line %q", miner)
	}
	mtime := time.Date(2026, 11, 27, 2, 31, 4, 0, time.UTC).Unix()
	if miner[8] != strconv.FormatInt(mtime, 10) {
		t.Errorf("miner mtime %s, want %d", miner[8], mtime)
	}
	if created != 1 {
		t.Errorf("%d creation lines for the app container", created)
	}
	// The Sleuth Kit's own mactime reads it.
	body := filepath.Join(t.TempDir(), "body")
	os.WriteFile(body, []byte(out), 0o600)
	mt, err := exec.Command("mactime", "-b", body, "-d", "-z", "UTC").CombinedOutput()
	if err != nil {
		t.Fatalf("mactime (scripts/test.sh installs sleuthkit): %v\n%s", err, mt)
	}
	if !strings.Contains(string(mt), `Fri Nov 27 2026 02:31:04,1982256,mac.,r/rrwxr-xr-x,0,0,0,"shop/shop-frontend-7d9c8b6f5-x2k4q/app:/tmp/.x/miner (added)"`) {
		t.Errorf("mactime output lacks the miner:\n%s", mt)
	}
}

func TestTimelineTimesketch(t *testing.T) {
	out, stderr, code := runCLI(t, "--root", testfix.NodeArchive(t), "timeline", "--format", "timesketch")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var last int64
	n := 0
	sawFinish := false
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		n++
		// Timesketch's required fields and their types.
		msg, ok1 := rec["message"].(string)
		dt, ok2 := rec["datetime"].(string)
		desc, ok3 := rec["timestamp_desc"].(string)
		ts, ok4 := rec["timestamp"].(float64)
		if !ok1 || !ok2 || !ok3 || !ok4 || msg == "" || desc == "" {
			t.Fatalf("record lacks a required field: %s", l)
		}
		parsed, err := time.Parse(time.RFC3339Nano, dt)
		if err != nil {
			t.Fatalf("datetime %q: %v", dt, err)
		}
		if int64(ts) != parsed.UnixMicro() {
			t.Errorf("timestamp %d != datetime %s", int64(ts), dt)
		}
		if int64(ts) < last {
			t.Errorf("not sorted at %s", l)
		}
		last = int64(ts)
		if rec["what"] == "finished" && rec["container_id"] == "f617888dbd39d44a9b551aa1d2562a8e3b6a4ea8b8706a48c3d608d6c52f183c" {
			sawFinish = true
			if dt != "2026-11-27T02:30:19.316863Z" || !strings.Contains(msg, "exit code 0") || desc != "End Time" {
				t.Errorf("report finish: %s", l)
			}
		}
	}
	if n < 100 || !sawFinish {
		t.Errorf("%d records, finish seen %v", n, sawFinish)
	}
}

func TestTimelineJSONL(t *testing.T) {
	out, _, code := runCLI(t, "--root", testfix.NodeArchive(t), "timeline")
	if code != 0 {
		t.Fatal(code)
	}
	var logs []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct {
			Time, Source, What, Message, Pod string
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e.Source == "log" {
			logs = append(logs, e.Time+" "+e.What+" "+e.Pod)
		}
	}
	want := []string{
		"2026-11-27T02:30:17.312554391Z log_line jobs/report-job-28374651-q7wzt",
		"2026-11-27T02:30:19.314444802Z log_line jobs/report-job-28374651-q7wzt",
	}
	if strings.Join(logs, "\n") != strings.Join(want, "\n") {
		t.Errorf("log events:\n%s", strings.Join(logs, "\n"))
	}
}

// The Timesketch lines carry a path's exact bytes, as the JSONL output
// does, when the path is not valid UTF-8: path alone had only U+FFFD.
func TestTimesketchKeepsPathBytes(t *testing.T) {
	e := forensics.Event{Source: "file", What: "mtime", Path: "/tmp/a\xff", PathBytes: model.PathBytes("/tmp/a\xff")}
	var b bytes.Buffer
	if err := writeTimesketch(&b, func(yield func(forensics.Event, error) bool) { yield(e, nil) }); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["path_bytes"] != "L3RtcC9h/w==" {
		t.Errorf("record %v", rec)
	}
}
