package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"strings"

	"github.com/deadnode/deadnode/evidence"
	"github.com/deadnode/deadnode/forensics"
	"github.com/deadnode/deadnode/render"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "timeline",
		args:    "[--format bodyfile|timesketch|jsonl|table] [-f OUT [--force]] [--hash]",
		summary: "every timestamp of the node: runtime records, CRI state, drifted files' MAC times (volumes too), every log line, checkpoints, the kubelet's files, static pods, pod directories, service-account tokens, host persistence and package drift",
		setup: func(fs *pflag.FlagSet) func(*app, []string) error {
			var format, out string
			var hash, force bool
			fs.StringVar(&format, "format", "jsonl", "bodyfile (Sleuth Kit 3.x, for mactime), timesketch (JSONL), jsonl, or table (the default with -o table given explicitly)")
			fs.StringVarP(&out, "file", "f", "-", "write to this file instead of stdout")
			fs.BoolVar(&hash, "hash", false, "hash drifted files (sha256 in the JSON formats)")
			fs.BoolVar(&force, "force", false, "overwrite the -f file if it exists")
			return func(a *app, args []string) error {
				return runTimeline(a, args, format, out, hash, force, fs.Changed("format"), fs.Changed("output"))
			}
		},
	})
}

func runTimeline(a *app, args []string, format, out string, hash, force, formatSet, outputSet bool) error {
	if len(args) != 0 {
		return usagef("timeline takes no arguments")
	}
	switch format {
	case "bodyfile", "timesketch", "jsonl", "table":
	default:
		return usagef("--format must be bodyfile, timesketch, jsonl or table")
	}
	if !outputSet {
		// The timeline is long: JSON Lines unless a table is asked for.
		a.output = "jsonl"
	}
	if a.output == "table" && format == "jsonl" && !formatSet {
		format = "table"
	}
	if err := a.checkOutput(out); err != nil {
		return err
	}
	n, err := a.evidence() // a host without a runtime still has logs and a kubelet
	if err != nil {
		return err
	}
	w := a.stdout
	if out != "-" {
		f, err := a.createOut(out, force)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	events := a.events(n.Timeline(context.Background(), &forensics.TimelineOptions{Hash: hash}))
	switch format {
	case "bodyfile":
		return writeBodyfile(bw, events)
	case "timesketch":
		return writeTimesketch(bw, events)
	case "table":
		// Fitted to the terminal (or --wide) only when it goes there.
		var opt *render.Options
		if out == "-" {
			opt = a.renderOptions()
		}
		return writeTimelineTable(bw, events, opt)
	}
	if a.output == "json" {
		// One array, streamed.
		return writeJSONSeq(bw, events)
	}
	return writeJSONLines(bw, events)
}

// events passes a timeline's events on, printing its warnings.
func (a *app) events(seq iter.Seq2[forensics.Event, error]) iter.Seq2[forensics.Event, error] {
	return func(yield func(forensics.Event, error) bool) {
		for e, err := range seq {
			var w evidence.Warning
			if err != nil && errors.As(err, &w) {
				a.warn(w.String())
				continue
			}
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

// writeTimelineTable prints TIME, SOURCE, WHAT, CONTAINER and MESSAGE.
func writeTimelineTable(w io.Writer, events iter.Seq2[forensics.Event, error], opt *render.Options) error {
	// A table is aligned on its widest cells, which needs them all; print
	// in blocks of 1000 rows so memory stays bounded.
	t := render.Cols("TIME=", "SOURCE", "WHAT", "CONTAINER#", "MESSAGE")
	for e, err := range events {
		if err != nil {
			return err
		}
		t.Row(e.Time, e.Source, e.What, e.ContainerID, e.Message)
		if t.Len() >= 1000 {
			if err := render.WriteTable(w, t, opt); err != nil {
				return err
			}
			t = render.Cols("TIME=", "SOURCE", "WHAT", "CONTAINER#", "MESSAGE")
			t.Title("")
		}
	}
	return render.WriteTable(w, t, opt)
}

// bodyfileName keeps '|', newlines and every control character of the
// evidence out of a bodyfile name field (render.Clean escapes controls,
// C1 and invalid UTF-8 as \x.. sequences).
func bodyfileName(s string) string {
	return strings.ReplaceAll(render.Clean(s), "|", "%7C")
}

// modeString is the Sleuth Kit's mode_as_string: "r/rrwxr-xr-x".
func tskMode(typ, mode string) string {
	var t byte
	switch typ {
	case "file":
		t = 'r'
	case "dir":
		t = 'd'
	case "symlink":
		t = 'l'
	case "char", "whiteout":
		t = 'c'
	case "block":
		t = 'b'
	case "fifo":
		t = 'p'
	case "socket":
		t = 's'
	default:
		return "-/----------"
	}
	var v uint32
	fmt.Sscanf(mode, "%o", &v)
	perm := fs.FileMode(v & 0o777).String()[1:]
	b := []byte(perm)
	if v&0o4000 != 0 {
		b[2] = map[bool]byte{true: 's', false: 'S'}[b[2] == 'x']
	}
	if v&0o2000 != 0 {
		b[5] = map[bool]byte{true: 's', false: 'S'}[b[5] == 'x']
	}
	if v&0o1000 != 0 {
		b[8] = map[bool]byte{true: 't', false: 'T'}[b[8] == 'x']
	}
	return string(t) + "/" + string(t) + string(b)
}

func unixOrZero(t interface{ IsZero() bool }, sec int64) int64 {
	if t.IsZero() {
		return 0
	}
	return sec
}

// writeBodyfile writes Sleuth Kit 3.x body lines:
// MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime.
// A drifted file is one line with its four times; every other event is a
// line whose name says what happened, with its time as crtime when it is a
// creation and as mtime otherwise.
func writeBodyfile(w io.Writer, events iter.Seq2[forensics.Event, error]) error {
	for e, err := range events {
		if err != nil {
			return err
		}
		if e.File != nil && !e.FirstOfFile {
			continue // the file's line was written at its first event
		}
		if f := e.File; f != nil {
			who := f.Namespace + "/" + f.ContainerID
			if f.Pod != "" {
				who = f.Pod + "/" + f.ContainerName
			}
			_, err := fmt.Fprintf(w, "0|%s|0|%s|%d|%d|%d|%d|%d|%d|%d\n",
				bodyfileName(who+":"+f.Path+" ("+f.Change+")"), tskMode(f.Type, f.Mode), f.UID, f.GID, f.Size,
				unixOrZero(f.Atime, f.Atime.Unix()), unixOrZero(f.Mtime, f.Mtime.Unix()), unixOrZero(f.Ctime, f.Ctime.Unix()), unixOrZero(f.Btime, f.Btime.Unix()))
			if err != nil {
				return err
			}
			continue
		}
		var m, b int64
		if e.What == "created" || e.What == "checkpointed" {
			b = e.Time.Unix()
		} else {
			m = e.Time.Unix()
		}
		if _, err := fmt.Fprintf(w, "0|%s|0|-/----------|0|0|0|0|%d|0|%d\n", bodyfileName("["+e.Source+"] "+e.Message), m, b); err != nil {
			return err
		}
	}
	return nil
}

var timestampDesc = map[string]string{
	"created":      "Creation Time",
	"updated":      "Modification Time",
	"started":      "Start Time",
	"finished":     "End Time",
	"atime":        "Last Access Time",
	"mtime":        "Content Modification Time",
	"ctime":        "Metadata Modification Time",
	"btime":        "Creation Time",
	"terminated":   "End Time",
	"log_line":     "Log Line",
	"checkpointed": "Checkpoint Time",
	"iat":          "Token Issued",
	"nbf":          "Token Valid From",
	"exp":          "Token Expiry",
}

// writeTimesketch writes Timesketch's JSONL: message, datetime,
// timestamp_desc and timestamp (µs) plus deadnode's fields.
func writeTimesketch(w io.Writer, events iter.Seq2[forensics.Event, error]) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for e, err := range events {
		if err != nil {
			return err
		}
		rec := map[string]any{
			"message":        e.Message,
			"datetime":       e.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
			"timestamp_desc": timestampDesc[e.What],
			"timestamp":      e.Time.UnixMicro(),
			"data_type":      "deadnode:" + e.Source,
			"source":         e.Source,
			"what":           e.What,
		}
		for k, v := range map[string]string{"runtime": e.Runtime, "namespace": e.Namespace, "container_id": e.ContainerID, "pod": e.Pod, "path": e.Path, "path_bytes": string(e.PathBytes), "evidence_path": e.EvidencePath, "change": e.Change} {
			if v != "" {
				rec[k] = v
			}
		}
		if f := e.File; f != nil {
			rec["file_type"], rec["size"], rec["mode"], rec["uid"], rec["gid"] = f.Type, f.Size, f.Mode, f.UID, f.GID
			rec["flags"], rec["exec_kind"] = f.Flags, f.ExecKind
			if f.SHA256 != "" {
				rec["sha256"] = f.SHA256
			}
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	return nil
}
