package main

import (
	"encoding/json"
	"io"
	"iter"
)

// The two streamed JSON outputs of a sequence (logs, timeline): -o json
// and -o jsonl. Both stop at the sequence's first error.

// writeJSONSeq writes a stream as one JSON array, an element a line.
func writeJSONSeq[T any](w io.Writer, seq iter.Seq2[T, error]) error {
	io.WriteString(w, "[")
	first := true
	for v, err := range seq {
		if err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if !first {
			io.WriteString(w, ",")
		}
		first = false
		io.WriteString(w, "\n  ")
		w.Write(b)
	}
	if !first {
		io.WriteString(w, "\n")
	}
	_, err := io.WriteString(w, "]\n")
	return err
}

// writeJSONLines writes a stream as JSON Lines, an element a line.
func writeJSONLines[T any](w io.Writer, seq iter.Seq2[T, error]) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for v, err := range seq {
		if err != nil {
			return err
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}
